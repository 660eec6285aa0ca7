"""The ``JWKGUARD`` setting, read lazily so that ``override_settings`` works.

Validator and issuer options go to :func:`jwkguard.build_validator` as they are; the keys below
belong to this adapter. The built validator is cached against the identity of the settings
dict and dropped when ``setting_changed`` reports a new ``JWKGUARD``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jwkguard import Claims, ConfigurationError, RequestPipeline, Validator, build_validator
from jwkguard import settings_from_env as _settings_from_env
from jwkguard.fleet import (
    Fleet,
    build_fleet,
    build_fleet_settings,
    build_metrics,
    wire_validator,
    wired_settings,
)
from jwkguard.pipeline import (
    Exemptions,
    QueryPolicy,
    build_resource_metadata,
    query_policy,
    resource_identifier,
)
from jwkguard.sender import SenderSettings, build_pipeline, build_sender_settings

if TYPE_CHECKING:
    from jwkguard.metrics import PrometheusMetrics

    from .lifecycle import DatabaseLifecycle

__all__ = [
    "ADAPTER_SETTINGS",
    "MODES",
    "AdapterOptions",
    "State",
    "get_state",
    "get_validator",
    "parse_options",
    "reset",
    "resolve_settings",
    "settings_from_env",
]

ADAPTER_SETTINGS = (
    frozenset(
        {
            "mode",
            "exempt_paths",
            "exempt_methods",
            "realm",
            "user_loader",
            "allow_query_token",
            "warm_up",
            "require_keys",
            "fleet",
            "lifecycle_store",
            "metrics",
            "resource",
        }
    )
    | SenderSettings.NAMES
)
"""Lower-case keys of ``JWKGUARD`` that configure the adapter rather than the validator.

