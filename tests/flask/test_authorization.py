"""Roles, any-of scopes and per-route issuers/audiences with ``require`` and ``protect``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask

from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims

from ..helpers import bearer


def reason(answer: Any) -> str:
    body: dict[str, str] = answer.json
    return body["reason"]


@pytest.fixture(scope="module")
def two() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    with LocalIssuer(path="/corp") as corp, LocalIssuer(path="/partner") as partner:
        yield corp, partner


@pytest.fixture
def app(two: tuple[LocalIssuer, LocalIssuer]) -> Flask:
    corp, _ = two
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        JWKGUARD_ISSUERS=[
            {
                "issuer": local.url,
                "audiences": ["https://api", "https://admin"],
                "jwks": local.jwks(),
            }
            for local in two
        ],
        JWKGUARD_ALGORITHMS=["RS256"],
    )
    guard = JWKGuard(app)

    @app.get("/reports")
    @guard.require(any_roles=["analyst", "admin"], any_scopes=["reports", "all"])
    def reports() -> dict[str, list[str]]:
        return {"roles": sorted(current_claims.roles)}

    @app.get("/corp-only")
    @guard.require(issuers=[corp.url], audiences=["https://admin"], roles=["admin"])
    def corp_only() -> str:
        return "ok"

    staff = Blueprint("staff", __name__)
    guard.protect(staff, roles=["staff"])

    @staff.get("/staff/home")
    def home() -> str:
        return "home"

    app.register_blueprint(staff)
    return app


def test_require_with_any_of_roles_and_scopes(
    app: Flask, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, _ = two
    client = app.test_client()
    ok = corp.mint(audience="https://api", roles=["analyst"], scopes="reports")
    assert client.get("/reports", headers=bearer(ok)).json == {"roles": ["analyst"]}
    no_role = client.get(
        "/reports", headers=bearer(corp.mint(audience="https://api", scopes="all"))
    )
    assert (no_role.status_code, reason(no_role)) == (403, "insufficient_role")
    assert 'error="insufficient_scope"' in no_role.headers["WWW-Authenticate"]
    no_scope = client.get(
        "/reports", headers=bearer(corp.mint(audience="https://api", roles=["admin"]))
    )
    assert (no_scope.status_code, reason(no_scope)) == (403, "insufficient_scope")


def test_require_narrows_issuer_and_audience(
    app: Flask, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, partner = two
    client = app.test_client()
    foreign = client.get(
        "/corp-only", headers=bearer(partner.mint(audience="https://admin", roles=["admin"]))
    )
    assert (foreign.status_code, reason(foreign)) == (401, "issuer_not_accepted")
    api = client.get(
        "/corp-only", headers=bearer(corp.mint(audience="https://api", roles=["admin"]))
    )
    assert (api.status_code, reason(api)) == (401, "audience_not_accepted")
    good = corp.mint(audience="https://admin", roles=["admin"])
    assert client.get("/corp-only", headers=bearer(good)).status_code == 200


def test_protect_demands_roles_of_a_blueprint(
    app: Flask, two: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, _ = two
    client = app.test_client()
    assert (
        client.get("/staff/home", headers=bearer(corp.mint(audience="https://api"))).status_code
        == 403
    )
    staff = corp.mint(audience="https://api", roles=["staff"])
    assert client.get("/staff/home", headers=bearer(staff)).status_code == 200
