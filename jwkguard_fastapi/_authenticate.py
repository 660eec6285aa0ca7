"""The glue between an ASGI connection and the request pipeline, for every FastAPI entry point.

The pipeline decides (credentials, validation, sender binding, introspection, scopes, usage);
this module only builds the request view from the raw ASGI scope, keeps one pipeline per
validator, and remembers a connection's decision (per validator) so that a second dependency
on the same route neither validates the token again nor spends its DPoP proof twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from functools import partial
from typing import TypedDict, Unpack

from starlette.types import Scope

from jwkguard import RequestPipeline, RoutePolicy, Validator
from jwkguard.pipeline import (
    Decision,
    PipelineOptions,
    QueryPolicy,
    ResourceMetadata,
    view_from_asgi,
)
from jwkguard.sender import SenderConstraints

__all__ = ["Authenticator", "AuthenticatorOptions"]

# Where a connection's decision is kept (in the scope's state) for later dependencies.
_DECIDED = "jwkguard_decision"


class AuthenticatorOptions(TypedDict, total=False):
    """The options of an :class:`Authenticator` that an entry point passes on as given.

    Each means what the :class:`Authenticator` argument of the same name means.
    """

    realm: str
    allow_query: QueryPolicy
    websocket_subprotocol: str | None
    sender_constraints: SenderConstraints | None
    resource: ResourceMetadata | str | None


class Authenticator:
    """One pipeline per validator, with the options every FastAPI entry point shares.

    Args:
        realm: The ``realm`` of ``WWW-Authenticate`` challenges.
        allow_query: Where the ``access_token`` query parameter is accepted.
        websocket_subprotocol: A marker such as ``"bearer"``: a WebSocket client may then
            offer the subprotocols ``[marker, token]``.
        sender_constraints: DPoP and certificate binding; bound tokens are refused by default.
        introspector: Asks the authorization server about opaque tokens and, with
            ``introspect``, about every token (RFC 7662 hybrid mode).
        introspect: Introspect every token after the local checks.
        resource: The resource's RFC 9728 metadata, or its identifier URL (then described
            from each validator): every challenge carries ``resource_metadata``.
    """

    __slots__ = ("_build", "_pipelines", "_policies", "introspect", "resource")

    def __init__(
        self,
        *,
        sender_constraints: SenderConstraints | None = None,
        introspect: bool | None = None,
        **options: Unpack[PipelineOptions],
    ) -> None:
        # Checked now, so a bad option fails at start-up; the pipelines come per validator.
        RequestPipeline.check_options(sender=sender_constraints, **options)
        self._build: Callable[[Validator], RequestPipeline] = partial(
            RequestPipeline, sender=sender_constraints, **options
        )
        self.resource = options.get("resource")
        introspector = options.get("introspector")
        self.introspect = introspector is not None if introspect is None else introspect
        self._pipelines: dict[int, tuple[Validator, RequestPipeline]] = {}
        self._policies: dict[
            tuple[bool, tuple[str, ...], tuple[str, ...], int | None, RoutePolicy | None],
            RoutePolicy,
        ] = {}

    def pipeline(self, validator: Validator) -> RequestPipeline:
        """The pipeline for ``validator`` (built on first use, validated like the options)."""
        entry = self._pipelines.get(id(validator))
        if entry is None or entry[0] is not validator:
            entry = (validator, self._build(validator))
            self._pipelines[id(validator)] = entry
        return entry[1]

    def metadata(self, validator: Validator) -> ResourceMetadata | None:
        """The RFC 9728 metadata of the resource, as described with ``validator``."""
        return self.pipeline(validator).resource

    def policy(
        self,
        scopes: Collection[str] = (),
        *,
        optional: bool = False,
        acr_values: tuple[str, ...] = (),
        max_age: int | None = None,
        narrow: RoutePolicy | None = None,
    ) -> RoutePolicy:
        """The route policy for ``scopes``, step-up and the dependency's issuer, audience,
        any-of scope and role demands (``narrow``, None when it has none; cached: routes ask
        on every request)."""
        # A route passes its scopes in the same order every time: no sorting needed.
        key = (optional, tuple(scopes), acr_values, max_age, narrow)
        policy = self._policies.get(key)
        if policy is None:
            policy = replace(
                narrow if narrow is not None else RoutePolicy(),
                scopes=frozenset(scopes),
                optional=optional,
                introspect=self.introspect,
                acr_values=acr_values,
                max_age=max_age,
            )
            self._policies[key] = policy
        return policy

    async def decide(self, scope: Scope, validator: Validator, policy: RoutePolicy) -> Decision:
        """The pipeline's decision for the connection under ``policy``."""
        pipeline = self.pipeline(validator)
        view = view_from_asgi(scope)
        state: dict[str, object] = scope.setdefault("state", {})
        earlier = state.get(_DECIDED)
        if isinstance(earlier, tuple) and earlier[0] is validator:
            previous: Decision = earlier[1]
            decision: Decision = await self.pipeline(validator).aauthorize(previous, view, policy)
            return decision
        decision = await pipeline.arun(view, policy)
        if decision.claims is not None:
            state[_DECIDED] = (validator, decision)
        return decision

    def offered_subprotocol(self, scope: Scope, validator: Validator) -> str | None:
        """The marker subprotocol to select when accepting, if the client offered it."""
        return self.pipeline(validator).offered_subprotocol(view_from_asgi(scope))
