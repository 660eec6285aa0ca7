"""URLs and views for the RFC 9728 and step-up tests."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from jwkguard_django.decorators import token_required


def _subject(request: HttpRequest) -> JsonResponse:
    claims = request.jwt_claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": claims.subject if claims is not None else None})


def orders(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(acr_values=["urn:hwk", "urn:mfa"], max_age=300)
def transfer(request: HttpRequest) -> JsonResponse:
    return _subject(request)


@token_required(acr_values=["urn:mfa"], scopes=["pay"])
async def atransfer(request: HttpRequest) -> JsonResponse:
    return _subject(request)


urlpatterns = [
    path("orders", orders),
    path("transfer", transfer),
    path("atransfer", atransfer),
]
