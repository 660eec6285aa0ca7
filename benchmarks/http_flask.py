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
import sys
from collections.abc import Callable
from typing import Any

from benchmarks._http_load import api_request, load_threads, pin, start_serve, stop
from benchmarks._timing import in_turns, medians, process_cpu_seconds

SERVER_CPU, LOAD_CPU = 0, 1
ROUTES = ("none", "floor", "jwkguard", "pyjwt", "cached")
PATHS = {"cached": "/cached/bench/jwkguard"}
CONNECTIONS = 2
WARM_UP = 200
PER_ROUND = 400
ROUNDS = 20


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
    pin(SERVER_CPU)  # before waitress starts its threads, so that they inherit it

    server = create_server(_bench_app(), host="127.0.0.1", port=0, threads=1)
    print(server.effective_port, flush=True)
    server.run()


# -- the load (this process) --------------------------------------------------------------


def _request(route: str, token: str) -> bytes:
    return api_request(PATHS.get(route, f"/bench/{route}"), None if route == "none" else token)


def _load(port: int, request: bytes, total: int) -> float:
    return load_threads(port, request, total, connections=CONNECTIONS)


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
        process, port = start_serve("benchmarks.http_flask", environment)
        affinity = os.sched_getaffinity(0)
        pin(LOAD_CPU)
        try:
            requests = {route: _request(route, token) for route in ROUTES}
            for route in ROUTES:
                _load(port, requests[route], WARM_UP)
            rates: dict[str, list[float]] = {route: [] for route in ROUTES}
            cpu_rates: dict[str, list[float]] = {route: [] for route in ROUTES}
            for route in in_turns(ROUTES, ROUNDS):
                before = process_cpu_seconds(process.pid)
                rates[route].append(PER_ROUND / _load(port, requests[route], PER_ROUND))
                spent = process_cpu_seconds(process.pid) - before
                cpu_rates[route].append(PER_ROUND / max(spent, 1e-9))
        finally:
            os.sched_setaffinity(0, affinity)
            stop([process])
    wall, per_cpu = medians(rates), medians(cpu_rates)
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
