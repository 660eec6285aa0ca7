"""One request's authentication: find the token, validate it, keep the claims on ``g``.

``require`` and ``protect`` both call :func:`authenticate`, so a view under both is validated
once: the second call only checks its own scopes against the claims already on ``g``.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Flask, current_app, g, request
from werkzeug.local import LocalProxy

from jwkguard import (
    Claims,
    InsufficientScope,
    InvalidRequest,
    TokenError,
    check_scopes,
    error_response,
    extract_bearer,
    missing_token_response,
)

from ._config import GuardState
from ._errors import BearerError

__all__ = [
    "CLAIMS_ATTRIBUTE",
    "EXTENSION_KEY",
    "authenticate",
    "current_claims",
    "forget_claims",
    "get_claims",
    "state_of",
]

EXTENSION_KEY = "jwkguard"
CLAIMS_ATTRIBUTE = "_jwkguard_claims"
"""The attribute of ``g`` holding the request's ``Claims`` (None: no token, auth optional)."""

_UNSET: Any = object()


def state_of(app: Flask) -> GuardState:
    """The jwkguard state of ``app``, set up by ``JWKGuard.init_app``."""
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, GuardState):
        raise RuntimeError("JWKGuard is not set up on this app: call guard.init_app(app) first")
    return state


def _read_token(state: GuardState) -> str | None:
    environ = request.environ
    # WSGI keeps one HTTP_AUTHORIZATION; servers join repeated headers with ", ", which
    # extract_bearer then refuses as a malformed header.
    header = environ.get("HTTP_AUTHORIZATION")
    query_token = None
    if "access_token" in environ.get("QUERY_STRING", ""):
        values = request.args.getlist("access_token")
        if len(values) > 1:
            raise InvalidRequest(
                "The access token was sent in more than one place", reason="multiple_tokens"
            )
        query_token = values[0] if values else None
    return extract_bearer(
        [header] if header is not None else [],
        query_token=query_token,
        allow_query=state.allow_query_token,
    )


def _verify(state: GuardState) -> Claims | None:
    try:
        token = _read_token(state)
        return None if token is None else state.validator.validate(token)
    except TokenError as exc:
        raise BearerError(error_response(exc, realm=state.realm), exc) from exc


def authenticate(scopes: frozenset[str], optional: bool) -> Claims | None:
    """The verified claims of the current request, stored on ``g``.

    Args:
        scopes: Scopes the token must grant, checked after the signature and claims.
        optional: Allow a request without a token (then None); a bad token is still refused.

    Raises:
        BearerError: No token (unless optional), a refused token, or missing scopes.
    """
    state = state_of(current_app)
    claims = g.get(CLAIMS_ATTRIBUTE, _UNSET)
    if claims is _UNSET:
        claims = _verify(state)
        setattr(g, CLAIMS_ATTRIBUTE, claims)
    if claims is None:
        if optional:
            return None
        raise BearerError(missing_token_response(state.realm))
    if scopes:
        try:
            check_scopes(claims.scopes, scopes)
        except InsufficientScope as exc:
            raise BearerError(
                error_response(exc, realm=state.realm, required_scopes=scopes), exc
            ) from exc
    return cast(Claims, claims)


def forget_claims(exc: BaseException | None = None) -> None:
    """Drop the claims when the request ends (``g`` may outlive it in a shared app context)."""
    g.pop(CLAIMS_ATTRIBUTE, None)


def get_claims() -> Claims | None:
    """The verified claims of the current request, or None if it has none."""
    claims = g.get(CLAIMS_ATTRIBUTE)
    return claims if isinstance(claims, Claims) else None


def _current_claims() -> Claims:
    claims = get_claims()
    if claims is None:
        # A RuntimeError makes the proxy falsy, so `if current_claims:` works for optional auth.
        raise RuntimeError(
            "this request has no verified claims: protect the view with guard.require() or "
            "guard.protect(), and test `if current_claims:` where authentication is optional"
        )
    return claims


current_claims: Claims = LocalProxy(_current_claims)  # type: ignore[assignment]
"""The verified ``Claims`` of the current request (a proxy, like ``flask.g``)."""
