"""The key cache of one JWK Set endpoint: a state machine that is told the time and does no IO.

The drivers in ``_remote.py`` ask it questions and report what happened:

* ``cached(kid, alg, now)``: the hot path; a key when nothing needs doing, else None.
* ``plan(kid, alg, now)``: the whole decision: a key or an error, and whether a fetch is due
  (in the background, or one the caller must wait for).
* ``begin_fetch(now)`` / ``complete(ticket, outcome, now)``: the fetch lifecycle; every trust
  change comes back as ``Event`` values for the driver to emit.

Time is always the validator's clock, passed in; the cache never reads a clock itself.
"""

from __future__ import annotations

import enum
import math
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .._events import Event
from .._issuer import Issuer
from ..errors import KeysUnavailable, TokenError
from ._set import KeySet, VerificationKey
from ._source import KeyMatch, key_not_found

__all__ = [
    "Action",
    "CachePolicy",
    "Failed",
    "FetchError",
    "FetchOutcome",
    "FetchTicket",
    "Fetched",
    "JwksCache",
    "KeyInfo",
    "KeySourceStatus",
    "NotModified",
    "Step",
]

# Refresh once this share of the cache lifetime has passed, so requests never find it expired.
REFRESH_AHEAD_AT = 0.8
# Unknown kids remembered at most; past this the expired entries go, then all of them.
NEGATIVE_CACHE_SIZE = 4096
# Per-request events (unknown kids) reported at most this often per cooldown window.
UNKNOWN_KID_EVENTS_PER_WINDOW = 10
_KID_IN_EVENTS = 64
_EMPTY = KeySet(())


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """The cache timings of one endpoint (seconds), from its ``Issuer`` (whose defaults it shares).

    Attributes:
        default_ttl: Lifetime when the server sends no ``Cache-Control``/``Expires``.
        min_ttl: Lower clamp of the server's lifetime.
        max_ttl: Upper clamp of the server's lifetime.
        cooldown: Minimum spacing of refetches caused by unknown key ids.
        max_stale: How long past expiry the last good keys serve while refreshes fail.
        backoff_base: First retry delay after a failed fetch; doubles per failure.
        backoff_cap: Longest retry delay.
    """

    default_ttl: float = Issuer.default_ttl
    min_ttl: float = Issuer.min_ttl
    max_ttl: float = Issuer.max_ttl
    cooldown: float = Issuer.cooldown
    max_stale: float = Issuer.max_stale
    backoff_base: float = 1.0
    backoff_cap: float = 60.0

    @classmethod
    def for_issuer(cls, issuer: Issuer) -> CachePolicy:
        """The policy an ``Issuer`` configures."""
        return cls(
            default_ttl=issuer.default_ttl,
            min_ttl=issuer.min_ttl,
            max_ttl=issuer.max_ttl,
            cooldown=issuer.cooldown,
            max_stale=issuer.max_stale,
        )

    def lifetime(self, server_lifetime: float | None) -> float:
        """The cache lifetime for a response: the server's, clamped, or the default."""
        ttl = self.default_ttl if server_lifetime is None else server_lifetime
        return min(max(ttl, self.min_ttl), self.max_ttl)


# -- what a fetch produced ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchTicket:
    """One fetch, numbered so that an older response never overwrites a newer one.

    Attributes:
        seq: Increases with every fetch begun.
        jwks_uri: The JWK Set location already known (configured or discovered), if any.
        etag: For ``If-None-Match``, when keys are held.
        last_modified: For ``If-Modified-Since``, when keys are held.
        digest: SHA-256 of the body the held keys came from (an identical body is no change).
    """

    seq: int
    jwks_uri: str | None
    etag: str | None = None
    last_modified: str | None = None
    digest: bytes | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A good JWK Set with at least one usable key."""

    key_set: KeySet
    server_lifetime: float | None
    jwks_uri: str
    etag: str | None = None
    last_modified: str | None = None
    digest: bytes | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """A 304, or a body identical to the one the held keys came from."""

    server_lifetime: float | None
    jwks_uri: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A fetch that produced no usable keys.

    Attributes:
        kind: A stable machine-readable cause, e.g. ``timeout``, ``http_status``, ``too_large``.
        message: What happened, for logs and status; never contains a token.
        rediscover: Forget a discovered ``jwks_uri`` so the next fetch runs discovery again.
    """

    kind: str
    message: str
    rediscover: bool = False


