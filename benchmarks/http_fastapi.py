"""Requests per second and latency of the example FastAPI app: no auth, HTTPBearer, jwkguard, PyJWT.

The example API (``examples/fastapi_app.py``, configured from ``JWKGUARD_*`` environment
variables like a deployment, keys fetched from a local issuer over HTTP at start-up) runs under
uvicorn with one worker in a child process on 127.0.0.1. This process sends a bounded load: a
fixed number of requests over keep-alive connections from an asyncio client. Every route answers
the same body (the example's two orders, through the same response model):

- ``none``: no authentication;
- ``httpbearer``: FastAPI's bare ``HTTPBearer`` (extracts the header, validates nothing: the
  framework's own floor for any auth dependency);
- ``jwkguard``: the example's ``GET /orders``, ``Security(JWTBearer(...), scopes=[...])``;
- ``pyjwt``: a hand-written dependency: ``HTTPBearer`` plus ``jwt.decode`` with a preloaded
  ``PyJWKSet`` (no ``PyJWKClient``), the same claims and the scope check;
- ``jwkguard+cache``: the same dependency over a validator with the verified-token cache.

Rounds interleave the routes (rotating the order) so drift on a shared machine hits them alike.
Figures per route: the median requests per wall-clock second over the rounds, requests per
second of server CPU time (steadier when other work shares the cores), and client-side p50/p99
latency over all rounds. Targets: jwkguard >= 1.2x PyJWT and >= 0.75x HTTPBearer.
Run with ``python -m benchmarks http_fastapi``; ``JWKGUARD_BENCH_ROUNDS`` changes the rounds.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.
import asyncio
import json
import os
import socket
import subprocess
import sys
from typing import Any

from benchmarks._http_load import ROOT, api_request, load_async, stop, wait_ready
from benchmarks._timing import in_turns, medians, percentile, process_cpu_seconds

ROUTES = ("none", "httpbearer", "jwkguard", "pyjwt", "jwkguard+cache")
PATHS = {
    "none": "/bench/none",
    "httpbearer": "/bench/httpbearer",
    "jwkguard": "/orders",
    "pyjwt": "/bench/pyjwt",
    "jwkguard+cache": "/bench/jwkguard-cached",
}
SCOPE = "orders:read"
CONNECTIONS = 8
WARM_UP = 300
PER_ROUND = 800
ROUNDS = int(os.environ.get("JWKGUARD_BENCH_ROUNDS", "5"))
TIMEOUT = 30.0
TARGET_PYJWT = 1.2
TARGET_HTTPBEARER = 0.75


# -- the server (child process) -----------------------------------------------------------


def bench_app() -> Any:
    """The example app from the environment, plus the comparison routes."""
    from typing import Annotated

    import jwt
    from fastapi import Depends, HTTPException, Security
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from examples.fastapi_app import Order, create_app, validator_from_env
    from jwkguard import Claims, Issuer, Validator
    from jwkguard_fastapi import JWTBearer

    validator = validator_from_env()
    app = create_app(validator)
    issuer = os.environ["JWKGUARD_ISSUER"]
    audience = os.environ["JWKGUARD_AUDIENCES"]
    orders = [
        Order(id=1, item="coffee beans", quantity=2, owner="user-123"),
        Order(id=2, item="filter papers", quantity=1, owner="user-456"),
    ]

    # FastAPI's own floor: the header is parsed, nothing is validated.
    http_bearer = HTTPBearer()

    # A typical hand-written PyJWT dependency, given its keys up front.
    jwks = jwt.PyJWKSet.from_dict(json.loads(os.environ["BENCH_JWKS"]))

    async def pyjwt_claims(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(http_bearer)],
    ) -> dict[str, Any]:
        token = credentials.credentials
        try:
            key = jwks[jwt.get_unverified_header(token)["kid"]]
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except (jwt.PyJWTError, KeyError) as exc:
            raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"}) from exc
        if SCOPE not in str(claims.get("scope", "")).split():
            raise HTTPException(403, headers={"WWW-Authenticate": "Bearer"})
        return claims

    cached = Validator(
        issuers=[Issuer(issuer, audiences=[audience], jwks_uri=os.environ["JWKGUARD_JWKS_URI"])],
        algorithms=["RS256"],
        token_cache=True,
    )
    cached_auth = JWTBearer(cached)

    @app.get("/bench/none")
    async def none() -> list[Order]:
        return orders

    @app.get("/bench/httpbearer")
    async def bare(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(http_bearer)],
    ) -> list[Order]:
        return orders

    @app.get("/bench/pyjwt")
    async def with_pyjwt(claims: Annotated[dict[str, Any], Depends(pyjwt_claims)]) -> list[Order]:
        return orders

    @app.get("/bench/jwkguard-cached")
    async def with_cache(
        claims: Annotated[Claims, Security(cached_auth, scopes=[SCOPE])],
    ) -> list[Order]:
        return orders

    return app


def serve(fd: int) -> None:
    """Serve the bench app with uvicorn (one worker) on the inherited listening socket."""
    import uvicorn

    listener = socket.socket(fileno=fd)
    config = uvicorn.Config(bench_app(), log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])


# -- the load (this process) --------------------------------------------------------------


async def _load(port: int, request: bytes, total: int) -> tuple[float, list[float]]:
    """``total`` requests over CONNECTIONS keep-alive connections: (seconds, latencies)."""
    elapsed, tally = await load_async(
        port, [(request, 200)], connections=CONNECTIONS, total=total, limit=TIMEOUT * 4
    )
    if tally.errors:
        raise RuntimeError(f"the benchmark route did not answer 200: {tally.errors[0]}")
    return elapsed, tally.latencies


def _start_server(environment: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http_fastapi", "serve", str(listener.fileno())],
        cwd=ROOT,
        env={**os.environ, **environment},
        pass_fds=[listener.fileno()],
    )
    listener.close()
    wait_ready(process, port, "/health", name="the benchmark server")
    return process, port


def main() -> None:
    """Run the routes in interleaved rounds and print requests/s, latency and ratios."""
    from jwkguard.testing import LocalIssuer

    with LocalIssuer() as issuer:
        environment = {
            "JWKGUARD_ISSUER": issuer.url,
            "JWKGUARD_AUDIENCES": issuer.audience,
            "JWKGUARD_ALGORITHMS": issuer.alg,
            "JWKGUARD_JWKS_URI": issuer.jwks_uri,
            "BENCH_JWKS": json.dumps(issuer.jwks()),
        }
        token = issuer.mint(scopes=[SCOPE], lifetime=3600)
        process, port = _start_server(environment)
        try:
            requests = {
                route: api_request(PATHS[route], None if route == "none" else token)
                for route in ROUTES
            }
            rates: dict[str, list[float]] = {route: [] for route in ROUTES}
            latencies: dict[str, list[float]] = {route: [] for route in ROUTES}
            cpu = dict.fromkeys(ROUTES, 0.0)

            async def run() -> None:
                for route in ROUTES:
                    await _load(port, requests[route], WARM_UP)
                for route in in_turns(ROUTES, ROUNDS):
                    before = process_cpu_seconds(process.pid)
                    elapsed, taken = await _load(port, requests[route], PER_ROUND)
                    cpu[route] += process_cpu_seconds(process.pid) - before
                    rates[route].append(PER_ROUND / elapsed)
                    latencies[route].extend(taken)

            asyncio.run(run())
        finally:
            stop([process])
    _report(rates, latencies, cpu)


def _report(
    rates: dict[str, list[float]], latencies: dict[str, list[float]], cpu: dict[str, float]
) -> None:
    wall = medians(rates)
    per_cpu = {route: ROUNDS * PER_ROUND / max(cpu[route], 1e-9) for route in ROUTES}
    print(
        f"uvicorn, 1 worker; {CONNECTIONS} keep-alive connections; "
        f"{ROUNDS} rounds x {PER_ROUND} requests per route"
    )
    print(
        f"{'route':<15} {'req/s':>6} {'/none':>6} {'/bearer':>7} {'/pyjwt':>6}"
        f" {'req/cpu-s':>9} {'/bearer':>7} {'/pyjwt':>6} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for route in ROUTES:
        print(
            f"{route:<15} {wall[route]:>6.0f} {wall[route] / wall['none']:>5.2f}x"
            f" {wall[route] / wall['httpbearer']:>6.2f}x {wall[route] / wall['pyjwt']:>5.2f}x"
            f" {per_cpu[route]:>9.0f} {per_cpu[route] / per_cpu['httpbearer']:>6.2f}x"
            f" {per_cpu[route] / per_cpu['pyjwt']:>5.2f}x"
            f" {percentile(latencies[route], 0.5) * 1e3:>7.2f}"
            f" {percentile(latencies[route], 0.99) * 1e3:>7.2f}"
        )
    for label, figures in (("wall clock", wall), ("server CPU", per_cpu)):
        versus_pyjwt = figures["jwkguard"] / figures["pyjwt"]
        versus_bearer = figures["jwkguard"] / figures["httpbearer"]
        verdict = (
            "met"
            if versus_pyjwt >= TARGET_PYJWT and versus_bearer >= TARGET_HTTPBEARER
            else "MISSED"
        )
        print(
            f"{label}: jwkguard = {versus_pyjwt:.2f}x PyJWT (target >= {TARGET_PYJWT}x), "
            f"{versus_bearer:.2f}x HTTPBearer (target >= {TARGET_HTTPBEARER}x): {verdict}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        main()
