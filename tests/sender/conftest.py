"""Fixtures for the sender-constraint tests: a real redis-server for the shared replay ledger, a
local issuer with introspection."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from jwkguard.testing import IntrospectionEndpoint, LocalIssuer

from ..conftest import require_binary
from ..servers import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the module (skipped locally without the binary, fails in CI)."""
    with RedisServer(require_binary("redis-server"), tmp_path_factory.mktemp("redis")) as server:
        yield server


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> None:
    """Poll ``condition()`` until true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


@pytest.fixture
def endpoint(issuer: LocalIssuer) -> IntrospectionEndpoint:
    """The issuer's RFC 7662 introspection endpoint, switched on."""
    return issuer.enable_introspection()
