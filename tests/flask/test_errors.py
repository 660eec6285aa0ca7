"""Refusals follow RFC 6750 section 3, through error handlers that apps can replace."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Blueprint, Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from jwkguard.testing import LocalIssuer, generate_key, mint_token, sign_compact
from jwkguard_flask import BearerError, JWKGuard, current_claims

from ..helpers import bearer


@pytest.fixture
def guarded(blank_app: Flask) -> Flask:
    guard = JWKGuard(blank_app)

    @blank_app.get("/orders")
    @guard.require(scopes=["orders:read"])
    def orders() -> dict[str, Any]:
        return {"sub": current_claims.subject}

    return blank_app


def _forged(issuer: LocalIssuer) -> str:
    # Signed by a key the issuer never published, under the published key's kid.
    stranger = generate_key(issuer.alg, kid=issuer.active_key.kid)
    return mint_token(stranger, issuer=issuer.url, audience=issuer.audience)


def _refusals(issuer: LocalIssuer) -> list[tuple[str, dict[str, Any], int, str, str]]:
    """(case, request options, status, error, reason)."""
    token = issuer.mint(scopes=["orders:read"])
    return [
        (
            "expired",
            {"headers": bearer(issuer.mint(lifetime=-60))},
            401,
            "invalid_token",
            "expired",
        ),
        (
            "wrong audience",
            {"headers": bearer(issuer.mint(audience="https://other.example.com"))},
            401,
            "invalid_token",
            "audience_mismatch",
        ),
        (
            "bad signature",
            {"headers": bearer(_forged(issuer))},
            401,
            "invalid_token",
            "bad_signature",
        ),
        (
            "unknown key",
            {"headers": bearer(issuer.mint(key=generate_key(issuer.alg)))},
            401,
            "invalid_token",
            "unknown_key",
        ),
        ("not a JWS", {"headers": bearer("abc.def.ghi")}, 401, "invalid_token", "malformed"),
        (
            "alg none",
            {"headers": bearer(sign_compact({"alg": "none"}, {"iss": issuer.url}))},
            401,
            "invalid_token",
            "algorithm_not_allowed",
        ),
        (
            "header and query",
            {"headers": bearer(token), "query_string": {"access_token": token}},
            400,
            "invalid_request",
            "token_in_query",
        ),
        (
            "query twice",
            {"query_string": [("access_token", token), ("access_token", token)]},
            400,
            "invalid_request",
            "multiple_tokens",
        ),
        (
            "malformed header",
            {"headers": {"Authorization": "Bearer two words"}},
            400,
            "invalid_request",
            "malformed_authorization_header",
        ),
        (
            "two headers",
            {"headers": [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")]},
            400,
            "invalid_request",
            "multiple_authorization_headers",
        ),
        (
            "insufficient scope",
            {"headers": bearer(issuer.mint(scopes=["profile"]))},
            403,
            "insufficient_scope",
            "insufficient_scope",
        ),
    ]


def test_each_refusal_gets_its_status_error_and_challenge(
    guarded: Flask, issuer: LocalIssuer
) -> None:
    client = guarded.test_client()
    for case, options, status, error, reason in _refusals(issuer):
        answer = client.get("/orders", **options)
        assert (answer.status_code, answer.json) == (
            status,
            {
                "error": error,
                "error_description": answer.json["error_description"],
                "reason": reason,
            },
        ), case
        assert answer.mimetype == "application/json", case
        challenge = answer.headers["WWW-Authenticate"]
        description = answer.json["error_description"]
        assert challenge.startswith(
            f'Bearer realm="api", error="{error}", error_description="{description}"'
        ), case


def test_descriptions_never_echo_the_token(guarded: Flask, issuer: LocalIssuer) -> None:
    jws_like = re.compile(r"[\w-]{10,}\.[\w-]{10,}\.")
    client = guarded.test_client()
    for case, options, *_ in _refusals(issuer):
        answer = client.get("/orders", **options)
        assert not jws_like.search(answer.text), case
        assert not jws_like.search(answer.headers["WWW-Authenticate"]), case


def test_missing_token_challenge_has_no_error_code(guarded: Flask) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": ""}):
        answer = guarded.test_client().get("/orders", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'
        assert answer.json == {
            "error": "unauthorized",
            "error_description": "An access token is required",
            "reason": "missing_token",
        }


def test_realm_comes_from_config(settings: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(settings, JWKGUARD_REALM="orders")
    guard = JWKGuard(app)

    @app.get("/orders")
    @guard.require
    def orders() -> str:
        return "never"

    answer = app.test_client().get("/orders", headers=bearer("abc.def.ghi"))
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="orders", error=')


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    credentials=st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300
    )
)
def test_any_authorization_header_gets_an_answer_not_a_crash(
    guarded: Flask, credentials: str
) -> None:
    # TESTING propagates exceptions, so a crash would fail here rather than become a 500.
    for value in (credentials, f"Bearer {credentials}", f"bearer {credentials.strip()}"):
        answer = guarded.test_client().get("/orders", headers={"Authorization": value})
        assert answer.status_code in (400, 401)
        assert json.loads(answer.data)["reason"]


def test_hostile_tokens_get_an_answer_not_a_crash(guarded: Flask, issuer: LocalIssuer) -> None:
    header = {"alg": issuer.alg, "kid": issuer.active_key.kid}
    hostile = [
        "a" * 100_000,
        "." * 3,
        sign_compact(b"[1,2]", {"iss": issuer.url}),
        sign_compact(header, b'{"iss": "' + issuer.url.encode() + b'", "exp": 1e999}'),
        sign_compact({**header, "crit": ["exp"]}, {"iss": issuer.url}),
        sign_compact(header, {"iss": issuer.url, "aud": [[]]}, key=issuer.active_key),
        "eyJhbGciOiJSUzI1NiJ9.e30.e30.e30.e30",
    ]
    for token in hostile:
        answer = guarded.test_client().get("/orders", headers=bearer(token))
        assert answer.status_code == 401, token[:40]
        assert answer.json["error"] == "invalid_token"


def test_app_handler_registered_after_init_app_replaces_the_default(
    guarded: Flask, issuer: LocalIssuer
) -> None:
    @guarded.errorhandler(BearerError)
    def custom(error: BearerError) -> tuple[dict[str, Any], int, dict[str, str]]:
        return {"problem": error.reason}, error.code or 500, error.answer.headers

    answer = guarded.test_client().get("/orders", headers=bearer(issuer.mint(lifetime=-60)))
    assert answer.status_code == 401
    assert answer.json == {"problem": "expired"}
    assert answer.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )


def test_app_handler_registered_before_init_app_is_kept(settings: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(settings)

    @app.errorhandler(BearerError)
    def custom(error: BearerError) -> tuple[str, int]:
        return f"custom {error.reason}", 418

    guard = JWKGuard(app)

    @app.get("/me")
    @guard.require
    def me() -> str:
        return "never"

    answer = app.test_client().get("/me")
    assert (answer.status_code, answer.text) == (418, "custom missing_token")


def test_blueprint_handler_overrides_for_its_own_routes_only(settings: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(settings)
    guard = JWKGuard(app)
    legacy = Blueprint("legacy", __name__, url_prefix="/legacy")

    @legacy.errorhandler(BearerError)
    def legacy_error(error: BearerError) -> tuple[str, int]:
        return "login required", error.code or 500

    @legacy.get("/me")
    @guard.require
    def legacy_me() -> str:
        return "never"

    @app.get("/me")
    @guard.require
    def me() -> str:
        return "never"

    app.register_blueprint(legacy)
    client = app.test_client()
    assert (client.get("/legacy/me").status_code, client.get("/legacy/me").text) == (
        401,
        "login required",
    )
    assert client.get("/me").json["reason"] == "missing_token"


def test_catch_all_http_handler_does_not_swallow_the_challenge(guarded: Flask) -> None:
    @guarded.errorhandler(HTTPException)
    def html_errors(error: HTTPException) -> tuple[str, int]:
        return "<h1>error</h1>", error.code or 500

    answer = guarded.test_client().get("/orders")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_refusal_still_answers_if_the_handler_is_removed(guarded: Flask) -> None:
    del guarded.error_handler_spec[None][None][BearerError]
    answer = guarded.test_client().get("/orders", headers=bearer("abc.def.ghi"))
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_token"
    assert answer.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )
