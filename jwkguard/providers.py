"""Issuer presets for common identity providers, with each provider's quirks encoded.

Every preset returns a list of ``Issuer`` (some providers sign under two issuer strings), to be
spread into a validator::

    from jwkguard import Validator
    from jwkguard.providers import auth0, google

    validator = Validator(
        issuers=[*auth0("example.eu.auth0.com", audience="https://api.example.com")],
        algorithms=["RS256"],
    )

Each preset names the provider's ``jwks_uri`` directly (no discovery round trip) and accepts
any other ``Issuer`` option by keyword (``timeout``, ``cooldown``, ``max_stale``, ...). Hosts
can be overridden for sovereign clouds, custom domains and tests. Sources for every quirk are
listed in ``docs/providers.md``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._checks import string_list
from ._issuer import ClaimCheck, Issuer
from .errors import ConfigurationError, InvalidClaim

__all__ = [
    "auth0",
    "cognito",
    "entra_id",
    "entra_id_multi_tenant",
    "google",
    "keycloak",
    "okta",
]

EntraVersion = Literal["v1", "v2"]

ENTRA_AUTHORITY = "https://login.microsoftonline.com"
ENTRA_V1_AUTHORITY = "https://sts.windows.net"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ISSUER_FIELDS = frozenset(field.name for field in dataclasses.fields(Issuer))
# Options a preset sets itself; passing them too would silently undo a provider quirk.
_PRESET_FIELDS = frozenset({"issuer", "jwks", "jwks_uri", "secret", "secret_kid", "metadata"})


@dataclass(frozen=True)
class _ClaimIn:
    """A claim check: ``claim`` must be one of ``allowed``."""

    claim: str
    allowed: frozenset[str]
    reason: str

    def __call__(self, payload: Mapping[str, Any]) -> bool:
        if payload.get(self.claim) not in self.allowed:
            raise InvalidClaim(
                f"The '{self.claim}' claim is not accepted", reason=self.reason, claim=self.claim
            )
        return True


def _issuers(
    provider: str,
    names: Sequence[str],
    *,
    jwks_uri: str,
    options: Mapping[str, Any],
    checks: Sequence[ClaimCheck] = (),
    metadata: Mapping[str, Any] | None = None,
    **preset: Any,
) -> list[Issuer]:
    unknown = set(options) - _ISSUER_FIELDS
    if unknown:
        raise ConfigurationError(f"unknown Issuer options: {', '.join(sorted(unknown))}")
    fixed = (set(options) & _PRESET_FIELDS) | (set(options) & set(preset))
    if fixed:
        raise ConfigurationError(
            f"the {provider} preset sets {', '.join(sorted(fixed))} itself; "
            "build an Issuer directly to change it"
        )
    chosen = dict(options)
    claim_checks = (*checks, *chosen.pop("claim_checks", ()))
    return [
        Issuer(
            name,
            jwks_uri=jwks_uri,
            claim_checks=claim_checks,
            metadata={"provider": provider, **(metadata or {})},
            **preset,
            **chosen,
        )
        for name in names
    ]


def _strings(values: str | Sequence[str], what: str) -> tuple[str, ...]:
    # Preset options take one value or a list of them.
    return string_list((values,) if isinstance(values, str) else values, what, allow_empty=False)


def _base_url(host_or_url: str, what: str) -> str:
    if not isinstance(host_or_url, str) or not host_or_url.strip("/"):
        raise ConfigurationError(f"{what} must be a host name or an https URL")
    if "://" in host_or_url:
        return host_or_url.rstrip("/")
    return f"https://{host_or_url.strip('/')}"


# -- Microsoft Entra ID -------------------------------------------------------------------


def _tenant(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _GUID.fullmatch(tenant_id.lower()):
        raise ConfigurationError(
            f"Entra tenant ids are GUIDs (tokens name the tenant by its id): {tenant_id!r}"
        )
    return tenant_id.lower()


@dataclass(frozen=True)
class _EntraApp:
    """One API registration in Entra ID: what the issuers of every accepted tenant share."""

    client_id: str
    app_id_uri: str | None
    versions: Sequence[EntraVersion]
    authority: str
    v1_authority: str
    options: Mapping[str, Any]

    def issuers(
        self, tenants: Sequence[str], *, key_set: str, app_signing_keys: bool = False
    ) -> list[Issuer]:
        """The issuers of ``tenants``; their keys are ``{authority}/{key_set}/discovery/...``."""
        (client,) = _strings(self.client_id, "client_id")
        # v2.0 access tokens carry the client id as aud; v1.0 tokens carry the Application ID URI.
        audiences = (client, self.app_id_uri or f"api://{client}")
        authority = _base_url(self.authority, "authority")
        jwks_uri = f"{authority}/{key_set}/discovery/v2.0/keys"
        if app_signing_keys:
            jwks_uri += f"?appid={client}"
        v1_authority = _base_url(self.v1_authority, "v1_authority")
        if not self.versions or not set(self.versions) <= {"v1", "v2"}:
            raise ConfigurationError("versions must hold 'v1' and/or 'v2'")
        issuers: list[Issuer] = []
        for tenant in tenants:
            names = {"v1": f"{v1_authority}/{tenant}/", "v2": f"{authority}/{tenant}/v2.0"}
            issuers += _issuers(
                "entra_id",
                [names[version] for version in dict.fromkeys(self.versions)],
                jwks_uri=jwks_uri,
                options=self.options,
                checks=[_ClaimIn("tid", frozenset({tenant}), "tenant_mismatch")],
                metadata={"tenant_id": tenant},
                audiences=audiences,
            )
        return issuers


def entra_id(
    tenant_id: str,
    *,
    client_id: str,
    app_id_uri: str | None = None,
    versions: Sequence[EntraVersion] = ("v1", "v2"),
    authority: str = ENTRA_AUTHORITY,
    v1_authority: str = ENTRA_V1_AUTHORITY,
    app_signing_keys: bool = False,
    **options: Any,
) -> list[Issuer]:
    """Microsoft Entra ID (Azure AD), one tenant: access tokens for your registered API.

    Accepts v2.0 tokens (``iss`` ``https://login.microsoftonline.com/{tid}/v2.0``, ``aud`` the
    client id) and v1.0 tokens (``iss`` ``https://sts.windows.net/{tid}/``, ``aud`` the
    Application ID URI); both are signed by the tenant's keys. ``tid`` must be the tenant.
    Delegated scopes are read from ``scp`` (``Claims.scopes``) and app roles from ``roles``
    (``Claims.roles``): an app-only token (client credentials) carries only ``roles``, so a
    route that serves both kinds says ``any_scopes``/``any_roles`` or checks each.

    Args:
        tenant_id: The directory (tenant) id, a GUID.
        client_id: The application (client) id of your API registration.
        app_id_uri: The Application ID URI; default ``api://{client_id}``.
        versions: Token versions to accept: ``"v1"``, ``"v2"`` or both.
        authority: The login host (sovereign clouds: ``https://login.microsoftonline.us``...).
        v1_authority: The v1.0 issuer host (``https://sts.windows.net`` in the public cloud).
        app_signing_keys: The app uses its own signing keys (claims mapping): fetch
            ``.../keys?appid={client_id}``.
        **options: Any other ``Issuer`` option.
    """
    tenant = _tenant(tenant_id)
    app = _EntraApp(client_id, app_id_uri, versions, authority, v1_authority, options)
    return app.issuers([tenant], key_set=tenant, app_signing_keys=app_signing_keys)


def entra_id_multi_tenant(
    *,
    client_id: str,
    tenant_ids: Sequence[str],
    app_id_uri: str | None = None,
    versions: Sequence[EntraVersion] = ("v2",),
    authority: str = ENTRA_AUTHORITY,
    v1_authority: str = ENTRA_V1_AUTHORITY,
    **options: Any,
) -> list[Issuer]:
    """Microsoft Entra ID, multi-tenant app: tokens from an explicit allow-list of tenants.

    The ``common`` metadata names the issuer ``https://login.microsoftonline.com/{tenantid}/v2.0``
    as a template; here ``{tenantid}`` is substituted with each allowed tenant id, so a token is
    routed only if its ``iss`` names an allowed tenant, and its ``tid`` must be that same tenant.
    All tenants share the ``common`` key set: one cache and one fetch.

    Args:
        client_id: The application (client) id of your API registration.
        tenant_ids: The tenants whose tokens are accepted (GUIDs). Required: accepting any
            tenant would accept tokens from any Entra directory in the world.
        app_id_uri: The Application ID URI; default ``api://{client_id}``.
        versions: Token versions to accept.
        authority: The login host.
        v1_authority: The v1.0 issuer host.
        **options: Any other ``Issuer`` option.
    """
    if isinstance(tenant_ids, str):
        raise ConfigurationError("tenant_ids must be a list of tenant ids, not one string")
    tenants = [_tenant(tenant) for tenant in dict.fromkeys(tenant_ids)]
    if not tenants:
        raise ConfigurationError("tenant_ids must name at least one tenant")
    app = _EntraApp(client_id, app_id_uri, versions, authority, v1_authority, options)
    return app.issuers(tenants, key_set="common")


# -- Auth0, Okta, Keycloak ------------------------------------------------------------------


def auth0(
    domain: str,
    *,
    audience: str | Sequence[str],
    use_permissions: bool = True,
    **options: Any,
) -> list[Issuer]:
    """Auth0: the issuer is ``https://{domain}/``, with the trailing slash.

    Args:
        domain: The tenant domain (``example.eu.auth0.com``) or custom domain, or a base URL.
        audience: The API identifier(s) configured in Auth0.
        use_permissions: Read scopes from ``permissions`` (RBAC with "Add Permissions in the
            Access Token"); False reads the ``scope`` string.
        **options: Any other ``Issuer`` option. ``role_claims`` defaults to ``permissions``
            (Auth0 RBAC); name your Action's namespaced claim to read role names instead,
            e.g. ``role_claims=["https://example.com/roles"]``.
    """
    base = _base_url(domain, "domain")
    options = {"role_claims": ("permissions",), **options}
    return _issuers(
        "auth0",
        [f"{base}/"],
        jwks_uri=f"{base}/.well-known/jwks.json",
        options=options,
        audiences=_strings(audience, "audience"),
        scope_claim="permissions" if use_permissions else None,
    )


def okta(
    domain: str,
    *,
    audiences: str | Sequence[str],
    authorization_server: str = "default",
    client_ids: Sequence[str] | None = None,
    **options: Any,
) -> list[Issuer]:
    """Okta custom authorization server: ``iss`` is ``https://{domain}/oauth2/{server}``.

    Access tokens from the org authorization server are meant for Okta's own APIs and cannot
    be validated locally; use a custom authorization server (``default`` or your own).
    Scopes are read from ``scp``; the client id is in ``cid``.

    Args:
        domain: The Okta domain (``example.okta.com``) or a base URL.
        audiences: The authorization server's audience(s), e.g. ``api://default``.
        authorization_server: The authorization server id.
        client_ids: If given, ``cid`` must be one of these.
        **options: Any other ``Issuer`` option.
    """
    (server,) = _strings(authorization_server, "authorization_server")
    issuer = f"{_base_url(domain, 'domain')}/oauth2/{server}"
    checks = []
    if client_ids is not None:
        checks.append(
            _ClaimIn("cid", frozenset(_strings(client_ids, "client_ids")), "client_not_allowed")
        )
    return _issuers(
        "okta",
        [issuer],
        jwks_uri=f"{issuer}/v1/keys",
        options=options,
        checks=checks,
        audiences=_strings(audiences, "audiences"),
    )


def keycloak(
    server_url: str,
    realm: str,
    *,
    audiences: str | Sequence[str] | None = None,
    client_ids: Sequence[str] | None = None,
    roles_as_scopes: bool = True,
    role_clients: Sequence[str] = (),
    **options: Any,
) -> list[Issuer]:
    """Keycloak realm: ``iss`` is ``{server_url}/realms/{realm}``.

    Keycloak puts the requesting client in ``azp`` and adds ``aud`` only with an audience
    mapper, so give ``client_ids`` (checked against ``azp``), ``audiences``, or both.
    Before Keycloak 17 the server URL ends in ``/auth``; include it in ``server_url``.

    Args:
        server_url: The Keycloak base URL.
        realm: The realm name.
        audiences: Accepted ``aud`` values (needs an audience mapper in Keycloak).
        client_ids: Accepted clients (``azp``).
        roles_as_scopes: Read scopes from ``realm_access.roles``; False reads ``scope``.
            Either way, ``Claims.roles`` holds the realm roles.
        role_clients: Clients whose roles (``resource_access.<client>.roles``) also count
            in ``Claims.roles``, usually your API's own client.
        **options: Any other ``Issuer`` option.
    """
    (realm_name,) = _strings(realm, "realm")
    clients = _strings(role_clients, "role_clients") if role_clients else ()
    options = {
        "role_claims": (
            "realm_access.roles",
            *(("resource_access", client, "roles") for client in clients),
        ),
        **options,
    }
    issuer = f"{_base_url(server_url, 'server_url')}/realms/{realm_name}"
    return _issuers(
        "keycloak",
        [issuer],
        jwks_uri=f"{issuer}/protocol/openid-connect/certs",
        options=options,
        audiences=_strings(audiences, "audiences") if audiences is not None else None,
        allowed_client_ids=_strings(client_ids, "client_ids") if client_ids is not None else None,
        scope_claim="realm_access.roles" if roles_as_scopes else None,
    )


# -- AWS Cognito, Google --------------------------------------------------------------------


def cognito(
    region: str,
    user_pool_id: str,
    *,
    client_ids: Sequence[str],
    endpoint: str | None = None,
    **options: Any,
) -> list[Issuer]:
    """Amazon Cognito user pool access tokens.

    Cognito access tokens carry no ``aud``: the app client is in ``client_id``, and
    ``token_use`` must be ``access`` (an ID token, whose ``aud`` is the client id, is refused).
    Scopes are read from ``scope``, roles (``Claims.roles``) from ``cognito:groups``.

    Args:
        region: The AWS region, e.g. ``eu-west-1``.
        user_pool_id: The user pool id, ``{region}_{id}``.
        client_ids: The app client ids whose tokens are accepted.
        endpoint: Override ``https://cognito-idp.{region}.amazonaws.com`` (tests, proxies).
        **options: Any other ``Issuer`` option.
    """
    (region_name,) = _strings(region, "region")
    (pool,) = _strings(user_pool_id, "user_pool_id")
    if not pool.startswith(f"{region_name}_"):
        raise ConfigurationError(f"user pool {pool!r} is not in region {region_name!r}")
    base = _base_url(endpoint or f"cognito-idp.{region_name}.amazonaws.com", "endpoint")
    options = {"role_claims": ("cognito:groups",), **options}
    issuer = f"{base}/{pool}"
    return _issuers(
        "cognito",
        [issuer],
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        options=options,
        checks=[_ClaimIn("token_use", frozenset({"access"}), "wrong_token_use")],
        audiences=None,
        allowed_client_ids=_strings(client_ids, "client_ids"),
    )


def google(
    *,
    audiences: str | Sequence[str],
    hosted_domain: str | None = None,
    jwks_uri: str = GOOGLE_JWKS_URI,
    **options: Any,
) -> list[Issuer]:
    """Google-signed ID tokens used as bearer tokens (Cloud Run, IAP, Pub/Sub push, ...).

    Google access tokens are opaque and cannot be validated locally; its ID tokens are JWTs
    whose ``iss`` is either ``https://accounts.google.com`` or ``accounts.google.com``. Both
    spellings are accepted and share one key cache.

    Args:
        audiences: Your OAuth client id(s), or the audience URL of service-to-service tokens.
        hosted_domain: Accept only accounts of this Google Workspace domain (``hd``).
        jwks_uri: Google's key set; override only for tests.
        **options: Any other ``Issuer`` option.
    """
    checks: list[Callable[[Mapping[str, Any]], object]] = []
    if hosted_domain is not None:
        (domain,) = _strings(hosted_domain, "hosted_domain")
        checks.append(_ClaimIn("hd", frozenset({domain}), "hosted_domain"))
    return _issuers(
        "google",
        GOOGLE_ISSUERS,
        jwks_uri=jwks_uri,
        options=options,
        checks=checks,
        audiences=_strings(audiences, "audiences"),
    )
