"""The request pipeline: one ordered judgement of a request, for every adapter.

Every entry point (FastAPI, Starlette, Django, DRF, Flask, the ASGI and WSGI middlewares and
``jwkguard serve``) builds a :class:`RequestView` and a :class:`RoutePolicy`, calls
:meth:`RequestPipeline.run` or :meth:`RequestPipeline.arun`, and renders the
:class:`Decision`. The checks run in one order, everywhere:

1. **credentials**: exactly one ``Authorization`` header (``Bearer`` or ``DPoP``), or the
   ``access_token`` query parameter where allowed (at most one, never beside a header), or a
   WebSocket subprotocol token; none: anonymous if the route is optional, else 401;
2. **token**: :meth:`Validator.validate` (signature, claims, lifecycle); an opaque token
   (not a compact JWS or JWE) goes to the introspector instead, when one is configured;
3. **sender binding**: DPoP proof (RFC 9449) and certificate (RFC 8705) for bound tokens, the
   DPoP scheme, or routes that require either;
4. **introspection** (hybrid mode, RFC 7662) on routes that ask for it;
5. **route policy**: scopes, then step-up (``acr`` and ``auth_time``, RFC 9470);
6. **usage**: ``Lifecycle.observe`` with the client address, for reuse alerts.

With a :class:`~jwkguard.pipeline.ResourceMetadata` (RFC 9728), every challenge names the resource's
metadata document (``resource_metadata``), so a refused client learns where to get a token.

The flow is one generator (:meth:`RequestPipeline._flow`) that yields the steps needing IO;
:meth:`run` and :meth:`arun` only differ in how they perform those steps (the httpx
``Auth.auth_flow`` pattern), so sync and async adapters share every decision.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Generator, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import parse_qsl

from .._checks import list_of
from .._claims_result import Claims
from .._policy import (
    check_any_scopes,
    check_roles,
    check_route_audience,
    check_route_issuer,
    check_scopes,
    check_user_authentication,
)
from .._validator import Validator
from ..errors import ConfigurationError, InvalidRequest, TokenError
from ..lifecycle._policy import Lifecycle
from ..sender._constraints import PresentedRequest, SenderConstraints
from ..sender._introspection import IntrospectionUnavailable, Introspector
from ._bearer import B64TOKEN as _B64TOKEN
from ._bearer import Credentials, ErrorResponse, extract_credentials
from ._request_view import RequestView
from ._resource import ResourceMetadata, check_resource_audience

__all__ = [
    "Decision",
    "QueryPolicy",
    "RequestPipeline",
    "RouteOptions",
    "RoutePolicy",
    "TokenSource",
    "acr_list",
    "query_policy",
    "scope_set",
]

QueryPolicy = Literal["never", "websocket", "always"]
"""Where ``?access_token=`` is accepted: nowhere, on WebSocket handshakes only, everywhere."""

TokenSource = Literal["header", "query", "subprotocol"]
"""Where the request's access token came from."""

_QUERY_POLICIES = ("never", "websocket", "always")
# A query parameter an upstream may read as ``access_token``: its name decoded, ``;`` taken as
# a separator too (as some frameworks do), and PHP's ``.``, space and ``[`` read as ``_``.
_TOKEN_NAME = re.compile(r"access[_. \[]token")

# The steps of the flow that need IO, performed by the sync or async driver.
_VALIDATE = 0
_BIND = 1
_INTROSPECT = 2
_OBSERVE = 3

_Step = tuple[int, Any]
_Flow = Generator[_Step, Any, "Decision"]


def acr_list(values: Iterable[str], what: str = "acr_values") -> tuple[str, ...]:
    """Step-up ``acr`` values as a tuple in their order of preference (RFC 9470 section 3).

    Raises:
        ConfigurationError: One string instead of a list, or a value that is not a name.
    """
    described = "acr names (without spaces)"
    return tuple(dict.fromkeys(list_of(values, what, each=_is_acr, described=described)))


def _is_acr(value: object) -> bool:
    return isinstance(value, str) and value != "" and " " not in value


