"""Typed claims: the verified payload as a dataclass, a TypedDict or a pydantic model.

A model that does not fit the token is the token's fault, not the server's: every failure is
an :class:`~jwkguard.errors.InvalidClaim` (401 ``invalid_token``, reason ``invalid_claim``,
with the claim at fault), never a 422 or a 500. The public names are listed, once, in
:mod:`jwkguard.typed`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, cast

from ._claims_result import Claims
from .errors import ConfigurationError, InvalidClaim

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
# TypedDict qualifiers that wrap a field's type (ReadOnly: Python 3.13+).
_QUALIFIERS = tuple(
    q for q in (typing.Required, typing.NotRequired, getattr(typing, "ReadOnly", None)) if q
)


def check_model(model: Any) -> None:
    """Refuse, at start-up, a model that :func:`claims_as` cannot build."""
    if not (
        (dataclasses.is_dataclass(model) and isinstance(model, type))
        or typing.is_typeddict(model)
        or callable(getattr(model, "model_validate", None))
        or callable(getattr(model, "from_claims", None))
    ):
        raise ConfigurationError(
            "a claims model must be a dataclass, a TypedDict, a pydantic model, "
            "or a class with from_claims(claims)"
        )


def claims_as(claims: Claims, model: type[T]) -> T:
    """The verified claims as an instance of ``model``.

    ``model`` may be a class with ``from_claims(claims)`` (the provider models), a pydantic
    model (``model_validate``), a dataclass (fields named as claims; unknown claims ignored;
    ``init=False`` fields skipped) or a TypedDict (its required keys must be present). Field
    types of dataclasses and TypedDicts are checked for plain types (``str``, ``int``,
    ``list[str]``, ``X | None``...); anything richer is left to pydantic.

    Raises:
        InvalidClaim: A required claim is missing or has the wrong type (401 ``invalid_token``).
    """
    from_claims = getattr(model, "from_claims", None)
    if callable(from_claims):
        return cast(T, from_claims(claims))
    validate = getattr(model, "model_validate", None)
    if callable(validate):
        return cast(T, _pydantic(validate, claims))
    payload = dict(claims)
    if typing.is_typeddict(model):
        hints = typing.get_type_hints(model, include_extras=True)
        for name in sorted(_required_keys(model, hints)):
            if name not in payload:
                raise _missing(name)
        for name, hint in hints.items():
            if name in payload:
                _check_type(name, payload[name], hint)
        return cast(T, {name: payload[name] for name in hints if name in payload})
    if dataclasses.is_dataclass(model) and isinstance(model, type):
        hints = typing.get_type_hints(model)
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(model):
            if not spec.init:
                continue
            if spec.name in payload:
                _check_type(spec.name, payload[spec.name], hints.get(spec.name, Any))
                values[spec.name] = payload[spec.name]
            elif (
                spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            ):
                raise _missing(spec.name)
        return cast(T, model(**values))
    check_model(model)
    raise AssertionError("unreachable")  # pragma: no cover


def _required_keys(model: Any, hints: Mapping[str, Any]) -> set[str]:
    # Read from the resolved hints: under `from __future__ import annotations` the class
    # cannot see NotRequired in its string annotations, so __required_keys__ is wrong.
    required = set(getattr(model, "__required_keys__", hints))
    for name, hint in hints.items():
        origin = typing.get_origin(hint)
        if origin is typing.NotRequired:
            required.discard(name)
        elif origin is typing.Required:
            required.add(name)
    return required


def _missing(name: str) -> InvalidClaim:
    return InvalidClaim(
        f"The access token lacks the {name!r} claim", reason="invalid_claim", claim=name
    )


def _wrong(name: str) -> InvalidClaim:
    return InvalidClaim(
        f"The access token's {name!r} claim has the wrong type", reason="invalid_claim", claim=name
    )


def _check_type(name: str, value: Any, hint: Any) -> None:
    if not _fits(value, hint):
        raise _wrong(name)


def _fits(value: Any, hint: Any) -> bool:
    """A shallow check of JSON values against plain annotations; anything else passes."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if origin in _QUALIFIERS:
        return _fits(value, typing.get_args(hint)[0])
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
        if not isinstance(value, list):
            return False
        args = typing.get_args(hint)
        return not args or all(_fits(item, args[0]) for item in value)
    if origin is dict or hint is dict or origin is Mapping or hint is Mapping:
        return isinstance(value, dict)
    return True


