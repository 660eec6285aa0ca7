"""One authentication flow for the middleware, the decorators and DRF, sync or async.

:func:`begin` reads the token (or a result already on the request), :func:`finish` records the
result on the request; :func:`authenticate` and :func:`aauthenticate` differ only in how they
call the validator. :func:`refusal` turns a result into the RFC 6750 answer, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.functional import SimpleLazyObject

from jwkguard import (
    Claims,
    Credentials,
    ErrorResponse,
    InvalidRequest,
    PresentedRequest,
    SenderConstraints,
    TokenError,
    check_scopes,
    extract_credentials,
)

from .conf import AdapterOptions, State, get_state
from .users import UserSlot

__all__ = [
    "Outcome",
    "aauthenticate",
    "aroute_refusal",
    "attach_user",
    "authenticate",
    "begin",
    "csrf_applies",
    "csrf_refusal",
    "finish",
    "mark_unauthenticated",
    "recorded",
    "refusal",
    "refusal_answer",
    "respond",
    "route_refusal",
]

_OUTCOME = "_jwkguard_outcome"
_FROM_QUERY = "_jwkguard_token_from_query"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110 §9.2.1, as Django


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of reading a request's bearer token: claims, an error, or neither.

    ``user`` and ``auser`` are the lazy ``request.user`` and ``request.auser`` for valid claims.
    ``credentials`` is the token and its scheme, for checks a view adds (introspection);
    ``authorization`` the header, to answer a DPoP client with a DPoP challenge.
    ``csrf_exempt`` is True only for valid claims from the ``Authorization`` header: a token
    from the query string (``ALLOW_QUERY_TOKEN``) never lifts CSRF checks.
    """

    claims: Claims | None = None
    error: TokenError | None = None
    user: Any = None
    auser: Any = None
    credentials: Credentials | None = None
    authorization: tuple[str, ...] = ()
    csrf_exempt: bool = False


_ANONYMOUS = Outcome()


def _read_token(request: HttpRequest, options: AdapterOptions) -> Credentials | None:
    header = request.META.get("HTTP_AUTHORIZATION")
    query_token: str | None = None
    # Parse the query string only when it may hold a token: most requests carry none.
    if "access_token" in request.META.get("QUERY_STRING", ""):
        values = request.GET.getlist("access_token")
        if len(values) > 1:
            raise InvalidRequest(
                "The access token was sent in more than one place", reason="multiple_tokens"
            )
        query_token = values[0] if values else None
    found = extract_credentials(
        (header,) if header is not None else (),
        query_token=query_token,
        allow_query=options.allow_query_token,
    )
    if found is not None and query_token is not None:
        # extract_credentials refuses a token in two places, so this one is the query's.
        request.__dict__[_FROM_QUERY] = True
    return found


def _presented(
    request: HttpRequest, found: Credentials, options: AdapterOptions
) -> PresentedRequest:
    """What the sender constraints look at (RFC 9449 ``htm``/``htu``, RFC 8705 certificate)."""
    meta = request.META
    constraints = options.sender.constraints
    # WSGI servers put a verified client certificate in the environ (Apache and werkzeug use
    # SSL_CLIENT_CERT); ASGI servers may offer the TLS extension.
    direct: str | None = meta.get("SSL_CLIENT_CERT") or None
    scope = getattr(request, "scope", None)
    if direct is None and isinstance(scope, dict):
        chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain")
        direct = chain[0] if chain else None
    forwarded: list[str] = []
    if constraints.client_cert_header is not None:
        key = "HTTP_" + constraints.client_cert_header.upper().replace("-", "_")
        if key in meta:
            forwarded.append(meta[key])
    # Servers join repeated headers with commas, which a compact JWS never contains.
    proofs = meta.get("HTTP_DPOP")
    return PresentedRequest(
        scheme=found.scheme,
        token=found.token,
        method=request.method or "GET",
        url=request.build_absolute_uri(),
        dpop_proofs=tuple(p.strip() for p in proofs.split(",")) if proofs is not None else (),
        client_certificate=constraints.client_certificate(
            direct, forwarded, meta.get("REMOTE_ADDR")
        ),
    )


def _needs_sender_check(claims: Claims, found: Credentials, options: AdapterOptions) -> bool:
    return "cnf" in claims or found.scheme != "Bearer" or not options.sender.constraints.inactive


def recorded(request: HttpRequest) -> Outcome | None:
    """The result recorded on ``request`` by an earlier step, if any."""
    outcome: Outcome | None = request.__dict__.get(_OUTCOME)
    return outcome


def begin(request: HttpRequest, state: State) -> Outcome | Credentials:
    """The result already recorded on ``request``, or the token still to validate."""
    if (done := recorded(request)) is not None:
        return done
    try:
        found = _read_token(request, state.options)
    except TokenError as exc:
        return finish(request, state, error=exc)
    if found is None:
        return finish(request, state)
    return found


def finish(
    request: HttpRequest,
    state: State,
    *,
    claims: Claims | None = None,
    error: TokenError | None = None,
    credentials: Credentials | None = None,
) -> Outcome:
    """Record the result on ``request``; with claims, set the user and lift CSRF checks."""
    if claims is None and error is None:
        outcome = _ANONYMOUS
    else:
        header = request.META.get("HTTP_AUTHORIZATION")
        authorization = (header,) if header else ()
        if claims is None:
            outcome = Outcome(error=error, authorization=authorization)
        else:
            slot = UserSlot(claims, state.options.user_loader)
            outcome = Outcome(
                claims,
                user=SimpleLazyObject(slot.get),
                auser=slot.aget,
                credentials=credentials,
                authorization=authorization,
                csrf_exempt=not request.__dict__.get(_FROM_QUERY, False),
            )
    # Plain attributes, set through __dict__ because HttpRequest does not declare them.
    request.__dict__.update({_OUTCOME: outcome, "jwt_claims": claims, "auth": claims})
    if claims is not None:
        attach_user(request, outcome)
        if outcome.csrf_exempt:
            # A browser never attaches an Authorization header on its own, so a request that
            # carries a valid token there cannot be a cross-site forgery. A token in the URL
            # can be planted by any page (a form's action), so it lifts nothing: see
            # docs/django.md.
            request.__dict__["_dont_enforce_csrf_checks"] = True
    return outcome


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


