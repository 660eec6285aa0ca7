"""The ``require`` decorator: tokens, scopes, optional auth, async views, the claims proxy."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import pytest
from flask import Flask, g

from jwkguard import Claims, ConfigurationError, Validator
from jwkguard.testing import LocalIssuer
from jwkguard_flask import JWKGuard, current_claims, get_claims
from jwkguard_flask._request import CLAIMS_ATTRIBUTE

from ..helpers import bearer


class CountingValidator(Validator):
    """A real validator that counts how often it is asked."""

    calls = 0

    def validate(self, token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
        self.calls += 1
        return super().validate(token, scopes=scopes)


@pytest.fixture
def guard(blank_app: Flask) -> JWKGuard:
    return JWKGuard(blank_app)


def test_valid_token_reaches_the_view_with_its_claims(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/me")
    @guard.require
    def me() -> dict[str, Any]:
        return {"sub": current_claims.subject, "kid": current_claims.key_id}

    answer = blank_app.test_client().get("/me", headers=bearer(issuer.mint(subject="ada")))
    assert answer.status_code == 200
    assert answer.json == {"sub": "ada", "kid": issuer.active_key.kid}


def test_missing_token_is_challenged_without_running_the_view(
    blank_app: Flask, guard: JWKGuard
) -> None:
    ran: list[bool] = []

    @blank_app.get("/me")
    @guard.require()
    def me() -> str:
        ran.append(True)
        return "never"

    answer = blank_app.test_client().get("/me")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert answer.json["reason"] == "missing_token"
    assert ran == []


def test_granted_scopes_reach_the_view(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/orders")
    @guard.require(scopes=["orders:read", "orders:list"])
    def orders() -> dict[str, Any]:
        return {"scopes": sorted(current_claims.scopes)}

    token = issuer.mint(scopes=["orders:read", "orders:list", "profile"])
    answer = blank_app.test_client().get("/orders", headers=bearer(token))
    assert answer.json == {"scopes": ["orders:list", "orders:read", "profile"]}


def test_missing_scope_gets_403_naming_the_required_scopes(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/orders")
    @guard.require(scopes=["orders:read", "orders:list"])
    def orders() -> str:
        return "never"

    token = issuer.mint(scopes=["orders:read"])
    answer = blank_app.test_client().get("/orders", headers=bearer(token))
    assert answer.status_code == 403
    assert answer.json["error"] == "insufficient_scope"
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="insufficient_scope"')
    assert challenge.endswith('scope="orders:list orders:read"')


def test_decorator_keeps_the_views_signature_and_metadata(guard: JWKGuard) -> None:
    def view(order_id: int, *, verbose: bool = False) -> dict[str, int]:
        """Docstring of the view."""
        return {"id": order_id}

    for decorated in (guard.require(view), guard.require(scopes=["a"])(view)):
        assert inspect.signature(decorated) == inspect.signature(view)
        assert decorated.__name__ == "view"
        assert decorated.__doc__ == "Docstring of the view."
        assert decorated.__wrapped__ is view  # type: ignore[attr-defined]


def test_url_parameters_reach_the_view(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/orders/<int:order_id>/<name>")
    @guard.require
    def order(order_id: int, name: str) -> dict[str, Any]:
        return {"id": order_id, "name": name}

    answer = blank_app.test_client().get("/orders/7/tea", headers=bearer(issuer.mint()))
    assert answer.json == {"id": 7, "name": "tea"}


def test_scopes_given_as_one_string_are_refused(guard: JWKGuard) -> None:
    with pytest.raises(ConfigurationError, match="scopes must be a list"):
        guard.require(scopes="orders:read")


def test_optional_auth_runs_the_view_without_a_token(blank_app: Flask, guard: JWKGuard) -> None:
    @blank_app.get("/greeting")
    @guard.require(optional=True, scopes=["profile"])
    def greeting() -> dict[str, Any]:
        return {"claims": get_claims(), "truthy": bool(current_claims)}

    answer = blank_app.test_client().get("/greeting")
    assert answer.status_code == 200
    assert answer.json == {"claims": None, "truthy": False}


def test_optional_auth_gives_the_claims_of_a_valid_token(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/greeting")
    @guard.require(optional=True)
    def greeting() -> dict[str, Any]:
        return {"sub": current_claims.subject if current_claims else None}

    answer = blank_app.test_client().get("/greeting", headers=bearer(issuer.mint(subject="ada")))
    assert answer.json == {"sub": "ada"}


def test_optional_auth_still_refuses_a_bad_token(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/greeting")
    @guard.require(optional=True)
    def greeting() -> str:
        return "never"

    expired = issuer.mint(lifetime=-120)
    answer = blank_app.test_client().get("/greeting", headers=bearer(expired))
    assert answer.status_code == 401
    assert answer.json["reason"] == "expired"


def test_async_view_runs_with_the_claims(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/async")
    @guard.require(scopes=["orders:read"])
    async def view() -> dict[str, Any]:
        return {"sub": current_claims.subject, "scopes": sorted(current_claims.scopes)}

    client = blank_app.test_client()
    answer = client.get("/async", headers=bearer(issuer.mint(scopes=["orders:read"])))
    assert answer.json == {"sub": "user-123", "scopes": ["orders:read"]}
    assert client.get("/async").status_code == 401
    assert client.get("/async", headers=bearer(issuer.mint())).status_code == 403


def test_current_claims_refuses_to_answer_without_verified_claims(blank_app: Flask) -> None:
    JWKGuard(blank_app)

    @blank_app.get("/open")
    def open_view() -> dict[str, Any]:
        with pytest.raises(RuntimeError, match="this request has no verified claims"):
            _ = current_claims.subject
        return {"truthy": bool(current_claims), "claims": get_claims()}

    assert blank_app.test_client().get("/open").json == {"truthy": False, "claims": None}


def test_claims_live_on_g_under_a_namespaced_attribute(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    seen: list[object] = []

    @blank_app.get("/me")
    @guard.require
    def me() -> str:
        seen.append(getattr(g, CLAIMS_ATTRIBUTE))
        seen.append(get_claims())
        return "ok"

    blank_app.test_client().get("/me", headers=bearer(issuer.mint()))
    assert isinstance(seen[0], Claims)
    assert seen[1] is seen[0]
    assert CLAIMS_ATTRIBUTE.startswith("_jwkguard")


def test_claims_do_not_outlive_their_request_in_a_shared_app_context(
    blank_app: Flask, guard: JWKGuard, issuer: LocalIssuer
) -> None:
    @blank_app.get("/me")
    @guard.require
    def me() -> str:
        return "ok"

    client = blank_app.test_client()
    # The test client reuses an app context that is already pushed, and with it `g`.
    with blank_app.app_context():
        assert client.get("/me", headers=bearer(issuer.mint())).status_code == 200
        assert client.get("/me").status_code == 401
        assert get_claims() is None


def test_stacked_decorators_validate_once_and_check_every_scope(
    issuer: LocalIssuer,
) -> None:
    validator = CountingValidator(
        issuers=[issuer.issuer_config(jwks=issuer.jwks())], algorithms=[issuer.alg]
    )
    app = Flask(__name__)
    guard = JWKGuard(app, validator=validator)

    @app.get("/both")
    @guard.require(scopes=["a"])
    @guard.require(scopes=["b"])
    def both() -> str:
        return "ok"

    client = app.test_client()
    assert client.get("/both", headers=bearer(issuer.mint(scopes=["a", "b"]))).status_code == 200
    assert validator.calls == 1
    answer = client.get("/both", headers=bearer(issuer.mint(scopes=["a"])))
    assert answer.status_code == 403
    assert answer.headers["WWW-Authenticate"].endswith('scope="b"')


def test_query_token_is_refused_unless_allowed(
    settings: dict[str, Any], issuer: LocalIssuer
) -> None:
    answers = []
    for allowed in (False, True):
        app = Flask(__name__)
        app.config.update(settings, JWKGUARD_ALLOW_QUERY_TOKEN=allowed)
        guard = JWKGuard(app)

        @app.get("/me")
        @guard.require
        def me() -> str:
            return current_claims.subject or ""

        answers.append(app.test_client().get("/me", query_string={"access_token": issuer.mint()}))
    refused, accepted = answers
    assert refused.status_code == 400
    assert refused.json["reason"] == "token_in_query"
    assert accepted.status_code == 200
    assert accepted.text == "user-123"
