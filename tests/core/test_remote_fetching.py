"""One fetch, either driver: a bug counts as a failed fetch, an interruption abandons it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jwkguard import Issuer
from jwkguard.keys._cache import CachePolicy
from jwkguard.keys._fetch import FetchTarget
from jwkguard.keys._remote import _Endpoint

from ..conftest import AUDIENCE

ISSUER = "https://id.example.com"


def _endpoint() -> _Endpoint:
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks_uri=f"{ISSUER}/jwks")
    target = FetchTarget.for_issuer(issuer, frozenset({"RS256"}))
    return _Endpoint(target, CachePolicy.for_issuer(issuer), clock=lambda: 1_000.0)


def _raise(exc: BaseException) -> Any:
    def run(flow: Any) -> Any:
        flow.close()
        raise exc

    return run


def test_an_unexpected_error_is_a_failed_fetch(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = _endpoint()
    endpoint.sync.run = _raise(ValueError("bug"))  # type: ignore[method-assign]
    endpoint.fetch()
    status = endpoint.cache.status(1_000.0)
    assert status.last_error == "internal: ValueError: bug"
    assert status.consecutive_failures == 1
    assert "failed unexpectedly" in caplog.text


def test_an_interrupted_fetch_is_abandoned() -> None:
    endpoint = _endpoint()
    endpoint.sync.run = _raise(KeyboardInterrupt())  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        endpoint.fetch()
    status = endpoint.cache.status(1_000.0)
    assert status.last_error is None
    assert status.consecutive_failures == 0


def test_the_async_driver_settles_a_fetch_the_same_way() -> None:
    endpoint = _endpoint()

    async def failing(flow: Any) -> Any:
        flow.close()
        raise ValueError("bug")

    endpoint.aio.run = failing  # type: ignore[method-assign]
    asyncio.run(endpoint.afetch())
    assert endpoint.cache.status(1_000.0).last_error == "internal: ValueError: bug"
