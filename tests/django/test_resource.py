"""RFC 9728 metadata and RFC 9470 step-up in the Django adapter, over real HTTP.

Django's WSGI handler under waitress and its ASGI handler under uvicorn, both on 127.0.0.1:
the middleware serves the metadata document, every challenge names it, the resource is the
audience of issuers that name none, and ``token_required(acr_values=..., max_age=...)``
answers a weak or old login with ``insufficient_user_authentication``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from jwkguard.testing import LocalIssuer

from ..helpers import bearer_from
from ..middleware.conftest import WaitressServer
from ..servers import ASGIServer

RESOURCE = "https://api.example.com"
METADATA_PATH = "/.well-known/oauth-protected-resource"
METADATA_PARAM = f'resource_metadata="{RESOURCE}{METADATA_PATH}"'


def resource_settings(issuer: LocalIssuer) -> dict[str, Any]:
    return {
        # No AUDIENCES: the resource identifier is the audience (RFC 8707).
        "ISSUERS": [{"ISSUER": issuer.url, "JWKS": issuer.jwks()}],
        "ALGORITHMS": ["RS256"],
        "RESOURCE": {"resource": RESOURCE, "resource_name": "Orders"},
    }


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def base_url(request: pytest.FixtureRequest, django_issuer: LocalIssuer) -> Iterator[str]:
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler

    with override_settings(
        JWKGUARD=resource_settings(django_issuer),
        ROOT_URLCONF="tests.django.resource_urls",
        ALLOWED_HOSTS=["127.0.0.1"],
    ):
        server: Any = (
            WaitressServer(WSGIHandler()) if request.param == "wsgi" else ASGIServer(ASGIHandler())
        )
        with server as running:
            yield running.url


def token(issuer: LocalIssuer, **claims: Any) -> dict[str, str]:
    claims.setdefault("audience", RESOURCE)
    return bearer_from(issuer, **claims)


def test_the_middleware_serves_the_metadata_document(base_url: str, issuer: LocalIssuer) -> None:
    answer = httpx.get(base_url + METADATA_PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "resource": RESOURCE,
        "authorization_servers": [issuer.url],
        "bearer_methods_supported": ["header"],
        "resource_name": "Orders",
    }


def test_a_request_without_a_token_is_told_where_the_metadata_is(base_url: str) -> None:
    answer = httpx.get(base_url + "/orders")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == f'Bearer realm="api", {METADATA_PARAM}'


def test_the_resource_is_the_audience_of_issuers_that_name_none(
    base_url: str, issuer: LocalIssuer
) -> None:
    assert httpx.get(base_url + "/orders", headers=token(issuer)).status_code == 200
    other = httpx.get(base_url + "/orders", headers=token(issuer, audience="https://other"))
    assert other.status_code == 401
    assert other.json()["reason"] == "audience_mismatch"
    assert other.headers["www-authenticate"].endswith(METADATA_PARAM)


def test_a_step_up_view_refuses_a_weak_login_with_the_rfc9470_challenge(
    base_url: str, issuer: LocalIssuer
) -> None:
    answer = httpx.get(base_url + "/transfer", headers=token(issuer, acr="urn:pwd"))
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:hwk urn:mfa", max_age="300"' in challenge
    assert challenge.endswith(METADATA_PARAM)


def test_a_step_up_view_refuses_an_old_login(base_url: str, issuer: LocalIssuer) -> None:
    old = token(issuer, acr="urn:mfa", auth_time=int(time.time()) - 3600)
    answer = httpx.get(base_url + "/transfer", headers=old)
    assert answer.status_code == 401
    assert answer.json()["reason"] == "authentication_too_old"


def test_a_step_up_view_accepts_a_strong_recent_login(base_url: str, issuer: LocalIssuer) -> None:
    fresh = token(issuer, acr="urn:hwk", auth_time=int(time.time()))
    answer = httpx.get(base_url + "/transfer", headers=fresh)
    assert answer.status_code == 200
    assert answer.json() == {"sub": "user-123"}


def test_an_async_step_up_view_checks_scopes_then_acr(base_url: str, issuer: LocalIssuer) -> None:
    no_scope = httpx.get(base_url + "/atransfer", headers=token(issuer, acr="urn:mfa"))
    assert no_scope.status_code == 403
    weak = httpx.get(base_url + "/atransfer", headers=token(issuer, acr="urn:pwd", scopes="pay"))
    assert weak.json()["error"] == "insufficient_user_authentication"
    strong = httpx.get(base_url + "/atransfer", headers=token(issuer, acr="urn:mfa", scopes="pay"))
    assert strong.status_code == 200


def test_a_bad_resource_setting_is_improperly_configured(issuer: LocalIssuer) -> None:
    from jwkguard_django.conf import get_state

    bad = {**resource_settings(issuer), "RESOURCE": "http://x.example"}
    with override_settings(JWKGUARD=bad), pytest.raises(ImproperlyConfigured, match="RESOURCE"):
        get_state()


def test_a_bad_step_up_option_fails_when_the_view_is_decorated() -> None:
    from jwkguard_django.decorators import token_required

    with pytest.raises(TypeError, match="acr_values"):
        token_required(acr_values="urn:mfa")
