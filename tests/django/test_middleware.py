"""JWKGuardMiddleware through Django's WSGI and ASGI handlers, in both modes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwkguard.testing import LocalIssuer, generate_key, mint_token

from .conftest import Fetch, jwkguard_settings
from .spy import PathSpy


def assert_missing_token(response: Any) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "unauthorized",
        "error_description": "An access token is required",
        "reason": "missing_token",
    }


def assert_invalid_token(response: Any, reason: str) -> None:
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token"')
    body = response.json()
    assert body["error"] == "invalid_token"
    assert body["reason"] == reason


def test_protect_mode_refuses_a_request_without_token(fetch: Fetch) -> None:
    assert_missing_token(fetch.get("/plain"))


def test_protect_mode_refuses_an_async_view_without_token(fetch: Fetch) -> None:
    assert_missing_token(fetch.get("/aplain"))


def test_valid_token_sets_claims_auth_and_user(fetch: Fetch, bearer: Any) -> None:
    response = fetch.get("/plain", headers=bearer(subject="alice"))
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "auth_is_claims": True, "user": "alice"}


def test_async_view_sees_the_claims(fetch: Fetch, bearer: Any) -> None:
    response = fetch.get("/aplain", headers=bearer(subject="bob"))
    assert response.status_code == 200
    assert response.json()["sub"] == "bob"


def test_token_signed_by_an_unknown_key_is_refused(fetch: Fetch, issuer: LocalIssuer) -> None:
    stranger = generate_key("RS256", kid=issuer.active_key.kid)
    token = issuer.mint(key=stranger)
    assert_invalid_token(
        fetch.get("/plain", headers={"Authorization": f"Bearer {token}"}), "bad_signature"
    )


def test_expired_token_is_refused_with_its_reason(fetch: Fetch, bearer: Any) -> None:
    response = fetch.get("/plain", headers=bearer(now=1_000_000_000))
    assert_invalid_token(response, "expired")
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="invalid_token", '
        'error_description="The access token has expired"'
    )


def test_token_from_an_untrusted_issuer_is_refused(fetch: Fetch, issuer: LocalIssuer) -> None:
    token = mint_token(
        issuer.active_key, issuer="https://evil.example.com/", audience=issuer.audience
    )
    assert_invalid_token(
        fetch.get("/plain", headers={"Authorization": f"Bearer {token}"}), "issuer_mismatch"
    )


def test_malformed_authorization_header_is_a_bad_request(fetch: Fetch) -> None:
    response = fetch.get("/plain", headers={"Authorization": "Bearer not a token"})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response["WWW-Authenticate"]
    assert response.json()["reason"] == "malformed_authorization_header"


def test_garbage_token_is_a_401_never_a_500(fetch: Fetch) -> None:
    for token in ("abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "x" * 20000):
        response = fetch.get("/plain", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token[:20]
        assert response.json()["error"] == "invalid_token"


def test_bearer_scheme_is_case_insensitive(fetch: Fetch, issuer: LocalIssuer) -> None:
    response = fetch.get("/plain", headers={"Authorization": f"bEaReR {issuer.mint(subject='z')}"})
    assert response.status_code == 200
    assert response.json()["sub"] == "z"


@given(header=st.text(max_size=60))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_authorization_header_gets_a_clean_answer(header: str) -> None:
    """Whatever the header holds, the answer is 400 or 401 with a JSON body, never a 500."""
    encoded = header.encode("utf-8").decode("latin-1")  # what a WSGI server would hand over
    response = Client().get("/plain", HTTP_AUTHORIZATION=encoded)
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_request", "invalid_token", "unauthorized")


def test_two_joined_authorization_headers_are_refused_whatever_their_order(
    fetch: Fetch, issuer: LocalIssuer
) -> None:
    # What the WSGI server (or Django's ASGI handler) makes of two headers: one joined value.
    token = issuer.mint()
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        for joined in (f"Basic dXNlcjpwYXNz, Bearer {token}", f",Bearer {token}"):
            response = fetch.get("/plain", headers={"Authorization": joined})
            assert response.status_code == 400
            assert response.json()["reason"] == "multiple_authorization_headers"


def test_other_authorization_schemes_count_as_no_token(fetch: Fetch) -> None:
    assert_missing_token(fetch.get("/plain", headers={"Authorization": "Basic dXNlcjpwYXNz"}))


def test_query_token_is_refused_by_default(fetch: Fetch, issuer: LocalIssuer) -> None:
    response = fetch.get(f"/plain?access_token={issuer.mint()}")
    assert response.status_code == 400
    assert response.json()["reason"] == "token_in_query"


def test_query_token_is_accepted_when_allowed(fetch: Fetch, issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, ALLOW_QUERY_TOKEN=True)):
        response = fetch.get(f"/plain?access_token={issuer.mint(subject='q')}")
    assert response.status_code == 200
    assert response.json()["sub"] == "q"


def test_exempt_paths_need_no_token_and_ignore_a_bad_one(fetch: Fetch) -> None:
    assert fetch.get("/health").status_code == 200
    assert fetch.get("/public/info").status_code == 200
    response = fetch.get("/health", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 200
    assert response.json()["sub"] is None


def test_exempt_paths_do_not_cover_lookalike_paths(fetch: Fetch) -> None:
    assert_missing_token(fetch.get("/healthcheck"))
    assert_missing_token(fetch.get("/publicity"))
    assert fetch.get("/public/info").status_code == 200


def test_an_options_request_does_not_run_a_function_view_without_a_token(fetch: Fetch) -> None:
    # Django runs a function view for every method: the OPTIONS exemption (CORS preflights)
    # must not serve its body, or run its side effects, to a client without a token.
    assert_missing_token(fetch("options", "/plain"))
    assert_missing_token(fetch("options", "/aplain"))
    assert_missing_token(fetch("options", "/plain", headers={"Origin": "https://evil.example"}))


def test_an_options_request_to_a_function_view_with_a_token_runs_it(
    fetch: Fetch, bearer: Any
) -> None:
    response = fetch("options", "/plain", headers=bearer(subject="alice"))
    assert response.status_code == 200
    assert response.json()["sub"] == "alice"


def test_an_options_request_to_a_class_based_view_is_answered_by_django(fetch: Fetch) -> None:
    # View.options answers with the allowed methods only: a preflight still needs no token.
    response = fetch("options", "/cbv-write")
    assert response.status_code == 200
    assert response["Allow"] == "POST, OPTIONS"
    assert response.content == b""


def test_an_options_request_to_an_exempt_function_view_needs_no_token(fetch: Fetch) -> None:
    assert fetch("options", "/health").status_code == 200
    assert fetch("options", "/exempt").status_code == 200


def test_options_to_a_function_view_passes_when_the_mode_is_optional(
    fetch: Fetch, issuer: LocalIssuer
) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        assert fetch("options", "/plain").status_code == 200


def test_unknown_path_is_still_a_404(fetch: Fetch) -> None:
    assert fetch.get("/nowhere").status_code == 404


def test_optional_mode_lets_anonymous_requests_through(fetch: Fetch, issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        response = fetch.get("/plain")
    assert response.status_code == 200
    assert response.json() == {"sub": None, "auth_is_claims": True, "user": None}


def test_optional_mode_authenticates_a_token_when_present(
    fetch: Fetch, issuer: LocalIssuer, bearer: Any
) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        response = fetch.get("/plain", headers=bearer(subject="carol"))
    assert response.json()["sub"] == "carol"


def test_optional_mode_still_refuses_an_invalid_token(fetch: Fetch, issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        response = fetch.get("/plain", headers={"Authorization": "Bearer a.b.c"})
    assert_invalid_token(response, "malformed")


def test_required_scopes_setting_applies_to_every_token(fetch: Fetch, issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, REQUIRED_SCOPES=["api"])):
        refused = fetch.get("/plain", headers={"Authorization": f"Bearer {issuer.mint()}"})
        allowed = fetch.get(
            "/plain", headers={"Authorization": f"Bearer {issuer.mint(scopes=['api'])}"}
        )
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused["WWW-Authenticate"]
    assert 'scope="api"' in refused["WWW-Authenticate"]
    assert allowed.status_code == 200


def test_wsgi_requests_use_the_sync_validator(issuer: LocalIssuer, bearer: Any) -> None:
    spy = PathSpy()
    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE=spy)):
        response = Client().get("/plain", headers=bearer())
    assert response.status_code == 200
    assert (spy.sync_calls, spy.async_calls) == (1, 0)


@pytest.mark.anyio
async def test_asgi_requests_use_the_async_validator(issuer: LocalIssuer, bearer: Any) -> None:
    spy = PathSpy()
    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE=spy)):
        plain = await AsyncClient().get("/plain", headers=bearer())
        decorated = await AsyncClient().get("/arequired", headers=bearer(scopes=["orders:read"]))
    assert (plain.status_code, decorated.status_code) == (200, 200)
    assert (spy.sync_calls, spy.async_calls) == (0, 2)


@pytest.mark.anyio
async def test_asgi_with_a_sync_only_middleware_below_falls_back_to_sync(
    issuer: LocalIssuer, bearer: Any
) -> None:
    spy = PathSpy()
    middleware = [
        "jwkguard_django.middleware.JWKGuardMiddleware",
        "tests.django.project.sync_only.SyncOnlyMiddleware",
    ]
    with override_settings(
        JWKGUARD=jwkguard_settings(issuer, LIFECYCLE=spy), MIDDLEWARE=middleware
    ):
        response = await AsyncClient().get("/plain", headers=bearer(subject="dora"))
    assert response.status_code == 200
    assert json.loads(response.content)["sub"] == "dora"
    assert (spy.sync_calls, spy.async_calls) == (1, 0)


def test_token_is_validated_once_per_request(issuer: LocalIssuer, bearer: Any) -> None:
    spy = PathSpy()
    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE=spy, MODE="optional")):
        response = Client().get("/required", headers=bearer(scopes=["orders:read"]))
    assert response.status_code == 200
    assert spy.sync_calls == 1
