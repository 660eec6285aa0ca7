"""Roles on ``Claims`` per provider preset, and the route demands that need no IO: any-of
scopes, all-of / any-of roles, per-route issuers and audiences (``RoutePolicy``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jwkguard import Claims, Issuer, RequestPipeline, RoutePolicy, Validator
from jwkguard.errors import ConfigurationError
from jwkguard.pipeline import RequestView, view_from_environ
from jwkguard.providers import auth0, cognito, entra_id, keycloak
from jwkguard.testing import LocalIssuer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture(scope="module")
def issuers() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    with LocalIssuer(path="/corp") as corp, LocalIssuer(path="/partner") as partner:
        yield corp, partner


def claims_from(issuer: Issuer, local: LocalIssuer, **payload: Any) -> Claims:
    """Validate a token minted by ``local`` under a preset's ``Issuer`` (keys made static)."""
    options = {"jwks": local.jwks(), "jwks_uri": None}
    static = Issuer(
        **{
            **{name: getattr(issuer, name) for name in issuer.__dataclass_fields__},
            **options,
        }
    )
    validator = Validator(issuers=[static], algorithms=["RS256"])
    return validator.validate(local.mint(issuer=issuer.issuer, **payload))


def test_roles_default_to_the_rfc9068_roles_claim(issuers: tuple[LocalIssuer, LocalIssuer]) -> None:
    corp, _ = issuers
    validator = Validator(issuers=[corp.issuer_config(jwks=corp.jwks())], algorithms=["RS256"])
    claims = validator.validate(corp.mint(roles=["admin", "auditor"], scopes="read"))
    assert claims.roles == {"admin", "auditor"}
    assert claims.scopes == {"read"}
    assert validator.validate(corp.mint()).roles == frozenset()


def test_entra_reads_scp_as_scopes_and_roles_as_roles_app_only_tokens_included(
    issuers: tuple[LocalIssuer, LocalIssuer],
) -> None:
    corp, _ = issuers
    (v2,) = entra_id(TENANT, client_id="api-client", versions=["v2"])
    delegated = claims_from(
        v2, corp, audience="api-client", tid=TENANT, scp="Orders.Read", roles=["Approver"]
    )
    assert delegated.scopes == {"Orders.Read"}
    assert delegated.roles == {"Approver"}
    app_only = claims_from(v2, corp, audience="api-client", tid=TENANT, roles=["Orders.Read.All"])
    assert app_only.scopes == frozenset()
    assert app_only.roles == {"Orders.Read.All"}


def test_keycloak_reads_realm_roles_and_the_named_clients_roles(
    issuers: tuple[LocalIssuer, LocalIssuer],
) -> None:
    corp, _ = issuers
    (realm,) = keycloak(
        "https://sso.example.com", "acme", audiences=["orders"], role_clients=["orders.api"]
    )
    claims = claims_from(
        realm,
        corp,
        audience="orders",
        realm_access={"roles": ["user"]},
        resource_access={"orders.api": {"roles": ["writer"]}, "other": {"roles": ["root"]}},
    )
    assert claims.roles == {"user", "writer"}  # never another client's roles


def test_cognito_groups_and_auth0_permissions_are_roles(
    issuers: tuple[LocalIssuer, LocalIssuer],
) -> None:
    corp, _ = issuers
    (pool,) = cognito(
        "eu-west-1", "eu-west-1_abc", client_ids=["app"], endpoint="https://cognito.example"
    )
    groups = claims_from(
        pool,
        corp,
        audience=None,
        client_id="app",
        token_use="access",
        **{"cognito:groups": ["ops"]},
    )
    assert groups.roles == {"ops"}
    (tenant,) = auth0("example.eu.auth0.com", audience="https://api", use_permissions=False)
    permissions = claims_from(
        tenant, corp, audience="https://api", scopes="openid", permissions=["read:orders"]
    )
    assert permissions.roles == {"read:orders"}
    assert permissions.scopes == {"openid"}
    (named,) = auth0(
        "example.eu.auth0.com", audience="https://api", role_claims=["https://example.com/roles"]
    )
    custom = claims_from(
        named, corp, audience="https://api", **{"https://example.com/roles": "Admin"}
    )
    assert custom.roles == {"Admin"}  # a claim name with dots is read as a name first


