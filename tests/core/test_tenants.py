"""Dynamic tenants: issuers matching a template, accepted by a set, a store or a callable at
run time, with bounded memory, and never a fetch for a forged or refused ``iss``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jwkguard import RequestPipeline, RoutePolicy, TenantIssuers, Validator
from jwkguard.errors import ConfigurationError, IssuerMismatch
from jwkguard.pipeline import view_from_environ
from jwkguard.testing import LocalIssuer

TENANTS = [f"tenant{i}" for i in range(40)]


@pytest.fixture(scope="module")
def saas() -> Iterator[LocalIssuer]:
    """One local issuer serving every tenant's key set under its own path."""
    with LocalIssuer() as local:
        local.jwks_paths.update(f"/{tenant}/keys" for tenant in [*TENANTS, "intruder"])
        yield local


@pytest.fixture(scope="module")
def shared_keys() -> Iterator[LocalIssuer]:
    """A second local issuer: one key URL for all its tenants (Entra's ``common`` layout)."""
    with LocalIssuer(path="/common") as local:
        yield local


def per_tenant(saas: LocalIssuer, tenants: object, **extra: object) -> TenantIssuers:
    return TenantIssuers(
        f"{saas.base_url}/{{tenant}}/v2.0",
        tenants=tenants,  # type: ignore[arg-type]
        jwks_uri=f"{saas.base_url}/{{tenant}}/keys",
        options={"audiences": ["https://api"]},
        **extra,  # type: ignore[arg-type]
    )


def mint(saas: LocalIssuer, tenant: str) -> str:
    return saas.mint(issuer=f"{saas.base_url}/{tenant}/v2.0", audience="https://api")


def test_many_tenants_are_accepted_each_with_its_own_key_cache(saas: LocalIssuer) -> None:
    validator = Validator(
        issuers=[], tenants=[per_tenant(saas, set(TENANTS))], algorithms=["RS256"]
    )
    for tenant in TENANTS:
        claims = validator.validate(mint(saas, tenant))
        assert claims.issuer == f"{saas.base_url}/{tenant}/v2.0"
        validator.validate(mint(saas, tenant))  # the second token uses the cached keys
        assert saas.requests[f"/{tenant}/keys"] == 1
    assert validator.tenant_count == len(TENANTS)
    validator.close()


def test_a_forged_or_refused_iss_never_causes_a_fetch(saas: LocalIssuer) -> None:
    validator = Validator(issuers=[], tenants=[per_tenant(saas, {"tenant1"})], algorithms=["RS256"])
    before = sum(saas.requests.values())
    forged = [
        f"{saas.base_url}/intruder/v2.0",  # matches the template, not accepted
        f"{saas.base_url}/../evil/v2.0",  # a dot segment is never a tenant
        f"{saas.base_url}/a/b/v2.0",  # nor two segments
        "https://evil.example/tenant1/v2.0",  # another host
        f"{saas.base_url}/tenant1/v2.0?x",
    ]
    for iss in forged:
        with pytest.raises(IssuerMismatch):
            validator.validate(saas.mint(issuer=iss, audience="https://api"))
    assert sum(saas.requests.values()) == before
    assert validator.tenant_count == 1  # only the refused tenant that matched is remembered


def test_memory_is_bounded_under_a_flood_of_forged_tenants(saas: LocalIssuer) -> None:
    validator = Validator(
        issuers=[],
        tenants=[per_tenant(saas, lambda tenant: tenant == "tenant0", max_tenants=8)],
        algorithms=["RS256"],
    )
    for i in range(200):
        with pytest.raises(IssuerMismatch):
            validator.validate(saas.mint(issuer=f"{saas.base_url}/forged{i}/v2.0", audience="x"))
    assert validator.tenant_count == 8
    assert validator.validate(mint(saas, "tenant0")).issuer.endswith("/tenant0/v2.0")
    validator.close()


