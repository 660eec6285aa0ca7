"""One authentication flow for the middleware, the decorators and DRF, sync or async.

The request pipeline decides; this module is the Django glue. :func:`authenticate` and
:func:`aauthenticate` run the pipeline once per request (optional: no token is anonymous)
and record the result on the request; :func:`judge` and :func:`ajudge` apply a view's own
policy (required or optional, scopes, stricter binding, introspection) to that result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.functional import SimpleLazyObject

from jwkguard import Claims, ConfigurationError, RoutePolicy, TokenError
from jwkguard.pipeline import (
    Credentials,
    Decision,
    EnvironHeaders,
    ErrorResponse,
    RequestView,
    ResourceMetadata,
)

from .conf import State, get_state
from .users import UserSlot

__all__ = [
    "OPTIONAL",
    "RequestAuth",
    "aauthenticate",
    "ajudge",
    "attach_user",
    "authenticate",
    "csrf_applies",
    "csrf_refusal",
    "judge",
    "mark_unauthenticated",
    "metadata_response",
    "recorded",
    "respond",
]

_RECORDED = "_jwkguard_auth"
_VIEW = "_jwkguard_view"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
OPTIONAL = RoutePolicy(optional=True)
"""The policy of the authentication step: no token is anonymous, a bad one is refused."""


_NO_DECISION = Decision()


@dataclass(frozen=True, slots=True)
class RequestAuth:
    """The pipeline's decision on a request, with the Django user it gives.

    ``user`` and ``auser`` are the lazy ``request.user`` and ``request.auser`` for valid claims;
    ``csrf_exempt`` is True only for a token from the ``Authorization`` header.
    """

    decision: Decision = _NO_DECISION
    user: Any = None
    auser: Any = None
    csrf_exempt: bool = False

    @property
    def claims(self) -> Claims | None:
        """The verified claims; None when anonymous or refused."""
        return self.decision.claims

    @property
    def error(self) -> TokenError | None:
        """Why the token was refused, if it was."""
        return self.decision.error

    @property
    def credentials(self) -> Credentials | None:
        """The token and its scheme, when the request carried one."""
        return self.decision.credentials


_ANONYMOUS = RequestAuth()


def request_view(request: HttpRequest) -> RequestView:
    """The pipeline's view of a Django request (WSGI or ASGI), built once per request."""
    known: RequestView | None = request.__dict__.get(_VIEW)
    if known is not None:
        return known
    view = _build_view(request)
    request.__dict__[_VIEW] = view
    return view


def _build_view(request: HttpRequest) -> RequestView:
    meta = request.META
    # WSGI servers put a verified client certificate in the environ (Apache and werkzeug use
    # SSL_CLIENT_CERT); ASGI servers may offer the TLS extension.
    certificate: str | None = meta.get("SSL_CLIENT_CERT") or None
    scope = getattr(request, "scope", None)
    if certificate is None and isinstance(scope, dict):
        chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain")
        certificate = chain[0] if chain else None
    return RequestView(
        method=request.method or "GET",
        headers=EnvironHeaders(meta),
        query=meta.get("QUERY_STRING", ""),
        url=request.build_absolute_uri,
        client=meta.get("REMOTE_ADDR"),
        certificate=certificate,
    )


def recorded(request: HttpRequest) -> RequestAuth | None:
    """The result recorded on ``request`` by an earlier step, if any."""
    outcome: RequestAuth | None = request.__dict__.get(_RECORDED)
    return outcome


def authenticate(request: HttpRequest, state: State | None = None) -> RequestAuth:
    """Judge the request's token once (``Validator.validate``); later calls reuse it."""
    if (done := recorded(request)) is not None:
        return done
    state = state or get_state()
    return _record(request, state, state.pipeline.run(request_view(request), OPTIONAL))


async def aauthenticate(request: HttpRequest, state: State | None = None) -> RequestAuth:
    """:func:`authenticate` with ``await Validator.avalidate``."""
    if (done := recorded(request)) is not None:
        return done
    state = state or get_state()
    return _record(request, state, await state.pipeline.arun(request_view(request), OPTIONAL))


