"""Lifecycle state shared by a fleet through Redis.

Every process keeps a local :class:`~jwkguard.lifecycle._replica.Replica`, loaded at start and kept
current by a background thread: Redis pub/sub for changes as they happen, a heartbeat that
compares a version counter (so a lost message is noticed within one beat), and a periodic
full resync. The hot path reads only the replica. Only the replay ledger and the reuse watch
talk to Redis per request, and only where they are enabled.

Layout (``P`` is the prefix)::

    P{lifecycle}:meta            hash   epoch (random id of this Redis's data), n (counter)
    P{lifecycle}:revoked         zset   member ["iss","jti"], score = token expiry
    P{lifecycle}:cutoff:subject  hash   field ["iss","sub"] -> cut-off time
    P{lifecycle}:cutoff:client   hash   field ["iss","client_id"] -> cut-off time
    P{lifecycle}:distrust        hash   field ["iss","kid"|"thumbprint","value"] -> when
    P once:<digest>              string replay ledger entry, expires with the token
    P use:{<digest>}:n / :a      reuse-watch counter and address set, expire with the window
    P changes                    pub/sub channel: "<epoch> <n> <change json>", or "- - <json>"

Every write runs as one Lua script that changes the data, bumps ``n`` and publishes, so
messages carry the version they produced and replicas apply them strictly in order. The
``{...}`` hash tags put every key one script touches in one Redis Cluster slot (a script's
keys must share a slot there); snapshots are a read-only script too, so nothing needs MULTI.

The URL picks the topology: ``redis://`` / ``rediss://`` / ``unix://`` (one server),
``redis+sentinel://host:port[,host:port...]/<service>[/db]`` (Sentinel finds the primary
and follows failovers) or ``redis+cluster://host:port[,host:port...]`` (Redis Cluster).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from .. import _forks
from .._events import Event, EventHandler, log_event
from ..errors import ConfigurationError, StoreUnavailable
from ..lifecycle._replica import ChangeOp, LifecycleChange, Replica
from ..lifecycle._store import ChangeListener, TokenUsage

if TYPE_CHECKING:
    import asyncio

    import redis
    import redis.asyncio

__all__ = ["RedisStore"]

logger = logging.getLogger("jwkguard.lifecycle")

# Writes: change the data, bump the counter, publish the change with the version it produced.
_WRITE = """
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[7])
local cmd = ARGV[1]
if cmd == 'ZADD' then
  local old = redis.call('ZSCORE', KEYS[2], ARGV[2])
  if (not old) or tonumber(old) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
