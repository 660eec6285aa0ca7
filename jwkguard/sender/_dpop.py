"""DPoP proofs (RFC 9449): proof-of-possession for access tokens bound with ``cnf.jkt``.

The request pipeline reaches :class:`DPoPVerifier` through ``SenderConstraints.check`` /
``acheck`` with the request's method and URL, the ``DPoP`` header and the already validated
access token; it checks the proof and the binding, and remembers each proof's ``jti`` for the
replay window. :meth:`DPoPVerifier.verify` serves callers outside a pipeline.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, Unpack
from urllib.parse import urlsplit, urlunsplit

from .._algorithms import ASYMMETRIC_ALGORITHMS
from .._claims_result import Claims
from .._parse import parse_compact
from ..errors import (
    ConfigurationError,
    InvalidDPoPProof,
    StoreUnavailable,
    TokenError,
    UseDPoPNonce,
)
from ..keys._set import KeySet
from ._mtls import confirmation_member

__all__ = [
    "DPoPNonces",
    "DPoPProof",
    "DPoPRequest",
    "DPoPVerifier",
    "MemoryReplayLedger",
    "ReplayLedger",
    "access_token_hash",
    "confirmation_thumbprint",
    "normalise_htu",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]*")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~")
_MAX_PROOF_SIZE = 8192
_MAX_JTI_LENGTH = 256
_JWK_CACHE_SIZE = 256


def _b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """The ``ath`` value for an access token: base64url(SHA-256(ASCII token)), RFC 9449 §4.2."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


@functools.lru_cache(maxsize=1024)  # a service sees few distinct URLs; a pure function
def normalise_htu(url: str) -> str:
    """A request URI as ``htu`` compares it (RFC 9449 §4.3, RFC 3986 §6.2.2-6.2.3).

    Scheme and host are lower-cased, the default port dropped, an empty path becomes ``/``,
    percent-escapes in the path are upper-cased (those of letters, digits, ``-``, ``_`` and
    ``~`` decoded), and query and fragment are ignored. A URL that is not visible ASCII,
    carries userinfo, or a host or port that is not one is returned as written: it then equals
    only itself, never the URL ``urlsplit`` would make of it (which drops tabs and newlines,
    and such a port).
    """
    try:
        parts = urlsplit(url)  # raises on a broken IPv6 literal (``https://[/``)
        port = parts.port
    except ValueError:
        return url
    if not _VISIBLE_ASCII.fullmatch(url) or "@" in parts.netloc:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal goes back into brackets
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = _PERCENT.sub(_normal_escape, parts.path) if "%" in parts.path else parts.path
    return urlunsplit((scheme, netloc, path or "/", "", ""))


def _normal_escape(match: re.Match[str]) -> str:
    """RFC 3986 section 6.2.2.1-6.2.2.2: upper-case hex, decode an unreserved character.

    A dot stays encoded: decoded, ``%2e%2e`` would read as a dot segment.
    """
    char = chr(int(match[1], 16))
    return char if char in _UNRESERVED else f"%{match[1].upper()}"


