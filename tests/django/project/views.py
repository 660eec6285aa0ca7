"""Views for the adapter tests: every kind of view, decorated or not."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jwkguard_django.decorators import token_exempt, token_optional, token_required
from jwkguard_django.rest_framework import HasScopes, JWKGuardAuthentication


def describe(request: HttpRequest) -> dict[str, Any]:
    claims = getattr(request, "jwt_claims", None)
    user = getattr(request, "user", None)
    return {
        "sub": claims.subject if claims is not None else None,
        "auth_is_claims": getattr(request, "auth", None) is claims,
        "user": str(user) if user is not None and user.is_authenticated else None,
    }


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, **describe(request)})


def plain(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


async def aplain(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_required(scopes=["orders:read"])
def required(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_required(scopes=["orders:read"])
async def arequired(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_required
def required_bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_optional
def optional(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_optional
async def aoptional(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_exempt
def exempt(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_exempt
async def aexempt(request: HttpRequest) -> JsonResponse:
    return JsonResponse(describe(request))


@token_required(scopes=["orders:read"])
class OrdersView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(describe(request))

    def post(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"created": True, **describe(request)}, status=201)


@token_required(scopes=["orders:read"])
class AsyncOrdersView(View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(describe(request))


@token_exempt
class PublicView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(describe(request))


class WriteView(View):
    def post(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(describe(request))


@method_decorator(token_required(scopes=["orders:write"]), name="dispatch")
class MethodDecoratedView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(describe(request))


class PlainOrdersView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(describe(request))


@token_required
def subject(request: HttpRequest) -> JsonResponse:
    """Reads the claims only, never request.user."""
    return JsonResponse({"sub": request.jwt_claims.subject})  # type: ignore[attr-defined]


def submit(request: HttpRequest) -> HttpResponse:
    """An undecorated view that accepts POST: subject to CSRF unless a bearer token is valid."""
    return JsonResponse({"method": request.method, **describe(request)})


def whoami(request: HttpRequest) -> JsonResponse:
    user = request.user
    username = user.get_username()  # evaluates the lazy user
    concrete = getattr(user, "_wrapped", user)
    return JsonResponse(
        {
            "type": type(concrete).__name__,
            "username": username,
            "authenticated": user.is_authenticated,
        }
    )


async def awhoami(request: HttpRequest) -> JsonResponse:
    user = await request.auser()  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "type": type(user).__name__,
            "username": user.get_username(),
            "authenticated": user.is_authenticated,
        }
    )


class DRFOrders(APIView):
    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes = ("orders:read",)

    def get(self, request: Request) -> Response:
        return Response({"sub": request.auth.subject, "user": str(request.user)})

    def post(self, request: Request) -> Response:
        return Response({"created": True}, status=201)


class DRFReports(APIView):
    """Scopes per method; ``*`` covers the other methods with a weaker scope."""

    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes: ClassVar[dict[str, list[str]]] = {
        "GET": ["reports:read"],
        "*": ["reports:ping"],
    }

    def get(self, request: Request) -> Response:
        return Response({"report": "secret"}, headers={"X-Report-Rows": "42"})

    def put(self, request: Request) -> Response:
        return Response({"pinged": True})


class DRFAuthenticatedOnly(APIView):
    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        return Response({"sub": request.auth.subject})


class DRFOrderViewSet(viewsets.ViewSet):
    authentication_classes = (JWKGuardAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes: ClassVar[dict[str, list[str]]] = {
        "list": ["orders:read"],
        "create": ["orders:write"],
    }

    def list(self, request: Request) -> Response:
        return Response([{"id": 1}])

    def create(self, request: Request) -> Response:
        return Response({"id": 2}, status=201)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        return Response(status=204)
