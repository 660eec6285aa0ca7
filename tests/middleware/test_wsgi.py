"""``jwkguard.wsgi.JWKGuardMiddleware`` over real HTTP under waitress, in front of Falcon,
Bottle and a raw WSGI callable: the same RFC 6750 answers as every adapter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jwkguard import Validator

from ..helpers import raw_request
from .apps import STRETCHED_EXEMPTIONS, WSGI_APPS, raw_wsgi_app
from .conftest import WaitressServer


@pytest.fixture(scope="module", params=list(WSGI_APPS))
def base_url(request: pytest.FixtureRequest, validator: Validator) -> Iterator[str]:
    with WaitressServer(WSGI_APPS[request.param](validator)) as running:
        yield running.url


def test_a_valid_token_reaches_the_app_with_its_claims(base_url: str, mint: Any) -> None:
    answer = httpx.get(f"{base_url}/whoami", headers={"Authorization": f"Bearer {mint()}"})
    assert answer.status_code == 200
    assert answer.json() == {"subject": "user-123"}


def test_no_token_is_the_rfc6750_challenge(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/whoami")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="api"'
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "error": "unauthorized",
        "error_description": "An access token is required",
        "reason": "missing_token",
    }


def test_a_bad_token_is_invalid_token(base_url: str, mint: Any) -> None:
    forged = mint()[:-4] + "AAAA"
    answer = httpx.get(f"{base_url}/whoami", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_two_authorization_headers_are_refused(base_url: str, mint: Any) -> None:
    """WSGI joins repeated headers; the joined value is not one token."""
    token = mint()
    answer = httpx.get(
        f"{base_url}/whoami",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "first",
    ["Basic dXNlcjpwYXNz", "", "Bearer", "bearer abc"],
    ids=["basic", "empty", "bare", "lower"],
)
def test_a_bearer_token_after_another_authorization_header_is_refused(
    base_url: str, mint: Any, first: str
) -> None:
    """The server joins the two headers: a token after the comma is a second header, refused
    as under ASGI, not read as one header of another scheme (no token, or anonymous)."""
    answer = httpx.get(
        f"{base_url}/whoami",
        headers=[("Authorization", first), ("Authorization", f"Bearer {mint()}")],
    )
    assert answer.status_code == 400
    assert answer.json()["reason"] == "multiple_authorization_headers"


def test_two_authorization_headers_are_refused_on_an_optional_app(
    validator: Validator, mint: Any
) -> None:
    with WaitressServer(raw_wsgi_app(validator, optional=True)) as running:
        for first in ("Basic dXNlcjpwYXNz", ""):
            answer = httpx.get(
                f"{running.url}/whoami",
                headers=[("Authorization", first), ("Authorization", f"DPoP {mint()}")],
            )
            assert answer.status_code == 400
            assert answer.json()["reason"] == "multiple_authorization_headers"


@pytest.mark.parametrize("byte", ["\xa0", "\x85"], ids=["nbsp", "nel"])
def test_a_token_with_a_trailing_latin1_space_is_malformed(
    base_url: str, mint: Any, byte: str
) -> None:
    """obs-text after the token reaches the app: it is part of the value, not whitespace."""
    headers = {"Authorization": f"Bearer {mint()}{byte}"}
    answer = raw_request(base_url, "GET", "/whoami", headers)
    assert answer.status == 400


def test_a_query_token_is_refused_by_default(base_url: str, mint: Any) -> None:
    answer = httpx.get(f"{base_url}/whoami", params={"access_token": mint()})
    assert answer.status_code == 400
    assert answer.json()["reason"] == "token_in_query"


def test_exempt_paths_are_exact_or_subtrees(base_url: str) -> None:
    assert httpx.get(f"{base_url}/health").status_code == 200
    assert httpx.get(f"{base_url}/health/live").status_code == 200
    assert httpx.get(f"{base_url}/healthz").status_code == 401


@pytest.mark.parametrize("target", STRETCHED_EXEMPTIONS)
def test_an_exemption_cannot_be_stretched_to_a_protected_path(base_url: str, target: str) -> None:
    assert raw_request(base_url, "GET", target).status == 401


def test_a_cors_preflight_reaches_the_app(base_url: str) -> None:
    answer = httpx.options(
        f"{base_url}/whoami",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert answer.status_code in (200, 204)


def test_head_gets_the_refusal_without_a_body(base_url: str) -> None:
    answer = raw_request(base_url, "HEAD", "/whoami")
    assert answer.status == 401
    assert answer.getheader("WWW-Authenticate") == 'Bearer realm="api"'


def test_optional_lets_anonymous_requests_through(validator: Validator) -> None:
    with WaitressServer(raw_wsgi_app(validator, optional=True)) as running:
        anonymous = httpx.get(f"{running.url}/whoami")
        bad = httpx.get(f"{running.url}/whoami", headers={"Authorization": "Bearer x.y.z"})
    assert anonymous.json() == {"subject": "anonymous"}
    assert bad.status_code == 401
