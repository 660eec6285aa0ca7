"""A verified-token cache: a repeated token costs a hash lookup instead of a signature check.

Entries are keyed by the SHA-256 digest of the token (the token itself is never kept) and
are compact: the payload's JSON text (as decoded from the token), the validity window and the
few objects a hit needs to build its ``Claims`` (the header, the scope set and the key's
identity, the first two shared among tokens). A hit returns a new ``Claims`` whose payload is
decoded from that text on its first read (orjson, about half a microsecond for a typical
payload), so a caller that needs only the decision and the scopes never pays for it. A hit
is not trusted blindly: the validator asks the key source
for the token's key again (which also drives its refreshes), and this module re-checks that
the key is the one that verified the signature, the time claims and the request's scopes;
the lifecycle checks run after it. Only the outcome of the signature check and of the
time-independent claim checks is reused.

Eviction is CLOCK (second chance), an approximation of LRU: a hit only sets a flag on its
entry, so the hit path takes no lock and writes no shared structure; inserts and removals
(only after a full validation or a failure) take one lock. An ``OrderedDict`` LRU would
need that lock on every hit to move the entry to the end.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from sys import getsizeof
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ._claims_result import cached_claims as _cached_claims
from ._claims_result import split_scopes
from ._parse import _c_loads, _fast_json_object, strict_json_object
from ._policy import check_scopes
from .errors import ConfigurationError, InsufficientScope, InvalidSignature, TokenError
from .keys._source import StaticKeySource

if TYPE_CHECKING:
    from ._claims_result import Claims, RoleClaim
    from ._parse import ParsedToken
    from ._policy import ClaimsPolicy
    from .keys._source import KeyMatch, KeySource

__all__ = ["CachedToken", "TokenCache", "build_token_cache", "requested_scopes", "token_digest"]

_DEFAULT_MAX_ENTRIES = 10_000
_DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_HEADER_SIZES_LIMIT = 256
_INF = math.inf
_sha256 = hashlib.sha256
_ASCII_STR_SIZE = getsizeof("")  # an ASCII str takes this plus one byte per character


class _Route(Protocol):
    """What the cache needs of a validator route."""

    @property
    def policy(self) -> ClaimsPolicy: ...

    @property
    def source(self) -> KeySource: ...


def token_digest(token: object, max_size: int) -> bytes | None:
    """The cache key of ``token``: its SHA-256 digest, or None if it cannot be a cached token.

    Tokens that the validator would refuse before parsing (not text, not ASCII, too large)
    get no key, so they always take the full path and its precise error.
    """
    if isinstance(token, str):
        if len(token) > max_size or not token.isascii():
            return None
        return _sha256(token.encode("ascii")).digest()
    if isinstance(token, bytes | bytearray):
        if len(token) > max_size:
            return None
        return _sha256(token).digest()
    return None


class CachedToken:
    """One verified token, compact: its payload's JSON text, how to find its key again, what
    a hit needs to rebuild its ``Claims``, and its validity window."""

    __slots__ = (
        "alg",
        "cache",
        "decode",
        "digest",
        "fixed_key",
        "header",
        "key_id",
        "kid",
        "names",
        "payload",
        "referenced",
        "role_claims",
        "route",
        "scopes",
        "size",
        "slot",
        "thumbprint",
        "valid_from",
        "valid_until",
    )

    def __init__(
        self,
        cache: TokenCache,
        digest: bytes,
        route: _Route,
        kid: str | None,
        alg: str,
        claims: Claims,
        parsed: ParsedToken,
    ) -> None:
        self.cache = cache
        self.digest = digest
        self.route = route
        self.kid = kid
        self.alg = alg
        # The JSON text the validator decoded, and whether orjson alone reads it exactly as
        # the strict decoder did (``_fast_json_object`` proves it): then a hit decodes it at C
        # speed, else with the strict decoder, as the full validation did.
        payload_json = self.payload = parsed.payload_json
        fast = _c_loads is not None and _fast_json_object(payload_json) is not None
        self.decode: Callable[[bytes], dict[str, Any]] = _c_loads if fast else _strict_payload  # type: ignore[assignment]
        # The payload's member names, shared among tokens with the same names (``put``).
        self.names = frozenset(parsed.payload)
        # The header and the scope set are shared among tokens (one header per encoded
        # header, one scope set per `scope` string); the read-only view is the entry's own.
        self.header = MappingProxyType(parsed.header)
        self.scopes = claims.scopes
        self.key_id = claims.key_id
        self.thumbprint = claims.thumbprint
        self.role_claims: Sequence[RoleClaim] = claims._role_claims
        # A static source's keys never change: the key that verified the token stays in it.
        self.fixed_key = type(route.source) is StaticKeySource
        self.valid_from, self.valid_until = validity_window(route.policy, parsed.payload)
        self.referenced = False
        self.size = 0
        self.slot = -1

    def revalidate(self, match: KeyMatch | None, now: float, scopes: Iterable[str]) -> Claims:
        """The checks a hit repeats once the key source has answered; shared by both drivers.

        ``match`` is the key source's answer for the token's ``kid`` and ``alg``; None when
        the key cannot change (``fixed_key``: a static source). Returns a new ``Claims``,
        equal to the one the full validation returned, whose payload is decoded from the
        entry's JSON text when it is first read.

        Raises:
            TokenError: As a full validation of the token would; the caller then calls
                ``refused`` so that the entry is dropped.
        """
        if match is not None and match[0].thumbprint != self.thumbprint:
            # Another key now holds this kid: the token's signature cannot verify under it.
            raise InvalidSignature()
        claims = _cached_claims(
            self, self.header, self.key_id, self.thumbprint, self.scopes, self.role_claims
        )
        if not self.valid_from <= now < self.valid_until:
            self.route.policy.check_times(claims, now)
        if scopes:
            check_scopes(self.scopes, requested_scopes(scopes))
        if not self.referenced:
            self.referenced = True
        return claims

    def refused(self, error: TokenError) -> None:
        """A re-check failed: drop the entry, unless only this request's scopes were missing."""
        if not isinstance(error, InsufficientScope):
            self.cache.discard(self)


