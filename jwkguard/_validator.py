"""The validator: parse, route by issuer, select a key, verify, check claims."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._algorithms import (
    HMAC_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    hmac_min_secret_length,
    make_hmac_verifier,
)
from ._claims_result import Claims
from ._context import AsyncContext
from ._events import Event, EventHandler, log_event
from ._issuer import ClaimCheck, Issuer
from ._parse import ParsedToken, split_standard, standard_b64_decode, strict_json_object
from ._policy import ClaimsPolicy, check_scopes
from ._tenants import TenantIssuers, TenantRoutes
from ._token_cache import TokenCache, build_token_cache, requested_scopes
from .errors import (
    ConfigurationError,
    InvalidHeader,
    InvalidSignature,
    IssuerMismatch,
    KeyNotFound,
    MalformedToken,
    TokenError,
)
from .keys._jwk import secret_thumbprint
from .keys._set import KeySet, VerificationKey, load_jwks_document
from .keys._source import KeyMatch, KeySource, StaticKeySource

__all__ = ["LifecycleCheck", "Validator"]

Clock = Callable[[], float]

# Header `typ` values (normalised) that name a different kind of JWT: never accepted as an
# access token, even when no `token_type` is required (RFC 8725 section 3.11).
_FOREIGN_TYPES = frozenset(
    {
        "dpop+jwt",  # RFC 9449 DPoP proof
        "secevent+jwt",  # RFC 8417 security event token
        "logout+jwt",  # OpenID Connect back-channel logout token
        "jwk-set+jwt",
        "token-introspection+jwt",  # RFC 9701
        "oauth-authz-req+jwt",  # RFC 9101 request object
        "entity-statement+jwt",  # OpenID Federation
        "kb+jwt",  # SD-JWT key binding
        "jose+json",  # JWS JSON serialization, never a compact token
    }
)
# Header parameters that point at a key by other means than `kid`; never used to find one.
_EMBEDDED_KEY_PARAMETERS = ("jwk", "jku", "x5u", "x5c")
_HEADER_CACHE_SIZE = 64
_new_tuple = tuple.__new__
_trusted_claims = Claims._trusted
# Unexpected exceptions that hostile input could provoke deep inside a library.
_INPUT_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    UnicodeError,
    RecursionError,
    OverflowError,
    IndexError,
)


class LifecycleCheck(Protocol):
    """Checks run after signature and claims succeed (revocation, cut-offs, replay)."""

    def check(self, claims: Claims, now: float) -> None: ...

    async def acheck(self, claims: Claims, now: float) -> None: ...


def _normalise_type(value: str) -> str:
    # RFC 7515 section 4.1.9: "application/" may be omitted and media types compare
    # case-insensitively.
    value = value.lower()
    return value[12:] if value.startswith("application/") else value


@dataclass(frozen=True, slots=True)
class _Route:
    """What the validator needs per configured issuer."""

    issuer: Issuer
    policy: ClaimsPolicy
    source: KeySource


class Validator(AsyncContext):
    """Validates JWT access tokens locally against trusted issuers' keys.

    Args:
        issuers: The trusted issuers. The token's unverified ``iss`` only chooses among them.
        algorithms: The allowed ``alg`` values; required, never taken from the token.
        leeway: Seconds of clock tolerance for ``exp``, ``nbf`` and ``iat``. Default 0.
        clock: A callable returning unix time; default ``time.time``.
        token_type: Require this JOSE ``typ`` (e.g. ``"at+jwt"``, RFC 9068 section 2.1).
        required_claims: Claims that must be present; ``iss`` and ``aud`` are implied.
        max_token_size: Tokens longer than this many bytes are refused before parsing.
            Default 32 KiB: access tokens with hundreds of roles or groups (Keycloak, Entra
            ID) reach 8-16 KiB, and 32 KiB is Kestrel's whole request-header budget. The
            limit bounds the work an unauthenticated caller can cause before the signature
            check (decoding and parsing at most this much JSON).
        max_age: Refuse tokens whose ``iat`` is older than this many seconds.
        max_lifetime: Refuse tokens whose ``exp - iat`` exceeds this many seconds.
        required_scopes: Scopes every token must grant (per-request scopes go to ``validate``).
        claim_checks: Extra checks on every verified payload.
        on_event: Receives trust-change events; default: the ``jwkguard.events`` logger.
        lifecycle: Revocation, cut-off and replay checks run after the claims.
        token_cache: Reuse verified tokens (``True``, or a ``TokenCache`` with its bounds);
            see ``TokenCache`` for what a hit re-checks. Off by default.
        tenants: Dynamic tenants: issuers matching a ``TenantIssuers`` template, accepted at
            run time by its decision; consulted only for an ``iss`` no configured issuer has.
    """

    def __init__(
        self,
        *,
        issuers: Sequence[Issuer],
        algorithms: Collection[str],
        leeway: float = 0,
        clock: Clock | None = None,
        token_type: str | None = None,
        required_claims: Iterable[str] = ("exp",),
        max_token_size: int = 32768,
        max_age: float | None = None,
        max_lifetime: float | None = None,
        required_scopes: Iterable[str] = (),
        claim_checks: Sequence[ClaimCheck] = (),
        on_event: EventHandler | None = None,
        lifecycle: LifecycleCheck | None = None,
        token_cache: TokenCache | Mapping[str, int] | bool | None = None,
        tenants: Sequence[TenantIssuers] = (),
    ) -> None:
        self.algorithms = _check_algorithms(algorithms)
        if not _is_seconds(leeway) or leeway < 0:
            raise ConfigurationError("leeway must be a non-negative number of seconds")
        if type(max_token_size) is not int or max_token_size < 64:
            raise ConfigurationError("max_token_size must be an integer of at least 64 bytes")
        for name, value in (("max_age", max_age), ("max_lifetime", max_lifetime)):
            if value is not None and (not _is_seconds(value) or value <= 0):
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        required_claims = _names(required_claims, "required_claims")
        required_scopes = _names(required_scopes, "required_scopes")
        if isinstance(claim_checks, str | bytes) or not isinstance(claim_checks, Iterable):
            raise ConfigurationError("claim_checks must be a list of callables")
        claim_checks = tuple(claim_checks)  # a generator would be used up by the check below
        if not all(map(callable, claim_checks)):
            raise ConfigurationError("claim_checks must be a list of callables")
        if clock is not None and not callable(clock):
            raise ConfigurationError("clock must be a callable returning unix time")
        if token_type is not None and (not isinstance(token_type, str) or not token_type):
            raise ConfigurationError("token_type must be a non-empty string")
        self.clock: Clock = clock or time.time
        self.leeway = float(leeway)
        self.token_type = _normalise_type(token_type) if token_type else None
        self.max_token_size = max_token_size
        self.on_event: EventHandler = on_event or log_event
        self.lifecycle = lifecycle
        self.token_cache = build_token_cache(token_cache, self, max_token_size)
        # Verdicts of the header policy per encoded header: one issuer's tokens share a few.
        self._headers: dict[bytes, tuple[dict[str, Any], str, str | None]] = {}
        if isinstance(issuers, Issuer) or not isinstance(issuers, Iterable):
            raise ConfigurationError("issuers must be a list of Issuer")
        issuers = tuple(issuers)
        if isinstance(tenants, TenantIssuers) or not all(
            isinstance(template, TenantIssuers) for template in tenants
        ):
            raise ConfigurationError("tenants must be a list of TenantIssuers")
        if not issuers and not tenants:
            raise ConfigurationError("at least one issuer is required")
        if not all(isinstance(issuer, Issuer) for issuer in issuers):
            raise ConfigurationError("issuers must be Issuer instances")
        self.issuers = issuers
        self._uses_hmac = bool(self.algorithms & HMAC_ALGORITHMS)
        if self._uses_hmac and not any(issuer.secret for issuer in issuers):
            raise ConfigurationError(
                "HMAC algorithms need an issuer with an explicit secret; "
                "they are never verified against a JWK Set"
            )
        self._claims_settings = (
            tuple(dict.fromkeys(required_claims)),
            max_age,
            max_lifetime,
            frozenset(required_scopes),
            claim_checks,
        )
        self._routes: dict[str, _Route] = {}
        # Remote issuers that name the same jwks_uri share one cache and fetch through this.
        self._shared_endpoints: dict[Any, Any] = {}
        for issuer in issuers:
            if issuer.issuer in self._routes:
                raise ConfigurationError(f"issuer {issuer.issuer} is configured twice")
            self._routes[issuer.issuer] = self._route_for(issuer)
        self._tenants = (
            TenantRoutes(tuple(tenants), self._tenant_route, _forget_route, self.clock)
            if tenants
            else None
        )

    # -- construction helpers -------------------------------------------------------------

    def _route_for(self, issuer: Issuer, source: KeySource | None = None) -> _Route:
        required, max_age, max_lifetime, scopes, claim_checks = self._claims_settings
        policy = ClaimsPolicy(
            issuer=issuer.issuer,
            audiences=frozenset(issuer.audiences) if issuer.audiences is not None else None,
            leeway=self.leeway,
            required_claims=required,
            max_age=max_age,
            max_lifetime=max_lifetime,
            scope_claim=issuer.scope_claim,
            required_scopes=scopes,
            allowed_client_ids=(
                frozenset(issuer.allowed_client_ids)
                if issuer.allowed_client_ids is not None
                else None
            ),
            claim_checks=(*claim_checks, *issuer.claim_checks),
        )
        return _Route(issuer, policy, source or self._key_source_for(issuer))

    def _tenant_route(self, template: TenantIssuers, issuer: Issuer) -> _Route:
        # Tenants with one fixed key URL share its cache; per-tenant key URLs get their own
        # (never registered validator-wide, so dropped tenants leave nothing behind).
        if template.shares_keys or issuer.uses_static_keys:
            return self._route_for(issuer)
        return self._route_for(issuer, self._remote_key_source(issuer, shared=False))

    def _key_source_for(self, issuer: Issuer) -> KeySource:
        if issuer.secret is not None:
            if issuer.jwks_uri is not None:
                raise ConfigurationError(
                    f"issuer {issuer.issuer}: a secret cannot be combined with jwks_uri"
                )
            if not self._uses_hmac:
                raise ConfigurationError(
                    f"issuer {issuer.issuer}: a secret is configured but no HS algorithm is allowed"
                )
        if issuer.uses_static_keys:
            return StaticKeySource(self._static_key_set(issuer))
        return self._remote_key_source(issuer)

    def _static_key_set(self, issuer: Issuer) -> KeySet:
        keys: list[VerificationKey] = []
        if issuer.jwks is not None:
            document = load_jwks_document(issuer.jwks)
            asymmetric = self.algorithms - HMAC_ALGORITHMS
            try:
                loaded = KeySet.from_jwks(document, asymmetric, max_keys=issuer.max_keys)
            except ValueError as exc:
                raise ConfigurationError(f"issuer {issuer.issuer}: {exc}") from exc
            if not loaded.keys:
                # Nothing could ever verify: fail at start-up, not on every request.
                reasons = "; ".join(f"{kid}: {why}" for kid, why in loaded.skipped) or "empty"
                raise ConfigurationError(
                    f"issuer {issuer.issuer}: the JWK Set holds no usable key ({reasons})"
                )
            keys.extend(loaded.keys)
        if issuer.secret is not None:
            hmac_algorithms = self.algorithms & HMAC_ALGORITHMS
            keys.append(_secret_key(issuer.secret, hmac_algorithms, issuer.secret_kid))
        return KeySet(keys)

    def _remote_key_source(self, issuer: Issuer, *, shared: bool = True) -> KeySource:
        from .keys._remote import RemoteKeySource  # the HTTP machinery loads only when needed

        return RemoteKeySource(
            issuer,
            algorithms=self.algorithms - HMAC_ALGORITHMS,
            clock=self.clock,
            on_event=self.on_event,
            shared=self._shared_endpoints if shared else None,
        )

    # -- validation -----------------------------------------------------------------------

    def validate(self, token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
        """Validate ``token`` and return its verified claims.

        Args:
            token: The compact JWS access token.
            scopes: Scopes this request needs, checked after everything else.

        Raises:
            TokenError: Any rejection; ``KeysUnavailable`` when no key can be had.
        """
        cache = self.token_cache
        digest, hit = cache.lookup(token) if cache is not None else (None, None)
        if hit is not None:
            now = self.clock()
            try:
                match = None
                if not hit.fixed_key:
                    match = hit.route.source.key_for(hit.kid, hit.alg, now)
                claims = hit.revalidate(match, now, scopes)
                if self.lifecycle is not None:
                    self.lifecycle.check(claims, now)
            except TokenError as exc:
                hit.refused(exc)
                raise
            return claims
        parsed, route, kid, alg = self._prepare(token)
        now = self.clock()
        match = route.source.key_for(kid, alg, now)
        claims = self._finish(parsed, route, match, now, scopes)
        if self.lifecycle is not None:
            self.lifecycle.check(claims, now)
        if cache is not None and digest is not None:
            cache.put(digest, parsed, route, kid, alg, claims, now)
        return claims

    async def avalidate(self, token: str | bytes, *, scopes: Iterable[str] = ()) -> Claims:
        """Validate ``token`` without blocking the event loop; same checks as ``validate``."""
        cache = self.token_cache
        digest, hit = cache.lookup(token) if cache is not None else (None, None)
        if hit is not None:
            now = self.clock()
            try:
                match = None
                if not hit.fixed_key:
                    match = await hit.route.source.akey_for(hit.kid, hit.alg, now)
                claims = hit.revalidate(match, now, scopes)
                if self.lifecycle is not None:
                    await self.lifecycle.acheck(claims, now)
            except TokenError as exc:
                hit.refused(exc)
                raise
            return claims
        parsed, route, kid, alg = self._prepare(token)
        now = self.clock()
        match = await route.source.akey_for(kid, alg, now)
        claims = self._finish(parsed, route, match, now, scopes)
        if self.lifecycle is not None:
            await self.lifecycle.acheck(claims, now)
        if cache is not None and digest is not None:
            cache.put(digest, parsed, route, kid, alg, claims, now)
        return claims

    def _prepare(self, token: str | bytes) -> tuple[ParsedToken, _Route, str | None, str]:
        """Size, parse, header policy and issuer routing: everything before the key."""
        try:
            if isinstance(token, str):
                if len(token) > self.max_token_size:
                    raise MalformedToken("The access token is too large", reason="token_too_large")
                raw = token.encode("ascii")
            elif isinstance(token, bytes | bytearray | memoryview):
                size = token.nbytes if isinstance(token, memoryview) else len(token)
                if size > self.max_token_size:
                    raise MalformedToken("The access token is too large", reason="token_too_large")
                raw = bytes(token)
            else:
                raise MalformedToken("The access token must be a string")
            # The segments come back in the standard base64 alphabet (one translate pass).
            header_b64, payload_b64, signature_b64 = split_standard(raw)
            verdict = self._headers.get(header_b64)
            if verdict is None:
                verdict = self._check_header(
                    strict_json_object(standard_b64_decode(header_b64), "header")
                )
                if len(self._headers) >= _HEADER_CACHE_SIZE:
                    self._headers.clear()
                self._headers[header_b64] = verdict
            header, alg, kid = verdict
            payload_json = standard_b64_decode(payload_b64)
            payload = strict_json_object(payload_json, "payload")
            # header, payload, signing input, signature, payload text (tuple.__new__: half
            # the cost of the NamedTuple's own __new__, which is Python code)
            parsed = _new_tuple(
                ParsedToken,
                (
                    header,
                    payload,
                    raw[: len(header_b64) + 1 + len(payload_b64)],
                    standard_b64_decode(signature_b64),
                    payload_json,
                ),
            )
            iss = payload.get("iss")
            route = self._routes.get(iss) if type(iss) is str else None
            if route is None and self._tenants is not None and type(iss) is str:
                # Only before any key is fetched, and only for a template the operator wrote.
                route = self._tenants.route(iss)
        except TokenError:
            raise
        except _INPUT_ERRORS as exc:
            raise MalformedToken("The access token is malformed") from exc
        if route is None:
            if "iss" not in payload:
                raise IssuerMismatch(
                    "The 'iss' claim is required", reason="missing_claim", claim="iss"
                )
            raise IssuerMismatch("The access token issuer is not trusted", claim="iss")
        return parsed, route, kid, alg

    def _check_header(self, header: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
        """The header policy (RFC 8725 sections 3.1, 3.11): the verdict is cached per header."""
        alg = header.get("alg")
        if type(alg) is not str or alg not in self.algorithms:
            raise InvalidHeader(
                "The access token algorithm is not allowed",
                reason="algorithm_not_allowed",
                claim="alg",
            )
        if "b64" in header:
            # RFC 7797 unencoded payloads: the signed bytes would not be the parsed payload.
            raise InvalidHeader(
                "Unencoded payloads (b64) are not accepted", reason="unencoded_payload", claim="b64"
            )
        if "crit" in header:
            # RFC 7515 section 4.1.11: no extension is understood, so any `crit` is refused.
            raise InvalidHeader(
                "The access token uses an unsupported critical extension",
                reason="unsupported_critical",
                claim="crit",
            )
        kid = header.get("kid")
        if kid is None:
            if "kid" in header:
                raise InvalidHeader("The access token key id is malformed", claim="kid")
            if any(name in header for name in _EMBEDDED_KEY_PARAMETERS):
                # The token names its key only by a means that is never trusted.
                raise KeyNotFound(
                    "The access token's key is not among the issuer's keys", reason="unknown_key"
                )
        elif type(kid) is not str:
            raise InvalidHeader("The access token key id is malformed", claim="kid")
        self._check_type(header.get("typ"))
        return header, alg, kid

    def _check_type(self, typ: Any) -> None:
        if typ is None:
            if self.token_type is not None:
                raise InvalidHeader(
                    "The access token type is missing", reason="wrong_type", claim="typ"
                )
            return
        if type(typ) is not str:
            raise InvalidHeader(
                "The access token type is malformed", reason="wrong_type", claim="typ"
            )
        normalised = _normalise_type(typ)
        if self.token_type is not None:
            if normalised != self.token_type:
                raise InvalidHeader(
                    "The access token type is not accepted", reason="wrong_type", claim="typ"
                )
        elif normalised in _FOREIGN_TYPES:
            raise InvalidHeader(
                "This kind of token is not an access token", reason="wrong_type", claim="typ"
            )

    def _finish(
        self,
        parsed: ParsedToken,
        route: _Route,
        match: KeyMatch,
        now: float,
        scopes: Iterable[str],
    ) -> Claims:
        """Signature, claims and scopes: everything after the key, shared by both drivers."""
        key, verifier = match
        try:
            verified = verifier(parsed.signing_input, parsed.signature)
        except _INPUT_ERRORS:
            verified = False
        if not verified:
            raise InvalidSignature()
        try:
            granted = route.policy.check(parsed.payload, now)
            if scopes:
                check_scopes(granted, requested_scopes(scopes))
        except TokenError:
            raise
        except _INPUT_ERRORS as exc:
            raise MalformedToken("The access token claims are malformed") from exc
        return _trusted_claims(
            parsed.payload,
            parsed.header,
            key.kid,
            key.thumbprint,
            granted,
            route.issuer.role_claims,
        )

    # -- keys and lifetime ----------------------------------------------------------------

    def key_source(self, issuer: str) -> KeySource:
        """The key source of a configured issuer."""
        try:
            return self._routes[issuer].source
        except KeyError:
            raise ConfigurationError(f"{issuer} is not a configured issuer") from None

    def may_trust(self, issuer: str) -> bool:
        """True if tokens from ``issuer`` can pass: a configured issuer, or one a tenant
        template could accept (the run-time decision is not asked here)."""
        if issuer in self._routes:
            return True
        tenants = self._tenants
        return tenants is not None and any(
            template.tenant_of(issuer) is not None for template in tenants.templates
        )

    @property
    def tenant_count(self) -> int:
        """How many dynamic tenants (accepted or refused) are remembered now."""
        return len(self._tenants) if self._tenants is not None else 0

    def route_policy(self, issuer: str) -> ClaimsPolicy:
        """The compiled claims policy of a configured issuer."""
        return self._routes[issuer].policy

    def warm_up(self) -> None:
        """Fetch every remote issuer's keys now (bounded by each issuer's timeout)."""
        for route in self._routes.values():
            route.source.warm_up()

    async def awarm_up(self) -> None:
        """Fetch every remote issuer's keys now, without blocking the event loop."""
        for route in self._routes.values():
            await route.source.awarm_up()

    def close(self) -> None:
        """Close the HTTP clients the validator owns."""
        for route in self._all_routes():
            route.source.close()

    async def aclose(self) -> None:
        """Close the HTTP clients the validator owns."""
        for route in self._all_routes():
            await route.source.aclose()

    def _all_routes(self) -> list[_Route]:
        tenants = self._tenants.routes() if self._tenants is not None else []
        return [*self._routes.values(), *tenants]

    def _exit(self) -> None:
        self.close()

    async def _aexit(self) -> None:
        await self.aclose()

    def emit(self, kind: str, issuer: str, **fields: Any) -> None:
        """Send an event to the configured handler."""
        self.on_event(Event(kind=kind, issuer=issuer, timestamp=self.clock(), **fields))