def test_a_store_decides_at_run_time_and_decisions_expire(saas: LocalIssuer) -> None:
    now = [1_000_000.0]
    onboarded: set[str] = set()
    validator = Validator(
        issuers=[],
        tenants=[per_tenant(saas, onboarded, decision_ttl=60)],
        algorithms=["RS256"],
        clock=lambda: now[0],
    )
    token = saas.mint(issuer=f"{saas.base_url}/tenant5/v2.0", audience="https://api", now=now[0])
    with pytest.raises(IssuerMismatch):
        validator.validate(token)
    onboarded.add("tenant5")  # a new customer signs up
    with pytest.raises(IssuerMismatch):
        validator.validate(token)  # the refusal is remembered for decision_ttl
    now[0] += 61
    token = saas.mint(issuer=f"{saas.base_url}/tenant5/v2.0", audience="https://api", now=now[0])
    assert validator.validate(token).issuer.endswith("/tenant5/v2.0")
    onboarded.discard("tenant5")  # offboarded
    now[0] += 61
    token = saas.mint(issuer=f"{saas.base_url}/tenant5/v2.0", audience="https://api", now=now[0])
    with pytest.raises(IssuerMismatch):
        validator.validate(token)
    validator.close()


def test_a_failing_decision_refuses(saas: LocalIssuer) -> None:
    def broken(tenant: str) -> bool:
        raise RuntimeError("database down")

    validator = Validator(issuers=[], tenants=[per_tenant(saas, broken)], algorithms=["RS256"])
    with pytest.raises(IssuerMismatch):
        validator.validate(mint(saas, "tenant1"))


@pytest.mark.anyio
async def test_tenants_sharing_one_key_url_share_one_fetch(shared_keys: LocalIssuer) -> None:
    template = TenantIssuers(
        f"{shared_keys.base_url}/{{tenant}}/v2.0",
        tenants=lambda tenant: True,
        jwks_uri=shared_keys.jwks_uri,
        options={"audiences": ["https://api"]},
    )
    validator = Validator(issuers=[], tenants=[template], algorithms=["RS256"])
    for i in range(10):
        token = shared_keys.mint(issuer=f"{shared_keys.base_url}/t{i}/v2.0", audience="https://api")
        assert (await validator.avalidate(token)).subject == "user-123"
    assert shared_keys.requests["/common/jwks.json"] == 1
    await validator.aclose()


def test_routes_may_narrow_to_dynamic_tenants(saas: LocalIssuer) -> None:
    validator = Validator(
        issuers=[], tenants=[per_tenant(saas, set(TENANTS))], algorithms=["RS256"]
    )
    pipeline = RequestPipeline(validator)
    corporate = f"{saas.base_url}/tenant0/v2.0"
    policy = RoutePolicy(issuers=frozenset({corporate}))
    pipeline.check_policy(policy)  # a tenant the template could accept is accepted here
    with pytest.raises(ConfigurationError, match="does not trust"):
        pipeline.check_policy(RoutePolicy(issuers=frozenset({"https://elsewhere/x/v2.0"})))

    def run(token: str) -> int:
        environ = {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": f"Bearer {token}"}
        response = pipeline.run(view_from_environ(environ), policy).response
        return 200 if response is None else response.status_code

    assert run(mint(saas, "tenant0")) == 200
    assert run(mint(saas, "tenant3")) == 401
    validator.close()


def test_templates_are_checked_when_built(saas: LocalIssuer) -> None:
    with pytest.raises(ConfigurationError, match="tenant"):
        TenantIssuers("https://id.example/v2.0", tenants=set())
    with pytest.raises(ConfigurationError, match="audiences"):
        TenantIssuers("https://id.example/{tenant}/v2.0", tenants=set())
    with pytest.raises(ConfigurationError, match="https"):
        TenantIssuers(
            "https://id.example/{tenant}",
            tenants=set(),
            jwks_uri="http://id.example/{tenant}/keys",
            options={"audiences": ["a"]},
        )
