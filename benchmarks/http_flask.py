"""Requests per second of the example Flask app: no auth, floor, jwkguard, PyJWT.

The example app (``examples/flask_app.py``) runs under waitress with one worker thread in a
child process on 127.0.0.1; this process sends a bounded load over keep-alive connections.
Four routes answer the same small JSON body:

- ``none``: no authentication;
- ``floor``: a decorator that only extracts the bearer header (what any auth decorator pays);
- ``jwkguard``: ``@guard.require`` with default options;
- ``pyjwt``: a hand-written decorator around ``jwt.decode`` with a preloaded ``PyJWKSet``;
- ``cached``: the ``jwkguard`` route of a second instance of the app, mounted at ``/cached``,
  configured with ``JWKGUARD_TOKEN_CACHE = True`` (the verified-token cache).

The server is pinned to one CPU and the load to another (when there are two), and rounds
interleave the routes so that drift on a shared machine hits them alike. Two figures per
route, each the median of its rounds: requests per wall-clock second, and requests per second
of the server's CPU time (its threads' time on a CPU), which suffers less when other
processes share the cores. Targets: jwkguard >= 1.15x PyJWT and >= 0.8x floor.
Run with ``python -m benchmarks http_flask``.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER_CPU, LOAD_CPU = 0, 1
ROUTES = ("none", "floor", "jwkguard", "pyjwt", "cached")
PATHS = {"cached": "/cached/bench/jwkguard"}
CONNECTIONS = 2
WARM_UP = 200
PER_ROUND = 400
ROUNDS = 20
_TIMEOUT = 30.0


def _pin(cpu: int) -> None:
    """Keep this process (and the threads it starts later) on ``cpu``, if it may use two."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        os.sched_setaffinity(0, {allowed[cpu]})


# -- the server (child process) -----------------------------------------------------------


