"""Lifecycle state shared by a fleet through Redis.

Every process keeps a local :class:`~jwkguard.lifecycle._replica.Replica`, loaded at start and kept
current by a background thread: Redis pub/sub for changes as they happen, a heartbeat that
compares a version counter (so a lost message is noticed within one beat), and a periodic
full resync. The hot path reads only the replica. Only the replay ledger and the reuse watch
talk to Redis per request, and only where they are enabled.

:class:`RedisStore` is the facade over four parts: the connection for the URL's topology
(``_redis_connection``), the key layout and Lua scripts (``_redis_layout``), the listener
thread (``_redis_listener``) and what every replica-backed store shares: availability, lazy
start, fork safety and health events (:mod:`jwkguard.lifecycle._replicated`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from .._checks import positive_seconds
from .._context import AsyncContext
from .._events import EventHandler
from ..errors import ConfigurationError
from ..lifecycle._replica import LifecycleChange
from ..lifecycle._store import TokenUsage
from ._redis_connection import RedisConnection
from ._redis_layout import RedisKeys, Scripts, Snapshot, parse_snapshot, usage
from ._redis_listener import PubSubListener

if TYPE_CHECKING:
    import asyncio

    import redis
    import redis.asyncio

__all__ = ["RedisStore"]


class RedisStore(PubSubListener, AsyncContext):
    """Lifecycle state shared through Redis, with a local replica for the hot path.

    Call :meth:`start` (or use ``with``) before serving: it loads the replica and starts the
    listener thread. The async operations use a ``redis.asyncio`` client bound to the event
    loop that first uses it; close it with :meth:`aclose` on shutdown.

    Args:
        url: A Redis URL (``redis://``, ``rediss://`` or ``unix://``).
        prefix: Prefix of every key and of the channel, to share one Redis between apps.
        socket_timeout: Bound on every Redis command, seconds. Nothing waits longer.
        connect_timeout: Bound on opening a connection, seconds.
        heartbeat: How often the listener checks the change counter and Redis's health.
        resync_interval: How often the whole replica is reloaded regardless.
        restore: After Redis comes back empty (a restart without persistence), merge the
            replica's entries back so no revocation, cut-off or distrust is forgotten.
        clock: Unix time for expiring revocations; default ``time.time``.
        on_event: Receives ``store_unavailable``, ``store_recovered`` and ``store_restored``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "jwkguard:",
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        heartbeat: float = 1.0,
        resync_interval: float = 60.0,
        restore: bool = True,
        clock: Callable[[], float] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigurationError("url must be a Redis URL such as redis://127.0.0.1:6379/0")
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string")
        socket_timeout = positive_seconds(socket_timeout, "socket_timeout")
        connect_timeout = positive_seconds(connect_timeout, "connect_timeout")
        heartbeat = positive_seconds(heartbeat, "heartbeat")
        resync_interval = positive_seconds(resync_interval, "resync_interval")
        self._connection = RedisConnection(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout
        )
        self._errors = self._connection.errors
        super().__init__(
            heartbeat=heartbeat,
            resync_interval=resync_interval,
            backend="redis",
            thread_name="jwkguard-redis-store",
            first_load_wait=connect_timeout + 2 * socket_timeout,
            clock=clock,
            on_event=on_event,
        )
        self._restore = restore
        self._layout = RedisKeys(prefix)
        # The prefix and the state's key names, as the tests read them.
        self._prefix = prefix
        self._keys = self._layout.state
        self._connect()
        self._async: redis.asyncio.Redis | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_scripts: Scripts | None = None

    def _connect(self) -> None:
        self._client: redis.Redis = self._connection.client(asynchronous=False)
        self._scripts = Scripts.register(self._client)

    # -- lifetime -------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # Beyond the thread and locks (see the base class), the parent keeps using the
        # inherited sockets: rebuild the clients too.
        super()._after_fork_in_child()
        self._async = None
        self._async_loop = None
        self._async_scripts = None
        self._connect()  # the old client is dropped, not closed: its sockets are the parent's

    async def astart(self, wait: float = 5.0) -> Self:
        """``start`` without blocking the event loop (``wait`` as ``start``'s ``timeout``)."""
        import asyncio  # loaded already by the running loop; kept off `import jwkguard`

        return await asyncio.to_thread(self.start, wait)

    def close(self) -> None:
        """Stop the listener thread and close the sync client."""
        self._stop_thread(timeout=5.0 + self._connection.socket_timeout * 4)
        self._client.close()
        with self._state_lock:
            self._state = "starting"

    async def aclose(self) -> None:
        """Close the async client (on its own loop) and everything ``close`` closes."""
        import asyncio

        client, self._async = self._async, None
        loop, self._async_loop = self._async_loop, None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self.start()

    async def __aenter__(self) -> Self:
        return await self.astart()

    def _exit(self) -> None:
        self.close()

    async def _aexit(self) -> None:
        await self.aclose()

    # -- admin writes ---------------------------------------------------------------------

    def publish(self, change: LifecycleChange) -> None:
        """Store ``change`` in Redis and broadcast it; raises ``StoreUnavailable`` if down."""
        try:
            if change.op == "force_refresh":
                self._client.publish(self._layout.channel, "- - " + change.to_json())
                return
            keys, args = self._layout.write_call(change, self._clock())
            epoch, n = self._scripts.write(keys=keys, args=args)
            if self._receive(str(epoch), int(n), change) or self._thread is None:
                return
            self._install(self._read_snapshot())
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def apublish(self, change: LifecycleChange) -> None:
        """``publish`` on the asyncio client."""
        client, scripts = self._aclient()
        try:
            if change.op == "force_refresh":
                await client.publish(self._layout.channel, "- - " + change.to_json())
                return
            keys, args = self._layout.write_call(change, self._clock())
            epoch, n = await scripts.write(keys=keys, args=args)
            if self._receive(str(epoch), int(n), change) or self._thread is None:
                return
            raw = await scripts.snapshot(
                keys=self._layout.snapshot_keys(), args=[repr(self._clock())]
            )
            self._install(parse_snapshot(raw))
        except self._errors as exc:
            raise self._failed(exc) from exc

    # -- replay ledger and reuse watch ----------------------------------------------------

    def claim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None:
        """One ``SET NX PX``: True for the first use, False after; None if Redis is down."""
        if not self.available:
            return None
        try:
            result = self._client.set(**self._layout.claim_call(issuer, token_id, ttl))
        except self._errors as exc:
            self._mark_down(exc)
            return None
        return bool(result)

    async def aclaim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None:
        """``claim_once`` on the asyncio client."""
        if not self.available:
            return None
        client, _ = self._aclient()
        try:
            result = await client.set(**self._layout.claim_call(issuer, token_id, ttl))
        except self._errors as exc:
            self._mark_down(exc)
            return None
        return bool(result)

    def record_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None:
        """Count a use from ``address`` in the token's window; None if Redis is down."""
        if not self.available:
            return None
        try:
            result = self._scripts.record_use(
                **self._layout.use_call(issuer, token_id, address, window)
            )
        except self._errors as exc:
            self._mark_down(exc)
            return None
        return usage(result)

    async def arecord_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None:
        """``record_use`` on the asyncio client."""
        if not self.available:
            return None
        _, scripts = self._aclient()
        try:
            result = await scripts.record_use(
                **self._layout.use_call(issuer, token_id, address, window)
            )
        except self._errors as exc:
            self._mark_down(exc)
            return None
        return usage(result)

    def _aclient(self) -> tuple[redis.asyncio.Redis, Scripts]:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._async is None or self._async_scripts is None or self._async_loop is not loop:
            # A client belongs to the loop that made it; a new loop gets a new client.
            client: redis.asyncio.Redis = self._connection.client(asynchronous=True)
            self._async, self._async_loop = client, loop
            self._async_scripts = Scripts.register(client)
        return self._async, self._async_scripts

    # -- the replica: snapshots and restore -----------------------------------------------

    def resync(self) -> None:
        """Reload the whole replica from Redis now (restoring Redis first if it lost data)."""
        try:
            self._sync()
        except self._errors as exc:
            raise self._failed(exc) from exc

    def _read_snapshot(self) -> Snapshot:
        raw = self._scripts.snapshot(keys=self._layout.snapshot_keys(), args=[repr(self._clock())])
        return parse_snapshot(raw)

    def _needs_restore(self, snapshot: Snapshot) -> bool:
        # Redis's data is not the data this replica came from: it restarted empty, or failed
        # over (Sentinel) to a replica that had not received the last writes, so its counter
        # went back. Installing the snapshot would forget those entries, so restore first.
        return (
            self._restore
            and self._epoch is not None
            and (snapshot.epoch != self._epoch or snapshot.n < self._n)
            and bool(self._replica)
        )

    def _install(self, snapshot: Snapshot, *, force: bool = False) -> bool:
        """Make the replica ``snapshot``; False if a restore must come first."""
        with self._lock:
            if not force and self._needs_restore(snapshot):
                self._resync_wanted.set()
                return False
            self._replica.replace(snapshot.replica)
            self._epoch, self._n = snapshot.epoch, snapshot.n
            return True

    def _sync(self) -> None:
        """Full resync on the sync client: restore if needed, then install."""
        for _ in range(3):
            snapshot = self._read_snapshot()
            if self._install(snapshot):
                self._resync_wanted.clear()
                return
            if self._restore_into(snapshot):
                self._install(self._read_snapshot(), force=True)
                self._resync_wanted.clear()
                return
        raise self._connection.redis.RedisError("the Redis data kept changing during a restore")

    def _restore_into(self, snapshot: Snapshot) -> bool:
        keys, args = self._layout.restore_call(
            self._replica.changes(), snapshot.epoch, self._clock()
        )
        restored = bool(self._scripts.restore(keys=keys, args=args))
        if restored:
            self._emit("store_restored", **self._replica.counts())
        return restored