def _pydantic(validate: Any, claims: Claims) -> Any:
    try:
        return validate(dict(claims))
    except Exception as exc:
        # pydantic's ValidationError, without importing pydantic: its errors() name the field.
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            raise
        first = (errors() or [{}])[0]
        location = first.get("loc") or ()
        claim = str(location[0]) if location else None
        missing = first.get("type") == "missing"
        if claim is None:
            raise InvalidClaim(
                "The access token's claims do not match the expected model",
                reason="invalid_claim",
            ) from None
        raise (_missing(claim) if missing else _wrong(claim)) from None


# -- provider claim models -------------------------------------------------------------------


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _wrong(name)


def _string(claims: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise _wrong(name)
    return value


class _ProviderClaims:
    """Base of the provider models whose fields each read one claim (``_claim_names`` renames).

    A field without a default is a required string, one that defaults to None an optional
    string, one that defaults to ``()`` a list of strings (or a space-separated string).
    """

    __slots__ = ()
    _claim_names: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Self:
        """Read the model's claims; a required one missing, or any of the wrong type, refuses."""
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cast("type[DataclassInstance]", cls)):
            claim = cls._claim_names.get(spec.name, spec.name)
            if spec.default == ():
                values[spec.name] = _strings(claims.get(claim), claim)
            else:
                required = spec.default is dataclasses.MISSING
                values[spec.name] = _string(claims, claim, required=required)
        return cls(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class EntraClaims(_ProviderClaims):
    """Microsoft Entra ID access token claims (v2.0); ``oid`` and ``tid`` are required.

    Attributes:
        oid: The user's (or service principal's) object id, stable across apps.
        tid: The tenant id.
        roles: App roles assigned to the user or the calling app.
        scp: Delegated scopes (``scp``, space-separated in the token).
        azp: The client id of the calling app, if present.
    """

    oid: str
    tid: str
    roles: tuple[str, ...] = ()
    scp: tuple[str, ...] = ()
    azp: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Auth0Claims(_ProviderClaims):
    """Auth0 access token claims with RBAC enabled; ``sub`` is required.

    Attributes:
        sub: The user (``auth0|...``) or client (``...@clients``).
        permissions: The ``permissions`` claim of RBAC ("Add Permissions in the Access Token").
        azp: The client id of the calling app, if present.
    """

    sub: str
    permissions: tuple[str, ...] = ()
    azp: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class KeycloakClaims:
    """Keycloak access token claims.

    Attributes:
        sub: The user id.
        preferred_username: The user name, if the profile scope put it in.
        realm_roles: ``realm_access.roles``.
        resource_roles: ``resource_access.<client>.roles`` for each client.
    """

    sub: str
    preferred_username: str | None = None
    realm_roles: tuple[str, ...] = ()
    resource_roles: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> KeycloakClaims:
        """Read the Keycloak claims; ``sub`` is required."""
        realm = claims.get("realm_access") or {}
        resources = claims.get("resource_access") or {}
        if not isinstance(realm, Mapping):
            raise _wrong("realm_access")
        if not isinstance(resources, Mapping) or not all(
            isinstance(entry, Mapping) for entry in resources.values()
        ):
            raise _wrong("resource_access")
        return cls(
            sub=cast(str, _string(claims, "sub")),
            preferred_username=_string(claims, "preferred_username", required=False),
            realm_roles=_strings(realm.get("roles"), "realm_access"),
            resource_roles=types.MappingProxyType(
                {
                    str(client): _strings(entry.get("roles"), "resource_access")
                    for client, entry in resources.items()
                }
            ),
        )

    def has_role(self, role: str, client: str | None = None) -> bool:
        """True if the user has ``role`` in the realm, or in ``client`` when given."""
        if client is None:
            return role in self.realm_roles
        return role in self.resource_roles.get(client, ())


@dataclasses.dataclass(frozen=True, slots=True)
class CognitoClaims(_ProviderClaims):
    """Amazon Cognito access token claims; ``sub`` is required.

    Attributes:
        sub: The user id.
        username: The user name (``username`` in access tokens).
        client_id: The app client id (Cognito access tokens carry no ``aud``).
        groups: ``cognito:groups``.
    """

    sub: str
    username: str | None = None
    client_id: str | None = None
    groups: tuple[str, ...] = ()

    _claim_names: ClassVar[Mapping[str, str]] = {"groups": "cognito:groups"}