def scope_set(scopes: Iterable[str], what: str) -> frozenset[str]:
    """Names (scopes, roles, issuers, audiences) as a set, refusing one bare string.

    Raises:
        ConfigurationError: One string instead of a list, or an item that is not a string.
    """
    return frozenset(list_of(scopes, what, each=_is_str, described="strings"))


def _is_str(value: object) -> bool:
    return isinstance(value, str)


class RouteOptions(TypedDict, total=False):
    """The keyword options every adapter takes for a route (or a whole app), as given.

    :meth:`RoutePolicy.from_options` turns them into a policy; each means what the
    :class:`RoutePolicy` field of the same name means. Lists of names must be lists (one bare
    string is refused) of non-empty strings; the defaults demand nothing.

    Attributes:
        scopes: Scopes the token must grant, all of them; else 403 ``insufficient_scope``.
        dpop: Demand a DPoP-bound token (RFC 9449); the challenge is then ``DPoP``.
        certificate: Demand a token bound to the TLS client certificate (RFC 8705).
        introspect: After every local check, also ask the authorization server whether the
            token is still active (RFC 7662 hybrid mode, for high-value routes).
        acr_values: Step-up (RFC 9470): the token's ``acr`` must be one of these, else 401
            ``insufficient_user_authentication`` with ``acr_values`` in the challenge.
        max_age: Step-up (RFC 9470): the user authenticated (``auth_time``) at most this many
            seconds ago.
        any_scopes: The token must grant at least one of these scopes (403).
        roles: The token must hold every one of these roles (``Claims.roles``); else 403
            ``insufficient_scope`` with reason ``insufficient_role``.
        any_roles: The token must hold at least one of these roles.
        issuers: Accept only tokens of these issuers (401, ``issuer_not_accepted``).
        audiences: Accept only tokens for these audiences (401, ``audience_not_accepted``).
    """

    scopes: Iterable[str]
    dpop: bool
    certificate: bool
    introspect: bool
    acr_values: Iterable[str]
    max_age: int | None
    any_scopes: Iterable[str]
    roles: Iterable[str]
    any_roles: Iterable[str]
    issuers: Iterable[str]
    audiences: Iterable[str]


_ROUTE_OPTIONS = frozenset(RouteOptions.__annotations__)
_NAME_OPTIONS = ("scopes", "any_scopes", "roles", "any_roles", "issuers", "audiences")


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDemands:
    """What a route demands of a token beside its scopes (keyword-only fields).

    :class:`RoutePolicy` and each adapter's own declaration of a route (the forward-auth
    rules, Django's view policies) build on it, so a demand has one name and one meaning
    everywhere; :class:`RoutePolicy` documents and checks the fields.
    """

    dpop: bool = False
    certificate: bool = False
    introspect: bool = False
    acr_values: tuple[str, ...] = ()
    max_age: int | None = None
    any_scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    any_roles: frozenset[str] = frozenset()
    issuers: frozenset[str] = frozenset()
    audiences: frozenset[str] = frozenset()

    def demands(self) -> dict[str, Any]:
        """These fields by name, e.g. for a :class:`RoutePolicy` demanding the same."""
        return {name: getattr(self, name) for name in _DEMANDS}


_DEMANDS = tuple(demand.name for demand in fields(RouteDemands))


