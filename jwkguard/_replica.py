"""Lifecycle state held in every process: revocations, cut-offs and distrusted keys.

Sans-IO: a :class:`Replica` never reads the clock or touches the network. Stores feed it
:class:`LifecycleChange` records (from an admin call, a pub/sub message or a full resync) and the
lifecycle policy asks it, on the hot path, whether a verified token must be refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from ._claims_result import Claims

__all__ = ["ChangeOp", "KeyField", "LifecycleChange", "Replica", "Verdict"]

ChangeOp = Literal[
    "revoke_token",
    "cut_off_subject",
    "cut_off_client",
    "distrust_key",
    "trust_key",
    "force_refresh",
]
_OPS: Final = frozenset(
    {
        "revoke_token",
        "cut_off_subject",
        "cut_off_client",
        "distrust_key",
        "trust_key",
        "force_refresh",
    }
)
KeyField = Literal["kid", "thumbprint"]

Verdict = Literal["key_distrusted", "revoked", "subject_cut_off", "client_cut_off"]


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    """One administrative change to the lifecycle state, as broadcast to the fleet.

    Attributes:
        op: What to do: ``revoke_token``, ``cut_off_subject``, ``cut_off_client``,
            ``distrust_key``, ``trust_key`` or ``force_refresh``.
        issuer: The configured issuer (``iss``) it concerns.
        value: The ``jti``, ``sub``, client id, ``kid`` or thumbprint; ``None`` for
            ``force_refresh``.
        key_field: For ``distrust_key``/``trust_key``: ``"kid"`` or ``"thumbprint"``.
        at: For ``revoke_token`` the token's expiry; for cut-offs the cut-off time ``T``
            (tokens with ``iat < T`` are refused). Unix seconds.
        by: Who made the change (audit).
        why: Why (audit).
        timestamp: When the change was made, unix seconds (audit).
    """

    op: ChangeOp
    issuer: str
    value: str | None = None
    key_field: KeyField | None = None
    at: float | None = None
    by: str = ""
    why: str = ""
    timestamp: float = 0.0

    def to_json(self) -> str:
        """The wire form used on the pub/sub channel."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LifecycleChange:
        """Parse the wire form; raises ``ValueError`` on anything unexpected."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a change must be a JSON object")
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LifecycleChange:
        """Build a change from a decoded mapping, checking every field's type."""
        op, issuer = data.get("op"), data.get("issuer")
        if op not in _OPS or not isinstance(issuer, str):
            raise ValueError("unknown change")
        value, key_field, at = data.get("value"), data.get("key_field"), data.get("at")
        by, why, timestamp = data.get("by", ""), data.get("why", ""), data.get("timestamp", 0.0)
        if value is not None and not isinstance(value, str):
            raise ValueError("change value must be a string")
        if key_field not in (None, "kid", "thumbprint"):
            raise ValueError("change key_field must be kid or thumbprint")
        if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
            raise ValueError("change time must be a number")
        if not isinstance(by, str) or not isinstance(why, str):
            raise ValueError("change audit fields must be strings")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise ValueError("change timestamp must be a number")
        return cls(
            op=op,
            issuer=issuer,
            value=value,
            key_field=key_field,
            at=None if at is None else float(at),
            by=by,
            why=why,
            timestamp=float(timestamp),
        )


