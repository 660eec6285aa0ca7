"""Signing keys and token minting for tests: real keys, real signatures, any claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry

from ..keys._jwk import jwk_thumbprint

__all__ = ["SigningKey", "b64url", "generate_key", "mint_token", "sign_compact"]

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES = {"ES256": (ec.SECP256R1, 32), "ES384": (ec.SECP384R1, 48), "ES512": (ec.SECP521R1, 66)}
_GENERATED_ALGORITHMS = frozenset(
    {f"{family}{bits}" for family in ("RS", "PS") for bits in (256, 384, 512)}
    | {*_CURVES, "EdDSA", "Ed25519"}
)


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """A private key with its public JWK, able to sign JWS for one algorithm."""

    alg: str
    kid: str
    private_key: Any = field(repr=False)
    public_jwk: Mapping[str, Any] = field(default_factory=dict)

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint of the public key."""
        return jwk_thumbprint(self.public_jwk)

    def sign(self, signing_input: bytes) -> bytes:
        """Sign with this key in the JOSE signature format of ``alg``."""
        return _sign(self.alg, self.private_key, signing_input)


def generate_key(alg: str = "RS256", *, kid: str | None = None, rsa_bits: int = 2048) -> SigningKey:
    """Generate a key pair for ``alg`` (RS*, PS*, ES256/384/512, EdDSA, Ed25519)."""
    if alg not in _GENERATED_ALGORITHMS:
        raise ValueError(f"cannot generate a key for {alg}")
    family = alg[:2]
    private: Any
    if family in ("RS", "PS"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif family == "ES":
        private = ec.generate_private_key(_CURVES[alg][0]())
    elif alg in ("EdDSA", "Ed25519"):
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"cannot generate a key for {alg}")
    key_type = {"RS": "RSA", "PS": "RSA", "ES": "EC"}.get(family, "OKP")
    with warnings.catch_warnings():
        # Deliberately weak keys (RSA-1024) are for negative tests; joserfc warns on them.
        warnings.simplefilter("ignore", SecurityWarning)
        jwk = dict(JWKRegistry.import_key(private.public_key(), key_type).as_dict(private=False))
    kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:12]}"
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return SigningKey(alg=alg, kid=kid, private_key=private, public_jwk=jwk)


def _sign(alg: str, key: Any, data: bytes) -> bytes:
    family, bits = alg[:2], alg[2:]
    if family == "RS":
        return bytes(key.sign(data, padding.PKCS1v15(), _HASHES[bits]()))
    if family == "PS":
        hash_alg = _HASHES[bits]()
        pss = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
        return bytes(key.sign(data, pss, hash_alg))
    if family == "ES":
        size = _CURVES[alg][1]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_HASHES[bits]())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg in ("EdDSA", "Ed25519"):
        return bytes(key.sign(data))
    if family == "HS":
        digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[bits]
        return hmac.new(key, data, digest).digest()
    raise ValueError(f"cannot sign with {alg}")


def sign_compact(
    header: Mapping[str, Any] | bytes,
    payload: Mapping[str, Any] | bytes,
    *,
    key: SigningKey | None = None,
    secret: bytes | None = None,
    alg: str | None = None,
) -> str:
    """Build a compact JWS from any header and payload (dicts, or raw bytes for broken ones).

    Sign with ``key``, or HMAC with ``secret`` (``alg`` HS*), or leave the signature empty.
    """
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    payload_bytes = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(header_bytes)}.{b64url(payload_bytes)}".encode("ascii")
    if key is not None:
        signature = key.sign(signing_input)
    elif secret is not None:
        signature = _sign(alg or "HS256", secret, signing_input)
    else:
        signature = b""
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def mint_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str | list[str] | None,
    subject: str = "user-123",
    scopes: str | list[str] | None = None,
    lifetime: float = 300,
    now: float | None = None,
    header: Mapping[str, Any] | None = None,
    omit: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """Mint a signed access token with sensible claims; override or ``omit`` any of them."""
    issued = time.time() if now is None else now
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": int(issued),
        "nbf": int(issued),
        "exp": int(issued + lifetime),
        "jti": uuid.uuid4().hex,
    }
    if audience is not None:
        payload["aud"] = audience
    if scopes is not None:
        payload["scope"] = scopes if isinstance(scopes, str) else " ".join(scopes)
    payload.update(claims)
    for name in omit:
        payload.pop(name, None)
    jose_header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid, **(header or {})}
    return sign_compact(jose_header, payload, key=key)
