"""DPoP (RFC 9449): proofs are checked against the request, the token and the replay window."""

from __future__ import annotations

from typing import Any

import pytest

from jwkguard import Claims, TokenError, Validator
from jwkguard.pipeline import error_response
from jwkguard.sender import (
    DPoPNonces,
    DPoPVerifier,
    PresentedRequest,
    SenderConstraints,
    normalise_htu,
)
from jwkguard.testing import SigningKey, generate_key, make_dpop_proof

from ..conftest import FakeClock
from ..helpers import mint, validator_trusting

URL = "https://api.example.com/orders?page=2"


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


@pytest.fixture
def validator(rsa_key: SigningKey, clock: FakeClock) -> Validator:
    return validator_trusting(rsa_key, clock=clock)


@pytest.fixture
def bound(
    validator: Validator, rsa_key: SigningKey, proof_key: SigningKey, clock: FakeClock
) -> tuple[str, Claims]:
    token = mint(rsa_key, clock, cnf={"jkt": proof_key.thumbprint})
    return token, validator.validate(token)


@pytest.fixture
def constraints(clock: FakeClock) -> SenderConstraints:
    return SenderConstraints(dpop=DPoPVerifier(clock=clock))


def _request(
    token: str, *proofs: str, scheme: str = "DPoP", method: str = "GET"
) -> PresentedRequest:
    return PresentedRequest(scheme=scheme, token=token, method=method, url=URL, dpop_proofs=proofs)


def _reason(call: Any) -> str:
    with pytest.raises(TokenError) as caught:
        call()
    return caught.value.reason


def test_a_valid_proof_for_a_bound_token_is_accepted(
    bound: tuple[str, Claims],
    constraints: SenderConstraints,
    proof_key: SigningKey,
    clock: FakeClock,
) -> None:
    token, claims = bound
    proof = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token, iat=clock.now)
    verified = constraints.check(claims, _request(token, proof))
    assert verified is not None
    assert verified.thumbprint == proof_key.thumbprint


def test_a_replayed_proof_is_refused(
    bound: tuple[str, Claims],
    constraints: SenderConstraints,
    proof_key: SigningKey,
    clock: FakeClock,
) -> None:
    token, claims = bound
    proof = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token, iat=clock.now)
    constraints.check(claims, _request(token, proof))
    assert _reason(lambda: constraints.check(claims, _request(token, proof))) == "dpop_replayed"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "POST"}, "dpop_proof_invalid"),
        ({"url": "https://api.example.com/other"}, "dpop_proof_invalid"),
        ({"url": "https://evil.example.com/orders"}, "dpop_proof_invalid"),
        ({"iat_offset": -120}, "dpop_proof_invalid"),
        ({"iat_offset": 60}, "dpop_proof_invalid"),
        ({"access_token": "another-token"}, "dpop_proof_invalid"),
        ({"omit": ("ath",)}, "dpop_proof_invalid"),
        ({"omit": ("jti",)}, "dpop_proof_invalid"),
        ({"header": {"typ": "JWT"}}, "dpop_proof_invalid"),
        ({"header": {"alg": "HS256"}}, "dpop_proof_invalid"),
    ],
    ids=[
        "wrong-htm",
        "wrong-htu-path",
        "wrong-htu-host",
        "stale-iat",
        "future-iat",
        "wrong-ath",
        "missing-ath",
        "missing-jti",
        "wrong-typ",
        "hmac-alg",
    ],
)
def test_a_proof_for_another_request_or_token_is_refused(
    bound: tuple[str, Claims],
    constraints: SenderConstraints,
    proof_key: SigningKey,
    clock: FakeClock,
    change: dict[str, Any],
    reason: str,
) -> None:
    token, claims = bound
    proof = make_dpop_proof(
        proof_key,
        method=change.get("method", "GET"),
        url=change.get("url", URL),
        access_token=change.get("access_token", token),
        iat=clock.now + change.get("iat_offset", 0),
        header=change.get("header"),
        omit=change.get("omit", ()),
    )
    with pytest.raises(TokenError) as caught:
        constraints.check(claims, _request(token, proof))
    assert caught.value.reason == reason
    assert caught.value.error == "invalid_dpop_proof"


def test_a_proof_by_another_key_is_refused(
    bound: tuple[str, Claims], constraints: SenderConstraints, clock: FakeClock
) -> None:
    token, claims = bound
    thief = generate_key("ES256")
    proof = make_dpop_proof(thief, method="GET", url=URL, access_token=token, iat=clock.now)
    assert _reason(lambda: constraints.check(claims, _request(token, proof))) == "dpop_key_mismatch"


