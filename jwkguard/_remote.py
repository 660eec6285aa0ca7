"""Remote key sources (jwks_uri and discovery): not built yet."""

from __future__ import annotations

from collections.abc import Callable, Collection

from ._events import EventHandler
from ._issuer import Issuer
from ._keysource import KeySource
from .errors import ConfigurationError

__all__ = ["RemoteKeySource"]


def RemoteKeySource(
    issuer: Issuer,
    *,
    algorithms: Collection[str],
    clock: Callable[[], float],
    on_event: EventHandler,
) -> KeySource:
    """Placeholder until remote key sources land."""
    raise ConfigurationError(f"issuer {issuer.issuer}: remote key sources are not available yet")
