"""System checks for the ``JWKGUARD`` setting, run by ``manage.py check`` and at start-up.

Ids are stable; each message says what is wrong and the hint how to fix it:

- ``jwkguard.E001`` ``JWKGUARD`` is missing or not a dict.
- ``jwkguard.E002`` no issuers.
- ``jwkguard.E003`` no allowed algorithms.
- ``jwkguard.E004`` an HMAC algorithm without an issuer secret (HMAC never uses a JWK Set).
- ``jwkguard.E005`` keys fetched over plain HTTP from a host that is not loopback.
- ``jwkguard.E006`` an Entra ``{tenantid}`` issuer template (no tenant allow-list).
- ``jwkguard.E007`` unknown setting names (typos).
- ``jwkguard.E008`` an invalid adapter setting (``MODE``, ``EXEMPT_PATHS``, ``USER_LOADER``...).
- ``jwkguard.E009`` any other value the validator refuses.
- ``jwkguard.W001`` ``JWKGuardMiddleware`` listed after ``CsrfViewMiddleware``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from jwkguard import ConfigurationError, Issuer, Validator, build_validator
from jwkguard.settings import unknown_settings

from .conf import ADAPTER_SETTINGS, parse_options, resolve_settings

__all__ = ["check_middleware_order", "check_settings"]

_MIDDLEWARE = "jwkguard_django.middleware.JWKGuardMiddleware"
_CSRF_MIDDLEWARE = "django.middleware.csrf.CsrfViewMiddleware"
_VALIDATOR_NAMES = [
    name.upper() for name in inspect.signature(Validator).parameters if name != "issuers"
]
_ISSUER_NAMES = [field.name.upper() for field in fields(Issuer) if not field.name.startswith("_")]
_ADAPTER_NAMES = [name.upper() for name in ADAPTER_SETTINGS]
_LOOPBACK = frozenset({"localhost", "::1"})


def _lowered(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()}


def _issuer_view(issuer: Any) -> dict[str, Any] | None:
    """An issuer entry as a lower-case dict, whether given as a mapping or an ``Issuer``."""
    if isinstance(issuer, Issuer):
        return {field.name: getattr(issuer, field.name) for field in fields(Issuer)}
    if isinstance(issuer, Mapping):
        return _lowered(issuer)
    return None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in _LOOPBACK or host.startswith("127.")


def _fetched_urls(issuer: Mapping[str, Any]) -> list[str]:
    """The URLs keys are fetched from: ``jwks_uri``, or the issuer itself for discovery."""
    if issuer.get("jwks_uri"):
        return [str(issuer["jwks_uri"])]
    if issuer.get("jwks") is None and issuer.get("secret") is None and issuer.get("issuer"):
        return [str(issuer["issuer"])]
    return []


def _suggest(name: str, choices: Sequence[str]) -> str:
    key = name.rsplit(".", 1)[-1].upper()
    close = difflib.get_close_matches(key, choices, n=1)
    return f"{name} (did you mean {close[0]}?)" if close else name


def _unknown_names(raw: Mapping[str, Any]) -> Error | None:
    unknown = unknown_settings(raw, extra=ADAPTER_SETTINGS)
    if not unknown:
        return None
    described = [
        _suggest(name, _ISSUER_NAMES)
        if "." in name
        else _suggest(name, _VALIDATOR_NAMES + _ADAPTER_NAMES)
        for name in unknown
    ]
    return Error(
        f"JWKGUARD has unknown settings: {', '.join(described)}",
        hint="Keys mirror jwkguard.Validator and jwkguard.Issuer options (see docs/django.md).",
        id="jwkguard.E007",
    )


def _algorithms(options: Mapping[str, Any]) -> list[CheckMessage]:
    algorithms = options.get("algorithms")
    if isinstance(algorithms, str) or not isinstance(algorithms, Sequence | set | frozenset):
        algorithms = None
    if not algorithms:
        return [
            Error(
                "JWKGUARD has no ALGORITHMS",
                hint='List the algorithms your issuer signs with, e.g. "ALGORITHMS": ["RS256"]. '
                "They are never taken from the token.",
                id="jwkguard.E003",
            )
        ]
    return []


def _issuer_errors(options: Mapping[str, Any]) -> list[CheckMessage]:
    raw_issuers = options.get("issuers")
    if isinstance(raw_issuers, str) or not isinstance(raw_issuers, Sequence) or not raw_issuers:
        return [
            Error(
                "JWKGUARD has no ISSUERS",
                hint='Add "ISSUERS": [{"ISSUER": "https://id.example.com/", '
                '"AUDIENCES": ["https://api.example.com"]}].',
                id="jwkguard.E002",
            )
        ]
    errors: list[CheckMessage] = []
    issuers = [view for view in map(_issuer_view, raw_issuers) if view is not None]
    algorithms = options.get("algorithms")
    hmac = sorted(
        str(alg)
        for alg in (algorithms if isinstance(algorithms, Sequence | set | frozenset) else ())
        if str(alg).upper().startswith("HS")
    )
    if hmac and not any(issuer.get("secret") for issuer in issuers):
        errors.append(
            Error(
                f"JWKGUARD allows {', '.join(hmac)} but no issuer has a SECRET",
                hint="HMAC tokens are verified only with an issuer's explicit SECRET, never "
                "against a JWK Set. Remove HS* from ALGORITHMS or give the issuer a SECRET.",
                id="jwkguard.E004",
            )
        )
    for issuer in issuers:
        name = issuer.get("issuer")
        if issuer.get("secret") and issuer.get("jwks_uri"):
            errors.append(
                Error(
                    f"JWKGUARD issuer {name}: SECRET is combined with JWKS_URI",
                    hint="HMAC never uses a JWK Set: use one issuer entry for each.",
                    id="jwkguard.E004",
                )
            )
        if not issuer.get("allow_insecure_http"):
            for url in _fetched_urls(issuer):
                scheme = urlsplit(url).scheme
                if scheme != "https" and not (scheme == "http" and _is_loopback(url)):
                    errors.append(
                        Error(
                            f"JWKGUARD issuer {name}: keys would be fetched from {url}, "
                            "which is not HTTPS",
                            hint="Use the issuer's https:// URL. Plain HTTP is allowed only "
                            "for loopback hosts, or with ALLOW_INSECURE_HTTP (never in "
                            "production).",
                            id="jwkguard.E005",
                        )
                    )
        if "{tenantid}" in str(name).lower():
            errors.append(
                Error(
                    f"JWKGUARD issuer {name} is an Entra template without a tenant allow-list",
                    hint="Accepting any tenant would accept tokens from any Entra directory. "
                    'List the tenants you trust: "ISSUERS": [*jwkguard.providers.'
                    "entra_id_multi_tenant(client_id=..., tenant_ids=[...])].",
                    id="jwkguard.E006",
                )
            )
    return errors


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Check ``settings.JWKGUARD`` (ids ``jwkguard.E001`` to ``jwkguard.E009``)."""
    raw = getattr(settings, "JWKGUARD", None)
    if not isinstance(raw, Mapping):
        return [
            Error(
                "The JWKGUARD setting is missing" if raw is None else "JWKGUARD must be a dict",
                hint="Define JWKGUARD = {...} with ISSUERS and ALGORITHMS (see docs/django.md).",
                id="jwkguard.E001",
            )
        ]
    options = _lowered(raw)
    errors: list[CheckMessage] = []
    errors.extend(_issuer_errors(options))
    errors.extend(_algorithms(options))
    unknown = _unknown_names(raw)
    if unknown is not None:
        errors.append(unknown)
    try:
        parse_options(raw)
    except ConfigurationError as exc:
        errors.append(
            Error(
                f"JWKGUARD: {exc}",
                hint="See the adapter settings in docs/django.md.",
                id="jwkguard.E008",
            )
        )
    if errors:
        return errors
    try:
        build_validator(resolve_settings(raw), ignore=ADAPTER_SETTINGS).close()
    except ConfigurationError as exc:
        return [
            Error(
                f"JWKGUARD is refused by the validator: {exc}",
                hint="Keys mirror jwkguard.Validator and jwkguard.Issuer options "
                "(see docs/django.md).",
                id="jwkguard.E009",
            )
        ]
    return []


def check_middleware_order(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn (``jwkguard.W001``) when CSRF would answer before the 401 challenge."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if (
        _MIDDLEWARE in middleware
        and _CSRF_MIDDLEWARE in middleware
        and middleware.index(_CSRF_MIDDLEWARE) < middleware.index(_MIDDLEWARE)
    ):
        return [
            Warning(
                "JWKGuardMiddleware is listed after CsrfViewMiddleware",
                hint="A POST without a token to a protected view would get CSRF's 403 instead "
                "of the 401 bearer challenge: list JWKGuardMiddleware before CsrfViewMiddleware.",
                id="jwkguard.W001",
            )
        ]
    return []
