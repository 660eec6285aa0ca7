"""Django REST framework: JWKGuardAuthentication and HasScopes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from jwkguard.testing import LocalIssuer
from jwkguard_django.rest_framework import JWKGuardAuthentication

from .conftest import MIDDLEWARE, Fetch, jwkguard_settings
from .spy import PathSpy

MISSING = {
    "error": "unauthorized",
    "error_description": "An access token is required",
    "reason": "missing_token",
}


@pytest.fixture(params=["protect", "optional", "no-middleware"])
def layout(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Any:
    """DRF answers the same whether the middleware refused first, or DRF did."""
    if request.param == "no-middleware":
        overrides = override_settings(MIDDLEWARE=[m for m in MIDDLEWARE if "jwkguard" not in m])
    else:
        overrides = override_settings(JWKGUARD=jwkguard_settings(issuer, MODE=request.param))
    with overrides:
        yield request.param


def test_no_token_gives_401_with_the_bearer_challenge(fetch: Fetch, layout: str) -> None:
    response = fetch.get("/drf/orders")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == MISSING


def test_invalid_token_gives_401_invalid_token(fetch: Fetch, layout: str) -> None:
    response = fetch.get("/drf/orders", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')
    assert response.json()["error"] == "invalid_token"
    assert response.json()["reason"] == "malformed"


def test_missing_scope_gives_403_insufficient_scope(fetch: Fetch, layout: str, bearer: Any) -> None:
    response = fetch.get("/drf/orders", headers=bearer(scopes=["profile"]))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert 'scope="orders:read"' in response["WWW-Authenticate"]
    assert response.json()["error"] == "insufficient_scope"


def test_valid_token_with_scopes_reaches_the_view(fetch: Fetch, layout: str, bearer: Any) -> None:
    response = fetch.get("/drf/orders", headers=bearer(subject="gus", scopes=["orders:read"]))
    assert response.status_code == 200
    assert response.json() == {"sub": "gus", "user": "gus"}


def test_post_with_a_bearer_token_needs_no_csrf_token(
    layout: str, issuer: LocalIssuer, bearer: Any
) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/drf/orders", headers=bearer(scopes=["orders:read"]))
    assert response.status_code == 201


def test_is_authenticated_answers_401_not_403_thanks_to_authenticate_header(
    fetch: Fetch, issuer: LocalIssuer
) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        response = fetch.get("/drf/authenticated")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_authenticate_header_uses_the_configured_realm(issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, REALM="orders")):
        assert JWKGuardAuthentication().authenticate_header(None) == 'Bearer realm="orders"'  # type: ignore[arg-type]


def test_viewset_scopes_per_action(fetch: Fetch, layout: str, bearer: Any) -> None:
    reader = bearer(scopes=["orders:read"])
    assert fetch.get("/drf/viewset", headers=reader).status_code == 200
    assert fetch.post("/drf/viewset", headers=reader).status_code == 403
    writer = bearer(scopes=["orders:write"])
    assert fetch.post("/drf/viewset", headers=writer).status_code == 201


def test_viewset_action_without_an_entry_is_refused(fetch: Fetch, layout: str, bearer: Any) -> None:
    response = fetch.delete(
        "/drf/viewset/1", headers=bearer(scopes=["orders:read", "orders:write"])
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "method_not_covered"


def test_head_needs_the_scopes_of_get_whose_handler_it_runs(
    fetch: Fetch, layout: str, bearer: Any
) -> None:
    # Django answers HEAD with the GET handler (headers included): the "*" entry must not
    # open it to a token that GET refuses.
    pinger = bearer(scopes=["reports:ping"])
    refused = fetch("head", "/drf/reports", headers=pinger)
    assert refused.status_code == 403
    assert "X-Report-Rows" not in refused
    assert fetch("put", "/drf/reports", headers=pinger).status_code == 200
    reader = bearer(scopes=["reports:read"])
    answer = fetch("head", "/drf/reports", headers=reader)
    assert answer.status_code == 200
    assert answer["X-Report-Rows"] == "42"


def test_drf_reuses_the_middleware_result(issuer: LocalIssuer, bearer: Any) -> None:
    spy = PathSpy()
    with override_settings(JWKGUARD=jwkguard_settings(issuer, LIFECYCLE=spy)):
        response = Client().get("/drf/orders", headers=bearer(scopes=["orders:read"]))
    assert response.status_code == 200
    assert spy.sync_calls == 1
