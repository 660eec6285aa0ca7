"""The example app under waitress on 127.0.0.1, hammered by concurrent clients over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from jwkguard.testing import LocalIssuer, generate_key

from ..servers import stop_process

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 8
REQUESTS_PER_CLIENT = 50
_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Server:
    host: str
    port: int


def _wait_for_address(log: Path, process: subprocess.Popen[bytes]) -> tuple[str, int]:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"Serving on http://([\d.]+):(\d+)", log.read_text(errors="replace"))
        if found:
            return found.group(1), int(found.group(2))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"waitress did not start:\n{log.read_text(errors='replace')}")


def _server_environment(issuer: LocalIssuer) -> dict[str, str]:
    """The example's environment variables for a real issuer, here the local one."""
    return {
        "JWKGUARD_ISSUER": issuer.url,
        "JWKGUARD_AUDIENCES": issuer.audience,
        "JWKGUARD_JWKS_URI": issuer.jwks_uri,
        "JWKGUARD_ALGORITHMS": issuer.alg,
    }


@pytest.fixture(scope="module")
def server(issuer: LocalIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``waitress-serve --call examples.flask_app:create_app`` with 4 threads."""
    log = tmp_path_factory.mktemp("waitress") / "stderr.log"
    env = {**os.environ, **_server_environment(issuer)}
    command = [
        sys.executable,
        "-m",
        "waitress",
        "--listen=127.0.0.1:0",
        "--threads=4",
        "--call",
        "examples.flask_app:create_app",
    ]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stderr, stderr=stderr)
    try:
        host, port = _wait_for_address(log, process)
        yield Server(host, port)
    finally:
        stop_process(process)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    body: dict[str, object] | None = None
    reason: str | None = None


def _cases(issuer: LocalIssuer, client: int) -> list[Case]:
    """Valid and invalid requests; each valid one names its own subject."""
    cases: list[Case] = []
    for n in range(5):
        subject = f"user-{client}-{n}"
        token = issuer.mint(subject=subject, scopes=["orders:read", "admin"])
        auth = {"Authorization": f"Bearer {token}"}
        cases += [
            Case("GET", "/me", auth, 200, {"sub": subject, "scopes": ["admin", "orders:read"]}),
            Case("GET", "/async/me", auth, 200, {"sub": subject, "async": True}),
            Case("GET", "/greeting", auth, 200, {"greeting": f"hello, {subject}"}),
            Case("GET", "/admin/stats", auth, 200, {"orders": 2, "by": subject}),
            Case("POST", "/orders", auth, 403, reason="insufficient_scope"),
        ]
    expired = issuer.mint(lifetime=-60)
    stranger = issuer.mint(key=generate_key(issuer.alg))
    cases += [
        Case("GET", "/orders", {}, 401, reason="missing_token"),
        Case("GET", "/orders", {"Authorization": f"Bearer {expired}"}, 401, reason="expired"),
        Case("GET", "/orders", {"Authorization": f"Bearer {stranger}"}, 401, reason="unknown_key"),
        Case("GET", "/me", {"Authorization": "Bearer abc.def.ghi"}, 401, reason="malformed"),
        Case(
            "GET",
            "/me",
            {"Authorization": "Bearer not a token"},
            400,
            reason="malformed_authorization_header",
        ),
        Case("GET", "/greeting", {}, 200, {"greeting": "hello, stranger"}),
        Case("GET", "/health", {}, 200, {"status": "ok"}),
        Case("OPTIONS", "/admin/stats", {"Origin": "https://app.example.com"}, 200),
    ]
    return cases


def _hammer(server: Server, cases: list[Case]) -> list[str]:
    """Send REQUESTS_PER_CLIENT requests over one keep-alive connection; return mismatches."""
    problems: list[str] = []
    connection = http.client.HTTPConnection(server.host, server.port, timeout=15)
    try:
        for i in range(REQUESTS_PER_CLIENT):
            case = cases[i % len(cases)]
            connection.request(case.method, case.path, headers=case.headers)
            response = connection.getresponse()
            raw = response.read()
            if response.status != case.status:
                problems.append(f"{case.method} {case.path}: {response.status} != {case.status}")
                continue
            if case.body is not None and json.loads(raw) != case.body:
                problems.append(f"{case.method} {case.path}: {raw!r} != {case.body}")
            if case.reason is not None:
                body = json.loads(raw)
                challenge = response.getheader("WWW-Authenticate") or ""
                if body.get("reason") != case.reason or not challenge.startswith("Bearer "):
                    problems.append(f"{case.path}: {raw!r}, {challenge!r} (want {case.reason})")
    finally:
        connection.close()
    return problems


def test_every_concurrent_answer_is_correct(server: Server, issuer: LocalIssuer) -> None:
    plans = [_cases(issuer, client) for client in range(CLIENTS)]
    fetches_before = issuer.requests["/jwks.json"]
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda cases: _hammer(server, cases), plans, timeout=90))
    problems = [problem for result in results for problem in result]
    assert problems == []
    # The server fetched the key set over HTTP for the first requests, once for all threads
    # (the unknown-kid cases may add one refetch, which the cooldown then holds back).
    assert 1 <= issuer.requests["/jwks.json"] - fetches_before <= 2
