"""One API instance of a fleet, in its own process, driven by JSON lines on stdin.

Run as ``python -m tests.lifecycle._worker CONFIG_JSON``; it answers each command with one
JSON line on stdout. It validates with a real ``Validator`` + ``Lifecycle`` + ``RedisStore``,
like a replica of a service would, and uses the wall clock.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from jwkguard import Event, Issuer, TokenError, Validator
from jwkguard.fleet import RedisStore
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin


def main() -> None:
    config = json.loads(sys.argv[1])
    events: list[Event] = []
    store = RedisStore(
        config["url"],
        prefix=config["prefix"],
        heartbeat=config.get("heartbeat", 1.0),
        on_event=events.append,
    ).start()
    lifecycle = Lifecycle(
        store,
        on_unavailable=config["policy"],
        one_time=lambda claims: claims.get("once") is True,
        on_event=events.append,
    )
    validator = Validator(
        issuers=[Issuer(config["issuer"], audiences=[config["audience"]], jwks=config["jwks"])],
        algorithms=["RS256", "ES256"],
        lifecycle=lifecycle,
    )
    lifecycle.attach(validator)
    admin = LifecycleAdmin(store, on_event=events.append)

    def outcome(token: str, *, consume: bool = False) -> str:
        try:
            claims = validator.validate(token)
            if consume:
                lifecycle.consume(claims)
        except TokenError as exc:
            return exc.reason
        return "ok"

    def handle(command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "validate":
            started = time.monotonic()
            result = outcome(command["token"])
            return {"outcome": result, "took": time.monotonic() - started}
        if op == "until_refused":
            # Poll an accepted token until it is refused; report when that was first seen.
            deadline = time.monotonic() + command["timeout"]
            while True:
                result = outcome(command["token"])
                if result != "ok" or time.monotonic() > deadline:
                    return {"outcome": result, "seen_at": time.time()}
                time.sleep(0.001)
        if op == "race":
            while time.time() < command["at"]:
                time.sleep(0.0005)
            consume = command.get("consume", False)
            return {"outcomes": [outcome(token, consume=consume) for token in command["tokens"]]}
        if op == "admin":
            issued_at = time.time()
            try:
                getattr(admin, command["method"])(*command.get("args", ()), **command["kwargs"])
            except TokenError as exc:
                return {"error": exc.reason, "issued_at": issued_at}
            return {"ok": True, "issued_at": issued_at}
        if op == "wait_available":
            deadline = time.monotonic() + command["timeout"]
            while store.available != command["want"] and time.monotonic() < deadline:
                time.sleep(0.01)
            return {"available": store.available}
        if op == "status":
            return {
                "available": store.available,
                "counts": store.replica.counts(),
                "events": [event.kind for event in events],
            }
        raise ValueError(f"unknown command {op}")

    print(json.dumps({"ready": True, "available": store.available}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        print(json.dumps(handle(command)), flush=True)
    store.close()


if __name__ == "__main__":
    main()
