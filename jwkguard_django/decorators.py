"""View decorators: ``token_required``, ``token_optional`` and ``token_exempt``.

They work on sync and async function views, on ``as_view()`` results and on class-based views
(decorate the class). Each marks the view so that :class:`~jwkguard_django.middleware.
JWKGuardMiddleware` leaves the decision to it; without the middleware they authenticate the
request themselves (``validate`` in sync views, ``await avalidate`` in async ones).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import wraps
from typing import Any, Literal, TypeVar, Unpack, overload

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from django.views import View

from jwkguard import ConfigurationError, RoutePolicy
from jwkguard.pipeline import RouteDemands, RouteOptions

from ._auth import ajudge, csrf_applies, csrf_refusal, judge, respond

__all__ = ["POLICY_ATTRIBUTE", "ViewPolicy", "token_exempt", "token_optional", "token_required"]

POLICY_ATTRIBUTE = "jwkguard_policy"
"""The attribute the decorators set on a view; the middleware reads it."""

V = TypeVar("V", bound=Callable[..., Any] | type[View])


@dataclass(frozen=True, slots=True)
class ViewPolicy(RouteDemands):
    """What a decorated view demands of the request's token.

    ``dpop`` and ``certificate`` demand a token bound to a DPoP key or to the client
    certificate; ``introspect`` asks ``JWKGUARD["INTROSPECTION"]`` whether it is still active;
    ``acr_values`` and ``max_age`` demand a strong or recent login (RFC 9470 step-up);
    ``any_scopes``, ``roles``, ``any_roles``, ``issuers`` and ``audiences`` are the
    :class:`jwkguard.RoutePolicy` fields of the same names.
    """

    kind: Literal["required", "optional", "exempt"]
    scopes: frozenset[str] = frozenset()
    route: RoutePolicy = field(init=False)

    def __post_init__(self) -> None:
        demands = {name: getattr(self, name) for name in _DEMANDS}
        route = RoutePolicy(optional=self.kind != "required", **demands)
        object.__setattr__(self, "route", route)

    @classmethod
    def required(cls, route: RoutePolicy) -> ViewPolicy:
        """The policy of a ``token_required`` view demanding what ``route`` demands."""
        return cls("required", **{name: getattr(route, name) for name in _DEMANDS})


# The fields a view policy shares with RoutePolicy: every one but ``kind`` and ``route``.
_DEMANDS = tuple(f.name for f in fields(ViewPolicy) if f.init and f.name != "kind")


def _request_of(args: tuple[Any, ...], position: int) -> HttpRequest:
    request = args[position]
    # A DRF Request wraps the Django one; the result is recorded on the Django request.
    inner = getattr(request, "_request", None)
    return inner if isinstance(inner, HttpRequest) else request


def _check(request: HttpRequest, policy: ViewPolicy) -> HttpResponseBase | None:
    if policy.kind == "exempt":
        return None
    answer = judge(request, policy.route)
    return None if answer is None else respond(answer)


async def _acheck(request: HttpRequest, policy: ViewPolicy) -> HttpResponseBase | None:
    if policy.kind == "exempt":
        return None
    answer = await ajudge(request, policy.route)
    return None if answer is None else respond(answer)


def _guard(
    view: Callable[..., Any], policy: ViewPolicy, *, is_async: bool, position: int
) -> Callable[..., Any]:
    """Wrap ``view`` (a function, or ``dispatch`` when ``position`` is 1) with the policy."""
    guarded: Callable[..., Any]
    # A required view is CSRF-exempt for requests that carry a token in the Authorization
    # header; one whose token came from the query string gets the CSRF check it skipped.
    exempt = policy.kind == "required"
    if is_async:

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            request = _request_of(args, position)
            denied = await _acheck(request, policy)
            if denied is None and exempt and csrf_applies(request):
                # The CSRF check may read the session: a database query, so off the loop.
                denied = await sync_to_async(csrf_refusal)(request)
            if denied is not None:
                return denied
            response = view(*args, **kwargs)
            # View.dispatch of an async class-based view is itself sync and returns a coroutine.
            return await response if inspect.isawaitable(response) else response

    else:

        def guarded(*args: Any, **kwargs: Any) -> Any:
            request = _request_of(args, position)
            denied = _check(request, policy)
            if denied is None and exempt:
                denied = csrf_refusal(request)
            return denied if denied is not None else view(*args, **kwargs)

    guarded = wraps(view)(guarded)
    guarded.__dict__[POLICY_ATTRIBUTE] = policy
    if exempt:
        # Only requests with a valid token reach the view, and a browser never sends an
        # Authorization header on its own: there is nothing for a cross-site request to forge.
        # A query-string token is the exception, checked in ``guarded`` (docs/django.md).
        guarded.__dict__["csrf_exempt"] = True
    return guarded


def _apply(view: V, policy: ViewPolicy) -> V:
    if isinstance(view, type):
        if not issubclass(view, View):
            raise TypeError("jwkguard decorators apply to views or django.views.View subclasses")
        is_async = bool(view.view_is_async)  # a classproperty; raises for mixed handlers
        dispatch = _guard(view.dispatch, policy, is_async=is_async, position=1)
        view.dispatch = dispatch  # type: ignore[method-assign]
        return view
    if not callable(view):
        raise TypeError("jwkguard decorators apply to views or django.views.View subclasses")
    return _guard(view, policy, is_async=iscoroutinefunction(view), position=0)  # type: ignore[return-value]


def _decorate(view: Any, policy: ViewPolicy) -> Any:
    """``@decorator`` (``view`` given) guards the view now; ``@decorator()`` returns a decorator."""
    if view is not None:
        return _apply(view, policy)
    return lambda target: _apply(target, policy)


@overload
def token_required(view: V, /) -> V: ...
@overload
def token_required(**route: Unpack[RouteOptions]) -> Callable[[V], V]: ...
def token_required(
    view: Any = None,
    /,
    **route: Unpack[RouteOptions],
) -> Any:
    """Refuse the request unless it carries a valid bearer token granting ``scopes``.

    Use as ``@token_required`` or ``@token_required(scopes=["orders:read"])`` on a function
    view, an async view or a class-based view. No token gives 401 with a bare challenge, an
    invalid one 401 ``invalid_token``, missing scopes 403 ``insufficient_scope`` (RFC 6750
    section 3.1). Such views are CSRF-exempt for a token in the ``Authorization`` header; a
    token from the query string (``ALLOW_QUERY_TOKEN``) leaves the CSRF check in force.

    For high-value views: ``dpop=True`` demands a DPoP-bound token (RFC 9449; challenges
    with ``DPoP``), ``certificate=True`` one bound to the client certificate (RFC 8705), and
    ``introspect=True`` also asks ``JWKGUARD["INTROSPECTION"]`` whether the token is still
    active (RFC 7662) after it passed every local check.

    Step-up (RFC 9470): ``acr_values=["urn:mfa"]`` demands one of these ``acr`` values and
    ``max_age=300`` a login (``auth_time``) at most five minutes old; a token that falls short
    gets 401 ``insufficient_user_authentication`` with both in the challenge.

    Roles and origin: ``roles=["admin"]`` demands every role named (``Claims.roles``, read
    from the provider's role claims), ``any_roles`` and ``any_scopes`` at least one of those
    named (403 ``insufficient_scope``, reason ``insufficient_role`` for roles);
    ``issuers=[...]`` and ``audiences=[...]`` accept only tokens of those issuers or for
    those audiences (401, reason ``issuer_not_accepted`` / ``audience_not_accepted``).
    The options are described on :class:`jwkguard.pipeline.RouteOptions`; a bad one raises
    ``TypeError``.
    """
    try:
        policy = ViewPolicy.required(RoutePolicy.from_options(**route))
    except ConfigurationError as exc:
        raise TypeError(str(exc)) from None
    return _decorate(view, policy)


@overload
def token_optional(view: V, /) -> V: ...
@overload
def token_optional() -> Callable[[V], V]: ...
def token_optional(view: Any = None, /) -> Any:
    """Authenticate the request if it carries a bearer token; let it through if it has none.

    An invalid token is still refused. ``request.jwt_claims`` is None for anonymous requests.
    """
    return _decorate(view, ViewPolicy("optional"))


@overload
def token_exempt(view: V, /) -> V: ...
@overload
def token_exempt() -> Callable[[V], V]: ...
def token_exempt(view: Any = None, /) -> Any:
    """Serve the view without any token check, even when the middleware protects every path."""
    return _decorate(view, ViewPolicy("exempt"))
