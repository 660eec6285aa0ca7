"""Remote key sources: an issuer's keys from its ``jwks_uri`` or through discovery.

``RemoteKeySource`` is what the validator asks, one per issuer. Behind it, an ``_Endpoint``
joins the sans-IO cache (``_cache.JwksCache``, every decision) with the two fetch drivers
(``_fetch.SyncDriver`` and ``_fetch.AsyncDriver``, the IO). Issuers of one validator that name
the same ``jwks_uri`` with the same cache settings share one endpoint: one cache, one fetch.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from .. import _forks
from .._events import Event, EventHandler
from .._issuer import Issuer
from ..errors import KeysUnavailable
from ._cache import (
    Action,
    CachePolicy,
    FetchOutcome,
    FetchTicket,
    JwksCache,
    KeySourceStatus,
    Step,
)
from ._fetch import AsyncDriver, FetchTarget, SyncDriver, failed_internally, key_set_flow
from ._set import KeySet
from ._source import KeyMatch

__all__ = ["KeySourceStatus", "RemoteKeySource"]

logger = logging.getLogger("jwkguard.keys")

Clock = Callable[[], float]

# Events about one request's token, reported to that token's issuer only; every other event
# concerns the shared keys and goes to every issuer that uses them.
_REQUEST_EVENTS = frozenset({"unknown_kid", "cooldown_hit"})


class _Fetch:
    """One fetch under way: the cache's ticket for it, and its outcome once known."""

    __slots__ = ("outcome", "ticket")

    outcome: FetchOutcome  # set by the driver's run, or by _fetching on an error

    def __init__(self, ticket: FetchTicket) -> None:
        self.ticket = ticket


class _Endpoint:
    """One JWK Set location: its cache and both drivers, shared by the issuers that use it."""

    def __init__(self, target: FetchTarget, policy: CachePolicy, clock: Clock) -> None:
        self.target = target
        self.clock = clock
        self.cache = JwksCache(target.issuer, policy, jwks_uri=target.jwks_uri)
        self.sync = SyncDriver(target)
        self.aio = AsyncDriver(target)
        self.members: dict[str, EventHandler] = {}
        # Waiters give up a little after the longest a fetch may take.
        self.wait_bound = target.budget + 0.5
        self._ahead: threading.Thread | None = None
        self._ahead_lock = threading.Lock()
        _forks.track(self)

    def _after_fork_in_child(self) -> None:
        # A refresh thread, a fetch in flight, the locks they held and the pooled HTTP
        # connections stay with the parent; the child keeps the keys and fetches afresh.
        self._ahead = None
        self._ahead_lock = threading.Lock()
        self.cache.after_fork()
        self.sync.after_fork()
        self.aio.drop()

    def emit(self, events: Iterable[Event], issuer: str) -> None:
        """Send ``events`` to the issuers concerned; a failing handler never breaks a fetch."""
        for event in events:
            if event.kind in _REQUEST_EVENTS:
                targets = [(issuer, self.members[issuer])]
            else:
                targets = list(self.members.items())
            for name, handler in targets:
                try:
                    handler(
                        event if name == event.issuer else dataclasses.replace(event, issuer=name)
                    )
                except Exception:
                    logger.exception("event handler failed on %s", event.kind)

    # -- one fetch, in each world -----------------------------------------------------------

    def fetch(self) -> None:
        """Fetch now on this thread and apply the outcome."""
        with self._fetching() as fetch:
            fetch.outcome = self.sync.run(key_set_flow(self.target, fetch.ticket))

    async def afetch(self) -> None:
        """Fetch now on the running event loop and apply the outcome."""
        with self._fetching() as fetch:
            fetch.outcome = await self.aio.run(key_set_flow(self.target, fetch.ticket))

    @contextmanager
    def _fetching(self) -> Iterator[_Fetch]:
        """One fetch for either driver: begun here, its outcome applied on leaving.

        An unexpected error counts as a failed fetch; an interruption (``KeyboardInterrupt``,
        a cancelled task) abandons the fetch, so the next caller starts one afresh.
        """
        cache = self.cache
        fetch = _Fetch(cache.begin_fetch(self.clock()))
        try:
            yield fetch
        except Exception as exc:
            logger.exception("fetching the JWK Set of %s failed unexpectedly", self.target.issuer)
            fetch.outcome = failed_internally(exc)
        except BaseException:
            cache.abandon(fetch.ticket)
            raise
        self.emit(cache.complete(fetch.ticket, fetch.outcome, self.clock()), self.target.issuer)

    # -- single flight ----------------------------------------------------------------------

    def after_step(self, step: Step) -> bool:
        """Do what ``step`` asks; True when a fetch completed meanwhile.

        A refresh ahead of expiry runs on a background thread, so the caller, whose key is
        cached, never waits for the network; a needed fetch runs (or is joined) on this thread.
        """
        generation = step.generation
        if step.action is Action.AHEAD:
            self._refresh_in_background(generation)
            return False
        return self.sync.single_flight(
            lambda: self.cache.generation != generation,
            wait=step.action is Action.WAIT,
            patience=self.wait_bound,
            fetch=self.fetch,
        )

    def _refresh_in_background(self, generation: int) -> None:
        with self._ahead_lock:
            if self._ahead is not None and self._ahead.is_alive():
                return
            self._ahead = threading.Thread(
                target=self.sync.single_flight,
                args=(lambda: self.cache.generation != generation,),
                kwargs={"wait": False, "patience": self.wait_bound, "fetch": self.fetch},
                name=f"jwkguard-refresh-{self.target.issuer}",
                daemon=True,
            )
            self._ahead.start()

    async def aafter_step(self, step: Step) -> bool:
        """Do what ``step`` asks on the event loop; True when a fetch completed meanwhile."""
        generation = step.generation
        return await self.aio.single_flight(
            lambda: self.cache.generation != generation,
            wait=step.action is Action.WAIT,
            patience=self.wait_bound,
            fetch=self.afetch,
        )

    def refresh(self) -> None:
        """Fetch, unless a fetch that began after this call has completed meanwhile."""
        wanted = self.cache.next_seq
        self.sync.single_flight(
            lambda: self.cache.completed_since(wanted),
            wait=True,
            patience=self.wait_bound,
            fetch=self.fetch,
        )

    async def arefresh(self) -> None:
        """Fetch, unless a fetch that began after this call has completed meanwhile."""
        wanted = self.cache.next_seq
        # A fetch already running may predate the call: wait for it, then fetch again.
        for _ in range(2):
            await self.aio.single_flight(
                lambda: self.cache.completed_since(wanted),
                wait=True,
                patience=self.wait_bound,
                fetch=self.afetch,
            )
            if self.cache.completed_since(wanted):
                return


