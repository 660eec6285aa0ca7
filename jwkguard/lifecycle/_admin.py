"""The admin API: change lifecycle state for the whole fleet, with an audit event each time.

Each operation builds one :class:`~jwkguard.lifecycle.LifecycleChange` (shared by the sync and
async method), hands it to the store, which stores and broadcasts it, then emits an audit
event saying who did what, when and why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final

from .._events import Event, EventHandler, log_event
from ..errors import ConfigurationError
from ._replica import ChangeOp, KeyField, LifecycleChange
from ._store import LifecycleStore

__all__ = ["LifecycleAdmin"]

When = float | int | datetime

_AUDIT_KINDS: Final[dict[ChangeOp, str]] = {
    "revoke_token": "token_revoked",
    "cut_off_subject": "subject_cut_off",
    "cut_off_client": "client_cut_off",
    "distrust_key": "key_distrusted",
    "trust_key": "key_trusted",
    "force_refresh": "force_refresh",
}


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string")
    return value


def _seconds(name: str, value: When) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigurationError(f"{name} must be an aware datetime (e.g. UTC)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be unix seconds or an aware datetime")
    return float(value)


class LifecycleAdmin:
    """Revoke tokens, cut off subjects and clients, distrust keys and force key refreshes.

    Every change goes through the store: with a :class:`RedisStore` it is stored in Redis and
    broadcast, so every instance enforces it within its consistency window (normally
    milliseconds, at most one heartbeat). Every method has an ``a``-prefixed async twin, takes
    ``by`` (who) and ``why`` for the audit trail, and returns the change it made.

    Args:
        store: The same store the instances' :class:`Lifecycle` uses.
        clock: Unix time for "now"; default ``time.time``.
        on_event: Receives the audit events; default: the ``jwkguard.events`` logger.
    """

    def __init__(
        self,
        store: LifecycleStore,
        *,
        clock: Callable[[], float] | None = None,
        on_event: EventHandler | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or time.time
        self.on_event: EventHandler = on_event or log_event

    # -- the operations (sync) ------------------------------------------------------------

    def revoke_token(
        self, token_id: str, *, issuer: str, expires_at: When, by: str, why: str
    ) -> LifecycleChange:
        """Refuse the token with this ``jti`` until ``expires_at`` (its ``exp``)."""
        return self._submit(self._revoke(token_id, issuer, expires_at, by, why))

    def cut_off_subject(
        self, subject: str, *, issuer: str, before: When | None = None, by: str, why: str
    ) -> LifecycleChange:
        """Refuse every token for ``subject`` issued before ``before`` (default: now)."""
        return self._submit(self._cut_off("cut_off_subject", subject, issuer, before, by, why))

    def cut_off_client(
        self, client_id: str, *, issuer: str, before: When | None = None, by: str, why: str
    ) -> LifecycleChange:
        """Refuse every token for ``client_id`` issued before ``before`` (default: now)."""
        return self._submit(self._cut_off("cut_off_client", client_id, issuer, before, by, why))

    def distrust_key(
        self,
        *,
        issuer: str,
        kid: str | None = None,
        thumbprint: str | None = None,
        by: str,
        why: str,
    ) -> LifecycleChange:
        """Refuse tokens signed by this key (``kid`` or RFC 7638 thumbprint) until trusted."""
        return self._submit(self._key("distrust_key", issuer, kid, thumbprint, by, why))

    def trust_key(
        self,
        *,
        issuer: str,
        kid: str | None = None,
        thumbprint: str | None = None,
        by: str,
        why: str,
    ) -> LifecycleChange:
        """Lift a distrust made with the same ``kid`` or thumbprint."""
        return self._submit(self._key("trust_key", issuer, kid, thumbprint, by, why))

    def force_refresh(self, issuer: str, *, by: str, why: str) -> LifecycleChange:
        """Ask every instance to refetch ``issuer``'s JWKS now (best effort, not stored)."""
        return self._submit(self._change("force_refresh", issuer, by, why))

    # -- the operations (async) -----------------------------------------------------------

    async def arevoke_token(
        self, token_id: str, *, issuer: str, expires_at: When, by: str, why: str
    ) -> LifecycleChange:
        """``revoke_token`` without blocking the event loop."""
        return await self._asubmit(self._revoke(token_id, issuer, expires_at, by, why))

    async def acut_off_subject(
        self, subject: str, *, issuer: str, before: When | None = None, by: str, why: str
    ) -> LifecycleChange:
        """``cut_off_subject`` without blocking the event loop."""
        return await self._asubmit(
            self._cut_off("cut_off_subject", subject, issuer, before, by, why)
        )

    async def acut_off_client(
        self, client_id: str, *, issuer: str, before: When | None = None, by: str, why: str
    ) -> LifecycleChange:
        """``cut_off_client`` without blocking the event loop."""
        return await self._asubmit(
            self._cut_off("cut_off_client", client_id, issuer, before, by, why)
        )

    async def adistrust_key(
        self,
        *,
        issuer: str,
        kid: str | None = None,
        thumbprint: str | None = None,
        by: str,
        why: str,
    ) -> LifecycleChange:
        """``distrust_key`` without blocking the event loop."""
        return await self._asubmit(self._key("distrust_key", issuer, kid, thumbprint, by, why))

    async def atrust_key(
        self,
        *,
        issuer: str,
        kid: str | None = None,
        thumbprint: str | None = None,
        by: str,
        why: str,
    ) -> LifecycleChange:
        """``trust_key`` without blocking the event loop."""
        return await self._asubmit(self._key("trust_key", issuer, kid, thumbprint, by, why))

    async def aforce_refresh(self, issuer: str, *, by: str, why: str) -> LifecycleChange:
        """``force_refresh`` without blocking the event loop."""
        return await self._asubmit(self._change("force_refresh", issuer, by, why))

    # -- shared core ----------------------------------------------------------------------

    def _change(
        self,
        op: ChangeOp,
        issuer: str,
        by: str,
        why: str,
        *,
        value: str | None = None,
        key_field: KeyField | None = None,
        at: float | None = None,
    ) -> LifecycleChange:
        return LifecycleChange(
            op=op,
            issuer=_text("issuer", issuer),
            value=value,
            key_field=key_field,
            at=at,
            by=_text("by", by),
            why=_text("why", why),
            timestamp=self.clock(),
        )

    def _revoke(
        self, token_id: str, issuer: str, expires_at: When, by: str, why: str
    ) -> LifecycleChange:
        return self._change(
            "revoke_token",
            issuer,
            by,
            why,
            value=_text("token_id", token_id),
            at=_seconds("expires_at", expires_at),
        )

    def _cut_off(
        self, op: ChangeOp, value: str, issuer: str, before: When | None, by: str, why: str
    ) -> LifecycleChange:
        at = self.clock() if before is None else _seconds("before", before)
        name = "subject" if op == "cut_off_subject" else "client_id"
        return self._change(op, issuer, by, why, value=_text(name, value), at=at)

    def _key(
        self,
        op: ChangeOp,
        issuer: str,
        kid: str | None,
        thumbprint: str | None,
        by: str,
        why: str,
    ) -> LifecycleChange:
        if (kid is None) == (thumbprint is None):
            raise ConfigurationError("name the key by exactly one of kid or thumbprint")
        if kid is not None:
            return self._change(op, issuer, by, why, value=_text("kid", kid), key_field="kid")
        return self._change(
            op, issuer, by, why, value=_text("thumbprint", thumbprint), key_field="thumbprint"
        )

    def _submit(self, change: LifecycleChange) -> LifecycleChange:
        self.store.publish(change)
        self._audit(change)
        return change

    async def _asubmit(self, change: LifecycleChange) -> LifecycleChange:
        await self.store.apublish(change)
        self._audit(change)
        return change

    def _audit(self, change: LifecycleChange) -> None:
        is_key = change.op in ("distrust_key", "trust_key")
        detail: dict[str, object] = {"by": change.by, "why": change.why, "op": change.op}
        if not is_key and change.value is not None:
            detail["value"] = change.value
        if change.at is not None:
            detail["at"] = change.at
        self.on_event(
            Event(
                kind=_AUDIT_KINDS[change.op],
                issuer=change.issuer,
                timestamp=change.timestamp,
                kid=change.value if is_key and change.key_field == "kid" else None,
                thumbprint=change.value if is_key and change.key_field == "thumbprint" else None,
                detail=detail,
            )
        )
