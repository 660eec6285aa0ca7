"""What the framework-free ASGI and WSGI middlewares share: their options, one pipeline."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Generic, TypeVar

from ._exemptions import DEFAULT_EXEMPT_METHODS, Exemptions
from ._introspection import Introspector
from ._pipeline import QueryPolicy, RequestPipeline, RoutePolicy, scope_set
from ._sender import SenderConstraints
from ._validator import Validator
from .errors import ConfigurationError

__all__ = ["CLAIMS_KEY", "GuardedApp"]

AppT = TypeVar("AppT")

CLAIMS_KEY = "jwkguard.claims"
"""Where the middlewares put the verified claims: the ASGI scope or the WSGI environ."""


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
        scopes: Scopes every request's token must grant.
        realm: The ``realm`` of the ``WWW-Authenticate`` challenge.
        allow_query: Where ``?access_token=`` is accepted (``"never"``, ``"websocket"``,
            ``"always"``); RFC 6750 section 2.3 advises against it.
        websocket_subprotocol: Accept a WebSocket token offered as ``[marker, token]`` (ASGI).
        sender: DPoP and certificate binding; bound tokens are refused by default.
        introspector: Introspection for opaque tokens, and for every token with
            ``introspect=True`` (RFC 7662).
        introspect: Ask the introspector about every token (hybrid mode).
        pipeline: A ready :class:`jwkguard.RequestPipeline` instead of the options above.
    """

    def __init__(
        self,
        app: AppT,
        validator: Validator | None = None,
        *,
        exempt_paths: Iterable[str] = (),
        exempt_methods: Iterable[str] = DEFAULT_EXEMPT_METHODS,
        optional: bool = False,
        scopes: Collection[str] = (),
        realm: str = "api",
        allow_query: QueryPolicy = "never",
        websocket_subprotocol: str | None = None,
        sender: SenderConstraints | None = None,
        introspector: Introspector | None = None,
        introspect: bool = False,
        pipeline: RequestPipeline | None = None,
    ) -> None:
        if pipeline is None:
            if validator is None:
                raise ConfigurationError("give a validator or a pipeline")
            pipeline = RequestPipeline(
                validator,
                realm=realm,
                allow_query=allow_query,
                websocket_subprotocol=websocket_subprotocol,
                sender=sender,
                introspector=introspector,
            )
        elif validator is not None and validator is not pipeline.validator:
            raise ConfigurationError("the pipeline was built for another validator")
        self.app = app
        self.pipeline = pipeline
        self.policy = RoutePolicy(
            scopes=scope_set(scopes, "scopes"), optional=optional, introspect=introspect
        )
        pipeline.check_policy(self.policy)
        self.exemptions = Exemptions(exempt_paths, exempt_methods)
