"""Validators from plain settings: a mapping (Django, Flask, TOML) or ``JWKGUARD_*`` variables.

:func:`build_validator` takes the keys of ``jwkguard.Validator`` and ``jwkguard.Issuer``;
:func:`validator_from_env` reads the same settings from the environment. Adapter authors
report misspelt keys with :func:`unknown_settings` and :func:`describe_unknown`, and check
lists of names with :func:`string_list` and :func:`list_of`, durations with
:func:`positive_seconds`. See ``docs/configuration.md``.
"""

from __future__ import annotations

from ._checks import list_of, positive_seconds, string_list
from ._env import ENV_PREFIX, settings_from_env, validator_from_env
from ._settings import (
    ISSUER_SETTINGS,
    VALIDATOR_SETTINGS,
    build_validator,
    describe_unknown,
    unknown_settings,
)

__all__ = [
    "ENV_PREFIX",
    "ISSUER_SETTINGS",
    "VALIDATOR_SETTINGS",
    "build_validator",
    "describe_unknown",
    "list_of",
    "positive_seconds",
    "settings_from_env",
    "string_list",
    "unknown_settings",
    "validator_from_env",
]
