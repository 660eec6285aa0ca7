"""The lifecycle policy: revocation, cut-offs, key distrust, replay and reuse, after the claims.

``check`` and ``acheck`` share one sync decision core (``_screen``): it reads only the
store's local replica, so it never waits. The only IO is the replay ledger (a single atomic
``SET NX`` in Redis) for tokens or routes marked one-time, and the reuse watch where an
adapter reports client addresses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from .._checks import positive_seconds
from .._claims_result import Claims
from .._events import Event, EventHandler, log_event
from ..errors import ConfigurationError, InvalidClaim, LifecycleError, StoreUnavailable
from ._replica import LifecycleChange, Verdict
from ._store import LifecycleStore, MemoryStore, TokenUsage

if TYPE_CHECKING:
    from .._validator import Validator

__all__ = ["Lifecycle", "ReuseWatch", "UnavailablePolicy"]

UnavailablePolicy = Literal["fail_open", "fail_closed"]

_DESCRIPTIONS: Final[dict[str, str]] = {
    "key_distrusted": "The access token was signed by a key that is no longer trusted",
    "revoked": "The access token has been revoked",
    "subject_cut_off": "The access token was issued before its subject's access was cut off",
    "client_cut_off": "The access token was issued before its client's access was cut off",
    "replayed": "The access token has already been used",
}


@dataclass(frozen=True, slots=True)
class ReuseWatch:
    """When to report a token used too widely (an event, never a rejection).

    Args:
        max_addresses: Report when one token is seen from more client addresses than this.
        max_uses: Report when one token is used more often than this; ``None``: no limit.
        window: The counting window in seconds, starting at the token's first use.
    """

    max_addresses: int | None = 1
    max_uses: int | None = None
    window: float = 300.0

    def __post_init__(self) -> None:
        for name, value in (("max_addresses", self.max_addresses), ("max_uses", self.max_uses)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(f"{name} must be a positive integer or None")
        if self.max_addresses is None and self.max_uses is None:
            raise ConfigurationError("set max_addresses, max_uses or both")
        positive_seconds(self.window, "window")


@dataclass(frozen=True, slots=True)
class _Ticket:
    """A pending replay-ledger entry: who claims first use, and for how long."""

    issuer: str
    token_id: str
    ttl: float


class Lifecycle:
    """Lifecycle checks for a :class:`~jwkguard.Validator` (its ``lifecycle=`` argument).

    Refuses verified tokens that were revoked (by ``jti``, until they expire), issued before
    their subject's or client's cut-off (``iat < T``; no ``iat`` counts as before), signed by
    a distrusted key (by ``kid`` or RFC 7638 thumbprint, per issuer) or, where one-time use
    applies, replayed. Each refusal is a :class:`~jwkguard.errors.LifecycleError` with its
    own ``reason``.

    One-time use is off by default. Turn it on per token with ``one_time`` (a predicate on
    the claims, e.g. a claim the issuer sets) or per route by calling :meth:`consume` /
    :meth:`aconsume` after validation in the handlers that need it.

    Args:
        store: Where the state lives: :class:`MemoryStore` (default) or :class:`RedisStore`.
        on_unavailable: What to do while the store cannot be reached: ``"fail_open"`` keeps
            validating with the last replica and skips replay checks; ``"fail_closed"``
            refuses every token with :class:`~jwkguard.errors.StoreUnavailable` (503).
        one_time: Tokens for which this predicate is true may be used only once.
        reuse: Report tokens seen from too many addresses or too often (see :meth:`observe`).
        replay_grace: Seconds the replay ledger keeps a token past its ``exp``, to cover
            the validator's leeway.
        clock: Unix time for :meth:`consume` and :meth:`observe`; default ``time.time``.
        on_event: Receives events; default: the attached validator's handler, else the
            ``jwkguard.events`` logger.
    """

    def __init__(
        self,
        store: LifecycleStore | None = None,
        *,
        on_unavailable: UnavailablePolicy = "fail_open",
        one_time: Callable[[Claims], bool] | None = None,
        reuse: ReuseWatch | None = None,
        replay_grace: float = 60.0,
        clock: Callable[[], float] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        if on_unavailable not in ("fail_open", "fail_closed"):
            raise ConfigurationError("on_unavailable must be 'fail_open' or 'fail_closed'")
        if one_time is not None and not callable(one_time):
            raise ConfigurationError("one_time must be a predicate on the claims")
        if reuse is not None and not isinstance(reuse, ReuseWatch):
            raise ConfigurationError("reuse must be a ReuseWatch")
        if (
            isinstance(replay_grace, bool)
            or not isinstance(replay_grace, int | float)
            or not math.isfinite(replay_grace)
            or replay_grace < 0
        ):
            raise ConfigurationError("replay_grace must be a non-negative number of seconds")
        self.store: LifecycleStore = store if store is not None else MemoryStore()
        self.on_unavailable: UnavailablePolicy = on_unavailable
        self.one_time = one_time
        self.reuse = reuse
        self.replay_grace = float(replay_grace)
        self.clock = clock or time.time
        self._on_event = on_event
        self._validator: Validator | None = None
        self._reported_outage = -1

    # -- the validator's hooks ------------------------------------------------------------

    def check(self, claims: Claims, now: float) -> None:
        """Refuse ``claims`` if revoked, cut off, distrusted or (one-time) replayed."""
        ticket = self._screen(claims, now)
        if ticket is not None:
            self._settle(ticket, self.store.claim_once(ticket.issuer, ticket.token_id, ticket.ttl))

    async def acheck(self, claims: Claims, now: float) -> None:
        """``check`` without blocking the event loop."""
        ticket = self._screen(claims, now)
        if ticket is not None:
            self._settle(
                ticket, await self.store.aclaim_once(ticket.issuer, ticket.token_id, ticket.ttl)
            )

    # -- per-route one-time use -----------------------------------------------------------

    def consume(self, claims: Claims, *, now: float | None = None) -> None:
        """Mark ``claims``' token used; refuse it if it was used before (one-time routes).

        Call after a successful ``validate``. Needs ``jti`` and ``exp``.

        Raises:
            LifecycleError: ``reason="replayed"`` on a second use.
            InvalidClaim: The token has no ``jti`` or ``exp`` to track it by.
            StoreUnavailable: The store is down and the policy is fail-closed.
        """
        ticket = self._ticket(claims, self.clock() if now is None else now)
        self._settle(ticket, self.store.claim_once(ticket.issuer, ticket.token_id, ticket.ttl))

    async def aconsume(self, claims: Claims, *, now: float | None = None) -> None:
        """``consume`` without blocking the event loop."""
        ticket = self._ticket(claims, self.clock() if now is None else now)
        self._settle(
            ticket, await self.store.aclaim_once(ticket.issuer, ticket.token_id, ticket.ttl)
        )

    # -- reuse watch ----------------------------------------------------------------------

    def observe(self, claims: Claims, address: str) -> TokenUsage | None:
        """Count one use of the token from the client ``address``; never refuses.

        Emits a ``token_reuse`` event the moment the token crosses the configured number of
        addresses or uses within the window. Returns the counts, or ``None`` for a token
        without ``jti`` or while the store is unreachable.
        """
        token_id = self._watched(claims, address)
        if token_id is None:
            return None
        watch = self._watch()
        usage = self.store.record_use(claims.issuer, token_id, address, watch.window)
        self._judge(claims, address, usage)
        return usage

    async def aobserve(self, claims: Claims, address: str) -> TokenUsage | None:
        """``observe`` without blocking the event loop."""
        token_id = self._watched(claims, address)
        if token_id is None:
            return None
        watch = self._watch()
        usage = await self.store.arecord_use(claims.issuer, token_id, address, watch.window)
        self._judge(claims, address, usage)
        return usage

    # -- fleet broadcasts -----------------------------------------------------------------

    def attach(self, validator: Validator) -> None:
        """Act on fleet broadcasts for ``validator``: ``force_refresh`` refetches its keys.

        Also makes the validator's event handler this policy's default. Attaching again
        replaces the validator.
        """
        if self._validator is None:
            self.store.add_listener(self._on_broadcast)
        self._validator = validator

    def _on_broadcast(self, change: LifecycleChange) -> None:
        validator = self._validator
        if change.op != "force_refresh" or validator is None:
            return
        try:
            source = validator.key_source(change.issuer)
        except ConfigurationError:
            return  # not an issuer this instance trusts
        # Remote key sources expose request_refresh(); static ones have nothing to refetch.
        request = getattr(source, "request_refresh", None)
        if callable(request):
            request()
        self._emit(
            "refresh_requested",
            change.issuer,
            by=change.by,
            why=change.why,
            supported=callable(request),
        )

    # -- the shared decision core ---------------------------------------------------------

    def _screen(self, claims: Claims, now: float) -> _Ticket | None:
        store = self.store
        if not store.available:
            self._degraded()
        verdict: Verdict | None = store.replica.verdict(claims, now)
        if verdict is not None:
            raise LifecycleError(_DESCRIPTIONS[verdict], reason=verdict)
        one_time = self.one_time
        if one_time is not None and one_time(claims):
            return self._ticket(claims, now)
        return None

    def _ticket(self, claims: Claims, now: float) -> _Ticket:
        token_id = claims.token_id
        if token_id is None:
            raise InvalidClaim(
                "One-time use needs the 'jti' claim", reason="missing_claim", claim="jti"
            )
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise InvalidClaim(
                "One-time use needs the 'exp' claim", reason="missing_claim", claim="exp"
            )
        # Keep the ledger entry as long as the token could still be accepted.
        ttl = max(1.0, float(exp) - now + self.replay_grace)
        return _Ticket(claims.issuer, token_id, ttl)

    def _settle(self, ticket: _Ticket, first_use: bool | None) -> None:
        if first_use is None:
            self._degraded(skipped="replay_check")
        elif not first_use:
            raise LifecycleError(_DESCRIPTIONS["replayed"], reason="replayed")

    def _degraded(self, **detail: str) -> None:
        """The store is unreachable: refuse (fail-closed) or carry on (fail-open)."""
        outage = self.store.outages
        if outage != self._reported_outage:
            # One event per outage and policy decision, not one per request.
            self._reported_outage = outage
            self._emit(f"lifecycle_{self.on_unavailable}", "*", **detail)
        if self.on_unavailable == "fail_closed":
            raise StoreUnavailable()

    def _watch(self) -> ReuseWatch:
        if self.reuse is None:
            raise ConfigurationError("observe() needs Lifecycle(reuse=ReuseWatch(...))")
        return self.reuse

    def _watched(self, claims: Claims, address: str) -> str | None:
        self._watch()
        if not isinstance(address, str):
            raise ConfigurationError("address must be the client address as a string")
        return claims.token_id

    def _judge(self, claims: Claims, address: str, usage: TokenUsage | None) -> None:
        watch = self._watch()
        if usage is None:
            return
        too_many_addresses = (
            watch.max_addresses is not None
            and usage.new_address
            and usage.addresses == watch.max_addresses + 1
        )
        too_many_uses = watch.max_uses is not None and usage.uses == watch.max_uses + 1
        if too_many_addresses or too_many_uses:
            self._emit(
                "token_reuse",
                claims.issuer,
                token_id=claims.token_id,
                subject=claims.subject,
                client_id=claims.client_id,
                address=address,
                uses=usage.uses,
                addresses=usage.addresses,
                window=watch.window,
            )

    def _emit(self, kind: str, issuer: str, **detail: object) -> None:
        handler = self._on_event
        if handler is None:
            handler = self._validator.on_event if self._validator is not None else log_event
        handler(Event(kind=kind, issuer=issuer, timestamp=self.clock(), detail=detail))
