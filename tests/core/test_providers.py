"""Provider presets, each against a local issuer that imitates the provider's URLs and tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from jwkguard import ConfigurationError, Issuer, Validator
from jwkguard.errors import AudienceMismatch, IssuerMismatch
from jwkguard.providers import (
    auth0,
    cognito,
    entra_id,
    entra_id_multi_tenant,
    google,
    keycloak,
    okta,
)
from jwkguard.testing import LocalIssuer, generate_key

from ..conftest import FakeClock
from ..helpers import refusal
from ._remote_support import token as mint

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
STRANGER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
CLIENT = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalIssuer]:
    """One local issuer for the module; each test gives it the provider's URL layout."""
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture(autouse=True)
def _reset(provider: LocalIssuer) -> Iterator[None]:
    provider.requests.clear()
    yield
    provider.routes.clear()
    provider.jwks_paths.clear()
    provider.extra_jwks.clear()


def validator_for(issuers: list[Issuer], clock: FakeClock) -> Validator:
    return Validator(issuers=issuers, algorithms=["RS256"], clock=clock)


def serve_entra_keys(provider: LocalIssuer, path: str) -> None:
    """Serve the keys the way Entra does: no ``alg``, with ``x5t`` and ``issuer`` members."""

    def handler(request: BaseHTTPRequestHandler, body: bytes) -> None:
        keys = []
        for key in provider.keys:
            jwk = {k: v for k, v in key.public_jwk.items() if k != "alg"}
            jwk.update(x5t=jwk["kid"], issuer="https://login.microsoftonline.com/{tenantid}/v2.0")
            keys.append(jwk)
        payload = json.dumps({"keys": keys}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(payload)))
        request.send_header("Cache-Control", "max-age=86400, private")
        request.end_headers()
        request.wfile.write(payload)

    provider.routes[path] = handler


# -- Microsoft Entra ID ---------------------------------------------------------------------


