"""JWTBearer with DPoP-bound tokens (RFC 9449).

Certificate binding is in test_certificate_header.py and test_mtls.py, hybrid introspection in
test_hybrid_introspection.py.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Request, Security
from fastapi.testclient import TestClient

from jwkguard import Claims, Validator
from jwkguard.sender import (
    DPoPNonces,
    DPoPVerifier,
    MemoryReplayLedger,
)
from jwkguard.testing import (
    LocalIssuer,
    SigningKey,
    generate_key,
    make_dpop_proof,
)
from jwkguard_fastapi import JWTBearer, install

from ..helpers import bearer
from ..sender.kit import (
    BROKEN_PROOFS,
    UNENFORCEABLE_NAMES,
    BrokenProof,
    assert_cnf_refusal,
    assert_dpop_refusal,
    dpop_challenge,
    dpop_headers,
    unenforceable_binding,
)
from .conftest import ServedApp

BASE = "http://testserver"
NONCE_SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def build_app(validator: Validator, verifier: DPoPVerifier, **strict: Any) -> FastAPI:
    """``/orders`` accepts DPoP, ``/strict`` requires it (or what ``strict`` says)."""
    accepting = JWTBearer(validator, dpop=verifier)
    requiring = JWTBearer(validator, dpop=verifier, **(strict or {"require_dpop": True}))
    app = FastAPI()
    install(app, validator)

    @app.get("/orders")
    async def orders(request: Request, claims: Annotated[Claims, Security(accepting)]) -> Any:
        return {"sub": claims.subject, "state": request.state.claims is claims}

    @app.post("/orders")
    async def create(claims: Annotated[Claims, Security(accepting)]) -> Any:
        return {"sub": claims.subject}

    @app.get("/strict")
    async def strict_route(claims: Annotated[Claims, Security(requiring)]) -> Any:
        return {"sub": claims.subject}

    @app.get("/both")
    async def both(
        first: Annotated[Claims, Security(accepting)],
        second: Annotated[Claims, Security(requiring, scopes=["orders:read"])],
    ) -> Any:
        return {"same": first is second}

    return app


@pytest.fixture
def verifier() -> DPoPVerifier:
    return DPoPVerifier()


@pytest.fixture
def client(static_validator: Validator, verifier: DPoPVerifier) -> Iterator[TestClient]:
    with TestClient(build_app(static_validator, verifier), base_url=BASE) as test_client:
        yield test_client


def bound_token(issuer: LocalIssuer, key: SigningKey, **claims: Any) -> str:
    return issuer.mint(cnf={"jkt": key.thumbprint}, **claims)


def proof_for(key: SigningKey, token: str, path: str = "/orders", method: str = "GET") -> str:
    return make_dpop_proof(key, method=method, url=BASE + path, access_token=token)


def test_a_bound_token_with_a_valid_proof_is_accepted(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key)
    for method in ("GET", "POST"):
        proof = proof_for(proof_key, token, method=method)
        response = client.request(method, "/orders", headers=dpop_headers(token, proof))
        assert response.status_code == 200, response.text
        assert response.json()["sub"] == "user-123"


@pytest.mark.parametrize("name", UNENFORCEABLE_NAMES)
def test_a_binding_that_cannot_be_enforced_is_refused_not_read_as_bearer(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey, name: str
) -> None:
    """A ``cnf`` we cannot check is 401 ``cnf_unsupported``, with or without a valid proof."""
    case = unenforceable_binding(proof_key, name)
    token = issuer.mint(cnf=case.cnf)
    for path in ("/orders", "/strict"):
        for headers in case.presentations(proof_key, method="GET", url=BASE + path, token=token):
            response = client.get(path, headers=headers)
            assert_cnf_refusal(response.status_code, response.headers, response.json())


def test_one_caller_flooding_proofs_is_refused_and_no_other_caller_is(
    static_validator: Validator, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    """Issue 14 §5: a bound token's holder can mint proofs; the ledger holds a quota per key."""
    verifier = DPoPVerifier(replay=MemoryReplayLedger(max_entries=50, max_entries_per_key=5))
    flooder_key = generate_key("ES256")
    flooder, victim = bound_token(issuer, flooder_key), bound_token(issuer, proof_key)
    with TestClient(build_app(static_validator, verifier), base_url=BASE) as client:
        spent = dpop_headers(flooder, proof_for(flooder_key, flooder))
        assert client.get("/orders", headers=spent).status_code == 200
        for _ in range(4):
            headers = dpop_headers(flooder, proof_for(flooder_key, flooder))
            assert client.get("/orders", headers=headers).status_code == 200
        for _ in range(20):
            headers = dpop_headers(flooder, proof_for(flooder_key, flooder))
            response = client.get("/orders", headers=headers)
            assert_dpop_refusal(
                response.status_code, response.headers, response.json(), "dpop_proof_quota"
            )
        for _ in range(5):
            headers = dpop_headers(victim, proof_for(proof_key, victim))
            assert client.get("/orders", headers=headers).status_code == 200
        response = client.get("/orders", headers=spent)
        assert_dpop_refusal(
            response.status_code, response.headers, response.json(), "dpop_replayed"
        )


