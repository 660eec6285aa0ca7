"""Loading a JWK Set and selecting a key (RFC 7517, RFC 7518 section 6, RFC 7638, RFC 9864)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from jwkguard import ConfigurationError, Issuer, TokenError, Validator
from jwkguard.keys import KeySet
from jwkguard.keys._jwk import import_public_jwk, jwk_thumbprint, secret_thumbprint
from jwkguard.keys._set import load_jwks_document
from jwkguard.testing import SigningKey, b64url, generate_key, mint_token, sign_compact

from ..conftest import AUDIENCE, ISSUER, FakeClock

# RFC 7638 section 3.1: the example key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPe"
        "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _jwk(key: SigningKey, **changes: Any) -> dict[str, Any]:
    jwk = {**key.public_jwk, **changes}
    return {name: value for name, value in jwk.items() if value is not None}


def _load(*entries: Any, algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")) -> KeySet:
    return KeySet.from_jwks({"keys": list(entries)}, algorithms)


def _skip_reason(*entries: Any, algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")) -> str:
    key_set = _load(*entries, algorithms=algorithms)
    assert len(key_set) == 0
    assert len(key_set.skipped) == 1
    return key_set.skipped[0][1]


def test_rfc7638_example_thumbprint() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    key_set = _load(RFC7638_JWK)
    assert key_set.keys[0].thumbprint == RFC7638_THUMBPRINT
    assert set(key_set.by_thumbprint()) == {RFC7638_THUMBPRINT}


def test_thumbprint_covers_only_the_required_members() -> None:
    assert jwk_thumbprint({**RFC7638_JWK, "use": "sig", "x5t": "abc"}) == RFC7638_THUMBPRINT


def test_secret_thumbprint_is_that_of_the_oct_jwk() -> None:
    secret = b"s" * 32
    assert secret_thumbprint(secret) == jwk_thumbprint({"kty": "oct", "k": b64url(secret)})


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_generated_public_keys_load_with_their_thumbprint(alg: str) -> None:
    key = generate_key(alg, kid="k")
    key_set = KeySet.from_jwks({"keys": [dict(key.public_jwk)]}, [alg])
    (loaded,) = key_set.keys
    assert (loaded.kid, loaded.thumbprint, tuple(loaded.verifiers)) == ("k", key.thumbprint, (alg,))
    assert loaded.jwk == key.public_jwk


@pytest.fixture(scope="module")
def rsa() -> SigningKey:
    return generate_key("RS256", kid="rsa")


@pytest.fixture(scope="module")
def p256() -> SigningKey:
    return generate_key("ES256", kid="ec")


@pytest.fixture(scope="module")
def ed() -> SigningKey:
    return generate_key("EdDSA", kid="ed")


def test_an_oct_key_is_never_loaded(rsa: SigningKey) -> None:
    oct_jwk = {"kty": "oct", "kid": "hs", "k": b64url(b"k" * 32), "alg": "HS256"}
    key_set = KeySet.from_jwks({"keys": [oct_jwk, dict(rsa.public_jwk)]}, ["RS256", "HS256"])
    assert [key.kid for key in key_set.keys] == ["rsa"]
    assert key_set.skipped == (("hs", "symmetric (oct) keys are never used from a JWK Set"),)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi"])
def test_a_jwk_holding_private_rsa_material_is_never_loaded(rsa: SigningKey, member: str) -> None:
    reason = _skip_reason(_jwk(rsa, **{member: "AQAB"}))
    assert reason == "the JWK holds private key material"


@pytest.mark.parametrize("key_name", ["p256", "ed"])
def test_a_jwk_holding_a_private_curve_key_is_never_loaded(
    key_name: str, request: pytest.FixtureRequest
) -> None:
    key = request.getfixturevalue(key_name)
    assert _skip_reason(_jwk(key, d="AAAA")) == "the JWK holds private key material"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"use": "enc"}, "use is 'enc', not 'sig'"),
        ({"key_ops": ["sign"]}, "key_ops does not allow 'verify'"),
        ({"key_ops": "verify"}, "key_ops does not allow 'verify'"),
        ({"kid": 7}, "kid is not a short string"),
        ({"kid": "k" * 300}, "kid is not a short string"),
        ({"kty": "RSA-ish"}, "unsupported kty 'RSA-ish'"),
        ({"alg": "RS512"}, "the key fits none of the allowed algorithms"),
        ({"alg": "PS256"}, "the key fits none of the allowed algorithms"),
    ],
)
def test_a_jwk_that_does_not_allow_this_verification_is_skipped(
    rsa: SigningKey, changes: dict[str, Any], reason: str
) -> None:
    assert _skip_reason(_jwk(rsa, **changes)) == reason


def test_key_ops_with_verify_and_no_use_is_loaded(rsa: SigningKey) -> None:
    key_set = _load(_jwk(rsa, use=None, key_ops=["verify"]))
    assert len(key_set) == 1


def test_rsa_1024_is_never_loaded() -> None:
    weak = generate_key("RS256", kid="weak", rsa_bits=1024)
    reason = _skip_reason(dict(weak.public_jwk))
    assert reason.startswith("the key cannot be imported: RSA key of 1024 bits is under 2048")


@pytest.mark.parametrize(
    ("exponent", "why"),
    [(1, "exponent is invalid"), (2, "exponent is invalid"), (65536, "exponent is invalid")],
)
def test_rsa_with_a_bad_exponent_is_never_loaded(rsa: SigningKey, exponent: int, why: str) -> None:
    e = b64url(exponent.to_bytes((exponent.bit_length() + 7) // 8, "big"))
    assert why in _skip_reason(_jwk(rsa, e=e))


def test_rsa_modulus_beyond_16384_bits_is_never_loaded(rsa: SigningKey) -> None:
    n = (1 << 16400) + 1
    reason = _skip_reason(_jwk(rsa, n=b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))))
    assert "over 16384" in reason


def test_ec_point_not_on_the_curve_is_never_loaded(p256: SigningKey) -> None:
    y = int.from_bytes(_b64decode(p256.public_jwk["y"]), "big") ^ 1
    assert "cannot be imported" in _skip_reason(_jwk(p256, y=b64url(y.to_bytes(32, "big"))))


def test_ec_coordinates_longer_than_the_curve_are_refused(p256: SigningKey) -> None:
    long_x = b64url(b"\x00" + _b64decode(p256.public_jwk["x"]))
    assert "at most 32 bytes" in _skip_reason(_jwk(p256, x=long_x))


def _p256_point_with_short_x() -> ec.EllipticCurvePublicNumbers:
    """The public point of the first private scalar whose x has a zero top byte."""
    for scalar in range(1, 10_000):
        numbers = ec.derive_private_key(scalar, ec.SECP256R1()).public_key().public_numbers()
        if numbers.x < 1 << 248:
            return numbers
    raise AssertionError("no such scalar below 10000")


def test_ec_coordinates_without_leading_zero_bytes_are_the_same_point() -> None:
    # Some producers drop leading zero bytes; the point, and so the key, is the same.
    numbers = _p256_point_with_short_x()
    short_x = numbers.x.to_bytes(31, "big")
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(short_x),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    loaded = import_public_jwk(jwk)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded.public_numbers() == numbers


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"crv": "P-384"}, "cannot be imported"),  # a P-256 point under another curve name
        ({"crv": "secp256k1"}, "unsupported EC curve"),
        ({"x": 5}, "not a base64url string"),
        ({"x": "A+B/"}, "not a base64url string"),
        ({"x": None}, "not a base64url string"),
    ],
)
def test_ec_jwk_with_bad_members_is_never_loaded(
    p256: SigningKey, changes: dict[str, Any], why: str
) -> None:
    jwk = _jwk(p256, alg=None, **{k: v for k, v in changes.items() if v is not None})
    if changes.get("x", 0) is None:
        del jwk["x"]
    assert why in _skip_reason(jwk, algorithms=("ES256", "ES384"))


def test_members_must_be_canonical_base64url(rsa: SigningKey) -> None:
    # e=3 is "Aw"; "Ax" has non-zero trailing bits and would decode to the same exponent.
    assert len(_load(_jwk(rsa, e="Aw"))) == 1
    assert "not canonical" in _skip_reason(_jwk(rsa, e="Ax"))


def test_okp_key_agreement_curves_are_never_loaded(ed: SigningKey) -> None:
    assert "unsupported OKP curve 'X25519'" in _skip_reason(_jwk(ed, crv="X25519", alg=None))


def test_a_non_object_entry_is_skipped(rsa: SigningKey) -> None:
    key_set = _load("not a key", dict(rsa.public_jwk))
    assert len(key_set) == 1
    assert key_set.skipped == ((None, "not a JSON object"),)


def test_each_skipped_key_is_logged_with_its_reason(
    rsa: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jwkguard.keys"):
        _load(_jwk(rsa, use="enc"))
    (record,) = caplog.records
    assert record.getMessage() == "skipping JWK kid='rsa': use is 'enc', not 'sig'"
    assert record.__dict__["reason"] == "use is 'enc', not 'sig'"


@pytest.mark.parametrize("document", [{}, {"keys": "x"}, [], "keys"])
def test_a_document_without_a_keys_array_is_refused(document: Any) -> None:
    with pytest.raises(ValueError, match="'keys' array"):
        KeySet.from_jwks(document, ["RS256"])


def test_a_document_with_too_many_keys_is_refused(rsa: SigningKey) -> None:
    with pytest.raises(ValueError, match="more than 2"):
        KeySet.from_jwks({"keys": [dict(rsa.public_jwk)] * 3}, ["RS256"], max_keys=2)


def test_an_rsa_key_without_alg_serves_every_allowed_rsa_algorithm(rsa: SigningKey) -> None:
    key_set = KeySet.from_jwks({"keys": [_jwk(rsa, alg=None)]}, ["RS256", "PS256", "ES256"])
    assert sorted(key_set.keys[0].verifiers) == ["PS256", "RS256"]


def test_an_ec_key_serves_only_its_curve_algorithm(p256: SigningKey) -> None:
    key_set = KeySet.from_jwks({"keys": [_jwk(p256, alg=None)]}, ["ES256", "ES384", "ES512"])
    assert list(key_set.keys[0].verifiers) == ["ES256"]


def test_an_eddsa_jwk_also_serves_the_rfc_9864_ed25519_name(ed: SigningKey) -> None:
    key_set = KeySet.from_jwks({"keys": [dict(ed.public_jwk)]}, ["EdDSA", "Ed25519", "Ed448"])
    assert sorted(key_set.keys[0].verifiers) == ["Ed25519", "EdDSA"]


def test_an_ed25519_jwk_does_not_serve_the_polymorphic_eddsa_name(ed: SigningKey) -> None:
    key_set = KeySet.from_jwks({"keys": [_jwk(ed, alg="Ed25519")]}, ["EdDSA", "Ed25519"])
    assert list(key_set.keys[0].verifiers) == ["Ed25519"]


def test_select_by_kid_and_alg(rsa: SigningKey, p256: SigningKey) -> None:
    key_set = _load(dict(rsa.public_jwk), dict(p256.public_jwk))
    found = key_set.select("ec", "ES256")
    assert found is not None
    assert found[0].kid == "ec"
    assert key_set.select("ec", "RS256") is None
    assert key_set.select("missing", "RS256") is None
    assert key_set.has_kid("rsa")
    assert not key_set.has_kid("missing")


def test_select_without_kid_needs_exactly_one_fitting_key(
    rsa: SigningKey, p256: SigningKey
) -> None:
    key_set = _load(dict(rsa.public_jwk), dict(p256.public_jwk))
    found = key_set.select(None, "RS256")
    assert found is not None
    assert found[0].kid == "rsa"
    other = generate_key("RS256", kid="rsa-2")
    crowded = _load(dict(rsa.public_jwk), dict(other.public_jwk))
    with pytest.raises(TokenError) as caught:
        crowded.select(None, "RS256")
    assert caught.value.reason == "unknown_key"


def test_two_usable_keys_with_one_kid_are_ambiguous(rsa: SigningKey) -> None:
    twin = generate_key("RS256", kid="rsa")
    key_set = _load(dict(rsa.public_jwk), dict(twin.public_jwk))
    with pytest.raises(TokenError) as caught:
        key_set.select("rsa", "RS256")
    assert caught.value.reason == "ambiguous_key"


def test_a_key_with_a_kid_is_not_chosen_for_a_token_naming_another(rsa: SigningKey) -> None:
    key_set = _load(_jwk(rsa, kid=None))
    assert key_set.select("rsa", "RS256") is None
    assert key_set.select(None, "RS256") is not None


@pytest.mark.parametrize("alg", ["EdDSA", "Ed448"])
def test_ed448_tokens_validate_under_eddsa_and_the_rfc_9864_name(
    alg: str, clock: FakeClock
) -> None:
    private = ed448.Ed448PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed448", "x": b64url(raw), "kid": "ed448", "alg": "EdDSA"}
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [jwk]})],
        algorithms=[alg],
        clock=clock,
    )
    header = {"alg": alg, "kid": "ed448"}
    unsigned = sign_compact(header, _payload(clock))
    signing_input = unsigned[:-1]
    token = unsigned + b64url(private.sign(signing_input.encode()))
    assert validator.validate(token).key_id == "ed448"
    assert validator.validate(token).thumbprint == jwk_thumbprint(jwk)


def test_ed25519_token_validates_under_the_rfc_9864_name(ed: SigningKey, clock: FakeClock) -> None:
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [dict(ed.public_jwk)]})],
        algorithms=["Ed25519"],
        clock=clock,
    )
    token = mint_token(
        ed, issuer=ISSUER, audience=AUDIENCE, now=clock.now, header={"alg": "Ed25519"}
    )
    assert validator.validate(token).header["alg"] == "Ed25519"


def test_import_public_jwk_gives_cryptography_keys(p256: SigningKey) -> None:
    key = import_public_jwk(p256.public_jwk)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.public_numbers() == p256.private_key.public_key().public_numbers()


def test_load_jwks_document_reads_a_file(tmp_path: Path, rsa: SigningKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [dict(rsa.public_jwk)]}), encoding="utf-8")
    assert load_jwks_document(path)["keys"][0]["kid"] == "rsa"
    assert load_jwks_document(str(path))["keys"][0]["kid"] == "rsa"


@pytest.mark.parametrize(
    ("content", "message"), [(None, "cannot read"), ("[]", "does not hold"), ("{", "cannot read")]
)
def test_load_jwks_document_refuses_a_bad_file(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_jwks_document(path)


def _b64decode(value: str) -> bytes:
    from jwkguard._parse import b64url_decode

    return b64url_decode(value.encode())


def _payload(clock: FakeClock) -> dict[str, Any]:
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "exp": int(clock.now) + 60}
