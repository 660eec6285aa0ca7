"""The verified result of a validation: an immutable mapping with typed accessors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

__all__ = [
    "Claims",
    "PayloadSource",
    "RoleClaim",
    "cached_claims",
    "read_roles",
    "read_scopes",
    "split_scopes",
]

RoleClaim = str | tuple[str, ...]
"""Where roles live: a claim name or dotted path (``realm_access.roles``), or a tuple of
names for a path whose parts contain dots (``("resource_access", "my.api", "roles")``)."""

DEFAULT_ROLE_CLAIMS: tuple[RoleClaim, ...] = ("roles",)


_NO_SCOPE = frozenset({""})
# A memo of a pure function, bounded (cleared when full): the tokens of one client repeat one
# `scope` string, so their claims share one set (faster, and a cached token keeps no copy).
# It is filled only after a signature verified (claim checks run after it).
_SCOPE_SETS: dict[str, frozenset[str]] = {}
_SCOPE_SETS_LIMIT = 512
_SCOPE_STRING_LIMIT = 1024


def split_scopes(value: str) -> frozenset[str]:
    """The scope tokens of a ``scope`` string, separated by single spaces (RFC 6749 §3.3).

    Only SP (U+0020) separates: a TAB, a newline or a no-break space is part of a token, so
    ``"read\tadmin"`` grants neither ``read`` nor ``admin``. Runs of spaces are tolerated.
    """
    known = _SCOPE_SETS.get(value)
    if known is not None:
        return known
    scopes = frozenset(value.split(" "))
    if "" in scopes:
        scopes -= _NO_SCOPE
    if len(value) <= _SCOPE_STRING_LIMIT:
        if len(_SCOPE_SETS) >= _SCOPE_SETS_LIMIT:
            _SCOPE_SETS.clear()
        _SCOPE_SETS[value] = scopes
    return scopes


def read_scopes(payload: Mapping[str, Any], claim_path: str | None = None) -> frozenset[str]:
    """Scopes from ``scope`` (space-separated), ``scp`` (string or list) or a claim path.

    ``claim_path`` is a dotted path such as ``realm_access.roles`` (Keycloak) or a plain claim
    name such as ``permissions`` (Auth0) or ``cognito:groups`` (Cognito).
    """
    if claim_path is not None:
        value: Any = payload
        for part in claim_path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return _as_scope_set(value)
    scopes = _as_scope_set(payload.get("scope"))
    scp = payload.get("scp")
    if scp is not None:
        scopes |= _as_scope_set(scp)
    return scopes


def read_roles(payload: Mapping[str, Any], role_claims: Iterable[RoleClaim]) -> frozenset[str]:
    """Roles from every claim of ``role_claims``, together.

    A string is a claim name (``cognito:groups``, ``https://example.com/roles``) or, when no
    claim has that name, a dotted path (``realm_access.roles``); a tuple names each step of
    the path. A claim holds a list of role names or one role name (never split on spaces:
    ``"Global Admin"`` is one role); anything else grants no role.
    """
    roles: set[str] = set()
    for path in role_claims:
        value: Any
        if isinstance(path, str):
            value = payload.get(path)
            if value is None and "." in path:
                value = _walk(payload, path.split("."))
        else:
            value = _walk(payload, path)
        if isinstance(value, str):
            if value:
                roles.add(value)
        elif isinstance(value, list):
            roles.update(item for item in value if isinstance(item, str) and item)
    return frozenset(roles)


def _walk(payload: Mapping[str, Any], parts: Iterable[str]) -> Any:
    value: Any = payload
    for part in parts:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _as_scope_set(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return split_scopes(value)
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def _timestamp(value: Any) -> datetime | None:
    if type(value) in (int, float):
        return datetime.fromtimestamp(value, UTC)
    return None


class Claims(Mapping[str, Any]):
    """The verified claims of a token (RFC 7519 section 4), read-only.

    Behaves as a mapping of the payload; typed accessors read the registered claims.
    """

    __slots__ = (
        "_header",
        "_key_id",
        "_origin",
        "_payload",
        "_role_claims",
        "_roles",
        "_scopes",
        "_thumbprint",
    )

    def __init__(
        self,
        payload: Mapping[str, Any],
        *,
        header: Mapping[str, Any],
        key_id: str | None,
        thumbprint: str,
        scopes: frozenset[str],
        role_claims: Iterable[RoleClaim] = DEFAULT_ROLE_CLAIMS,
    ) -> None:
        self._payload = MappingProxyType(dict(payload))
        self._header = MappingProxyType(dict(header))
        self._key_id = key_id
        self._thumbprint = thumbprint
        self._scopes = scopes
        self._role_claims: Sequence[RoleClaim] = tuple(role_claims)
        self._roles: frozenset[str] | None = None
        self._origin: object = None

    @classmethod
    def _trusted(
        cls,
        payload: dict[str, Any],
        header: dict[str, Any],
        key_id: str | None,
        thumbprint: str,
        scopes: frozenset[str],
        role_claims: Sequence[RoleClaim] = DEFAULT_ROLE_CLAIMS,
    ) -> Claims:
        # The validator owns the freshly parsed dicts, so they are wrapped without a copy.
        claims = cls.__new__(cls)
        claims._payload = MappingProxyType(payload)
        claims._header = MappingProxyType(header)
        claims._key_id = key_id
        claims._thumbprint = thumbprint
        claims._scopes = scopes
        claims._role_claims = role_claims
        claims._roles = None  # read on first use: most routes never look at roles
        claims._origin = None
        return claims

    def __getitem__(self, name: str) -> Any:
        return self._payload[name]

    def __contains__(self, name: object) -> bool:
        # Mapping's own raises and catches KeyError for every absent name ("cnf" in claims).
        return name in self._payload

    def __iter__(self) -> Iterator[str]:
        return iter(self._payload)

    def __len__(self) -> int:
        return len(self._payload)

    def __repr__(self) -> str:
        return f"Claims(sub={self.subject!r}, iss={self.issuer!r}, kid={self._key_id!r})"

    @property
    def header(self) -> Mapping[str, Any]:
        """The verified JOSE header."""
        return self._header

    @property
    def key_id(self) -> str | None:
        """The ``kid`` of the key that verified the signature."""
        return self._key_id

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint of the key that verified the signature."""
        return self._thumbprint

    @property
    def subject(self) -> str | None:
        """``sub``."""
        value = self._payload.get("sub")
        return value if isinstance(value, str) else None

    @property
    def issuer(self) -> str:
        """``iss``, always present in a verified token."""
        return str(self._payload["iss"])

    @property
    def audiences(self) -> tuple[str, ...]:
        """``aud`` as a tuple, whether the token holds a string or a list."""
        aud = self._payload.get("aud")
        if isinstance(aud, str):
            return (aud,)
        if isinstance(aud, list):
            return tuple(item for item in aud if isinstance(item, str))
        return ()

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes, read as the issuer is configured to publish them."""
        return self._scopes

    @property
    def roles(self) -> frozenset[str]:
        """The granted roles, read from the issuer's ``role_claims`` (default ``roles``,
        RFC 9068 section 2.2.3.1; the provider presets name their own: Entra ``roles``,
        Keycloak realm and client roles, Cognito ``cognito:groups``, Auth0 ``permissions``)."""
        roles = self._roles
        if roles is None:
            roles = self._roles = read_roles(self._payload, self._role_claims)
        return roles

    @property
    def expires_at(self) -> datetime | None:
        """``exp`` as an aware UTC datetime."""
        return _timestamp(self._payload.get("exp"))

    @property
    def issued_at(self) -> datetime | None:
        """``iat`` as an aware UTC datetime."""
        return _timestamp(self._payload.get("iat"))

    @property
    def not_before(self) -> datetime | None:
        """``nbf`` as an aware UTC datetime."""
        return _timestamp(self._payload.get("nbf"))

    @property
    def token_id(self) -> str | None:
        """``jti``."""
        value = self._payload.get("jti")
        return value if isinstance(value, str) else None

    @property
    def client_id(self) -> str | None:
        """``client_id`` (RFC 9068), else ``azp``."""
        value = self._payload.get("client_id", self._payload.get("azp"))
        return value if isinstance(value, str) else None


class PayloadSource(Protocol):
    """Where the claims of a verified-token cache hit come from: the cache entry."""

    payload: bytes
    names: frozenset[str]

    def decode(self, payload: bytes, /) -> dict[str, Any]: ...


class _CachedClaims(Claims):
    """The claims of a verified-token cache hit, equal to the full validation's.

    Built from the cache entry (``_origin``), which keeps the payload as its JSON text: the
    text is decoded on the first read of the payload (once per hit, at C speed), so a caller
    that needs only the decision, the scopes, the header, the key or whether a claim is
    present never pays for it. Every hit gets a new object and its own decoded values.
    """

    __slots__ = ("_decoded",)
    _decoded: MappingProxyType[str, Any] | None

    @property
    def _payload(self) -> MappingProxyType[str, Any]:  # type: ignore[override]
        decoded = self._decoded
        if decoded is None:
            # Concurrent first reads may each decode: equal values, one of them kept.
            origin: PayloadSource = self._origin  # type: ignore[assignment]
            decoded = self._decoded = MappingProxyType(origin.decode(origin.payload))
        return decoded

    def __contains__(self, name: object) -> bool:
        # The member names are known without decoding (the request pipeline asks for "cnf").
        decoded = self._decoded
        if decoded is None:
            origin: PayloadSource = self._origin  # type: ignore[assignment]
            return name in origin.names
        return name in decoded


def cached_claims(
    origin: PayloadSource,
    header: MappingProxyType[str, Any],
    key_id: str | None,
    thumbprint: str,
    scopes: frozenset[str],
    role_claims: Sequence[RoleClaim],
) -> Claims:
    """Claims for a verified-token cache hit of ``origin`` (positional, for speed)."""
    claims = _new_cached(_CachedClaims)
    claims._decoded = None
    claims._header = header
    claims._key_id = key_id
    claims._thumbprint = thumbprint
    claims._scopes = scopes
    claims._role_claims = role_claims
    claims._roles = None
    claims._origin = origin
    return claims


_new_cached = object.__new__
