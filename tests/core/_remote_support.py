"""Helpers shared by the remote key source tests: validators on a local issuer, events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from jwkguard import Event, Validator
from jwkguard.testing import LocalIssuer, sign_compact

from ..conftest import FakeClock

JWKS = "/jwks.json"
LONG = 10**7  # token lifetime that outlasts any clock advance in these tests


class Events:
    """Collects events; an ``EventHandler``."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def kinds(self) -> list[str]:
        return [event.kind for event in self.seen]

    def of(self, kind: str) -> list[Event]:
        return [event for event in self.seen if event.kind == kind]


def remote_validator(
    issuer: LocalIssuer,
    clock: FakeClock,
    events: Events | None = None,
    *,
    discovery: bool = False,
    **options: Any,
) -> Validator:
    """A validator trusting ``issuer`` over HTTP (its jwks_uri unless ``discovery``)."""
    if not discovery:
        options.setdefault("jwks_uri", issuer.jwks_uri)
    options.setdefault("timeout", 0.5)
    return Validator(
        issuers=[issuer.issuer_config(**options)],
        algorithms=["RS256"],
        clock=clock,
        on_event=events,
    )


def token(local: LocalIssuer, clock: FakeClock, **claims: Any) -> str:
    """A token from ``local`` valid for the whole test, whatever the clock does."""
    claims.setdefault("lifetime", LONG)
    return local.mint(now=clock.now, **claims)


def forged(issuer: LocalIssuer, clock: FakeClock, kid: str | None = None) -> str:
    """A token naming ``issuer`` and a key id it never published (unsigned: no key is found)."""
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid or f"forged-{uuid.uuid4().hex}"}
    payload = {"iss": issuer.url, "aud": issuer.audience, "exp": int(clock.now + LONG)}
    return sign_compact(header, payload)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
