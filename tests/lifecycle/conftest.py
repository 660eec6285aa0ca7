"""Fixtures for the lifecycle tests: a real redis-server, both stores, a validator using them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jwkguard import Event, Issuer, Validator
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin, LifecycleStore, MemoryStore
from jwkguard.testing import SigningKey, generate_key

from ..conftest import AUDIENCE, ISSUER, FakeClock, require_binary
from ..servers import RedisServer

OTHER_ISSUER = "https://other.example.com/"


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> float:
    """Poll ``condition`` until true; return the seconds it took, or fail after ``timeout``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


async def close_async(store: LifecycleStore) -> None:
    """The asyncio Redis client belongs to the test's event loop: close it there."""
    if isinstance(store, RedisStore):
        await store.aclose()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by key prefix."""
    with RedisServer(require_binary("redis-server"), tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test, which it may kill, pause and restart."""
    with RedisServer(require_binary("redis-server"), tmp_path) as server:
        yield server


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture(scope="session")
def second_key() -> SigningKey:
    return generate_key("ES256", kid="ec-2")


def make_redis_store(url: str, clock: FakeClock, events: list[Event], **options: Any) -> RedisStore:
    """A started RedisStore on its own key prefix, reporting into ``events``."""
    return RedisStore(
        url, prefix=f"test-{uuid.uuid4().hex[:12]}:", clock=clock, on_event=events.append, **options
    ).start()


@pytest.fixture(params=["memory", "redis"])
def store(
    request: pytest.FixtureRequest, clock: FakeClock, events: list[Event]
) -> Iterator[LifecycleStore]:
    """Each lifecycle check runs against both stores."""
    if request.param == "memory":
        yield MemoryStore(clock=clock)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_store = make_redis_store(server.url, clock, events)
    yield redis_store
    redis_store.close()


def make_validator(
    lifecycle: Lifecycle, clock: FakeClock, *keys: SigningKey, other_issuer: bool = True
) -> Validator:
    issuers = [Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [k.public_jwk for k in keys]})]
    if other_issuer:
        issuers.append(
            Issuer(OTHER_ISSUER, audiences=[AUDIENCE], jwks={"keys": [keys[0].public_jwk]})
        )
    validator = Validator(
        issuers=issuers, algorithms=["RS256", "ES256"], clock=clock, lifecycle=lifecycle
    )
    lifecycle.attach(validator)
    return validator


@pytest.fixture
def lifecycle(store: LifecycleStore, clock: FakeClock, events: list[Event]) -> Lifecycle:
    return Lifecycle(
        store,
        one_time=lambda claims: claims.get("once") is True,
        clock=clock,
        on_event=events.append,
    )


@pytest.fixture
def validator(
    lifecycle: Lifecycle, clock: FakeClock, rsa_key: SigningKey, second_key: SigningKey
) -> Validator:
    return make_validator(lifecycle, clock, rsa_key, second_key)


@pytest.fixture
def admin(store: LifecycleStore, clock: FakeClock, events: list[Event]) -> LifecycleAdmin:
    return LifecycleAdmin(store, clock=clock, on_event=events.append)


def sync_replica(store: LifecycleStore) -> None:
    """Bring the replica up to date now: prune (memory) or resync (Redis)."""
    if isinstance(store, RedisStore):
        store.resync()
    elif isinstance(store, MemoryStore):
        store.prune()
