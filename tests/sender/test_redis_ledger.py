"""The DPoP replay ledger in Redis: one atomic SET NX PX per proof, shared by a fleet, with a
fail-open or fail-closed policy while Redis is unreachable. A real redis-server throughout."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from jwkguard import Claims, ConfigurationError, Event, TokenError
from jwkguard.errors import StoreUnavailable
from jwkguard.fleet import RedisReplayLedger, RedisStore
from jwkguard.lifecycle import MemoryStore
from jwkguard.sender import DPoPVerifier
from jwkguard.testing import SigningKey, generate_key, make_dpop_proof

from ..helpers import mint, validator_trusting
from ..servers import RedisServer
from .conftest import wait_until

URL = "https://api.example.com/orders"


def _store(server: RedisServer, prefix: str, **options: object) -> RedisStore:
    return RedisStore(server.url, prefix=prefix, heartbeat=0.1, **options).start()  # type: ignore[arg-type]


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def fleet(redis_server: RedisServer, prefix: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two instances' stores on the same Redis."""
    first, second = _store(redis_server, prefix), _store(redis_server, prefix)
    yield first, second
    first.close()
    second.close()


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def _bound(rsa_key: SigningKey, proof_key: SigningKey) -> tuple[str, Claims]:
    validator = validator_trusting(rsa_key)
    token = mint(rsa_key, cnf={"jkt": proof_key.thumbprint})
    return token, validator.validate(token)


def test_a_key_is_a_first_use_once_across_the_fleet(
    fleet: tuple[RedisStore, RedisStore],
) -> None:
    one, two = (RedisReplayLedger(store) for store in fleet)
    assert one.first_use("dpop:k:1", 60, time.time()) is True
    assert two.first_use("dpop:k:1", 60, time.time()) is False
    assert one.first_use("dpop:k:1", 60, time.time()) is False
    assert two.first_use("dpop:k:2", 60, time.time()) is True


@pytest.mark.anyio
async def test_the_async_path_shares_the_same_entries(
    fleet: tuple[RedisStore, RedisStore],
) -> None:
    one, two = (RedisReplayLedger(store) for store in fleet)
    assert await one.afirst_use("dpop:k:a", 60, time.time()) is True
    assert two.first_use("dpop:k:a", 60, time.time()) is False
    assert await two.afirst_use("dpop:k:a", 60, time.time()) is False
    for store in fleet:
        await store.aclose()


def test_concurrent_instances_let_exactly_one_use_through(
    redis_server: RedisServer, prefix: str
) -> None:
    stores = [_store(redis_server, prefix) for _ in range(4)]
    ledgers = [RedisReplayLedger(store) for store in stores]
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(len(ledgers) * 4)

    def race(ledger: RedisReplayLedger) -> None:
        start.wait(timeout=10)
        outcome = ledger.first_use("dpop:k:race", 60, time.time())
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=race, args=(ledger,)) for ledger in ledgers for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    for store in stores:
        store.close()
    assert sorted(results) == [False] * 15 + [True]


def test_entries_expire_with_their_ttl(fleet: tuple[RedisStore, RedisStore]) -> None:
    ledger = RedisReplayLedger(fleet[0])
    assert ledger.first_use("dpop:k:ttl", 0.2, time.time())
    assert not ledger.first_use("dpop:k:ttl", 0.2, time.time())
    time.sleep(0.35)
    assert ledger.first_use("dpop:k:ttl", 0.2, time.time())


def test_a_proof_spent_on_one_instance_is_refused_on_another(
    fleet: tuple[RedisStore, RedisStore], rsa_key: SigningKey, proof_key: SigningKey
) -> None:
    token, claims = _bound(rsa_key, proof_key)
    first, second = (DPoPVerifier(replay=RedisReplayLedger(store)) for store in fleet)
    proof = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token)
    assert first.verify(proof, method="GET", url=URL, access_token=token, claims=claims)
    with pytest.raises(TokenError) as caught:
        second.verify(proof, method="GET", url=URL, access_token=token, claims=claims)
    assert caught.value.reason == "dpop_replayed"


