"""@typed_claims(Model): the view gets a dataclass; a bad custom claim is 401 invalid_token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from jwkguard.typed import KeycloakClaims
from jwkguard_django.decorators import token_required
from jwkguard_django.typed import typed_claims


@dataclass(frozen=True)
class Tenant:
    tenant: str
    level: int = 0


@token_required
@typed_claims(Tenant)
def tenant_view(request: HttpRequest, claims: Tenant) -> JsonResponse:
    return JsonResponse({"tenant": claims.tenant, "level": claims.level})


@token_required
@typed_claims(Tenant)
async def atenant_view(request: HttpRequest, claims: Tenant) -> JsonResponse:
    return JsonResponse({"tenant": claims.tenant})


@token_required
@typed_claims(KeycloakClaims, argument="user")
def roles_view(request: HttpRequest, user: KeycloakClaims) -> JsonResponse:
    return JsonResponse({"admin": user.has_role("admin")})


urlpatterns = [
    path("tenant", tenant_view),
    path("atenant", atenant_view),
    path("roles", roles_view),
]

pytestmark = pytest.mark.usefixtures("_urls")


@pytest.fixture
def _urls() -> object:
    with override_settings(ROOT_URLCONF=__name__):
        yield


Bearer = Callable[..., dict[str, str]]


@pytest.mark.parametrize("route", ["/tenant", "/atenant"])
def test_the_view_gets_the_model(bearer: Bearer, route: str) -> None:
    answer = Client().get(route, headers=bearer(tenant="t1"))
    assert answer.status_code == 200
    assert answer.json()["tenant"] == "t1"


@pytest.mark.parametrize("route", ["/tenant", "/atenant"])
def test_a_missing_claim_is_401_invalid_token(bearer: Bearer, route: str) -> None:
    refused = Client().get(route, headers=bearer())
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert refused.json()["reason"] == "invalid_claim"
    assert "tenant" in refused.json()["error_description"]


def test_a_claim_of_the_wrong_type_is_401(bearer: Bearer) -> None:
    refused = Client().get("/tenant", headers=bearer(tenant="t1", level="high"))
    assert refused.status_code == 401


def test_a_provider_model_under_another_name(bearer: Bearer) -> None:
    answer = Client().get("/roles", headers=bearer(realm_access={"roles": ["admin"]}))
    assert answer.json() == {"admin": True}


def test_no_token_is_still_the_plain_401(bearer: Bearer) -> None:
    refused = Client().get("/tenant")
    assert refused.status_code == 401
    assert "error=" not in refused.headers["WWW-Authenticate"]
