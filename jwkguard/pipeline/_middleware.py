"""What the framework-free ASGI and WSGI middlewares share: their options, one pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar, Unpack

from .._validator import Validator
from ..errors import ConfigurationError
from ..sender._constraints import SenderConstraints
from ._exemptions import DEFAULT_EXEMPT_METHODS, Exemptions
from ._pipeline import PipelineOptions, RequestPipeline, RouteOptions, RoutePolicy

__all__ = ["CLAIMS_KEY", "GuardOptions", "GuardedApp"]

AppT = TypeVar("AppT")

CLAIMS_KEY = "jwkguard.claims"
"""Where the middlewares put the verified claims: the ASGI scope or the WSGI environ."""


class GuardOptions(RouteOptions, PipelineOptions, total=False):
    """The keyword options of :class:`GuardedApp` that a framework's middleware passes on as
    given (all but ``sender`` and ``pipeline``): the pipeline's (:class:`PipelineOptions`)
    and the route's (:class:`RouteOptions`).

    Each means what the :class:`GuardedApp` argument of the same name means.
    """

    exempt_paths: Iterable[str]
    exempt_methods: Iterable[str]
    optional: bool


class _AppOptions(RouteOptions, PipelineOptions, total=False):
    """The keyword options :class:`GuardedApp` passes on: to the pipeline, or the route."""


class GuardedApp(Generic[AppT]):
    """An app behind the pipeline: what the ASGI and WSGI middlewares share.

    Args:
        app: The application to protect.
        validator: The validator (or give ``pipeline``).
        exempt_paths: Path prefixes served without a token, on whole segments (``"/health"``
            covers ``/health/live``, not ``/healthz``; ``"/public/"`` only what lies below);
            only canonical spellings are exempt.
        exempt_methods: Methods served without a token; default ``OPTIONS`` (CORS preflight).
        optional: Let requests without a token through with ``None`` claims; a bad token is
            still refused.
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted (``"never"``, ``"websocket"``,
            ``"always"``); RFC 6750 section 2.3 advises against it.
        websocket_subprotocol: Accept a WebSocket token offered as ``[marker, token]`` (ASGI).
        sender: DPoP and certificate binding; bound tokens are refused by default.
        introspector: Introspection for opaque tokens, and for every token with
            ``introspect=True`` (RFC 7662).
        resource: The resource's RFC 9728 metadata (or its identifier URL): every challenge
            names it in ``resource_metadata``, and the document is served (``GET``/``HEAD``,
            no token) at its well-known path.
        pipeline: A ready :class:`jwkguard.RequestPipeline` instead of the options above
            (``realm`` to ``introspector``, and ``resource``).
        route: What every request's token must satisfy: ``scopes``, ``introspect`` (ask the
            introspector about every token, hybrid mode), ``dpop``, ``certificate``,
            ``acr_values``, ``max_age``, ``any_scopes``, ``roles``, ``any_roles``,
            ``issuers``, ``audiences``; see :class:`jwkguard.pipeline.RouteOptions`.
    """

    def __init__(
        self,
        app: AppT,
        validator: Validator | None = None,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_methods: Iterable[str] = DEFAULT_EXEMPT_METHODS,
        optional: bool = False,
        sender: SenderConstraints | None = None,
        pipeline: RequestPipeline | None = None,
        **options: Unpack[_AppOptions],
    ) -> None:
        route: dict[str, Any] = {}
        built: dict[str, Any] = {}
        for name, value in options.items():
            (built if name in PipelineOptions.__annotations__ else route)[name] = value
        if pipeline is None:
            if validator is None:
                raise ConfigurationError("give a validator or a pipeline")
            pipeline = RequestPipeline(validator, sender=sender, **built)
        elif validator is not None and validator is not pipeline.validator:
            raise ConfigurationError("the pipeline was built for another validator")
        elif built.get("resource") is not None:
            raise ConfigurationError("give the resource to the pipeline, not beside it")
        self.app = app
        self.pipeline = pipeline
        self.resource = pipeline.resource
        self.policy = RoutePolicy.from_options(optional=optional, **route)
        pipeline.check_policy(self.policy)
        self.exemptions = Exemptions(exempt_paths, exempt_methods)
