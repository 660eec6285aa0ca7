"""Where the fleet's lifecycle state lives in Redis, and the Lua scripts that change it.

Layout (``P`` is the prefix)::

    P{lifecycle}:meta            hash   epoch (random id of this Redis's data), n (counter)
    P{lifecycle}:revoked         zset   member ["iss","jti"], score = token expiry
    P{lifecycle}:cutoff:subject  hash   field ["iss","sub"] -> cut-off time
    P{lifecycle}:cutoff:client   hash   field ["iss","client_id"] -> cut-off time
    P{lifecycle}:distrust        hash   field ["iss","kid"|"thumbprint","value"] -> when
    P once:<digest>              string replay ledger entry, expires with the token
    P use:{<digest>}:n / :a      reuse-watch counter and address set, expire with the window
    P changes                    pub/sub channel: "<epoch> <n> <change json>", or "- - <json>"

Every write runs as one Lua script that changes the data, bumps ``n`` and publishes, so
messages carry the version they produced and replicas apply them strictly in order. The
``{...}`` hash tags put every key one script touches in one Redis Cluster slot (a script's
keys must share a slot there); snapshots are a read-only script too, so nothing needs MULTI.

Everything here is sans-IO: it names keys, builds script arguments and reads script results.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..lifecycle._replica import ChangeOp, LifecycleChange, Replica
from ..lifecycle._store import TokenUsage

__all__ = ["DATA_KEYS", "RedisKeys", "Scripts", "Snapshot", "parse_snapshot", "usage"]

# Writes: change the data, bump the counter, publish the change with the version it produced.
_WRITE = """
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[7])
local cmd = ARGV[1]
if cmd == 'ZADD' then
  local old = redis.call('ZSCORE', KEYS[2], ARGV[2])
  if (not old) or tonumber(old) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
elseif cmd == 'HSET' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
elseif cmd == 'HDEL' then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. n .. ' ' .. ARGV[6])
return {epoch, n}
"""

# Restore: after Redis lost its data (a restart without persistence, a failover to an empty
# node), merge a replica's live entries back. Only ever adds, so concurrent restores from
# several instances give the union; refuses if the epoch moved again meanwhile.
_RESTORE = """
local current = redis.call('HGET', KEYS[1], 'epoch')
if not current then current = '' end
if current ~= ARGV[1] then return 0 end
if current == '' then redis.call('HSET', KEYS[1], 'epoch', ARGV[2]) end
local i = 5
for k = 2, 5 do
  local count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, count do
    local field, value = ARGV[i], ARGV[i + 1]
    i = i + 2
    if k == 2 then
      local old = redis.call('ZSCORE', KEYS[2], field)
      if tonumber(value) > tonumber(ARGV[4]) and ((not old) or tonumber(old) < tonumber(value)) then
        redis.call('ZADD', KEYS[2], value, field)
      end
    else
      redis.call('HSETNX', KEYS[k], field, value)
    end
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('PUBLISH', ARGV[3], epoch .. ' ' .. n .. ' {}')
return 1
"""

# Snapshot: the whole state in one atomic read (a script, not MULTI, so Cluster serves it).
_SNAPSHOT = """
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES'),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('HGETALL', KEYS[5]),
}
"""

# Reuse watch: one round trip counts the use and the address within a fixed window.
_RECORD_USE = """
local added = redis.call('SADD', KEYS[2], ARGV[1])
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return {n, redis.call('SCARD', KEYS[2]), added}
"""

# The data keys, in the order the restore and snapshot scripts take them.
DATA_KEYS = ("revoked", "cutoff:subject", "cutoff:client", "distrust")


@dataclass(frozen=True, slots=True)
class Scripts:
    """The Lua scripts registered on one client (registering does no IO)."""

    write: Any
    restore: Any
    record_use: Any
    snapshot: Any

    @classmethod
    def register(cls, client: Any) -> Scripts:
        """The scripts on ``client`` (sync or asyncio: the calls are awaited on the latter)."""
        return cls(
            write=client.register_script(_WRITE),
            restore=client.register_script(_RESTORE),
            record_use=client.register_script(_RECORD_USE),
            snapshot=client.register_script(_SNAPSHOT),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole state as read at one version."""

    epoch: str | None
    n: int
    replica: Replica