def attach_user(request: HttpRequest, outcome: Outcome) -> None:
    """Set ``request.user`` and ``request.auser`` to the token's user."""
    request.__dict__.update(user=outcome.user, auser=outcome.auser)


def mark_unauthenticated(request: HttpRequest) -> None:
    """Give an exempt request the attributes views expect, without reading its token."""
    request.__dict__.update(jwt_claims=None, auth=None)


def authenticate(request: HttpRequest, state: State | None = None) -> Outcome:
    """Read and validate the request's bearer token with ``Validator.validate``."""
    state = state or get_state()
    step = begin(request, state)
    if isinstance(step, Outcome):
        return step
    try:
        claims = state.validator.validate(step.token)
        if _needs_sender_check(claims, step, state.options):
            constraints = state.options.sender.constraints
            constraints.check(claims, _presented(request, step, state.options))
    except TokenError as exc:
        return finish(request, state, error=exc)
    return finish(request, state, claims=claims, credentials=step)


async def aauthenticate(request: HttpRequest, state: State | None = None) -> Outcome:
    """Read and validate the request's bearer token with ``await Validator.avalidate``."""
    state = state or get_state()
    step = begin(request, state)
    if isinstance(step, Outcome):
        return step
    try:
        claims = await state.validator.avalidate(step.token)
        if _needs_sender_check(claims, step, state.options):
            constraints = state.options.sender.constraints
            await constraints.acheck(claims, _presented(request, step, state.options))
    except TokenError as exc:
        return finish(request, state, error=exc)
    return finish(request, state, claims=claims, credentials=step)


def respond(answer: ErrorResponse) -> HttpResponse:
    """An ``HttpResponse`` for a refusal built by ``jwkguard.error_response``."""
    response = HttpResponse(
        answer.body_bytes(), status=answer.status_code, content_type="application/json"
    )
    for name, value in answer.headers.items():
        response[name] = value
    return response


def refusal(
    outcome: Outcome,
    options: AdapterOptions,
    *,
    required: bool,
    scopes: frozenset[str] = frozenset(),
) -> HttpResponse | None:
    """The answer that refuses the request, or None to let it through.

    A token that was sent but is not valid is always refused; a missing one only if
    ``required``; ``scopes`` must all be granted.
    """
    answer = refusal_answer(
        outcome, options.realm, required=required, scopes=scopes, options=options
    )
    return None if answer is None else respond(answer)


def refusal_answer(
    outcome: Outcome,
    realm: str,
    *,
    required: bool,
    scopes: frozenset[str] = frozenset(),
    options: AdapterOptions | None = None,
    constraints: SenderConstraints | None = None,
) -> ErrorResponse | None:
    """Like :func:`refusal`, framework-neutral (DRF builds its own response from it).

    The challenge is ``Bearer``, or ``DPoP`` where ``constraints`` (default: the settings')
    require DPoP, the refusal is about the proof, or the client used the DPoP scheme.
    """
    if constraints is None:
        constraints = (options or get_state().options).sender.constraints
    if outcome.error is not None:
        return constraints.refusal(
            outcome.error,
            realm=realm,
            required_scopes=scopes,
            authorization=outcome.authorization,
        )
    if outcome.claims is None:
        return constraints.refusal(None, realm=realm) if required else None
    if scopes:
        try:
            check_scopes(outcome.claims.scopes, scopes)
        except TokenError as exc:
            return constraints.refusal(
                exc, realm=realm, required_scopes=scopes, authorization=outcome.authorization
            )
    return None


# -- what a view adds: stricter binding, introspection (hybrid mode) -----------------------


def _route_screen(
    outcome: Outcome, state: State, constraints: SenderConstraints, introspect: bool
) -> Credentials | None:
    """Refuse a token the view demands more of; the credentials to introspect, if any."""
    if outcome.claims is None:
        return None
    constraints.check_required(outcome.claims)
    if not introspect:
        return None
    if state.options.sender.introspector is None:
        raise ImproperlyConfigured(
            "a view asks for introspection (introspect=True) but JWKGUARD has no INTROSPECTION"
        )
    return outcome.credentials


def route_refusal(
    outcome: Outcome,
    state: State,
    constraints: SenderConstraints,
    *,
    introspect: bool = False,
) -> Outcome:
    """``outcome``, or a refusal when the view's own demands are not met (sync views)."""
    try:
        found = _route_screen(outcome, state, constraints, introspect)
        if found is not None and state.options.sender.introspector is not None:
            state.options.sender.introspector.introspect(found.token)
    except TokenError as exc:
        return Outcome(error=exc, authorization=outcome.authorization)
    return outcome


async def aroute_refusal(
    outcome: Outcome,
    state: State,
    constraints: SenderConstraints,
    *,
    introspect: bool = False,
) -> Outcome:
    """:func:`route_refusal` for async views: introspection does not block the loop."""
    try:
        found = _route_screen(outcome, state, constraints, introspect)
        if found is not None and state.options.sender.introspector is not None:
            await state.options.sender.introspector.aintrospect(found.token)
    except TokenError as exc:
        return Outcome(error=exc, authorization=outcome.authorization)
    return outcome
