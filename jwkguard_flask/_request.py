"""One request's authentication: the pipeline decides, the claims are kept on ``g``.

``require`` and ``protect`` both call :func:`authenticate`, so a view under both is validated
once: the second call only applies its own route policy to the decision already on ``g``.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from werkzeug.local import LocalProxy

from jwkguard import Claims, RoutePolicy
from jwkguard.pipeline import Decision, view_from_environ

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
_DECISION_ATTRIBUTE = "_jwkguard_decision"


def state_of(app: Flask) -> GuardState:
    """The jwkguard state of ``app``, set up by ``JWKGuard.init_app``."""
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, GuardState):
        raise RuntimeError("JWKGuard is not set up on this app: call guard.init_app(app) first")
    return state


def authenticate(policy: RoutePolicy) -> Claims | None:
    """The verified claims of the current request under ``policy``, stored on ``g``.

    Raises:
        BearerError: No token (unless optional), a refused token, or missing scopes.
    """
    pipeline = state_of(current_app).pipeline
    view = view_from_environ(request.environ)
    earlier: Decision | None = g.get(_DECISION_ATTRIBUTE)
    if earlier is None:
        decision = pipeline.run(view, policy)
    else:
        decision = pipeline.authorize(earlier, view, policy)
    if decision.response is not None:
        raise BearerError(decision.response, decision.error)
    if decision.claims is not None:
        setattr(g, _DECISION_ATTRIBUTE, decision)
    setattr(g, CLAIMS_ATTRIBUTE, decision.claims)
    return decision.claims


def forget_claims(exc: BaseException | None = None) -> None:
    """Drop the claims when the request ends (``g`` may outlive it in a shared app context)."""
    g.pop(CLAIMS_ATTRIBUTE, None)
    g.pop(_DECISION_ATTRIBUTE, None)


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