def _strict_payload(payload_json: bytes) -> dict[str, Any]:
    return strict_json_object(payload_json, "payload")


def validity_window(policy: ClaimsPolicy, payload: Mapping[str, Any]) -> tuple[float, float]:
    """``[valid_from, valid_until)``: the times at which ``policy.check_times`` passes.

    Mirrors ``ClaimsPolicy.check_times`` with the same float arithmetic, so that a hit inside
    the window is exactly a pass; outside it, ``check_times`` itself runs and raises the
    precise error. The payload already passed ``check_times`` once: its times are numbers.
    """
    leeway = policy.leeway
    valid_from = -_INF
    valid_until = _INF
    nbf, iat, exp = payload.get("nbf"), payload.get("iat"), payload.get("exp")
    if nbf is not None:
        valid_from = float(nbf) - leeway
    if iat is not None:
        valid_from = max(valid_from, float(iat) - leeway)
    if exp is not None:
        valid_until = float(exp) + leeway
    if policy.max_age is not None:
        if iat is None:
            return _INF, -_INF  # check_times refuses every time: never valid
        # check_times refuses `now > iat + max_age + leeway`: the last good float is included.
        oldest = float(iat) + policy.max_age + leeway
        valid_until = min(valid_until, math.nextafter(oldest, _INF))
    return valid_from, valid_until


