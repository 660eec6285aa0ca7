"""Settings from ``JWKGUARD_*`` environment variables: one scheme for every adapter and ``serve``.

``JWKGUARD_<KEY>`` sets the setting ``<KEY>`` of the settings dicts (Django ``JWKGUARD``, Flask
``JWKGUARD_*`` config, the ``[validator]`` table of ``jwkguard serve``), with the same names:
``JWKGUARD_ALGORITHMS``, ``JWKGUARD_LEEWAY``, ``JWKGUARD_ISSUERS``, and each adapter's own keys
(``JWKGUARD_EXEMPT_PATHS``...). One issuer may be given flat: ``JWKGUARD_ISSUER`` with its
``Issuer`` options beside it (``JWKGUARD_AUDIENCES``, ``JWKGUARD_JWKS_URI``...).

Values: one starting with ``[``, ``{`` or ``"`` is JSON; a list-of-strings setting also takes
``a,b,c``; ``true``/``false`` and numbers are read as such, except for settings that are strings
(an issuer URL or a secret is never turned into a number); an empty value counts as unset. A
``JWKGUARD_*`` name that matches no setting is refused with the closest one ("did you mean").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ._settings import ISSUER_SETTINGS, VALIDATOR_SETTINGS, build_validator, describe_unknown
from ._validator import Validator
from .errors import ConfigurationError

__all__ = ["ENV_PREFIX", "RESERVED_ENV", "settings_from_env", "validator_from_env"]

ENV_PREFIX = "JWKGUARD_"
"""The one prefix of jwkguard's environment variables."""

RESERVED_ENV = frozenset({"config", "redis_url", "redis_prefix", "audit_log", "require_binaries"})
"""``JWKGUARD_*`` names that are not settings: read by the commands (``JWKGUARD_CONFIG`` of
``serve``, the fleet admin's ``JWKGUARD_REDIS_URL``...) or by jwkguard's own test suite."""

# Settings whose value is a list of strings: "a,b" is accepted beside JSON.
_LIST_SETTINGS = frozenset(
    {
        "algorithms",
        "required_claims",
        "required_scopes",
        "audiences",
        "allowed_client_ids",
        "role_claims",
        # adapters' own
        "exempt",
        "exempt_paths",
        "exempt_methods",
        "trusted_proxies",
        "require_dpop_issuers",
    }
)
# Settings that are strings: never read as a number or a flag.
_STRING_SETTINGS = frozenset(
    {
        "issuer",
        "jwks_uri",
        "secret",
        "secret_kid",
        "scope_claim",
        "token_type",
        "jwks",
        # adapters' own
        "realm",
        "client_cert_header",
        "allow_query_token",
    }
)
_FLAGS = {"true": True, "false": False}


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def _value(key: str, text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("[", "{", '"'):
        try:
            return json.loads(stripped)
        except ValueError as exc:
            raise ConfigurationError(f"{_env_name(key)} is not valid JSON: {exc}") from None
    if key in _STRING_SETTINGS:
        return stripped
    if key in _LIST_SETTINGS:
        return [part.strip() for part in stripped.split(",") if part.strip()]
    if stripped.lower() in _FLAGS:
        return _FLAGS[stripped.lower()]
    try:
        number = json.loads(stripped)
    except ValueError:
        return stripped
    return number if isinstance(number, int | float) else stripped


def settings_from_env(
    environ: Mapping[str, str] | None = None, *, extra: Iterable[str] = ()
) -> dict[str, Any]:
    """The settings given by ``JWKGUARD_*`` environment variables, keys in lower case.

    ``JWKGUARD_ISSUER`` and the ``Issuer`` options beside it become one entry of ``issuers``.
    Variables that start with ``JWKGUARD__`` (``serve``'s nested overrides) and the names in
    :data:`RESERVED_ENV` are not settings and are skipped.

    Args:
        environ: The environment; ``os.environ`` when None.
        extra: The adapter's own lower-case setting names (Django ``MODE``...).

    Raises:
        ConfigurationError: A name no setting matches (with the closest one), invalid JSON,
            or ``JWKGUARD_ISSUER`` beside ``JWKGUARD_ISSUERS``.
    """
    source = os.environ if environ is None else environ
    adapter = frozenset(name.lower() for name in extra)
    known = VALIDATOR_SETTINGS | ISSUER_SETTINGS | adapter
    found: dict[str, str] = {}
    for name, text in source.items():
        if name[: len(ENV_PREFIX)].upper() != ENV_PREFIX or name.startswith(ENV_PREFIX + "_"):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in RESERVED_ENV or not text.strip():
            continue
        found[key] = text
    unknown = sorted(key for key in found if key not in known)
    if unknown:
        names = describe_unknown(unknown, ISSUER_SETTINGS | adapter, spell=_env_name)
        raise ConfigurationError(f"unknown environment variables: {', '.join(names)}")
    settings = {key: _value(key, text) for key, text in sorted(found.items())}
    flat = {
        key: settings.pop(key)
        for key in sorted(settings)
        if key in ISSUER_SETTINGS and key not in VALIDATOR_SETTINGS | adapter
    }
    if flat:
        given = ", ".join(_env_name(key) for key in flat)
        if "issuers" in settings:
            raise ConfigurationError(
                f"set {ENV_PREFIX}ISSUERS or {ENV_PREFIX}ISSUER with its options, not both "
                f"(found {given})"
            )
        if "issuer" not in flat:
            raise ConfigurationError(f"{given} need {ENV_PREFIX}ISSUER, the issuer they describe")
        settings["issuers"] = [flat]
    return settings


def validator_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Validator:
    """A ``Validator`` from ``JWKGUARD_*`` environment variables (see :func:`settings_from_env`).

    For code without a settings dict (FastAPI, Starlette, the ASGI/WSGI middlewares)::

        auth = JWTBearer(validator_from_env())  # JWKGUARD_ISSUER, _AUDIENCES, _ALGORITHMS

    Args:
        environ: The environment; ``os.environ`` when None.
        overrides: Keyword arguments passed to ``Validator`` as they are (``clock``...).

    Raises:
        ConfigurationError: Unknown variables, missing issuer or algorithms, bad values.
    """
    settings = settings_from_env(environ)
    missing = []
    if "issuers" not in settings:
        missing.append("ISSUER")
    issuers = settings.get("issuers")
    if isinstance(issuers, list) and len(issuers) == 1 and isinstance(issuers[0], dict):
        only = issuers[0]
        if "audiences" not in only and "allowed_client_ids" not in only:
            missing.append("AUDIENCES")
    if "algorithms" not in settings and "algorithms" not in overrides:
        missing.append("ALGORITHMS")
    if missing:
        names = ", ".join(ENV_PREFIX + name for name in missing)
        raise ConfigurationError(f"set {names}")
    try:
        return build_validator(settings, **overrides)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{ENV_PREFIX}* environment: {exc}") from exc
