"""What the framework-free ASGI and WSGI middlewares share: options into one pipeline."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ._exemptions import Exemptions
from ._introspection import Introspector
from ._pipeline import QueryPolicy, RequestPipeline, RoutePolicy, scope_set
from ._sender import SenderConstraints
from ._validator import Validator
from .errors import ConfigurationError

__all__ = ["CLAIMS_KEY", "MiddlewareCore"]

CLAIMS_KEY = "jwkguard.claims"
"""Where the middlewares put the verified claims: the ASGI scope or the WSGI environ."""


class MiddlewareCore:
    """The pipeline, the route policy and the exemptions of one middleware."""

    __slots__ = ("exemptions", "pipeline", "policy")

    def __init__(
        self,
        validator: Validator | None,
        *,
        pipeline: RequestPipeline | None,
        exempt_paths: Iterable[str],
        exempt_methods: Iterable[str],
        optional: bool,
        scopes: Collection[str],
        realm: str,
        allow_query: QueryPolicy,
        websocket_subprotocol: str | None,
        sender: SenderConstraints | None,
        introspector: Introspector | None,
        introspect: bool,
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
        self.pipeline = pipeline
        self.policy = RoutePolicy(
            scopes=scope_set(scopes, "scopes"),
            optional=optional,
            introspect=introspect,
        )
        pipeline.check_policy(self.policy)
        self.exemptions = Exemptions(exempt_paths, exempt_methods)
