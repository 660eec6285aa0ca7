"""The OpenAPI document: security schemes (bearer JWT, OpenID Connect, OAuth 2 with PKCE)."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security

from jwkguard import Claims, ConfigurationError, Validator
from jwkguard.testing import LocalIssuer
from jwkguard_fastapi import JWTBearer, OptionalClaims, install, swagger_ui_oauth


def openapi_of(auth: JWTBearer, validator: Validator) -> dict[str, Any]:
    app = FastAPI()
    install(app, validator)

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {}

    @app.get("/orders")
    async def orders(claims: Annotated[Claims, Security(auth, scopes=["orders:read"])]) -> Any:
        return {}

    @app.post("/orders")
    async def create(
        claims: Annotated[Claims, Security(auth, scopes=["orders:read", "orders:write"])],
    ) -> Any:
        return {}

    @app.get("/me")
    async def me(claims: Annotated[Claims, Security(auth)]) -> Any:
        return {}

    @app.get("/catalog")
    async def catalog(claims: OptionalClaims) -> Any:
        return {}

    return app.openapi()


def test_default_scheme_is_http_bearer_with_jwt_format(validator: Validator) -> None:
    document = openapi_of(JWTBearer(validator), validator)
    assert document["components"]["securitySchemes"]["JWTBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_each_protected_operation_lists_its_scopes(validator: Validator) -> None:
    paths = openapi_of(JWTBearer(validator), validator)["paths"]
    assert paths["/orders"]["get"]["security"] == [{"JWTBearer": ["orders:read"]}]
    assert paths["/orders"]["post"]["security"] == [{"JWTBearer": ["orders:read", "orders:write"]}]
    assert paths["/me"]["get"]["security"] == [{"JWTBearer": []}]
    assert paths["/catalog"]["get"]["security"] == [{"JWTBearer": []}]
    assert "security" not in paths["/public"]["get"]


def test_scheme_name_and_description_are_configurable(validator: Validator) -> None:
    auth = JWTBearer(validator, scheme_name="Orders", description="Tokens from our IdP")
    document = openapi_of(auth, validator)
    scheme = document["components"]["securitySchemes"]["Orders"]
    assert scheme["description"] == "Tokens from our IdP"
    assert document["paths"]["/orders"]["get"]["security"] == [{"Orders": ["orders:read"]}]


def test_openid_connect_scheme(validator: Validator, issuer: LocalIssuer) -> None:
    url = f"{issuer.url}/.well-known/openid-configuration"
    document = openapi_of(JWTBearer(validator, openid_connect_url=url), validator)
    assert document["components"]["securitySchemes"]["OpenIDConnect"] == {
        "type": "openIdConnect",
        "openIdConnectUrl": url,
    }
    assert document["paths"]["/orders"]["get"]["security"] == [{"OpenIDConnect": ["orders:read"]}]


def test_the_aliases_default_scheme_never_overwrites_a_configured_one(
    validator: Validator,
) -> None:
    auth = JWTBearer(validator, openid_connect_url="https://id.example.com/.well-known/x")
    schemes = openapi_of(auth, validator)["components"]["securitySchemes"]
    assert schemes["OpenIDConnect"]["type"] == "openIdConnect"
    assert schemes["JWTBearer"]["type"] == "http"


def test_authorization_code_scheme_from_the_issuers_metadata(
    validator: Validator, issuer: LocalIssuer
) -> None:
    metadata = httpx.get(f"{issuer.url}/.well-known/openid-configuration", timeout=5).json()
    auth = JWTBearer.from_metadata(
        validator, metadata, scopes={"orders:read": "Read orders", "orders:write": "Write"}
    )
    document = openapi_of(auth, validator)
    assert document["paths"]["/orders"]["get"]["security"] == [{"OAuth2": ["orders:read"]}]
    assert document["components"]["securitySchemes"]["OAuth2"] == {
        "type": "oauth2",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": f"{issuer.url}/authorize",
                "tokenUrl": f"{issuer.url}/token",
                "scopes": {"orders:read": "Read orders", "orders:write": "Write"},
            }
        },
    }


def test_metadata_scopes_supported_are_the_default_scopes(validator: Validator) -> None:
    metadata = {
        "authorization_endpoint": "https://id.example.com/authorize",
        "token_endpoint": "https://id.example.com/token",
        "scopes_supported": ["openid", "orders:read"],
    }
    auth = JWTBearer.from_metadata(validator, metadata)
    flows = openapi_of(auth, validator)["components"]["securitySchemes"]["OAuth2"]["flows"]
    scopes = flows["authorizationCode"]["scopes"]
    assert scopes == {"openid": "openid", "orders:read": "orders:read"}


def test_swagger_ui_settings_use_pkce() -> None:
    assert swagger_ui_oauth("docs-client", scopes=["orders:read"]) == {
        "clientId": "docs-client",
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "orders:read",
    }


@pytest.mark.parametrize(
    "options",
    [
        {"openid_connect_url": "https://x/.well-known/openid-configuration", "token_url": "t"},
        {"authorization_url": "https://x/authorize"},
        {"token_url": "https://x/token"},
        {"allow_query": "sometimes"},
        {"websocket_subprotocol": " "},
    ],
)
def test_bad_configuration_fails_when_built(validator: Validator, options: Any) -> None:
    with pytest.raises(ConfigurationError):
        JWTBearer(validator, **options)


def test_metadata_without_endpoints_is_a_configuration_error(validator: Validator) -> None:
    with pytest.raises(ConfigurationError, match="token_endpoint"):
        JWTBearer.from_metadata(validator, {"authorization_endpoint": "https://x/authorize"})


def test_validator_must_be_a_validator() -> None:
    with pytest.raises(ConfigurationError):
        JWTBearer("not a validator")  # type: ignore[arg-type]


def test_an_unknown_keyword_is_refused_like_any_misspelt_argument() -> None:
    with pytest.raises(TypeError, match="requre_dpop"):
        JWTBearer(requre_dpop=True)  # type: ignore[call-arg]
