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
    Credentials,
    InvalidRequest,
    PresentedRequest,
    SenderConstraints,
    TokenError,
    check_scopes,
    extract_credentials,
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
_CREDENTIALS_ATTRIBUTE = "_jwkguard_credentials"
_INTROSPECTED_ATTRIBUTE = "_jwkguard_introspected"

_UNSET: Any = object()


def state_of(app: Flask) -> GuardState:
    """The jwkguard state of ``app``, set up by ``JWKGuard.init_app``."""
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, GuardState):
        raise RuntimeError("JWKGuard is not set up on this app: call guard.init_app(app) first")
    return state


def _read_token(state: GuardState) -> Credentials | None:
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
    return extract_credentials(
        [header] if header is not None else [],
        query_token=query_token,
        allow_query=state.allow_query_token,
    )


def _presented(state: GuardState, found: Credentials) -> PresentedRequest:
    """What the sender constraints look at (RFC 9449 ``htm``/``htu``, RFC 8705 certificate)."""
    environ = request.environ
    constraints = state.sender.constraints
    forwarded: list[str] = []
    if constraints.client_cert_header is not None:
        value = request.headers.get(constraints.client_cert_header)
        if value is not None:
            forwarded.append(value)
    # The direct peer decides whether a proxy header is believed; werkzeug's ProxyFix keeps it.
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    peer = original.get("REMOTE_ADDR", environ.get("REMOTE_ADDR"))
    # Servers join repeated headers with commas, which a compact JWS never contains.
    proofs = environ.get("HTTP_DPOP")
    return PresentedRequest(
        scheme=found.scheme,
        token=found.token,
        method=request.method,
        url=request.url,
        dpop_proofs=tuple(p.strip() for p in proofs.split(",")) if proofs is not None else (),
        # WSGI servers put a verified client certificate here (werkzeug, Apache mod_ssl).
        client_certificate=constraints.client_certificate(
            environ.get("SSL_CLIENT_CERT") or None, forwarded, peer
        ),
    )


def _authorization() -> list[str]:
    header = request.environ.get("HTTP_AUTHORIZATION")
    return [header] if header is not None else []


def _refuse(
    constraints: SenderConstraints,
    state: GuardState,
    exc: TokenError | None,
    scopes: frozenset[str] = frozenset(),
) -> BearerError:
    answer = constraints.refusal(
        exc, realm=state.realm, required_scopes=scopes, authorization=_authorization()
    )
    return BearerError(answer, exc)


def _verify(state: GuardState) -> Claims | None:
    constraints = state.sender.constraints
    try:
        found = _read_token(state)
        if found is None:
            return None
        claims = state.validator.validate(found.token)
        if "cnf" in claims or found.scheme != "Bearer" or not constraints.inactive:
            constraints.check(claims, _presented(state, found))
    except TokenError as exc:
        raise _refuse(constraints, state, exc) from exc
    setattr(g, _CREDENTIALS_ATTRIBUTE, found)
    return claims


def authenticate(
    scopes: frozenset[str],
    optional: bool,
    *,
    dpop: bool = False,
    certificate: bool = False,
    introspect: bool = False,
) -> Claims | None:
    """The verified claims of the current request, stored on ``g``.

    Args:
        scopes: Scopes the token must grant, checked after the signature and claims.
        optional: Allow a request without a token (then None); a bad token is still refused.
        dpop: Demand a DPoP-bound token (RFC 9449), challenging with ``DPoP``.
        certificate: Demand a token bound to the client certificate (RFC 8705).
        introspect: Also ask ``JWKGUARD_INTROSPECTION`` whether the token is still active
            (RFC 7662), once per request, after every local check.

    Raises:
        BearerError: No token (unless optional), a refused token, or missing scopes.
    """
    state = state_of(current_app)
    constraints = state.sender.constraints
    if dpop or certificate:
        constraints = constraints.requiring(dpop=dpop, certificate=certificate)
    claims = g.get(CLAIMS_ATTRIBUTE, _UNSET)
    if claims is _UNSET:
        claims = _verify(state)
        setattr(g, CLAIMS_ATTRIBUTE, claims)
    if claims is None:
        if optional:
            return None
        raise _refuse(constraints, state, None)
    try:
        if dpop or certificate:
            constraints.check_required(claims)
        if introspect and not g.get(_INTROSPECTED_ATTRIBUTE, False):
            _introspect(state)
        if scopes:
            check_scopes(claims.scopes, scopes)
    except TokenError as exc:
        raise _refuse(constraints, state, exc, scopes) from exc
    return cast(Claims, claims)


def _introspect(state: GuardState) -> None:
    introspector = state.sender.introspector
    if introspector is None:
        raise RuntimeError(
            "require(introspect=True) needs JWKGUARD_INTROSPECTION in the app's config"
        )
    found: Credentials = g.get(_CREDENTIALS_ATTRIBUTE)
    introspector.introspect(found.token)
    setattr(g, _INTROSPECTED_ATTRIBUTE, True)


def forget_claims(exc: BaseException | None = None) -> None:
    """Drop the claims when the request ends (``g`` may outlive it in a shared app context)."""
    g.pop(CLAIMS_ATTRIBUTE, None)
    g.pop(_CREDENTIALS_ATTRIBUTE, None)
    g.pop(_INTROSPECTED_ATTRIBUTE, None)


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
