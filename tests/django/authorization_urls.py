"""Views demanding roles, any-of scopes, an issuer/audience or a step-up, for test_authorization."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jwkguard_django.decorators import token_required
from jwkguard_django.rest_framework import HasScopes, JWKGuardAuthentication

CORP = "http://corp.invalid/"  # replaced by the test module with the local issuer's URL


def _roles(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"roles": sorted(request.jwt_claims.roles)})  # type: ignore[attr-defined]


@token_required(roles=["admin"], any_scopes=["a", "b"])
def admin(request: HttpRequest) -> JsonResponse:
    return _roles(request)


@token_required(any_roles=["admin", "support"], audiences=["https://admin"])
async def support(request: HttpRequest) -> JsonResponse:
    return _roles(request)


def corp_only(request: HttpRequest) -> Any:
    # Declared at import of the test module, once the issuer's URL is known.
    return token_required(issuers=[CORP])(_roles)(request)


class DRFReports(APIView):
    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes = ("reports",)
    required_roles = ("analyst",)

    def get(self, request: Request) -> Response:
        return Response({"roles": sorted(request.auth.roles)})  # type: ignore[union-attr]


class DRFTransfer(APIView):
    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes = ("pay",)
    acr_values = ("urn:hwk", "urn:mfa")
    max_age = 300

    def get(self, request: Request) -> Response:
        return Response({"acr": request.auth["acr"]})  # type: ignore[index]


urlpatterns = [
    path("admin", admin),
    path("support", support),
    path("corp", corp_only),
    path("drf/reports", DRFReports.as_view()),
    path("drf/transfer", DRFTransfer.as_view()),
]
