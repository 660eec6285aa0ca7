"""``JWKGuardMiddleware``: bearer-token authentication for every request, sync or async.

In ``__call__`` (WSGI) or ``__acall__`` (ASGI) it reads and validates the bearer token and sets
``request.jwt_claims``, ``request.auth``, a lazy ``request.user`` and ``request.auser``. In
``process_view``, once the view is known, it refuses the request if the mode and the view's
decorators say so. List it before ``CsrfViewMiddleware`` so that a protected view answers a
request without a token with 401 rather than CSRF's 403; its user wins over the session user
wherever ``AuthenticationMiddleware`` is listed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from jwkguard import RoutePolicy

from ._auth import (
    OPTIONAL,
    aauthenticate,
    ajudge,
    attach_user,
    authenticate,
    judge,
    mark_unauthenticated,
    metadata_response,
    recorded,
    respond,
)
from .conf import State, get_state
from .decorators import POLICY_ATTRIBUTE

__all__ = ["JWKGuardMiddleware"]

GetResponse = Callable[[HttpRequest], Any]
ProcessView = Callable[
    [HttpRequest, Callable[..., Any], tuple[Any, ...], dict[str, Any]],
    HttpResponseBase | Awaitable[HttpResponseBase | None] | None,
]


class JWKGuardMiddleware:
    """Authenticates requests with bearer tokens under WSGI and ASGI alike.

    ``JWKGUARD["MODE"]`` decides what happens to views without a jwkguard decorator:
    ``"protect"`` (default) refuses requests without a valid token unless the path is in
    ``EXEMPT_PATHS``; ``"optional"`` lets anonymous requests through. A token that is sent but
    invalid is refused in both modes, except on exempt paths and ``token_exempt`` views.
    """

    sync_capable = True
    async_capable = True
    process_view: ProcessView

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
            self.process_view = self._aprocess_view
        else:
            self.process_view = self._process_view

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        state = get_state()
        if (document := _metadata(request, state)) is not None:
            return document
        if not _skip(request, state):
            authenticate(request, state)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> Any:
        state = get_state()
        if (document := _metadata(request, state)) is not None:
            return document
        if not _skip(request, state):
            await aauthenticate(request, state)
        return await self.get_response(request)

    # Django passes the view's args and kwargs too; the decision needs only the view.
    def _process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], *view_arguments: Any
    ) -> HttpResponseBase | None:
        if _runs_on_preflight(request, view_func):
            answer = judge(request, _REQUIRED)
            return None if answer is None else respond(answer)
        return _decide(request, view_func)

    async def _aprocess_view(
        self, request: HttpRequest, view_func: Callable[..., Any], *view_arguments: Any
    ) -> HttpResponseBase | None:
        if _runs_on_preflight(request, view_func):
            answer = await ajudge(request, _REQUIRED)
            return None if answer is None else respond(answer)
        return _decide(request, view_func)


def _metadata(request: HttpRequest, state: State) -> HttpResponse | None:
    """The RFC 9728 metadata document, for ``GET`` at the resource's well-known path."""
    resource = state.pipeline.resource
    if resource is None or request.method not in ("GET", "HEAD"):
        return None
    if not resource.serves(request.path_info):
        return None
    return metadata_response(resource)


def _skip(request: HttpRequest, state: State) -> bool:
    """True for ``EXEMPT_PATHS`` and ``EXEMPT_METHODS``: their token is not even read."""
    if state.options.is_exempt(request.path_info, request.method or ""):
        mark_unauthenticated(request)
        return True
    return False


def _runs_on_preflight(request: HttpRequest, view_func: Callable[..., Any]) -> bool:
    """True for an ``OPTIONS`` request let through by ``EXEMPT_METHODS`` (CORS preflights) to
    an undecorated function view in protect mode: Django runs such a view for every method, so
    it would serve its content without a token. Class-based views answer ``OPTIONS`` with
    ``View.options`` (the allowed methods, no body), and decorated views decide themselves."""
    if request.method != "OPTIONS" or recorded(request) is not None:
        return False
    if hasattr(view_func, POLICY_ATTRIBUTE) or hasattr(view_func, "view_class"):
        return False
    options = get_state().options
    return options.protect and not options.exemptions.path_exempt(request.path_info)


def _decide(request: HttpRequest, view_func: Callable[..., Any]) -> HttpResponseBase | None:
    """The refusal for an undecorated view, or None (decorated views decide for themselves)."""
    outcome = recorded(request)
    if outcome is None:
        return None
    if outcome.claims is not None and request.__dict__.get("user") is not outcome.user:
        # AuthenticationMiddleware may be listed after this one and have replaced the user.
        attach_user(request, outcome)
    if hasattr(view_func, POLICY_ATTRIBUTE):
        return None
    state = get_state()
    answer = judge(request, _REQUIRED if state.options.protect else OPTIONAL, state)
    return None if answer is None else respond(answer)


_REQUIRED = RoutePolicy()
