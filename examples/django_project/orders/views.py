"""Plain Django views and a DRF viewset protected by jwkguard."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from jwkguard_django import token_exempt, token_required

ORDERS = [{"id": 1, "item": "coffee"}, {"id": 2, "item": "tea"}]


def _identity(request: HttpRequest) -> dict[str, Any]:
    claims = request.jwt_claims  # type: ignore[attr-defined]
    return {
        "sub": claims.subject,
        "scopes": sorted(claims.scopes),
        "user": str(request.user),
        "server": "asgi" if isinstance(request, ASGIRequest) else "wsgi",
    }


def health(request: HttpRequest) -> JsonResponse:
    """Listed in EXEMPT_PATHS: no token needed."""
    return JsonResponse({"ok": True, "python": sys.version.split()[0]})


@token_exempt
def public(request: HttpRequest) -> JsonResponse:
    """Exempt by decorator."""
    return JsonResponse({"hello": "world"})


def me(request: HttpRequest) -> JsonResponse:
    """Protected by the middleware (MODE "protect"): any valid token."""
    return JsonResponse(_identity(request))


async def async_me(request: HttpRequest) -> JsonResponse:
    """The same from an async view; ``request.auser()`` loads the user without blocking."""
    user = await request.auser()  # type: ignore[attr-defined]
    return JsonResponse({**_identity(request), "user": user.get_username()})


@token_required(scopes=["orders:read"])
def orders(request: HttpRequest) -> JsonResponse:
    """Needs the ``orders:read`` scope; POST needs no CSRF token (bearer only)."""
    if request.method == "POST":
        return JsonResponse(
            {"id": len(ORDERS) + 1, "created_by": request.user.get_username()}, status=201
        )
    return JsonResponse({"orders": ORDERS})


class OrderViewSet(viewsets.ViewSet):
    """DRF: JWKGuardAuthentication and HasScopes come from REST_FRAMEWORK defaults."""

    required_scopes: ClassVar[dict[str, list[str]]] = {
        "list": ["orders:read"],
        "retrieve": ["orders:read"],
        "create": ["orders:write"],
    }

    def list(self, request: Request) -> Response:
        return Response(ORDERS)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(next((o for o in ORDERS if str(o["id"]) == pk), {}))

    def create(self, request: Request) -> Response:
        return Response(
            {"id": len(ORDERS) + 1, "created_by": request.user.get_username()}, status=201
        )
