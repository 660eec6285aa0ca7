"""``JWKGUARD_*`` config keys into the per-app state kept in ``app.extensions["jwkguard"]``."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jwkguard import (
    ConfigurationError,
    RequestPipeline,
    Validator,
    build_validator,
    settings_from_env,
)
from jwkguard.fleet import (
    Fleet,
    build_fleet,
    build_metrics,
    wire_validator,
    wired_settings,
)
from jwkguard.pipeline import Exemptions, QueryPolicy, query_policy, resource_identifier
from jwkguard.sender import SenderSettings, build_pipeline, build_sender_settings
from jwkguard.settings import describe_unknown, string_list, unknown_settings

if TYPE_CHECKING:
    from jwkguard.metrics import PrometheusMetrics

__all__ = [
    "ADAPTER_SETTINGS",
    "PREFIX",
    "GuardState",
    "build_state",
    "config_from_env",
    "prefixed_settings",
]

PREFIX = "JWKGUARD_"

# Keys read by this adapter; every other JWKGUARD_* key is a core option (see build_validator).
# The sender-constraint keys (JWKGUARD_DPOP, JWKGUARD_INTROSPECTION...) are read by
# jwkguard.sender.build_sender_settings.
ADAPTER_SETTINGS = (
    frozenset(
        {
            "realm",
            "allow_query_token",
            "exempt",
            "exempt_paths",
            "exempt_methods",
            "warm_up",
            "require_keys",
            "fleet",
            "metrics",
            "resource",
        }
    )
    | SenderSettings.NAMES
)


@dataclass(frozen=True, slots=True)
class GuardState:
    """What one app's requests need; ``init_app`` stores it in ``app.extensions["jwkguard"]``.

    Attributes:
        validator: Validates the tokens of this app's requests.
        realm: The ``realm`` of ``WWW-Authenticate`` challenges (``JWKGUARD_REALM``).
        allow_query_token: Where ``?access_token=`` is accepted (``JWKGUARD_ALLOW_QUERY_TOKEN``:
            ``"never"``, ``"websocket"``, ``"always"``, or ``False``/``True``;
            RFC 6750 section 2.3 advises against it).
        exempt: Endpoints that ``protect`` never challenges (``JWKGUARD_EXEMPT``).
        exemptions: Paths (``JWKGUARD_EXEMPT_PATHS``, whole-segment prefixes) and methods
            (``JWKGUARD_EXEMPT_METHODS``; CORS preflight requests carry no credentials, so
            ``OPTIONS`` by default) that ``protect`` never challenges.
        warm_up: Fetch remote keys in ``init_app`` (``JWKGUARD_WARM_UP``), so the first
            requests do not wait for them.
        require_keys: Make ``init_app`` fail when the warm-up gets no keys
            (``JWKGUARD_REQUIRE_KEYS``); otherwise the failure is logged and keys are fetched
            on demand.
        sender: DPoP and certificate binding (``JWKGUARD_DPOP``, ``JWKGUARD_REQUIRE_DPOP``,
            ``JWKGUARD_CLIENT_CERT_HEADER``...) and the introspector of
            ``require(introspect=True)`` (``JWKGUARD_INTROSPECTION``).
        fleet: The Redis store and lifecycle shared by the fleet (``JWKGUARD_FLEET``), started
            in each worker process on its first request.
        metrics: Prometheus metrics (``JWKGUARD_METRICS``), served by ``metrics_view``.
        resource: ``JWKGUARD_RESOURCE`` (RFC 9728): the resource identifier URL or a dict of
            metadata members; challenges name the metadata document, ``init_app`` serves it,
            and issuers without ``AUDIENCES`` take the resource as their audience.
        pipeline: The request pipeline every view of this app goes through.
    """

    validator: Validator
    realm: str = "api"
    allow_query_token: QueryPolicy = "never"  # noqa: S105 - a policy name, not a secret
    exempt: frozenset[str] = frozenset()
    exemptions: Exemptions = field(default_factory=Exemptions)
    warm_up: bool = False
    require_keys: bool = False
    sender: SenderSettings = field(default_factory=SenderSettings)
    fleet: Fleet | None = None
    metrics: PrometheusMetrics | None = None
    resource: str | Mapping[str, Any] | None = None
    pipeline: RequestPipeline = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pipeline", build_pipeline(self.validator, self))

    @property
    def exempt_methods(self) -> frozenset[str]:
        """Methods that ``protect`` never challenges."""
        return self.exemptions.methods


def prefixed_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``JWKGUARD_*`` keys of ``config``, prefix removed and lower-cased."""
    size = len(PREFIX)
    return {
        key[size:].lower(): value
        for key, value in config.items()
        if isinstance(key, str) and key[:size].upper() == PREFIX
    }


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``JWKGUARD_*`` config keys from environment variables, for ``app.config.update()``.

    The variables are the config keys themselves (``JWKGUARD_ALGORITHMS``,
    ``JWKGUARD_EXEMPT_PATHS``...), plus one issuer given flat (``JWKGUARD_ISSUER``,
    ``JWKGUARD_AUDIENCES``...); values as :func:`jwkguard.settings_from_env` reads them.

    Args:
        environ: The environment; ``os.environ`` when None.

    Raises:
        ConfigurationError: A variable no config key matches ("did you mean"), or a bad value.
    """
    settings = settings_from_env(environ, extra=ADAPTER_SETTINGS)
    return {PREFIX + key.upper(): value for key, value in settings.items()}


def _config_name(setting: str) -> str:
    # Top-level names become JWKGUARD_NAME; issuer entries keep their spelling.
    return PREFIX + (setting if "[" in setting else setting.upper())


def _names(value: Any, key: str, *, upper: bool = False) -> frozenset[str]:
    names = string_list(value, PREFIX + key, container=Collection)
    return frozenset(item.upper() if upper else item for item in names)


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{PREFIX}{key} must be True or False")
    return value


def _exemptions(settings: Mapping[str, Any]) -> Exemptions:
    methods = _names(settings.get("exempt_methods", Exemptions.DEFAULT_METHODS), "EXEMPT_METHODS")
    paths = _names(settings.get("exempt_paths", ()), "EXEMPT_PATHS")
    try:
        return Exemptions(sorted(paths), sorted(methods))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{PREFIX}EXEMPT_PATHS: {exc}") from exc


def build_state(config: Mapping[str, Any], validator: Validator | None) -> GuardState:
    """Per-app state from ``config``.

    Args:
        config: The app's config; only ``JWKGUARD_*`` keys are read.
        validator: A ready validator; then no core option may be set in ``config``.

    Raises:
        ConfigurationError: Unknown keys, bad values, or a validator given alongside core keys.
    """
    settings = prefixed_settings(config)
    unknown = unknown_settings(settings, extra=ADAPTER_SETTINGS)
    if unknown:
        names = ", ".join(describe_unknown(unknown, ADAPTER_SETTINGS, spell=_config_name))
        raise ConfigurationError(f"unknown config keys: {names}")
    core = sorted(set(settings) - ADAPTER_SETTINGS)
    fleet = build_fleet(settings.get("fleet"), where=f"{PREFIX}FLEET")
    metrics = build_metrics(settings.get("metrics"), where=f"{PREFIX}METRICS")
    if validator is not None:
        if fleet is not None:
            raise ConfigurationError(
                f"{PREFIX}FLEET gives the validator its lifecycle: build the validator from "
                f"{PREFIX}* config, or give your validator lifecycle= yourself"
            )
        if core:
            names = ", ".join(_config_name(name) for name in core)
            raise ConfigurationError(
                f"a validator was given, so {names} would be ignored; remove one or the other"
            )
        if not callable(getattr(validator, "validate", None)):
            raise ConfigurationError("validator must be a jwkguard.Validator")
    elif not core:
        raise ConfigurationError(
            f"JWKGuard needs {PREFIX}ISSUERS and {PREFIX}ALGORITHMS in app.config, or a validator"
        )
    else:
        try:
            validator = build_validator(
                wired_settings(settings, fleet, metrics, lifecycle_name=f"{PREFIX}LIFECYCLE"),
                ignore=ADAPTER_SETTINGS,
                default_audience=resource_identifier(settings.get("resource")),
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{PREFIX}* config: {exc}") from exc
    wire_validator(validator, fleet, metrics)
    if fleet is not None and settings.get("dpop") is not None:
        # DPoP proofs are remembered fleet-wide, in the fleet's Redis.
        settings["dpop"] = fleet.with_dpop_replay(settings["dpop"])
    realm = settings.get("realm", "api")
    if not isinstance(realm, str) or not realm:
        raise ConfigurationError(f"{PREFIX}REALM must be a non-empty string")
    try:
        sender = build_sender_settings(settings)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{PREFIX}* config: {exc}") from exc
    return GuardState(
        validator=validator,
        realm=realm,
        allow_query_token=query_policy(
            settings.get("allow_query_token", False), f"{PREFIX}ALLOW_QUERY_TOKEN"
        ),
        exempt=_names(settings.get("exempt", ()), "EXEMPT"),
        exemptions=_exemptions(settings),
        warm_up=_flag(settings.get("warm_up", False), "WARM_UP"),
        require_keys=_flag(settings.get("require_keys", False), "REQUIRE_KEYS"),
        sender=sender,
        fleet=fleet,
        metrics=metrics,
        resource=settings.get("resource"),
    )
