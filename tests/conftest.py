"""Shared fixtures: session-scoped keys, a controllable clock, a real local issuer, and the
clean-up of what a test opened."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest

from jwkguard.testing import LocalIssuer, SigningKey, generate_key

ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"


def require_binary(name: str) -> str:
    """The path of ``name``; skip the test if it is missing (fail instead under CI)."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None
    )
    if path is None:
        message = f"{name} is not installed (apt-get install the Debian package; .ci/run does)"
        if os.environ.get("JWKGUARD_REQUIRE_BINARIES"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class _Closable(Protocol):
    def close(self) -> None: ...


_ClosableT = TypeVar("_ClosableT", bound=_Closable)
_OPENED: list[_Closable] = []


def closed_after_the_test(resource: _ClosableT) -> _ClosableT:
    """``resource`` (a validator, an introspector: its HTTP client), closed when the test ends."""
    _OPENED.append(resource)
    return resource


@pytest.fixture(autouse=True)
def _close_what_the_test_opened() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return generate_key("RS256", kid="rsa-1")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return generate_key("ES256", kid="ec-1")


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return generate_key("EdDSA", kid="ed-1")


@pytest.fixture
def local_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