FetchOutcome = Fetched | NotModified | Failed
"""What one fetch of a key set came to: new keys, not modified, or a failure."""


class FetchError(Exception):
    """Raised inside a fetch flow; becomes a ``Failed`` outcome."""

    def __init__(self, kind: str, message: str, *, rediscover: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.rediscover = rediscover

    def outcome(self) -> Failed:
        """This error as a fetch outcome."""
        return Failed(self.kind, self.message, self.rediscover)


# -- answers --------------------------------------------------------------------------------


class Action(enum.Enum):
    """What a driver should do about fetching, besides answering the caller."""

    NONE = "none"
    AHEAD = "ahead"
    """Refresh without holding anyone up: a background task, or one sync caller."""
    WAIT = "wait"
    """The caller needs the outcome of a fetch (starting one or joining the one in flight)."""


@dataclass(frozen=True, slots=True)
class Step:
    """The cache's answer to one key lookup."""

    match: KeyMatch | None
    error: TokenError | None
    action: Action
    generation: int
    events: tuple[Event, ...] = ()

    def result(self) -> KeyMatch:
        """The key, or raise the error."""
        if self.match is not None:
            return self.match
        raise self.error if self.error is not None else key_not_found()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One trusted key, as a status snapshot shows it."""

    kid: str | None
    thumbprint: str
    kty: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeySourceStatus:
    """A read-only snapshot of a remote key source, for health checks, metrics and ops.

    Attributes:
        issuer: The configured issuer.
        jwks_uri: Where the keys come from (None until discovery has run).
        keys: The keys trusted now.
        fetched_at: When the keys were last confirmed by the server (200 or 304).
        expires_at: When the cache lifetime ends (a refresh starts before this).
        stale_until: After this the keys are no longer trusted if refreshes keep failing.
        serving_stale: True while refreshes fail and expired keys are served.
        last_error: The cause of the last failed fetch, if the last fetch failed.
        last_error_at: When it failed.
        consecutive_failures: Failed fetches since the last good one.
        next_retry_at: When the next attempt is allowed after a failure.
        fetches: Fetches completed since start-up.
    """

    issuer: str
    jwks_uri: str | None
    keys: tuple[KeyInfo, ...]
    fetched_at: float | None
    expires_at: float | None
    stale_until: float | None
    serving_stale: bool
    last_error: str | None
    last_error_at: float | None
    consecutive_failures: int
    next_retry_at: float | None
    fetches: int

    @property
    def ready(self) -> bool:
        """True when at least one key is trusted."""
        return bool(self.keys)

    @property
    def kids(self) -> tuple[str | None, ...]:
        """The key ids trusted now."""
        return tuple(key.kid for key in self.keys)

    @property
    def thumbprints(self) -> tuple[str, ...]:
        """The RFC 7638 thumbprints of the keys trusted now."""
        return tuple(key.thumbprint for key in self.keys)


def _key_identity(key: VerificationKey) -> tuple[str | None, str, frozenset[str]]:
    return key.kid, key.thumbprint, frozenset(key.verifiers)


def _safe_kid(kid: str | None) -> str | None:
    # A kid from an unverified token is attacker-chosen: keep it short and printable in logs.
    if kid is None:
        return None
    cut = kid[:_KID_IN_EVENTS]
    return cut if cut.isprintable() else cut.encode("unicode_escape").decode("ascii")


@dataclass
class _Throttle:
    """At most ``limit`` events per window of ``period`` seconds."""

    limit: int
    period: float
    window_start: float = -math.inf
    count: int = 0

    def allow(self, now: float) -> bool:
        if now >= self.window_start + self.period:
            self.window_start, self.count = now, 0
        self.count += 1
        return self.count <= self.limit


@dataclass
class _State:
    keys: KeySet | None = None
    kids: frozenset[str | None] = frozenset()
    jwks_uri: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    digest: bytes | None = None
    fetched_at: float | None = None
    refresh_at: float = -math.inf
    expires_at: float = -math.inf
    stale_until: float = -math.inf
    failures: int = 0
    retry_at: float = -math.inf
    last_error: str | None = None
    last_error_at: float | None = None
    stale_announced: bool = False
    forced: bool = False
    in_flight: int = 0
    next_seq: int = 1
    applied_seq: int = 0
    last_completed_seq: int = 0
    completed: int = 0
    next_miss_fetch: float = -math.inf
    miss_claim: int | None = None
    unknown: dict[str | None, float] = field(default_factory=dict)


class JwksCache:
    """The keys of one JWK Set endpoint and every decision about fetching them.

    Thread-safe: a small lock guards each transition, never held across IO. The hot path
    (``cached``) takes no lock; it reads one tuple that transitions replace whole.

    Args:
        label: The issuer named in events.
        policy: The cache timings.
        jwks_uri: The configured JWK Set location; None means discovery finds it.
        rng: Source of backoff jitter (injectable for tests).
    """

    def __init__(
        self,
        label: str,
        policy: CachePolicy,
        *,
        jwks_uri: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.label = label
        self.policy = policy
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._lock = threading.Lock()
        self._configured_jwks_uri = jwks_uri
        self._s = _State(jwks_uri=jwks_uri)
        period = max(policy.cooldown, 1.0)
        self._cooldown_events = _Throttle(1, period)
        self._quiet_until = -math.inf
        self._unknown_events = _Throttle(UNKNOWN_KID_EVENTS_PER_WINDOW, period)
        self.fast: tuple[KeySet, float] = (_EMPTY, -math.inf)
        """``(keys, until)``: before ``until``, a key found in ``keys`` is the whole answer.

        Replaced whole by every transition, so a reader without the lock sees one consistent
        pair; the drivers read it directly on their hot path.
        """

    # -- the hot path ---------------------------------------------------------------------

    def cached(self, kid: str | None, alg: str, now: float) -> KeyMatch | None:
        """The key for ``kid``/``alg`` when no fetch or event is due at ``now``, else None.

        Raises:
            KeyNotFound: ``kid`` is remembered as unknown (a flood costs a dict lookup).
        """
        keys, until = self.fast
        if now < until:
            found = keys.select(kid, alg)
            if found is not None:
                return found
            self.refuse_if_remembered(kid, now)
        return None

    def refuse_if_remembered(self, kid: str | None, now: float) -> None:
        """Raise ``KeyNotFound`` for a kid not in the fresh keys, when no refetch may follow.

        Called without the lock after a fresh key set lacks ``kid``: a kid remembered as
        unknown, or any kid while a reported cooldown runs, is refused at the cost of a
        dictionary lookup and a comparison, so a flood of forged kids stays cheap.
        """
        if now < self._quiet_until:
            raise key_not_found()
        remembered = self._s.unknown.get(kid)
        if remembered is not None and now < remembered:
            raise key_not_found()

    # -- decisions ------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Counts completed fetches; a waiter compares it to see whether one finished."""
        return self._s.completed

    @property
    def next_seq(self) -> int:
        """The number the next fetch will get."""
        return self._s.next_seq

    def completed_since(self, seq: int) -> bool:
        """True once a fetch numbered ``seq`` or later has completed."""
        return self._s.last_completed_seq >= seq

    def plan(self, kid: str | None, alg: str, now: float, *, final: bool = False) -> Step:
        """Decide how to answer a request for ``kid``/``alg`` at ``now``.

        Args:
            final: The caller already fetched or waited once; answer with what is held.
        """
        with self._lock:
            s = self._s
            events: list[Event] = []
            generation = s.completed
            keys = s.keys
            if keys is not None and now >= s.stale_until:
                events.append(self._event("keys_unavailable", now, stale_since=s.expires_at))
                self._drop_keys()
                keys = None
            if keys is None:
                if not final and (s.forced or now >= s.retry_at):
                    return Step(None, None, Action.WAIT, generation, tuple(events))
                return Step(None, self._unavailable(now), Action.NONE, generation, tuple(events))
            found = keys.select(kid, alg)
            if found is None:
                return self._miss(kid, now, final, generation, events)
            expired = now >= s.expires_at
            action = Action.NONE
            if not final and (s.forced or (now >= s.refresh_at and now >= s.retry_at)):
                if expired and not s.failures:
                    # Expired without any failure (no traffic during the refresh-ahead window):
                    # revalidate before trusting keys the issuer may have retired meanwhile.
                    action = Action.WAIT
                elif not s.in_flight:
                    action = Action.AHEAD
            if expired and s.failures and not s.stale_announced:
                s.stale_announced = True
                events.append(
                    self._event(
                        "serving_stale",
                        now,
                        expired_at=s.expires_at,
                        stale_until=s.stale_until,
                        last_error=s.last_error,
                    )
                )
                self._recompute()
            return Step(found, None, action, generation, tuple(events))

    def _miss(
        self, kid: str | None, now: float, final: bool, generation: int, events: list[Event]
    ) -> Step:
        s = self._s
        if kid is not None and kid in s.kids:
            # The key exists but does not fit the token's alg: a refetch would not help.
            return Step(None, key_not_found(), Action.NONE, generation, tuple(events))
        remembered = s.unknown.get(kid)
        if remembered is not None and now < remembered:
            return Step(None, key_not_found(), Action.NONE, generation, tuple(events))
        if not final:
            if s.miss_claim == generation:
                # A refetch for a miss is already due or running: share it.
                return Step(None, None, Action.WAIT, generation, tuple(events))
            if now >= s.next_miss_fetch and (s.forced or now >= s.retry_at):
                s.next_miss_fetch = now + self.policy.cooldown
                s.miss_claim = generation
                return Step(None, None, Action.WAIT, generation, tuple(events))
            self._remember_unknown(kid, now, max(s.next_miss_fetch, s.retry_at, now))
            # The refusal is reported (or throttled): until the window ends, other unknown
            # kids can be refused without the lock (`refuse_if_remembered`).
            self._quiet_until = max(s.next_miss_fetch, s.retry_at)
            if self._cooldown_events.allow(now):
                events.append(
                    self._event(
                        "cooldown_hit",
                        now,
                        kid=_safe_kid(kid),
                        refetch_allowed_at=max(s.next_miss_fetch, s.retry_at),
                    )
                )
        else:
            # Checked against a fetch made for this request: the kid is unknown for a while.
            s.next_miss_fetch = max(s.next_miss_fetch, now + self.policy.cooldown)
            self._remember_unknown(kid, now, s.next_miss_fetch)
            if self._unknown_events.allow(now):
                events.append(self._event("unknown_kid", now, kid=_safe_kid(kid)))
        return Step(None, key_not_found(), Action.NONE, generation, tuple(events))

    def _remember_unknown(self, kid: str | None, now: float, until: float) -> None:
        unknown = self._s.unknown
        if len(unknown) >= NEGATIVE_CACHE_SIZE:
            for stale in [k for k, expiry in unknown.items() if expiry <= now]:
                del unknown[stale]
            if len(unknown) >= NEGATIVE_CACHE_SIZE:
                unknown.clear()
        unknown[kid] = until

    def _unavailable(self, now: float) -> KeysUnavailable:
        wait = self._s.retry_at - now
        retry_after = int(min(max(math.ceil(wait), 1), 300)) if math.isfinite(wait) else 5
        return KeysUnavailable(retry_after=retry_after)

    def is_fresh(self, now: float) -> bool:
        """True when keys are held and no refresh is due at ``now``."""
        s = self._s
        return s.keys is not None and not s.forced and now < s.refresh_at

    def after_fork(self) -> None:
        """In a forked child: forget fetches that were running in the parent's threads.

        The keys stay (they are data); a fetch in flight at the fork will never complete here,
        and a lock its thread held would stay held.
        """
        self._lock = threading.Lock()
        self._s.in_flight = 0
        self._s.miss_claim = None
        self._recompute()

    def request_refresh(self) -> None:
        """Make the next lookup start a refresh, once, even during backoff (any thread)."""
        with self._lock:
            self._s.forced = True
            self._s.miss_claim = None
            self._quiet_until = -math.inf
            self._recompute()

    # -- the fetch lifecycle ----------------------------------------------------------------

    def begin_fetch(self, now: float) -> FetchTicket:
        """Register a fetch about to start; its ticket carries the conditional-request data."""
        with self._lock:
            s = self._s
            seq = s.next_seq
            s.next_seq += 1
            s.in_flight += 1
            s.forced = False
            self._recompute()
            if s.keys is None:
                return FetchTicket(seq, s.jwks_uri)
            return FetchTicket(seq, s.jwks_uri, s.etag, s.last_modified, s.digest)

    def abandon(self, ticket: FetchTicket) -> None:
        """A fetch was cancelled before it produced an outcome."""
        with self._lock:
            s = self._s
            s.in_flight = max(0, s.in_flight - 1)
            s.completed += 1
            self._recompute()

    def complete(self, ticket: FetchTicket, outcome: FetchOutcome, now: float) -> tuple[Event, ...]:
        """Apply the outcome of a fetch; returns the events it causes."""
        with self._lock:
            s = self._s
            s.in_flight = max(0, s.in_flight - 1)
            s.completed += 1
            s.last_completed_seq = max(s.last_completed_seq, ticket.seq)
            if ticket.seq <= s.applied_seq:
                # A newer fetch already answered: an older response never overwrites it.
                self._recompute()
                return ()
            s.applied_seq = ticket.seq
            if isinstance(outcome, NotModified) and s.keys is None:
                outcome = Failed("not_modified", "304 Not Modified, but no keys are held")
            if isinstance(outcome, Failed):
                events = self._on_failure(outcome, now)
            else:
                events = self._on_success(outcome, now)
            self._recompute()
            return tuple(events)

    def _on_success(self, outcome: Fetched | NotModified, now: float) -> list[Event]:
        s = self._s
        events: list[Event] = []
        changed = False
        if isinstance(outcome, Fetched):
            old = s.keys
            new = outcome.key_set
            old_ids = {_key_identity(k) for k in old.keys} if old is not None else set()
            new_ids = {_key_identity(k) for k in new.keys}
            if old is None or old_ids != new_ids:
                # A new KeySet object, so that holders can detect the change by identity.
                changed = True
                for key in new.keys:
                    if _key_identity(key) not in old_ids:
                        events.append(self._key_event("key_added", now, key))
                for key in old.keys if old is not None else ():
                    if _key_identity(key) not in new_ids:
                        events.append(self._key_event("key_removed", now, key))
                s.keys = new
                s.kids = frozenset(key.kid for key in new.keys)
            s.digest = outcome.digest
        s.jwks_uri = outcome.jwks_uri
        if outcome.etag is not None or isinstance(outcome, Fetched):
            s.etag = outcome.etag
        if outcome.last_modified is not None or isinstance(outcome, Fetched):
            s.last_modified = outcome.last_modified
        ttl = self.policy.lifetime(outcome.server_lifetime)
        s.fetched_at = now
        s.expires_at = now + ttl
        s.refresh_at = now + ttl * REFRESH_AHEAD_AT
        s.stale_until = s.expires_at + self.policy.max_stale
        detail: dict[str, Any] = {
            "ttl": ttl,
            "keys": len(s.keys.keys) if s.keys is not None else 0,
            "changed": changed,
            "jwks_uri": s.jwks_uri,
        }
        if s.failures:
            kind = "recovered"
            detail.update(failures=s.failures, last_error=s.last_error)
        else:
            kind = "refreshed" if isinstance(outcome, Fetched) else "not_modified"
        events.append(self._event(kind, now, **detail))
        s.failures = 0
        s.retry_at = -math.inf
        s.last_error = None
        s.last_error_at = None
        s.stale_announced = False
        return events

    def _on_failure(self, outcome: Failed, now: float) -> list[Event]:
        s = self._s
        s.failures += 1
        delay = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** (s.failures - 1))
        delay *= 0.5 + 0.5 * self._rng.random()  # jitter: fleets do not retry in lockstep
        s.retry_at = now + delay
        s.last_error = f"{outcome.kind}: {outcome.message}"
        s.last_error_at = now
        if outcome.rediscover and self._configured_jwks_uri is None:
            s.jwks_uri = None
        return [
            self._event(
                "refresh_failed",
                now,
                error=outcome.kind,
                message=outcome.message,
                failures=s.failures,
                retry_in=round(delay, 3),
                keys_held=s.keys is not None,
            )
        ]

    def _drop_keys(self) -> None:
        s = self._s
        s.keys = None
        s.kids = frozenset()
        s.etag = s.last_modified = None
        s.digest = None
        s.stale_announced = False
        self._recompute()

    def _recompute(self) -> None:
        s = self._s
        if s.keys is None or s.forced:
            self.fast = (_EMPTY, -math.inf)
            return
        if s.failures:
            boundary = s.stale_until if s.stale_announced else s.expires_at
            until = min(s.retry_at, boundary)
        else:
            until = s.refresh_at
        self.fast = (s.keys, until)

    # -- reading --------------------------------------------------------------------------

    def usable_keys(self, now: float) -> KeySet | None:
        """The keys trusted at ``now``: None before the first fetch and past ``max_stale``."""
        s = self._s
        keys = s.keys
        return keys if keys is not None and now < s.stale_until else None

    def status(self, now: float, issuer: str | None = None) -> KeySourceStatus:
        """A snapshot of the cache at ``now``."""
        with self._lock:
            s = self._s
            keys = self.usable_keys(now)
            held = keys.keys if keys is not None else ()
            return KeySourceStatus(
                issuer=issuer or self.label,
                jwks_uri=s.jwks_uri,
                keys=key_infos(held),
                fetched_at=s.fetched_at,
                expires_at=s.expires_at if s.fetched_at is not None else None,
                stale_until=s.stale_until if s.fetched_at is not None else None,
                serving_stale=bool(held) and s.failures > 0 and now >= s.expires_at,
                last_error=s.last_error,
                last_error_at=s.last_error_at,
                consecutive_failures=s.failures,
                next_retry_at=s.retry_at if s.failures else None,
                fetches=s.completed,
            )

    # -- events ---------------------------------------------------------------------------

    def _event(self, kind: str, now: float, *, kid: str | None = None, **detail: Any) -> Event:
        return Event(kind=kind, issuer=self.label, timestamp=now, kid=kid, detail=detail)

    def _key_event(self, kind: str, now: float, key: VerificationKey) -> Event:
        return Event(
            kind=kind,
            issuer=self.label,
            timestamp=now,
            kid=key.kid,
            thumbprint=key.thumbprint,
            detail={"kty": key.kty, "algorithms": sorted(key.verifiers)},
        )


def key_infos(keys: Iterable[VerificationKey]) -> tuple[KeyInfo, ...]:
    """Status entries for ``keys``."""
    return tuple(KeyInfo(k.kid, k.thumbprint, k.kty, tuple(sorted(k.verifiers))) for k in keys)
