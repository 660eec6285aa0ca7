"""Configuration of one trusted issuer: who it is, who its tokens are for, where its keys are."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._checks import string_list
from .errors import ConfigurationError

__all__ = ["ClaimCheck", "Issuer", "is_loopback_host"]

ClaimCheck = Callable[[Mapping[str, Any]], object]
"""A custom check on the verified payload: return False or raise ``TokenError`` to refuse."""

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback_host(url: str) -> bool:
    """True if ``url``'s host is a loopback address (HTTP is tolerated there).

    An IP literal must be a loopback address; a name must be ``localhost`` itself:
    ``127.attacker.example`` is a name anyone can point anywhere.
    """
    host = urlsplit(url).hostname or ""
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _role_claims(values: object) -> tuple[str | tuple[str, ...], ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ConfigurationError("role_claims must be a list of claim names or paths")
    chosen: list[str | tuple[str, ...]] = []
    for value in values:
        if (isinstance(value, str) and value) or (
            isinstance(value, tuple)
            and value
            and all(isinstance(part, str) and part for part in value)
        ):
            chosen.append(value)
        else:
            raise ConfigurationError(
                "role_claims holds claim names, dotted paths or tuples of path steps"
            )
    return tuple(dict.fromkeys(chosen))


def _require_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number of seconds")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be positive")


@dataclass(frozen=True)
class Issuer:
    """One trusted token issuer (RFC 7519 ``iss``) and how to get its keys.

    Args:
        issuer: The exact ``iss`` value; compared as a string, with no normalisation.
        audiences: The token's ``aud`` must contain at least one of these (exact match).
            ``None`` only together with ``allowed_client_ids`` (issuers that send no ``aud``).
        jwks: Static keys: a JWK Set dict or a path to a JSON file. No network is used.
        jwks_uri: Where to fetch the JWK Set. With neither ``jwks`` nor ``jwks_uri``, discovery
            (``{issuer}/.well-known/openid-configuration``, then RFC 8414) finds it.
        secret: A shared secret for HS256/384/512. HMAC is never used against a JWK Set.
        secret_kid: The ``kid`` that HMAC tokens carry, if the issuer sets one. Tokens without
            a ``kid`` always select the secret; tokens with another ``kid`` are refused.
        default_ttl: Key cache lifetime when the server sends no ``Cache-Control``/``Expires``.
        min_ttl: Lower clamp for the server's ``max-age``.
        max_ttl: Upper clamp for the server's ``max-age``.
        cooldown: Minimum spacing of refetches caused by unknown key ids.
        timeout: Bound on each HTTP exchange with the issuer, in seconds.
        max_stale: How long the last good keys serve while refreshes fail.
        max_response_bytes: Largest JWK Set or discovery document accepted.
        max_keys: Largest number of keys accepted in one JWK Set.
        allow_insecure_http: Allow ``http://`` for a non-loopback host (never in production).
        scope_claim: Where scopes live, e.g. ``permissions`` or ``realm_access.roles``;
            default: ``scope`` (space-separated) and ``scp``.
        role_claims: Where roles live (``Claims.roles``), each a claim name, a dotted path
            (``realm_access.roles``) or a tuple of path steps; default ``roles`` (RFC 9068
            section 2.2.3.1). The provider presets name their provider's claims.
        allowed_client_ids: If set, ``client_id`` (or ``azp``) must be one of these.
        claim_checks: Extra checks on the verified payload, run after the standard ones.
        metadata: Free-form data for presets and adapters (e.g. the provider name).
    """

    issuer: str
    _: KW_ONLY
    audiences: Sequence[str] | None = None
    jwks: Mapping[str, Any] | str | Path | None = None
    jwks_uri: str | None = None
    secret: bytes | None = field(default=None, repr=False)
    secret_kid: str | None = None
    default_ttl: float = 600
    min_ttl: float = 60
    max_ttl: float = 86400
    cooldown: float = 30
    timeout: float = 5
    max_stale: float = 86400
    max_response_bytes: int = 512 * 1024
    max_keys: int = 100
    allow_insecure_http: bool = False
    scope_claim: str | None = None
    role_claims: Sequence[str | tuple[str, ...]] = ("roles",)
    allowed_client_ids: Sequence[str] | None = None
    claim_checks: Sequence[ClaimCheck] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigurationError("issuer must be a non-empty string")
        if self.audiences is not None:
            audiences = string_list(
                self.audiences, f"issuer {self.issuer}: audiences", allow_empty=False
            )
            object.__setattr__(self, "audiences", audiences)
        elif not self.allowed_client_ids:
            raise ConfigurationError(
                f"issuer {self.issuer}: audiences are required "
                "(or allowed_client_ids for issuers whose tokens carry no aud)"
            )
        if self.allowed_client_ids is not None:
            object.__setattr__(
                self,
                "allowed_client_ids",
                string_list(self.allowed_client_ids, "allowed_client_ids", allow_empty=False),
            )
        if self.jwks is not None and self.jwks_uri is not None:
            raise ConfigurationError(f"issuer {self.issuer}: give jwks or jwks_uri, not both")
        if self.secret is not None and (not isinstance(self.secret, bytes) or not self.secret):
            raise ConfigurationError("secret must be non-empty bytes")
        if self.secret_kid is not None:
            if self.secret is None:
                raise ConfigurationError(f"issuer {self.issuer}: secret_kid needs a secret")
            if not isinstance(self.secret_kid, str) or not self.secret_kid:
                raise ConfigurationError("secret_kid must be a non-empty string")
        if self.scope_claim is not None and (
            not isinstance(self.scope_claim, str) or not self.scope_claim
        ):
            raise ConfigurationError("scope_claim must be a non-empty claim name or dotted path")
        object.__setattr__(self, "role_claims", _role_claims(self.role_claims))
        if isinstance(self.claim_checks, str | bytes):
            raise ConfigurationError("claim_checks must be a list of callables")
        object.__setattr__(self, "claim_checks", tuple(self.claim_checks))
        if not all(callable(check) for check in self.claim_checks):
            raise ConfigurationError("claim_checks must be a list of callables")
        # The issuer itself is fetched from only for discovery; with a jwks_uri it may be any
        # string (Google's ID tokens say "accounts.google.com").
        for url in filter(None, (self.jwks_uri, self.issuer if self.uses_discovery else None)):
            self._check_url(url)
        for name in ("default_ttl", "min_ttl", "max_ttl", "timeout", "max_stale"):
            _require_positive(name, getattr(self, name), allow_zero=name == "max_stale")
        _require_positive("cooldown", self.cooldown, allow_zero=True)
        if not self.min_ttl <= self.max_ttl:
            raise ConfigurationError("min_ttl must not exceed max_ttl")
        if not all(
            type(value) is int and value > 0 for value in (self.max_response_bytes, self.max_keys)
        ):
            raise ConfigurationError("max_response_bytes and max_keys must be positive")
        object.__setattr__(self, "metadata", dict(self.metadata))

    def _check_url(self, url: str) -> None:
        if not isinstance(url, str):
            raise ConfigurationError(f"issuer {self.issuer}: URLs must be strings")
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and (is_loopback_host(url) or self.allow_insecure_http):
            return
        raise ConfigurationError(
            f"issuer {self.issuer}: {url} must use https "
            "(http only for loopback hosts or with allow_insecure_http=True)"
        )

    @property
    def uses_static_keys(self) -> bool:
        """True when keys come from ``jwks`` or a ``secret`` only, never from the network."""
        return self.jwks is not None or (self.secret is not None and self.jwks_uri is None)

    @property
    def uses_discovery(self) -> bool:
        """True when the JWK Set location comes from the discovery document."""
        return self.jwks is None and self.jwks_uri is None and self.secret is None