def _record(request: HttpRequest, state: State, decision: Decision) -> RequestAuth:
    """Keep the decision on ``request``; with claims, set the user and lift CSRF checks."""
    claims = decision.claims
    if claims is None:
        outcome = _ANONYMOUS if decision.response is None else RequestAuth(decision)
    else:
        slot = UserSlot(claims, state.options.user_loader)
        outcome = RequestAuth(
            decision,
            user=SimpleLazyObject(slot.get),
            auser=slot.aget,
            csrf_exempt=decision.source == "header",
        )
    # Plain attributes, set through __dict__ because HttpRequest does not declare them.
    request.__dict__.update({_RECORDED: outcome, "jwt_claims": claims, "auth": claims})
    if claims is not None:
        attach_user(request, outcome)
        if outcome.csrf_exempt:
            # A browser never attaches an Authorization header on its own, so a request that
            # carries a valid token there cannot be a cross-site forgery. A token in the URL
            # can be planted by any page (a form's action), so it lifts nothing: see
            # docs/django.md.
            request.__dict__["_dont_enforce_csrf_checks"] = True
    return outcome


def _enforceable(state: State, policy: RoutePolicy) -> None:
    """A view that demands what the settings cannot give is a configuration error."""
    if policy.introspect or policy.dpop or policy.certificate:
        try:
            state.pipeline.check_policy(policy)
        except ConfigurationError as exc:
            raise ImproperlyConfigured(
                f"a view demands what JWKGUARD cannot enforce (INTROSPECTION, DPOP): {exc}"
            ) from exc


def judge(
    request: HttpRequest, policy: RoutePolicy, state: State | None = None
) -> ErrorResponse | None:
    """The refusal of ``request`` under a view's ``policy``, or None to let it through."""
    state = state or get_state()
    _enforceable(state, policy)
    outcome = authenticate(request, state)
    decision = state.pipeline.authorize(outcome.decision, request_view(request), policy)
    return decision.response


async def ajudge(
    request: HttpRequest, policy: RoutePolicy, state: State | None = None
) -> ErrorResponse | None:
    """:func:`judge` for async views: introspection does not block the loop."""
    state = state or get_state()
    _enforceable(state, policy)
    outcome = await aauthenticate(request, state)
    decision = await state.pipeline.aauthorize(outcome.decision, request_view(request), policy)
    return decision.response


def csrf_applies(request: HttpRequest) -> bool:
    """True when a valid token came from the query string and the method is not safe."""
    outcome = recorded(request)
    return (
        outcome is not None
        and outcome.claims is not None
        and not outcome.csrf_exempt
        and request.method not in _SAFE_METHODS
    )


def csrf_refusal(request: HttpRequest) -> HttpResponseBase | None:
    """``CsrfViewMiddleware``'s answer for a request whose token does not exempt it from CSRF.

    For a CSRF-exempt view (``token_required``, DRF) authenticated by a query-string token:
    the check that view skipped is run as if it were not exempt. None lets the request on.
    """
    if not csrf_applies(request):
        return None
    check = CsrfViewMiddleware(_no_response)
    check.process_request(request)
    return check.process_view(request, _not_exempt_view, (), {})


def _no_response(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    return HttpResponse()


def _not_exempt_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    return HttpResponse()


def attach_user(request: HttpRequest, outcome: RequestAuth) -> None:
    """Set ``request.user`` and ``request.auser`` to the token's user."""
    request.__dict__.update(user=outcome.user, auser=outcome.auser)


def mark_unauthenticated(request: HttpRequest) -> None:
    """Give an exempt request the attributes views expect, without reading its token."""
    request.__dict__.update(jwt_claims=None, auth=None)


def metadata_response(resource: ResourceMetadata) -> HttpResponse:
    """The RFC 9728 metadata document (200, JSON, cacheable, any origin)."""
    body = resource.body_bytes()
    response = HttpResponse(body, content_type="application/json")
    for name, value in resource.wire_headers(body):
        if name != "Content-Type":
            response[name] = value
    return response


def respond(answer: ErrorResponse) -> HttpResponse:
    """An ``HttpResponse`` for a refusal built by ``jwkguard.pipeline.error_response``."""
    response = HttpResponse(
        answer.body_bytes(), status=answer.status_code, content_type="application/json"
    )
    for name, value in answer.headers.items():
        response[name] = value
    return response
