"""JWTBearer with hybrid introspection (RFC 7662): high-value routes ask the authorization
server after local validation, everyday routes do not."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import time
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from jwkguard import Claims, Validator
from jwkguard.sender import Introspector
from jwkguard.testing import IntrospectionEndpoint, LocalIssuer, generate_key
from jwkguard_fastapi import JWTBearer, install

from ..helpers import bearer

BASE = "http://testserver"


@pytest.fixture
def introspection(issuer: LocalIssuer) -> Iterator[IntrospectionEndpoint]:
    endpoint = issuer.enable_introspection()
    yield endpoint
    issuer.heal()


def introspector(endpoint: IntrospectionEndpoint, **options: Any) -> Introspector:
    return Introspector(
        endpoint=endpoint.url,
        client_id=endpoint.client_id,
        client_secret=endpoint.client_secret,
        timeout=2,
        **options,
    )


def hybrid_app(validator: Validator, checker: Introspector) -> FastAPI:
    everyday = JWTBearer(validator)
    high_value = JWTBearer(validator, introspector=checker)
    app = FastAPI()
    install(app, validator)

    @app.get("/balance")
    async def balance(claims: Annotated[Claims, Security(everyday)]) -> Any:
        return {"sub": claims.subject}

    @app.post("/transfer")
    async def transfer(claims: Annotated[Claims, Security(high_value)]) -> Any:
        return {"sub": claims.subject}

    return app


def test_a_high_value_route_introspects_after_local_validation(
    static_validator: Validator, issuer: LocalIssuer, introspection: IntrospectionEndpoint
) -> None:
    checker = introspector(introspection, inactive_ttl=0.001, max_cache_ttl=0.001)
    token = issuer.mint()
    with TestClient(hybrid_app(static_validator, checker), base_url=BASE) as test_client:
        before = issuer.requests["/introspect"]
        assert test_client.post("/transfer", headers=bearer(token)).status_code == 200
        assert issuer.requests["/introspect"] == before + 1
        introspection.revoked.add(token)
        time.sleep(0.01)
        assert test_client.get("/balance", headers=bearer(token)).status_code == 200
        revoked = test_client.post("/transfer", headers=bearer(token))
        assert revoked.status_code == 401
        assert revoked.json()["reason"] == "inactive"
        assert revoked.headers["www-authenticate"].startswith(
            'Bearer realm="api", error="invalid_token"'
        )


def test_a_forged_token_is_refused_before_introspection_is_asked(
    static_validator: Validator, issuer: LocalIssuer, introspection: IntrospectionEndpoint
) -> None:
    checker = introspector(introspection)
    forged = issuer.mint(key=generate_key("RS256", kid=issuer.active_key.kid))
    with TestClient(hybrid_app(static_validator, checker), base_url=BASE) as test_client:
        before = issuer.requests["/introspect"]
        response = test_client.post("/transfer", headers=bearer(forged))
    assert response.status_code == 401
    assert issuer.requests["/introspect"] == before


def test_an_unreachable_endpoint_gives_503_when_fail_closed_and_passes_when_fail_open(
    static_validator: Validator, issuer: LocalIssuer, introspection: IntrospectionEndpoint
) -> None:
    issuer.fail_with(500, paths={"/introspect"})
    token = issuer.mint()
    closed = hybrid_app(static_validator, introspector(introspection))
    opened = hybrid_app(static_validator, introspector(introspection, fail_open=True))
    with TestClient(closed, base_url=BASE) as strict, TestClient(opened, base_url=BASE) as lax:
        response = strict.post("/transfer", headers=bearer(token))
        assert response.status_code == 503
        assert response.json()["reason"] == "introspection_unavailable"
        assert int(response.headers["retry-after"]) > 0
        assert lax.post("/transfer", headers=bearer(token)).status_code == 200
