"""The listener thread that keeps a Redis-backed replica current.

It subscribes to the change channel before loading (so nothing published after the load is
missed), applies each versioned message strictly in order, compares the version counter every
heartbeat (so a lost message is noticed within one beat), reloads everything every
``resync_interval`` or whenever the order breaks, and reconnects with backoff after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..lifecycle._replica import LifecycleChange
from ..lifecycle._replicated import ReplicatedStore
from ._redis_layout import RedisKeys

if TYPE_CHECKING:
    import redis

__all__ = ["PubSubListener"]

logger = logging.getLogger("jwkguard.lifecycle")

_MAX_BACKOFF = 1.0
# How long the listener waits for a message before doing its periodic work.
_POLL = 0.1


class PubSubListener(ReplicatedStore):
    """A replicated store fed by a Redis pub/sub channel of versioned changes.

    The subclass provides the client, the key layout, the errors to expect and ``_sync``
    (a full reload); this class holds the replica's version and runs the listener thread.
    """

    _client: redis.Redis
    _layout: RedisKeys
    _errors: tuple[type[BaseException], ...]

    def __init__(self, *, heartbeat: float, resync_interval: float, **store: Any) -> None:
        super().__init__(**store)
        self._heartbeat = heartbeat
        self._resync_interval = resync_interval
        self._epoch: str | None = None  # the version the replica reflects, under _lock
        self._n = 0
        self._resync_wanted = threading.Event()
        self._sessions = 0

    def _sync(self) -> None:
        """Reload the whole replica (restoring Redis first if it lost data)."""
        raise NotImplementedError

    @property
    def version(self) -> tuple[str | None, int]:
        """The (epoch, change counter) the replica reflects."""
        return self._epoch, self._n

    def _receive(self, epoch: str, n: int, change: LifecycleChange | None) -> bool:
        """Apply a versioned change in order; False if the replica must resync instead."""
        with self._lock:
            if epoch == self._epoch:
                if n <= self._n:
                    return True
                if n == self._n + 1 and change is not None:
                    self._replica.apply(change)
                    self._n = n
                    return True
            self._resync_wanted.set()
            return False

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._resync_wanted = threading.Event()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            sessions = self._sessions
            try:
                self._session()
                return
            except self._errors as exc:
                self._mark_down(exc)
            except Exception as exc:  # a bug here must not leave a stale replica marked "up"
                logger.exception("lifecycle store listener failed")
                self._mark_down(exc)
            self._attempted.set()
            if self._sessions != sessions:
                delay = 0.05  # it had been up: retry promptly, then back off again
            self._stop.wait(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    def _session(self) -> None:
        # redis < 8 leaves pubsub() unannotated, newer releases annotate it: the ignore holds
        # for either without tripping warn_unused_ignores.
        pubsub = self._client.pubsub(  # type: ignore[no-untyped-call,unused-ignore]
            ignore_subscribe_messages=True
        )
        try:
            # Subscribe before loading, so nothing published after the load is missed.
            pubsub.subscribe(self._layout.channel)
            self._sync()
            self._mark_up()
            self._sessions += 1
            beat = time.monotonic() + self._heartbeat
            full = time.monotonic() + self._resync_interval
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=_POLL)
                if message is not None and message.get("type") == "message":
                    self._on_message(str(message["data"]))
                now = time.monotonic()
                if self._resync_wanted.is_set() or now >= full or self._state != "up":
                    self._sync()
                    self._mark_up()
                    full = now + self._resync_interval
                    beat = now + self._heartbeat
                elif now >= beat:
                    self._beat()
                    beat = now + self._heartbeat
        finally:
            with contextlib.suppress(*self._errors):
                pubsub.close()

    def _beat(self) -> None:
        epoch, n = self._client.hmget(self._layout.state["meta"], ["epoch", "n"])
        if (epoch or None, int(n or 0)) != (self._epoch, self._n):
            self._resync_wanted.set()

    def _on_message(self, data: str) -> None:
        epoch, _, rest = data.partition(" ")
        counter, _, body = rest.partition(" ")
        try:
            change: LifecycleChange | None = LifecycleChange.from_json(body)
        except ValueError:
            change = None
        if epoch == "-":
            if change is not None:
                self._broadcast(change)
            return
        try:
            n = int(counter)
        except ValueError:
            self._resync_wanted.set()
            return
        self._receive(epoch, n, change)
