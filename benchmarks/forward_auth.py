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
  ``token_cache = true`` (the verified-token cache);
- ``healthz``: ``GET /healthz`` on that second server: the floor of a request to ``serve``,
  against which ``cached`` is compared (target: cached >= 0.8x healthz).

Any other status or a broken connection is an error; the run must have none. Figures: requests
per second (wall clock), requests per second of server CPU, and p50/p99/p99.9 latency seen by the
client. ``JWKGUARD_BENCH_SECONDS`` changes the duration of the ``valid`` run (default 10 s).
Run with ``python -m benchmarks forward_auth``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._http_load import Mix, Tally, free_port, get_request, load_async, stop, wait_ready
from benchmarks._timing import percentile, process_cpu_seconds

SECONDS = float(os.environ.get("JWKGUARD_BENCH_SECONDS", "10"))
MIXED_SECONDS = SECONDS / 2
WARM_UP_SECONDS = 1.0
CONNECTIONS = 8
SCOPE = "orders:read"
TARGET_HEALTHZ = 0.8


def _request(token: str | None, method: str = "GET", uri: str = "/orders") -> bytes:
    headers = [
        f"X-Original-URI: {uri}",
        f"X-Original-Method: {method}",
        "X-Forwarded-Host: api.example.com",
        *([] if token is None else [f"Authorization: Bearer {token}"]),
    ]
    return get_request("/auth", headers)


async def _load(port: int, mix: Mix, seconds: float) -> tuple[float, Tally]:
    return await load_async(port, mix, connections=CONNECTIONS, seconds=seconds, limit=seconds + 30)


def _config(issuer_url: str, audience: str, port: int, *, cached: bool = False) -> str:
    return f"""
[server]
gateway = "nginx"
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
    wait_ready(process, port, "/healthz", name="jwkguard serve")
    return process


def main() -> None:
    """Run both scenarios against a fresh server and print one line each."""
    from jwkguard.testing import LocalIssuer, sign_compact

    with LocalIssuer() as issuer, tempfile.TemporaryDirectory() as workdir:
        port, cached_port = free_port(), free_port()
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
            "healthz": [(get_request("/healthz"), 200)],
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
                    ("healthz", SECONDS, cached_process, cached_port),
                ):
                    before = process_cpu_seconds(server.pid)
                    elapsed, tally = await _load(target, scenarios[name], seconds)
                    results[name] = (elapsed, tally, process_cpu_seconds(server.pid) - before)

            asyncio.run(run())
        finally:
            stop([process, cached_process])
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
            f" {percentile(tally.latencies, 0.5) * 1e3:>7.2f}"
            f" {percentile(tally.latencies, 0.99) * 1e3:>7.2f}"
            f" {percentile(tally.latencies, 0.999) * 1e3:>8.2f}  {statuses}"
        )
        if tally.errors:
            failed = True
            print(f"  first error: {tally.errors[0]}")
    print("errors: none" if not failed else "errors: SOME (see above)")
    if "cached" in results and "healthz" in results:
        (c_elapsed, c_tally, c_cpu), (h_elapsed, h_tally, h_cpu) = (
            results["cached"],
            results["healthz"],
        )
        wall = (len(c_tally.latencies) / c_elapsed) / (len(h_tally.latencies) / h_elapsed)
        cpu = (len(c_tally.latencies) / max(c_cpu, 1e-9)) / (
            len(h_tally.latencies) / max(h_cpu, 1e-9)
        )
        verdict = "met" if min(wall, cpu) >= TARGET_HEALTHZ else "MISSED"
        print(
            f"cached auth vs /healthz: {wall:.2f}x req/s, {cpu:.2f}x req/cpu-s"
            f" (target >= {TARGET_HEALTHZ}x): {verdict}"
        )


if __name__ == "__main__":
    main()
