"""Build a validator from a plain settings mapping (Django settings, Flask config, TOML files).

Keys mirror ``Validator`` and ``Issuer`` keyword arguments one to one and are matched
case-insensitively (``ALGORITHMS`` or ``algorithms``), so every framework's idiom maps onto
the same names. Unknown keys are refused, so a typo fails at start-up instead of silently
weakening validation.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._issuer import Issuer
from ._validator import Validator
from .errors import ConfigurationError

__all__ = [
    "ISSUER_SETTINGS",
    "VALIDATOR_SETTINGS",
    "build_validator",
    "describe_unknown",
    "unknown_settings",
]

VALIDATOR_SETTINGS = frozenset(
    name for name in inspect.signature(Validator.__init__).parameters if name != "self"
)
ISSUER_SETTINGS = frozenset(
    name for name in Issuer.__dataclass_fields__ if not name.startswith("_")
)


def _lower_keys(settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(settings, Mapping):
        raise ConfigurationError(f"{where} must be a mapping")
    lowered: dict[str, Any] = {}
    for key, value in settings.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"{where}: setting names must be strings")
        lowered[key.lower()] = value
    return lowered


def unknown_settings(settings: Mapping[str, Any], extra: frozenset[str] = frozenset()) -> list[str]:
    """Names in ``settings`` (and in each of its issuers) that no option matches."""
    unknown = [key for key in settings if str(key).lower() not in VALIDATOR_SETTINGS | extra]
    issuers = next((v for k, v in settings.items() if str(k).lower() == "issuers"), None) or []
    if isinstance(issuers, list | tuple):
        for position, issuer in enumerate(issuers):
            if isinstance(issuer, Mapping):
                unknown.extend(
                    f"ISSUERS[{position}].{key}"
                    for key in issuer
                    if str(key).lower() not in ISSUER_SETTINGS
                )
    return unknown


def describe_unknown(
    unknown: Iterable[str], extra: Iterable[str] = (), *, spell: Callable[[str], str] = str.upper
) -> list[str]:
    """Each unknown setting name with the closest known one: ``"AUDIENCE (did you mean ...)"``.

    Args:
        unknown: Names from :func:`unknown_settings` (issuer entries as ``ISSUERS[0].name``).
        extra: The adapter's own lower-case setting names.
        spell: How a lower-case name is written in the framework (``JWKGUARD_`` + upper...).
    """
    top = sorted(VALIDATOR_SETTINGS | set(extra))
    described: list[str] = []
    for name in unknown:
        issuer_entry = "]." in name
        key = name.rsplit(".", 1)[-1].lower() if issuer_entry else name.lower()
        choices = sorted(ISSUER_SETTINGS) if issuer_entry else top
        close = difflib.get_close_matches(key, choices, n=1)
        shown = spell(name)
        if close:
            hint = close[0] if issuer_entry else spell(close[0])
            shown = f"{shown} (did you mean {hint}?)"
        described.append(shown)
    return described


def build_validator(
    settings: Mapping[str, Any],
    *,
    ignore: frozenset[str] = frozenset(),
    default_audience: str | None = None,
    **overrides: Any,
) -> Validator:
    """A ``Validator`` from a settings mapping.

    Args:
        settings: Validator options, with ``issuers`` a list of mappings of Issuer options
            (``issuer`` is the identifier); keys are case-insensitive.
        ignore: Lower-case keys that belong to the caller (e.g. an adapter's ``exempt_paths``).
        default_audience: The audience of issuers that name neither ``audiences`` nor
            ``allowed_client_ids``: the resource identifier, when one is configured
            (RFC 8707; RFC 9728 ``RESOURCE``).
        overrides: Keyword arguments passed to ``Validator`` as they are (e.g. ``clock``).

    Raises:
        ConfigurationError: Unknown keys, missing issuers or algorithms, or bad values.
    """
    options = _lower_keys(settings, "settings")
    for key in ignore:
        options.pop(key, None)
    unknown = sorted(set(options) - VALIDATOR_SETTINGS)
    if unknown:
        raise ConfigurationError(f"unknown settings: {', '.join(unknown)}")
    raw_issuers = options.pop("issuers", None)
    if not isinstance(raw_issuers, list | tuple) or not raw_issuers:
        raise ConfigurationError("settings need a non-empty list of issuers")
    issuers: list[Issuer] = []
    for position, raw in enumerate(raw_issuers):
        if isinstance(raw, Issuer):
            issuers.append(raw)
            continue
        issuer_options = _lower_keys(raw, f"issuers[{position}]")
        unknown = sorted(set(issuer_options) - ISSUER_SETTINGS)
        if unknown:
            raise ConfigurationError(f"issuers[{position}]: unknown settings: {', '.join(unknown)}")
        if (
            default_audience is not None
            and issuer_options.get("audiences") is None
            and not issuer_options.get("allowed_client_ids")
        ):
            issuer_options["audiences"] = [default_audience]
        identifier = issuer_options.pop("issuer", None)
        if not isinstance(identifier, str):
            raise ConfigurationError(f"issuers[{position}]: 'issuer' is required")
        if isinstance(issuer_options.get("secret"), str):
            issuer_options["secret"] = issuer_options["secret"].encode()
        try:
            issuers.append(Issuer(identifier, **issuer_options))
        except TypeError as exc:
            raise ConfigurationError(f"issuers[{position}]: {exc}") from exc
    options.update(overrides)
    if "algorithms" not in options:
        raise ConfigurationError("settings need the list of allowed algorithms")
    try:
        return Validator(issuers=issuers, **options)
    except TypeError as exc:
        raise ConfigurationError(str(exc)) from exc
