"""Django REST framework: an authentication class and a scope permission.

.. code-block:: python

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["jwkguard_django.rest_framework.JWKGuardAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["jwkguard_django.rest_framework.HasScopes"],
    }

Refusals carry the same status, ``WWW-Authenticate`` header and JSON body as everywhere else
in jwkguard (RFC 6750 section 3), rendered through DRF's exception handler.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jwkguard._lazy import missing_extra

try:
    from rest_framework import exceptions
    from rest_framework.authentication import BaseAuthentication
    from rest_framework.permissions import BasePermission
    from rest_framework.request import Request
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise missing_extra("jwkguard_django.rest_framework", "Django REST framework", "drf") from exc

from jwkguard import Claims, InsufficientScope, RoutePolicy
from jwkguard.pipeline import ErrorResponse

from ._auth import authenticate, csrf_refusal, judge
from .conf import get_state

__all__ = ["HasScopes", "JWKGuardAPIError", "JWKGuardAuthentication"]


class JWKGuardAPIError(exceptions.APIException):
    """A jwkguard refusal as a DRF exception: status, challenge, ``Retry-After`` and body.

    Attributes:
        answer: The framework-neutral refusal it was built from.
    """

    def __init__(self, answer: ErrorResponse) -> None:
        super().__init__(detail=answer.body, code=answer.body.get("error"))
        self.answer = answer
        self.status_code = answer.status_code
        # DRF's exception handler turns these two attributes into response headers.
        self.auth_header = answer.headers.get("WWW-Authenticate")
        retry_after = answer.headers.get("Retry-After")
        self.wait = int(retry_after) if retry_after else None


class JWKGuardAuthentication(BaseAuthentication):
    """Authenticates DRF requests with bearer tokens; ``request.auth`` is the ``Claims``.

    Reuses the result of ``JWKGuardMiddleware`` when it ran; validates otherwise. A request
    without a token is anonymous (permissions decide); an invalid token is refused. A token
    from the query string (``ALLOW_QUERY_TOKEN``) authenticates only a request that also
    passes Django's CSRF check, as ``SessionAuthentication`` would demand.
    """

    def authenticate(self, request: Request) -> tuple[Any, Claims] | None:
        """``(user, claims)`` for a valid token, None without one.

        Raises:
            JWKGuardAPIError: The token is invalid (401/400) or no keys can be had (503).
        """
        outcome = authenticate(request._request)
        if outcome.decision.response is not None:
            raise JWKGuardAPIError(outcome.decision.response)
        if outcome.claims is None:
            return None
        if not outcome.csrf_exempt and csrf_refusal(request._request) is not None:
            # DRF views are CSRF-exempt; a token from the query string must not make them so.
            raise exceptions.PermissionDenied(
                "CSRF Failed: an access token in the query string does not exempt a request"
            )
        return outcome.user, outcome.claims

    def authenticate_header(self, request: Request) -> str:
        """The bare challenge, so that DRF answers 401 rather than 403 when no token is sent."""
        return get_state().pipeline.missing().headers["WWW-Authenticate"]


def _required_scopes(request: Request, view: Any) -> frozenset[str] | None:
    """The scopes the view demands for this request; None when no entry covers it."""
    required = getattr(view, "required_scopes", ())
    if type(required) in (list, tuple, frozenset):  # the common case, without an ABC check
        return frozenset(required)
    if isinstance(required, str):
        raise TypeError("required_scopes must be a list of scope names")
    if not isinstance(required, Mapping):
        return frozenset(required)
    action = getattr(view, "action", None)
    method = request.method
    # Django answers HEAD with the GET handler unless the view has its own: GET's scopes.
    head_as_get = "GET" if method == "HEAD" and not _has_own_head(view) else None
    for key in (action, method, head_as_get, "*"):
        if key is not None and key in required:
            scopes: Iterable[str] = required[key]
            return frozenset(scopes)
    return None


def _has_own_head(view: Any) -> bool:
    """True when the view's class defines ``head`` (Django's ``View.setup`` copies ``get``)."""
    return any("head" in vars(klass) for klass in type(view).__mro__)


# View attributes read besides ``required_scopes``, and the RoutePolicy field each sets.
_VIEW_DEMANDS = (
    ("any_scopes", "any_scopes"),
    ("required_roles", "roles"),
    ("any_roles", "any_roles"),
    ("accepted_issuers", "issuers"),
    ("accepted_audiences", "audiences"),
)


def _view_demands(view: Any) -> dict[str, Any]:
    demands: dict[str, Any] = {}
    for attribute, name in _VIEW_DEMANDS:
        values = getattr(view, attribute, None)
        if values:
            if isinstance(values, str):
                raise TypeError(f"{attribute} must be a list of names")
            demands[name] = frozenset(values)
    # Step-up (RFC 9470), under the names token_required takes; RoutePolicy checks the values.
    acr_values = getattr(view, "acr_values", None)
    if acr_values:
        if isinstance(acr_values, str):
            raise TypeError("acr_values must be a list of names")
        demands["acr_values"] = tuple(acr_values)
    max_age = getattr(view, "max_age", None)
    if max_age is not None:
        demands["max_age"] = max_age
    return demands


class HasScopes(BasePermission):
    """Requires a valid token granting the view's ``required_scopes``.

    ``required_scopes`` is a list (every method), or a mapping from a viewset action or an
    HTTP method to a list, with ``"*"`` for the rest (``HEAD`` without an entry takes
    ``GET``'s, whose handler runs for it); a request no entry covers is refused.
    Without a token the answer is 401, with too few scopes 403 ``insufficient_scope``.

    The view may also demand, each as a list for every method: ``any_scopes`` (at least one),
    ``required_roles`` (all), ``any_roles`` (at least one), ``accepted_issuers`` and
    ``accepted_audiences`` (the :class:`jwkguard.RoutePolicy` fields ``any_scopes``,
    ``roles``, ``any_roles``, ``issuers``, ``audiences``). Step-up (RFC 9470), as
    ``token_required`` takes it: ``acr_values`` (the token's ``acr`` must be one of these) and
    ``max_age`` (seconds since the login, ``auth_time``); a token that falls short gets 401
    ``insufficient_user_authentication`` with the demand in the challenge.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        """True, or raises the RFC 6750 refusal.

        Raises:
            JWKGuardAPIError: No valid token (401) or missing scopes (403).
        """
        claims = request.auth
        scopes = _required_scopes(request, view)
        demands = _view_demands(view)
        if (
            not demands
            and isinstance(claims, Claims)
            and scopes is not None
            and claims.scopes >= scopes
        ):
            return True
        if scopes is None:
            pipeline = get_state().pipeline
            if not isinstance(claims, Claims):
                raise JWKGuardAPIError(pipeline.missing())
            exc = InsufficientScope("No scope grants this method", reason="method_not_covered")
            raise JWKGuardAPIError(pipeline.refusal(exc))
        policy = RoutePolicy(scopes=scopes, **demands)
        answer = judge(request._request, policy)
        if answer is not None:
            raise JWKGuardAPIError(answer)
        return True