class RemoteKeySource:
    """An issuer's keys fetched over HTTPS and cached: rotation, outages and floods handled.

    Built by ``Validator`` for every issuer with a ``jwks_uri`` or discovery; construction
    does no IO. ``key_for`` / ``akey_for`` answer from the cache whenever they can: a request
    whose key is cached never waits for the network (see ``docs/key-lifecycle.md``).

    Args:
        issuer: The issuer's configuration (URLs, cache timings, guards).
        algorithms: The allowed asymmetric algorithms.
        clock: The validator's clock (unix time).
        on_event: Receives the trust-change events.
        shared: A validator-wide registry through which issuers that share a ``jwks_uri``
            (and cache settings) share one cache and one fetch.
    """

    def __init__(
        self,
        issuer: Issuer,
        *,
        algorithms: Collection[str],
        clock: Clock,
        on_event: EventHandler,
        shared: MutableMapping[Any, Any] | None = None,
    ) -> None:
        target = FetchTarget.for_issuer(issuer, frozenset(algorithms))
        policy = CachePolicy.for_issuer(issuer)
        key = None
        if shared is not None and issuer.jwks_uri is not None:
            key = ("jwks", dataclasses.replace(target, issuer=""), policy)
        endpoint = shared.get(key) if shared is not None and key is not None else None
        if not isinstance(endpoint, _Endpoint):
            endpoint = _Endpoint(target, policy, clock)
            if shared is not None and key is not None:
                shared[key] = endpoint
        endpoint.members[issuer.issuer] = on_event
        self.issuer = issuer.issuer
        self._endpoint = endpoint
        self._cache = endpoint.cache
        self._clock = clock

    def _plan(self, kid: str | None, alg: str, now: float, *, final: bool = False) -> Step:
        step = self._cache.plan(kid, alg, now, final=final)
        if step.events:
            self._endpoint.emit(step.events, self.issuer)
        return step

    def _known_key(self, kid: str | None, alg: str, now: float) -> KeyMatch | None:
        """``key_for``'s fast path (which ``key_for`` inlines): the cached key while the keys
        are fresh, else None; a kid remembered as unknown is refused at once."""
        keys, until = self._cache.fast
        if now >= until:
            return None
        found = keys.select(kid, alg)
        if found is None:
            self._cache.refuse_if_remembered(kid, now)  # a flood costs a dict lookup
        return found

    # -- the KeySource protocol -------------------------------------------------------------

    def key_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        """The key for ``kid`` and ``alg``; fetches (once, shared) only when it must.

        Raises:
            KeyNotFound: No usable key has this ``kid`` (after at most one refetch per
                cooldown).
            KeysUnavailable: No keys can be had (never fetched, or stale past ``max_stale``).
        """
        keys, until = self._cache.fast  # the hot path: one tuple, one dict lookup
        if now < until:
            found = keys.select(kid, alg)
            if found is not None:
                return found
            self._cache.refuse_if_remembered(kid, now)  # a flood costs a dict lookup
        step = self._plan(kid, alg, now)
        if step.action is not Action.NONE:
            fetched = self._endpoint.after_step(step)
            if fetched or step.action is Action.WAIT:
                step = self._plan(kid, alg, self._clock(), final=True)
        return step.result()

    async def akey_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        """Same decisions as ``key_for``; refreshes ahead in a background task."""
        found = self._known_key(kid, alg, now)
        if found is not None:
            return found
        step = self._plan(kid, alg, now)
        if step.action is not Action.NONE:
            fetched = await self._endpoint.aafter_step(step)
            if fetched or step.action is Action.WAIT:
                step = self._plan(kid, alg, self._clock(), final=True)
        return step.result()

    def current_keys(self) -> KeySet | None:
        """The keys trusted now; a new ``KeySet`` object whenever they change."""
        return self._cache.usable_keys(self._clock())

    def warm_up(self) -> None:
        """Fetch the keys now unless they are fresh; bounded by the issuer's timeout.

        Raises:
            KeysUnavailable: No usable keys could be had; the cause says why.
        """
        if not self._cache.is_fresh(self._clock()):
            self._endpoint.refresh()
        self._raise_if_unusable()

    async def awarm_up(self) -> None:
        """Like ``warm_up``, without blocking the event loop."""
        if not self._cache.is_fresh(self._clock()):
            await self._endpoint.arefresh()
        self._raise_if_unusable()

    def close(self) -> None:
        """Close the HTTP client(s); a later fetch opens new ones."""
        self._endpoint.sync.close()
        self._endpoint.aio.drop()

    async def aclose(self) -> None:
        """Cancel a running background refresh and close the HTTP clients."""
        self._endpoint.sync.close()
        await self._endpoint.aio.aclose()

    # -- for operators and the fleet layer --------------------------------------------------

    def refresh(self) -> bool:
        """Fetch the JWK Set now (shared with concurrent callers); True if it succeeded.

        A fetch already running when this is called is waited for, then another is made, so
        the keys reflect the server at or after the call.
        """
        self._endpoint.refresh()
        return self._healthy()

    async def arefresh(self) -> bool:
        """Like ``refresh``, without blocking the event loop."""
        await self._endpoint.arefresh()
        return self._healthy()

    def request_refresh(self) -> None:
        """Mark the keys due: the next lookup starts a refresh (safe from any thread).

        Requests keep being served from the current keys while it runs.
        """
        self._cache.request_refresh()

    def status(self) -> KeySourceStatus:
        """A snapshot: keys, timestamps, staleness and the last error (no IO)."""
        return self._cache.status(self._clock(), issuer=self.issuer)

    @property
    def shares_endpoint(self) -> bool:
        """True when other issuers use the same cache and fetches."""
        return len(self._endpoint.members) > 1

    def _healthy(self) -> bool:
        status = self.status()
        return status.ready and status.consecutive_failures == 0

    def _raise_if_unusable(self) -> None:
        if self._cache.usable_keys(self._clock()) is not None:
            return
        error = self.status().last_error or "no keys were fetched in time"
        raise KeysUnavailable() from _FetchFailure(f"issuer {self.issuer}: {error}")


class _FetchFailure(Exception):
    """Why ``warm_up`` found no keys (chained to ``KeysUnavailable`` for operators)."""
