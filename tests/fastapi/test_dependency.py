"""JWTBearer on HTTP routes: every status and header of the RFC 6750 contract, scopes, options."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, Security
from fastapi.testclient import TestClient

from jwkguard import Claims, Validator
from jwkguard.testing import LocalIssuer, generate_key, mint_token, sign_compact
from jwkguard_fastapi import CurrentClaims, JWTBearer, OptionalClaims, install

from ..helpers import bearer

CHALLENGE = 'Bearer realm="api"'


def build_app(validator: Validator, *, installed: bool = True, **options: Any) -> FastAPI:
    auth = JWTBearer(validator, **options)
    optional = JWTBearer(validator, auto_error=False)
    admin = Security(auth, scopes=["admin"])

    async def audited(claims: Annotated[Claims, admin]) -> Claims:
        return claims

    app = FastAPI()
    if installed:
        install(app, validator)

    @app.get("/any")
    async def any_token(request: Request, claims: Annotated[Claims, Security(auth)]) -> Any:
        return {"sub": claims.subject, "state_is_claims": request.state.claims is claims}

    @app.get("/read")
    async def read(claims: Annotated[Claims, Security(auth, scopes=["orders:read"])]) -> Any:
        return {"scopes": sorted(claims.scopes)}

    @app.get("/nested")
    async def nested(
        claims: Annotated[Claims, Security(audited, scopes=["orders:read"])],
    ) -> Any:
        return {"sub": claims.subject}

    @app.get("/optional")
    async def maybe(claims: Annotated[Claims | None, Security(optional)]) -> Any:
        return {"sub": claims.subject if claims else None}

    @app.get("/alias")
    async def alias(claims: CurrentClaims) -> Any:
        return {"sub": claims.subject}

    @app.get("/alias-optional")
    async def alias_optional(request: Request, claims: OptionalClaims) -> Any:
        return {"sub": claims.subject if claims else None, "state": request.state.claims}

    @app.get("/plain-depends")
    async def plain(claims: Annotated[Claims, Depends(auth)]) -> Any:
        return {"sub": claims.subject}

    return app


@pytest.fixture
def client(validator: Validator) -> Iterator[TestClient]:
    with TestClient(build_app(validator)) as test_client:
        yield test_client


def assert_refused(response: Any, status: int, error: str, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    assert response.json()["reason"] == reason
    assert response.json()["error_description"]


def test_valid_token_returns_claims_and_stores_them_on_request_state(
    client: TestClient, issuer: LocalIssuer
) -> None:
    response = client.get("/any", headers=bearer(issuer.mint(subject="alice")))
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "state_is_claims": True}


def test_plain_depends_works_too(client: TestClient, issuer: LocalIssuer) -> None:
    assert client.get("/plain-depends", headers=bearer(issuer.mint())).status_code == 200


def test_no_token_is_401_with_a_bare_challenge(client: TestClient) -> None:
    response = client.get("/any")
    assert_refused(response, 401, "unauthorized", "missing_token")
    assert response.headers["www-authenticate"] == CHALLENGE


def test_other_scheme_counts_as_no_bearer_token(client: TestClient) -> None:
    response = client.get("/any", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_refused(response, 401, "unauthorized", "missing_token")
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(client: TestClient, issuer: LocalIssuer, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {issuer.mint()}"}
    assert client.get("/any", headers=headers).status_code == 200


def test_two_authorization_headers_are_400_invalid_request(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = client.get("/any", headers=headers)
    assert_refused(response, 400, "invalid_request", "multiple_authorization_headers")
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("value", ["Bearer", "Bearer a b", "Bearer tok!en", "Bearer ==abc"])
def test_malformed_bearer_header_is_400(client: TestClient, value: str) -> None:
    response = client.get("/any", headers={"Authorization": value})
    assert_refused(response, 400, "invalid_request", "malformed_authorization_header")


def test_token_in_query_is_refused_by_default(client: TestClient, issuer: LocalIssuer) -> None:
    response = client.get("/any", params={"access_token": issuer.mint()})
    assert_refused(response, 400, "invalid_request", "token_in_query")


def test_query_token_accepted_when_allowed_always(
    validator: Validator, issuer: LocalIssuer
) -> None:
    with TestClient(build_app(validator, allow_query="always")) as client:
        token = issuer.mint()
        assert client.get("/any", params={"access_token": token}).status_code == 200
        both = client.get("/any", params={"access_token": token}, headers=bearer(token))
        assert_refused(both, 400, "invalid_request", "multiple_tokens")
        twice = client.get("/any", params=[("access_token", token), ("access_token", token)])
        assert_refused(twice, 400, "invalid_request", "multiple_tokens")


def test_websocket_only_query_policy_refuses_query_on_http(
    validator: Validator, issuer: LocalIssuer
) -> None:
    with TestClient(build_app(validator, allow_query="websocket")) as client:
        response = client.get("/any", params={"access_token": issuer.mint()})
        assert_refused(response, 400, "invalid_request", "token_in_query")


def test_expired_token_is_401_invalid_token_without_echoing_it(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(now=1_000_000, lifetime=60)
    response = client.get("/any", headers=bearer(token))
    assert_refused(response, 401, "invalid_token", "expired")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert token not in response.text
    assert token not in challenge
    assert token.split(".")[1] not in response.text


def test_bad_signature_is_401(client: TestClient, issuer: LocalIssuer) -> None:
    header, payload, _ = issuer.mint().split(".")
    forged = f"{header}.{payload}.{issuer.mint().split('.')[2]}"
    response = client.get("/any", headers=bearer(forged))
    assert_refused(response, 401, "invalid_token", "bad_signature")


def test_token_of_an_unknown_key_is_401(client: TestClient, issuer: LocalIssuer) -> None:
    stranger = generate_key("RS256", kid="stranger")
    token = mint_token(stranger, issuer=issuer.url, audience=issuer.audience)
    assert_refused(client.get("/any", headers=bearer(token)), 401, "invalid_token", "unknown_key")


def test_wrong_audience_is_401(client: TestClient, issuer: LocalIssuer) -> None:
    token = issuer.mint(audience="https://other.example.com")
    response = client.get("/any", headers=bearer(token))
    assert_refused(response, 401, "invalid_token", "audience_mismatch")


def test_missing_scope_is_403_with_the_scope_in_the_challenge(
    client: TestClient, issuer: LocalIssuer
) -> None:
    response = client.get("/read", headers=bearer(issuer.mint(scopes=["orders:write"])))
    assert_refused(response, 403, "insufficient_scope", "insufficient_scope")
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="orders:read"'
    )


def test_granted_scope_passes(client: TestClient, issuer: LocalIssuer) -> None:
    response = client.get("/read", headers=bearer(issuer.mint(scopes=["orders:read", "x"])))
    assert response.json() == {"scopes": ["orders:read", "x"]}


def test_scopes_are_checked_only_after_the_token_is_verified(
    client: TestClient, issuer: LocalIssuer
) -> None:
    expired = issuer.mint(scopes=["nothing"], now=1_000_000, lifetime=60)
    assert_refused(client.get("/read", headers=bearer(expired)), 401, "invalid_token", "expired")
    header, payload, _ = issuer.mint(scopes=["nothing"]).split(".")
    forged = f"{header}.{payload}.{issuer.mint().split('.')[2]}"
    response = client.get("/read", headers=bearer(forged))
    assert_refused(response, 401, "invalid_token", "bad_signature")
    assert "scope=" not in response.headers["www-authenticate"]


def test_scopes_merge_along_nested_dependencies(client: TestClient, issuer: LocalIssuer) -> None:
    only_read = client.get("/nested", headers=bearer(issuer.mint(scopes=["orders:read"])))
    assert_refused(only_read, 403, "insufficient_scope", "insufficient_scope")
    assert only_read.headers["www-authenticate"].endswith('scope="admin orders:read"')
    only_admin = client.get("/nested", headers=bearer(issuer.mint(scopes=["admin"])))
    assert only_admin.status_code == 403
    both = client.get("/nested", headers=bearer(issuer.mint(scopes=["admin", "orders:read"])))
    assert both.status_code == 200


def test_optional_auth_returns_none_without_token(client: TestClient) -> None:
    assert client.get("/optional").json() == {"sub": None}


def test_optional_auth_still_refuses_a_bad_token(client: TestClient, issuer: LocalIssuer) -> None:
    expired = issuer.mint(now=1_000_000, lifetime=60)
    response = client.get("/optional", headers=bearer(expired))
    assert_refused(response, 401, "invalid_token", "expired")
    response = client.get("/optional", headers={"Authorization": "Bearer a b"})
    assert response.status_code == 400


def test_optional_auth_returns_claims_with_a_good_token(
    client: TestClient, issuer: LocalIssuer
) -> None:
    response = client.get("/optional", headers=bearer(issuer.mint(subject="bob")))
    assert response.json() == {"sub": "bob"}


def test_annotated_aliases_use_the_installed_validator(
    client: TestClient, issuer: LocalIssuer
) -> None:
    assert client.get("/alias", headers=bearer(issuer.mint(subject="carol"))).json() == {
        "sub": "carol"
    }
    assert client.get("/alias").status_code == 401
    assert client.get("/alias-optional").json() == {"sub": None, "state": None}


def test_alias_without_install_fails_loudly(validator: Validator, issuer: LocalIssuer) -> None:
    app = build_app(validator, installed=False)
    with TestClient(app) as client, pytest.raises(RuntimeError, match="install"):
        client.get("/alias", headers=bearer(issuer.mint()))


def test_without_install_fastapi_answers_with_detail_and_the_same_headers(
    validator: Validator, issuer: LocalIssuer
) -> None:
    with TestClient(build_app(validator, installed=False)) as client:
        response = client.get("/read", headers=bearer(issuer.mint(scopes=["x"])))
    assert response.status_code == 403
    assert response.json()["detail"]["error"] == "insufficient_scope"
    assert response.headers["www-authenticate"].endswith('scope="orders:read"')


def test_custom_realm_appears_in_challenges(validator: Validator) -> None:
    with TestClient(build_app(validator, realm="orders")) as client:
        assert client.get("/any").headers["www-authenticate"] == 'Bearer realm="orders"'


def test_dpop_bound_token_presented_as_bearer_is_refused(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(cnf={"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    response = client.get("/any", headers=bearer(token))
    assert_refused(response, 401, "invalid_dpop_proof", "dpop_required")


def test_certificate_bound_token_without_certificate_is_refused(
    client: TestClient, issuer: LocalIssuer
) -> None:
    token = issuer.mint(cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"})
    response = client.get("/any", headers=bearer(token))
    assert_refused(response, 401, "invalid_token", "certificate_missing")


JUNK = [
    "x",
    "a.b.c",
    "....",
    "a.b.c.d.e",
    "e30.e30.",
    "eyJhbGciOiJub25lIn0.e30.",
    "A" * 20_000,
    "ey" + "J" * 300 + ".e30.e30",
]


@pytest.mark.parametrize("token", JUNK)
def test_junk_tokens_never_cause_a_500(client: TestClient, token: str) -> None:
    for path in ("/any", "/read", "/optional"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_token", "invalid_request")


def test_hostile_header_and_payload_never_cause_a_500(
    client: TestClient, issuer: LocalIssuer
) -> None:
    key = issuer.active_key
    tokens = [
        sign_compact({"alg": "RS256", "kid": key.kid}, b"[1,2]", key=key),
        sign_compact({"alg": "RS256", "kid": key.kid}, {"iss": issuer.url, "exp": "soon"}, key=key),
        sign_compact({"alg": "RS256", "kid": ["x"]}, {"iss": issuer.url}, key=key),
        sign_compact({"alg": "HS256"}, {"iss": issuer.url}, secret=b"k" * 32),
        sign_compact({"alg": "none"}, {"iss": issuer.url}),
        mint_token(key, issuer=issuer.url, audience=issuer.audience, scope=["a", 1]),
    ]
    for token in tokens:
        response = client.get("/read", headers=bearer(token))
        assert response.status_code in (401, 403), response.text


def test_non_ascii_authorization_bytes_are_a_400(client: TestClient) -> None:
    response = client.get("/any", headers={"Authorization": "Bearer caf\xe9".encode("latin-1")})
    assert_refused(response, 400, "invalid_request", "malformed_authorization_header")


def test_static_key_sets_work_as_well(static_validator: Validator, issuer: LocalIssuer) -> None:
    with TestClient(build_app(static_validator)) as client:
        token = issuer.mint(scopes=["orders:read"])
        assert client.get("/read", headers=bearer(token)).json() == {"scopes": ["orders:read"]}
        assert client.get("/any").status_code == 401
