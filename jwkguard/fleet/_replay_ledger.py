"""A DPoP replay ledger shared by a fleet: one atomic ``SET key 1 NX PX ttl`` per proof.

It rides on the fleet's lifecycle store (:class:`~jwkguard.fleet.RedisStore`), so it shares that
store's connections, timeouts and health tracking: when Redis cannot be reached, the store
answers "unknown" at once and this ledger applies its own fail-open or fail-closed policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .._events import Event, EventHandler, log_event
from ..errors import ConfigurationError, StoreUnavailable
from ..lifecycle._policy import UnavailablePolicy
from ..lifecycle._store import LifecycleStore

__all__ = ["RedisReplayLedger"]

# The store keys its ledger by (issuer, id); proofs get a namespace no configured issuer has.
_NAMESPACE = "urn:jwkguard:dpop-proof"


class RedisReplayLedger:
    """Remembers DPoP proof ``jti`` values in Redis, so a proof is spent fleet-wide.

    Each proof costs one ``SET NX PX`` (atomic: of two instances seeing the same proof at
    once, exactly one wins). Start the store before serving (``store.start()`` or
    ``await store.astart()``), as for lifecycle checks.

    Args:
        store: The fleet's :class:`~jwkguard.fleet.RedisStore` (any ``LifecycleStore`` works,
            e.g. ``MemoryStore`` in tests).
        on_unavailable: While the store cannot be reached: ``"fail_closed"`` (default)
            refuses DPoP requests with :class:`~jwkguard.errors.StoreUnavailable` (503);
            ``"fail_open"`` accepts proofs unchecked for replay (they are still bound to the
            key, the request and a short ``iat`` window).
        on_event: Receives ``dpop_replay_fail_open`` / ``dpop_replay_fail_closed``, once per
            outage; default: the ``jwkguard.events`` logger.
        clock: Unix time for events; default ``time.time``.
    """

    def __init__(
        self,
        store: LifecycleStore,
        *,
        on_unavailable: UnavailablePolicy = "fail_closed",
        on_event: EventHandler | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if on_unavailable not in ("fail_open", "fail_closed"):
            raise ConfigurationError("on_unavailable must be 'fail_open' or 'fail_closed'")
        if not callable(getattr(store, "claim_once", None)):
            raise ConfigurationError("store must be a RedisStore (or another LifecycleStore)")
        self.store = store
        self.on_unavailable: UnavailablePolicy = on_unavailable
        self._on_event = on_event or log_event
        self._clock = clock or time.time
        self._reported_outage = -1

    def first_use(self, key: str, ttl: float, now: float) -> bool:
        """True the first time ``key`` is seen fleet-wide within ``ttl`` seconds."""
        return self._settle(self.store.claim_once(_NAMESPACE, key, ttl))

    async def afirst_use(self, key: str, ttl: float, now: float) -> bool:
        """:meth:`first_use` on the store's asyncio client."""
        return self._settle(await self.store.aclaim_once(_NAMESPACE, key, ttl))

    def _settle(self, first_use: bool | None) -> bool:
        if first_use is not None:
            return first_use
        outage = self.store.outages
        if outage != self._reported_outage:
            # One event per outage, not one per request.
            self._reported_outage = outage
            self._on_event(
                Event(
                    kind=f"dpop_replay_{self.on_unavailable}",
                    issuer="*",
                    timestamp=self._clock(),
                    detail={"store": type(self.store).__name__},
                )
            )
        if self.on_unavailable == "fail_closed":
            raise StoreUnavailable("The DPoP replay ledger is temporarily unavailable")
        return True
