"""Sender constraints and introspection from a plain settings mapping (Django, Flask, TOML).

The same keys in every framework's idiom (``JWKGUARD["DPOP"]``, ``JWKGUARD_DPOP``,
``[sender] dpop``), matched case-insensitively, unknown keys refused::

    DPOP                        True, or options of DPoPVerifier (ALGORITHMS, MAX_AGE,
                                LEEWAY, NONCE_SECRET, NONCE_PERIOD, REPLAY), or a DPoPVerifier
    REQUIRE_DPOP                every token must be DPoP-bound
    REQUIRE_DPOP_ISSUERS        tokens from these issuers must be DPoP-bound
    REQUIRE_CLIENT_CERTIFICATE  every token must be certificate-bound (RFC 8705)
    CLIENT_CERT_HEADER          header a TLS-terminating proxy forwards the certificate in
    TRUSTED_PROXIES             addresses/networks that header is believed from
    INTROSPECTION               options of Introspector (ENDPOINT, CLIENT_ID, ...) or one
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from .._checks import lowered_options, positive_seconds, string_list
from .._validator import Validator
from ..errors import ConfigurationError
from ..pipeline._pipeline import QueryPolicy, RequestPipeline
from ..pipeline._resource import build_resource_metadata
from ._constraints import SenderConstraints
from ._dpop import DPoPNonces, DPoPVerifier, ReplayLedger
from ._introspection import Introspector

__all__ = [
    "SENDER_SETTINGS",
    "PipelineSettings",
    "SenderSettings",
    "build_pipeline",
    "build_sender_settings",
]

SENDER_SETTINGS = frozenset(
    {
        "dpop",
        "require_dpop",
        "require_dpop_issuers",
        "require_client_certificate",
        "client_cert_header",
        "trusted_proxies",
        "introspection",
    }
)
"""Lower-case setting names read by :func:`build_sender_settings`."""

_DPOP_OPTIONS = frozenset(
    {"algorithms", "max_age", "leeway", "nonce_secret", "nonce_period", "replay"}
)
_INTROSPECTION_OPTIONS = frozenset(
    name
    for name in inspect.signature(Introspector.__init__).parameters
    if name not in ("self", "clock")
)


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """What an adapter enforces after local validation.

    Attributes:
        constraints: DPoP and certificate binding for every request; by default none, so
            bound tokens are refused.
        introspector: Asks the authorization server about tokens on routes marked for it
            (hybrid mode); None when ``INTROSPECTION`` is not configured.
    """

    NAMES: ClassVar[frozenset[str]] = SENDER_SETTINGS
    """The lower-case setting names :func:`build_sender_settings` reads."""

    constraints: SenderConstraints = field(default_factory=SenderConstraints)
    introspector: Introspector | None = None

    def pipeline(
        self,
        validator: Validator,
        *,
        realm: str = "api",
        allow_query_token: QueryPolicy | bool = False,
        resource: Any = None,
    ) -> RequestPipeline:
        """The request pipeline these settings describe, for an adapter's settings object.

        ``resource`` is the ``RESOURCE`` setting (RFC 9728): the resource URL, a mapping of
        metadata members, or a ready ``ResourceMetadata``; see ``build_resource_metadata``.
        """
        return RequestPipeline(
            validator,
            realm=realm,
            allow_query=allow_query_token,
            sender=self.constraints,
            introspector=self.introspector,
            resource=build_resource_metadata(
                resource, validator=validator, sender=self.constraints
            ),
        )


class PipelineSettings(Protocol):
    """An adapter's settings object, as far as its request pipeline goes (Django, Flask)."""

    @property
    def realm(self) -> str: ...

    @property
    def allow_query_token(self) -> QueryPolicy | bool: ...

    @property
    def sender(self) -> SenderSettings: ...

    @property
    def resource(self) -> Any: ...


def build_pipeline(validator: Validator, settings: PipelineSettings) -> RequestPipeline:
    """The request pipeline of an adapter's ``settings`` for ``validator``."""
    return settings.sender.pipeline(
        validator,
        realm=settings.realm,
        allow_query_token=settings.allow_query_token,
        resource=settings.resource,
    )


