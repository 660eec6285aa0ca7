"""Certificate-bound tokens (RFC 8705): cnf.x5t#S256 must match the presented client certificate."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from jwkguard.errors import TokenError
from jwkguard.sender import certificate_from_proxy_header, certificate_thumbprint
from jwkguard.sender._mtls import check_certificate_binding, confirmation_member
from jwkguard.testing import CertificateAuthority, IssuedCertificate


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="module")
def client_cert(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue("client-a")


def test_the_thumbprint_is_the_same_from_pem_and_der(client_cert: IssuedCertificate) -> None:
    assert certificate_thumbprint(client_cert.certificate_pem) == certificate_thumbprint(
        client_cert.der
    )
    assert certificate_thumbprint(client_cert.certificate_pem.decode()) == certificate_thumbprint(
        client_cert.der
    )


def test_a_bound_token_with_its_certificate_passes(client_cert: IssuedCertificate) -> None:
    claims = {"cnf": {"x5t#S256": certificate_thumbprint(client_cert.der)}}
    check_certificate_binding(claims, client_cert.der)


@pytest.mark.parametrize("presented", ["other", None])
def test_a_bound_token_with_another_or_no_certificate_is_refused(
    ca: CertificateAuthority, client_cert: IssuedCertificate, presented: str | None
) -> None:
    claims = {"cnf": {"x5t#S256": certificate_thumbprint(client_cert.der)}}
    certificate = ca.issue("client-b").der if presented == "other" else None
    with pytest.raises(TokenError) as caught:
        check_certificate_binding(claims, certificate)
    assert caught.value.reason == ("certificate_mismatch" if presented else "certificate_missing")
    assert caught.value.status_code == 401


def test_an_unbound_token_is_refused_only_when_binding_is_required(
    client_cert: IssuedCertificate,
) -> None:
    check_certificate_binding({}, client_cert.der)
    with pytest.raises(TokenError) as caught:
        check_certificate_binding({}, client_cert.der, required=True)
    assert caught.value.reason == "certificate_binding_required"


def test_a_proxy_header_counts_only_from_a_trusted_proxy(client_cert: IssuedCertificate) -> None:
    from urllib.parse import quote

    headers = {"X-Client-Cert": quote(client_cert.certificate_pem.decode())}
    trusted = ["127.0.0.1/32", "10.0.0.0/8"]
    forwarded = certificate_from_proxy_header(
        headers, "127.0.0.1", header="x-client-cert", trusted_proxies=trusted
    )
    assert forwarded is not None
    assert certificate_thumbprint(forwarded) == certificate_thumbprint(client_cert.der)
    assert (
        certificate_from_proxy_header(
            headers, "192.0.2.7", header="X-Client-Cert", trusted_proxies=trusted
        )
        is None
    )
    assert (
        certificate_from_proxy_header(
            headers, "not-an-ip", header="X-Client-Cert", trusted_proxies=trusted
        )
        is None
    )


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"cnf": {"x5t#S256": "abc", "jkt": "def"}}, "abc"),
        ({"cnf": {"jkt": "def"}}, None),
        ({"cnf": {"x5t#S256": 42}}, None),
        ({"cnf": "abc"}, None),
        ({}, None),
    ],
)
def test_a_confirmation_member_is_read_only_when_it_is_a_string(
    claims: dict[str, object], expected: str | None
) -> None:
    assert confirmation_member(claims, "x5t#S256") == expected


def test_the_test_ca_certificates_pass_a_strict_handshake_in_both_directions(
    ca: CertificateAuthority, client_cert: IssuedCertificate, tmp_path: Path
) -> None:
    """RFC 5280 conformant, as Python 3.13's default context (VERIFY_X509_STRICT) demands."""
    ca_path = tmp_path / "ca.crt"
    ca_path.write_bytes(ca.certificate_pem)
    server_files = ca.issue("127.0.0.1", server=True).write(tmp_path, "server")
    client_files = client_cert.write(tmp_path, "client")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*server_files)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_cert_chain(*client_files)
    for context in (server_context, client_context):
        context.load_verify_locations(ca_path)
        context.verify_flags |= ssl.VERIFY_X509_STRICT
    bios = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]  # (incoming, outgoing)
    client = client_context.wrap_bio(*bios[0], server_hostname="127.0.0.1")
    server = server_context.wrap_bio(*bios[1], server_side=True)
    done = {client: False, server: False}
    for _ in range(10):
        for end in (client, server):
            try:
                end.do_handshake()
                done[end] = True
            except ssl.SSLWantReadError:
                pass
        bios[1][0].write(bios[0][1].read())
        bios[0][0].write(bios[1][1].read())
        if all(done.values()):
            break
    assert all(done.values())
    assert server.getpeercert(binary_form=True) == client_cert.der
