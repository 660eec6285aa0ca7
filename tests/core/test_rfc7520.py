"""RFC 7520 section 4 JWS examples as positive vectors, with the RFC's own keys.

The RFC's payload is prose, not a JWT claims set, so the compact serializations are checked
through the signature layer that validation uses: the JWK Set loaded into a ``KeySet`` (or the
issuer's shared secret, for HMAC), key selection by ``kid`` and ``alg``, and the verifier. The
RSA and EC private keys the RFC gives are then used to sign real access tokens that go through
the whole validator. PS384 signatures are randomized, so the RFC's given signature is verified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jwkguard import Issuer, TokenError, Validator
from jwkguard._parse import b64url_decode, split_compact, strict_json_object
from jwkguard.keys import KeySet
from jwkguard.testing import SigningKey, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock

DATA = json.loads((Path(__file__).parent / "data" / "rfc7520_jws.json").read_text("utf-8"))
KEYS: dict[str, dict[str, Any]] = DATA["keys"]
VECTORS = {vector["section"]: vector for vector in DATA["vectors"]}


def _int(member: str) -> int:
    return int.from_bytes(b64url_decode(member.encode()), "big")


def _split(compact: str) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    header_b64, payload_b64, signature_b64 = split_compact(compact.encode())
    header = strict_json_object(b64url_decode(header_b64), "header")
    signing_input = header_b64 + b"." + payload_b64
    return header, signing_input, b64url_decode(payload_b64), b64url_decode(signature_b64)


def _flip(data: bytes, index: int = -1) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize("section", ["4.1", "4.2", "4.3"])
def test_rfc7520_signature_verifies_with_the_rfc_jwk_set(section: str) -> None:
    vector = VECTORS[section]
    public_jwk = KEYS[vector["key"]]
    header, signing_input, payload, signature = _split(vector["compact"])
    assert header == {"alg": vector["alg"], "kid": "bilbo.baggins@hobbiton.example"}
    assert payload.decode("utf-8") == DATA["payload"]

    key_set = KeySet.from_jwks({"keys": [public_jwk]}, [vector["alg"]])
    found = key_set.select(header["kid"], header["alg"])
    assert found is not None
    key, verifier = found
    assert key.kid == "bilbo.baggins@hobbiton.example"
    assert verifier(signing_input, signature) is True
    # The same verifier refuses one changed bit in the signature or the signed content.
    assert verifier(signing_input, _flip(signature)) is False
    assert verifier(_flip(signing_input), signature) is False


def test_rfc7520_hmac_signature_verifies_with_the_configured_secret(clock: FakeClock) -> None:
    vector = VECTORS["4.4"]
    oct_jwk = KEYS["oct"]
    header, signing_input, payload, signature = _split(vector["compact"])
    assert header == {"alg": "HS256", "kid": oct_jwk["kid"]}
    assert payload.decode("utf-8") == DATA["payload"]

    # HMAC keys never come from a JWK Set: the secret is configured on the issuer.
    validator = Validator(
        issuers=[
            Issuer(
                ISSUER,
                audiences=[AUDIENCE],
                secret=b64url_decode(oct_jwk["k"].encode()),
                secret_kid=oct_jwk["kid"],
            )
        ],
        algorithms=["HS256"],
        clock=clock,
    )
    key, verifier = validator.key_source(ISSUER).key_for(header["kid"], "HS256", clock.now)
    assert key.kid == oct_jwk["kid"]
    assert verifier(signing_input, signature) is True
    assert verifier(signing_input, _flip(signature, 0)) is False
    assert verifier(_flip(signing_input), signature) is False


def test_rfc7520_hmac_key_in_a_jwk_set_is_never_used() -> None:
    key_set = KeySet.from_jwks({"keys": [KEYS["oct"]]}, ["HS256"])
    assert len(key_set) == 0
    assert key_set.skipped == (
        (KEYS["oct"]["kid"], "symmetric (oct) keys are never used from a JWK Set"),
    )


def test_rfc7520_example_is_refused_as_an_access_token_because_its_payload_is_prose(
    clock: FakeClock,
) -> None:
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [KEYS["rsa"]]})],
        algorithms=["RS256"],
        clock=clock,
    )
    with pytest.raises(TokenError) as caught:
        validator.validate(VECTORS["4.1"]["compact"])
    assert caught.value.reason == "malformed"


def _rfc_rsa_key(alg: str) -> SigningKey:
    public = KEYS["rsa"]
    private = KEYS["rsa_private"]
    numbers = rsa.RSAPrivateNumbers(
        p=_int(private["p"]),
        q=_int(private["q"]),
        d=_int(private["d"]),
        dmp1=_int(private["dp"]),
        dmq1=_int(private["dq"]),
        iqmp=_int(private["qi"]),
        public_numbers=rsa.RSAPublicNumbers(_int(public["e"]), _int(public["n"])),
    )
    return SigningKey(alg, public["kid"], numbers.private_key(), {**public, "alg": alg})


def _rfc_ec_key() -> SigningKey:
    public = KEYS["ec"]
    private = ec.derive_private_key(_int(KEYS["ec_private"]["d"]), ec.SECP521R1())
    assert private.public_key().public_numbers().x == _int(public["x"])
    return SigningKey("ES512", public["kid"], private, {**public, "alg": "ES512"})


def test_rfc7520_rs256_signature_is_reproduced_by_the_rfc_private_key() -> None:
    # RSASSA-PKCS1-v1_5 is deterministic: the RFC's private key gives the RFC's signature.
    vector = VECTORS["4.1"]
    _, signing_input, _, signature = _split(vector["compact"])
    assert _rfc_rsa_key("RS256").sign(signing_input) == signature


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES512"])
def test_access_token_signed_with_the_rfc_key_validates_end_to_end(
    alg: str, clock: FakeClock
) -> None:
    key = _rfc_ec_key() if alg == "ES512" else _rfc_rsa_key(alg)
    validator = Validator(
        issuers=[
            Issuer(
                ISSUER, audiences=[AUDIENCE], jwks={"keys": [KEYS[key.public_jwk["kty"].lower()]]}
            )
        ],
        algorithms=[alg],
        clock=clock,
    )
    token = mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=clock.now, scopes="read")
    claims = validator.validate(token)
    assert claims.key_id == "bilbo.baggins@hobbiton.example"
    assert claims.scopes == frozenset({"read"})
    assert claims.header["alg"] == alg