def test_the_dpop_scheme_is_matched_case_insensitively(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key)
    headers = {"Authorization": f"dpop {token}", "DPoP": proof_for(proof_key, token)}
    assert client.get("/orders", headers=headers).status_code == 200


def test_a_replayed_proof_is_refused_with_a_dpop_challenge(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key)
    headers = dpop_headers(token, proof_for(proof_key, token))
    assert client.get("/orders", headers=headers).status_code == 200
    response = client.get("/orders", headers=headers)
    assert_dpop_refusal(response.status_code, response.headers, response.json(), "dpop_replayed")


@pytest.mark.parametrize("case", BROKEN_PROOFS, ids=lambda case: case.name)
def test_a_proof_for_another_request_time_token_or_key_is_refused(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey, case: BrokenProof
) -> None:
    token = bound_token(issuer, proof_key)
    proof = case.make(proof_key, method="GET", url=BASE + "/orders", token=token)
    response = client.get("/orders", headers=dpop_headers(token, proof))
    assert_dpop_refusal(response.status_code, response.headers, response.json(), case.reason)


def test_a_bound_token_presented_as_bearer_is_refused_even_with_a_proof(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key)
    headers = {**bearer(token), "DPoP": proof_for(proof_key, token)}
    response = client.get("/orders", headers=headers)
    assert_dpop_refusal(response.status_code, response.headers, response.json(), "dpop_required")


def test_a_missing_or_doubled_proof_is_refused(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key)
    response = client.get("/orders", headers=dpop_headers(token, None))
    assert_dpop_refusal(
        response.status_code, response.headers, response.json(), "dpop_proof_missing"
    )
    proof = proof_for(proof_key, token)
    doubled = httpx.Headers([("Authorization", f"DPoP {token}"), ("DPoP", proof), ("DPoP", proof)])
    response = client.get("/orders", headers=doubled)
    assert_dpop_refusal(
        response.status_code, response.headers, response.json(), "dpop_proof_malformed"
    )