def _bench_app() -> Any:
    """The example app plus a ``bench`` blueprint with the four comparable routes."""
    import jwt
    from flask import Blueprint, g, request

    from examples.flask_app import create_app, guard
    from jwkguard_flask import current_claims

    app = create_app()
    entry = app.config["JWKGUARD_ISSUERS"][0]
    jwks = jwt.PyJWKSet.from_dict(entry["jwks"])
    issuer, audiences = entry["issuer"], entry["audiences"]
    algorithms = app.config["JWKGUARD_ALGORITHMS"]
    unauthorized = ({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer realm="api"'})

    def bearer_token() -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def floor(view: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(view)
        def wrapper() -> Any:
            token = bearer_token()
            if token is None:
                return unauthorized
            g.token = token
            return view()

        return wrapper

    def pyjwt_required(view: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(view)
        def wrapper() -> Any:
            token = bearer_token()
            if token is None:
                return unauthorized
            try:
                kid = jwt.get_unverified_header(token).get("kid")
                key = jwks[kid]
                g.claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=algorithms,
                    audience=audiences,
                    issuer=issuer,
                    options={"require": ["exp", "iat", "iss", "aud"]},
                )
            except (jwt.PyJWTError, KeyError):
                return unauthorized
            return view()

        return wrapper

    bench = Blueprint("bench", __name__, url_prefix="/bench")

    @bench.get("/none")
    def none() -> dict[str, str]:
        return {"sub": "user-123"}

    @bench.get("/floor")
    @floor
    def floor_view() -> dict[str, str]:
        return {"sub": "user-123"}

    @bench.get("/jwkguard")
    @guard.require
    def jwkguard_view() -> dict[str, str]:
        return {"sub": current_claims.subject or ""}

    @bench.get("/pyjwt")
    @pyjwt_required
    def pyjwt_view() -> dict[str, str]:
        return {"sub": g.claims["sub"]}

    app.register_blueprint(bench)
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    cached = create_app({"JWKGUARD_TOKEN_CACHE": True})
    cached.register_blueprint(bench)
    return DispatcherMiddleware(app, {"/cached": cached})


def serve() -> None:
    """Serve the bench app with one waitress worker thread; print the port."""
    import logging

    from waitress import create_server

    # A single worker thread always has a queue under load: that is the point, not news.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    _pin(SERVER_CPU)  # before waitress starts its threads, so that they inherit it

    server = create_server(_bench_app(), host="127.0.0.1", port=0, threads=1)
    print(server.effective_port, flush=True)
    server.run()


# -- the load (this process) --------------------------------------------------------------


def _read_response(sock: socket.socket, buffer: bytearray) -> int:
    """Read one HTTP/1.1 response with Content-Length; return its status."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    buffer[:] = rest[length:]
    return status


def _load(port: int, request: bytes, total: int) -> float:
    """Send ``total`` requests over CONNECTIONS keep-alive connections; return seconds taken."""
    per_connection = total // CONNECTIONS
    start = threading.Barrier(CONNECTIONS + 1)
    failures: list[str] = []

    def worker() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = bytearray()
            start.wait(_TIMEOUT)
            for _ in range(per_connection):
                sock.sendall(request)
                status = _read_response(sock, buffer)
                if status != 200:
                    failures.append(f"status {status}")
                    return

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    start.wait(_TIMEOUT)
    began = time.perf_counter()
    for thread in threads:
        thread.join(_TIMEOUT * 4)
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"the benchmark route did not answer 200: {failures[0]}")
    return elapsed


def _cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid``: the sum of its threads' time on a CPU (Linux ``/proc``).

    ``schedstat`` counts nanoseconds, where ``stat`` counts 10 ms ticks.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _request(route: str, token: str) -> bytes:
    lines = [
        f"GET {PATHS.get(route, f'/bench/{route}')} HTTP/1.1",
        "Host: 127.0.0.1",
        "Accept: application/json",
        *([] if route == "none" else [f"Authorization: Bearer {token}"]),
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def _start_server(environment: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http_flask", "serve"],
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout is not None else ""
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError("the benchmark server did not start")
    return process, int(line)


def main() -> None:
    """Run the four routes in interleaved rounds and print requests/s and ratios."""
    from jwkguard.testing import LocalIssuer

    with LocalIssuer() as issuer:
        entry = {"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}
        environment = {
            "FLASK_JWKGUARD_ISSUERS": json.dumps([entry]),
            "FLASK_JWKGUARD_ALGORITHMS": json.dumps([issuer.alg]),
        }
        token = issuer.mint(scopes=["orders:read"])
        process, port = _start_server(environment)
        affinity = os.sched_getaffinity(0)
        _pin(LOAD_CPU)
        try:
            requests = {route: _request(route, token) for route in ROUTES}
            for route in ROUTES:
                _load(port, requests[route], WARM_UP)
            rates: dict[str, list[float]] = {route: [] for route in ROUTES}
            cpu_rates: dict[str, list[float]] = {route: [] for route in ROUTES}
            for round_number in range(ROUNDS):
                # Rotate the order each round so no route always follows the same neighbour.
                shift = round_number % len(ROUTES)
                for route in ROUTES[shift:] + ROUTES[:shift]:
                    before = _cpu_seconds(process.pid)
                    rates[route].append(PER_ROUND / _load(port, requests[route], PER_ROUND))
                    spent = _cpu_seconds(process.pid) - before
                    cpu_rates[route].append(PER_ROUND / max(spent, 1e-9))
        finally:
            os.sched_setaffinity(0, affinity)
            process.terminate()
            process.wait(timeout=10)
    wall = {route: statistics.median(values) for route, values in rates.items()}
    per_cpu = {route: statistics.median(values) for route, values in cpu_rates.items()}
    print(f"{CONNECTIONS} keep-alive connections, {ROUNDS} rounds x {PER_ROUND} requests/route")
    print(
        f"{'route':<9} {'req/s':>7} {'/floor':>7} {'/pyjwt':>7}"
        f"  {'req/cpu-s':>9} {'/floor':>7} {'/pyjwt':>7}  rounds (req/s)"
    )
    for route in ROUTES:
        spread = " ".join(f"{value:.0f}" for value in rates[route])
        print(
            f"{route:<9} {wall[route]:>7.0f} {wall[route] / wall['floor']:>6.2f}x"
            f" {wall[route] / wall['pyjwt']:>6.2f}x  {per_cpu[route]:>9.0f}"
            f" {per_cpu[route] / per_cpu['floor']:>6.2f}x"
            f" {per_cpu[route] / per_cpu['pyjwt']:>6.2f}x  {spread}"
        )
    for label, figures in (("wall clock", wall), ("server CPU", per_cpu)):
        print(
            f"{label}: jwkguard = {figures['jwkguard'] / figures['pyjwt']:.2f}x PyJWT "
            f"(target >= 1.15x), {figures['jwkguard'] / figures['floor']:.2f}x floor "
            "(target >= 0.80x)"
        )
        print(
            f"{label}: cached = {figures['cached'] / figures['floor']:.2f}x floor (target >= 0.95x)"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        main()
