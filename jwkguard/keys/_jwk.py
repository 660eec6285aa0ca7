"""Public JWKs imported with ``joserfc`` after strict checks of our own, and RFC 7638 thumbprints.

joserfc builds the ``cryptography`` key objects and computes thumbprints. Before that, the
members are checked for what a validator must refuse: non-canonical base64url, RSA moduli out
of bounds or bad exponents, EC coordinates longer than the curve (``cryptography`` then checks
the point is on the curve), OKP keys of the wrong size. None of this is on the per-token path:
keys are imported once per JWKS fetch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._parse import b64url_decode
from ..errors import MalformedToken

__all__ = ["PublicKey", "import_jwk", "import_public_jwk", "jwk_thumbprint", "secret_thumbprint"]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

MIN_RSA_BITS = 2048
# OpenSSL's own ceiling for RSA verification; larger moduli only make every check slower.
MAX_RSA_BITS = 16384
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_EC_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_OKP_SIZES = {"Ed25519": 32, "Ed448": 57}
# RFC 7638 section 3.2 and RFC 8037 section 2: the members a thumbprint covers, per kty.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def _member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or _B64URL.fullmatch(value) is None:
        raise ValueError(f"member {name!r} is not a base64url string")
    try:
        return b64url_decode(value.encode("ascii"))
    except MalformedToken:
        raise ValueError(f"member {name!r} is not canonical base64url") from None


def _import_rsa(jwk: Mapping[str, Any]) -> Any:
    n = int.from_bytes(_member(jwk, "n"), "big")
    e = int.from_bytes(_member(jwk, "e"), "big")
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {bits} bits is under {MIN_RSA_BITS}")
    if bits > MAX_RSA_BITS:
        raise ValueError(f"RSA key of {bits} bits is over {MAX_RSA_BITS}")
    if e < 3 or e % 2 == 0 or e >= n:
        raise ValueError("RSA public exponent is invalid")
    key = _joserfc_import(jwk)
    if not isinstance(key.public_key, rsa.RSAPublicKey):  # pragma: no cover - kty was checked
        raise ValueError("not an RSA key")
    return key


def _import_ec(jwk: Mapping[str, Any]) -> Any:
    crv = jwk.get("crv")
    if not isinstance(crv, str) or crv not in _EC_CURVES:
        raise ValueError(f"unsupported EC curve {crv!r}")
    curve, size = _EC_CURVES[crv]
    x, y = _member(jwk, "x"), _member(jwk, "y")
    # RFC 7518 section 6.2.1.2 asks producers for full-size coordinates. Some drop leading zero
    # bytes (one key in 256); that is the same point, so it is padded back rather than refused.
    if len(x) > size or len(y) > size:
        raise ValueError(f"EC coordinates must be at most {size} bytes for {crv}")
    # Raises ValueError for a point that is not on the curve.
    key = _joserfc_import(jwk)
    public = key.public_key
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != curve.name:
        raise ValueError(f"the key is not on {crv}")
    return key


def _import_okp(jwk: Mapping[str, Any]) -> Any:
    crv = jwk.get("crv")
    if not isinstance(crv, str) or crv not in _OKP_SIZES:
        raise ValueError(f"unsupported OKP curve {crv!r} for signatures")
    size = _OKP_SIZES[crv]
    x = _member(jwk, "x")
    if len(x) != size:
        raise ValueError(f"OKP public key must be {size} bytes for {crv}")
    key = _joserfc_import(jwk)
    if not isinstance(key.public_key, Ed25519PublicKey | Ed448PublicKey):
        raise ValueError(f"not an {crv} signing key")
    return key


def _joserfc_import(jwk: Mapping[str, Any]) -> Any:
    # joserfc (and through it cryptography.x509) loads with the first key, not at import.
    from joserfc.jwk import JWKRegistry

    try:
        return JWKRegistry.import_key(dict(jwk))
    except ValueError:
        raise
    except Exception as exc:  # joserfc's own errors: the JWK cannot be imported
        raise ValueError(f"the JWK cannot be imported: {exc}") from exc


def import_jwk(jwk: Mapping[str, Any]) -> tuple[PublicKey, str]:
    """The ``cryptography`` public key of an RSA, EC or OKP JWK, and its RFC 7638 thumbprint.

    Raises:
        ValueError: The JWK is malformed, of another type, too weak, or not a valid point.
    """
    kty = jwk.get("kty")
    importer = _IMPORTERS.get(kty) if isinstance(kty, str) else None
    if importer is None:
        raise ValueError(f"unsupported kty {kty!r}")
    key = importer(jwk)
    return key.public_key, str(key.thumbprint())


def import_public_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """The ``cryptography`` public key of an RSA, EC or OKP JWK (see :func:`import_jwk`)."""
    return import_jwk(jwk)[0]


_IMPORTERS = {"RSA": _import_rsa, "EC": _import_ec, "OKP": _import_okp}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK, base64url (computed by joserfc).

    Raises:
        ValueError: The JWK lacks a member the thumbprint covers.
    """
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ValueError("cannot compute a thumbprint for this kty")
    required: dict[str, Any] = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise ValueError(f"the JWK member {name!r} is missing")
        required[name] = value
    from joserfc.jwk import JWKRegistry

    # Only the required members: thumbprints ignore the rest, and joserfc need not parse them.
    return str(JWKRegistry.import_key(required).thumbprint())


def secret_thumbprint(secret: bytes) -> str:
    """The RFC 7638 thumbprint of a shared secret as an ``oct`` JWK."""
    from joserfc.jwk import OctKey

    return str(OctKey.import_key(secret).thumbprint())
