"""Highly available Redis: Sentinel failover and Redis Cluster, on real servers started here.

Under load (a thread validating all along), a failover or a node restart loses no revocation,
and the hot path never waits on Redis: it reads the local replica.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from jwkguard import Event, Issuer, Validator
from jwkguard.errors import StoreUnavailable
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin
from jwkguard.testing import SigningKey

from ..conftest import AUDIENCE, ISSUER, require_binary
from ..helpers import mint, outcome
from ..servers import RedisServer, free_port, stop_process
from .conftest import wait_until

pytestmark = pytest.mark.slow


def _command(client: Any, *args: Any) -> Any:
    return client.execute_command(*args)


class Load:
    """Validates ``tokens`` in a loop on a thread, recording wrong answers and the slowest call."""

    def __init__(self, validator: Validator, expected: Callable[[], dict[str, str]]) -> None:
        self.validator = validator
        self.expected = expected
        self.count = 0
        self.wrong: list[tuple[str, str]] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for token, reason in self.expected().items():
                started = time.perf_counter()
                got = outcome(self.validator, token)
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.count += 1
                if got != reason:
                    self.wrong.append((reason, got))
            time.sleep(0.002)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _admin_until_done(action: Callable[[], Any], timeout: float = 20.0) -> None:
    """An admin change, retried while the store is failing over (it raises meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _validator(rsa_key: SigningKey, store: RedisStore) -> Validator:
    return Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        lifecycle=Lifecycle(store, on_unavailable="fail_open"),
    )


def _token(rsa_key: SigningKey, jti: str) -> str:
    return mint(rsa_key, jti=jti, lifetime=600)


