"""DPoP with RFC 9864 ``Ed25519`` proofs by default, and nonce-based freshness (RFC 9449 §11.1).

A client whose clock is minutes off must get a ``use_dpop_nonce`` challenge it can recover
from, never a dead-end "stale proof"; checked in the verifier and over real HTTP (FastAPI under
uvicorn), where the client answers the challenge with the nonce and gets through.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.

import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security

from jwkguard import Claims, Validator
from jwkguard.errors import InvalidDPoPProof, UseDPoPNonce
from jwkguard.sender import DPoPNonces, DPoPVerifier
from jwkguard.testing import LocalIssuer, SigningKey, generate_key, make_dpop_proof
from jwkguard_fastapi import JWTBearer, install

from ..conftest import FakeClock
from ..fastapi.conftest import ServedApp

URL = "https://api.example.com/orders"
SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def ed_proof_key() -> SigningKey:
    return generate_key("Ed25519")


def bound_claims(key: SigningKey) -> dict[str, Any]:
    return {"cnf": {"jkt": key.thumbprint}}


def test_the_default_verifier_accepts_fully_specified_ed25519_proofs(
    ed_proof_key: SigningKey,
) -> None:
    assert "Ed25519" in DPoPVerifier().algorithms
    proof = make_dpop_proof(ed_proof_key, method="GET", url=URL, access_token="tok")
    assert ed_proof_key.alg == "Ed25519"
    verified = DPoPVerifier().verify(
        proof, method="GET", url=URL, access_token="tok", claims=bound_claims(ed_proof_key)
    )
    assert verified.thumbprint == ed_proof_key.thumbprint


def test_without_nonces_a_skewed_clock_is_still_a_stale_proof(ed_proof_key: SigningKey) -> None:
    clock = FakeClock(time.time())
    verifier = DPoPVerifier(clock=clock)
    proof = make_dpop_proof(
        ed_proof_key, method="GET", url=URL, access_token="tok", iat=clock() - 600
    )
    with pytest.raises(InvalidDPoPProof, match="stale"):
        verifier.verify(
            proof, method="GET", url=URL, access_token="tok", claims=bound_claims(ed_proof_key)
        )


@pytest.mark.parametrize("skew", [-600, 600])
def test_with_nonces_a_skewed_clock_gets_a_nonce_challenge_then_passes(
    ed_proof_key: SigningKey, skew: int
) -> None:
    clock = FakeClock(time.time())
    nonces = DPoPNonces(SECRET)
    verifier = DPoPVerifier(nonces=nonces, clock=clock)
    claims = bound_claims(ed_proof_key)
    first = make_dpop_proof(
        ed_proof_key, method="GET", url=URL, access_token="t", iat=clock() + skew
    )
    with pytest.raises(UseDPoPNonce) as challenge:
        verifier.verify(first, method="GET", url=URL, access_token="t", claims=claims)
    retry = make_dpop_proof(
        ed_proof_key,
        method="GET",
        url=URL,
        access_token="t",
        iat=clock() + skew,
        nonce=challenge.value.nonce,
    )
    assert verifier.verify(retry, method="GET", url=URL, access_token="t", claims=claims)


def test_with_nonces_an_expired_nonce_is_a_new_challenge_not_a_refusal(
    ed_proof_key: SigningKey,
) -> None:
    clock = FakeClock(time.time())
    nonces = DPoPNonces(SECRET, period=300)
    verifier = DPoPVerifier(nonces=nonces, clock=clock)
    old_nonce = nonces.current(clock())
    clock.advance(900)
    proof = make_dpop_proof(
        ed_proof_key, method="GET", url=URL, access_token="t", iat=clock(), nonce=old_nonce
    )
    with pytest.raises(UseDPoPNonce) as challenge:
        verifier.verify(
            proof, method="GET", url=URL, access_token="t", claims=bound_claims(ed_proof_key)
        )
    assert challenge.value.nonce == nonces.current(clock())


def test_with_nonces_a_proof_is_remembered_for_the_nonce_lifetime(ed_proof_key: SigningKey) -> None:
    """A replay within the nonce's life is refused even when the proof's iat is old."""
    clock = FakeClock(time.time())
    nonces = DPoPNonces(SECRET, period=300)
    verifier = DPoPVerifier(nonces=nonces, clock=clock)
    claims = bound_claims(ed_proof_key)
    proof = make_dpop_proof(
        ed_proof_key, method="GET", url=URL, access_token="t", nonce=nonces.current(clock())
    )
    verifier.verify(proof, method="GET", url=URL, access_token="t", claims=claims)
    clock.advance(200)  # past max_age + leeway, within the nonce's life
    with pytest.raises(InvalidDPoPProof, match="already used"):
        verifier.verify(proof, method="GET", url=URL, access_token="t", claims=claims)


# -- over real HTTP -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, LocalIssuer]]:
    with LocalIssuer() as issuer:
        validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
        auth = JWTBearer(validator, dpop=DPoPVerifier(nonces=DPoPNonces(SECRET)))
        app = FastAPI()
        install(app)

        @app.get("/orders")
        async def orders(claims: Annotated[Claims, Security(auth)]) -> Any:
            return {"sub": claims.subject}

        with ServedApp(app) as server:
            yield server.url, issuer
        validator.close()


def test_a_client_minutes_off_recovers_with_the_nonce_over_http(
    served: tuple[str, LocalIssuer], ed_proof_key: SigningKey
) -> None:
    url, issuer = served
    token = issuer.mint(cnf={"jkt": ed_proof_key.thumbprint})
    skewed = time.time() - 420  # the client's clock is seven minutes slow

    def send(nonce: str | None) -> httpx.Response:
        proof = make_dpop_proof(
            ed_proof_key,
            method="GET",
            url=f"{url}/orders",
            access_token=token,
            iat=skewed,
            nonce=nonce,
        )
        return httpx.get(f"{url}/orders", headers={"Authorization": f"DPoP {token}", "DPoP": proof})

    first = send(None)
    assert first.status_code == 401
    assert 'error="use_dpop_nonce"' in first.headers["www-authenticate"]
    assert "Ed25519" in first.headers["www-authenticate"]
    second = send(first.headers["dpop-nonce"])
    assert second.status_code == 200
    assert second.json() == {"sub": "user-123"}
