"""auth.typed(Model): the claims as a pydantic model or dataclass; bad claims are 401, not 422."""

# No `from __future__ import annotations`: the routes below are defined in a function, and
# FastAPI must read their annotations, which name local dependencies.

from dataclasses import dataclass
from typing import Annotated

import pydantic
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from jwkguard import Validator
from jwkguard.testing import LocalIssuer, make_claims
from jwkguard.typed import EntraClaims
from jwkguard_fastapi import JWTBearer, install
from jwkguard_fastapi.testing import claims_override

from ..helpers import bearer


class OrderClaims(pydantic.BaseModel):
    sub: str
    tenant: str


@dataclass(frozen=True)
class Tenant:
    tenant: str


def _app(validator: Validator) -> tuple[FastAPI, JWTBearer]:
    auth = JWTBearer(validator)
    optional = JWTBearer(validator, auto_error=False)
    app = FastAPI()
    install(app)
    Orders = Annotated[OrderClaims, Security(auth.typed(OrderClaims), scopes=["orders:read"])]

    @app.get("/orders")
    async def orders(claims: Orders) -> dict[str, str]:
        return {"sub": claims.sub, "tenant": claims.tenant}

    @app.get("/tenant")
    async def tenant(claims: Annotated[Tenant, Security(auth.typed(Tenant))]) -> dict[str, str]:
        return {"tenant": claims.tenant}

    @app.get("/maybe")
    async def maybe(
        claims: Annotated[Tenant | None, Security(optional.typed(Tenant))],
    ) -> dict[str, bool]:
        return {"signed_in": claims is not None}

    @app.get("/entra")
    async def entra(
        claims: Annotated[EntraClaims, Security(auth.typed(EntraClaims))],
    ) -> dict[str, str]:
        return {"oid": claims.oid}

    return app, auth


def test_the_model_reaches_the_route(issuer: LocalIssuer, validator: Validator) -> None:
    app, _ = _app(validator)
    client = TestClient(app)
    token = issuer.mint(subject="ann", tenant="t1", scopes=["orders:read"])
    assert client.get("/orders", headers=bearer(token)).json() == {"sub": "ann", "tenant": "t1"}
    assert client.get("/tenant", headers=bearer(token)).json() == {"tenant": "t1"}
    entra = issuer.mint(oid="o-1", tid="t-1")
    assert client.get("/entra", headers=bearer(entra)).json() == {"oid": "o-1"}


def test_a_missing_custom_claim_is_401_invalid_token_with_the_reason(
    issuer: LocalIssuer, validator: Validator
) -> None:
    client = TestClient(_app(validator)[0])
    refused = client.get("/orders", headers=bearer(issuer.mint(scopes=["orders:read"])))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    body = refused.json()
    assert body["error"] == "invalid_token"
    assert body["reason"] == "invalid_claim"
    assert "tenant" in body["error_description"]
    wrong = client.get("/tenant", headers=bearer(issuer.mint(tenant=7)))
    assert wrong.status_code == 401
    assert wrong.json()["reason"] == "invalid_claim"


def test_scopes_and_missing_tokens_behave_as_the_plain_dependency(
    issuer: LocalIssuer, validator: Validator
) -> None:
    client = TestClient(_app(validator)[0])
    assert client.get("/orders").status_code == 401
    assert client.get("/orders", headers=bearer(issuer.mint(tenant="t1"))).status_code == 403
    assert client.get("/maybe").json() == {"signed_in": False}
    assert client.get("/maybe", headers=bearer(issuer.mint(tenant="t"))).json() == {
        "signed_in": True
    }


def test_the_same_model_gives_the_same_dependency(validator: Validator) -> None:
    auth = JWTBearer(validator)
    assert auth.typed(Tenant) is auth.typed(Tenant)


def test_fake_claims_reach_typed_routes(validator: Validator) -> None:
    app, auth = _app(validator)
    app.dependency_overrides[auth] = claims_override(
        make_claims(subject="bo", tenant="t9", scopes=["orders:read"])
    )
    assert TestClient(app).get("/orders").json() == {"sub": "bo", "tenant": "t9"}
