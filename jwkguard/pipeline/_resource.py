"""OAuth 2.0 Protected Resource Metadata (RFC 9728) and the resource's audience (RFC 8707).

A :class:`ResourceMetadata` describes the protected resource: its identifier, the
authorization servers that issue tokens for it, the scopes and bearer methods it supports,
DPoP and certificate binding. It produces the metadata document, the well-known path it is
served at (RFC 9728 section 3.1: ``/.well-known/oauth-protected-resource`` inserted between
the host and the resource's path) and the ``resource_metadata`` parameter every challenge
carries (section 5.1), so a client that is refused learns where to get a token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._checks import string_list
from .._issuer import is_loopback_host
from ..errors import AudienceMismatch, ConfigurationError, InvalidClaim

if TYPE_CHECKING:
    from .._validator import Validator
    from ..sender._constraints import SenderConstraints

__all__ = [
    "WELL_KNOWN_PATH",
    "ResourceMetadata",
    "build_resource_metadata",
    "check_resource_audience",
    "resource_identifier",
]

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
"""The RFC 9728 section 3 well-known path (for a resource at the root of its host)."""

_BEARER_METHODS = ("header", "body", "query")
_OPTIONS = frozenset(
    {
        "resource",
        "authorization_servers",
        "scopes_supported",
        "bearer_methods_supported",
        "dpop_signing_alg_values_supported",
        "dpop_bound_access_tokens_required",
        "tls_client_certificate_bound_access_tokens",
        "resource_name",
        "resource_documentation",
        "resource_policy_uri",
        "resource_tos_uri",
        "extra",
        "cache_max_age",
    }
)


def _check_url(value: Any, name: str, *, resource: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a URL")
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(value))
    if not secure or not parts.hostname:
        raise ConfigurationError(f"{name} must be an https URL (http only for loopback hosts)")
    if resource and (parts.fragment or "#" in value):
        # RFC 8707 section 2: the resource indicator must not include a fragment.
        raise ConfigurationError(f"{name} must not contain a fragment")
    if resource and parts.query:
        # RFC 9728 section 3.1 builds the metadata URL from the path; a query would be lost.
        raise ConfigurationError(f"{name} must not contain a query")
    return value


@dataclass(frozen=True, slots=True)
class ResourceMetadata:
    """What a protected resource tells clients about itself (RFC 9728 section 2).

    Args:
        resource: The resource identifier, an ``https`` URL (``http`` only on loopback), e.g.
            ``https://api.example.com/mcp``; tokens should name it in ``aud`` (RFC 8707).
        authorization_servers: Issuer identifiers of the authorization servers whose tokens
            the resource accepts.
        scopes_supported: Scopes a client may ask for to use the resource.
        bearer_methods_supported: How the token may be sent: ``header`` (default), ``query``.
        dpop_signing_alg_values_supported: The JWS algorithms accepted in DPoP proofs.
        dpop_bound_access_tokens_required: Every token must be DPoP-bound.
        tls_client_certificate_bound_access_tokens: Certificate-bound tokens are supported.
        resource_name: A human-readable name of the resource.
        resource_documentation: A URL of the resource's documentation for developers.
        resource_policy_uri: A URL of the resource's data-use policy.
        resource_tos_uri: A URL of the resource's terms of service.
        extra: More members of the document, as they are (e.g.
            ``authorization_details_types_supported``).
        cache_max_age: ``Cache-Control: max-age`` of the served document, in seconds.
    """

    resource: str
    _: KW_ONLY
    authorization_servers: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] = ()
    bearer_methods_supported: tuple[str, ...] = ("header",)
    dpop_signing_alg_values_supported: tuple[str, ...] = ()
    dpop_bound_access_tokens_required: bool = False
    tls_client_certificate_bound_access_tokens: bool = False
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    cache_max_age: int = 3600

    def __post_init__(self) -> None:
        _check_url(self.resource, "resource", resource=True)
        for name in (
            "authorization_servers",
            "scopes_supported",
            "bearer_methods_supported",
            "dpop_signing_alg_values_supported",
        ):
            object.__setattr__(self, name, string_list(getattr(self, name), name, unique=True))
        unknown = set(self.bearer_methods_supported) - set(_BEARER_METHODS)
        if unknown:
            raise ConfigurationError(
                f"bearer_methods_supported: {', '.join(sorted(unknown))} is not a method "
                "(RFC 6750: header, body, query)"
            )
        for name in (
            "dpop_bound_access_tokens_required",
            "tls_client_certificate_bound_access_tokens",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be True or False")
        if self.dpop_bound_access_tokens_required and not self.dpop_signing_alg_values_supported:
            raise ConfigurationError(
                "dpop_bound_access_tokens_required needs dpop_signing_alg_values_supported"
            )
        for name in ("resource_documentation", "resource_policy_uri", "resource_tos_uri"):
            if getattr(self, name) is not None:
                _check_url(getattr(self, name), name)
        if self.resource_name is not None and (
            not isinstance(self.resource_name, str) or not self.resource_name
        ):
            raise ConfigurationError("resource_name must be a non-empty string")
        if not isinstance(self.extra, Mapping) or not all(isinstance(k, str) for k in self.extra):
            raise ConfigurationError("extra must be a mapping of member names to values")
        clash = set(self.extra) & (_OPTIONS - {"extra", "cache_max_age"})
        if clash:
            raise ConfigurationError(f"extra repeats {', '.join(sorted(clash))}: set it directly")
        try:
            json.dumps(dict(self.extra))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"extra must be JSON: {exc}") from None
        object.__setattr__(self, "extra", dict(self.extra))
        if type(self.cache_max_age) is not int or self.cache_max_age < 0:
            raise ConfigurationError("cache_max_age must be a non-negative number of seconds")

    @classmethod
    def describe(
        cls,
        resource: str,
        *,
        validator: Validator | None = None,
        sender: SenderConstraints | None = None,
        **options: Any,
    ) -> ResourceMetadata:
        """Metadata for ``resource``, with what the validator and sender constraints know.

        ``authorization_servers`` defaults to the validator's issuers, and
        ``dpop_signing_alg_values_supported`` to the DPoP verifier's algorithms (with
        ``dpop_bound_access_tokens_required`` when every token must be DPoP-bound and
        ``tls_client_certificate_bound_access_tokens`` when certificates can be checked);
        ``options`` are the other arguments of :class:`ResourceMetadata`.
        """
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigurationError(f"unknown resource metadata options: {', '.join(unknown)}")
        if validator is not None and "authorization_servers" not in options:
            options["authorization_servers"] = tuple(i.issuer for i in validator.issuers)
        if sender is not None:
            if sender.dpop is not None:
                options.setdefault("dpop_signing_alg_values_supported", sender.dpop.algorithms)
                options.setdefault("dpop_bound_access_tokens_required", sender.require_dpop)
            if sender.require_certificate or sender.client_cert_header is not None:
                options.setdefault("tls_client_certificate_bound_access_tokens", True)
        return cls(resource, **options)

    # -- where it is served ---------------------------------------------------------------

    @property
    def metadata_path(self) -> str:
        """The path the document is served at: the well-known path, then the resource's path.

        ``https://api.example.com`` → ``/.well-known/oauth-protected-resource``;
        ``https://api.example.com/mcp`` → ``/.well-known/oauth-protected-resource/mcp``
        (RFC 9728 section 3.1).
        """
        path = urlsplit(self.resource).path
        if path in ("", "/"):
            return WELL_KNOWN_PATH
        return WELL_KNOWN_PATH + path.rstrip("/")

    @property
    def metadata_url(self) -> str:
        """The document's URL: the value of the ``resource_metadata`` challenge parameter."""
        parts = urlsplit(self.resource)
        return f"{parts.scheme}://{parts.netloc}{self.metadata_path}"

    @property
    def challenge_params(self) -> tuple[tuple[str, str], ...]:
        """``resource_metadata="…"`` for ``WWW-Authenticate`` (RFC 9728 section 5.1)."""
        return (("resource_metadata", self.metadata_url),)

    def serves(self, path: str) -> bool:
        """True when a request for ``path`` asks for this document."""
        return path == self.metadata_path

    # -- the document ---------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The metadata document (RFC 9728 section 2), members left out when empty."""
        document: dict[str, Any] = {"resource": self.resource}
        for name in (
            "authorization_servers",
            "scopes_supported",
            "bearer_methods_supported",
            "dpop_signing_alg_values_supported",
        ):
            value = getattr(self, name)
            if value:
                document[name] = list(value)
        for name in (
            "dpop_bound_access_tokens_required",
            "tls_client_certificate_bound_access_tokens",
        ):
            if getattr(self, name):
                document[name] = True
        for name in (
            "resource_name",
            "resource_documentation",
            "resource_policy_uri",
            "resource_tos_uri",
        ):
            if getattr(self, name) is not None:
                document[name] = getattr(self, name)
        document.update(self.extra)
        return document

    def body_bytes(self) -> bytes:
        """The document as JSON."""
        return json.dumps(self.document(), separators=(",", ":")).encode()

    def wire_headers(self, body: bytes) -> list[tuple[str, str]]:
        """Headers of the document's 200 answer: JSON, length, caching, any origin (public)."""
        return [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", f"public, max-age={self.cache_max_age}"),
            # Public metadata: browser-based clients (MCP inspectors, SPAs) read it cross-origin.
            ("Access-Control-Allow-Origin", "*"),
        ]


