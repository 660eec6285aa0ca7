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


# -- a token from the query string never lifts CSRF (ALLOW_QUERY_TOKEN) ----------------------

CSRF_SECRET = "abcdefghijklmnopqrstuvwxyz012345"  # a CSRF cookie secret: 32 alphanumerics


def _post_with_csrf(kind: str, path: str) -> Any:
    """A POST carrying the CSRF cookie and the matching header, as a same-site page sends."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient, Client

    headers = {"X-CSRFToken": CSRF_SECRET}
    if kind == "wsgi":
        client = Client(enforce_csrf_checks=True)
        client.cookies["csrftoken"] = CSRF_SECRET
        return client.post(path, headers=headers)
    aclient = AsyncClient(enforce_csrf_checks=True)
    aclient.cookies["csrftoken"] = CSRF_SECRET

    async def send() -> Any:
        # Django 4.2's AsyncClient.post is no coroutine function; asgiref warns on those.
        return await aclient.post(path, headers=headers)

    return async_to_sync(send)()


# Undecorated views (the middleware decides), token_required views (sync, async, class-based;
# CSRF-exempt for header tokens) and a DRF view (DRF views are always CSRF-exempt).
QUERY_TOKEN_VIEWS = ["/submit", "/required", "/arequired", "/cbv", "/drf/orders"]


def _query(issuer: LocalIssuer, path: str, **claims: Any) -> str:
    return f"{path}?access_token={issuer.mint(scopes=['orders:read'], **claims)}"


def _is_csrf_refusal(response: Any) -> bool:
    return response.status_code == 403 and b"CSRF" in response.content


@pytest.fixture(params=["optional", "protect"])
def query_tokens(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Any:
    settings = jwkguard_settings(issuer, MODE=request.param, ALLOW_QUERY_TOKEN=True)
    with override_settings(JWKGUARD=settings):
        yield


@pytest.mark.usefixtures("query_tokens")
@pytest.mark.parametrize(
    ("order", "path"),
    [
        (order, path)
        for order in ("before-csrf", "after-csrf", "no-middleware")
        for path in QUERY_TOKEN_VIEWS
        # Without the middleware an undecorated view reads no token at all.
        if not (order == "no-middleware" and path == "/submit")
    ],
)
def test_a_query_string_token_leaves_a_cross_site_post_subject_to_csrf(
    strict: Fetch, issuer: LocalIssuer, bearer: Any, path: str, order: str
) -> None:
    """A cross-site form can put any token in its action URL; only the header exempts."""
    middleware = {
        "before-csrf": MIDDLEWARE,
        "after-csrf": AFTER_CSRF,
        "no-middleware": [m for m in MIDDLEWARE if "jwkguard" not in m],
    }[order]
    with override_settings(MIDDLEWARE=middleware):
        forged = strict.post(_query(issuer, path, subject="attacker"))
        assert _is_csrf_refusal(forged), (forged.status_code, forged.content)
        # The same token passes with a valid CSRF token, and a GET is never a CSRF matter:
        # the refusal above is CSRF's, not the token's.
        checked = _post_with_csrf(strict.kind, _query(issuer, path))
        assert checked.status_code in (200, 201), checked.content
        assert strict.get(_query(issuer, path)).status_code == 200
        # A token in the Authorization header still exempts the request.
        header = strict.post(path, headers=bearer(scopes=["orders:read"]))
        assert header.status_code in (200, 201), header.content


@pytest.mark.usefixtures("query_tokens")
def test_an_attackers_query_token_cannot_write_into_a_victims_session(
    issuer: LocalIssuer,
) -> None:
    """The reported attack: the victim's browser sends its session cookie with the forgery."""
    from django.test import Client

    victim = get_user_model().objects.create_user("victim")
    try:
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(victim)
        forged = browser.post(_query(issuer, "/submit", subject="attacker"))
        assert _is_csrf_refusal(forged), (forged.status_code, forged.content)
    finally:
        victim.delete()