@pytest.mark.anyio
async def test_averify_asks_redis_without_blocking_and_refuses_replays(
    fleet: tuple[RedisStore, RedisStore], rsa_key: SigningKey, proof_key: SigningKey
) -> None:
    token, claims = _bound(rsa_key, proof_key)
    first, second = (DPoPVerifier(replay=RedisReplayLedger(store)) for store in fleet)
    proof = make_dpop_proof(proof_key, method="POST", url=URL, access_token=token)
    verified = await first.averify(proof, method="POST", url=URL, access_token=token, claims=claims)
    assert verified.thumbprint == proof_key.thumbprint
    with pytest.raises(TokenError) as caught:
        await second.averify(proof, method="POST", url=URL, access_token=token, claims=claims)
    assert caught.value.reason == "dpop_replayed"
    for store in fleet:
        await store.aclose()


def test_an_unreachable_redis_fails_closed_by_default_with_one_event(
    tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> None:
    from ..conftest import require_binary

    server = RedisServer(require_binary("redis-server"), tmp_path_factory.mktemp("outage"))
    server.start()
    events: list[Event] = []
    store = _store(server, prefix, socket_timeout=0.3, connect_timeout=0.3)
    closed = RedisReplayLedger(store, on_event=events.append)
    opened = RedisReplayLedger(store, on_unavailable="fail_open", on_event=events.append)
    try:
        assert closed.first_use("dpop:k:before", 60, time.time())
        server.stop()
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(StoreUnavailable) as caught:
                closed.first_use(f"dpop:k:{uuid.uuid4().hex}", 60, time.time())
            assert caught.value.status_code == 503
        assert time.monotonic() - started < 3, "an outage must not stall requests"
        assert opened.first_use("dpop:k:during", 60, time.time()) is True
        assert [event.kind for event in events] == [
            "dpop_replay_fail_closed",
            "dpop_replay_fail_open",
        ]
        server.start()
        wait_until(lambda: store.available, timeout=10)
        assert closed.first_use("dpop:k:after", 60, time.time()) is True
        assert closed.first_use("dpop:k:after", 60, time.time()) is False
    finally:
        store.close()
        server.stop()


def test_the_ledger_works_over_any_lifecycle_store_and_checks_its_policy() -> None:
    ledger = RedisReplayLedger(MemoryStore())
    assert ledger.first_use("dpop:k:m", 60, time.time())
    assert not ledger.first_use("dpop:k:m", 60, time.time())
    with pytest.raises(ConfigurationError):
        RedisReplayLedger(MemoryStore(), on_unavailable="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RedisReplayLedger(object())  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_hung_redis_is_bounded_by_the_socket_timeout_and_fails_closed(
    tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> None:
    """SIGSTOP: Redis accepts connections and never answers. Each proof waits at most about
    ``socket_timeout`` (sync and async), is refused with 503, and a proof that the stalled
    Redis may or may not have recorded is never let through."""
    from ..conftest import require_binary

    server = RedisServer(require_binary("redis-server"), tmp_path_factory.mktemp("hung"))
    server.start()
    store = _store(server, prefix, socket_timeout=0.3, connect_timeout=0.3)
    ledger = RedisReplayLedger(store, on_event=lambda event: None)
    try:
        assert ledger.first_use("dpop:k:before", 60, time.time())
        server.pause()
        for attempt in range(3):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                ledger.first_use(f"dpop:k:sync-{attempt}", 60, time.time())
            with pytest.raises(StoreUnavailable):
                await ledger.afirst_use(f"dpop:k:async-{attempt}", 60, time.time())
            assert time.monotonic() - started < 2.5, "a hung Redis must not stall requests"
        server.resume()
        wait_until(lambda: store.available, timeout=10)
        assert ledger.first_use("dpop:k:before", 60, time.time()) is False
    finally:
        server.resume()
        store.close()
        server.stop()