def check_resource_audience(claims: Mapping[str, Any], resource: str) -> None:
    """Refuse a token whose ``aud`` does not name ``resource`` (RFC 8707 section 2).

    Raises:
        AudienceMismatch: ``aud`` names other audiences only.
        InvalidClaim: ``aud`` is missing or malformed.
    """
    aud = claims.get("aud")
    if aud is None:
        raise InvalidClaim("The 'aud' claim is required", reason="missing_claim", claim="aud")
    if isinstance(aud, str):
        audiences: list[Any] = [aud]
    elif isinstance(aud, list) and aud:
        audiences = aud
    else:
        raise InvalidClaim("The 'aud' claim is malformed", claim="aud")
    if resource not in audiences:
        raise AudienceMismatch("The access token was not issued for this resource", claim="aud")


def build_resource_metadata(
    value: Any,
    *,
    validator: Validator | None = None,
    sender: SenderConstraints | None = None,
    where: str = "RESOURCE",
) -> ResourceMetadata | None:
    """A :class:`ResourceMetadata` from a setting: a resource URL, a mapping, or one ready.

    The mapping's keys are the RFC 9728 member names (``resource``, ``scopes_supported``...,
    case-insensitive); what it leaves out comes from the validator and the sender constraints
    (:meth:`ResourceMetadata.describe`). None or an empty value: no metadata.
    """
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, ResourceMetadata):
        return value
    try:
        if isinstance(value, str):
            return ResourceMetadata.describe(value, validator=validator, sender=sender)
        if isinstance(value, Mapping):
            options = {str(key).lower(): item for key, item in value.items()}
            resource = options.pop("resource", None)
            if not isinstance(resource, str):
                raise ConfigurationError("the resource identifier ('resource') is required")
            return ResourceMetadata.describe(
                resource, validator=validator, sender=sender, **options
            )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    raise ConfigurationError(f"{where} must be the resource URL or a mapping of RFC 9728 members")


def resource_identifier(value: Any) -> str | None:
    """The resource identifier of a ``RESOURCE`` setting, before anything is built."""
    if isinstance(value, ResourceMetadata):
        return value.resource
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() == "resource" and isinstance(item, str):
                return item
    return None