elseif cmd == 'HSET' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
elseif cmd == 'HDEL' then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. n .. ' ' .. ARGV[6])
return {epoch, n}
"""

# Restore: after Redis lost its data (a restart without persistence, a failover to an empty
# node), merge a replica's live entries back. Only ever adds, so concurrent restores from
# several instances give the union; refuses if the epoch moved again meanwhile.
_RESTORE = """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then current = '' end
if current ~= ARGV[1] then return 0 end
if current == '' then redis.call('HSET', KEYS[1], 'epoch', ARGV[2]) end
local i = 5
for k = 2, 5 do
  local count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, count do
    local field, value = ARGV[i], ARGV[i + 1]
    i = i + 2
    if k == 2 then
      local old = redis.call('ZSCORE', KEYS[2], field)
      if tonumber(value) > tonumber(ARGV[4]) and ((not old) or tonumber(old) < tonumber(value)) then
        redis.call('ZADD', KEYS[2], value, field)
      end
    else
      redis.call('HSETNX', KEYS[k], field, value)
    end
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('PUBLISH', ARGV[3], epoch .. ' ' .. n .. ' {}')
return 1
"""

# Snapshot: the whole state in one atomic read (a script, not MULTI, so Cluster serves it).
_SNAPSHOT = """
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES'),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]),
}
"""

# Reuse watch: one round trip counts the use and the address within a fixed window.
_RECORD_USE = """
local added = redis.call('SADD', KEYS[2], ARGV[1])
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return {n, redis.call('SCARD', KEYS[2]), added}
"""

_State = Literal["starting", "up", "down"]
_MAX_BACKOFF = 1.0
# How long the listener waits for a message before doing its periodic work.
_POLL = 0.1


@dataclass(frozen=True, slots=True)
class _Snapshot:
    epoch: str | None
    n: int
    replica: Replica


def _import_redis() -> tuple[Any, Any]:
    try:
        import redis
        import redis.asyncio
        import redis.asyncio.retry
    except ImportError:  # pragma: no cover - the extra is installed in development
        raise ConfigurationError(
            "RedisStore needs the redis package: pip install 'jwkguard[redis]'"
        ) from None
    return redis, redis.asyncio


# The data keys, in the order the restore and snapshot scripts take them.
_DATA_KEYS = ("revoked", "cutoff:subject", "cutoff:client", "distrust")
_TOPOLOGIES = ("redis+sentinel://", "redis+cluster://")


def _hosts(text: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (``[v6]:port`` too) -> [(host, port)]."""
    hosts: list[tuple[str, int]] = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"{item!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def _topology(url: str) -> tuple[str, dict[str, Any]]:
    """What the URL names: ``("single", {})``, ``("sentinel", ...)`` or ``("cluster", ...)``."""
    from urllib.parse import unquote, urlsplit

    if not url.startswith(_TOPOLOGIES):
        return "single", {}
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    credentials: dict[str, Any] = {}
    if parts.password is not None:
        credentials["password"] = unquote(parts.password)
        if parts.username:
            credentials["username"] = unquote(parts.username)
    path = [segment for segment in parts.path.split("/") if segment]
    if url.startswith("redis+cluster://"):
        if path:
            raise ConfigurationError("a redis+cluster:// URL has no path (Cluster has no db)")
        return "cluster", {"nodes": _hosts(netloc), "credentials": credentials}
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError("a Sentinel URL is redis+sentinel://host:port,.../service[/db]")
    return "sentinel", {
        "nodes": _hosts(netloc),
        "service": unquote(path[0]),
        "db": int(path[1]) if len(path) == 2 else 0,
        "credentials": credentials,
    }


