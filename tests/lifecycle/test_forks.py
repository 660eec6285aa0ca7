"""Fork safety: a child of a process that started the store or fetched keys repairs itself.

Each test forks with ``os.fork`` (what gunicorn ``--preload``, uWSGI and Celery prefork do) and
runs a small check in the child, which reports one JSON line through a pipe. The real pre-fork
server is in ``tests/lifecycle/test_gunicorn.py``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from jwkguard import Issuer, Validator
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin
from jwkguard.testing import LocalIssuer, SigningKey

from ..conftest import AUDIENCE, ISSUER
from ..helpers import mint, outcome
from ..servers import RedisServer

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns that forking a process with threads may deadlock: that hazard is
    # exactly what these tests show jwkguard repairs in the child.
    pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning"),
]

CHILD_TIMEOUT = 10.0


class Child:
    """A forked child running ``body(send)``; ``send`` writes one JSON line to the parent."""

    def __init__(self, body: Callable[[Callable[[dict[str, Any]], None]], None]) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
            os.close(read)
            code = 0
            try:

                def send(message: dict[str, Any]) -> None:
                    os.write(write, (json.dumps(message) + "\n").encode())

                body(send)
            except BaseException as exc:
                os.write(write, (json.dumps({"error": repr(exc)}) + "\n").encode())
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        self.pid = pid
        self._read = read
        self._buffer = b""

    def receive(self, timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("the forked child did not answer in time")
            ready, _, _ = select.select([self._read], [], [], remaining)
            if ready:
                chunk = os.read(self._read, 65536)
                if not chunk:
                    pytest.fail("the forked child exited without answering")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        assert "error" not in message, message["error"]
        return message

    def close(self) -> None:
        os.close(self._read)
        deadline = time.monotonic() + CHILD_TIMEOUT
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return
            time.sleep(0.01)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def test_a_forked_child_restarts_the_listener_and_enforces_changes_made_after_the_fork(
    redis_server: RedisServer, rsa_key: SigningKey
) -> None:
    """The inherited replica is not reported current; the child's own listener takes over."""
    store = RedisStore(redis_server.url, prefix=f"fork-{uuid.uuid4().hex[:8]}:").start()
    assert store.available
    lifecycle = Lifecycle(store, on_unavailable="fail_closed")
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        lifecycle=lifecycle,
    )
    token = mint(rsa_key, jti="after-fork")

    def body(send: Callable[[dict[str, Any]], None]) -> None:
        inherited = {"thread": store._thread is not None, "state": store._state}
        available = store.available  # the first use in this process starts its listener
        thread = store._thread
        send(
            {
                "inherited": inherited,
                "available": available,
                "own_listener": thread is not None and thread.is_alive(),
                "before": outcome(validator, token),
            }
        )
        start = time.monotonic()
        while outcome(validator, token) != "revoked" and time.monotonic() - start < 5:
            time.sleep(0.005)
        send({"after": outcome(validator, token), "seconds": time.monotonic() - start})

    child = Child(body)
    try:
        first = child.receive()
        assert first["inherited"] == {"thread": False, "state": "starting"}
        assert first == {**first, "available": True, "own_listener": True, "before": "ok"}
        LifecycleAdmin(store).revoke_token(
            "after-fork", issuer=ISSUER, expires_at=time.time() + 600, by="test", why="fork"
        )
        second = child.receive()
        assert second["after"] == "revoked"
        assert second["seconds"] < 1.0
        assert outcome(validator, token) == "revoked"  # the parent's own listener still runs
        assert store.available
    finally:
        child.close()
        store.close()


def test_a_lazily_started_store_starts_no_thread_until_first_used(
    redis_server: RedisServer,
) -> None:
    """``start_on_first_use``: the building process (a pre-fork master) opens nothing."""
    store = RedisStore(redis_server.url, prefix=f"lazy-{uuid.uuid4().hex[:8]}:")
    store.start_on_first_use()
    try:
        assert store._thread is None
        assert store.available
        assert store._thread is not None
    finally:
        store.close()
    assert not store.available  # closed stays closed: no restart on a later read


def test_a_child_forked_mid_fetch_fetches_its_own_keys(local_issuer: LocalIssuer) -> None:
    """A fetch lock and an in-flight count held by a parent thread do not block the child."""
    validator = Validator(issuers=[local_issuer.issuer_config()], algorithms=["RS256"])
    source: Any = validator.key_source(local_issuer.url)
    source.refresh()
    endpoint = source._endpoint
    endpoint.sync._lock.acquire()  # as if the parent's refresh thread were fetching
    endpoint.cache.begin_fetch(time.time())
    try:

        def body(send: Callable[[dict[str, Any]], None]) -> None:
            start = time.monotonic()
            refreshed = source.refresh()
            send(
                {
                    "refreshed": refreshed,
                    "seconds": time.monotonic() - start,
                    "in_flight": endpoint.cache._s.in_flight,
                    "new_client": endpoint.sync._client is not None,
                }
            )

        child = Child(body)
        try:
            answer = child.receive()
        finally:
            child.close()
    finally:
        endpoint.sync._lock.release()
        validator.close()
    assert answer["refreshed"] is True
    assert answer["seconds"] < 2.0  # not the ~5.5 s a stuck single-flight lock would cost
    assert answer["in_flight"] == 0
    assert answer["new_client"] is True
