"""A settings-built store and its lifecycle policy, wired to a validator the same way everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

from .._events import Event, EventHandler, log_event
from ..lifecycle._policy import Lifecycle, ReuseWatch, UnavailablePolicy
from ..lifecycle._store import LifecycleStore

if TYPE_CHECKING:
    from .._validator import Validator

__all__ = ["WiredLifecycle"]


class _ThreadedStore(LifecycleStore, Protocol):
    def start_on_first_use(self) -> Self: ...

    def close(self) -> None: ...


StoreT = TypeVar("StoreT", bound=_ThreadedStore)


class WiredLifecycle(Generic[StoreT]):
    """A replica-backed store, started on first use, and the :class:`Lifecycle` that reads it.

    The store's events go to the ``jwkguard.events`` logger until :meth:`attach` hands them
    to the validator's handler (a fleet's :class:`~jwkguard.fleet.Fleet`, the Django
    database store's ``DatabaseLifecycle``).

    Args:
        build_store: Makes the store, given the handler for its events.
        on_unavailable: The lifecycle's policy while the store is unavailable.
        reuse: The lifecycle's reuse watch, or None.
    """

    def __init__(
        self,
        build_store: Callable[[EventHandler], StoreT],
        *,
        on_unavailable: UnavailablePolicy,
        reuse: ReuseWatch | None,
    ) -> None:
        self._handler: EventHandler = log_event
        self.store: StoreT = build_store(self._emit).start_on_first_use()
        self.lifecycle = Lifecycle(self.store, on_unavailable=on_unavailable, reuse=reuse)

    def _emit(self, event: Event) -> None:
        self._handler(event)

    def attach(self, validator: Validator) -> Validator:
        """Act on ``force_refresh`` for ``validator`` and send store events to its handler."""
        self._handler = validator.on_event
        self.lifecycle.attach(validator)
        return validator

    def close(self) -> None:
        """Stop the store's thread and close its connections (in this process)."""
        self.store.close()