def requested_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes a request asks for, as a set (a string is split on SP, as a token's is)."""
    if isinstance(scopes, frozenset):
        return scopes
    if isinstance(scopes, str):
        return split_scopes(scopes)
    return frozenset(scopes or ())


def _allocated(size: int) -> int:
    # CPython's small-object allocator hands out blocks in multiples of 16 bytes.
    return (size + 15) & ~15


def _deep_size(root: object) -> int:
    """Bytes held by a decoded JSON value, an over-estimate rather than an under-estimate.

    Each object's ``sys.getsizeof`` plus the most its allocator block can add (15 bytes);
    shared singletons (small ints, one-character strings) are counted as if they were not.
    ASCII member names are sized from their length (``sys.getsizeof`` is slow, and most of a
    token's objects are member names).
    """
    total = 0
    level: list[Any] = [root]
    while level:
        total += sum(map(getsizeof, level)) + 15 * len(level)
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                names = "".join(item)
                if names.isascii():
                    total += (_ASCII_STR_SIZE + 15) * len(item) + len(names)
                else:
                    below += item
                below += item.values()
            elif kind is list or kind is tuple or kind is frozenset:
                below += item
        level = below
    return total


def _fixed_entry_size() -> int:
    """Bytes of everything an entry holds besides its payload text, header and scope set."""
    objects = (
        16 + 16 + 8 * len(CachedToken.__slots__),  # the entry: GC and object headers, slots
        getsizeof(MappingProxyType({})),  # the read-only view of the header
        getsizeof(bytes(32)),  # the digest
        getsizeof(1.0),  # valid_from
        getsizeof(1.0),  # valid_until
        getsizeof(2**40),  # size
        getsizeof(2**40),  # slot
    )
    # The index dict takes about 52 bytes per entry at 100,000 entries and up to 60 right
    # after it grows; the CLOCK ring one pointer, plus list over-allocation.
    index = 64 + 16
    return sum(map(_allocated, objects)) + index


_FIXED_ENTRY_SIZE = _fixed_entry_size()


class TokenCache:
    """A bounded cache of verified tokens for one validator (``Validator(token_cache=...)``).

    A hit skips parsing, the signature check and the time-independent claim checks. It still
    asks the key source for the key (the entry is dropped if the key left the JWK Set or was
    replaced), re-checks ``exp``, ``nbf``, ``iat`` and the maximum age, runs the lifecycle
    checks (revocation, cut-offs, distrusted keys, replay) and the request's scopes. Refused
    tokens are never stored, and a cached token that fails a re-check is dropped.

    Args:
        max_entries: Most tokens held.
        max_bytes: Most memory held, as estimated from the size of each entry's objects.

    An entry keeps the payload's JSON text (not its decoded objects) and the few values a hit
    needs; the header, the scope set and the member names are shared among tokens and counted
    once. An entry is estimated at 528 bytes plus its payload text: a typical access token
    (about 450 characters, nine claims) at about 830 bytes, measured at about 820 bytes of
    RSS. The defaults (10,000 entries, 32 MiB) hold 10,000 such tokens in about 8 MB;
    ``max_bytes`` binds first only for payloads over about 2.8 KB (32 MiB holds about 40,000
    typical tokens). Each hit returns a new ``Claims``, equal to the one the full validation
    returned (not the same object); its payload is decoded from the entry's text on the
    first read of a claim, and nested values are never shared between requests.
    """

    def __init__(
        self, *, max_entries: int = _DEFAULT_MAX_ENTRIES, max_bytes: int = _DEFAULT_MAX_BYTES
    ) -> None:
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if type(value) is not int or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: dict[bytes, CachedToken] = {}
        # The CLOCK ring: each live entry sits in one slot; freed slots are reused first.
        self._ring: list[CachedToken | None] = []
        self._free: list[int] = []
        self._hand = 0
        self._bytes = 0
        self._header_sizes: dict[int, tuple[object, int]] = {}
        self._names: dict[frozenset[str], frozenset[str]] = {}
        self._lock = threading.Lock()
        self._max_token_size = 0
        self._owner: object | None = None

    def __repr__(self) -> str:
        return (
            f"TokenCache(entries={len(self._entries)}/{self.max_entries}, "
            f"bytes={self._bytes}/{self.max_bytes})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated memory held by the cached entries."""
        return self._bytes

    def attach(self, owner: object, max_token_size: int) -> None:
        """Bind the cache to one validator: entries carry that validator's policy."""
        with self._lock:
            if self._owner is not None and self._owner is not owner:
                raise ConfigurationError("a TokenCache belongs to one Validator; build another")
            self._owner = owner
            self._max_token_size = max_token_size

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._ring.clear()
            self._free.clear()
            self._header_sizes.clear()
            self._names.clear()
            self._hand = 0
            self._bytes = 0

    # -- the hit path: no lock ------------------------------------------------------------

    def lookup(self, token: object) -> tuple[bytes | None, CachedToken | None]:
        """The digest of ``token`` (None if it can never be cached) and its entry, if any."""
        if type(token) is str and len(token) <= self._max_token_size and token.isascii():
            digest = _sha256(token.encode("ascii")).digest()
        elif type(token) is str:
            return None, None
        else:
            found = token_digest(token, self._max_token_size)
            if found is None:
                return None, None
            digest = found
        return digest, self._entries.get(digest)

    def get(self, token: object) -> CachedToken | None:
        """The entry for ``token``, or None."""
        return self.lookup(token)[1]

    # -- inserts and removals: under the lock ---------------------------------------------

    def put(
        self,
        digest: bytes,
        parsed: ParsedToken,
        route: _Route,
        kid: str | None,
        alg: str,
        claims: Claims,
        now: float,
    ) -> None:
        """Remember a token (by its ``lookup`` digest) that just passed every check."""
        if digest in self._entries:
            return
        entry = CachedToken(self, digest, route, kid, alg, claims, parsed)
        if not entry.valid_from <= now < entry.valid_until:
            return
        payload_size = _allocated(getsizeof(parsed.payload_json))
        with self._lock:
            entry.names = self._names.setdefault(entry.names, entry.names)
            if len(self._names) > _HEADER_SIZES_LIMIT:
                self._names.clear()
            # The header, the scope set and the names are shared among tokens: each counted
            # once.
            shared = (
                self._shared_size(parsed.header)
                + self._shared_size(claims.scopes)
                + self._shared_size(entry.names)
            )
            entry.size = _FIXED_ENTRY_SIZE + payload_size + shared
            if entry.size > self.max_bytes or digest in self._entries:
                return
            while (
                len(self._entries) >= self.max_entries or self._bytes + entry.size > self.max_bytes
            ):
                self._evict_one(now)
            if self._free:
                entry.slot = self._free.pop()
                self._ring[entry.slot] = entry
            else:
                entry.slot = len(self._ring)
                self._ring.append(entry)
            self._entries[digest] = entry
            self._bytes += entry.size

    def discard(self, entry: CachedToken) -> None:
        """Drop ``entry`` if it is still cached."""
        with self._lock:
            if self._entries.get(entry.digest) is entry:
                self._remove(entry)

    def _remove(self, entry: CachedToken) -> None:
        del self._entries[entry.digest]
        self._ring[entry.slot] = None
        self._free.append(entry.slot)
        self._bytes -= entry.size

    def _evict_one(self, now: float) -> None:
        # The hand clears the flag of each referenced entry it passes and evicts the first
        # entry that was not used since its last pass (or has expired). Two turns are enough:
        # after one, every flag is clear.
        ring = self._ring
        for _ in range(2 * len(ring)):
            slot = self._hand
            self._hand = (slot + 1) % len(ring)
            entry = ring[slot]
            if entry is None:
                continue
            if entry.referenced and now < entry.valid_until:
                entry.referenced = False
                continue
            self._remove(entry)
            return
        raise RuntimeError("token cache bookkeeping is inconsistent")  # pragma: no cover

    def _shared_size(self, value: object) -> int:
        # The validator shares one header object among tokens with the same encoded header,
        # and `split_scopes` one scope set among tokens with the same `scope`: count each
        # object once, keeping it alive so that its id stays unique.
        key = id(value)
        known = self._header_sizes.get(key)
        if known is not None:
            return 0
        if len(self._header_sizes) >= _HEADER_SIZES_LIMIT:
            self._header_sizes.clear()
        size = _deep_size(value)
        self._header_sizes[key] = (value, size)
        return size


def build_token_cache(
    value: TokenCache | Mapping[str, int] | bool | None, owner: object, max_token_size: int
) -> TokenCache | None:
    """The cache a ``Validator(token_cache=...)`` value asks for, bound to its validator.

    ``True`` builds one with the default bounds, a mapping gives ``max_entries`` and/or
    ``max_bytes`` (for settings files), ``None`` or ``False`` means no cache.
    """
    if value is None or value is False:
        return None
    if value is True:
        cache = TokenCache()
    elif isinstance(value, TokenCache):
        cache = value
    elif isinstance(value, Mapping):
        bounds = {str(name).lower(): bound for name, bound in value.items()}
        unknown = sorted(set(bounds) - {"max_entries", "max_bytes"})
        if unknown:
            raise ConfigurationError(f"token_cache: unknown settings: {', '.join(unknown)}")
        cache = TokenCache(**bounds)
    else:
        raise ConfigurationError("token_cache must be True, False, a TokenCache or a mapping")
    cache.attach(owner, max_token_size)
    return cache
