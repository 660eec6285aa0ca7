"""Fork safety: objects that own threads, locks or connections reset themselves in a child.

A fork copies memory but not threads: a listener thread, a refresh in flight, a lock held by
another thread, a pooled socket the parent keeps using all arrive in the child as lies. Objects
that own such things call :func:`track` once; after a fork, the child calls each live one's
``_after_fork_in_child()`` (in the child, before any other code of the child runs), which drops
what cannot survive and arranges to start afresh. Nothing runs in the parent.

The hook is registered on the first :func:`track`, not at import, and holds its objects weakly.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "track"]

logger = logging.getLogger("jwkguard.forks")


class ForkAware(Protocol):
    """An object that repairs itself in a forked child."""

    def _after_fork_in_child(self) -> None: ...


_tracked: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_registered = False
_register_lock = threading.Lock()


def track(owner: ForkAware) -> None:
    """Call ``owner._after_fork_in_child()`` in every child forked from now on."""
    global _registered
    _tracked.add(owner)
    if not _registered:
        with _register_lock:
            if not _registered and hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
                _registered = True


def _after_fork_in_child() -> None:
    for owner in list(_tracked):
        try:
            owner._after_fork_in_child()
        except Exception:  # one object's failure must not leave the others unrepaired
            logger.exception("jwkguard: resetting %r after fork failed", owner)