def _flag(options: Mapping[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name.upper()} must be True or False")
    return value


def _names(options: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = options.get(name, ())
    return string_list(value, name.upper(), container=(list, tuple, set, frozenset))


def build_dpop_verifier(value: Any) -> DPoPVerifier | None:
    """A ``DPoPVerifier`` from ``True``, a mapping of options, or a verifier; None if off."""
    if value is None or value is False:
        return None
    if isinstance(value, DPoPVerifier):
        return value
    if value is True:
        return DPoPVerifier()
    if not isinstance(value, Mapping):
        raise ConfigurationError("DPOP must be True, a mapping of options or a DPoPVerifier")
    options = lowered_options(value, "DPOP", _DPOP_OPTIONS)
    kwargs: dict[str, Any] = {}
    if "algorithms" in options:
        algorithms = options["algorithms"]
        if isinstance(algorithms, str) or not isinstance(algorithms, list | tuple):
            raise ConfigurationError("DPOP.ALGORITHMS must be a list of algorithm names")
        kwargs["algorithms"] = tuple(algorithms)
    for name in ("max_age", "leeway"):
        if name in options:
            number = options[name]
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ConfigurationError(f"DPOP.{name.upper()} must be a number of seconds")
            kwargs[name] = float(number)
    secret = options.get("nonce_secret")
    if secret is not None:
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, bytes):
            raise ConfigurationError("DPOP.NONCE_SECRET must be a string or bytes")
        period = positive_seconds(options.get("nonce_period", 300), "DPOP.NONCE_PERIOD")
        kwargs["nonces"] = DPoPNonces(secret, period=period)
    elif "nonce_period" in options:
        raise ConfigurationError("DPOP.NONCE_PERIOD needs DPOP.NONCE_SECRET")
    replay = options.get("replay")
    if replay is not None:
        if not callable(getattr(replay, "first_use", None)) or not callable(
            getattr(replay, "afirst_use", None)
        ):
            raise ConfigurationError("DPOP.REPLAY must be a replay ledger (e.g. RedisReplayLedger)")
        ledger: ReplayLedger = replay
        kwargs["replay"] = ledger
    return DPoPVerifier(**kwargs)


def build_introspector(value: Any) -> Introspector | None:
    """An ``Introspector`` from a mapping of its options or an instance; None if unset."""
    if value is None:
        return None
    if isinstance(value, Introspector):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError("INTROSPECTION must be a mapping of options or an Introspector")
    options = lowered_options(value, "INTROSPECTION", _INTROSPECTION_OPTIONS)
    try:
        return Introspector(**options)
    except TypeError as exc:
        raise ConfigurationError(f"INTROSPECTION: {exc}") from exc


def build_sender_settings(settings: Mapping[str, Any]) -> SenderSettings:
    """Sender constraints and the introspector from a settings mapping.

    Args:
        settings: Any mapping; only the names in :data:`SENDER_SETTINGS` are read
            (case-insensitively), the rest belong to the caller.

    Raises:
        ConfigurationError: A value of the wrong type, or an inconsistent combination.
    """
    options = {
        key: value
        for key, value in lowered_options(settings, "settings").items()
        if key in SENDER_SETTINGS
    }
    header = options.get("client_cert_header")
    if header is not None and not isinstance(header, str):
        raise ConfigurationError("CLIENT_CERT_HEADER must be a header name")
    constraints = SenderConstraints(
        dpop=build_dpop_verifier(options.get("dpop")),
        require_dpop=_flag(options, "require_dpop"),
        require_dpop_issuers=_names(options, "require_dpop_issuers"),
        require_certificate=_flag(options, "require_client_certificate"),
        client_cert_header=header,
        trusted_proxies=_names(options, "trusted_proxies"),
    )
    return SenderSettings(
        constraints=constraints, introspector=build_introspector(options.get("introspection"))
    )