class RedisKeys:
    """The names of one prefix's keys and channel, and the arguments of its scripts."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # One hash tag for the whole state: every script's keys share one Cluster slot.
        self.state = {name: f"{prefix}{{lifecycle}}:{name}" for name in ("meta", *DATA_KEYS)}
        self.channel = prefix + "changes"

    def snapshot_keys(self) -> list[str]:
        """The meta key and the data keys, in the order the snapshot and restore scripts take."""
        return [self.state["meta"], *(self.state[name] for name in DATA_KEYS)]

    def claim_call(self, issuer: str, token_id: str, ttl: float) -> dict[str, Any]:
        """The replay ledger's ``SET NX PX`` for a token, as keyword arguments of ``set``."""
        key = f"{self.prefix}once:{_token_digest(issuer, token_id)}"
        return {"name": key, "value": "1", "nx": True, "px": max(1, int(ttl * 1000))}

    def use_call(
        self, issuer: str, token_id: str, address: str, window: float
    ) -> dict[str, list[Any]]:
        """The reuse-watch script's keys and arguments for one use from ``address``."""
        base = f"{self.prefix}use:{{{_token_digest(issuer, token_id)}}}"  # one slot for both
        return {"keys": [base + ":n", base + ":a"], "args": [address, max(1, int(window * 1000))]}

    def write_call(self, change: LifecycleChange, now: float) -> tuple[list[str], list[str]]:
        """The write script's keys and arguments for ``change`` (not ``force_refresh``)."""
        name, field, value = _storage(change)
        if change.op == "revoke_token":
            command = "ZADD"
        else:
            command = "HDEL" if change.op == "trust_key" else "HSET"
        args = [
            command,
            field,
            value,
            repr(now),
            self.channel,
            change.to_json(),
            secrets.token_hex(8),
        ]
        return [self.state["meta"], self.state[name]], args

    def restore_call(
        self, changes: Iterable[LifecycleChange], epoch: str | None, now: float
    ) -> tuple[list[str], list[str]]:
        """The restore script's keys and arguments: merge ``changes`` into data at ``epoch``."""
        groups: dict[str, list[str]] = {name: [] for name in DATA_KEYS}
        for change in changes:
            if change.op == "revoke_token" and (change.at or 0.0) <= now:
                continue
            name, field, value = _storage(change)
            groups[name] += [field, value]
        args: list[str] = [epoch or "", secrets.token_hex(8), self.channel, repr(now)]
        for name in DATA_KEYS:
            args += [str(len(groups[name]) // 2), *groups[name]]
        return self.snapshot_keys(), args


def _token_digest(issuer: str, token_id: str) -> str:
    return hashlib.sha256(f"{len(issuer)}:{issuer}{token_id}".encode()).hexdigest()[:40]


def _storage(change: LifecycleChange) -> tuple[str, str, str]:
    """Where a change's entry lives: (data key name, field or member, value or score)."""
    issuer, value = change.issuer, change.value or ""
    if change.op == "revoke_token":
        return "revoked", _field(issuer, value), repr(change.at)
    if change.op == "cut_off_subject":
        return "cutoff:subject", _field(issuer, value), repr(change.at)
    if change.op == "cut_off_client":
        return "cutoff:client", _field(issuer, value), repr(change.at)
    return "distrust", _field(issuer, change.key_field or "", value), repr(change.timestamp)


def _field(*parts: str) -> str:
    return json.dumps(parts, separators=(",", ":"))


def _parse_field(text: str, size: int) -> tuple[str, ...] | None:
    try:
        parts = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parts, list) or len(parts) != size:
        return None
    if not all(isinstance(part, str) for part in parts):
        return None
    return tuple(parts)


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {str(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def parse_snapshot(raw: list[Any]) -> Snapshot:
    """The snapshot script's result as a :class:`Snapshot`; malformed entries are skipped."""
    meta_flat, revoked_flat, subjects_flat, clients_flat, distrust_flat = raw
    meta, subjects, clients = _pairs(meta_flat), _pairs(subjects_flat), _pairs(clients_flat)
    replica = Replica()
    for member, score in _pairs(revoked_flat).items():
        pair = _parse_field(member, 2)
        if pair is not None:
            replica.apply(
                LifecycleChange(op="revoke_token", issuer=pair[0], value=pair[1], at=float(score))
            )
    cutoffs: tuple[tuple[ChangeOp, dict[str, str]], ...] = (
        ("cut_off_subject", subjects),
        ("cut_off_client", clients),
    )
    for op, source in cutoffs:
        for field, value in source.items():
            pair, at = _parse_field(field, 2), _number(value)
            if pair is not None and at is not None:
                replica.apply(LifecycleChange(op=op, issuer=pair[0], value=pair[1], at=at))
    for field, value in _pairs(distrust_flat).items():
        triple = _parse_field(field, 3)
        if triple is not None and triple[1] in ("kid", "thumbprint"):
            replica.apply(
                LifecycleChange(
                    op="distrust_key",
                    issuer=triple[0],
                    value=triple[2],
                    key_field="kid" if triple[1] == "kid" else "thumbprint",
                    timestamp=_number(value) or 0.0,
                )
            )
    epoch = meta.get("epoch") or None
    return Snapshot(epoch, int(meta.get("n") or 0), replica)


def usage(result: Any) -> TokenUsage:
    """The reuse-watch script's result."""
    uses, addresses, added = (int(item) for item in result)
    return TokenUsage(uses=uses, addresses=addresses, new_address=bool(added))
