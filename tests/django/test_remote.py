"""Keys fetched from the issuer (JWKS_URI or discovery), and the 503 answer to an outage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from jwkguard.testing import LocalIssuer

from ..helpers import bearer_from
from .conftest import Fetch


@pytest.fixture
def remote_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


def remote_settings(issuer: LocalIssuer, **issuer_options: Any) -> dict[str, Any]:
    return {
        "ISSUERS": [{"ISSUER": issuer.url, "AUDIENCES": [issuer.audience], **issuer_options}],
        "ALGORITHMS": ["RS256"],
    }


def test_keys_from_jwks_uri(fetch: Fetch, remote_issuer: LocalIssuer) -> None:
    settings = remote_settings(remote_issuer, JWKS_URI=remote_issuer.jwks_uri)
    with override_settings(JWKGUARD=settings):
        response = fetch.get("/plain", headers=bearer_from(remote_issuer, subject="rémi"))
    assert response.status_code == 200
    assert response.json()["sub"] == "rémi"
    assert remote_issuer.requests["/jwks.json"] == 1


def test_keys_through_discovery(fetch: Fetch, remote_issuer: LocalIssuer) -> None:
    with override_settings(JWKGUARD=remote_settings(remote_issuer)):
        first = fetch.get("/plain", headers=bearer_from(remote_issuer))
        second = fetch.get("/required", headers=bearer_from(remote_issuer, scopes=["orders:read"]))
    assert (first.status_code, second.status_code) == (200, 200)
    assert remote_issuer.requests["/.well-known/openid-configuration"] == 1
    assert remote_issuer.requests["/jwks.json"] == 1


@pytest.mark.parametrize("path", ["/plain", "/arequired", "/drf/orders"])
def test_issuer_outage_answers_503_with_retry_after(
    fetch: Fetch, remote_issuer: LocalIssuer, path: str
) -> None:
    settings = remote_settings(remote_issuer, JWKS_URI=remote_issuer.jwks_uri)
    token = bearer_from(remote_issuer, scopes=["orders:read"])
    with override_settings(JWKGUARD=settings), remote_issuer.outage(503):
        response = fetch.get(path, headers=token)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "WWW-Authenticate" not in response
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["reason"] == "keys_unavailable"
