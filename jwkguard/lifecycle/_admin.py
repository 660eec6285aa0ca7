"""The admin API: change lifecycle state for the whole fleet, with an audit event each time.

Each operation builds one :class:`~jwkguard.lifecycle.LifecycleChange` (shared by the sync and
async method), hands it to the store, which stores and broadcasts it, then emits an audit
event saying who did what, when and why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Final, NotRequired, TypedDict, Unpack

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


class _Audit(TypedDict):
    """What every operation takes for the audit trail: who made the change (``by``) and why."""

    by: str
    why: str


class _Revocation(_Audit):
    """``revoke_token``'s keywords: the token's issuer and expiry."""

    issuer: str
    expires_at: When


class _CutOff(_Audit):
    """The keywords of the cut-offs: the issuer and the cut-off time (default: now)."""

    issuer: str
    before: NotRequired[When | None]


class _KeyName(_Audit):
    """The keywords naming a key: its issuer and exactly one of ``kid`` and thumbprint."""

    issuer: str
    kid: NotRequired[str | None]
    thumbprint: NotRequired[str | None]


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

    def revoke_token(self, token_id: str, **change: Unpack[_Revocation]) -> LifecycleChange:
        """Refuse the token with this ``jti`` until ``expires_at`` (its ``exp``)."""
        return self._submit(self._revoke(token_id, **change))

    def cut_off_subject(self, subject: str, **change: Unpack[_CutOff]) -> LifecycleChange:
        """Refuse every token for ``subject`` issued before ``before`` (default: now)."""
        return self._submit(self._cut_off("cut_off_subject", subject, **change))

    def cut_off_client(self, client_id: str, **change: Unpack[_CutOff]) -> LifecycleChange:
        """Refuse every token for ``client_id`` issued before ``before`` (default: now)."""
        return self._submit(self._cut_off("cut_off_client", client_id, **change))

    def distrust_key(self, **key: Unpack[_KeyName]) -> LifecycleChange:
        """Refuse tokens signed by this key (``kid`` or RFC 7638 thumbprint) until trusted."""
        return self._submit(self._key("distrust_key", **key))

    def trust_key(self, **key: Unpack[_KeyName]) -> LifecycleChange:
        """Lift a distrust made with the same ``kid`` or thumbprint."""
        return self._submit(self._key("trust_key", **key))

    def force_refresh(self, issuer: str, **audit: Unpack[_Audit]) -> LifecycleChange:
        """Ask every instance to refetch ``issuer``'s JWKS now (best effort, not stored)."""
        return self._submit(self._refresh(issuer, **audit))

    # -- the operations (async) -----------------------------------------------------------

    async def arevoke_token(self, token_id: str, **change: Unpack[_Revocation]) -> LifecycleChange:
        """``revoke_token`` without blocking the event loop."""
        return await self._asubmit(self._revoke(token_id, **change))

    async def acut_off_subject(self, subject: str, **change: Unpack[_CutOff]) -> LifecycleChange:
        """``cut_off_subject`` without blocking the event loop."""
        return await self._asubmit(self._cut_off("cut_off_subject", subject, **change))

    async def acut_off_client(self, client_id: str, **change: Unpack[_CutOff]) -> LifecycleChange:
        """``cut_off_client`` without blocking the event loop."""
        return await self._asubmit(self._cut_off("cut_off_client", client_id, **change))

    async def adistrust_key(self, **key: Unpack[_KeyName]) -> LifecycleChange:
        """``distrust_key`` without blocking the event loop."""
        return await self._asubmit(self._key("distrust_key", **key))

    async def atrust_key(self, **key: Unpack[_KeyName]) -> LifecycleChange:
        """``trust_key`` without blocking the event loop."""
        return await self._asubmit(self._key("trust_key", **key))

    async def aforce_refresh(self, issuer: str, **audit: Unpack[_Audit]) -> LifecycleChange:
        """``force_refresh`` without blocking the event loop."""
        return await self._asubmit(self._refresh(issuer, **audit))

    # -- shared core: the change each operation makes, checked and stamped for the audit ----

    def _revoke(
        self, token_id: str, *, issuer: str, expires_at: When, **audit: Unpack[_Audit]
    ) -> LifecycleChange:
        value = _text("token_id", token_id)
        at = _seconds("expires_at", expires_at)
        change = LifecycleChange("revoke_token", _text("issuer", issuer), value, at=at)
        return self._stamped(change, **audit)

    def _cut_off(
        self,
        op: ChangeOp,
        value: str,
        *,
        issuer: str,
        before: When | None = None,
        **audit: Unpack[_Audit],
    ) -> LifecycleChange:
        at = self.clock() if before is None else _seconds("before", before)
        value = _text("subject" if op == "cut_off_subject" else "client_id", value)
        change = LifecycleChange(op, _text("issuer", issuer), value, at=at)
        return self._stamped(change, **audit)

    def _key(
        self,
        op: ChangeOp,
        *,
        issuer: str,
        kid: str | None = None,
        thumbprint: str | None = None,
        **audit: Unpack[_Audit],
    ) -> LifecycleChange:
        if (kid is None) == (thumbprint is None):
            raise ConfigurationError("name the key by exactly one of kid or thumbprint")
        key_field: KeyField = "kid" if kid is not None else "thumbprint"
        value = _text(key_field, kid if kid is not None else thumbprint)
        change = LifecycleChange(op, _text("issuer", issuer), value, key_field)
        return self._stamped(change, **audit)

    def _refresh(self, issuer: str, **audit: Unpack[_Audit]) -> LifecycleChange:
        return self._stamped(LifecycleChange("force_refresh", _text("issuer", issuer)), **audit)

    def _stamped(self, change: LifecycleChange, *, by: str, why: str) -> LifecycleChange:
        """``change`` with who made it, why, and now (the audit fields)."""
        return replace(change, by=_text("by", by), why=_text("why", why), timestamp=self.clock())

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
