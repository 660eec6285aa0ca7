"""RFC 9728 metadata and RFC 9470 step-up in FastAPI and Starlette, over real HTTP (uvicorn)."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jwkguard import Claims, Validator
from jwkguard.testing import LocalIssuer
from jwkguard_fastapi import JWKGuardMiddleware, JWTBearer, add_resource_metadata, install

from ..helpers import bearer
from .conftest import ServedApp

RESOURCE = "https://api.example.com/orders"
METADATA_PATH = "/.well-known/oauth-protected-resource/orders"
METADATA_PARAM = f'resource_metadata="https://api.example.com{METADATA_PATH}"'


def fastapi_app(validator: Validator) -> FastAPI:
    auth = JWTBearer(validator, resource=RESOURCE)
    strong = auth.step_up(acr_values=["urn:hwk", "urn:mfa"], max_age=300)
    app = FastAPI()
    install(app)
    add_resource_metadata(app, auth)

    @app.get("/orders")
    async def orders(claims: Annotated[Claims, Security(auth, scopes=["orders:read"])]) -> Any:
        return {"sub": claims.subject}

    @app.post("/transfers")
    async def transfer(claims: Annotated[Claims, Security(strong, scopes=["pay"])]) -> Any:
        return {"acr": claims["acr"]}

    @app.post("/stacked")
    async def stacked(
        first: Annotated[Claims, Security(auth)], second: Annotated[Claims, Security(strong)]
    ) -> Any:
        return {"same": first is second}

    return app


@pytest.fixture(scope="module")
def served(issuer: LocalIssuer) -> Iterator[str]:
    validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    with ServedApp(fastapi_app(validator)) as server:
        yield server.url
    validator.close()


def test_the_metadata_document_is_served_at_the_path_suffixed_well_known_uri(
    served: str, issuer: LocalIssuer
) -> None:
    answer = httpx.get(served + METADATA_PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "resource": RESOURCE,
        "authorization_servers": [issuer.url],
        "bearer_methods_supported": ["header"],
    }
    assert httpx.get(served + "/.well-known/oauth-protected-resource").status_code == 404


def test_a_request_without_a_token_is_told_where_the_metadata_is(served: str) -> None:
    answer = httpx.get(served + "/orders")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == f'Bearer realm="api", {METADATA_PARAM}'


def test_a_403_insufficient_scope_names_the_metadata_too(served: str, issuer: LocalIssuer) -> None:
    answer = httpx.get(served + "/orders", headers=bearer(issuer.mint(scopes="other")))
    assert answer.status_code == 403
    challenge = answer.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:read"' in challenge
    assert challenge.endswith(METADATA_PARAM)


def test_a_step_up_route_accepts_a_strong_recent_login(served: str, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes="pay", acr="urn:mfa", auth_time=int(time.time()) - 10)
    answer = httpx.post(served + "/transfers", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.json() == {"acr": "urn:mfa"}


def test_a_step_up_route_refuses_a_weak_login_with_the_rfc9470_challenge(
    served: str, issuer: LocalIssuer
) -> None:
    token = issuer.mint(scopes="pay", acr="urn:pwd", auth_time=int(time.time()))
    answer = httpx.post(served + "/transfers", headers=bearer(token))
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:hwk urn:mfa"' in challenge
    assert 'max_age="300"' in challenge
    assert METADATA_PARAM in challenge
    assert answer.json()["error"] == "insufficient_user_authentication"


def test_a_step_up_route_refuses_an_old_login(served: str, issuer: LocalIssuer) -> None:
    token = issuer.mint(scopes="pay", acr="urn:mfa", auth_time=int(time.time()) - 3600)
    answer = httpx.post(served + "/transfers", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["reason"] == "authentication_too_old"


def test_the_plain_dependency_ignores_the_step_up_of_its_copy(
    served: str, issuer: LocalIssuer
) -> None:
    answer = httpx.get(served + "/orders", headers=bearer(issuer.mint(scopes="orders:read")))
    assert answer.status_code == 200


def test_a_stacked_step_up_dependency_refuses_what_the_first_one_let_through(
    served: str, issuer: LocalIssuer
) -> None:
    answer = httpx.post(served + "/stacked", headers=bearer(issuer.mint(acr="urn:pwd")))
    assert answer.status_code == 401
    assert answer.json()["reason"] == "acr_not_allowed"


# -- Starlette, through the middleware --------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.claims.subject})


@pytest.fixture(scope="module")
def starlette_url(issuer: LocalIssuer) -> Iterator[str]:
    validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    app = Starlette(routes=[Route("/whoami", whoami)])
    guarded = JWKGuardMiddleware(
        app, validator, resource=RESOURCE, acr_values=["urn:mfa"], max_age=600
    )
    with ServedApp(guarded) as server:
        yield server.url
    validator.close()


def test_the_starlette_middleware_serves_the_document_without_a_token(
    starlette_url: str, issuer: LocalIssuer
) -> None:
    answer = httpx.get(starlette_url + METADATA_PATH)
    assert answer.status_code == 200
    assert answer.json()["authorization_servers"] == [issuer.url]
    assert answer.headers["cache-control"] == "public, max-age=3600"


def test_the_starlette_middleware_enforces_step_up_with_the_metadata_in_the_challenge(
    starlette_url: str, issuer: LocalIssuer
) -> None:
    weak = httpx.get(starlette_url + "/whoami", headers=bearer(issuer.mint(acr="urn:pwd")))
    assert weak.status_code == 401
    assert 'acr_values="urn:mfa", max_age="600"' in weak.headers["www-authenticate"]
    assert METADATA_PARAM in weak.headers["www-authenticate"]
    token = issuer.mint(acr="urn:mfa", auth_time=int(time.time()))
    strong = httpx.get(starlette_url + "/whoami", headers=bearer(token))
    assert strong.status_code == 200
    assert strong.json() == {"sub": "user-123"}
