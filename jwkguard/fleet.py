"""A fleet from settings, for adapter authors: Redis-shared lifecycle state and metrics.

Application code sets ``JWKGUARD["FLEET"]`` (Django), ``JWKGUARD_FLEET`` (Flask) or
``[lifecycle]`` (``jwkguard serve``); each adapter builds the same :class:`Fleet` from it
with :func:`build_fleet`. See ``docs/fleet.md``.
"""

from __future__ import annotations

from ._fleet import (
    FLEET_SETTINGS,
    Fleet,
    FleetSettings,
    build_fleet,
    build_fleet_settings,
    build_metrics,
    render_metrics,
    wire_validator,
    wired_settings,
)

__all__ = [
    "FLEET_SETTINGS",
    "Fleet",
    "FleetSettings",
    "build_fleet",
    "build_fleet_settings",
    "build_metrics",
    "render_metrics",
    "wire_validator",
    "wired_settings",
]
