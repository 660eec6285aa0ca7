"""Signature algorithms: which key fits which ``alg``, and verification with ``cryptography``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "AlgorithmSpec",
    "Verifier",
    "make_hmac_verifier",
    "make_verifier",
]

Verifier = Callable[[bytes, bytes], bool]
"""``verifier(signing_input, signature) -> bool``; never raises for a bad signature."""


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """What an ``alg`` needs from a key."""

    name: str
    kty: str
    curves: frozenset[str] = frozenset()


_SPECS = {
    spec.name: spec
    for spec in (
        *(AlgorithmSpec(f"RS{bits}", "RSA") for bits in (256, 384, 512)),
        *(AlgorithmSpec(f"PS{bits}", "RSA") for bits in (256, 384, 512)),
        AlgorithmSpec("ES256", "EC", frozenset({"P-256"})),
        AlgorithmSpec("ES384", "EC", frozenset({"P-384"})),
        AlgorithmSpec("ES512", "EC", frozenset({"P-521"})),
        AlgorithmSpec("EdDSA", "OKP", frozenset({"Ed25519", "Ed448"})),
        # RFC 9864 fully specified EdDSA names.
        AlgorithmSpec("Ed25519", "OKP", frozenset({"Ed25519"})),
        AlgorithmSpec("Ed448", "OKP", frozenset({"Ed448"})),
        *(AlgorithmSpec(f"HS{bits}", "oct") for bits in (256, 384, 512)),
    )
}
SUPPORTED_ALGORITHMS = frozenset(_SPECS)
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = SUPPORTED_ALGORITHMS - HMAC_ALGORITHMS

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_EC_ORDERS = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "P-521": int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}
_EC_COORDINATE_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}


def spec_for(alg: str) -> AlgorithmSpec | None:
    """The requirements of ``alg``, or None if jwkguard does not support it."""
    return _SPECS.get(alg)


def curve_of(public_key: Any) -> str | None:
    """The JOSE curve name of an EC or OKP public key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _EC_CURVE_NAMES.get(public_key.curve.name)
    if isinstance(public_key, Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, Ed448PublicKey):
        return "Ed448"
    return None


def make_verifier(alg: str, public_key: Any) -> Verifier:
    """Build a verifier for ``alg`` bound to a preloaded ``cryptography`` public key."""
    family, bits = alg[:2], alg[2:]
    if family == "RS" and isinstance(public_key, rsa.RSAPublicKey):
        return _rsa_verifier(public_key, padding.PKCS1v15(), _HASHES[bits]())
    if family == "PS" and isinstance(public_key, rsa.RSAPublicKey):
        hash_alg = _HASHES[bits]()
        # RFC 7518 section 3.5: the salt is as long as the hash output.
        pss = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
        return _rsa_verifier(public_key, pss, hash_alg)
    if family == "ES" and isinstance(public_key, ec.EllipticCurvePublicKey):
        return _ecdsa_verifier(public_key, alg)
    if alg == "EdDSA" and isinstance(public_key, Ed25519PublicKey | Ed448PublicKey):
        return _eddsa_verifier(public_key)
    if alg == "Ed25519" and isinstance(public_key, Ed25519PublicKey):
        return _eddsa_verifier(public_key)
    if alg == "Ed448" and isinstance(public_key, Ed448PublicKey):
        return _eddsa_verifier(public_key)
    raise ValueError(f"key type does not fit {alg}")


def _rsa_verifier(
    key: rsa.RSAPublicKey, pad: padding.AsymmetricPadding, hash_alg: hashes.HashAlgorithm
) -> Verifier:
    verify = key.verify
    expected_length = (key.key_size + 7) // 8

    def verifier(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != expected_length:
            return False
        try:
            verify(signature, signing_input, pad, hash_alg)
        except _CryptoInvalidSignature:
            return False
        return True

    return verifier


def _ecdsa_verifier(key: ec.EllipticCurvePublicKey, alg: str) -> Verifier:
    curve = _EC_CURVE_NAMES.get(key.curve.name)
    spec = _SPECS[alg]
    if curve not in spec.curves:
        raise ValueError(f"curve {curve} does not fit {alg}")
    size = _EC_COORDINATE_BYTES[curve]
    order = _EC_ORDERS[curve]
    signature_algorithm = ec.ECDSA(_HASHES[alg[2:]]())
    verify = key.verify
    from_bytes = int.from_bytes

    def verifier(signing_input: bytes, signature: bytes) -> bool:
        # RFC 7518 section 3.4: exactly R || S, each the curve's coordinate size; no DER.
        if len(signature) != 2 * size:
            return False
        r = from_bytes(signature[:size], "big")
        s = from_bytes(signature[size:], "big")
        if not (0 < r < order and 0 < s < order):
            return False
        try:
            verify(encode_dss_signature(r, s), signing_input, signature_algorithm)
        except _CryptoInvalidSignature:
            return False
        return True

    return verifier


def _eddsa_verifier(key: Ed25519PublicKey | Ed448PublicKey) -> Verifier:
    verify = key.verify

    def verifier(signing_input: bytes, signature: bytes) -> bool:
        try:
            verify(signature, signing_input)
        except _CryptoInvalidSignature:
            return False
        return True

    return verifier


_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_HMAC_MIN_SECRET = {"HS256": 32, "HS384": 48, "HS512": 64}


def hmac_min_secret_length(alg: str) -> int:
    """RFC 7518 section 3.2: the key must be at least as long as the hash output."""
    return _HMAC_MIN_SECRET[alg]


def make_hmac_verifier(alg: str, secret: bytes) -> Verifier:
    """Build a constant-time HMAC verifier for an explicitly configured shared secret."""
    digest = _HMAC_DIGESTS[alg]
    # hmac.digest() is the one-shot OpenSSL path, without building an HMAC object.
    mac, compare = hmac.digest, hmac.compare_digest

    def verifier(signing_input: bytes, signature: bytes) -> bool:
        return compare(mac(secret, signing_input, digest), signature)

    return verifier
