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
from typing import Any, Final, Literal, get_args

from .._claims_result import Claims

__all__ = ["ChangeOp", "KeyField", "LifecycleChange", "Replica", "Verdict"]

ChangeOp = Literal[
    "revoke_token",
    "cut_off_subject",
    "cut_off_client",
    "distrust_key",
    "trust_key",
    "force_refresh",
]
_OPS: Final[frozenset[ChangeOp]] = frozenset(get_args(ChangeOp))
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


class _Entries:
    """One issuer's entries. Each dict maps a value to a time (see ``Replica``)."""

    __slots__ = ("clients", "kids", "revoked", "subjects", "thumbprints")

    def __init__(self) -> None:
        self.revoked: dict[str, float] = {}  # jti -> token expiry
        self.subjects: dict[str, float] = {}  # sub -> cut-off time
        self.clients: dict[str, float] = {}  # client id -> cut-off time
        self.kids: dict[str, float] = {}  # distrusted kid -> when
        self.thumbprints: dict[str, float] = {}  # distrusted thumbprint -> when

    def __bool__(self) -> bool:
        return bool(self.revoked or self.subjects or self.clients or self.kids or self.thumbprints)


class Replica:
    """The local copy of the fleet's lifecycle state, read without IO on every request.

    Entries are grouped by issuer, so a request costs one lookup for an issuer without any
    and one plain string lookup per kind of entry otherwise. Writers (one store at a time,
    under the store's lock) update single entries or swap in a whole new state; readers only
    call ``dict.get``, which is safe against a concurrent single update.
    """

    __slots__ = ("_issuers",)

    def __init__(self) -> None:
        self._issuers: dict[str, _Entries] = {}

    # -- reading (the hot path) -----------------------------------------------------------

    def verdict(self, claims: Claims, now: float) -> Verdict | None:
        """Why ``claims`` must be refused, or ``None`` if nothing here refuses them.

        The order gives the most fundamental reason first: the key, then the token, then
        the identity it speaks for. A token without a usable ``iat`` counts as issued before
        any cut-off: it cannot prove otherwise.
        """
        # Every request passes here: read the verified payload directly rather than through
        # the typed accessors, and skip each kind of entry the issuer does not have.
        payload = claims._payload
        entries = self._issuers.get(payload["iss"])
        if entries is None:
            return None
        if entries.thumbprints and claims._thumbprint in entries.thumbprints:
            return "key_distrusted"
        if entries.kids:
            kid = claims._key_id
            if kid is not None and kid in entries.kids:
                return "key_distrusted"
        if entries.revoked:
            jti = payload.get("jti")
            if type(jti) is str:
                expiry = entries.revoked.get(jti)
                if expiry is not None and expiry > now:
                    return "revoked"
        if entries.subjects:
            subject = payload.get("sub")
            if type(subject) is str:
                cutoff = entries.subjects.get(subject)
                if cutoff is not None and _issued(payload) < cutoff:
                    return "subject_cut_off"
        if entries.clients:
            # As Claims.client_id: `client_id` (RFC 9068), else `azp`.
            client = payload.get("client_id", payload.get("azp"))
            if type(client) is str:
                cutoff = entries.clients.get(client)
                if cutoff is not None and _issued(payload) < cutoff:
                    return "client_cut_off"
        return None

    def counts(self) -> dict[str, int]:
        """How many entries of each kind are held (for metrics and tests)."""
        groups = list(self._issuers.values())
        return {
            "revoked": sum(len(e.revoked) for e in groups),
            "subject_cutoffs": sum(len(e.subjects) for e in groups),
            "client_cutoffs": sum(len(e.clients) for e in groups),
            "distrusted": sum(len(e.kids) + len(e.thumbprints) for e in groups),
        }

    def __bool__(self) -> bool:
        return any(list(self._issuers.values()))

    # -- writing (stores only, under their lock) ------------------------------------------

    def apply(self, change: LifecycleChange) -> None:
        """Apply one change; ``force_refresh`` carries no state and is ignored here."""
        op, value = change.op, change.value
        if op == "force_refresh" or value is None:
            return
        entries = self._issuers.get(change.issuer)
        if entries is None:
            entries = self._issuers[change.issuer] = _Entries()
        at = change.at
        if op == "revoke_token" and at is not None:
            entries.revoked[value] = max(at, entries.revoked.get(value, at))
        elif op == "cut_off_subject" and at is not None:
            entries.subjects[value] = at
        elif op == "cut_off_client" and at is not None:
            entries.clients[value] = at
        elif op in ("distrust_key", "trust_key") and change.key_field is not None:
            keys = entries.kids if change.key_field == "kid" else entries.thumbprints
            if op == "distrust_key":
                keys[value] = change.timestamp
            else:
                keys.pop(value, None)

    def replace(self, other: Replica) -> None:
        """Take ``other``'s entries (a full resync) in one step."""
        self._issuers = other._issuers

    def prune(self, now: float) -> int:
        """Drop revocations of tokens that have expired by ``now``; returns how many."""
        dropped = 0
        for entries in list(self._issuers.values()):
            live = {jti: expiry for jti, expiry in list(entries.revoked.items()) if expiry > now}
            if len(live) != len(entries.revoked):
                dropped += len(entries.revoked) - len(live)
                entries.revoked = live
        return dropped

    def changes(self) -> Iterator[LifecycleChange]:
        """Every entry as the change that would recreate it (to restore a store)."""
        for issuer, entries in list(self._issuers.items()):
            for jti, expiry in list(entries.revoked.items()):
                yield LifecycleChange(op="revoke_token", issuer=issuer, value=jti, at=expiry)
            for subject, cutoff in list(entries.subjects.items()):
                yield LifecycleChange(op="cut_off_subject", issuer=issuer, value=subject, at=cutoff)
            for client, cutoff in list(entries.clients.items()):
                yield LifecycleChange(op="cut_off_client", issuer=issuer, value=client, at=cutoff)
            for field, keys in (("kid", entries.kids), ("thumbprint", entries.thumbprints)):
                key_field: KeyField = "kid" if field == "kid" else "thumbprint"
                for value, when in list(keys.items()):
                    yield LifecycleChange(
                        op="distrust_key",
                        issuer=issuer,
                        value=value,
                        key_field=key_field,
                        timestamp=when,
                    )


def _issued(payload: Mapping[str, Any]) -> float:
    iat = payload.get("iat")
    return iat if type(iat) is int or type(iat) is float else -math.inf
