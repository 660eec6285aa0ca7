"""A fleet from settings: one Redis store and lifecycle policy per app, started per process.

Django (``JWKGUARD["FLEET"]``), Flask (``JWKGUARD_FLEET``) and ``jwkguard serve``
(``[lifecycle]``, in lower case, no reuse watch unless set) read the same keys,
case-insensitively, unknown keys refused::

    REDIS_URL        redis://host:6379/0 (required; a bare URL string is accepted too)
    PREFIX           key and channel prefix (default "jwkguard:")
    ON_UNAVAILABLE   "fail_open" (default) or "fail_closed"
    REUSE            {MAX_ADDRESSES, MAX_USES, WINDOW}: token_reuse events (default
                     {MAX_ADDRESSES: 1}); False turns the reuse watch off
    DPOP_REPLAY      remember DPoP proofs in this Redis when DPoP is on (default True)
    HEARTBEAT, RESYNC_INTERVAL, SOCKET_TIMEOUT, CONNECT_TIMEOUT, RESTORE
                     passed to RedisStore

Building a :class:`Fleet` does no IO and starts no thread: its store starts the first time a
process consults it (:meth:`RedisStore.start_on_first_use`), so under a pre-fork server
(gunicorn ``--preload``, uvicorn ``--workers``) every worker runs its own listener, and a
store started before a fork restarts in the child.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._checks import lowered_options
from .._events import EventHandler, log_event
from .._lazy import install_hint
from ..errors import ConfigurationError
from ..lifecycle._audit import fan_out
from ..lifecycle._policy import ReuseWatch, UnavailablePolicy
from ..sender._dpop import DPoPVerifier
from ._redis_store import RedisStore
from ._replay_ledger import RedisReplayLedger
from ._wired import WiredLifecycle

if TYPE_CHECKING:
    from .._validator import Validator
    from ..metrics._prometheus import PrometheusMetrics

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

_STORE_OPTIONS = frozenset(
    {"heartbeat", "resync_interval", "socket_timeout", "connect_timeout", "restore"}
)
FLEET_SETTINGS = frozenset(
    {"redis_url", "prefix", "on_unavailable", "reuse", "dpop_replay"} | _STORE_OPTIONS
)
"""Lower-case keys of a fleet mapping."""
_REUSE_SETTINGS = frozenset({"max_addresses", "max_uses", "window"})


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The fleet's settings, checked.

    Attributes:
        redis_url: Where the fleet's state lives.
        prefix: Prefix of every key and of the change channel.
        on_unavailable: The lifecycle policy while Redis cannot be reached.
        reuse: When to emit ``token_reuse`` events; None: no reuse watch.
        dpop_replay: Remember DPoP proofs in this Redis (fleet-wide replay detection).
        store_options: Further ``RedisStore`` keyword arguments (timeouts, heartbeat...).
    """

    redis_url: str
    prefix: str = "jwkguard:"
    on_unavailable: UnavailablePolicy = "fail_open"
    reuse: ReuseWatch | None = field(default_factory=ReuseWatch)
    dpop_replay: bool = True
    store_options: Mapping[str, Any] = field(default_factory=dict)

    def _store(self, on_event: EventHandler) -> RedisStore:
        """The store these settings describe (not started), its events to ``on_event``."""
        return RedisStore(
            self.redis_url, prefix=self.prefix, on_event=on_event, **self.store_options
        )


def lifecycle_policy(
    options: Mapping[str, Any], where: str
) -> tuple[UnavailablePolicy, ReuseWatch | None]:
    """``ON_UNAVAILABLE`` and ``REUSE`` of a lower-cased store mapping (Redis or database).

    ``REUSE`` is True (a default :class:`ReuseWatch`), False/None (off), a ``ReuseWatch``, or
    a mapping of its options.

    Raises:
        ConfigurationError: A value of the wrong kind, named by ``where``.
    """
    policy = options.get("on_unavailable", "fail_open")
    if policy not in ("fail_open", "fail_closed"):
        raise ConfigurationError(f"{where}.ON_UNAVAILABLE must be 'fail_open' or 'fail_closed'")
    reuse_value = options.get("reuse", True)
    if reuse_value is False or reuse_value is None:
        return policy, None
    if reuse_value is True:
        return policy, ReuseWatch()
    if isinstance(reuse_value, ReuseWatch):
        return policy, reuse_value
    if isinstance(reuse_value, Mapping):
        reuse = lowered_options(reuse_value, f"{where}.REUSE", _REUSE_SETTINGS)
        try:
            return policy, ReuseWatch(**reuse)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}.REUSE: {exc}") from exc
    raise ConfigurationError(f"{where}.REUSE must be a mapping, True or False")


