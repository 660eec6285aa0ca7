"""What every replica-backed lifecycle store shares: its thread, availability and health.

A replica-backed store (:class:`~jwkguard.fleet.RedisStore`, the Django ``DatabaseStore``) keeps
a :class:`~jwkguard.lifecycle.Replica` in every process, kept current by a background thread
whose loop the store writes (``_run``). This base owns the rest, the same for every backend:
starting and stopping that thread, starting it lazily on first use (pre-fork servers) and again
in a forked child, the up/down state with its ``store_unavailable`` / ``store_recovered``
events, and the listeners of ``force_refresh`` changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Self

from .. import _forks
from .._events import Event, EventHandler, log_event
from ..errors import StoreUnavailable
from ._replica import LifecycleChange, Replica
from ._store import ChangeListener

__all__ = ["ReplicatedStore"]

logger = logging.getLogger("jwkguard.lifecycle")

_State = Literal["starting", "up", "down"]


class ReplicatedStore:
    """A lifecycle store read through a local replica that a background thread keeps current.

    A subclass writes ``_run`` (the thread: load the replica, then keep it current until
    ``_stop`` is set, calling ``_mark_up()`` after each good pass and ``_mark_down(exc)`` or
    ``_failed(exc)`` on a failure), ``close`` (``_stop_thread`` and its own connections) and
    the :class:`~jwkguard.lifecycle.LifecycleStore` writes, applying changes to ``_replica``
    under ``_lock``.

    Args:
        backend: The ``store`` field of this store's events (``"redis"``, ``"database"``).
        thread_name: The background thread's name.
        first_load_wait: How long a lazily started store waits for its first load, seconds.
        clock: Unix time for events and expiries; default ``time.time``.
        on_event: Receives ``store_unavailable``, ``store_recovered`` and the backend's own.
    """

    def __init__(
        self,
        *,
        backend: str,
        thread_name: str,
        first_load_wait: float,
        clock: Callable[[], float] | None,
        on_event: EventHandler | None,
    ) -> None:
        self._backend = backend
        self._thread_name = thread_name
        self._first_load_wait = first_load_wait
        self._clock = clock or time.time
        self._on_event: EventHandler = on_event or log_event
        self._replica = Replica()
        self._lock = threading.Lock()  # guards the replica and the store's place in the changes
        self._state: _State = "starting"
        self._state_lock = threading.Lock()
        self._outages = 0
        self._listeners: list[ChangeListener] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._attempted = threading.Event()
        # Start the thread the first time this process consults the store: set by
        # start_on_first_use(), and in a child forked from a process that had started it.
        self._revive = False
        self._revive_lock = threading.Lock()
        _forks.track(self)

    def _run(self) -> None:
        """The background thread: load the replica, then keep it current until ``_stop``."""
        raise NotImplementedError

    # -- what the hot path reads ----------------------------------------------------------

    @property
    def replica(self) -> Replica:
        """The local copy of revocations, cut-offs and distrusted keys."""
        return self._replica

    @property
    def available(self) -> bool:
        """True while the replica is loaded and kept current, and the backend answers.

        A store set to :meth:`start_on_first_use`, or forked from a process that had started
        it, starts its thread here the first time it is asked, waiting a bounded time for the
        first load (``connect_timeout + 2 * socket_timeout`` for Redis, ``poll_interval`` for
        the database); until then it is unavailable.
        """
        if self._state == "up":
            return True
        if self._revive:
            self._revive_thread()
            return self._is_up()
        return False

    def _is_up(self) -> bool:
        return self._state == "up"

    @property
    def outages(self) -> int:
        """How many times the store has become unavailable (counts from 0)."""
        return self._outages

    # -- lifetime -------------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> Self:
        """Load the replica and start the background thread.

        Waits until the first load succeeded or failed (at most ``timeout`` seconds); if the
        backend is unreachable the store starts unavailable and keeps retrying.
        """
        self._start_thread()
        self._attempted.wait(timeout)
        return self

    def _start_thread(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._attempted.clear()
            self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
            self._thread.start()

    def start_on_first_use(self) -> Self:
        """Start the thread lazily, the first time a process consults the store.

        For settings-built stores and pre-fork servers (gunicorn ``--preload``): a process
        that only builds the store (the master) starts no thread and opens no connection;
        each worker starts its own on its first request.
        """
        self._revive = True
        return self

    def _revive_thread(self) -> None:
        with self._revive_lock:
            if not self._revive:
                return
            self._revive = False
            self._start_thread()
        self._attempted.wait(self._first_load_wait)

    def _stop_thread(self, timeout: float) -> None:
        """Stop the thread for good (no lazy restart), waiting at most ``timeout`` for it."""
        self._revive = False
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)

    def _after_fork_in_child(self) -> None:
        # The thread did not survive the fork and a lock it held stays held: start afresh.
        # The inherited replica is no longer kept current, so the store is unavailable until
        # this process has started its own thread and reloaded (on first use, see `available`).
        self._revive = self._revive or self._thread is not None
        self._thread = None
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._revive_lock = threading.Lock()
        self._stop = threading.Event()
        self._attempted = threading.Event()
        self._state = "starting"

    # -- force_refresh listeners ----------------------------------------------------------

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` (on the store's thread) with every ``force_refresh`` received."""
        self._listeners.append(listener)

    def _broadcast(self, change: LifecycleChange) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop the replica
                logger.exception("lifecycle listener failed on %s", change.op)

    # -- health ---------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        self._mark_down(exc)
        return StoreUnavailable("The lifecycle store cannot be reached")

    def _mark_down(self, exc: BaseException) -> None:
        with self._state_lock:
            if self._state == "down":
                return
            self._state = "down"
            self._outages += 1
        self._emit("store_unavailable", error=type(exc).__name__)

    def _mark_up(self) -> None:
        with self._state_lock:
            previous, self._state = self._state, "up"
        self._attempted.set()
        if previous == "down":
            self._emit("store_recovered", **self._replica.counts())

    def _emit(self, kind: str, **detail: Any) -> None:
        event = Event(
            kind=kind,
            issuer="*",
            timestamp=self._clock(),
            detail={"store": self._backend, **detail},
        )
        try:
            self._on_event(event)
        except Exception:  # an event handler's bug must not stop the replica
            logger.exception("lifecycle event handler failed on %s", kind)
