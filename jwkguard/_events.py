"""Trust-change events: what happened to an issuer's keys, for logs, metrics and audit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventHandler", "log_event"]

logger = logging.getLogger("jwkguard.events")


@dataclass(frozen=True, slots=True)
class Event:
    """One change of trust or notable condition.

    Attributes:
        kind: e.g. ``key_added``, ``key_removed``, ``refresh_failed``, ``serving_stale``,
            ``recovered``, ``cooldown_hit``, ``unknown_kid``.
        issuer: The configured issuer it concerns.
        timestamp: Unix time when it happened (from the validator's clock).
        kid: The key id concerned, if any.
        thumbprint: The RFC 7638 thumbprint of the key concerned, if any.
        detail: Extra structured fields; never a token.
    """

    kind: str
    issuer: str
    timestamp: float
    kid: str | None = None
    thumbprint: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


EventHandler = Callable[[Event], None]

_WARNING_KINDS = frozenset(
    {"refresh_failed", "serving_stale", "keys_unavailable", "key_distrusted", "store_unavailable"}
)


def log_event(event: Event) -> None:
    """The default handler: one structured record on the ``jwkguard.events`` logger."""
    level = logging.WARNING if event.kind in _WARNING_KINDS else logging.INFO
    logger.log(
        level,
        "%s issuer=%s kid=%s",
        event.kind,
        event.issuer,
        event.kid,
        extra={
            "jwkguard_event": event.kind,
            "issuer": event.issuer,
            "kid": event.kid,
            "thumbprint": event.thumbprint,
            "event_timestamp": event.timestamp,
            "detail": dict(event.detail),
        },
    )
