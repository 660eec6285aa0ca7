"""A fleet: separate validator processes sharing one real Redis."""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from jwkguard.testing import SigningKey

from ..conftest import AUDIENCE, ISSUER
from ..helpers import mint
from ..servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
# Generous for a loaded 2-core machine; a healthy command answers in milliseconds.
ANSWER_TIMEOUT = 20.0


class Worker:
    """One validator process; commands go in as JSON lines, answers come back the same way."""

    def __init__(self, config: dict[str, Any], log: Path) -> None:
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.lifecycle._worker", json.dumps(config)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        if self.process.stdout is None or self.process.stdin is None:
            raise RuntimeError("worker pipes are missing")
        self._stdin = self.process.stdin
        self._stdout = self.process.stdout
        self._reader = threading.Thread(target=self._read, args=(self._stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)

    def send(self, **command: Any) -> None:
        self._stdin.write(json.dumps(command) + "\n")
        self._stdin.flush()

    def receive(self, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"worker gave no answer in {timeout} s; its log: {self.log.read_text()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.receive()

    def outcome(self, token: str) -> str:
        return str(self.ask(op="validate", token=token)["outcome"])

    def admin(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.ask(
            op="admin", method=method, args=args, kwargs={"by": "ops", "why": "fleet", **kwargs}
        )

    def status(self) -> dict[str, Any]:
        return self.ask(op="status")

    def quit(self) -> None:
        if not self._stdin.closed:
            with contextlib.suppress(OSError):  # already gone
                self.send(op="quit")
                self._stdin.close()

    def close(self) -> None:
        self.quit()
        try:
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        with contextlib.suppress(OSError):
            self._stdin.close()
        self._stdout.close()
        self._stderr.close()


Fleet = Callable[..., list[Worker]]


@pytest.fixture
def fleet(tmp_path: Path, rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[Fleet]:
    """Start validator processes on demand (in parallel); all are stopped after the test."""
    workers: list[Worker] = []
    prefix = f"fleet-{uuid.uuid4().hex[:8]}:"

    def start(url: str, *policies: str) -> list[Worker]:
        started = []
        for policy in policies:
            config = {
                "url": url,
                "prefix": prefix,
                "policy": policy,
                "heartbeat": 0.2,
                "issuer": ISSUER,
                "audience": AUDIENCE,
                "jwks": {"keys": [rsa_key.public_jwk, ec_key.public_jwk]},
            }
            started.append(Worker(config, tmp_path / f"worker-{len(workers)}.log"))
            workers.append(started[-1])
        for worker in started:
            assert worker.receive()["ready"] is True
        return started

    yield start
    for worker in workers:
        worker.quit()  # all at once: they shut down in parallel
    for worker in workers:
        worker.close()


def payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def propagation(
    source: Worker, target: Worker, token: str, method: str, *args: Any, **kwargs: Any
) -> tuple[float, str]:
    """Seconds from an admin call in one process to the first refusal seen in the other."""
    assert target.outcome(token) == "ok"
    target.send(op="until_refused", token=token, timeout=3.0)
    time.sleep(0.05)  # the target is polling the token now, still accepting it
    issued = source.admin(method, *args, **kwargs)
    assert issued.get("ok") is True
    seen = target.receive()
    return float(seen["seen_at"]) - float(issued["issued_at"]), str(seen["outcome"])


def test_changes_through_one_process_are_enforced_by_another_within_a_second(
    redis_server: RedisServer, fleet: Fleet, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    first, second = fleet(redis_server.url, "fail_open", "fail_open")
    revoked = mint(rsa_key, subject="u1")
    by_subject = mint(rsa_key, subject="u2")
    by_client = mint(rsa_key, subject="u3", client_id="svc")
    by_key = mint(ec_key, subject="u4")
    time.sleep(1.0)  # a cut-off refuses iat < T: let the tokens' whole second pass first
    cases = [
        (
            revoked,
            ("revoke_token", payload(revoked)["jti"]),
            {"expires_at": payload(revoked)["exp"]},
        ),
        (by_subject, ("cut_off_subject", "u2"), {}),
        (by_client, ("cut_off_client", "svc"), {}),
        (by_key, ("distrust_key",), {"kid": ec_key.kid}),
    ]
    expected = ["revoked", "subject_cut_off", "client_cut_off", "key_distrusted"]
    results: list[tuple[str, str, float]] = []
    for (token, (method, *args), options), reason in zip(cases, expected, strict=True):
        # Alternate which process issues the change.
        source, target = (first, second) if len(results) % 2 == 0 else (second, first)
        took, outcome = propagation(source, target, token, method, *args, issuer=ISSUER, **options)
        results.append((method, outcome, took))
        assert outcome == reason
        assert took < 1.0, f"{method} took {took:.3f} s to reach the other process"
    # Lifting a distrust propagates too.
    assert first.admin("trust_key", issuer=ISSUER, kid=ec_key.kid)["ok"] is True
    deadline = time.monotonic() + 1.0
    while second.outcome(by_key) != "ok":
        assert time.monotonic() < deadline, "trust_key did not reach the other process"
        time.sleep(0.01)


def test_replay_across_processes_has_exactly_one_winner(
    redis_server: RedisServer, fleet: Fleet, rsa_key: SigningKey
) -> None:
    first, second = fleet(redis_server.url, "fail_open", "fail_open")
    # One-time tokens (flagged in the token) and a one-time route (consume after validate).
    for consume, tokens in (
        (False, [mint(rsa_key, once=True) for _ in range(12)]),
        (True, [mint(rsa_key) for _ in range(12)]),
    ):
        at = time.time() + 0.3
        for worker in (first, second):
            worker.send(op="race", tokens=tokens, at=at, consume=consume)
        pairs = list(zip(first.receive()["outcomes"], second.receive()["outcomes"], strict=True))
        assert all(sorted(pair) == ["ok", "replayed"] for pair in pairs), pairs


def wait_for(worker: Worker, *, available: bool, timeout: float) -> None:
    answer = worker.ask(op="wait_available", want=available, timeout=timeout)
    assert answer["available"] is available, worker.status()


def test_redis_killed_and_restarted_under_a_fleet(
    own_redis: RedisServer, fleet: Fleet, rsa_key: SigningKey
) -> None:
    opened, closed = fleet(own_redis.url, "fail_open", "fail_closed")
    revoked, good = mint(rsa_key), mint(rsa_key)
    assert opened.admin(
        "revoke_token", payload(revoked)["jti"], issuer=ISSUER, expires_at=payload(revoked)["exp"]
    )["ok"]
    deadline = time.monotonic() + 1.0
    while closed.outcome(revoked) != "revoked":
        assert time.monotonic() < deadline
        time.sleep(0.01)

    own_redis.kill()
    wait_for(opened, available=False, timeout=3.0)
    wait_for(closed, available=False, timeout=3.0)
    once = mint(rsa_key, once=True)
    checks = [
        (opened, good, "ok"),
        (opened, revoked, "revoked"),  # the last replica still applies
        (opened, once, "ok"),
        (opened, once, "ok"),  # replay checks are skipped while Redis is down
        (closed, good, "store_unavailable"),
        (closed, revoked, "store_unavailable"),
    ]
    for worker, token, expected in checks:
        answer = worker.ask(op="validate", token=token)
        assert (answer["outcome"], answer["took"] < 0.5) == (expected, True)
    assert opened.admin("cut_off_subject", "x", issuer=ISSUER)["error"] == "store_unavailable"

    own_redis.start()  # same port, empty: no persistence
    wait_for(opened, available=True, timeout=5.0)
    wait_for(closed, available=True, timeout=5.0)
    assert closed.outcome(good) == "ok"
    assert closed.outcome(revoked) == "revoked"
    for worker, policy_event in (
        (opened, "lifecycle_fail_open"),
        (closed, "lifecycle_fail_closed"),
    ):
        kinds = worker.status()["events"]
        assert {"store_unavailable", policy_event, "store_recovered"} <= set(kinds), kinds

    # The replicas put the revocation back into the empty Redis: a new process learns it.
    (newcomer,) = fleet(own_redis.url, "fail_closed")
    assert newcomer.outcome(revoked) == "revoked"
    # And the resynced replicas take new changes again, within a second.
    fresh = mint(rsa_key, subject="late")
    time.sleep(1.0)
    took, outcome = propagation(closed, opened, fresh, "cut_off_subject", "late", issuer=ISSUER)
    assert (outcome, took < 1.0) == ("subject_cut_off", True)