def _snapshot_results(raw: list[Any]) -> list[Any]:
    """The snapshot script's flat arrays in the shape ``_parse_snapshot`` reads."""

    def pairs(flat: list[Any]) -> dict[str, Any]:
        return {str(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}

    meta, revoked, subjects, clients, distrust = raw
    scored = [(str(member), float(score)) for member, score in pairs(revoked).items()]
    return [pairs(meta), scored, pairs(subjects), pairs(clients), pairs(distrust)]


def _storage(change: LifecycleChange) -> tuple[str, str, str]:
    """Where a change's entry lives: (data key name, field or member, value or score)."""
    issuer, value = change.issuer, change.value or ""
    if change.op == "revoke_token":
        return "revoked", _field(issuer, value), repr(change.at)
    if change.op == "cut_off_subject":
        return "cutoff:subject", _field(issuer, value), repr(change.at)
    if change.op == "cut_off_client":
        return "cutoff:client", _field(issuer, value), repr(change.at)
    return "distrust", _field(issuer, change.key_field or "", value), repr(change.timestamp)


def _field(*parts: str) -> str:
    return json.dumps(parts, separators=(",", ":"))


def _parse_field(text: str, size: int) -> tuple[str, ...] | None:
    try:
        parts = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parts, list) or len(parts) != size:
        return None
    if not all(isinstance(part, str) for part in parts):
        return None
    return tuple(parts)


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class RedisStore:
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
        for name, value in (
            ("socket_timeout", socket_timeout),
            ("connect_timeout", connect_timeout),
            ("heartbeat", heartbeat),
            ("resync_interval", resync_interval),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        self._redis, self._redis_asyncio = _import_redis()
        self._url = url
        self._timeouts = {
            "socket_timeout": float(socket_timeout),
            "socket_connect_timeout": float(connect_timeout),
        }
        self._heartbeat = float(heartbeat)
        self._resync_interval = float(resync_interval)
        self._restore = restore
        self._clock = clock or time.time
        self._on_event: EventHandler = on_event or log_event
        self._topology = _topology(url)
        # One hash tag for the whole state: every script's keys share one Cluster slot.
        self._keys = {name: f"{prefix}{{lifecycle}}:{name}" for name in ("meta", *_DATA_KEYS)}
        self._prefix = prefix
        self._channel = prefix + "changes"
        self._connect()
        self._async: redis.asyncio.Redis | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_scripts: tuple[Any, Any, Any] | None = None
        self._errors: tuple[type[BaseException], ...] = (
            self._redis.RedisError,
            self._redis.exceptions.RedisClusterException,
            OSError,
        )

        self._replica = Replica()
        self._lock = threading.Lock()  # guards the replica, epoch and n
        self._epoch: str | None = None
        self._n = 0
        self._state: _State = "starting"
        self._state_lock = threading.Lock()
        self._outages = 0
        self._listeners: list[ChangeListener] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._attempted = threading.Event()
        self._resync_wanted = threading.Event()
        self._sessions = 0
        # Start the listener the first time this process consults the store: set by
        # start_on_first_use(), and in a child forked from a process that had started it.
        self._revive = False
        self._revive_lock = threading.Lock()
        self._first_load_bound = float(connect_timeout) + 2 * float(socket_timeout)
        _forks.track(self)

    def _connect(self) -> None:
        self._client: redis.Redis = self._new_client(asynchronous=False)
        self._write = self._client.register_script(_WRITE)
        self._restore_script = self._client.register_script(_RESTORE)
        self._use_script = self._client.register_script(_RECORD_USE)
        self._snapshot_script = self._client.register_script(_SNAPSHOT)

    def _new_client(self, *, asynchronous: bool) -> Any:
        """A client for the URL's topology: one server, Sentinel's primary, or a Cluster."""
        options = self._client_options(asynchronous=asynchronous)
        kind, where = self._topology
        if kind == "single":
            module = self._redis_asyncio if asynchronous else self._redis
            return module.Redis.from_url(self._url, **options)
        options.update(where["credentials"])
        if kind == "cluster":
            if asynchronous:
                from redis.asyncio.cluster import ClusterNode as AsyncNode
                from redis.asyncio.cluster import RedisCluster as AsyncCluster

                nodes: list[Any] = [AsyncNode(host, port) for host, port in where["nodes"]]
                return AsyncCluster(startup_nodes=nodes, **options)
            from redis.cluster import ClusterNode, RedisCluster

            node: Any = ClusterNode  # untyped in some redis releases
            nodes = [node(host, port) for host, port in where["nodes"]]
            return RedisCluster(startup_nodes=nodes, **options)
        if asynchronous:
            from redis.asyncio.sentinel import Sentinel as AsyncSentinel

            sentinel: Any = AsyncSentinel(where["nodes"], sentinel_kwargs=dict(self._timeouts))
        else:
            from redis.sentinel import Sentinel

            sentinel = Sentinel(where["nodes"], sentinel_kwargs=dict(self._timeouts))
        # The primary is looked up on every new connection: after a failover the next
        # reconnect (the listener's, with backoff) finds the promoted replica.
        return sentinel.master_for(where["service"], db=where["db"], **options)

    def _client_options(self, *, asynchronous: bool) -> dict[str, Any]:
        # No retries inside redis-py: one bounded attempt, and the store decides what next.
        # The asyncio client takes the asyncio policy: redis-py 8.2 warns when it is handed
        # the synchronous one (and converts it), redis 5..8.1 accept either.
        retry = (self._redis_asyncio.retry if asynchronous else self._redis.retry).Retry
        return {
            **self._timeouts,
            "decode_responses": True,
            "retry": retry(self._redis.backoff.NoBackoff(), 0),
        }

    # -- what the hot path reads ----------------------------------------------------------

    @property
    def replica(self) -> Replica:
        """The local copy of revocations, cut-offs and distrusted keys."""
        return self._replica

    @property
    def available(self) -> bool:
        """True while the replica is loaded and kept current, and Redis answers.

        A store set to :meth:`start_on_first_use`, or forked from a process that had started
        it, starts its listener here the first time it is asked, waiting for the first load
        at most ``connect_timeout + 2 * socket_timeout``; until then it is unavailable.
        """
        if self._state == "up":
            return True
        if self._revive:
            self._revive_listener()
            return self._is_up()
        return False

    def _is_up(self) -> bool:
        return self._state == "up"

    @property
    def outages(self) -> int:
        """How many times the store has become unavailable (counts from 0)."""
        return self._outages

    @property
    def version(self) -> tuple[str | None, int]:
        """The (epoch, change counter) the replica reflects."""
        return self._epoch, self._n

    # -- lifetime -------------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> Self:
        """Load the replica and start the listener thread.

        Waits until the first load succeeded or failed (at most ``timeout`` seconds); if
        Redis is unreachable the store starts unavailable and keeps retrying.
        """
        self._start_listener()
        self._attempted.wait(timeout)
        return self

    def _start_listener(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._attempted.clear()
            self._thread = threading.Thread(
                target=self._run, name="jwkguard-redis-store", daemon=True
            )
            self._thread.start()

    def start_on_first_use(self) -> Self:
        """Start the listener lazily, the first time a process consults the store.

        For settings-built stores and pre-fork servers (gunicorn ``--preload``): a process
        that only builds the store (the master) starts no thread and opens no connection;
        each worker starts its own listener on its first request.
        """
        self._revive = True
        return self

    def _revive_listener(self) -> None:
        with self._revive_lock:
            if not self._revive:
                return
            self._revive = False
            self._start_listener()
        self._attempted.wait(self._first_load_bound)

    def _after_fork_in_child(self) -> None:
        # The listener thread did not survive the fork, a lock it held stays held, and the
        # parent keeps using the inherited sockets: rebuild all of it. The inherited replica
        # is no longer kept current, so the store is unavailable until this process has
        # started its own listener and reloaded (on its first use, see `available`).
        self._revive = self._revive or self._thread is not None
        self._thread = None
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._revive_lock = threading.Lock()
        self._stop = threading.Event()
        self._attempted = threading.Event()
        self._resync_wanted = threading.Event()
        self._state = "starting"
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
        self._revive = False
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0 + self._timeouts["socket_timeout"] * 4)
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` (on the listener thread) with every ``force_refresh`` broadcast."""
        self._listeners.append(listener)

    # -- admin writes ---------------------------------------------------------------------

    def publish(self, change: LifecycleChange) -> None:
        """Store ``change`` in Redis and broadcast it; raises ``StoreUnavailable`` if down."""
        try:
            if change.op == "force_refresh":
                self._client.publish(self._channel, "- - " + change.to_json())
                return
            keys, args = self._write_call(change)
            epoch, n = self._write(keys=keys, args=args)
            if self._receive(str(epoch), int(n), change) or self._thread is None:
                return
            self._install(self._read_snapshot())
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def apublish(self, change: LifecycleChange) -> None:
        """``publish`` on the asyncio client."""
        client, (write, _, snapshot) = self._aclient()
        try:
            if change.op == "force_refresh":
                await client.publish(self._channel, "- - " + change.to_json())
                return
            keys, args = self._write_call(change)
            epoch, n = await write(keys=keys, args=args)
            if self._receive(str(epoch), int(n), change) or self._thread is None:
                return
            raw = await snapshot(keys=self._snapshot_keys(), args=[repr(self._clock())])
            self._install(self._parse_snapshot(_snapshot_results(raw)))
        except self._errors as exc:
            raise self._failed(exc) from exc

    def _write_call(self, change: LifecycleChange) -> tuple[list[str], list[str]]:
        name, field, value = _storage(change)
        if change.op == "revoke_token":
            command = "ZADD"
        else:
            command = "HDEL" if change.op == "trust_key" else "HSET"
        args = [
            command,
            field,
            value,
            repr(self._clock()),
            self._channel,
            change.to_json(),
            secrets.token_hex(8),
        ]
        return [self._keys["meta"], self._keys[name]], args

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        self._mark_down(exc)
        return StoreUnavailable("The lifecycle store cannot be reached")

    # -- replay ledger and reuse watch ----------------------------------------------------

    def _once_key(self, issuer: str, token_id: str) -> str:
        digest = hashlib.sha256(f"{len(issuer)}:{issuer}{token_id}".encode()).hexdigest()
        return f"{self._prefix}once:{digest[:40]}"

    def _use_keys(self, issuer: str, token_id: str) -> list[str]:
        digest = hashlib.sha256(f"{len(issuer)}:{issuer}{token_id}".encode()).hexdigest()
        base = f"{self._prefix}use:{{{digest[:40]}}}"  # one slot for both keys
        return [base + ":n", base + ":a"]

    def claim_once(self, issuer: str, token_id: str, ttl: float) -> bool | None:
        """One ``SET NX PX``: True for the first use, False after; None if Redis is down."""
        if not self.available:
            return None
        try:
            result = self._client.set(
                self._once_key(issuer, token_id), "1", nx=True, px=max(1, int(ttl * 1000))
            )
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
            result = await client.set(
                self._once_key(issuer, token_id), "1", nx=True, px=max(1, int(ttl * 1000))
            )
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
            result = self._use_script(
                keys=self._use_keys(issuer, token_id), args=[address, max(1, int(window * 1000))]
            )
        except self._errors as exc:
            self._mark_down(exc)
            return None
        return _usage(result)

    async def arecord_use(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> TokenUsage | None:
        """``record_use`` on the asyncio client."""
        if not self.available:
            return None
        _, (_, use_script, _) = self._aclient()
        try:
            result = await use_script(
                keys=self._use_keys(issuer, token_id), args=[address, max(1, int(window * 1000))]
            )
        except self._errors as exc:
            self._mark_down(exc)
            return None
        return _usage(result)

    def _aclient(self) -> tuple[redis.asyncio.Redis, tuple[Any, Any, Any]]:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._async is None or self._async_scripts is None or self._async_loop is not loop:
            # A client belongs to the loop that made it; a new loop gets a new client.
            client: redis.asyncio.Redis = self._new_client(asynchronous=True)
            self._async, self._async_loop = client, loop
            self._async_scripts = (
                client.register_script(_WRITE),
                client.register_script(_RECORD_USE),
                client.register_script(_SNAPSHOT),
            )
        return self._async, self._async_scripts

    # -- the replica: snapshots, messages, restore ----------------------------------------

    def resync(self) -> None:
        """Reload the whole replica from Redis now (restoring Redis first if it lost data)."""
        try:
            self._sync()
        except self._errors as exc:
            raise self._failed(exc) from exc

    def _snapshot_keys(self) -> list[str]:
        return [self._keys["meta"], *(self._keys[name] for name in _DATA_KEYS)]

    def _read_snapshot(self) -> _Snapshot:
        raw = self._snapshot_script(keys=self._snapshot_keys(), args=[repr(self._clock())])
        return self._parse_snapshot(_snapshot_results(raw))

    def _parse_snapshot(self, results: list[Any]) -> _Snapshot:
        meta, revoked, subjects, clients, distrust = results
        replica = Replica()
        for member, score in revoked:
            pair = _parse_field(member, 2)
            if pair is not None:
                replica.apply(
                    LifecycleChange(op="revoke_token", issuer=pair[0], value=pair[1], at=score)
                )
        cutoffs: tuple[tuple[ChangeOp, dict[str, str]], ...] = (
            ("cut_off_subject", subjects),
            ("cut_off_client", clients),
        )
        for op, source in cutoffs:
            for field, value in source.items():
                pair, at = _parse_field(field, 2), _number(value)
                if pair is not None and at is not None:
                    replica.apply(LifecycleChange(op=op, issuer=pair[0], value=pair[1], at=at))
        for field, value in distrust.items():
            triple = _parse_field(field, 3)
            if triple is not None and triple[1] in ("kid", "thumbprint"):
                replica.apply(
                    LifecycleChange(
                        op="distrust_key",
                        issuer=triple[0],
                        value=triple[2],
                        key_field="kid" if triple[1] == "kid" else "thumbprint",
                        timestamp=_number(value) or 0.0,
                    )
                )
        epoch = meta.get("epoch") or None
        return _Snapshot(epoch, int(meta.get("n") or 0), replica)

    def _needs_restore(self, snapshot: _Snapshot) -> bool:
        # Redis's data is not the data this replica came from: it restarted empty, or failed
        # over (Sentinel) to a replica that had not received the last writes, so its counter
        # went back. Installing the snapshot would forget those entries, so restore first.
        return (
            self._restore
            and self._epoch is not None
            and (snapshot.epoch != self._epoch or snapshot.n < self._n)
            and bool(self._replica)
        )

    def _install(self, snapshot: _Snapshot, *, force: bool = False) -> bool:
        """Make the replica ``snapshot``; False if a restore must come first."""
        with self._lock:
            if not force and self._needs_restore(snapshot):
                self._resync_wanted.set()
                return False
            self._replica.replace(snapshot.replica)
            self._epoch, self._n = snapshot.epoch, snapshot.n
            return True

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
        raise self._redis.RedisError("the Redis data kept changing during a restore")

    def _restore_into(self, snapshot: _Snapshot) -> bool:
        now = self._clock()
        groups: dict[str, list[str]] = {name: [] for name in _DATA_KEYS}
        for change in self._replica.changes():
            if change.op == "revoke_token" and (change.at or 0.0) <= now:
                continue
            name, field, value = _storage(change)
            groups[name] += [field, value]
        args: list[str] = [snapshot.epoch or "", secrets.token_hex(8), self._channel, repr(now)]
        for name in _DATA_KEYS:
            args += [str(len(groups[name]) // 2), *groups[name]]
        keys = [self._keys["meta"], *(self._keys[name] for name in _DATA_KEYS)]
        restored = bool(self._restore_script(keys=keys, args=args))
        if restored:
            self._emit("store_restored", **self._replica.counts())
        return restored

    # -- the listener thread --------------------------------------------------------------

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
            pubsub.subscribe(self._channel)
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
        epoch, n = self._client.hmget(self._keys["meta"], ["epoch", "n"])
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

    def _broadcast(self, change: LifecycleChange) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop the replica
                logger.exception("lifecycle listener failed on %s", change.op)

    # -- health ---------------------------------------------------------------------------

    def _mark_down(self, exc: BaseException) -> None:
        with self._state_lock:
            if self._state == "down":
                return
            self._state = "down"
            self._outages += 1
        self._emit("store_unavailable", error=type(exc).__name__)

    def _mark_up(self) -> None:
        with self._state_lock:
            previous, self._state = self._state, "up"
        self._attempted.set()
        if previous == "down":
            self._emit("store_recovered", **self._replica.counts())

    def _emit(self, kind: str, **detail: Any) -> None:
        event = Event(
            kind=kind, issuer="*", timestamp=self._clock(), detail={"store": "redis", **detail}
        )
        try:
            self._on_event(event)
        except Exception:  # an event handler's bug must not stop the replica
            logger.exception("lifecycle event handler failed on %s", kind)


def _usage(result: Any) -> TokenUsage:
    uses, addresses, added = (int(item) for item in result)
    return TokenUsage(uses=uses, addresses=addresses, new_address=bool(added))