@dataclass(frozen=True, slots=True)
class RoutePolicy(RouteDemands):
    """What one route (or a whole app) demands of a request.

    Attributes:
        scopes: Scopes the token must grant (all of them), checked after every other check.
        optional: A request without a token passes with no claims; a bad token is refused.
        dpop: The token must be DPoP-bound (RFC 9449); refusals challenge with ``DPoP``.
        certificate: The token must be bound to the client certificate (RFC 8705).
        introspect: Also ask the introspector whether the token is active (RFC 7662 hybrid
            mode), after every local check.
        acr_values: Step-up (RFC 9470): the token's ``acr`` must be one of these
            authentication context classes (in order of preference, for the challenge).
        max_age: Step-up (RFC 9470): the user must have authenticated (``auth_time``) at
            most this many seconds ago.
        any_scopes: The token must grant at least one of these scopes (beside ``scopes``).
        roles: The token must hold every one of these roles (``Claims.roles``).
        any_roles: The token must hold at least one of these roles.
        issuers: Only tokens from these issuers (exact ``iss``, among the validator's).
        audiences: Only tokens whose ``aud`` names one of these.

    A token that fails ``scopes`` or ``any_scopes`` is refused with 403 ``insufficient_scope``
    naming them; ``roles`` or ``any_roles`` with 403 ``insufficient_scope`` and reason
    ``insufficient_role``; ``issuers`` or ``audiences`` with 401 ``invalid_token`` and reason
    ``issuer_not_accepted`` or ``audience_not_accepted``.
    A token that fails ``acr_values`` or ``max_age`` is refused with 401
    ``insufficient_user_authentication``, the challenge naming both (RFC 9470 section 3).
    """

    scopes: frozenset[str] = frozenset()
    optional: bool = False
    # True when any of the five above is set: one test on the hot path for all of them.
    narrowed: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", scope_set(self.scopes, "scopes"))
        narrowed = False
        for name in ("any_scopes", "roles", "any_roles", "issuers", "audiences"):
            values = scope_set(getattr(self, name), name)
            if "" in values:
                raise ConfigurationError(f"{name} must not hold an empty string")
            object.__setattr__(self, name, values)
            narrowed = narrowed or bool(values)
        object.__setattr__(self, "narrowed", narrowed)
        for name in ("optional", "dpop", "certificate", "introspect"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be True or False")
        object.__setattr__(self, "acr_values", acr_list(self.acr_values))
        max_age = self.max_age
        if max_age is not None and (type(max_age) is not int or max_age < 0):
            raise ConfigurationError("max_age must be a non-negative number of seconds")

    @property
    def step_up(self) -> bool:
        """True when the route demands an ``acr`` or a recent ``auth_time`` (RFC 9470)."""
        return bool(self.acr_values) or self.max_age is not None

    @classmethod
    def from_options(
        cls, *, optional: bool = False, **options: Unpack[RouteOptions]
    ) -> RoutePolicy:
        """The policy of a route declared with ``options`` (see :class:`RouteOptions`).

        The one place where adapters turn their keyword options into a policy.

        Raises:
            ConfigurationError: A bad value, such as one string where a list is due.
            TypeError: An option that :class:`RouteOptions` does not name.
        """
        unknown = sorted(options.keys() - _ROUTE_OPTIONS)
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        values: dict[str, Any] = dict(options)
        for name in _NAME_OPTIONS:
            given = values.get(name, ())
            if isinstance(given, str):
                noun = "scope names" if name == "scopes" else "names"
                raise ConfigurationError(
                    f"{name} must be a list of {noun}, e.g. {name}=[{given!r}]"
                )
            values[name] = tuple(given)  # read once: the argument may be an iterator
        acr_values = values.get("acr_values", ())
        values["acr_values"] = acr_values if isinstance(acr_values, str) else tuple(acr_values)
        if "" in values["scopes"]:
            raise ConfigurationError("scopes must not hold an empty string")
        return cls(optional=optional, **values)

    def with_scopes(self, scopes: Collection[str]) -> RoutePolicy:
        """This policy, also requiring ``scopes``."""
        if not scopes:
            return self
        return replace(self, scopes=self.scopes | scope_set(scopes, "scopes"))


DEFAULT_POLICY = RoutePolicy()
OPTIONAL_POLICY = RoutePolicy(optional=True)


@dataclass(slots=True, eq=False, repr=False)
class Decision:
    """The pipeline's answer: the verified claims, or the refusal to send (read-only).

    A slotted dataclass, not a frozen one: one is built per request, and a frozen
    dataclass's ``__init__`` costs several times as much.

    Attributes:
        claims: The verified claims; None for a refusal or an anonymous optional request.
        response: The RFC 6750 / RFC 9449 answer of a refusal; None when the request passes.
        error: The refusal's exception (None for a missing token or a passing request).
        credentials: The token and its scheme, when the request carried one.
        source: Where the token came from (``header``, ``query`` or ``subprotocol``).
        introspected: The introspector vouched for the token in this request.
    """

    claims: Claims | None = None
    response: ErrorResponse | None = None
    error: TokenError | None = None
    credentials: Credentials | None = None
    source: TokenSource | None = None
    introspected: bool = False

    @property
    def allowed(self) -> bool:
        """True when the request may proceed (with claims, or anonymous where optional)."""
        return self.response is None

    def __repr__(self) -> str:
        if self.response is not None:
            return f"Decision(refused={self.response.status_code})"
        subject = self.claims.subject if self.claims is not None else None
        return f"Decision(allowed, subject={subject!r}, source={self.source!r})"


ANONYMOUS = Decision()


class PipelineOptions(TypedDict, total=False):
    """The keyword options of :class:`RequestPipeline` that adapters take and pass on as given
    (the ASGI and WSGI middlewares, FastAPI's ``JWTBearer``).

    Each means what the :class:`RequestPipeline` argument of the same name means; the sender
    constraints are not among them, since adapters name that option differently.
    """

    realm: str
    allow_query: QueryPolicy
    websocket_subprotocol: str | None
    introspector: Introspector | None
    resource: ResourceMetadata | str | None


class RequestPipeline:
    """Judges requests for one validator, the same way in every adapter.

    Args:
        validator: The validator. Its ``Lifecycle``, if any, is attached so fleet
            ``force_refresh`` broadcasts refetch its keys, and observes token use when it
            has a reuse watch.
        realm: The ``realm`` of ``WWW-Authenticate`` challenges.
        allow_query: Where ``?access_token=`` is accepted (RFC 6750 section 2.3 advises
            against it): ``"never"`` (default), ``"websocket"`` or ``"always"``; ``True`` and
            ``False`` mean ``"always"`` and ``"never"``, the spelling every settings file
            accepts too.
        websocket_subprotocol: A marker such as ``"bearer"``: a WebSocket client may offer
            the subprotocols ``[marker, token]``.
        sender: DPoP and certificate binding; by default tokens bound to a key or a
            certificate are refused, since nothing can check the binding.
        introspector: Asks the authorization server (RFC 7662): for opaque tokens, and for
            JWTs on routes whose policy says ``introspect``.
        introspect_opaque: Send tokens that are not JWTs to the introspector (default when
            one is configured); False refuses them as malformed.
        resource: The resource's RFC 9728 metadata, or its identifier (an ``https`` URL;
            the rest is then described from the validator and ``sender``, see
            :meth:`ResourceMetadata.describe`): every challenge then carries
            ``resource_metadata`` (RFC 9728 section 5.1), and adapters serve the document.
        resource_audience: Also refuse tokens whose ``aud`` does not name the resource
            identifier (RFC 8707), right after validation, whatever audiences the validator
            accepts (an MCP server must); needs ``resource``.
    """

    __slots__ = (
        "_allow_query",
        "_audience",
        "_challenge",
        "_lifecycle",
        "_opaque",
        "_ws_allow_query",
        "introspector",
        "realm",
        "resource",
        "sender",
        "subprotocol",
        "validator",
    )

    def __init__(
        self,
        validator: Validator,
        *,
        realm: str = "api",
        allow_query: QueryPolicy | bool = "never",
        websocket_subprotocol: str | None = None,
        sender: SenderConstraints | None = None,
        introspector: Introspector | None = None,
        introspect_opaque: bool = True,
        resource: ResourceMetadata | str | None = None,
        resource_audience: bool = False,
    ) -> None:
        if not isinstance(validator, Validator):
            raise ConfigurationError("the request pipeline needs a jwkguard.Validator")
        self.check_options(
            realm=realm,
            allow_query=allow_query,
            websocket_subprotocol=websocket_subprotocol,
            sender=sender,
            introspector=introspector,
        )
        self.validator = validator
        self.realm = realm
        self.subprotocol = websocket_subprotocol
        self.sender = sender if sender is not None else SenderConstraints()
        self.introspector = introspector
        self._opaque = introspector is not None and introspect_opaque
        if isinstance(resource, str):
            resource = ResourceMetadata.describe(resource, validator=validator, sender=self.sender)
        elif resource is not None and not isinstance(resource, ResourceMetadata):
            raise ConfigurationError(
                "resource must be a jwkguard.pipeline.ResourceMetadata or a URL"
            )
        self.resource: ResourceMetadata | None = resource
        self._challenge = resource.challenge_params if resource is not None else ()
        if resource_audience and resource is None:
            raise ConfigurationError("resource_audience needs a resource")
        self._audience = resource.resource if resource is not None and resource_audience else None
        policy = query_policy(allow_query)
        self._allow_query = policy == "always"
        self._ws_allow_query = policy != "never"
        lifecycle = validator.lifecycle
        if isinstance(lifecycle, Lifecycle):
            lifecycle.attach(validator)
            self._lifecycle: Lifecycle | None = lifecycle if lifecycle.reuse else None
        else:
            self._lifecycle = None

    # -- configuration --------------------------------------------------------------------

    @staticmethod
    def check_options(
        *,
        realm: str = "api",
        allow_query: QueryPolicy | bool = "never",
        websocket_subprotocol: str | None = None,
        sender: SenderConstraints | None = None,
        introspector: Introspector | None = None,
        resource: ResourceMetadata | str | None = None,
    ) -> None:
        """Raise ``ConfigurationError`` for options no pipeline accepts.

        For adapters that build their pipeline later, once the validator is known, so a
        bad option still fails at start-up.
        """
        query_policy(allow_query)
        if websocket_subprotocol is not None and (
            not isinstance(websocket_subprotocol, str) or not websocket_subprotocol.strip()
        ):
            raise ConfigurationError("websocket_subprotocol must be a non-empty string or None")
        if not isinstance(realm, str):
            raise ConfigurationError("realm must be a string")
        if sender is not None and not isinstance(sender, SenderConstraints):
            raise ConfigurationError("sender must be a jwkguard.sender.SenderConstraints")
        if introspector is not None and not isinstance(introspector, Introspector):
            raise ConfigurationError("introspector must be a jwkguard.sender.Introspector")
        if resource is not None and not isinstance(resource, ResourceMetadata | str):
            raise ConfigurationError(
                "resource must be a jwkguard.pipeline.ResourceMetadata or a URL"
            )

    def check_policy(self, policy: RoutePolicy) -> None:
        """Raise ``ConfigurationError`` if this pipeline cannot enforce ``policy``.

        Adapters call it when a route is declared, so a route that asks for introspection
        or DPoP without the means fails at start-up, not on its first request.
        """
        if policy.introspect and self.introspector is None:
            raise ConfigurationError("this route asks for introspection but none is configured")
        if policy.issuers:
            unknown = sorted(i for i in policy.issuers if not self.validator.may_trust(i))
            if unknown:
                raise ConfigurationError(
                    f"this route accepts issuers the validator does not trust: {', '.join(unknown)}"
                )
        self.constraints(policy)

    def constraints(self, policy: RoutePolicy) -> SenderConstraints:
        """The sender constraints of ``policy``: the pipeline's, plus what the route demands."""
        if policy.dpop or policy.certificate:
            return self.sender.requiring(dpop=policy.dpop, certificate=policy.certificate)
        return self.sender

    # -- drivers --------------------------------------------------------------------------

    def run(self, request: RequestView, policy: RoutePolicy = DEFAULT_POLICY) -> Decision:
        """Judge ``request`` under ``policy`` (blocking IO: sync adapters)."""
        return self._drive(self._flow(request, policy))

    async def arun(self, request: RequestView, policy: RoutePolicy = DEFAULT_POLICY) -> Decision:
        """Judge ``request`` under ``policy`` without blocking the event loop."""
        return await self._adrive(self._flow(request, policy))

    def authorize(self, decision: Decision, request: RequestView, policy: RoutePolicy) -> Decision:
        """Apply one more route policy to a request already judged by :meth:`run`.

        For stacked decorators and dependencies: the token is not validated again and its
        DPoP proof is not spent twice; only what ``policy`` adds is checked.
        """
        return self._drive(self._reauthorize(decision, request, policy))

    async def aauthorize(
        self, decision: Decision, request: RequestView, policy: RoutePolicy
    ) -> Decision:
        """:meth:`authorize` without blocking the event loop."""
        return await self._adrive(self._reauthorize(decision, request, policy))

    def _perform(self, step: _Step) -> Any:
        kind, argument = step
        if kind == _VALIDATE:
            return self.validator.validate(argument)
        if kind == _BIND:
            constraints, claims, presented = argument
            return constraints.check(claims, presented)
        if kind == _INTROSPECT:
            return self._introspector().introspect(argument)
        claims, address = argument
        lifecycle = self._lifecycle
        return lifecycle.observe(claims, address) if lifecycle is not None else None

    async def _aperform(self, step: _Step) -> Any:
        kind, argument = step
        if kind == _VALIDATE:
            return await self.validator.avalidate(argument)
        if kind == _BIND:
            constraints, claims, presented = argument
            return await constraints.acheck(claims, presented)
        if kind == _INTROSPECT:
            return await self._introspector().aintrospect(argument)
        claims, address = argument
        lifecycle = self._lifecycle
        return await lifecycle.aobserve(claims, address) if lifecycle is not None else None

    def _drive(self, flow: _Flow) -> Decision:
        try:
            step = next(flow)
            while True:
                try:
                    result = self._perform(step)
                except TokenError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as done:
            decision: Decision = done.value
            return decision

    async def _adrive(self, flow: _Flow) -> Decision:
        try:
            step = next(flow)
            while True:
                try:
                    # The hot step is awaited here, sparing a coroutine frame per request.
                    if step[0] == _VALIDATE:
                        result = await self.validator.avalidate(step[1])
                    else:
                        result = await self._aperform(step)
                except TokenError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(result)
        except StopIteration as done:
            decision: Decision = done.value
            return decision

    def _introspector(self) -> Introspector:
        if self.introspector is None:
            raise ConfigurationError("this route asks for introspection but none is configured")
        return self.introspector

    # -- the one logic --------------------------------------------------------------------

    def _flow(self, request: RequestView, policy: RoutePolicy) -> _Flow:
        """Every check of the documented order; yields the steps that need IO."""
        authorization = request.headers.getlist("authorization")
        try:
            found, source = self.credentials(request, authorization)
        except InvalidRequest as exc:
            return self._refusal(exc, policy, authorization)
        if found is None:
            if policy.optional:
                return ANONYMOUS
            return Decision(response=self.missing(policy))
        token = found.token
        introspected = False
        try:
            if self._opaque and token.count(".") not in (2, 4):
                claims = yield (_INTROSPECT, token)
                if claims is None:  # fail-open cannot vouch for a token nothing else checked
                    raise IntrospectionUnavailable("Token introspection is temporarily unavailable")
                introspected = True
            else:
                claims = yield (_VALIDATE, token)
            if self._audience is not None:
                check_resource_audience(claims, self._audience)
            sender = self.sender
            if "cnf" in claims or found.scheme != "Bearer" or not sender.inactive:
                yield (_BIND, (sender, claims, self._presented(request, found)))
        except TokenError as exc:
            return self._refusal(exc, policy, authorization)
        decision = Decision(claims, None, None, found, source, introspected)
        if policy.introspect and not introspected:
            decision = yield from self._reauthorize(decision, request, policy)
        else:
            try:
                self._route_checks(claims, policy)
            except TokenError as exc:
                return self._refusal(exc, policy, authorization)
        if decision.claims is not None and self._lifecycle is not None and request.client:
            yield (_OBSERVE, (decision.claims, request.client))
        return decision

    def _route_checks(self, claims: Claims, policy: RoutePolicy) -> None:
        """What a route demands that needs no IO: a stricter binding, its scopes, step-up."""
        constraints = self.constraints(policy)
        if not constraints.inactive:
            # A token checked by another pipeline (a stacked dependency) passed its binding
            # check there; what this one requires of an unbound token is checked here.
            constraints.check_required(claims)
        if policy.narrowed:
            _narrow(claims, policy)
        elif policy.scopes:
            check_scopes(claims.scopes, policy.scopes)
        if policy.acr_values or policy.max_age is not None:
            validator = self.validator
            check_user_authentication(
                claims,
                acr_values=policy.acr_values,
                max_age=policy.max_age,
                now=validator.clock(),
                leeway=validator.leeway,
            )

    def check_claims(self, claims: Claims, policy: RoutePolicy = DEFAULT_POLICY) -> None:
        """The demands that need no request on claims verified elsewhere (a token verifier
        called by another framework): the resource audience, binding requirements, scopes,
        step-up.

        Raises:
            TokenError: The first demand the claims fail.
        """
        if self._audience is not None:
            check_resource_audience(claims, self._audience)
        self._route_checks(claims, policy)

    def _reauthorize(self, decision: Decision, request: RequestView, policy: RoutePolicy) -> _Flow:
        """The route's own demands on a request whose token passed: binding, introspection,
        scopes."""
        claims = decision.claims
        if claims is None:
            if decision.response is not None or policy.optional:
                return decision
            return Decision(response=self.missing(policy))
        introspected = decision.introspected
        try:
            self._route_checks(claims, policy)
            if policy.introspect and not introspected:
                # None: the endpoint is down and the introspector is fail-open (hybrid mode).
                yield (_INTROSPECT, decision.credentials.token if decision.credentials else "")
                introspected = True
        except TokenError as exc:
            return self._refusal(exc, policy, request.headers.getlist("authorization"))
        if introspected == decision.introspected:
            return decision
        return Decision(claims, None, None, decision.credentials, decision.source, introspected)

    def _refusal(
        self, exc: TokenError, policy: RoutePolicy, authorization: Collection[str]
    ) -> Decision:
        return Decision(response=self.refusal(exc, policy, authorization), error=exc)

    def refusal(
        self,
        exc: TokenError,
        policy: RoutePolicy = DEFAULT_POLICY,
        authorization: Collection[str] = (),
    ) -> ErrorResponse:
        """The answer to a request refused with ``exc`` under ``policy``.

        For glue that refuses on its own account (a permission class, a gateway rule): the
        same scheme, ``scope``, step-up and ``resource_metadata`` parameters as the pipeline's
        own refusals.
        """
        return self.constraints(policy).refusal(
            exc,
            realm=self.realm,
            required_scopes=policy.scopes,
            authorization=tuple(authorization),
            challenge_params=self._challenge,
        )

    # -- reading the request --------------------------------------------------------------

    def credentials(
        self, request: RequestView, authorization: Collection[str] | None = None
    ) -> tuple[Credentials | None, TokenSource | None]:
        """The request's token, its scheme and where it came from; (None, None) if none.

        Raises:
            InvalidRequest: Several Authorization headers, a malformed one, a token in two
                places, several query tokens, or a query token where none is accepted.
        """
        if authorization is None:
            authorization = request.headers.getlist("authorization")
        query = request.query
        if (
            len(authorization) == 1
            and not request.websocket
            and not _may_name_token(query)
            and (value := next(iter(authorization)))[:7] == "Bearer "
            and _B64TOKEN.fullmatch(value, 7)
        ):
            # The common case, decided without the general parser: one header, canonical
            # scheme spelling, a well-formed token, nothing in the query.
            return Credentials("Bearer", value[7:]), "header"
        query_token = _query_token(query)
        allow_query = self._ws_allow_query if request.websocket else self._allow_query
        found = extract_credentials(
            tuple(authorization), query_token=query_token, allow_query=allow_query
        )
        source: TokenSource | None = None
        if found is not None:
            source = "query" if query_token is not None else "header"
        if request.websocket and self.subprotocol is not None:
            offered = _subprotocol_token(request.subprotocols, self.subprotocol)
            if offered is not None:
                if found is not None:
                    raise InvalidRequest(
                        "The access token was sent in more than one place", reason="multiple_tokens"
                    )
                # The same b64token syntax check as for the header.
                found = extract_credentials([f"Bearer {offered}"], schemes=("Bearer",))
                source = "subprotocol"
        return found, source

    def _presented(self, request: RequestView, found: Credentials) -> PresentedRequest:
        """What the sender constraints look at: scheme, method, URL, proofs, certificate."""
        sender = self.sender
        forwarded: Collection[str] = ()
        if sender.client_cert_header is not None:
            forwarded = request.headers.getlist(sender.client_cert_header.lower())
        return PresentedRequest(
            scheme=found.scheme,
            token=found.token,
            method=request.method,
            url=request.url(),
            dpop_proofs=tuple(request.headers.getlist("dpop")),
            client_certificate=sender.client_certificate(
                request.certificate, tuple(forwarded), request.peer or request.client
            ),
        )

    def offered_subprotocol(self, request: RequestView) -> str | None:
        """The marker subprotocol to select when accepting a WebSocket, if offered."""
        if self.subprotocol is not None and self.subprotocol in request.subprotocols:
            return self.subprotocol
        return None

    def missing(self, policy: RoutePolicy = DEFAULT_POLICY) -> ErrorResponse:
        """The 401 for a request without a token (RFC 6750 section 3.1: no error code)."""
        return self.constraints(policy).refusal(
            None, realm=self.realm, challenge_params=self._challenge
        )


def _narrow(claims: Claims, policy: RoutePolicy) -> None:
    """A route with issuer, audience, any-of scope or role demands: the token's origin first
    (401), then what it grants (403)."""
    if policy.issuers:
        check_route_issuer(claims.get("iss"), policy.issuers)
    if policy.audiences:
        check_route_audience(claims.audiences, policy.audiences)
    if policy.scopes:
        check_scopes(claims.scopes, policy.scopes)
    if policy.any_scopes:
        check_any_scopes(claims.scopes, policy.any_scopes)
    if policy.roles or policy.any_roles:
        check_roles(claims.roles, policy.roles, policy.any_roles)


def _may_name_token(query: str) -> bool:
    return "access" in query or "%" in query


def _query_token(query: str) -> str | None:
    if not _may_name_token(query):
        return None
    values = [
        value
        for name, value in parse_qsl(query.replace(";", "&"), keep_blank_values=True)
        if _TOKEN_NAME.fullmatch(name)
    ]
    if len(values) > 1:
        raise InvalidRequest(
            "The access token was sent in more than one place", reason="multiple_tokens"
        )
    return values[0] if values else None


def _subprotocol_token(offered: Collection[str], marker: str) -> str | None:
    protocols = list(offered)
    if marker not in protocols:
        return None
    position = protocols.index(marker)
    if protocols.count(marker) > 1 or position + 1 >= len(protocols):
        raise InvalidRequest(
            f"The WebSocket subprotocols must be [{marker!r}, <token>]",
            reason="malformed_subprotocol",
        )
    return protocols[position + 1]


def query_policy(value: object, name: str = "allow_query") -> QueryPolicy:
    """A query-token setting in either spelling: True means ``"always"``, False ``"never"``.

    Raises:
        ConfigurationError: Anything else than a bool or one of the three policies.
    """
    if value is True:
        return "always"
    if value is False:
        return "never"
    if value == "never" or value == "websocket" or value == "always":
        return value
    raise ConfigurationError(
        f"{name} must be True or False, or one of {', '.join(map(repr, _QUERY_POLICIES))}"
    )
