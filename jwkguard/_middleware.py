"""What the framework-free ASGI and WSGI middlewares share: their options, one pipeline."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Generic, TypeVar

from ._exemptions import DEFAULT_EXEMPT_METHODS, Exemptions
from ._introspection import Introspector
from ._pipeline import QueryPolicy, RequestPipeline, RoutePolicy, acr_list, scope_set
from ._resource import ResourceMetadata
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
        resource: The resource's RFC 9728 metadata (or its identifier URL): every challenge
            names it in ``resource_metadata``, and the document is served (``GET``/``HEAD``,
            no token) at its well-known path.
        acr_values: Step-up (RFC 9470): every token's ``acr`` must be one of these.
        max_age: Step-up (RFC 9470): the user authenticated at most this many seconds ago.
        any_scopes: Every token must grant at least one of these scopes.
        roles: Every token must hold all of these roles (``Claims.roles``).
        any_roles: Every token must hold at least one of these roles.
        issuers: Accept only tokens from these of the validator's issuers.
        audiences: Accept only tokens whose ``aud`` names one of these.
        pipeline: A ready :class:`jwkguard.RequestPipeline` instead of the options above
            (``realm`` to ``introspector``, and ``resource``).
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
        resource: ResourceMetadata | str | None = None,
        acr_values: Collection[str] = (),
        max_age: int | None = None,
        any_scopes: Collection[str] = (),
        roles: Collection[str] = (),
        any_roles: Collection[str] = (),
        issuers: Collection[str] = (),
        audiences: Collection[str] = (),
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
                resource=resource,
            )
        elif validator is not None and validator is not pipeline.validator:
            raise ConfigurationError("the pipeline was built for another validator")
        elif resource is not None:
            raise ConfigurationError("give the resource to the pipeline, not beside it")
        self.app = app
        self.pipeline = pipeline
        self.resource = pipeline.resource
        self.policy = RoutePolicy(
            scopes=scope_set(scopes, "scopes"),
            optional=optional,
            introspect=introspect,
            acr_values=acr_list(acr_values),
            max_age=max_age,
            any_scopes=scope_set(any_scopes, "any_scopes"),
            roles=scope_set(roles, "roles"),
            any_roles=scope_set(any_roles, "any_roles"),
            issuers=scope_set(issuers, "issuers"),
            audiences=scope_set(audiences, "audiences"),
        )
        pipeline.check_policy(self.policy)
        self.exemptions = Exemptions(exempt_paths, exempt_methods)
