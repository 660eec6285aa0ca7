"""Test kit for sender-constrained tokens: DPoP proofs and X.509 certificates for mTLS."""

from __future__ import annotations

import datetime
import ipaddress
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jwkguard.sender._dpop import access_token_hash

from ._keys import SigningKey, sign_compact

__all__ = ["CertificateAuthority", "IssuedCertificate", "make_dpop_proof"]


def make_dpop_proof(
    key: SigningKey,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    nonce: str | None = None,
    iat: float | None = None,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
    omit: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A DPoP proof JWT (RFC 9449 §4.2) signed by ``key``, with its public JWK in the header.

    Override or ``omit`` any claim to build broken proofs for tests.
    """
    payload: dict[str, Any] = {
        "jti": jti or uuid.uuid4().hex,
        "htm": method,
        "htu": url,
        "iat": int(time.time() if iat is None else iat),
    }
    if access_token is not None:
        payload["ath"] = access_token_hash(access_token)
    if nonce is not None:
        payload["nonce"] = nonce
    payload.update(claims)
    for name in omit:
        payload.pop(name, None)
    public = {k: v for k, v in key.public_jwk.items() if k not in ("kid", "use", "alg")}
    jose = {"typ": "dpop+jwt", "alg": key.alg, "jwk": public, **(header or {})}
    return sign_compact(jose, payload, key=key)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, in PEM."""

    certificate_pem: bytes
    key_pem: bytes

    @property
    def der(self) -> bytes:
        """The certificate in DER form."""
        return x509.load_pem_x509_certificate(self.certificate_pem).public_bytes(
            serialization.Encoding.DER
        )

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``name.crt`` and ``name.key`` into ``directory``; return both paths."""
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(self.certificate_pem)
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


class CertificateAuthority:
    """A throwaway CA that issues server and client certificates for local TLS tests.

    The certificates carry the extensions RFC 5280 §4.2 asks for (key identifiers, basic
    constraints, key usage), so they verify under ``VERIFY_X509_STRICT``, which Python 3.13's
    ``ssl.create_default_context()`` turns on.
    """

    def __init__(self, name: str = "jwkguard test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._name = subject
        self.certificate = _certificate_builder(
            subject, subject, self._key.public_key(), certificate_authority=True
        ).sign(self._key, hashes.SHA256())

    @property
    def certificate_pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, server: bool = False) -> IssuedCertificate:
        """A certificate for ``common_name``; ``server=True`` adds 127.0.0.1/localhost SANs."""
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            _certificate_builder(subject, self._name, key.public_key(), certificate_authority=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        return IssuedCertificate(
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


def _certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    *,
    certificate_authority: bool,
) -> x509.CertificateBuilder:
    """What every certificate of the test CA holds (RFC 5280 section 4.2, as Python 3.13's
    strict verification wants): a day's validity, basic constraints, key usage, key id."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.BasicConstraints(
                ca=certificate_authority, path_length=0 if certificate_authority else None
            ),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=not certificate_authority,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=certificate_authority,
                crl_sign=certificate_authority,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