def test_entra_single_tenant_accepts_v1_and_v2_tokens_from_one_key_set(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    serve_entra_keys(provider, f"/{TENANT}/discovery/v2.0/keys")
    issuers = entra_id(TENANT, client_id=CLIENT, authority=provider.base_url)
    v2 = f"{provider.base_url}/{TENANT}/v2.0"
    v1 = f"https://sts.windows.net/{TENANT}/"
    assert [issuer.issuer for issuer in issuers] == [v1, v2]
    with validator_for(issuers, clock) as validator:
        claims = validator.validate(
            mint(provider, clock, issuer=v2, audience=CLIENT, tid=TENANT, scp="orders.read")
        )
        assert claims.scopes == frozenset({"orders.read"})
        claims = validator.validate(
            mint(provider, clock, issuer=v1, audience=f"api://{CLIENT}", tid=TENANT)
        )
        assert claims.issuer == v1
        wrong_tenant = refusal(
            validator, mint(provider, clock, issuer=v2, audience=CLIENT, tid=OTHER_TENANT)
        )
        assert (wrong_tenant.reason, wrong_tenant.claim) == ("tenant_mismatch", "tid")
        other_api = refusal(
            validator, mint(provider, clock, issuer=v2, audience="other-api", tid=TENANT)
        )
        assert isinstance(other_api, AudienceMismatch)
    assert provider.requests[f"/{TENANT}/discovery/v2.0/keys"] == 1


def test_entra_multi_tenant_accepts_only_allowed_tenants_with_one_fetch(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    serve_entra_keys(provider, "/common/discovery/v2.0/keys")
    issuers = entra_id_multi_tenant(
        client_id=CLIENT, tenant_ids=[TENANT, OTHER_TENANT], authority=provider.base_url
    )
    with validator_for(issuers, clock) as validator:
        for tenant in (TENANT, OTHER_TENANT):
            iss = f"{provider.base_url}/{tenant}/v2.0"
            token = mint(provider, clock, issuer=iss, audience=CLIENT, tid=tenant)
            assert validator.validate(token).issuer == iss
        assert provider.requests["/common/discovery/v2.0/keys"] == 1
        stranger_iss = f"{provider.base_url}/{STRANGER_TENANT}/v2.0"
        stranger = mint(provider, clock, issuer=stranger_iss, audience=CLIENT, tid=STRANGER_TENANT)
        assert isinstance(refusal(validator, stranger), IssuerMismatch)
        # An allowed tenant's issuer with another tenant's tid is a forgery attempt.
        mixed = mint(
            provider,
            clock,
            issuer=f"{provider.base_url}/{TENANT}/v2.0",
            audience=CLIENT,
            tid=STRANGER_TENANT,
        )
        assert refusal(validator, mixed).reason == "tenant_mismatch"
    assert sum(provider.requests.values()) == 1


def test_entra_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="GUID"):
        entra_id("contoso.onmicrosoft.com", client_id=CLIENT)
    with pytest.raises(ConfigurationError, match="tenant_ids"):
        entra_id_multi_tenant(client_id=CLIENT, tenant_ids=TENANT)
    with pytest.raises(ConfigurationError, match="at least one"):
        entra_id_multi_tenant(client_id=CLIENT, tenant_ids=[])
    with pytest.raises(ConfigurationError, match="versions"):
        entra_id(TENANT, client_id=CLIENT, versions=["v3"])  # type: ignore[list-item]
    (only_v2,) = entra_id(TENANT, client_id=CLIENT, versions=["v2"], app_signing_keys=True)
    assert only_v2.jwks_uri == (
        f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys?appid={CLIENT}"
    )
    assert only_v2.metadata == {"provider": "entra_id", "tenant_id": TENANT}


# -- Auth0, Okta, Keycloak ------------------------------------------------------------------


def test_auth0_uses_the_trailing_slash_issuer_and_permissions(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    provider.jwks_paths.add("/.well-known/jwks.json")
    (issuer,) = auth0(provider.base_url, audience="https://api.example.com")
    assert issuer.issuer == f"{provider.base_url}/"
    with validator_for([issuer], clock) as validator:
        token = mint(
            provider,
            clock,
            issuer=f"{provider.base_url}/",
            audience=["https://api.example.com", f"{provider.base_url}/userinfo"],
            scopes="openid profile",
            permissions=["read:orders", "write:orders"],
        )
        assert validator.validate(token).scopes == frozenset({"read:orders", "write:orders"})
        no_slash = mint(
            provider, clock, issuer=provider.base_url, audience="https://api.example.com"
        )
        assert isinstance(refusal(validator, no_slash), IssuerMismatch)
    assert provider.requests["/.well-known/jwks.json"] == 1
    assert auth0("example.eu.auth0.com", audience="a")[0].jwks_uri == (
        "https://example.eu.auth0.com/.well-known/jwks.json"
    )


def test_okta_custom_authorization_server_scp_and_cid(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    provider.jwks_paths.add("/oauth2/default/v1/keys")
    issuers = okta(provider.base_url, audiences="api://default", client_ids=["0oa1abc"])
    iss = f"{provider.base_url}/oauth2/default"
    assert [issuer.issuer for issuer in issuers] == [iss]
    with validator_for(issuers, clock) as validator:
        token = mint(
            provider, clock, issuer=iss, audience="api://default", cid="0oa1abc", scp=["orders"]
        )
        assert validator.validate(token).scopes == frozenset({"orders"})
        other_client = mint(provider, clock, issuer=iss, audience="api://default", cid="0oa9")
        assert refusal(validator, other_client).reason == "client_not_allowed"
    assert provider.requests["/oauth2/default/v1/keys"] == 1


def test_keycloak_realm_roles_azp_and_skipped_encryption_key(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    provider.jwks_paths.add("/realms/demo/protocol/openid-connect/certs")
    # Keycloak publishes an RSA-OAEP encryption key next to the signing key.
    enc = dict(generate_key("RS256").public_jwk)
    enc.update(use="enc", alg="RSA-OAEP")
    provider.extra_jwks.append(enc)
    issuers = keycloak(provider.base_url, "demo", client_ids=["web-app"])
    iss = f"{provider.base_url}/realms/demo"
    with validator_for(issuers, clock) as validator:
        token = mint(
            provider,
            clock,
            issuer=iss,
            audience="account",
            azp="web-app",
            realm_access={"roles": ["admin", "user"]},
        )
        assert validator.validate(token).scopes == frozenset({"admin", "user"})
        other = mint(provider, clock, issuer=iss, audience="account", azp="other-app")
        assert refusal(validator, other).reason == "client_not_allowed"
        source = validator.key_source(iss)
        keys = source.current_keys()
        assert keys is not None
        assert len(keys) == 1  # the encryption key is not a verification key


# -- Cognito, Google ------------------------------------------------------------------------


def test_cognito_access_tokens_without_aud_checked_by_client_id_and_token_use(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    pool = "eu-west-1_AbC123"
    provider.jwks_paths.add(f"/{pool}/.well-known/jwks.json")
    issuers = cognito("eu-west-1", pool, client_ids=["app-client"], endpoint=provider.base_url)
    iss = f"{provider.base_url}/{pool}"
    with validator_for(issuers, clock) as validator:
        access = mint(
            provider,
            clock,
            issuer=iss,
            audience=None,
            client_id="app-client",
            token_use="access",
            scopes="orders/read",
        )
        assert validator.validate(access).scopes == frozenset({"orders/read"})
        id_token = mint(provider, clock, issuer=iss, audience="app-client", token_use="id")
        # A Cognito ID token has aud but no client_id: refused before token_use is looked at.
        missing = refusal(validator, id_token)
        assert (missing.reason, missing.claim) == ("missing_claim", "client_id")
        id_with_client = mint(
            provider,
            clock,
            issuer=iss,
            audience="app-client",
            client_id="app-client",
            token_use="id",
        )
        assert refusal(validator, id_with_client).reason == "wrong_token_use"
        other = mint(
            provider, clock, issuer=iss, audience=None, client_id="other", token_use="access"
        )
        assert refusal(validator, other).reason == "client_not_allowed"
    (default,) = cognito("eu-west-1", pool, client_ids=["x"])
    assert default.issuer == f"https://cognito-idp.eu-west-1.amazonaws.com/{pool}"
    with pytest.raises(ConfigurationError, match="region"):
        cognito("us-east-1", pool, client_ids=["x"])


def test_google_accepts_both_issuer_spellings_with_one_key_cache(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    provider.jwks_paths.add("/oauth2/v3/certs")
    issuers = google(
        audiences="https://service.example.run.app",
        hosted_domain="example.com",
        jwks_uri=f"{provider.base_url}/oauth2/v3/certs",
    )
    assert [issuer.issuer for issuer in issuers] == [
        "https://accounts.google.com",
        "accounts.google.com",
    ]
    with validator_for(issuers, clock) as validator:
        for iss in ("https://accounts.google.com", "accounts.google.com"):
            token = mint(
                provider,
                clock,
                issuer=iss,
                audience="https://service.example.run.app",
                hd="example.com",
                email_verified=True,
            )
            assert validator.validate(token).issuer == iss
        outsider = mint(
            provider,
            clock,
            issuer="accounts.google.com",
            audience="https://service.example.run.app",
            hd="gmail.example",
        )
        assert refusal(validator, outsider).reason == "hosted_domain"
    assert provider.requests["/oauth2/v3/certs"] == 1


# -- options --------------------------------------------------------------------------------


def test_presets_pass_issuer_options_through_and_refuse_unknown_ones() -> None:
    (issuer,) = auth0("example.auth0.com", audience="a", timeout=2, cooldown=5)
    assert (issuer.timeout, issuer.cooldown) == (2, 5)
    with pytest.raises(ConfigurationError, match="unknown Issuer options"):
        auth0("example.auth0.com", audience="a", timeuot=2)
    with pytest.raises(ConfigurationError, match="sets jwks_uri itself"):
        auth0("example.auth0.com", audience="a", jwks_uri="https://evil.example/jwks")
    with pytest.raises(ConfigurationError, match="sets scope_claim itself"):
        auth0("example.auth0.com", audience="a", scope_claim="scope")


def test_extra_claim_checks_run_after_the_presets_own(
    provider: LocalIssuer, clock: FakeClock
) -> None:
    provider.jwks_paths.add("/.well-known/jwks.json")

    def needs_email(payload: Mapping[str, Any]) -> bool:
        return "email" in payload

    issuers = auth0(provider.base_url, audience="a", claim_checks=[needs_email])
    with validator_for(issuers, clock) as validator:
        iss = f"{provider.base_url}/"
        assert validator.validate(mint(provider, clock, issuer=iss, audience="a", email="x@y"))
        assert (
            refusal(validator, mint(provider, clock, issuer=iss, audience="a")).reason
            == "custom_check_failed"
        )
