"""Connecting to Redis: the URL's topology, the client for it, and the retry policy.

The URL picks the topology: ``redis://`` / ``rediss://`` / ``unix://`` (one server),
``redis+sentinel://host:port[,host:port...]/<service>[/db]`` (Sentinel finds the primary
and follows failovers) or ``redis+cluster://host:port[,host:port...]`` (Redis Cluster).
"""

from __future__ import annotations

from typing import Any

from .._lazy import install_hint
from ..errors import ConfigurationError

__all__ = ["RedisConnection"]

_TOPOLOGIES = ("redis+sentinel://", "redis+cluster://")


def _import_redis() -> tuple[Any, Any]:
    try:
        import redis
        import redis.asyncio
        import redis.asyncio.retry
    except ImportError:  # pragma: no cover - the extra is installed in development
        raise ConfigurationError(install_hint("RedisStore", "the redis package", "redis")) from None
    return redis, redis.asyncio


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


class RedisConnection:
    """Makes clients for one Redis URL: one server, Sentinel's primary, or a Cluster.

    Every command is bounded by ``socket_timeout`` and tried once: the store decides what
    happens after a failure, not redis-py.

    Raises:
        ConfigurationError: The redis package is missing, or the URL is malformed.
    """

    def __init__(self, url: str, *, socket_timeout: float, connect_timeout: float) -> None:
        self.redis, self.redis_asyncio = _import_redis()
        self.url = url
        self.socket_timeout = socket_timeout
        self._timeouts = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
        }
        self._topology = _topology(url)
        self.errors: tuple[type[BaseException], ...] = (
            self.redis.RedisError,
            self.redis.exceptions.RedisClusterException,
            OSError,
        )
        """What a failed command raises, whatever the topology."""

    def client(self, *, asynchronous: bool) -> Any:
        """A new client (sync or ``redis.asyncio``) for the URL's topology."""
        options = self._client_options(asynchronous=asynchronous)
        kind, where = self._topology
        if kind == "single":
            module = self.redis_asyncio if asynchronous else self.redis
            try:
                return module.Redis.from_url(self.url, **options)
            except ValueError as exc:  # an unknown scheme, a port that is not a number...
                raise ConfigurationError(f"not a Redis URL ({exc})") from None
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
        retry = (self.redis_asyncio.retry if asynchronous else self.redis.retry).Retry
        return {
            **self._timeouts,
            "decode_responses": True,
            "retry": retry(self.redis.backoff.NoBackoff(), 0),
        }
