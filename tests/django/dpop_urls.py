"""URLs and views for the sender-constraint tests (DPoP, certificates, introspection)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jwkguard_django.decorators import token_required
from jwkguard_django.rest_framework import HasScopes, JWKGuardAuthentication


def _subject(request: HttpRequest) -> JsonResponse:
    claims = request.jwt_claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": claims.subject if claims is not None else None})


def orders(request: HttpRequest) -> JsonResponse:
    return _subject(request)


async def aorders(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(dpop=True)
def strict(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(dpop=True)
async def astrict(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(certificate=True)
def payments(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(introspect=True, scopes=["payments:write"])
def transfer(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(introspect=True, scopes=["payments:write"])
async def atransfer(request: HttpRequest) -> JsonResponse:
    return _subject(request)


class DRFOrders(APIView):
    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes = ("orders:read",)

    def get(self, request: Request) -> Response:
        return Response({"sub": request.auth.subject})


urlpatterns = [
    path("orders", orders),
    path("aorders", aorders),
    path("strict", strict),
    path("astrict", astrict),
    path("payments", payments),
    path("transfer", transfer),
    path("atransfer", atransfer),
    path("drf/orders", DRFOrders.as_view()),
]
