"""Real servers for foreign frameworks: uvicorn and hypercorn (ASGI), waitress (WSGI)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jwkguard import Validator
from jwkguard.testing import SigningKey

from ..helpers import Mint, minter, validator_trusting
from ..servers import ASGIServer, free_port


class HypercornServer:
    """hypercorn serving an ASGI app on its own event loop in a thread."""

    def __init__(self, app: Any) -> None:
        from hypercorn.config import Config

        self.app = app
        self.port = free_port()
        self.config = Config()
        self.config.bind = [f"127.0.0.1:{self.port}"]
        self.config.accesslog = None
        self.config.errorlog = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        from hypercorn.asyncio import serve

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.app, self.config, shutdown_trigger=self._stop.wait)

        asyncio.run(main())

    def __enter__(self) -> HypercornServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("hypercorn did not start") from None
                time.sleep(0.05)

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


class WaitressServer:
    """waitress serving a WSGI app in a thread on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        from waitress.server import create_server

        self._server = create_server(app, host="127.0.0.1", port=0, threads=2)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.effective_port}"  # type: ignore[union-attr]

    def __enter__(self) -> WaitressServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        server: Any = self._server

        def close_everything() -> None:
            # Runs in the server's own loop thread (closing sockets from this thread raced
            # with the loop's select: "Bad file descriptor"). The loop ends once its map is
            # empty: the listener, the trigger and kept-alive client channels all close here.
            for channel in list(server._map.values()):
                if channel is not server and channel is not server.trigger:
                    channel.close()
            server.close()

        server.trigger.pull_trigger(close_everything)
        self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()


@pytest.fixture(scope="session")
def validator(rsa_key: SigningKey) -> Validator:
    return validator_trusting(rsa_key)


@pytest.fixture(scope="session")
def mint(rsa_key: SigningKey) -> Mint:
    return minter(rsa_key)


def serve_asgi(server: str, app: Any) -> Any:
    if server == "uvicorn":
        return ASGIServer(app, lifespan="on")
    return HypercornServer(app)


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for server in reversed(started):
        server.__exit__(None, None, None)
