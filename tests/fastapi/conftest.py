"""Fixtures for the FastAPI and Starlette adapter: a real local issuer and its validators."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from jwkguard import Issuer, Validator
from jwkguard.testing import LocalIssuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """A real issuer on 127.0.0.1 (discovery and JWKS over HTTP), shared by a module."""
    with LocalIssuer() as local:
        yield local


@pytest.fixture
def static_validator(issuer: LocalIssuer) -> Validator:
    """A validator holding the issuer's current JWK Set (no network)."""
    return Validator(
        issuers=[Issuer(issuer.url, audiences=[issuer.audience], jwks=issuer.jwks())],
        algorithms=["RS256"],
    )


@pytest.fixture
def validator(issuer: LocalIssuer) -> Iterator[Validator]:
    """The validator most tests use: keys found by discovery and fetched over HTTP."""
    remote = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    yield remote
    remote.close()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


class ServedApp:
    """An ASGI app served by uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app, log_level="warning", ws="websockets-sansio", lifespan="on", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
