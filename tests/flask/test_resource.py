"""RFC 9728 metadata and RFC 9470 step-up in the Flask extension, over real HTTP (waitress)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Blueprint, Flask, jsonify

from jwkguard.errors import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims

from ..helpers import bearer_from
from ..middleware.conftest import WaitressServer

RESOURCE = "https://api.example.com/v2"
METADATA_PATH = "/.well-known/oauth-protected-resource/v2"
METADATA_PARAM = f'resource_metadata="https://api.example.com{METADATA_PATH}"'


def create_app(issuer: LocalIssuer) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        # No AUDIENCES: the resource identifier is the audience (RFC 8707).
        JWKGUARD_ISSUERS=[{"issuer": issuer.url, "jwks": issuer.jwks()}],
        JWKGUARD_ALGORITHMS=["RS256"],
        JWKGUARD_RESOURCE={"resource": RESOURCE, "scopes_supported": ["pay"]},
    )
    guard = JWKGuard(app)

    @app.get("/v2/orders")
    @guard.require
    def orders() -> Any:
        return jsonify(sub=current_claims.subject)

    @app.post("/v2/transfer")
    @guard.require(scopes=["pay"], acr_values=["urn:mfa"], max_age=300)
    def transfer() -> Any:
        return jsonify(acr=current_claims["acr"])

    admin = Blueprint("admin", __name__, url_prefix="/v2/admin")

    @admin.get("/users")
    def users() -> Any:
        return jsonify(sub=current_claims.subject)

    guard.protect(admin, acr_values=["urn:hwk"])
    app.register_blueprint(admin)
    guard.protect(app)  # the whole app: the metadata document stays open
    return app


@pytest.fixture(scope="module")
def base_url(issuer: LocalIssuer) -> Iterator[str]:
    with WaitressServer(create_app(issuer)) as server:
        yield server.url


def token(issuer: LocalIssuer, **claims: Any) -> dict[str, str]:
    claims.setdefault("audience", RESOURCE)
    return bearer_from(issuer, **claims)


def test_the_metadata_document_is_served_without_a_token(
    base_url: str, issuer: LocalIssuer
) -> None:
    answer = httpx.get(base_url + METADATA_PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "resource": RESOURCE,
        "authorization_servers": [issuer.url],
        "scopes_supported": ["pay"],
        "bearer_methods_supported": ["header"],
    }


def test_challenges_name_the_metadata(base_url: str, issuer: LocalIssuer) -> None:
    missing = httpx.get(base_url + "/v2/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == f'Bearer realm="api", {METADATA_PARAM}'
    scope = httpx.post(base_url + "/v2/transfer", headers=token(issuer, acr="urn:mfa"))
    assert scope.status_code == 403
    assert scope.headers["www-authenticate"].endswith(METADATA_PARAM)


def test_the_resource_is_the_audience_of_issuers_that_name_none(
    base_url: str, issuer: LocalIssuer
) -> None:
    assert httpx.get(base_url + "/v2/orders", headers=token(issuer)).status_code == 200
    other = httpx.get(base_url + "/v2/orders", headers=token(issuer, audience="https://other"))
    assert other.json()["reason"] == "audience_mismatch"


def test_require_with_step_up_refuses_a_weak_or_old_login(
    base_url: str, issuer: LocalIssuer
) -> None:
    weak = httpx.post(base_url + "/v2/transfer", headers=token(issuer, scopes="pay", acr="urn:pwd"))
    assert weak.status_code == 401
    challenge = weak.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:mfa", max_age="300"' in challenge
    old = token(issuer, scopes="pay", acr="urn:mfa", auth_time=int(time.time()) - 1000)
    assert httpx.post(base_url + "/v2/transfer", headers=old).json()["reason"] == (
        "authentication_too_old"
    )


def test_require_with_step_up_accepts_a_strong_recent_login(
    base_url: str, issuer: LocalIssuer
) -> None:
    fresh = token(issuer, scopes="pay", acr="urn:mfa", auth_time=int(time.time()))
    answer = httpx.post(base_url + "/v2/transfer", headers=fresh)
    assert answer.status_code == 200
    assert answer.json() == {"acr": "urn:mfa"}


def test_protect_with_step_up_guards_a_blueprint(base_url: str, issuer: LocalIssuer) -> None:
    weak = httpx.get(base_url + "/v2/admin/users", headers=token(issuer, acr="urn:mfa"))
    assert weak.status_code == 401
    assert 'acr_values="urn:hwk"' in weak.headers["www-authenticate"]
    strong = httpx.get(base_url + "/v2/admin/users", headers=token(issuer, acr="urn:hwk"))
    assert strong.status_code == 200


def test_bad_step_up_options_fail_when_declared() -> None:
    with pytest.raises(ConfigurationError, match="acr_values"):
        JWKGuard().require(acr_values="urn:mfa")
    with pytest.raises(ConfigurationError, match="max_age"):
        JWKGuard().require(max_age=-5)
