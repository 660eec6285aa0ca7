"""Typed claims in Django views: ``@typed_claims(OrderClaims)`` passes ``claims=`` to the view."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest

from jwkguard import TokenError
from jwkguard.pipeline import error_response
from jwkguard.typed import check_model, claims_as

from ._auth import respond
from .conf import get_state

__all__ = ["typed_claims"]

V = TypeVar("V", bound=Callable[..., Any])


def _request_of(args: tuple[Any, ...]) -> HttpRequest:
    for arg in args[:2]:  # a function view's request, or a method view's after self
        if isinstance(arg, HttpRequest):
            return arg
    raise TypeError("typed_claims decorates views taking the request")


def typed_claims(model: type[Any], *, argument: str = "claims") -> Callable[[V], V]:
    """Pass the request's verified claims to the view as ``model`` (keyword ``argument``).

    Put it under ``@token_required`` (or behind the middleware in ``protect`` mode). A claim
    that is missing or of the wrong type is answered 401 ``invalid_token`` (reason
    ``invalid_claim``); a request without claims gets ``None``.
    """
    check_model(model)

    def convert(request: HttpRequest) -> Any:
        claims = getattr(request, "auth", None)
        return None if claims is None else claims_as(claims, model)

    def refusal(exc: TokenError) -> Any:
        return respond(error_response(exc, realm=get_state().options.realm))

    def decorator(view: V) -> V:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def aguarded(*args: Any, **kwargs: Any) -> Any:
                try:
                    kwargs[argument] = convert(_request_of(args))
                except TokenError as exc:
                    return refusal(exc)
                return await view(*args, **kwargs)

            return aguarded  # type: ignore[return-value]

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                kwargs[argument] = convert(_request_of(args))
            except TokenError as exc:
                return refusal(exc)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorator
