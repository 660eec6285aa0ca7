"""The audit trail: every change of key trust and every admin action, one JSON line each.

Records go to the ``jwkguard.audit`` logger as the log message itself, so any handler (a file,
syslog, a log shipper) receives a complete JSON object per line. A record never holds a token:
values that look like a compact JWS or JWE are replaced by a short hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from .._events import Event, EventHandler

__all__ = ["AUDIT_KINDS", "AuditTrail", "fan_out", "token_hash"]

AUDIT_LOGGER = "jwkguard.audit"

AUDIT_KINDS = frozenset(
    {
        # Key trust, from the key sources.
        "key_added",
        "key_removed",
        "refresh_failed",
        "serving_stale",
        "recovered",
        "keys_unavailable",
        # Lifecycle state and admin actions, from the fleet layer.
        "key_distrusted",
        "key_trusted",
        "token_revoked",
        "subject_cut_off",
        "client_cut_off",
        "force_refresh",
        "store_unavailable",
        "store_recovered",
        "store_restored",
        "lifecycle_fail_open",
        "lifecycle_fail_closed",
        "refresh_requested",
    }
)
"""Event kinds the audit trail records by default: trust changes and admin actions.

Per-request noise (``unknown_kid``, ``cooldown_hit``) is left to the events logger.
"""

# A compact JWS (three segments) or JWE (five), long enough to be a real token.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){2}(?:\.[A-Za-z0-9_-]*){0,2}")
_SECRET_NAMES = frozenset({"token", "access_token", "authorization", "secret", "password"})

logger = logging.getLogger("jwkguard")


def token_hash(token: str | bytes) -> str:
    """A short, stable fingerprint of a token for logs: ``sha256:`` and 16 hex digits.

    Enough to correlate records about one token, never enough to replay it.
    """
    raw = token.encode("utf-8", "replace") if isinstance(token, str) else bytes(token)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def _safe(name: str, value: Any) -> Any:
    if isinstance(value, str):
        if name.lower() in _SECRET_NAMES or (len(value) > 40 and _TOKEN_LIKE.fullmatch(value)):
            return token_hash(value)
        return value
    if isinstance(value, bytes):
        return token_hash(value)
    if isinstance(value, Mapping):
        return {str(k): _safe(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_safe(name, item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


class AuditTrail:
    """An event handler that writes trust changes and admin actions as JSON lines.

    Pass it (alone or through :func:`fan_out`) as a validator's ``on_event``; admin tools call
    :meth:`record` directly.

    Args:
        logger: Where records go; default: the ``jwkguard.audit`` logger at INFO.
        kinds: Event kinds to record; default :data:`AUDIT_KINDS`.
        clock: Unix time for :meth:`record` calls without a timestamp.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger | None = None,
        kinds: Collection[str] = AUDIT_KINDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)
        self.kinds = frozenset(kinds)
        self._clock = clock

    def __call__(self, event: Event) -> None:
        """Record ``event`` if its kind is audited."""
        if event.kind not in self.kinds:
            return
        detail = dict(event.detail)
        # Admin events say who and why as `by` and `why`; key sources give a `reason`.
        reason = detail.pop("reason", None) or detail.pop("why", None)
        actor = detail.pop("by", None)
        self.record(
            event.kind,
            issuer=event.issuer,
            kid=event.kid,
            thumbprint=event.thumbprint,
            reason=None if reason is None else str(reason),
            actor=None if actor is None else str(actor),
            timestamp=event.timestamp,
            **detail,
        )

    def record(
        self,
        action: str,
        *,
        issuer: str | None,
        kid: str | None = None,
        thumbprint: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        timestamp: float | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Write one audit record and return it.

        Args:
            action: What happened, e.g. ``key_removed`` or ``subject_cut_off``.
            issuer: The issuer concerned.
            kid: The key id concerned, if any.
            thumbprint: The RFC 7638 thumbprint of the key concerned, if any.
            reason: Why (an operator's words or a machine reason).
            actor: Who did it, for admin actions.
            timestamp: Unix time; default: now.
            fields: Any further detail; token-like values are replaced by a hash.
        """
        if timestamp is None:
            timestamp = self._clock() if self._clock is not None else _now()
        record: dict[str, Any] = {
            "time": datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds"),
            "timestamp": timestamp,
            "action": action,
            "issuer": issuer,
            "kid": kid,
            "thumbprint": thumbprint,
            "reason": reason,
        }
        if actor is not None:
            record["actor"] = actor
        for name, value in fields.items():
            if name not in record:
                record[name] = _safe(name, value)
        line = json.dumps(record, separators=(",", ":"), sort_keys=False, default=str)
        self.logger.info(line)
        return record


def _now() -> float:
    return datetime.now(UTC).timestamp()


def fan_out(*handlers: EventHandler) -> EventHandler:
    """One event handler that calls each of ``handlers`` in turn.

    A handler that raises is logged and skipped: observers never break validation.
    """
    chosen = tuple(handlers)

    def handle(event: Event) -> None:
        for handler in chosen:
            try:
                handler(event)
            except Exception:
                logger.exception("event handler %r failed on %s", handler, event.kind)

    return handle