def test_a_proof_with_a_private_key_in_its_header_is_refused(
    bound: tuple[str, Claims],
    constraints: SenderConstraints,
    proof_key: SigningKey,
    clock: FakeClock,
) -> None:
    token, claims = bound
    from joserfc.jwk import JWKRegistry

    private_jwk = JWKRegistry.import_key(proof_key.private_key, "EC").as_dict(private=True)
    proof = make_dpop_proof(
        proof_key,
        method="GET",
        url=URL,
        access_token=token,
        iat=clock.now,
        header={"jwk": private_jwk},
    )
    assert (
        _reason(lambda: constraints.check(claims, _request(token, proof))) == "dpop_proof_invalid"
    )


def test_a_bound_token_presented_as_bearer_is_refused(
    bound: tuple[str, Claims], constraints: SenderConstraints
) -> None:
    token, claims = bound
    assert (
        _reason(lambda: constraints.check(claims, _request(token, scheme="Bearer")))
        == "dpop_required"
    )


def test_an_unbound_token_with_the_dpop_scheme_is_refused(
    validator: Validator, rsa_key: SigningKey, constraints: SenderConstraints, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    assert _reason(lambda: constraints.check(claims, _request(token))) == "dpop_not_bound"


def test_a_route_that_requires_dpop_refuses_plain_bearer_tokens(
    validator: Validator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    strict = SenderConstraints(dpop=DPoPVerifier(clock=clock), require_dpop=True)
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    assert (
        _reason(lambda: strict.check(claims, _request(token, scheme="Bearer"))) == "dpop_required"
    )
    assert strict.challenge_scheme == "DPoP"
    assert strict.challenge_params == (("algs", "ES256 RS256 PS256 EdDSA Ed25519"),)


def test_missing_or_duplicate_proof_headers_are_refused(
    bound: tuple[str, Claims],
    constraints: SenderConstraints,
    proof_key: SigningKey,
    clock: FakeClock,
) -> None:
    token, claims = bound
    proof = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token, iat=clock.now)
    assert _reason(lambda: constraints.check(claims, _request(token))) == "dpop_proof_missing"
    assert _reason(lambda: constraints.check(claims, _request(token, proof, proof))) == (
        "dpop_proof_malformed"
    )


def test_server_nonces_are_required_when_configured_and_named_in_the_challenge(
    bound: tuple[str, Claims], proof_key: SigningKey, clock: FakeClock
) -> None:
    token, claims = bound
    nonces = DPoPNonces(b"0123456789abcdef0123456789abcdef", period=300)
    constraints = SenderConstraints(dpop=DPoPVerifier(clock=clock, nonces=nonces))
    without = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token, iat=clock.now)
    with pytest.raises(TokenError) as caught:
        constraints.check(claims, _request(token, without))
    assert caught.value.error == "use_dpop_nonce"
    response = error_response(caught.value, scheme="DPoP", challenge_params=[("algs", "ES256")])
    assert response.headers["DPoP-Nonce"] == nonces.current(clock.now)
    assert response.headers["WWW-Authenticate"].startswith(
        'DPoP realm="api", error="use_dpop_nonce"'
    )
    with_nonce = make_dpop_proof(
        proof_key,
        method="GET",
        url=URL,
        access_token=token,
        iat=clock.now,
        nonce=nonces.current(clock.now),
    )
    assert constraints.check(claims, _request(token, with_nonce)) is not None


def test_nonces_from_the_previous_period_still_count_but_older_ones_do_not(
    clock: FakeClock,
) -> None:
    nonces = DPoPNonces(b"0123456789abcdef0123456789abcdef", period=300)
    nonce = nonces.current(clock.now)
    assert nonces.is_valid(nonce, clock.now + 300)
    assert not nonces.is_valid(nonce, clock.now + 900)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("HTTPS://API.example.com:443/orders", "https://api.example.com/orders?x=1#frag"),
        ("http://127.0.0.1:80", "http://127.0.0.1/"),
        ("https://[::1]:8443/a", "https://[::1]:8443/a"),
    ],
)
def test_htu_comparison_normalises_scheme_host_port_and_ignores_query(
    left: str, right: str
) -> None:
    assert normalise_htu(left) == normalise_htu(right)


def test_htu_comparison_keeps_the_path_case() -> None:
    assert normalise_htu("https://a.example/Orders") != normalise_htu("https://a.example/orders")


@pytest.mark.parametrize(
    "request_options",
    [
        {"method": "GET"},
        {
            "method": "GET",
            "url": "https://api.example.com/",
            "access_token": "t",
            "claims": {},
            "x": 1,
        },
    ],
)
def test_verify_takes_exactly_its_four_keywords(request_options: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="access_token"):
        DPoPVerifier().verify("proof", **request_options)
