"""One authentication flow for the middleware, the decorators and DRF, sync or async.

:func:`begin` reads the token (or a result already on the request), :func:`finish` records the
result on the request; :func:`authenticate` and :func:`aauthenticate` differ only in how they
call the validator. :func:`refusal` turns a result into the RFC 6750 answer, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from jwkguard import (
    Claims,
    ErrorResponse,
    InvalidRequest,
    TokenError,
    check_scopes,
    error_response,
    extract_bearer,
    missing_token_response,
)

from .conf import AdapterOptions, State, get_state
from .users import UserSlot

__all__ = [
    "Outcome",
    "aauthenticate",
    "attach_user",
    "authenticate",
    "begin",
    "finish",
    "mark_unauthenticated",
    "recorded",
    "refusal",
    "refusal_answer",
    "respond",
]

_OUTCOME = "_jwkguard_outcome"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of reading a request's bearer token: claims, an error, or neither.

    ``user`` and ``auser`` are the lazy ``request.user`` and ``request.auser`` for valid claims.
    """

    claims: Claims | None = None
    error: TokenError | None = None
    user: Any = None
    auser: Any = None


_ANONYMOUS = Outcome()


def _read_token(request: HttpRequest, options: AdapterOptions) -> str | None:
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
    return extract_bearer(
        (header,) if header is not None else (),
        query_token=query_token,
        allow_query=options.allow_query_token,
    )


def recorded(request: HttpRequest) -> Outcome | None:
    """The result recorded on ``request`` by an earlier step, if any."""
    outcome: Outcome | None = request.__dict__.get(_OUTCOME)
    return outcome


def begin(request: HttpRequest, state: State) -> Outcome | str:
    """The result already recorded on ``request``, or the token still to validate."""
    if (done := recorded(request)) is not None:
        return done
    try:
        token = _read_token(request, state.options)
    except TokenError as exc:
        return finish(request, state, error=exc)
    if token is None:
        return finish(request, state)
    return token


def finish(
    request: HttpRequest,
    state: State,
    *,
    claims: Claims | None = None,
    error: TokenError | None = None,
) -> Outcome:
    """Record the result on ``request``; with claims, set the user and lift CSRF checks."""
    if claims is None:
        outcome = _ANONYMOUS if error is None else Outcome(error=error)
    else:
        slot = UserSlot(claims, state.options.user_loader)
        outcome = Outcome(claims, user=SimpleLazyObject(slot.get), auser=slot.aget)
    # Plain attributes, set through __dict__ because HttpRequest does not declare them.
    request.__dict__.update({_OUTCOME: outcome, "jwt_claims": claims, "auth": claims})
    if claims is not None:
        attach_user(request, outcome)
        # A bearer token is never attached by the browser on its own, so a request that
        # carries a valid one cannot be a cross-site forgery (see docs/django.md).
        request.__dict__["_dont_enforce_csrf_checks"] = True
    return outcome


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
        claims = state.validator.validate(step)
    except TokenError as exc:
        return finish(request, state, error=exc)
    return finish(request, state, claims=claims)


async def aauthenticate(request: HttpRequest, state: State | None = None) -> Outcome:
    """Read and validate the request's bearer token with ``await Validator.avalidate``."""
    state = state or get_state()
    step = begin(request, state)
    if isinstance(step, Outcome):
        return step
    try:
        claims = await state.validator.avalidate(step)
    except TokenError as exc:
        return finish(request, state, error=exc)
    return finish(request, state, claims=claims)


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
    answer = refusal_answer(outcome, options.realm, required=required, scopes=scopes)
    return None if answer is None else respond(answer)


def refusal_answer(
    outcome: Outcome,
    realm: str,
    *,
    required: bool,
    scopes: frozenset[str] = frozenset(),
) -> ErrorResponse | None:
    """Like :func:`refusal`, framework-neutral (DRF builds its own response from it)."""
    if outcome.error is not None:
        return error_response(outcome.error, realm=realm, required_scopes=scopes)
    if outcome.claims is None:
        return missing_token_response(realm) if required else None
    if scopes:
        try:
            check_scopes(outcome.claims.scopes, scopes)
        except TokenError as exc:
            return error_response(exc, realm=realm, required_scopes=scopes)
    return None
