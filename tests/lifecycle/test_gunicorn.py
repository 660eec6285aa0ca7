"""A fleet configured through settings, under real gunicorn ``--preload`` with two workers.

The Flask and Django apps of ``_gunicorn_apps.py`` get only settings (``JWKGUARD_FLEET`` /
``JWKGUARD["FLEET"]``); gunicorn imports them in the master, which fetches the keys (WARM_UP)
and, in the ``eager`` runs, starts the Redis store, then forks. A revocation and a key distrust
made after the fork must be enforced by every worker within a second, and ``/metrics`` counts
the refusals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import LifecycleAdmin
from jwkguard.testing import LocalIssuer

from ..conftest import require_binary
from ..servers import RedisServer, free_port, stop_process, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
AUDIENCE = "https://api.example.com"
WORKERS = 2
BOUND = 1.0  # the promise: enforced by every worker within one second


class Gunicorn:
    """gunicorn --preload with WORKERS sync workers on a loopback port."""

    def __init__(self, app: str, config: dict[str, Any], log: Path) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        if not gunicorn.exists():
            pytest.skip("gunicorn is not installed")
        self.port = free_port()
        self._log = log.open("w")
        env = {**os.environ, "JWKGUARD_TEST_CONFIG": json.dumps(config)}
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                "--preload",
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--graceful-timeout",
                "2",
                f"tests.lifecycle._gunicorn_apps:{app}",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log = log
        wait_until_listening(self.port, self.process, timeout=20)

    def close(self) -> None:
        stop_process(self.process)
        self._log.close()


def ask(client: httpx.Client, url: str, token: str) -> tuple[int, int | None]:
    """(status, worker pid); a fresh connection each time, so the kernel picks the worker."""
    response = client.get(url, headers={"Authorization": f"Bearer {token}", "Connection": "close"})
    if response.status_code == 200:
        return 200, int(response.json()["pid"])
    return response.status_code, None


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as local:
        yield local


@pytest.fixture(params=["flask", "django"])
def framework(request: pytest.FixtureRequest) -> str:
    if request.param == "django":
        pytest.importorskip("django")
    else:
        pytest.importorskip("flask")
    return str(request.param)


def serve(
    framework: str, eager: bool, redis_server: RedisServer, issuer: LocalIssuer, tmp_path: Path
) -> tuple[Gunicorn, str]:
    prefix = f"gunicorn-{uuid.uuid4().hex[:8]}:"
    config = {
        "framework": framework,
        "eager": eager,
        "issuer": issuer.url,
        "audience": AUDIENCE,
        "jwks_uri": issuer.jwks_uri,
        "redis_url": redis_server.url,
        "prefix": prefix,
    }
    return Gunicorn(f"{framework}_app()", config, tmp_path / "gunicorn.log"), prefix


def both_workers_answer(
    client: httpx.Client, url: str, token: str, timeout: float = 15
) -> set[int]:
    """Ask until WORKERS distinct workers answered 200 (bounded)."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < WORKERS:
        assert time.monotonic() < deadline, f"only workers {pids} answered 200"
        status, pid = ask(client, url, token)
        assert status == 200, status
        assert pid is not None
        pids.add(pid)
    return pids


def enforcement(client: httpx.Client, url: str, token: str, pids: set[int]) -> float:
    """Seconds until no worker accepts ``token``: every 200 must come from a worker not yet
    seen refusing, and each worker must be seen accepting nothing after BOUND."""
    start = time.monotonic()
    last_accept: dict[int, float] = {}
    refusals = 0
    # Enough refusals in a row that every worker has most likely answered, bounded in time.
    while refusals < 40 and time.monotonic() - start < 5:
        status, pid = ask(client, url, token)
        elapsed = time.monotonic() - start
        if status == 200:
            assert pid in pids
            last_accept[pid] = elapsed
            refusals = 0
        else:
            assert status == 401, status
            refusals += 1
    assert refusals >= 40, f"still accepted after 5 s by {last_accept}"
    slowest = max(last_accept.values(), default=0.0)
    assert slowest < BOUND, f"accepted {slowest:.3f} s after the change by {last_accept}"
    return slowest


@pytest.mark.parametrize("eager", [False, True], ids=["lazy", "started-in-master"])
def test_changes_after_the_fork_are_enforced_by_every_worker_within_a_second(
    framework: str,
    eager: bool,
    redis_server: RedisServer,
    issuer: LocalIssuer,
    tmp_path: Path,
    record_property: Any,
) -> None:
    require_binary("redis-server")
    server, prefix = serve(framework, eager, redis_server, issuer, tmp_path)
    store = RedisStore(redis_server.url, prefix=prefix)
    admin = LifecycleAdmin(store)
    url = f"http://127.0.0.1:{server.port}/pid"
    try:
        with httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            jti = f"j-{uuid.uuid4().hex}"
            revoked = issuer.mint(audience=AUDIENCE, jti=jti)
            pids = both_workers_answer(client, url, revoked)
            admin.revoke_token(
                jti, issuer=issuer.url, expires_at=time.time() + 600, by="test", why="fork"
            )
            revocation = enforcement(client, url, revoked, pids)

            signed = issuer.mint(audience=AUDIENCE)
            assert both_workers_answer(client, url, signed) == pids
            kid = issuer.active_key.kid
            admin.distrust_key(issuer=issuer.url, kid=kid, by="test", why="fork")
            distrust = enforcement(client, url, signed, pids)
            record_property("revocation_s", revocation)
            record_property("distrust_s", distrust)
            print(f"{framework} eager={eager}: revoke {revocation:.3f}s distrust {distrust:.3f}s")

            metrics = client.get(f"http://127.0.0.1:{server.port}/metrics").text
            assert 'jwkguard_lifecycle_rejections_total{issuer="' in metrics
    finally:
        store.close()
        server.close()
    log = server.log.read_text()
    assert "Traceback" not in log, log
