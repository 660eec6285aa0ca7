"""The Flask extension: ``init_app``, the ``require`` decorator and ``protect``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

from flask import Blueprint, Flask, Response, current_app, request

from jwkguard import ConfigurationError, JWKGuardError, RoutePolicy, Validator
from jwkguard.pipeline import Exemptions, ResourceMetadata, RouteOptions
from jwkguard.settings import list_of

from ._config import GuardState, build_state
from ._errors import BearerError, bearer_error_handler
from ._request import EXTENSION_KEY, authenticate, forget_claims, state_of

__all__ = ["EXEMPT_ATTRIBUTE", "JWKGuard"]

logger = logging.getLogger("jwkguard.flask")

P = ParamSpec("P")
R = TypeVar("R")
Target = TypeVar("Target", Flask, Blueprint)

EXEMPT_ATTRIBUTE = "_jwkguard_exempt"
_MAX_WRAPPERS = 32


def _metadata_view(resource: ResourceMetadata) -> Callable[[], Response]:
    def resource_metadata() -> Response:
        body = resource.body_bytes()
        headers = [(k, v) for k, v in resource.wire_headers(body) if k != "Content-Length"]
        return Response(body, headers=headers)

    setattr(resource_metadata, EXEMPT_ATTRIBUTE, True)
    return resource_metadata


def _is_exempt_view(view: Callable[..., Any], exempt_views: tuple[Callable[..., Any], ...]) -> bool:
    # Follow functools.wraps chains, so the function as written matches its decorated form.
    current: Any = view
    for _ in range(_MAX_WRAPPERS):
        if current is None:
            return False
        if getattr(current, EXEMPT_ATTRIBUTE, False) or any(current is v for v in exempt_views):
            return True
        current = getattr(current, "__wrapped__", None)
    return False


def _warm_up(state: GuardState) -> None:
    try:
        state.validator.warm_up()
    except JWKGuardError as exc:
        if state.require_keys:
            raise
        logger.warning(
            "jwkguard: key warm-up failed, keys will be fetched on demand: %s (%s)",
            exc,
            exc.__cause__,
        )


def _requiring(policy: RoutePolicy) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            authenticate(policy)
            return cast(R, current_app.ensure_sync(view)(*args, **kwargs))

        return wrapper

    return decorator


class JWKGuard:
    """Bearer token authentication for Flask, validated by a ``jwkguard.Validator``.

    The extension keeps no reference to any app: each app's validator and settings live in
    ``app.extensions["jwkguard"]``, so one instance serves several apps and app factories.

    Args:
        app: Set up this app now (otherwise call :meth:`init_app` later).
        validator: Use this validator for every app set up by this instance, instead of
            building one from the ``JWKGUARD_*`` config keys.

    Example:
        guard = JWKGuard()

        def create_app():
            app = Flask(__name__)
            app.config.from_mapping(JWKGUARD_ISSUERS=[...], JWKGUARD_ALGORITHMS=["RS256"])
            guard.init_app(app)
            return app
    """

    def __init__(self, app: Flask | None = None, *, validator: Validator | None = None) -> None:
        self._validator = validator
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, validator: Validator | None = None) -> None:
        """Set up ``app``: read its ``JWKGUARD_*`` config and register the error handler.

        Args:
            app: The Flask app.
            validator: A validator for this app only (overrides the constructor's).

        Raises:
            ConfigurationError: Bad or unknown ``JWKGUARD_*`` keys, or no configuration at all;
                raised here so a mistake stops the app at start-up.
            KeysUnavailable: ``JWKGUARD_REQUIRE_KEYS`` is set and no keys could be fetched.
        """
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError("JWKGuard is already set up on this app")
        state = build_state(app.config, validator or self._validator)
        if state.warm_up or state.require_keys:
            _warm_up(state)
        app.extensions[EXTENSION_KEY] = state
        resource = state.pipeline.resource
        if resource is not None:
            # RFC 9728 section 3: the document at the resource's well-known path, no token.
            app.add_url_rule(
                resource.metadata_path,
                endpoint="jwkguard_resource_metadata",
                view_func=_metadata_view(resource),
                methods=["GET"],
            )
        # Keep a handler the app registered before init_app; a later one replaces ours.
        if BearerError not in app.error_handler_spec[None][None]:
            app.register_error_handler(BearerError, bearer_error_handler)
        app.teardown_request(forget_claims)

    @property
    def validator(self) -> Validator:
        """The validator of the current app (needs an app context)."""
        return state_of(current_app).validator

    @overload
    def require(self, view: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def require(
        self,
        view: None = None,
        /,
        *,
        optional: bool = False,
        **route: Unpack[RouteOptions],
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def require(
        self,
        view: Callable[..., Any] | None = None,
        /,
        *,
        optional: bool = False,
        **route: Unpack[RouteOptions],
    ) -> Any:
        """Decorate a view so it runs only for a request with a valid bearer token.

        The claims are on ``current_claims`` (and ``get_claims()``) inside the view. The view
        keeps its signature and runs through ``current_app.ensure_sync``, so ``async def``
        views work. Use as ``@guard.require`` or ``@guard.require(scopes=[...])``.

        Args:
            view: The view, when used without parentheses.
            optional: Run the view without a token too (``current_claims`` is then falsy);
                a token that is sent must still be valid.
            route: What the token must satisfy: ``scopes``, ``dpop``, ``certificate``,
                ``introspect`` (asks ``JWKGUARD_INTROSPECTION``), ``acr_values``, ``max_age``,
                ``any_scopes``, ``roles``, ``any_roles``, ``issuers``, ``audiences``; each is
                described on :class:`jwkguard.pipeline.RouteOptions`.

        Raises:
            ConfigurationError: A bad option value, such as one string where a list is due.
        """
        policy = RoutePolicy.from_options(optional=optional, **route)
        decorator = _requiring(policy)
        return decorator if view is None else decorator(view)

    def exempt(self, view: Callable[P, R]) -> Callable[P, R]:
        """Mark a view that :meth:`protect` should leave open (a health check, a login page)."""
        setattr(view, EXEMPT_ATTRIBUTE, True)
        return view

    def protect(
        self,
        target: Target,
        *,
        exempt: Iterable[str | Callable[..., Any]] = (),
        optional: bool = False,
        exempt_methods: Iterable[str] | None = None,
        **route: Unpack[RouteOptions],
    ) -> Target:
        """Require a valid token for every request to a blueprint or a whole app.

        Call it on a blueprint before registering the blueprint. Requests that match no route
        are challenged too under an app, so the answer does not reveal which routes exist.

        Args:
            target: A ``Flask`` app or a ``Blueprint``.
            exempt: Endpoint names (``"api.health"``) or view functions left open; add to
                ``JWKGUARD_EXEMPT`` and views marked with :meth:`exempt`.
            optional: Let requests without a token through (a bad token is still refused).
            exempt_methods: Methods left open; default ``JWKGUARD_EXEMPT_METHODS``
                (``OPTIONS``, as CORS preflight requests carry no credentials).
            route: What every request's token must satisfy, as for :meth:`require`
                (:class:`jwkguard.pipeline.RouteOptions`).

        Returns:
            ``target``, so ``bp = guard.protect(Blueprint(...))`` reads naturally.
        """
        policy = RoutePolicy.from_options(optional=optional, **route)
        entries = list_of(
            exempt,
            "exempt",
            each=lambda e: isinstance(e, str) or callable(e),
            described="endpoint names or view functions",
        )
        exempt_names = frozenset(e for e in entries if isinstance(e, str))
        exempt_views = tuple(e for e in entries if not isinstance(e, str))
        if isinstance(exempt_methods, str):
            raise ConfigurationError("exempt_methods must be a list, e.g. ['OPTIONS']")
        methods = None if exempt_methods is None else Exemptions((), exempt_methods).methods

        def check_request() -> None:
            state = state_of(current_app)
            exemptions = state.exemptions
            if request.method in (exemptions.methods if methods is None else methods):
                return
            if exemptions.path_exempt(request.path):
                return
            endpoint = request.endpoint
            if endpoint is not None:
                if endpoint in exempt_names or endpoint in state.exempt:
                    return
                view = current_app.view_functions.get(endpoint)
                if view is not None and _is_exempt_view(view, exempt_views):
                    return
            authenticate(policy)

        target.before_request(check_request)
        return target