Besides the adapter's own, the sender-constraint keys (``DPOP``, ``REQUIRE_DPOP``,
``REQUIRE_DPOP_ISSUERS``, ``REQUIRE_CLIENT_CERTIFICATE``, ``CLIENT_CERT_HEADER``,
``TRUSTED_PROXIES``, ``INTROSPECTION``): see ``docs/sender-constrained.md``.
"""

MODES = ("protect", "optional")
"""``protect``: every view needs a token unless exempt. ``optional``: decorators decide."""

# Options that take callables: in Django settings they may be given as dotted import paths.
_CALLABLE_SETTINGS = frozenset({"clock", "on_event", "lifecycle"})
UserLoader = Callable[[Claims], Any]


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """The adapter's own settings, checked.

    Attributes:
        mode: ``"protect"`` or ``"optional"``.
        exemptions: Paths (``EXEMPT_PATHS``: exact, or a subtree ending in ``/`` or ``/*``)
            and methods (``EXEMPT_METHODS``, default ``OPTIONS``) served without a token check.
        realm: The ``realm`` of ``WWW-Authenticate`` challenges.
        user_loader: Maps verified claims to a Django user; None gives a ``TokenUser``.
        allow_query_token: Where ``?access_token=`` is accepted (RFC 6750 section 2.3 advises
            against it): ``"never"``, ``"websocket"`` or ``"always"`` (``False``/``True``).
        sender: DPoP, certificate binding and the introspector for ``introspect=True`` views.
        warm_up: Fetch remote keys when Django starts (``WARM_UP``), so the first requests
            do not wait for them.
        require_keys: Refuse to start when that warm-up gets no keys (``REQUIRE_KEYS``);
            otherwise the failure is logged and keys are fetched on demand.
        resource: ``RESOURCE`` (RFC 9728): the resource identifier URL, or a dict of metadata
            members; challenges then name the metadata document, the middleware serves it,
            and issuers without ``AUDIENCES`` take the resource as their audience.
    """

    mode: str = "protect"
    exemptions: Exemptions = field(default_factory=Exemptions)
    realm: str = "api"
    user_loader: UserLoader | None = None
    allow_query_token: QueryPolicy = "never"  # noqa: S105 - a policy name, not a secret
    sender: SenderSettings = field(default_factory=SenderSettings)
    warm_up: bool = False
    require_keys: bool = False
    resource: str | Mapping[str, Any] | None = None

    @property
    def protect(self) -> bool:
        """True when views without a decorator need a valid token."""
        return self.mode == "protect"

    def is_exempt(self, path: str, method: str = "") -> bool:
        """True if ``path`` (``request.path_info``) or ``method`` is exempt."""
        return self.exemptions(method, path)


@dataclass(frozen=True, slots=True)
class State:
    """What the middleware, decorators and DRF classes read: built once per settings dict.

    ``pipeline`` judges every request, with the settings' realm, query-token rule, sender
    constraints and introspector. ``fleet`` is the Redis store and lifecycle of ``FLEET``
    (started in each worker process on its first request), ``database`` the database store
    and lifecycle of ``LIFECYCLE_STORE`` (likewise), ``metrics`` the Prometheus
    metrics of ``METRICS`` (served by ``jwkguard_django.views.metrics``).
    """

    source: object
    validator: Validator
    options: AdapterOptions
    fleet: Fleet | None = None
    metrics: PrometheusMetrics | None = None
    database: DatabaseLifecycle | None = None
    pipeline: RequestPipeline = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pipeline", build_pipeline(self.validator, self.options))


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A ``JWKGUARD`` settings dict from ``JWKGUARD_*`` environment variables.

    In ``settings.py``: ``JWKGUARD = {"MODE": "protect", **settings_from_env()}`` (the
    environment wins). The variables are ``JWKGUARD_`` + a key of the dict
    (``JWKGUARD_ALGORITHMS``, ``JWKGUARD_EXEMPT_PATHS``...), plus one issuer given flat
    (``JWKGUARD_ISSUER``, ``JWKGUARD_AUDIENCES``...); values as
    :func:`jwkguard.settings_from_env` reads them. Dotted paths (``JWKGUARD_CLOCK``) are
    imported as in the dict.

    Raises:
        ConfigurationError: A variable no setting matches ("did you mean"), or a bad value.
    """
    settings = _settings_from_env(environ, extra=ADAPTER_SETTINGS)
    return {key.upper(): value for key, value in settings.items()}


def _lowered(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in raw.items()}


def _import(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as exc:
        raise ConfigurationError(f"{name.upper()}: cannot import {value!r}: {exc}") from exc


def resolve_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``JWKGUARD`` with lower-case keys and the validator's dotted paths imported.

    The adapter's keys stay: :func:`build_validator` is told to ignore ``ADAPTER_SETTINGS``.
    """
    options = _lowered(raw)
    for key in _CALLABLE_SETTINGS & options.keys():
        options[key] = _import(options[key], key)
    if isinstance(options.get("claim_checks"), list | tuple):
        options["claim_checks"] = [_import(c, "claim_checks") for c in options["claim_checks"]]
    issuers = options.get("issuers")
    if isinstance(issuers, list | tuple):
        resolved: list[Any] = []
        for issuer in issuers:
            if isinstance(issuer, Mapping):
                issuer = _lowered(issuer)
                checks = issuer.get("claim_checks")
                if isinstance(checks, list | tuple):
                    issuer["claim_checks"] = [_import(c, "claim_checks") for c in checks]
            resolved.append(issuer)
        options["issuers"] = resolved
    return options


def parse_options(raw: Mapping[str, Any], fleet: Fleet | None = None) -> AdapterOptions:
    """The adapter's settings from ``JWKGUARD``; with ``fleet``, DPoP proofs go to its Redis.

    Raises:
        ConfigurationError: A value of the wrong type or out of range.
    """
    options = _lowered(raw)
    mode = options.get("mode", "protect")
    if mode not in MODES:
        raise ConfigurationError(f"MODE must be one of {', '.join(map(repr, MODES))}")
    paths = options.get("exempt_paths", ())
    if isinstance(paths, str) or not isinstance(paths, list | tuple | set | frozenset):
        raise ConfigurationError("EXEMPT_PATHS must be a list of paths")
    methods = options.get("exempt_methods", Exemptions.DEFAULT_METHODS)
    if isinstance(methods, str) or not isinstance(methods, list | tuple | set | frozenset):
        raise ConfigurationError("EXEMPT_METHODS must be a list of methods")
    try:
        exemptions = Exemptions(sorted(paths), sorted(methods))
    except (ConfigurationError, TypeError) as exc:
        raise ConfigurationError(f"EXEMPT_PATHS / EXEMPT_METHODS: {exc}") from exc
    realm = options.get("realm", "api")
    if not isinstance(realm, str) or not realm:
        raise ConfigurationError("REALM must be a non-empty string")
    loader = _import(options.get("user_loader"), "user_loader")
    if loader is not None and not callable(loader):
        raise ConfigurationError("USER_LOADER must be a callable or its dotted path")
    allow_query = query_policy(options.get("allow_query_token", False), "ALLOW_QUERY_TOKEN")
    if build_fleet_settings(options.get("fleet")) is not None and options.get("lifecycle"):
        raise ConfigurationError("set FLEET or LIFECYCLE, not both: FLEET builds the lifecycle")
    _check_lifecycle_store(options)
    metrics = options.get("metrics", False)
    if not isinstance(metrics, bool | str) and not callable(getattr(metrics, "instrument", None)):
        raise ConfigurationError("METRICS must be True, False or a PrometheusMetrics")
    flags = {}
    for name in ("warm_up", "require_keys"):
        flags[name] = options.get(name, False)
        if not isinstance(flags[name], bool):
            raise ConfigurationError(f"{name.upper()} must be True or False")
    return AdapterOptions(
        warm_up=flags["warm_up"],
        require_keys=flags["require_keys"],
        mode=mode,
        exemptions=exemptions,
        realm=realm,
        user_loader=loader,
        allow_query_token=allow_query,
        sender=_sender_settings(options, fleet),
        resource=_resource(options.get("resource")),
    )


def _check_lifecycle_store(options: Mapping[str, Any]) -> None:
    """``LIFECYCLE_STORE`` is valid and not set together with ``FLEET`` or ``LIFECYCLE``."""
    from .lifecycle import build_database_store_settings

    if build_database_store_settings(options.get("lifecycle_store")) is None:
        return
    for other in ("fleet", "lifecycle"):
        if options.get(other):
            raise ConfigurationError(
                f"set LIFECYCLE_STORE or {other.upper()}, not both: "
                "LIFECYCLE_STORE builds the lifecycle"
            )


def _resource(value: Any) -> str | Mapping[str, Any] | None:
    """``RESOURCE``, checked now (the metadata is described once the validator is built)."""
    if value is None:
        return None
    build_resource_metadata(value)
    return value  # type: ignore[no-any-return]


def _sender_settings(options: Mapping[str, Any], fleet: Fleet | None = None) -> SenderSettings:
    """``DPOP``, ``INTROSPECTION`` and friends; their objects may be given as dotted paths."""
    sender = {key: options[key] for key in SenderSettings.NAMES & options.keys()}
    for key in ("dpop", "introspection"):
        sender[key] = _import(sender.get(key), key)
    dpop = sender.get("dpop")
    if isinstance(dpop, Mapping):
        dpop = _lowered(dpop)
        if "replay" in dpop:
            dpop["replay"] = _import(dpop["replay"], "dpop.replay")
        sender["dpop"] = dpop
    if fleet is not None and sender.get("dpop") is not None:
        sender["dpop"] = fleet.with_dpop_replay(sender["dpop"])
    return build_sender_settings(sender)


def _build(source: object) -> State:
    if not isinstance(source, Mapping):
        raise ConfigurationError("the JWKGUARD setting must be a dict")
    lowered = _lowered(source)
    fleet = build_fleet(lowered.get("fleet"))
    metrics = build_metrics(_import(lowered.get("metrics"), "metrics"))
    options = parse_options(source, fleet)
    settings = wired_settings(resolve_settings(source), fleet, metrics)
    database = None
    if lowered.get("lifecycle_store"):
        from .lifecycle import build_database_lifecycle

        database = build_database_lifecycle(lowered["lifecycle_store"])
        if database is not None:
            settings["lifecycle"] = database.lifecycle
    validator = build_validator(
        settings,
        ignore=ADAPTER_SETTINGS,
        default_audience=resource_identifier(options.resource),
    )
    wire_validator(validator, fleet, metrics)
    if database is not None:
        database.attach(validator)
    return State(
        source=source,
        validator=validator,
        options=options,
        fleet=fleet,
        metrics=metrics,
        database=database,
    )


class _Cache:
    """The state built from the current ``settings.JWKGUARD``, rebuilt when it changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: State | None = None

    def get(self) -> State:
        source = getattr(settings, "JWKGUARD", None)
        state = self._state
        if state is not None and state.source is source:
            return state
        with self._lock:
            state = self._state
            if state is None or state.source is not source:
                try:
                    fresh = _build(source)
                except ConfigurationError as exc:
                    raise ImproperlyConfigured(f"JWKGUARD: {exc}") from exc
                self._state = fresh
                if state is not None:
                    _close(state)
                state = fresh
            return state

    def reset(self) -> None:
        with self._lock:
            state, self._state = self._state, None
        if state is not None:
            # Closing is safe even if a request still holds the old validator: a later fetch
            # opens a new HTTP client.
            _close(state)


def _close(state: State) -> None:
    state.validator.close()
    if state.fleet is not None:
        state.fleet.close()
    if state.database is not None:
        state.database.close()
    if state.options.sender.introspector is not None:
        state.options.sender.introspector.close()


_cache = _Cache()


def get_state() -> State:
    """The validator and adapter options for the current settings (built on first use).

    Raises:
        ImproperlyConfigured: ``JWKGUARD`` is missing or invalid (``manage.py check`` says why).
    """
    return _cache.get()


def get_validator() -> Validator:
    """The ``jwkguard.Validator`` built from ``settings.JWKGUARD``, for use outside views."""
    return _cache.get().validator


def reset(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget the validator when ``JWKGUARD`` changes."""
    if setting == "JWKGUARD":
        _cache.reset()