# -- Sentinel ---------------------------------------------------------------------------------


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, int]]:
    """A primary, a replica and one Sentinel (quorum 1) watching them as ``jwk``."""
    server = require_binary("redis-server")
    sentinel_binary = require_binary("redis-sentinel")
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    primary = RedisServer(server, tmp_path / "p")
    primary.start()
    replica = RedisServer(
        server, tmp_path / "r", args=("--replicaof", "127.0.0.1", str(primary.port))
    )
    replica.start()
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor jwk 127.0.0.1 {primary.port} 1\n"
        "sentinel down-after-milliseconds jwk 400\n"
        "sentinel failover-timeout jwk 2000\n"
    )
    sentinel = subprocess.Popen(
        [sentinel_binary, str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
        wait_until(lambda: _sentinel_sees_replica(client), timeout=15, interval=0.1)
        client.close()
        yield primary, replica, port
    finally:
        stop_process(sentinel)
        replica.stop()
        primary.stop()


def _sentinel_sees_replica(client: redis.Redis) -> bool:
    try:
        replicas = _command(client, "SENTINEL", "REPLICAS", "jwk")
    except (redis.RedisError, OSError):
        return False
    return any("s_down" not in str(entry) for entry in replicas) and bool(replicas)


def test_a_sentinel_failover_under_load_loses_no_revocation(
    sentinel_setup: tuple[RedisServer, RedisServer, int], rsa_key: SigningKey
) -> None:
    primary, replica, sentinel_port = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel_port}/jwk"
    prefix = f"ha-{uuid.uuid4().hex[:8]}:"
    events: list[Event] = []
    store = RedisStore(url, prefix=prefix, heartbeat=0.2, on_event=events.append).start()
    admin_store = RedisStore(url, prefix=prefix)
    admin = LifecycleAdmin(admin_store)
    validator = _validator(rsa_key, store)
    before, after, valid = (_token(rsa_key, jti) for jti in ("before", "after", "valid"))
    expected = {valid: "ok", before: "revoked"}
    try:
        assert store.available
        admin.revoke_token("before", issuer=ISSUER, expires_at=time.time() + 600, by="t", why="t")
        wait_until(lambda: outcome(validator, before) == "revoked", timeout=2)
        copy = redis.Redis(port=replica.port, decode_responses=True)
        wait_until(lambda: copy.zcard(store._keys["revoked"]) == 1, timeout=5)  # replicated
        copy.close()
        with Load(validator, lambda: dict(expected)) as load:
            primary.kill()  # the primary vanishes; Sentinel promotes the replica
            wait_until(lambda: not store.available, timeout=5)
            _admin_until_done(
                lambda: admin.revoke_token(
                    "after", issuer=ISSUER, expires_at=time.time() + 600, by="t", why="t"
                )
            )
            wait_until(lambda: outcome(validator, after) == "revoked", timeout=5)
            expected[after] = "revoked"  # from now on the load checks it too
            wait_until(lambda: store.available, timeout=10)
            time.sleep(0.3)
        assert load.wrong == [], "every decision is correct through the failover"
        assert load.count > 100
        assert load.slowest < 0.05, f"the hot path waited {load.slowest:.3f} s"
        promoted = redis.Redis(port=replica.port, decode_responses=True)
        assert promoted.role()[0] == "master"
        promoted.close()
        assert outcome(validator, before) == "revoked"
        kinds = [e.kind for e in events]
        assert "store_unavailable" in kinds
        assert "store_recovered" in kinds
    finally:
        store.close()
        admin_store.close()


def test_a_counter_that_went_back_is_restored_not_trusted(
    tmp_path: Path, rsa_key: SigningKey
) -> None:
    """A failover to a replica that missed the last writes: same epoch, a lower counter. The
    replica merges its entries back instead of ignoring every later change as already seen."""
    with RedisServer(require_binary("redis-server"), tmp_path) as server:
        events: list[Event] = []
        prefix = f"ha-{uuid.uuid4().hex[:8]}:"
        store = RedisStore(server.url, prefix=prefix, heartbeat=0.1, on_event=events.append)
        store.start()
        admin_store = RedisStore(server.url, prefix=prefix)
        admin = LifecycleAdmin(admin_store)
        validator = _validator(rsa_key, store)
        lost, later = _token(rsa_key, "lost"), _token(rsa_key, "later")
        raw = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            exp = time.time() + 600
            admin.revoke_token("lost", issuer=ISSUER, expires_at=exp, by="t", why="t")
            wait_until(lambda: outcome(validator, lost) == "revoked", timeout=2)
            # What the promoted replica looks like: the write never reached it.
            raw.delete(store._keys["revoked"])
            raw.hset(store._keys["meta"], "n", 0)
            wait_until(lambda: "store_restored" in [e.kind for e in events], timeout=3)
            assert raw.zcard(store._keys["revoked"]) == 1, "the lost revocation is back"
            admin.revoke_token("later", issuer=ISSUER, expires_at=exp, by="t", why="t")
            wait_until(lambda: outcome(validator, later) == "revoked", timeout=2)
            assert outcome(validator, lost) == "revoked"
        finally:
            raw.close()
            store.close()
            admin_store.close()


# -- Cluster ----------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """Three primaries on loopback ports, joined with ``redis-cli --cluster create``."""
    binary = require_binary("redis-server")
    cli = require_binary("redis-cli")
    nodes: list[RedisServer] = []
    try:
        for i in range(3):
            (tmp_path / str(i)).mkdir()
            node = RedisServer(
                binary,
                tmp_path / str(i),
                # The bus port defaults to port + 10000, past 65535 for a high free port.
                args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-port",
                    str(free_port()),
                ),
            )
            node.start()
            nodes.append(node)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        wait_until(lambda: all(_cluster_ok(n.port) for n in nodes), timeout=15, interval=0.1)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _cluster_ok(port: int) -> bool:
    try:
        client = redis.Redis(port=port, socket_timeout=0.5, decode_responses=True)
        try:
            return "cluster_state:ok" in str(_command(client, "CLUSTER", "INFO"))
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _owner(nodes: list[RedisServer], key: str) -> RedisServer:
    client = redis.Redis(port=nodes[0].port, decode_responses=True)
    try:
        slot = int(_command(client, "CLUSTER", "KEYSLOT", key))
        for start, end, primary, *_ in _command(client, "CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                port = int(primary[1])
                return next(n for n in nodes if n.port == port)
    finally:
        client.close()
    raise AssertionError(f"no node owns {key}")


def test_every_store_operation_works_on_a_cluster(
    cluster: list[RedisServer], rsa_key: SigningKey
) -> None:
    """The scripts' keys share a slot (hash tags): no CROSSSLOT error anywhere."""
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster[:2])
    prefix = f"ha-{uuid.uuid4().hex[:8]}:"
    store = RedisStore(url, prefix=prefix, heartbeat=0.2).start()
    admin_store = RedisStore(url, prefix=prefix)
    admin = LifecycleAdmin(admin_store)
    validator = _validator(rsa_key, store)
    token = _token(rsa_key, "t1")
    try:
        assert store.available
        assert outcome(validator, token) == "ok"
        admin.cut_off_subject("nobody", issuer=ISSUER, by="t", why="t")
        admin.distrust_key(issuer=ISSUER, kid="other-kid", by="t", why="t")
        admin.revoke_token("t1", issuer=ISSUER, expires_at=time.time() + 600, by="t", why="t")
        wait_until(lambda: outcome(validator, token) == "revoked", timeout=2)
        assert store.replica.counts()["subject_cutoffs"] == 1
        assert store.claim_once(ISSUER, "once-1", 60) is True
        assert store.claim_once(ISSUER, "once-1", 60) is False
        usage = store.record_use(ISSUER, "t1", "10.0.0.1", 60)
        assert usage is not None
        store.resync()
    finally:
        store.close()
        admin_store.close()