def test_role_claims_are_validated_when_configured() -> None:
    with pytest.raises(ConfigurationError, match="role_claims"):
        Issuer("https://id.example", audiences=["a"], role_claims="roles")
    with pytest.raises(ConfigurationError, match="role_claims"):
        Issuer("https://id.example", audiences=["a"], role_claims=[("realm_access", "")])


# -- the pipeline ------------------------------------------------------------------------


def view(token: str) -> RequestView:
    return view_from_environ(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_AUTHORIZATION": f"Bearer {token}"}
    )


@pytest.fixture(scope="module")
def pipeline(issuers: tuple[LocalIssuer, LocalIssuer]) -> RequestPipeline:
    corp, partner = issuers
    validator = Validator(
        issuers=[
            corp.issuer_config(jwks=corp.jwks(), audiences=["https://api", "https://admin"]),
            partner.issuer_config(jwks=partner.jwks(), audiences=["https://api"]),
        ],
        algorithms=["RS256"],
    )
    return RequestPipeline(validator)


def refusal(pipeline: RequestPipeline, token: str, policy: RoutePolicy) -> tuple[int, Any, str]:
    decision = pipeline.run(view(token), policy)
    assert decision.response is not None, "the request should have been refused"
    body = decision.response.body
    return (
        decision.response.status_code,
        body["reason"],
        decision.response.headers["WWW-Authenticate"],
    )


def test_all_of_roles_refuse_a_missing_role_with_403_insufficient_role(
    pipeline: RequestPipeline, issuers: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, _ = issuers
    policy = RoutePolicy(roles=frozenset({"admin", "auditor"}))
    status, reason, challenge = refusal(
        pipeline, corp.mint(audience="https://api", roles=["admin"]), policy
    )
    assert (status, reason) == (403, "insufficient_role")
    assert 'error="insufficient_scope"' in challenge
    token = corp.mint(audience="https://api", roles=["admin", "auditor", "x"])
    assert pipeline.run(view(token), policy).claims is not None


def test_any_of_roles_and_scopes_need_one(
    pipeline: RequestPipeline, issuers: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, _ = issuers
    policy = RoutePolicy(
        any_roles=frozenset({"admin", "support"}), any_scopes=frozenset({"a", "b"})
    )
    ok = corp.mint(audience="https://api", roles=["support"], scopes="b c")
    assert pipeline.run(view(ok), policy).allowed
    no_scope = corp.mint(audience="https://api", roles=["support"], scopes="c")
    status, reason, challenge = refusal(pipeline, no_scope, policy)
    assert (status, reason) == (403, "insufficient_scope")
    assert 'scope="a b"' in challenge
    no_role = corp.mint(audience="https://api", roles=["user"], scopes="a")
    assert refusal(pipeline, no_role, policy)[:2] == (403, "insufficient_role")


def test_a_route_narrows_issuers_and_audiences_with_401_and_a_named_reason(
    pipeline: RequestPipeline, issuers: tuple[LocalIssuer, LocalIssuer]
) -> None:
    corp, partner = issuers
    admin = RoutePolicy(issuers=frozenset({corp.url}), audiences=frozenset({"https://admin"}))
    status, reason, challenge = refusal(pipeline, partner.mint(audience="https://api"), admin)
    assert (status, reason) == (401, "issuer_not_accepted")
    assert 'error="invalid_token"' in challenge
    assert refusal(pipeline, corp.mint(audience="https://api"), admin)[:2] == (
        401,
        "audience_not_accepted",
    )
    assert pipeline.run(view(corp.mint(audience=["https://admin"])), admin).allowed
    # The origin is judged before the grants: a foreign token learns nothing of the scopes.
    scoped = RoutePolicy(issuers=frozenset({corp.url}), scopes=frozenset({"x"}))
    assert (
        refusal(pipeline, partner.mint(audience="https://api"), scoped)[1] == "issuer_not_accepted"
    )


def test_a_route_accepting_an_unknown_issuer_fails_when_declared(
    pipeline: RequestPipeline,
) -> None:
    with pytest.raises(ConfigurationError, match="does not trust"):
        pipeline.check_policy(RoutePolicy(issuers=frozenset({"https://elsewhere"})))


def test_route_policy_refuses_one_string_and_marks_only_narrowing_policies() -> None:
    with pytest.raises(ConfigurationError, match="roles"):
        RoutePolicy(roles="admin")  # type: ignore[arg-type]
    assert not RoutePolicy(scopes=frozenset({"a"})).narrowed
    assert RoutePolicy(any_roles=frozenset({"a"})).narrowed
