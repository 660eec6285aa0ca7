"""Where lifecycle state lives: the store interface and the in-memory store.

A store owns a ``Replica`` that the hot path reads without IO, takes administrative
``LifecycleChange`` records, and answers the two questions that need an atomic shared
answer: "is this the first use of this token?" (replay ledger) and "how often, and from how
many addresses, has it been used lately?" (reuse watch).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ._replica import LifecycleChange, Replica

__all__ = ["ChangeListener", "LifecycleStore", "MemoryStore", "TokenUsage"]

logger = logging.getLogger("jwkguard.lifecycle")

ChangeListener = Callable[[LifecycleChange], None]
"""Receives fleet broadcasts that carry no state (``force_refresh``)."""

# How often the memory store sweeps expired entries, in seconds of its clock.
_SWEEP_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """How one token has been used within the current reuse window.

    Attributes:
        uses: Uses seen in the window, this one included.
        addresses: Distinct client addresses seen in the window.
        new_address: Whether this use came from an address not seen before in the window.
    """

    uses: int
    addresses: int
    new_address: bool


class LifecycleStore(Protocol):
    """The interface the lifecycle policy and the admin API use.

    ``replica`` and ``available`` are read on every request and never do IO; ``outages``
    counts how often the store became unavailable, so the policy reports each outage once.
    ``claim_once`` and ``record_use`` (and their async twins) may do IO; they return ``None``
    instead of an answer when the backing service cannot be reached, and the policy decides
    what that means. ``publish`` raises :class:`~jwkguard.errors.StoreUnavailable` when the
    change cannot be stored.
    """

    @property
    def replica(self) -> Replica: ...

    @property
    def available(self) -> bool: ...

    @property
    def outages(self) -> int: ...

    def publish(self, change: LifecycleChange) -> None: ...

    async def apublish(self, change: LifecycleChange) -> None: ...

    def claim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None: ...

    async def aclaim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None: ...

    def record_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None: ...

    async def arecord_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None: ...

    def add_listener(self, listener: ChangeListener) -> None: ...


class _Window:
    __slots__ = ("addresses", "ends", "uses")

    def __init__(self, ends: float) -> None:
        self.ends = ends
        self.uses = 0
        self.addresses: set[str] = set()


class MemoryStore:
    """Lifecycle state for one process (the default). Always available; no IO.

    Args:
        clock: Unix time for expiring revocations, the replay ledger and reuse windows;
            default ``time.time``.
    """

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._replica = Replica()
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], float] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._listeners: list[ChangeListener] = []
        self._next_sweep = self._clock() + _SWEEP_INTERVAL

    @property
    def replica(self) -> Replica:
        """The lifecycle state (here the only copy)."""
        return self._replica

    @property
    def available(self) -> bool:
        """Always true: memory cannot be unreachable."""
        return True

    @property
    def outages(self) -> int:
        """Always 0."""
        return 0

    def publish(self, change: LifecycleChange) -> None:
        """Apply ``change`` and tell the listeners about broadcasts."""
        with self._lock:
            self._replica.apply(change)
            self._sweep(self._clock())
        if change.op == "force_refresh":
            for listener in tuple(self._listeners):
                try:
                    listener(change)
                except Exception:  # as in RedisStore: one instance's bug is not the admin's
                    logger.exception("lifecycle listener failed on %s", change.op)

    async def apublish(self, change: LifecycleChange) -> None:
        """Same as ``publish``: nothing to wait for."""
        self.publish(change)

    def claim_once(self, issuer: str, token_id: str, ttl: float) -> bool:
        """True for the first use of ``(issuer, token_id)`` within ``ttl`` seconds."""
        now = self._clock()
        key = (issuer, token_id)
        with self._lock:
            self._sweep(now)
            until = self._used.get(key)
            if until is not None and until > now:
                return False
            self._used[key] = now + ttl
            return True

    async def aclaim_once(self, issuer: str, token_id: str, ttl: float) -> bool:
        """Same as ``claim_once``: nothing to wait for."""
        return self.claim_once(issuer, token_id, ttl)

    def record_use(self, issuer: str, token_id: str, address: str, window: float) -> TokenUsage:
        """Count one use of the token from ``address`` in a fixed window from its first use."""
        now = self._clock()
        key = (issuer, token_id)
        with self._lock:
            self._sweep(now)
            current = self._windows.get(key)
            if current is None or current.ends <= now:
                current = self._windows[key] = _Window(now + window)
            current.uses += 1
            new_address = address not in current.addresses
            if new_address:
                current.addresses.add(address)
            return TokenUsage(current.uses, len(current.addresses), new_address)

    async def arecord_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage:
        """Same as ``record_use``: nothing to wait for."""
        return self.record_use(issuer, token_id, address, window)

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` with every ``force_refresh`` broadcast."""
        self._listeners.append(listener)

    def prune(self) -> None:
        """Drop expired revocations, ledger entries and reuse windows now."""
        with self._lock:
            self._next_sweep = float("-inf")
            self._sweep(self._clock())

    def _sweep(self, now: float) -> None:
        # Called under the lock; amortised so that no single call pays for a full sweep often.
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        self._replica.prune(now)
        self._used = {key: until for key, until in self._used.items() if until > now}
        self._windows = {key: w for key, w in self._windows.items() if w.ends > now}
