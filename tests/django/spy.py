"""Test doubles given to the validator through JWKGUARD settings."""

from __future__ import annotations

from typing import Any

from jwkguard import Claims, Event

events: list[Event] = []
loaded: list[str] = []


class PathSpy:
    """A lifecycle check that records which validator driver ran: validate or avalidate."""

    def __init__(self) -> None:
        self.sync_calls = 0
        self.async_calls = 0

    def check(self, claims: Claims, now: float) -> None:
        self.sync_calls += 1

    async def acheck(self, claims: Claims, now: float) -> None:
        self.async_calls += 1


def record_event(event: Event) -> None:
    events.append(event)


def counting_loader(claims: Claims) -> Any:
    """A USER_LOADER that records each call and maps the claims to a TokenUser."""
    from jwkguard_django.users import TokenUser

    loaded.append(claims.subject or "")
    return TokenUser(claims)