def build_fleet_settings(value: Any, *, where: str = "FLEET") -> FleetSettings | None:
    """:class:`FleetSettings` from a mapping (or a Redis URL); None for ``None``/``False``.

    Raises:
        ConfigurationError: Unknown keys or bad values, naming ``where``.
    """
    if value is None or value is False:
        return None
    if isinstance(value, FleetSettings):
        return value
    if isinstance(value, str):
        value = {"redis_url": value}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where} must be a mapping with REDIS_URL, or a Redis URL")
    options = lowered_options(value, where, FLEET_SETTINGS)
    url = options.get("redis_url")
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{where}.REDIS_URL must be a Redis URL (redis://host:6379/0)")
    prefix = options.get("prefix", "jwkguard:")
    if not isinstance(prefix, str):
        raise ConfigurationError(f"{where}.PREFIX must be a string")
    policy, reuse = lifecycle_policy(options, where)
    dpop_replay = options.get("dpop_replay", True)
    if not isinstance(dpop_replay, bool):
        raise ConfigurationError(f"{where}.DPOP_REPLAY must be True or False")
    store_options = {key: options[key] for key in _STORE_OPTIONS & options.keys()}
    if "restore" in store_options and not isinstance(store_options["restore"], bool):
        raise ConfigurationError(f"{where}.RESTORE must be True or False")
    settings = FleetSettings(
        redis_url=url,
        prefix=prefix,
        on_unavailable=policy,
        reuse=reuse,
        dpop_replay=dpop_replay,
        store_options=store_options,
    )
    # Build (without starting) once, so a bad timeout or URL fails here rather than later.
    try:
        settings._store(log_event)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    return settings


class Fleet(WiredLifecycle[RedisStore]):
    """A :class:`RedisStore` and its :class:`Lifecycle`, wired the same way in every adapter.

    The store starts in each process the first time it is consulted, so build the fleet
    wherever the app is configured, before or after a fork. Call :meth:`attach` with the
    validator built with ``lifecycle=fleet.lifecycle``: ``force_refresh`` broadcasts then
    refetch its keys, and the store's and policy's events go to the validator's handler.

    Args:
        settings: What :func:`build_fleet_settings` made.
    """

    def __init__(self, settings: FleetSettings) -> None:
        self.settings = settings
        super().__init__(
            settings._store, on_unavailable=settings.on_unavailable, reuse=settings.reuse
        )

    def replay_ledger(self) -> RedisReplayLedger:
        """A DPoP replay ledger in this fleet's Redis, under its ``on_unavailable`` policy."""
        return RedisReplayLedger(
            self.store, on_unavailable=self.settings.on_unavailable, on_event=self._emit
        )

    def with_dpop_replay(self, dpop: Any) -> Any:
        """A ``DPOP`` setting with proofs remembered in this fleet's Redis.

        ``True`` or a mapping of options without ``REPLAY`` get the fleet's ledger; a ready
        ``DPoPVerifier``, an explicit ``REPLAY``, or ``DPOP_REPLAY = False`` are left alone.
        """
        if not self.settings.dpop_replay or dpop is None or dpop is False:
            return dpop
        if isinstance(dpop, DPoPVerifier):
            return dpop
        if dpop is True:
            return {"replay": self.replay_ledger()}
        if isinstance(dpop, Mapping):
            if any(str(key).lower() == "replay" for key in dpop):
                return dpop
            return {**dpop, "replay": self.replay_ledger()}
        return dpop

    async def aclose(self) -> None:
        """``close`` on the running event loop, closing the async client too."""
        await self.store.aclose()


def build_fleet(value: Any, *, where: str = "FLEET") -> Fleet | None:
    """A :class:`Fleet` from settings (see the module docstring), or None when unset."""
    settings = build_fleet_settings(value, where=where)
    return None if settings is None else Fleet(settings)


def build_metrics(value: Any, *, where: str = "METRICS") -> PrometheusMetrics | None:
    """Prometheus metrics from ``True`` (a fresh registry), a ``PrometheusMetrics``, or off.

    A fresh ``CollectorRegistry`` per app keeps two apps (or a rebuilt settings object) in
    one process from colliding on the global registry; serve it with :func:`render_metrics`.
    """
    from ..metrics._prometheus import PrometheusMetrics

    if value is None or value is False:
        return None
    if isinstance(value, PrometheusMetrics):
        return value
    if value is not True:
        raise ConfigurationError(f"{where} must be True, False or a PrometheusMetrics")
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        raise ConfigurationError(install_hint(where, "prometheus_client", "prometheus")) from None
    return PrometheusMetrics(registry=CollectorRegistry())


def render_metrics(metrics: PrometheusMetrics) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``metrics``: (body, content type)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


def wired_settings(
    settings: Mapping[str, Any],
    fleet: Fleet | None,
    metrics: PrometheusMetrics | None,
    *,
    lifecycle_name: str = "LIFECYCLE",
) -> dict[str, Any]:
    """Validator settings (lower-case keys) with the fleet's lifecycle and the metrics' events.

    Raises:
        ConfigurationError: The settings name a lifecycle of their own besides the fleet.
    """
    wired = dict(settings)
    if fleet is not None:
        if wired.get("lifecycle") is not None:
            raise ConfigurationError(
                f"set the fleet or {lifecycle_name}, not both: the fleet builds the lifecycle"
            )
        wired["lifecycle"] = fleet.lifecycle
    if metrics is not None:
        wired["on_event"] = fan_out(wired.get("on_event") or log_event, metrics.on_event)
    return wired


def wire_validator(
    validator: Validator, fleet: Fleet | None, metrics: PrometheusMetrics | None
) -> Validator:
    """Attach ``fleet`` to ``validator`` and count its validations in ``metrics``."""
    if fleet is not None:
        fleet.attach(validator)
    if metrics is not None:
        metrics.instrument(validator)
    return validator
