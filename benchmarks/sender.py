"""Sender-constrained tokens: what a DPoP proof, the shared replay ledger and introspection cost.

Per call, median of block means (wall time, since the Redis and introspection rows wait on
sockets), beside the RS256 validation every request pays anyway:

- ``validate RS256 token``: ``Validator.validate`` (static keys), the baseline;
- ``DPoP proof ES256 / EdDSA, memory ledger``: ``DPoPVerifier.verify`` on a fresh proof (parse,
  key import from the header, signature, claims, ``ath``, ``cnf.jkt``, ledger entry);
- ``DPoP proof ES256, Redis ledger (averify)``: the same through ``RedisReplayLedger`` on a
  local ``redis-server`` (one ``SET NX PX`` round trip), when the binary is installed;
- ``introspection, cached`` / ``introspection, over loopback``: ``Introspector.introspect`` on a
  cache hit, and on a miss against ``LocalIssuer``'s endpoint on 127.0.0.1.

Run with ``python -m benchmarks sender``; ``JWKGUARD_BENCH_ROUNDS`` sets the rounds.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from jwkguard import Issuer, Validator
from jwkguard.fleet import RedisReplayLedger, RedisStore
from jwkguard.sender import DPoPVerifier, Introspector
from jwkguard.testing import LocalIssuer, generate_key, make_dpop_proof, mint_token

ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"
URL = "https://api.example.com/orders"
ROUNDS = int(os.environ.get("JWKGUARD_BENCH_ROUNDS", "7"))
PER_ROUND = 200


def _median_us(run_block: Callable[[int], float]) -> float:
    """Median over rounds of the mean microseconds per call in a block of PER_ROUND calls."""
    means = [run_block(PER_ROUND) / PER_ROUND * 1e6 for _ in range(ROUNDS)]
    return statistics.median(means)


def _timed(calls: Iterator[Callable[[], object]]) -> Callable[[int], float]:
    def block(count: int) -> float:
        prepared = [next(calls) for _ in range(count)]
        started = time.perf_counter()
        for call in prepared:
            call()
        return time.perf_counter() - started

    return block


def _redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="jwkguard-bench-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.terminate()
    return None


def main() -> None:
    rsa = generate_key("RS256", kid="bench")
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa.public_jwk]})],
        algorithms=["RS256"],
    )
    rows: list[tuple[str, float]] = []

    token = mint_token(rsa, issuer=ISSUER, audience=AUDIENCE, lifetime=3600)

    def validations() -> Iterator[Callable[[], object]]:
        while True:
            yield lambda: validator.validate(token)

    rows.append(("validate RS256 token", _median_us(_timed(validations()))))

    for alg in ("ES256", "EdDSA"):
        key = generate_key(alg)
        bound = mint_token(
            rsa, issuer=ISSUER, audience=AUDIENCE, lifetime=3600, cnf={"jkt": key.thumbprint}
        )
        claims = validator.validate(bound)
        verifier = DPoPVerifier()

        def proofs(
            key: Any = key, bound: str = bound, claims: Any = claims, verifier: Any = verifier
        ) -> Iterator[Callable[[], object]]:
            while True:
                proof = make_dpop_proof(key, method="GET", url=URL, access_token=bound)
                yield functools.partial(
                    verifier.verify, proof, method="GET", url=URL, access_token=bound, claims=claims
                )

        rows.append((f"DPoP proof {alg}, memory ledger", _median_us(_timed(proofs()))))

    redis = _redis()
    if redis is not None:
        process, url = redis
        key = generate_key("ES256")
        bound = mint_token(
            rsa, issuer=ISSUER, audience=AUDIENCE, lifetime=3600, cnf={"jkt": key.thumbprint}
        )
        claims = validator.validate(bound)
        try:

            async def measure() -> float:
                async with RedisStore(url, prefix="bench:") as store:
                    verifier = DPoPVerifier(replay=RedisReplayLedger(store))
                    means = []
                    for _ in range(ROUNDS):
                        prepared = [
                            make_dpop_proof(key, method="GET", url=URL, access_token=bound)
                            for _ in range(PER_ROUND)
                        ]
                        started = time.perf_counter()
                        for proof in prepared:
                            await verifier.averify(
                                proof, method="GET", url=URL, access_token=bound, claims=claims
                            )
                        means.append((time.perf_counter() - started) / PER_ROUND * 1e6)
                    return statistics.median(means)

            rows.append(("DPoP proof ES256, Redis ledger (averify)", asyncio.run(measure())))
        finally:
            process.terminate()
            process.wait(timeout=10)
    else:
        print("(redis-server not installed: no Redis row)")

    with LocalIssuer() as local:
        endpoint = local.enable_introspection()
        introspector = Introspector(
            endpoint=endpoint.url,
            client_id=endpoint.client_id,
            client_secret=endpoint.client_secret,
            max_cache_ttl=3600,
        )
        for position in range(PER_ROUND * ROUNDS + 1):
            endpoint.opaque_tokens[f"opaque-{position}"] = {"sub": "svc"}
        introspector.introspect("opaque-0")

        def hits() -> Iterator[Callable[[], object]]:
            while True:
                yield lambda: introspector.introspect("opaque-0")

        rows.append(("introspection, cached", _median_us(_timed(hits()))))
        fresh = iter(range(1, PER_ROUND * ROUNDS + 1))

        def misses() -> Iterator[Callable[[], object]]:
            while True:
                yield functools.partial(introspector.introspect, f"opaque-{next(fresh)}")

        rows.append(("introspection, over loopback", _median_us(_timed(misses()))))
        introspector.close()

    baseline = rows[0][1]
    print(f"{'case':<44} {'us/call':>10} {'x validate':>11}")
    for name, micros in rows:
        print(f"{name:<44} {micros:>10.1f} {micros / baseline:>11.2f}")


if __name__ == "__main__":
    main()
