"""Roles, any-of scopes and per-route issuers/audiences in FastAPI (``JWTBearer`` options and
``requiring``), the Starlette middleware and the framework-free ASGI / WSGI middlewares."""

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security
from starlette.testclient import TestClient

from jwkguard import Claims, Issuer, Validator
from jwkguard.asgi import JWKGuardMiddleware as ASGIMiddleware
from jwkguard.errors import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard.wsgi import JWKGuardMiddleware as WSGIMiddleware
from jwkguard_fastapi import JWKGuardMiddleware as StarletteMiddleware
from jwkguard_fastapi import JWTBearer

from ..helpers import bearer


@pytest.fixture(scope="module")
def two() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    with LocalIssuer(path="/corp") as corp, LocalIssuer(path="/partner") as partner:
        yield corp, partner


@pytest.fixture(scope="module")
def validator(two: tuple[LocalIssuer, LocalIssuer]) -> Validator:
    return Validator(
        issuers=[
            Issuer(local.url, audiences=["https://api", "https://admin"], jwks=local.jwks())
            for local in two
        ],
        algorithms=["RS256"],
    )


def reason(answer: Any) -> tuple[int, str]:
    body = answer.json() if callable(answer.json) else answer.json
    body = body.get("detail", body)  # FastAPI without install(): the body under "detail"
    return answer.status_code, body["reason"]


class _WSGIClient:
    """werkzeug's test client, answering ``.text`` like the ASGI one."""

    def __init__(self, app: Any) -> None:
        from werkzeug.test import Client

        self.client = Client(app)

    def get(self, path: str, headers: dict[str, str]) -> Any:
        answer = self.client.get(path, headers=headers)
        answer.text = answer.get_data(as_text=True)
        return answer


def test_jwtbearer_roles_issuers_and_any_scopes(
    validator: Validator, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, partner = two
    auth = JWTBearer(validator, any_roles=["reader", "admin"])
    admin = auth.requiring(roles=["admin"], issuers=[corp.url], audiences=["https://admin"])
    app = FastAPI()

    @app.get("/orders")
    async def orders(claims: Annotated[Claims, Security(auth, scopes=["orders"])]) -> list[str]:
        return sorted(claims.roles)

    @app.get("/admin")
    async def admin_view(claims: Annotated[Claims, Security(admin)]) -> str:
        return claims.subject or ""

    either_auth = auth.requiring(any_scopes=["a", "b"])

    @app.get("/either")
    async def either(claims: Annotated[Claims, Security(either_auth)]) -> str:
        return "ok"

    client = TestClient(app)
    reader = corp.mint(audience="https://api", roles=["reader"], scopes="orders")
    assert client.get("/orders", headers=bearer(reader)).json() == ["reader"]
    nobody = corp.mint(audience="https://api", roles=["guest"], scopes="orders")
    refused = client.get("/orders", headers=bearer(nobody))
    assert reason(refused) == (403, "insufficient_role")
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    # requiring() keeps the dependency's any-of roles and adds its own demands.
    foreign = partner.mint(audience="https://admin", roles=["admin"])
    assert reason(client.get("/admin", headers=bearer(foreign))) == (401, "issuer_not_accepted")
    wrong_aud = corp.mint(audience="https://api", roles=["admin"])
    assert reason(client.get("/admin", headers=bearer(wrong_aud))) == (
        401,
        "audience_not_accepted",
    )
    good = corp.mint(audience="https://admin", roles=["admin"])
    assert client.get("/admin", headers=bearer(good)).status_code == 200
    assert (
        client.get(
            "/either",
            headers=bearer(corp.mint(audience="https://api", roles=["reader"], scopes="b")),
        ).status_code
        == 200
    )
    assert reason(
        client.get("/either", headers=bearer(corp.mint(audience="https://api", roles=["reader"])))
    ) == (403, "insufficient_scope")


def test_jwtbearer_refuses_an_issuer_the_validator_does_not_trust(validator: Validator) -> None:
    with pytest.raises(ConfigurationError, match="does not trust"):
        JWTBearer(validator, issuers=["https://elsewhere"])


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _wsgi_hello(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.mark.parametrize("kind", ["asgi", "starlette", "wsgi"])
def test_middlewares_apply_roles_and_issuers_to_every_request(
    kind: str, validator: Validator, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, partner = two
    options: dict[str, Any] = {"roles": ["staff"], "issuers": [corp.url]}
    client: Any
    if kind == "asgi":
        client = TestClient(ASGIMiddleware(_hello, validator, **options))
    elif kind == "starlette":
        client = TestClient(StarletteMiddleware(_hello, validator, **options))
    else:
        client = _WSGIClient(WSGIMiddleware(_wsgi_hello, validator, **options))
    staff = corp.mint(audience="https://api", roles=["staff"])
    assert client.get("/", headers=bearer(staff)).text == "hello"
    assert reason(client.get("/", headers=bearer(corp.mint(audience="https://api")))) == (
        403,
        "insufficient_role",
    )
    partner_staff = partner.mint(audience="https://api", roles=["staff"])
    assert reason(client.get("/", headers=bearer(partner_staff))) == (401, "issuer_not_accepted")