def test_the_dpop_scheme_with_an_unbound_token_is_refused(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = issuer.mint()
    response = client.get("/orders", headers=dpop_headers(token, proof_for(proof_key, token)))
    assert_dpop_refusal(response.status_code, response.headers, response.json(), "dpop_not_bound")


def test_an_expired_token_sent_with_the_dpop_scheme_gets_a_dpop_challenge(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key, now=time.time() - 900)
    response = client.get("/orders", headers=dpop_headers(token, proof_for(proof_key, token)))
    assert response.status_code == 401
    assert response.json()["reason"] == "expired"
    assert response.headers["www-authenticate"].startswith(dpop_challenge("invalid_token"))


def test_plain_bearer_tokens_still_work_where_dpop_is_only_accepted(
    client: TestClient, issuer: LocalIssuer
) -> None:
    response = client.get("/orders", headers=bearer(issuer.mint()))
    assert response.status_code == 200
    missing = client.get("/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="api"'


def test_a_route_requiring_dpop_challenges_with_dpop_and_refuses_bearer_tokens(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    missing = client.get("/strict")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == dpop_challenge()
    assert missing.json()["reason"] == "missing_token"
    response = client.get("/strict", headers=bearer(issuer.mint()))
    assert_dpop_refusal(response.status_code, response.headers, response.json(), "dpop_required")
    token = bound_token(issuer, proof_key)
    ok = client.get("/strict", headers=dpop_headers(token, proof_for(proof_key, token, "/strict")))
    assert ok.status_code == 200


def test_dpop_can_be_required_per_issuer(
    static_validator: Validator, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    app = build_app(
        static_validator, DPoPVerifier(), require_dpop_issuers=["https://elsewhere.example/"]
    )
    strict = build_app(static_validator, DPoPVerifier(), require_dpop_issuers=[issuer.url])
    with TestClient(app, base_url=BASE) as lenient, TestClient(strict, base_url=BASE) as picky:
        assert lenient.get("/strict", headers=bearer(issuer.mint())).status_code == 200
        response = picky.get("/strict", headers=bearer(issuer.mint()))
        assert_dpop_refusal(
            response.status_code, response.headers, response.json(), "dpop_required"
        )
        token = bound_token(issuer, proof_key)
        proof = proof_for(proof_key, token, "/strict")
        assert picky.get("/strict", headers=dpop_headers(token, proof)).status_code == 200


def test_two_dependencies_on_one_route_spend_the_proof_once(
    client: TestClient, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    token = bound_token(issuer, proof_key, scopes=["orders:read"])
    response = client.get(
        "/both", headers=dpop_headers(token, proof_for(proof_key, token, "/both"))
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"same": True}


def test_a_stricter_second_dependency_still_refuses_an_unbound_token(
    client: TestClient, issuer: LocalIssuer
) -> None:
    response = client.get("/both", headers=bearer(issuer.mint(scopes=["orders:read"])))
    assert_dpop_refusal(response.status_code, response.headers, response.json(), "dpop_required")


def test_server_nonces_are_demanded_with_the_dpop_nonce_header(
    static_validator: Validator, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    nonces = DPoPNonces(NONCE_SECRET)
    app = build_app(static_validator, DPoPVerifier(nonces=nonces))
    token = bound_token(issuer, proof_key)
    with TestClient(app, base_url=BASE) as test_client:
        response = test_client.get(
            "/orders", headers=dpop_headers(token, proof_for(proof_key, token))
        )
        assert_dpop_refusal(
            response.status_code,
            response.headers,
            response.json(),
            "dpop_nonce_required",
            error="use_dpop_nonce",
        )
        nonce = response.headers["DPoP-Nonce"]
        assert nonce == nonces.current(time.time())
        proof = make_dpop_proof(
            proof_key, method="GET", url=BASE + "/orders", access_token=token, nonce=nonce
        )
        assert test_client.get("/orders", headers=dpop_headers(token, proof)).status_code == 200


def test_without_a_verifier_a_bound_token_is_refused_with_a_dpop_error(
    static_validator: Validator, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    app = FastAPI()
    auth = JWTBearer(static_validator)

    @app.get("/orders")
    async def orders(claims: Annotated[Claims, Security(auth)]) -> Any:
        return {}

    install(app, static_validator)
    token = bound_token(issuer, proof_key)
    with TestClient(app, base_url=BASE) as test_client:
        response = test_client.get(
            "/orders", headers=dpop_headers(token, proof_for(proof_key, token))
        )
    assert response.status_code == 401
    assert response.json()["reason"] == "dpop_not_supported"
    assert response.headers["www-authenticate"].startswith(
        'DPoP realm="api", error="invalid_dpop_proof"'
    )
    assert "algs=" not in response.headers["www-authenticate"]


def test_conflicting_sender_options_are_refused_at_construction(
    static_validator: Validator,
) -> None:
    from jwkguard import ConfigurationError
    from jwkguard.sender import SenderConstraints

    with pytest.raises(ConfigurationError):
        JWTBearer(static_validator, require_dpop=True)
    with pytest.raises(ConfigurationError):
        JWTBearer(
            static_validator,
            sender_constraints=SenderConstraints(),
            dpop=DPoPVerifier(),
        )
    with pytest.raises(ConfigurationError):
        JWTBearer(static_validator, client_cert_header="X-SSL-Client-Cert")


def test_ready_sender_constraints_go_with_sender_options_left_at_their_defaults(
    static_validator: Validator,
) -> None:
    from jwkguard.sender import SenderConstraints

    JWTBearer(
        static_validator,
        sender_constraints=SenderConstraints(dpop=DPoPVerifier(), require_dpop=True),
        dpop=None,
        require_dpop=False,
        trusted_proxies=(),
    )


# -- over real HTTP (uvicorn) -------------------------------------------------------------


def test_dpop_over_real_http_uses_the_url_the_client_addressed(
    static_validator: Validator, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    with ServedApp(build_app(static_validator, DPoPVerifier())) as served:
        token = bound_token(issuer, proof_key)
        url = f"{served.url}/orders?page=2"
        proof = make_dpop_proof(proof_key, method="GET", url=url, access_token=token)
        with httpx.Client(timeout=5) as http:
            assert http.get(url, headers=dpop_headers(token, proof)).status_code == 200
            replay = http.get(url, headers=dpop_headers(token, proof))
            assert_dpop_refusal(replay.status_code, replay.headers, replay.json(), "dpop_replayed")


def test_dpop_challenge_lists_the_configured_algorithms(
    static_validator: Validator,
) -> None:
    app = build_app(static_validator, DPoPVerifier(algorithms=["ES256", "EdDSA"]))
    with TestClient(app, base_url=BASE) as test_client:
        challenge = test_client.get("/strict").headers["www-authenticate"]
    assert challenge == 'DPoP realm="api", algs="ES256 EdDSA"'


def test_the_starlette_middleware_and_backend_check_dpop_too(
    static_validator: Validator, issuer: LocalIssuer, proof_key: SigningKey
) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from jwkguard.sender import SenderConstraints
    from jwkguard_fastapi import JWKGuardBackend, JWKGuardMiddleware

    async def whoami(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"ok": True})

    constraints = SenderConstraints(dpop=DPoPVerifier())
    protected = Starlette(
        routes=[Route("/orders", whoami)],
        middleware=[
            Middleware(
                JWKGuardMiddleware, validator=static_validator, sender_constraints=constraints
            )
        ],
    )
    backed = Starlette(
        routes=[Route("/orders", whoami)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=JWKGuardBackend(static_validator, sender_constraints=constraints),
                on_error=JWKGuardBackend.on_error,
            )
        ],
    )
    for app in (protected, backed):
        with TestClient(app, base_url=BASE) as test_client:
            token = bound_token(issuer, proof_key)
            ok = test_client.get(
                "/orders", headers=dpop_headers(token, proof_for(proof_key, token))
            )
            assert ok.status_code == 200, ok.text
            downgrade = test_client.get("/orders", headers=bearer(token))
            assert_dpop_refusal(
                downgrade.status_code, downgrade.headers, downgrade.json(), "dpop_required"
            )