class Replica:
    """The local copy of the fleet's lifecycle state, read without IO on every request.

    Writers (one store at a time, under the store's lock) replace or update the dicts;
    readers only call ``dict.get``, which is safe against a concurrent single update.
    """

    __slots__ = ("client_cutoffs", "distrusted", "revoked", "subject_cutoffs")

    def __init__(self) -> None:
        # (issuer, jti) -> token expiry
        self.revoked: dict[tuple[str, str], float] = {}
        # (issuer, sub) -> cut-off time; (issuer, client id) -> cut-off time
        self.subject_cutoffs: dict[tuple[str, str], float] = {}
        self.client_cutoffs: dict[tuple[str, str], float] = {}
        # (issuer, "kid" | "thumbprint", value) -> when distrusted
        self.distrusted: dict[tuple[str, str, str], float] = {}

    # -- reading (the hot path) -----------------------------------------------------------

    def verdict(self, claims: Claims, now: float) -> Verdict | None:
        """Why ``claims`` must be refused, or ``None`` if nothing here refuses them.

        The order gives the most fundamental reason first: the key, then the token, then
        the identity it speaks for.
        """
        issuer = claims.issuer
        distrusted = self.distrusted
        if distrusted and (
            (issuer, "thumbprint", claims.thumbprint) in distrusted
            or (claims.key_id is not None and (issuer, "kid", claims.key_id) in distrusted)
        ):
            return "key_distrusted"
        if self.revoked:
            jti = claims.token_id
            if jti is not None:
                expiry = self.revoked.get((issuer, jti))
                if expiry is not None and expiry > now:
                    return "revoked"
        if self.subject_cutoffs or self.client_cutoffs:
            return self._cut_off(claims, issuer)
        return None

    def _cut_off(self, claims: Claims, issuer: str) -> Verdict | None:
        iat = claims.get("iat")
        # A token without a usable `iat` cannot prove it was issued after the cut-off.
        issued = (
            float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else -math.inf
        )
        subject = claims.subject
        if subject is not None:
            cutoff = self.subject_cutoffs.get((issuer, subject))
            if cutoff is not None and issued < cutoff:
                return "subject_cut_off"
        client = claims.client_id
        if client is not None:
            cutoff = self.client_cutoffs.get((issuer, client))
            if cutoff is not None and issued < cutoff:
                return "client_cut_off"
        return None

    def counts(self) -> dict[str, int]:
        """How many entries of each kind are held (for metrics and tests)."""
        return {
            "revoked": len(self.revoked),
            "subject_cutoffs": len(self.subject_cutoffs),
            "client_cutoffs": len(self.client_cutoffs),
            "distrusted": len(self.distrusted),
        }

    def __bool__(self) -> bool:
        return bool(self.revoked or self.subject_cutoffs or self.client_cutoffs or self.distrusted)

    # -- writing (stores only, under their lock) ------------------------------------------

    def apply(self, change: LifecycleChange) -> None:
        """Apply one change; ``force_refresh`` carries no state and is ignored here."""
        op, issuer, value = change.op, change.issuer, change.value
        if op == "force_refresh" or value is None:
            return
        if op == "revoke_token" and change.at is not None:
            self.revoked[(issuer, value)] = max(change.at, self.revoked.get((issuer, value), 0.0))
        elif op == "cut_off_subject" and change.at is not None:
            self.subject_cutoffs[(issuer, value)] = change.at
        elif op == "cut_off_client" and change.at is not None:
            self.client_cutoffs[(issuer, value)] = change.at
        elif op == "distrust_key" and change.key_field is not None:
            self.distrusted[(issuer, change.key_field, value)] = change.timestamp
        elif op == "trust_key" and change.key_field is not None:
            self.distrusted.pop((issuer, change.key_field, value), None)

    def replace(self, other: Replica) -> None:
        """Take ``other``'s entries (a full resync): each dict is swapped in one step."""
        self.revoked = other.revoked
        self.subject_cutoffs = other.subject_cutoffs
        self.client_cutoffs = other.client_cutoffs
        self.distrusted = other.distrusted

    def prune(self, now: float) -> int:
        """Drop revocations of tokens that have expired by ``now``; returns how many."""
        live = {key: expiry for key, expiry in self.revoked.items() if expiry > now}
        dropped = len(self.revoked) - len(live)
        if dropped:
            self.revoked = live
        return dropped

    def changes(self) -> Iterator[LifecycleChange]:
        """Every entry as the change that would recreate it (to restore a store)."""
        for (issuer, jti), expiry in list(self.revoked.items()):
            yield LifecycleChange(op="revoke_token", issuer=issuer, value=jti, at=expiry)
        for (issuer, subject), cutoff in list(self.subject_cutoffs.items()):
            yield LifecycleChange(op="cut_off_subject", issuer=issuer, value=subject, at=cutoff)
        for (issuer, client), cutoff in list(self.client_cutoffs.items()):
            yield LifecycleChange(op="cut_off_client", issuer=issuer, value=client, at=cutoff)
        for (issuer, field, value), when in list(self.distrusted.items()):
            key_field: KeyField = "kid" if field == "kid" else "thumbprint"
            yield LifecycleChange(
                op="distrust_key", issuer=issuer, value=value, key_field=key_field, timestamp=when
            )