@pytest.mark.anyio
async def test_the_async_operations_work_on_a_cluster(
    cluster: list[RedisServer], rsa_key: SigningKey
) -> None:
    url = f"redis+cluster://127.0.0.1:{cluster[0].port}"
    prefix = f"ha-{uuid.uuid4().hex[:8]}:"
    store = await RedisStore(url, prefix=prefix, heartbeat=0.2).astart()
    try:
        admin = LifecycleAdmin(store)
        await admin.arevoke_token(
            "a1", issuer=ISSUER, expires_at=time.time() + 600, by="t", why="t"
        )
        assert store.replica.counts()["revoked"] == 1
        assert await store.aclaim_once(ISSUER, "once-a", 60) is True
        assert await store.arecord_use(ISSUER, "a1", "10.0.0.2", 60) is not None
    finally:
        await store.aclose()


def test_a_cluster_node_restart_under_load_loses_no_revocation(
    cluster: list[RedisServer], rsa_key: SigningKey
) -> None:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster)
    prefix = f"ha-{uuid.uuid4().hex[:8]}:"
    events: list[Event] = []
    store = RedisStore(url, prefix=prefix, heartbeat=0.2, on_event=events.append).start()
    admin_store = RedisStore(url, prefix=prefix)
    admin = LifecycleAdmin(admin_store)
    validator = _validator(rsa_key, store)
    before, after, valid = (_token(rsa_key, jti) for jti in ("before", "after", "valid"))
    expected = {valid: "ok", before: "revoked"}
    owner = _owner(cluster, "{lifecycle}")
    try:
        admin.revoke_token("before", issuer=ISSUER, expires_at=time.time() + 600, by="t", why="t")
        wait_until(lambda: outcome(validator, before) == "revoked", timeout=2)
        with Load(validator, lambda: dict(expected)) as load:
            owner.kill()  # the node holding the state loses everything (no persistence)
            wait_until(lambda: not store.available, timeout=5)
            owner.start()  # same port, same nodes.conf: it rejoins owning the slot, empty
            wait_until(lambda: all(_cluster_ok(n.port) for n in cluster), timeout=15)
            wait_until(lambda: store.available, timeout=15)
            _admin_until_done(
                lambda: admin.revoke_token(
                    "after", issuer=ISSUER, expires_at=time.time() + 600, by="t", why="t"
                )
            )
            wait_until(lambda: outcome(validator, after) == "revoked", timeout=5)
            expected[after] = "revoked"  # from now on the load checks it too
        assert load.wrong == [], "every decision is correct through the restart"
        assert load.count > 100
        assert load.slowest < 0.05, f"the hot path waited {load.slowest:.3f} s"
        assert "store_restored" in [e.kind for e in events]
        # The restored entry is in Redis again: a newcomer sees it.
        newcomer = RedisStore(url, prefix=prefix).start()
        try:
            assert newcomer.replica.counts()["revoked"] == 2
        finally:
            newcomer.close()
    finally:
        store.close()
        admin_store.close()
