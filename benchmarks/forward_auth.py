"""Load on ``jwkguard serve``: decisions per second and latency of the forward-auth endpoint.

``jwkguard serve`` runs as a child process (uvicorn, one worker) on 127.0.0.1 with keys found
by discovery from a local issuer; this process is the load client: keep-alive connections from
an asyncio client, each sending nginx-style ``auth_request`` subrequests (``GET /auth`` with
``X-Original-URI``, ``X-Original-Method`` and the client's ``Authorization``) for a fixed time.

Three scenarios:

- ``valid``: every request carries a valid token with the route's scope (200);
- ``mixed``: valid (200), expired (401), alg none (401), missing scope (403) and no token
  (401) in turn; each answer is checked against its expected status;
- ``cached``: ``valid`` against a second server whose ``[validator]`` sets
  ``token_cache = true`` (the verified-token cache).

Any other status or a broken connection is an error; the run must have none. Figures: requests
per second (wall clock), requests per second of server CPU, and p50/p99/p99.9 latency seen by the
client. ``JWKGUARD_BENCH_SECONDS`` changes the duration of the ``valid`` run (default 10 s).
Run with ``python -m benchmarks forward_auth``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SECONDS = float(os.environ.get("JWKGUARD_BENCH_SECONDS", "10"))
MIXED_SECONDS = SECONDS / 2
WARM_UP_SECONDS = 1.0
CONNECTIONS = 8
SCOPE = "orders:read"


@dataclass
class Tally:
    """What the client saw."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


def _request(token: str | None, method: str = "GET", uri: str = "/orders") -> bytes:
    lines = [
        "GET /auth HTTP/1.1",
        "Host: 127.0.0.1",
        f"X-Original-URI: {uri}",
        f"X-Original-Method: {method}",
        "X-Forwarded-Host: api.example.com",
        *([] if token is None else [f"Authorization: Bearer {token}"]),
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


async def _connection(
    port: int, mix: list[tuple[bytes, int]], offset: int, until: float, tally: Tally
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        tally.errors.append(f"connect: {exc}")
        return
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    index = offset
    try:
        while time.perf_counter() < until:
            request, expected = mix[index % len(mix)]
            index += 1
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in lines
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if length:
                await reader.readexactly(length)
            tally.latencies.append(time.perf_counter() - began)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status != expected:
                tally.errors.append(f"expected {expected}, got {status}")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        tally.errors.append(f"connection: {type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def _load(port: int, mix: list[tuple[bytes, int]], seconds: float) -> tuple[float, Tally]:
    tally = Tally()
    began = time.perf_counter()
    until = began + seconds
    jobs = [_connection(port, mix, n, until, tally) for n in range(CONNECTIONS)]
    await asyncio.wait_for(asyncio.gather(*jobs), seconds + 30)
    return time.perf_counter() - began, tally


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(issuer_url: str, audience: str, port: int, *, cached: bool = False) -> str:
    return f"""
[server]
port = {port}
log_level = "warning"
audit = false

[validator]
algorithms = ["RS256"]
token_cache = {"true" if cached else "false"}

[[validator.issuers]]
issuer = "{issuer_url}"
audiences = ["{audience}"]

[[routes]]
path = "/orders"
methods = ["GET"]
scopes = ["{SCOPE}"]

[[routes]]
path = "/orders"
methods = ["POST"]
scopes = ["orders:write"]
"""


def _start(config: Path, port: int) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("jwkguard")), "serve", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("jwkguard serve exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("jwkguard serve did not become ready")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    """Run both scenarios against a fresh server and print one line each."""
    from jwkguard.testing import LocalIssuer, sign_compact

    with LocalIssuer() as issuer, tempfile.TemporaryDirectory() as workdir:
        port, cached_port = _free_port(), _free_port()
        config = Path(workdir) / "jwkguard.toml"
        config.write_text(_config(issuer.url, issuer.audience, port), encoding="utf-8")
        cached_config = Path(workdir) / "jwkguard-cached.toml"
        cached_config.write_text(
            _config(issuer.url, issuer.audience, cached_port, cached=True), encoding="utf-8"
        )
        valid = issuer.mint(scopes=[SCOPE], lifetime=3600)
        expired = issuer.mint(scopes=[SCOPE], now=time.time() - 7200, lifetime=60)
        now = int(time.time())
        unsigned = sign_compact(
            {"alg": "none", "kid": issuer.active_key.kid},
            {"iss": issuer.url, "aud": issuer.audience, "sub": "x", "exp": now + 600},
        )
        scenarios = {
            "valid": [(_request(valid), 200)],
            "cached": [(_request(valid), 200)],
            "mixed": [
                (_request(valid), 200),
                (_request(expired), 401),
                (_request(unsigned), 401),
                (_request(valid, method="POST"), 403),
                (_request(None), 401),
            ],
        }
        process = _start(config, port)
        cached_process = _start(cached_config, cached_port)
        results: dict[str, tuple[float, Tally, float]] = {}
        try:

            async def run() -> None:
                await _load(port, scenarios["mixed"], WARM_UP_SECONDS)
                await _load(cached_port, scenarios["cached"], WARM_UP_SECONDS)
                for name, seconds, server, target in (
                    ("valid", SECONDS, process, port),
                    ("mixed", MIXED_SECONDS, process, port),
                    ("cached", SECONDS, cached_process, cached_port),
                ):
                    before = _cpu_seconds(server.pid)
                    elapsed, tally = await _load(target, scenarios[name], seconds)
                    results[name] = (elapsed, tally, _cpu_seconds(server.pid) - before)

            asyncio.run(run())
        finally:
            for child in (process, cached_process):
                child.terminate()
                child.wait(timeout=10)
    _report(results)


def _report(results: dict[str, tuple[float, Tally, float]]) -> None:
    print(
        f"jwkguard serve (uvicorn, 1 worker) <- {CONNECTIONS} keep-alive connections "
        f"from a second process, {SECONDS:g} s (valid, cached) and {MIXED_SECONDS:g} s (mixed)"
    )
    print(
        f"{'scenario':<9} {'requests':>8} {'errors':>6} {'req/s':>7} {'req/cpu-s':>9}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}  statuses"
    )
    failed = False
    for name, (elapsed, tally, cpu) in results.items():
        count = len(tally.latencies)
        statuses = " ".join(f"{code}:{n}" for code, n in sorted(tally.statuses.items()))
        print(
            f"{name:<9} {count:>8} {len(tally.errors):>6} {count / elapsed:>7.0f}"
            f" {count / max(cpu, 1e-9):>9.0f}"
            f" {_percentile(tally.latencies, 0.5) * 1e3:>7.2f}"
            f" {_percentile(tally.latencies, 0.99) * 1e3:>7.2f}"
            f" {_percentile(tally.latencies, 0.999) * 1e3:>8.2f}  {statuses}"
        )
        if tally.errors:
            failed = True
            print(f"  first error: {tally.errors[0]}")
    print("errors: none" if not failed else "errors: SOME (see above)")


if __name__ == "__main__":
    main()
