"""``jwkguard serve`` with RFC 9728 metadata and RFC 9470 step-up rules, over real HTTP.

The forward-auth app runs under uvicorn on 127.0.0.1 and is asked as nginx asks it
(``X-Original-URI``): the document at the well-known path, ``resource_metadata`` in every
challenge, per-route ``acr_values`` / ``max_age``, the resource as the default audience.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jwkguard._forward_auth import ForwardAuthApp, parse_config
from jwkguard.errors import ConfigurationError
from jwkguard.testing import LocalIssuer

from ..servers import ASGIServer

RESOURCE = "https://api.example.com/v1"
METADATA_PATH = "/.well-known/oauth-protected-resource/v1"
METADATA_PARAM = f'resource_metadata="https://api.example.com{METADATA_PATH}"'


def document(issuer: LocalIssuer, **extra: Any) -> dict[str, Any]:
    return {
        "resource": {"resource": RESOURCE, "scopes_supported": ["orders:read"]},
        "server": {"gateway": "nginx"},
        "validator": {
            "algorithms": ["RS256"],
            # No audiences: the resource identifier is the audience (RFC 8707).
            "issuers": [{"issuer": issuer.url, "jwks": issuer.jwks()}],
        },
        "routes": [
            {"path": "/v1/transfers", "scopes": ["pay"], "acr_values": ["urn:mfa"], "max_age": 300},
            {"path": "/v1/orders", "scopes": ["orders:read"]},
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, LocalIssuer]]:
    with LocalIssuer() as issuer:
        app = ForwardAuthApp(parse_config(document(issuer)))
        with ASGIServer(app, lifespan="on") as server:
            yield server.url, issuer


def ask(url: str, uri: str, token: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {
        "X-Original-URI": uri,
        "X-Original-Method": method,
        "X-Forwarded-Host": "api.example.com",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{url}/auth", headers=headers)


def test_serve_answers_the_metadata_document_at_its_well_known_path(
    served: tuple[str, LocalIssuer],
) -> None:
    url, issuer = served
    answer = httpx.get(url + METADATA_PATH)
    assert answer.status_code == 200
    assert answer.json() == {
        "resource": RESOURCE,
        "authorization_servers": [issuer.url],
        "scopes_supported": ["orders:read"],
        "bearer_methods_supported": ["header"],
    }


def test_the_gateway_may_let_the_metadata_path_through_without_a_token(
    served: tuple[str, LocalIssuer],
) -> None:
    assert ask(served[0], METADATA_PATH).status_code == 200
    assert ask(served[0], METADATA_PATH, method="POST").status_code == 401


def test_refusals_carry_resource_metadata(served: tuple[str, LocalIssuer]) -> None:
    url, issuer = served
    missing = ask(url, "/v1/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == f'Bearer realm="api", {METADATA_PARAM}'
    scoped = ask(url, "/v1/orders", issuer.mint(audience=RESOURCE, scopes="other"))
    assert scoped.status_code == 403
    assert scoped.headers["www-authenticate"].endswith(METADATA_PARAM)


def test_the_resource_is_the_default_audience(served: tuple[str, LocalIssuer]) -> None:
    url, issuer = served
    assert ask(url, "/v1/orders", issuer.mint(audience=RESOURCE, scopes="orders:read")).is_success
    wrong = ask(url, "/v1/orders", issuer.mint(audience="https://other", scopes="orders:read"))
    assert wrong.status_code == 401
    assert wrong.json()["reason"] == "audience_mismatch"


def test_a_step_up_rule_refuses_a_weak_login(served: tuple[str, LocalIssuer]) -> None:
    url, issuer = served
    token = issuer.mint(audience=RESOURCE, scopes="pay", acr="urn:pwd", auth_time=int(time.time()))
    answer = ask(url, "/v1/transfers/1", token)
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:mfa", max_age="300"' in challenge
    assert challenge.endswith(METADATA_PARAM)


def test_a_step_up_rule_passes_a_strong_recent_login(served: tuple[str, LocalIssuer]) -> None:
    url, issuer = served
    token = issuer.mint(audience=RESOURCE, scopes="pay", acr="urn:mfa", auth_time=int(time.time()))
    answer = ask(url, "/v1/transfers/1", token)
    assert answer.status_code == 200
    assert answer.headers["x-auth-subject"] == "user-123"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"path": "/a", "acr_values": "urn:mfa"}, "acr_values"),
        ({"path": "/a", "max_age": "5m"}, "max_age"),
        ({"path": "/a", "anonymous": True, "max_age": 5}, "step-up"),
    ],
)
def test_bad_step_up_rules_fail_at_start_up(route: dict[str, Any], message: str) -> None:
    with LocalIssuer() as issuer, pytest.raises(ConfigurationError, match=message):
        parse_config(document(issuer, routes=[route]))


def test_a_resource_that_is_not_https_fails_at_start_up() -> None:
    with LocalIssuer() as issuer, pytest.raises(ConfigurationError, match="resource"):
        parse_config(document(issuer, resource="http://api.example.com"))
