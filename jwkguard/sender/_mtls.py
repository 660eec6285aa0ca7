"""Certificate-bound access tokens (RFC 8705 section 3): ``cnf.x5t#S256`` vs the client cert."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from base64 import urlsafe_b64encode
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import unquote

from ..errors import InvalidClaim

__all__ = [
    "certificate_binding",
    "certificate_from_proxy_header",
    "certificate_thumbprint",
    "check_certificate_binding",
    "confirmation_member",
]


def certificate_thumbprint(certificate: bytes | str) -> str:
    """base64url(SHA-256(DER)) of a certificate given as DER bytes or PEM text.

    Raises:
        ValueError: Not one certificate: unreadable, or PEM holding several or extra text.
    """
    # X.509 support is heavy to import and only needed here: load it on first use.
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if isinstance(certificate, str) or certificate.lstrip().startswith(b"-----BEGIN"):
        pem = certificate.encode("ascii") if isinstance(certificate, str) else certificate
        # The loader takes the first certificate and skips any text around it: a chain, or
        # a certificate after some text, would bind to whichever came first. Exactly one.
        body = pem.strip()
        if (
            not body.startswith(b"-----BEGIN CERTIFICATE-----")
            or not body.endswith(b"-----END CERTIFICATE-----")
            or body.count(b"-----BEGIN") != 1
        ):
            raise ValueError("not exactly one PEM certificate")
        der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    else:
        der = x509.load_der_x509_certificate(certificate).public_bytes(Encoding.DER)
    return urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def confirmation_member(claims: Mapping[str, Any], member: str) -> str | None:
    """The string ``member`` of a token's ``cnf`` claim (RFC 7800), or None when absent."""
    cnf = claims.get("cnf")
    if isinstance(cnf, Mapping):
        value = cnf.get(member)
        return value if isinstance(value, str) else None
    return None


def certificate_binding(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf`` ``x5t#S256`` of a token, or None when it is not certificate-bound."""
    return confirmation_member(claims, "x5t#S256")


def check_certificate_binding(
    claims: Mapping[str, Any], certificate: bytes | str | None, *, required: bool = False
) -> None:
    """Refuse a certificate-bound token unless the client presented that certificate.

    Args:
        claims: The verified token claims.
        certificate: The TLS client certificate (DER or PEM), or None if none was presented.
        required: Also refuse tokens that are not certificate-bound.
    """
    expected = certificate_binding(claims)
    if expected is None:
        if required:
            raise InvalidClaim(
                "The access token must be bound to a client certificate",
                reason="certificate_binding_required",
                claim="cnf",
            )
        return
    if certificate is None:
        raise InvalidClaim(
            "The access token is bound to a client certificate that was not presented",
            reason="certificate_missing",
            claim="cnf",
        )
    try:
        actual = certificate_thumbprint(certificate)
    except ValueError as exc:
        raise InvalidClaim(
            "The client certificate cannot be read", reason="certificate_mismatch", claim="cnf"
        ) from exc
    # compare_digest takes only ASCII str; a thumbprint is base64url, so anything else differs.
    if not expected.isascii() or not hmac.compare_digest(actual, expected):
        raise InvalidClaim(
            "The access token is bound to another client certificate",
            reason="certificate_mismatch",
            claim="cnf",
        )


def certificate_from_proxy_header(
    headers: Mapping[str, str],
    peer: str | None,
    *,
    header: str,
    trusted_proxies: Collection[str],
) -> str | None:
    """The URL-encoded PEM a trusted TLS-terminating proxy forwarded, else None.

    A header from a peer outside ``trusted_proxies`` (addresses or CIDR networks) is ignored,
    so a client cannot claim a certificate it does not hold.
    """
    if peer is None or not _is_trusted(peer, trusted_proxies):
        return None
    value = next((v for k, v in headers.items() if k.lower() == header.lower()), None)
    if not value:
        return None
    return unquote(value)


def _is_trusted(peer: str, trusted: Collection[str]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
