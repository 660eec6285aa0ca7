"""A fleet from settings, for adapter authors: Redis-shared lifecycle state and metrics.

Application code sets ``JWKGUARD["FLEET"]`` (Django), ``JWKGUARD_FLEET`` (Flask) or
``[lifecycle]`` (``jwkguard serve``); each adapter builds the same :class:`Fleet` from it
with :func:`build_fleet`. See ``docs/fleet.md``. Other stores (the Django database store)
build on :class:`ReplicatedStore` (a :class:`Replica` kept current by a background thread),
:class:`WiredLifecycle` (the store and its policy wired to a validator), :func:`track_forks`
and :func:`lowered_options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

if TYPE_CHECKING:
    from .._checks import lowered_options
    from .._forks import track as track_forks
    from ..lifecycle._replica import Replica
    from ..lifecycle._replicated import ReplicatedStore
    from ..lifecycle._store import ChangeListener
    from ._redis_store import RedisStore
    from ._replay_ledger import RedisReplayLedger
    from ._settings import (
        FLEET_SETTINGS,
        Fleet,
        FleetSettings,
        build_fleet,
        build_fleet_settings,
        build_metrics,
        lifecycle_policy,
        render_metrics,
        wire_validator,
        wired_settings,
    )
    from ._wired import WiredLifecycle

__all__ = [
    "FLEET_SETTINGS",
    "ChangeListener",
    "Fleet",
    "FleetSettings",
    "RedisReplayLedger",
    "RedisStore",
    "Replica",
    "ReplicatedStore",
    "WiredLifecycle",
    "build_fleet",
    "build_fleet_settings",
    "build_metrics",
    "lifecycle_policy",
    "lowered_options",
    "render_metrics",
    "track_forks",
    "wire_validator",
    "wired_settings",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "ChangeListener": "..lifecycle._store",
        "FLEET_SETTINGS": "._settings",
        "Fleet": "._settings",
        "FleetSettings": "._settings",
        "RedisReplayLedger": "._replay_ledger",
        "RedisStore": "._redis_store",
        "Replica": "..lifecycle._replica",
        "ReplicatedStore": "..lifecycle._replicated",
        "WiredLifecycle": "._wired",
        "build_fleet": "._settings",
        "build_fleet_settings": "._settings",
        "build_metrics": "._settings",
        "lifecycle_policy": "._settings",
        "lowered_options": ".._checks",
        "render_metrics": "._settings",
        "track_forks": ".._forks:track",
        "wire_validator": "._settings",
        "wired_settings": "._settings",
    },
)