def _forget_route(route: _Route) -> None:
    """A dropped tenant's route: its issuer leaves a shared key endpoint's members, and a key
    source of its own closes its pooled connections (a later use, from a cached token, opens
    new ones)."""
    endpoint = getattr(route.source, "_endpoint", None)
    members = getattr(endpoint, "members", None)
    if isinstance(members, dict):
        members.pop(route.issuer.issuer, None)
        if members:
            return  # other tenants still use the shared endpoint
    route.source.close()


def _check_algorithms(algorithms: Collection[str]) -> frozenset[str]:
    if isinstance(algorithms, str):
        raise ConfigurationError("algorithms must be a list, e.g. ['RS256']")
    chosen = frozenset(algorithms)
    if not chosen:
        raise ConfigurationError("algorithms must not be empty")
    for alg in chosen:
        if not isinstance(alg, str):
            raise ConfigurationError("algorithms must be strings such as 'RS256'")
        if alg.lower() == "none":
            raise ConfigurationError("the 'none' algorithm is never allowed")
        if alg not in SUPPORTED_ALGORITHMS:
            raise ConfigurationError(
                f"unknown algorithm {alg!r}; supported: {', '.join(sorted(SUPPORTED_ALGORITHMS))}"
            )
    return chosen


def _is_seconds(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigurationError(f"{what} must be a list of names, not one string")
    chosen = tuple(dict.fromkeys(values))
    if not all(isinstance(value, str) and value for value in chosen):
        raise ConfigurationError(f"{what} must hold non-empty strings")
    return chosen


def _secret_key(secret: bytes, algorithms: frozenset[str], kid: str | None) -> VerificationKey:
    for alg in algorithms:
        if len(secret) < hmac_min_secret_length(alg):
            raise ConfigurationError(
                f"the secret must be at least {hmac_min_secret_length(alg)} bytes for {alg}"
            )
    thumbprint = secret_thumbprint(secret)
    return VerificationKey(
        kid=kid,
        thumbprint=thumbprint,
        kty="oct",
        verifiers={alg: make_hmac_verifier(alg, secret) for alg in algorithms},
        jwk={"kty": "oct"},
    )
