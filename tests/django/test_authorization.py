"""Roles, any-of scopes and per-route issuers/audiences in Django: ``token_required`` on sync
and async views (through the sync and async handlers) and DRF's ``HasScopes`` view attributes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from django.test import override_settings

from jwkguard.testing import LocalIssuer

from .conftest import Fetch, jwkguard_settings


@pytest.fixture(scope="module")
def partner() -> Iterator[LocalIssuer]:
    with LocalIssuer(path="/partner") as local:
        yield local


@pytest.fixture(autouse=True)
def configured(django_issuer: LocalIssuer, partner: LocalIssuer) -> Iterator[None]:
    settings = jwkguard_settings(django_issuer)
    settings["ISSUERS"] = [
        {"ISSUER": local.url, "AUDIENCES": [local.audience, "https://admin"], "JWKS": local.jwks()}
        for local in (django_issuer, partner)
    ]
    from . import authorization_urls  # imports DRF: only once Django is configured

    authorization_urls.CORP = django_issuer.url
    with override_settings(JWKGUARD=settings, ROOT_URLCONF="tests.django.authorization_urls"):
        yield


Mint = Callable[..., dict[str, str]]


def test_token_required_roles_and_any_scopes(fetch: Fetch, bearer: Mint) -> None:
    ok = fetch.get("/admin", headers=bearer(roles=["admin"], scopes="b"))
    assert ok.status_code == 200
    assert ok.json() == {"roles": ["admin"]}
    no_role = fetch.get("/admin", headers=bearer(roles=["user"], scopes="a"))
    assert (no_role.status_code, no_role.json()["reason"]) == (403, "insufficient_role")
    assert 'error="insufficient_scope"' in no_role.headers["WWW-Authenticate"]
    no_scope = fetch.get("/admin", headers=bearer(roles=["admin"], scopes="c"))
    assert (no_scope.status_code, no_scope.json()["reason"]) == (403, "insufficient_scope")


def test_an_async_view_narrows_the_audience_and_takes_any_role(fetch: Fetch, bearer: Mint) -> None:
    api = fetch.get("/support", headers=bearer(roles=["support"]))
    assert (api.status_code, api.json()["reason"]) == (401, "audience_not_accepted")
    admin = fetch.get("/support", headers=bearer(roles=["support"], audience="https://admin"))
    assert admin.status_code == 200


def test_a_view_narrows_the_issuer(fetch: Fetch, bearer: Mint, partner: LocalIssuer) -> None:
    foreign = fetch.get("/corp", headers={"Authorization": f"Bearer {partner.mint()}"})
    assert (foreign.status_code, foreign.json()["reason"]) == (401, "issuer_not_accepted")
    assert fetch.get("/corp", headers=bearer()).status_code == 200


def test_drf_has_scopes_reads_required_roles(fetch: Fetch, bearer: Mint) -> None:
    ok = fetch.get("/drf/reports", headers=bearer(scopes="reports", roles=["analyst"]))
    assert ok.status_code == 200
    assert ok.json() == {"roles": ["analyst"]}
    refused = fetch.get("/drf/reports", headers=bearer(scopes="reports", roles=["intern"]))
    assert (refused.status_code, refused.json()["reason"]) == (403, "insufficient_role")


def test_drf_has_scopes_demands_the_views_step_up(fetch: Fetch, bearer: Mint) -> None:
    now = int(time.time())
    weak = fetch.get("/drf/transfer", headers=bearer(scopes="pay", acr="urn:pwd", auth_time=now))
    assert weak.status_code == 401
    assert weak.json()["reason"] == "acr_not_allowed"
    challenge = weak.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:hwk urn:mfa", max_age="300"' in challenge
    old = bearer(scopes="pay", acr="urn:mfa", auth_time=now - 3600)
    stale = fetch.get("/drf/transfer", headers=old)
    assert (stale.status_code, stale.json()["reason"]) == (401, "authentication_too_old")
    ok = fetch.get("/drf/transfer", headers=bearer(scopes="pay", acr="urn:mfa", auth_time=now))
    assert (ok.status_code, ok.json()) == (200, {"acr": "urn:mfa"})
    no_scope = fetch.get("/drf/transfer", headers=bearer(acr="urn:mfa", auth_time=now))
    assert (no_scope.status_code, no_scope.json()["error"]) == (403, "insufficient_scope")
