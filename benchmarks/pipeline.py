"""The request pipeline's own cost: a stage profile of one request, beside ``validate``.

Every adapter judges a request through ``RequestPipeline.run`` / ``arun``; what the pipeline
adds to ``Validator.validate`` is its own work: build the request view, read the credentials,
drive the flow, check the route policy, build the decision. Stages, timed in interleaved
blocks on this thread's CPU clock (medians over rounds):

- ``view (asgi)`` / ``view (wsgi)``: ``view_from_asgi(scope)`` / ``view_from_environ(environ)``;
- ``credentials``: reading the one ``Authorization`` header;
- ``validate``: ``Validator.validate`` alone (the verified-token cache on: a hit; off: RS256);
- ``run``: the whole pipeline for the same request and token (view included);
- ``arun``: the same through the async driver, against ``await avalidate``.

Target: the pipeline's own work (``run - validate``) <= 8 µs per request.
Run with ``python -m benchmarks pipeline``; ``JWKGUARD_BENCH_ROUNDS`` changes the rounds.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from benchmarks._timing import CPU, Call, interleaved_samples, medians

ROUNDS = int(os.environ.get("JWKGUARD_BENCH_ROUNDS", "15"))
TARGET_OWN_US = 8.0
AWAITS_PER_BLOCK = 200


def _scenario(cached: bool) -> dict[str, Call]:
    from jwkguard import Issuer, Validator
    from jwkguard.pipeline import RequestPipeline, RoutePolicy, view_from_asgi, view_from_environ
    from jwkguard.testing import generate_key, mint_token

    key = generate_key("RS256", kid="bench")
    validator = Validator(
        issuers=[
            Issuer("https://id.example.com/", audiences=["api"], jwks={"keys": [key.public_jwk]})
        ],
        algorithms=["RS256"],
        token_cache=True if cached else None,
    )
    token = mint_token(
        key, issuer="https://id.example.com/", audience="api", scopes="orders:read", lifetime=3600
    )
    pipeline = RequestPipeline(validator)
    policy = RoutePolicy(scopes=frozenset({"orders:read"}))
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/orders",
        "query_string": b"",
        "headers": [(b"host", b"api.example.com"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
    }
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "REMOTE_ADDR": "127.0.0.1",
    }
    view = view_from_asgi(scope)
    authorization = view.headers.getlist("authorization")
    loop = asyncio.new_event_loop()

    def repeated(make: Callable[[], object]) -> Call:
        async def many() -> None:
            for _ in range(AWAITS_PER_BLOCK):
                await make()  # type: ignore[misc]

        return lambda: loop.run_until_complete(many())

    return {
        "view (asgi)": lambda: view_from_asgi(scope),
        "view (wsgi)": lambda: view_from_environ(environ),
        "credentials": lambda: pipeline.credentials(view, authorization),
        "validate": lambda: validator.validate(token),
        "run": lambda: pipeline.run(view_from_asgi(scope), policy),
        "avalidate x200": repeated(lambda: validator.avalidate(token)),
        "arun x200": repeated(lambda: pipeline.arun(view_from_asgi(scope), policy)),
    }


def main() -> None:
    """Print the stage profile with and without the verified-token cache."""
    print(f"CPU µs per call, medians of {ROUNDS} interleaved rounds (RS256, one scope)")
    for cached in (True, False):
        figures = medians(interleaved_samples(_scenario(cached), ROUNDS, clock=CPU))
        sync_own = figures["run"] - figures["validate"]
        async_own = (figures["arun x200"] - figures["avalidate x200"]) / AWAITS_PER_BLOCK
        label = "token cache on (a hit)" if cached else "token cache off"
        print(f"\n{label}")
        for name, value in figures.items():
            per_call = value / AWAITS_PER_BLOCK if name.endswith("x200") else value
            print(f"  {name.replace(' x200', ''):<14} {per_call:8.2f}")
        verdict = "met" if max(sync_own, async_own) <= TARGET_OWN_US else "MISSED"
        print(
            f"  pipeline's own work: sync {sync_own:.2f} µs, async {async_own:.2f} µs"
            f" (target <= {TARGET_OWN_US:g} µs): {verdict}"
        )


if __name__ == "__main__":
    main()
