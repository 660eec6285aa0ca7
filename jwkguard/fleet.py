"""A fleet from settings, for adapter authors: Redis-shared lifecycle state and metrics.

Application code sets ``JWKGUARD["FLEET"]`` (Django), ``JWKGUARD_FLEET`` (Flask) or
``[lifecycle]`` (``jwkguard serve``); each adapter builds the same :class:`Fleet` from it
with :func:`build_fleet`. See ``docs/fleet.md``. Other stores (the Django database store)
build on :class:`Replica`, :func:`track_forks` and :func:`lowered_options`.
"""

from __future__ import annotations

from ._fleet import (
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
from ._fleet import _lowered as lowered_options
from ._forks import track as track_forks
from ._replica import Replica
from ._stores import ChangeListener

__all__ = [
    "FLEET_SETTINGS",
    "ChangeListener",
    "Fleet",
    "FleetSettings",
    "Replica",
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
