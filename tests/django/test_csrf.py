"""CSRF: requests authenticated by a valid bearer token are exempt; nothing else is."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from jwkguard.testing import LocalIssuer

from .conftest import MIDDLEWARE, Fetch, jwkguard_settings

AFTER_CSRF = [m for m in MIDDLEWARE if "jwkguard" not in m] + [
    "jwkguard_django.middleware.JWKGuardMiddleware"
]


@pytest.fixture(params=["wsgi", "asgi"])
def strict(request: pytest.FixtureRequest) -> Fetch:
    """A client that enforces CSRF checks like a browser-facing deployment."""
    return Fetch(request.param, enforce_csrf_checks=True)


@pytest.fixture
def optional_mode(issuer: LocalIssuer) -> Any:
    with override_settings(JWKGUARD=jwkguard_settings(issuer, MODE="optional")):
        yield


def test_post_with_a_valid_bearer_token_passes_csrf(
    strict: Fetch, optional_mode: None, bearer: Any
) -> None:
    response = strict.post("/submit", headers=bearer(subject="hana"))
    assert response.status_code == 200
    assert response.json()["sub"] == "hana"


def test_post_without_token_is_still_subject_to_csrf(strict: Fetch, optional_mode: None) -> None:
    response = strict.post("/submit")
    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_post_with_an_invalid_token_is_refused_with_401(strict: Fetch, optional_mode: None) -> None:
    response = strict.post("/submit", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_protect_mode_answers_401_before_csrf(strict: Fetch) -> None:
    response = strict.post("/submit")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_bearer_post_passes_csrf_wherever_the_middleware_is_listed(
    strict: Fetch, issuer: LocalIssuer, bearer: Any
) -> None:
    with override_settings(MIDDLEWARE=AFTER_CSRF):
        response = strict.post("/submit", headers=bearer(subject="ivan"))
    assert response.status_code == 200
    assert response.json()["sub"] == "ivan"


def test_token_required_view_accepts_bearer_posts_without_the_middleware(
    strict: Fetch, bearer: Any
) -> None:
    with override_settings(MIDDLEWARE=[m for m in MIDDLEWARE if "jwkguard" not in m]):
        response = strict.post("/cbv", headers=bearer(scopes=["orders:read"]))
        refused = strict.post("/cbv")
    assert response.status_code == 201
    assert refused.status_code == 401


def test_session_user_post_without_csrf_token_is_refused(
    issuer: LocalIssuer, optional_mode: None
) -> None:
    """The exemption is for bearer tokens only: cookie sessions keep their CSRF protection."""
    from django.test import Client

    user = get_user_model().objects.create_user("session-user")
    try:
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        assert client.get("/whoami").json()["username"] == "session-user"
        assert client.post("/submit").status_code == 403
    finally:
        user.delete()
