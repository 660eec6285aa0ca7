"""claims_as(Model) in Flask views: a TypedDict or dataclass; bad claims are 401 invalid_token."""

from __future__ import annotations

from typing import TypedDict

import pytest
from flask import Flask

from jwkguard.testing import LocalIssuer
from jwkguard.typed import CognitoClaims
from jwkguard_flask import JWKGuard
from jwkguard_flask.typed import claims_as

from ..helpers import bearer


class Tenant(TypedDict):
    tenant: str


@pytest.fixture
def app(blank_app: Flask) -> Flask:
    guard = JWKGuard(blank_app)

    @blank_app.get("/tenant")
    @guard.require
    def tenant() -> dict[str, str]:
        return {"tenant": claims_as(Tenant)["tenant"]}

    @blank_app.get("/groups")
    @guard.require
    async def groups() -> dict[str, list[str]]:
        return {"groups": list(claims_as(CognitoClaims).groups)}

    @blank_app.get("/open")
    def unprotected() -> dict[str, str]:
        return {"tenant": claims_as(Tenant)["tenant"]}

    return blank_app


def test_the_view_gets_the_model(app: Flask, issuer: LocalIssuer) -> None:
    client = app.test_client()
    assert client.get("/tenant", headers=bearer(issuer.mint(tenant="t1"))).json == {"tenant": "t1"}
    token = issuer.mint(**{"cognito:groups": ["admins"]})
    assert client.get("/groups", headers=bearer(token)).json == {"groups": ["admins"]}


def test_a_missing_claim_is_401_invalid_token(app: Flask, issuer: LocalIssuer) -> None:
    refused = app.test_client().get("/tenant", headers=bearer(issuer.mint()))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert refused.json is not None
    assert refused.json["reason"] == "invalid_claim"


def test_a_view_without_protection_is_a_programming_error(app: Flask) -> None:
    app.testing = True
    with pytest.raises(RuntimeError, match="no verified claims"):
        app.test_client().get("/open")