def confirmation_thumbprint(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` of a token (RFC 9449 §6.1), or None when it is not DPoP-bound."""
    return confirmation_member(claims, "jkt")


class ReplayLedger(Protocol):
    """Remembers one-time identifiers; ``first_use`` is atomic across everyone sharing it.

    ``afirst_use`` is the same question for async callers, so a ledger that does IO (Redis)
    never blocks the event loop. A ledger that cannot answer raises a ``TokenError`` (such as
    ``StoreUnavailable``) or, where its policy allows, answers True.
    """

    def first_use(self, key: str, ttl: float, now: float) -> bool: ...

    async def afirst_use(self, key: str, ttl: float, now: float) -> bool: ...


class MemoryReplayLedger:
    """A process-local replay ledger, bounded in total and per key.

    Keys of the form ``namespace:owner:id`` (``DPoPVerifier`` uses ``dpop:<jkt>:<jti>``) share
    a quota per owner, so one DPoP key (one caller holding one bound token) can fill only its
    own share: once it holds ``max_entries_per_key`` live proofs its next proof is refused
    (``InvalidDPoPProof``, reason ``dpop_proof_quota``) while every other key's proofs are
    still accepted. A live entry is never forgotten early: that would let its proof be
    replayed within its acceptance window. If the whole ledger is full of live entries, new
    proofs are refused with ``StoreUnavailable`` (503, reason ``dpop_ledger_full``) rather
    than accepted unchecked; that takes ``max_entries / max_entries_per_key`` distinct bound
    keys proving at full speed at once.

    Args:
        max_entries: Live entries held in total.
        max_entries_per_key: Live entries one owner may hold; at the default proof window
            (``max_age`` 60 s + ``leeway`` 5 s) the default allows about 75 requests per
            second with one DPoP key.
    """

    def __init__(self, *, max_entries: int = 100_000, max_entries_per_key: int = 5_000) -> None:
        for name, value in (
            ("max_entries", max_entries),
            ("max_entries_per_key", max_entries_per_key),
        ):
            if type(value) is not int or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer")
        if max_entries_per_key > max_entries:
            raise ConfigurationError("max_entries_per_key cannot exceed max_entries")
        # owner -> {key: expiry}, each in insertion order, so the oldest entries come first.
        self._owners: dict[str, dict[str, float]] = {}
        self._size = 0
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._max_per_key = max_entries_per_key
        # When the ledger was found full of live entries: nothing can leave it before this.
        self._full_until = -math.inf

    @property
    def size(self) -> int:
        """The number of entries held, live or not yet swept."""
        return self._size

    def first_use(self, key: str, ttl: float, now: float) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds, False on a replay.

        Raises:
            InvalidDPoPProof: The key's owner already holds its quota of live entries.
            StoreUnavailable: The ledger is full of live entries.
        """
        owner = _ledger_owner(key)
        with self._lock:
            entries = self._owners.get(owner)
            if entries is None:
                entries = self._owners[owner] = {}
            else:
                expires = entries.get(key)
                if expires is not None and expires > now:
                    return False
                self._sweep_oldest(entries, now)
                if len(entries) >= self._max_per_key:
                    self._sweep_all(entries, now)
                    if len(entries) >= self._max_per_key:
                        raise InvalidDPoPProof(
                            "Too many DPoP proofs with this key; retry later",
                            reason="dpop_proof_quota",
                        )
            if self._size >= self._max_entries and not self._make_room(now):
                if not entries:
                    self._owners.pop(owner, None)
                raise StoreUnavailable("The DPoP replay ledger is full", reason="dpop_ledger_full")
            # The sweep may have dropped this owner's (then empty) dict: put it back.
            self._owners[owner] = entries
            if entries.pop(key, None) is not None:
                self._size -= 1  # an expired entry of the same key, replaced
            entries[key] = now + ttl
            self._size += 1
            return True

    async def afirst_use(self, key: str, ttl: float, now: float) -> bool:
        """Same as :meth:`first_use`: nothing to wait for."""
        return self.first_use(key, ttl, now)

    def _sweep_oldest(self, entries: dict[str, float], now: float) -> None:
        """Drop expired entries from the front: O(1) amortised, as expiries mostly ascend."""
        while entries:
            oldest = next(iter(entries))
            if entries[oldest] > now:
                return
            del entries[oldest]
            self._size -= 1

    def _sweep_all(self, entries: dict[str, float], now: float) -> None:
        """Drop every expired entry of one owner (a clock step can leave some behind)."""
        expired = [key for key, expires in entries.items() if expires <= now]
        for key in expired:
            del entries[key]
        self._size -= len(expired)

    def _make_room(self, now: float) -> bool:
        """Sweep every owner; False when the ledger is still full of live entries."""
        if now < self._full_until:
            return False  # nothing has expired since the last full sweep: skip the scan
        earliest = math.inf
        for owner, entries in list(self._owners.items()):
            self._sweep_all(entries, now)
            if entries:
                earliest = min(earliest, min(entries.values()))
            else:
                del self._owners[owner]
        if self._size < self._max_entries:
            return True
        self._full_until = earliest
        return False


def _ledger_owner(key: str) -> str:
    """``namespace:owner`` of a ``namespace:owner:id`` key; other keys share one owner."""
    namespace, _, rest = key.partition(":")
    owner, separator, _ = rest.partition(":")
    return f"{namespace}:{owner}" if separator else ""


class DPoPNonces:
    """Stateless server nonces (RFC 9449 §8): an HMAC of the current time slot.

    Every instance sharing ``secret`` accepts the others' nonces, so a fleet needs no store.
    A nonce is valid in its slot and the next one.
    """

    def __init__(self, secret: bytes | None = None, *, period: float = 300) -> None:
        self._secret = secret or secrets.token_bytes(32)
        if len(self._secret) < 16:
            raise ConfigurationError("the DPoP nonce secret must be at least 16 bytes")
        self._period = period

    def _for_slot(self, slot: int) -> str:
        return _b64url(hmac.new(self._secret, str(slot).encode(), hashlib.sha256).digest()[:18])

    def current(self, now: float) -> str:
        """The nonce to hand out at ``now``."""
        return self._for_slot(math.floor(now / self._period))

    @property
    def lifetime(self) -> float:
        """How long a nonce is accepted at most after it is handed out (two slots)."""
        return 2 * self._period

    def is_valid(self, nonce: object, now: float) -> bool:
        """True if ``nonce`` was handed out in this slot or the previous one."""
        if not isinstance(nonce, str) or not nonce.isascii():
            return False  # compare_digest takes only ASCII str; a nonce of ours is ASCII
        slot = math.floor(now / self._period)
        return any(hmac.compare_digest(nonce, self._for_slot(s)) for s in (slot, slot - 1))


class DPoPRequest(TypedDict):
    """What a DPoP proof is checked against: its request, and the token it came with.

    Attributes:
        method: The HTTP method of the request (the proof's ``htm``).
        url: The request URL as the client addressed it (the proof's ``htu``).
        access_token: The access token presented with the proof (its hash is ``ath``).
        claims: The token's verified claims, whose ``cnf.jkt`` must name the proof's key.
    """

    method: str
    url: str
    access_token: str
    claims: Claims | Mapping[str, Any]


_REQUEST_KEYS = DPoPRequest.__annotations__.keys()


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A verified DPoP proof: its key's thumbprint, its ``jti`` and its claims."""

    thumbprint: str
    jti: str
    claims: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Pending:
    """A proof that passed every check but the replay ledger, which the driver asks next."""

    proof: DPoPProof
    ledger_key: str
    ttl: float
    now: float


class DPoPVerifier:
    """Verifies DPoP proofs and the binding of access tokens to them.

    Args:
        algorithms: Allowed proof algorithms (asymmetric only); advertised in challenges.
            The default includes the RFC 9864 fully specified ``Ed25519`` beside ``EdDSA``
            (client libraries such as oauth4webapi sign Ed25519 proofs as ``Ed25519``).
        max_age: How old a proof's ``iat`` may be, in seconds (without nonces).
        leeway: How far in the future a proof's ``iat`` may be, in seconds (without nonces).
        replay: Where proof ``jti`` values are remembered; share a Redis-backed ledger in a
            fleet. Default: process memory.
        nonces: Require server nonces (``use_dpop_nonce``); None disables them. With nonces,
            freshness is judged by the nonce, not by ``iat`` (RFC 9449 section 11.1): a
            client whose clock is off gets a ``use_dpop_nonce`` challenge it can answer,
            never a dead-end "stale proof"; proofs are remembered for the nonce's lifetime.
        clock: A callable returning unix time; default ``time.time``.
    """

    def __init__(
        self,
        *,
        algorithms: Collection[str] = ("ES256", "RS256", "PS256", "EdDSA", "Ed25519"),
        max_age: float = 60,
        leeway: float = 5,
        replay: ReplayLedger | None = None,
        nonces: DPoPNonces | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        chosen = tuple(dict.fromkeys(algorithms))
        if not chosen or not set(chosen) <= ASYMMETRIC_ALGORITHMS:
            raise ConfigurationError(
                "DPoP algorithms must be a non-empty list of asymmetric algorithms"
            )
        if max_age <= 0 or leeway < 0:
            raise ConfigurationError("max_age must be positive and leeway non-negative")
        self.algorithms = chosen
        self.max_age = max_age
        self.leeway = leeway
        self.replay: ReplayLedger = replay if replay is not None else MemoryReplayLedger()
        self.nonces = nonces
        self.clock = clock or time.time
        self._keys: dict[str, KeySet] = {}

    def verify(self, proof: str | None, **request: Unpack[DPoPRequest]) -> DPoPProof:
        """Check a DPoP proof for this request and its binding to ``claims``' ``cnf.jkt``.

        Raises:
            InvalidDPoPProof: The proof is missing, malformed, stale, replayed, for another
                request or another token, or signed by a key the token is not bound to.
            UseDPoPNonce: Nonces are required and the proof lacks the current one.
            StoreUnavailable: A shared replay ledger cannot be reached and its policy is
                fail-closed.
        """
        pending = self._examine(proof, **request)
        return self._record(pending)

    async def averify(self, proof: str | None, **request: Unpack[DPoPRequest]) -> DPoPProof:
        """:meth:`verify` for async callers: the replay ledger is asked without blocking."""
        pending = self._examine(proof, **request)
        return await self._arecord(pending)

    # -- the shared decision core ---------------------------------------------------------
    # ``_examine`` does every check that needs no IO; ``_record`` / ``_arecord`` then ask the
    # replay ledger. Callers with more checks to make (SenderConstraints) run theirs in
    # between, so a request refused for another reason never spends a proof.

    def _examine(self, proof: str | None, **request: Unpack[DPoPRequest]) -> _Pending:
        """Every check of :meth:`verify` except the replay ledger (no IO)."""
        if request.keys() != _REQUEST_KEYS:
            raise TypeError(f"verify() takes exactly the keyword arguments {sorted(_REQUEST_KEYS)}")
        now = self.clock()
        if not isinstance(proof, str) or not proof:
            raise InvalidDPoPProof("A DPoP proof is required", reason="dpop_proof_missing")
        if len(proof) > _MAX_PROOF_SIZE:
            raise InvalidDPoPProof("The DPoP proof is too large", reason="dpop_proof_malformed")
        try:
            parsed = parse_compact(proof.encode("ascii"))
        except (TokenError, UnicodeError) as exc:
            raise InvalidDPoPProof(
                "The DPoP proof is malformed", reason="dpop_proof_malformed"
            ) from exc
        header, payload = parsed.header, parsed.payload
        if not isinstance(header.get("typ"), str) or header["typ"].lower() != "dpop+jwt":
            raise InvalidDPoPProof("The DPoP proof type must be dpop+jwt", claim="typ")
        if "crit" in header:
            # RFC 7515 section 4.1.11: no extension is understood, so any ``crit`` is refused.
            raise InvalidDPoPProof(
                "The DPoP proof uses an unsupported critical extension", claim="crit"
            )
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidDPoPProof("The DPoP proof algorithm is not allowed", claim="alg")
        key_set = self._key_set(header.get("jwk"))
        found = key_set.select(None, alg) if isinstance(alg, str) else None
        if found is None:
            raise InvalidDPoPProof("The DPoP proof key does not fit its algorithm", claim="jwk")
        key, verifier = found
        if not verifier(parsed.signing_input, parsed.signature):
            raise InvalidDPoPProof(
                "The DPoP proof signature is invalid", reason="dpop_bad_signature"
            )
        self._check_claims(payload, request, now)
        if confirmation_thumbprint(request["claims"]) != key.thumbprint:
            raise InvalidDPoPProof(
                "The access token is not bound to the DPoP proof key", reason="dpop_key_mismatch"
            )
        jti = payload["jti"]
        return _Pending(
            proof=DPoPProof(thumbprint=key.thumbprint, jti=jti, claims=payload),
            ledger_key=f"dpop:{key.thumbprint}:{jti}",
            ttl=self._replay_window,
            now=now,
        )

    def _record(self, pending: _Pending) -> DPoPProof:
        """Spend the examined proof in the replay ledger; refuse it if it was spent before."""
        first = self.replay.first_use(pending.ledger_key, pending.ttl, pending.now)
        return _settle(pending, first)

    async def _arecord(self, pending: _Pending) -> DPoPProof:
        """:meth:`_record` without blocking the event loop."""
        first = await self.replay.afirst_use(pending.ledger_key, pending.ttl, pending.now)
        return _settle(pending, first)

    @property
    def _replay_window(self) -> float:
        """How long a proof could be accepted, so how long its ``jti`` is remembered."""
        if self.nonces is not None:
            # Nonce-based freshness: a proof lives as long as its nonce, whatever its iat.
            return max(self.max_age, self.nonces.lifetime) + self.leeway
        return self.max_age + self.leeway

    def _key_set(self, jwk: object) -> KeySet:
        if not isinstance(jwk, dict):
            raise InvalidDPoPProof("The DPoP proof carries no public key", claim="jwk")
        cache_key = json.dumps(jwk, sort_keys=True)
        key_set = self._keys.get(cache_key)
        if key_set is None:
            try:
                # Strict import: private material, oct keys and weak RSA keys are skipped.
                key_set = KeySet.from_jwks({"keys": [jwk]}, self.algorithms, max_keys=1)
            except ValueError as exc:
                raise InvalidDPoPProof("The DPoP proof key is invalid", claim="jwk") from exc
            if not key_set.keys:
                raise InvalidDPoPProof("The DPoP proof key is not a usable public key", claim="jwk")
            if len(self._keys) >= _JWK_CACHE_SIZE:
                self._keys.clear()
            self._keys[cache_key] = key_set
        return key_set

    def _check_claims(self, payload: Mapping[str, Any], request: DPoPRequest, now: float) -> None:
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI_LENGTH:
            raise InvalidDPoPProof("The DPoP proof needs a jti", claim="jti")
        if payload.get("htm") != request["method"].upper():
            raise InvalidDPoPProof("The DPoP proof is for another method", claim="htm")
        htu = payload.get("htu")
        if not isinstance(htu, str) or normalise_htu(htu) != normalise_htu(request["url"]):
            raise InvalidDPoPProof("The DPoP proof is for another URI", claim="htu")
        iat: Any = payload.get("iat")
        # An int is compared exactly, however large (math.isfinite would overflow on it).
        if type(iat) is not int and (type(iat) is not float or not math.isfinite(iat)):
            raise InvalidDPoPProof("The DPoP proof needs a numeric iat", claim="iat")
        nonces = self.nonces
        if nonces is None and (iat > now + self.leeway or iat < now - self.max_age):
            raise InvalidDPoPProof("The DPoP proof is stale or from the future", claim="iat")
        ath = payload.get("ath")
        # compare_digest takes only ASCII str: anything else cannot be a base64url hash.
        if (
            not isinstance(ath, str)
            or not ath.isascii()
            or not hmac.compare_digest(ath, access_token_hash(request["access_token"]))
        ):
            raise InvalidDPoPProof("The DPoP proof is for another access token", claim="ath")
        # With nonces, the nonce alone proves freshness (RFC 9449 section 11.1): the client's
        # clock does not matter, and a missing or old nonce is a challenge it can answer.
        if nonces is not None and not nonces.is_valid(payload.get("nonce"), now):
            raise UseDPoPNonce(nonce=nonces.current(now))


def _settle(pending: _Pending, first_use: bool) -> DPoPProof:
    if not first_use:
        raise InvalidDPoPProof("The DPoP proof was already used", reason="dpop_replayed")
    return pending.proof
