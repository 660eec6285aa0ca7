"""Hostile DPoP proofs against the verifier: every odd value is a typed refusal, never a crash.

The proofs are signed by the key the token is bound to, so nothing but the odd value can be
the reason for a refusal; a Python exception here would be a 500 in every adapter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from jwkguard import TokenError
from jwkguard.errors import InvalidClaim
from jwkguard.sender import (
    DPoPNonces,
    DPoPVerifier,
    SenderConstraints,
    certificate_thumbprint,
    normalise_htu,
)
from jwkguard.sender._mtls import check_certificate_binding
from jwkguard.testing import CertificateAuthority, SigningKey, generate_key, make_dpop_proof

from ..conftest import FakeClock

URL = "https://api.example.com/orders"
TOKEN = "header.payload.signature"


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


def refusal(
    verifier: DPoPVerifier, key: SigningKey, *, url: str = URL, **overrides: Any
) -> TokenError | None:
    """The verifier's refusal of a proof with ``overrides`` (claims, or ``header``), or None."""
    overrides.setdefault("iat", verifier.clock())
    proof = make_dpop_proof(key, method="GET", url=URL, access_token=TOKEN, **overrides)
    try:
        verifier.verify(
            proof,
            method="GET",
            url=url,
            access_token=TOKEN,
            claims={"cnf": {"jkt": key.thumbprint}},
        )
    except TokenError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("ath", "é"),  # hmac.compare_digest refuses non-ASCII str with TypeError
        ("ath", "\u2028"),
        ("iat", 10**400),  # math.isfinite(int) overflows
        ("iat", -(10**400)),
        ("jti", ["a"]),
        ("htu", 7),
        ("htm", None),
        ("htu", "https://[/orders"),  # urlsplit raises ValueError on a broken IPv6 literal
        ("htu", "https://[zz]/orders"),
    ],
    ids=[
        "ath-latin",
        "ath-separator",
        "iat-huge",
        "iat-huge-negative",
        "jti-list",
        "htu-number",
        "htm-null",
        "htu-open-bracket",
        "htu-bad-ipv6",
    ],
)
def test_an_odd_claim_value_is_refused_not_a_crash(
    proof_key: SigningKey, clock: FakeClock, claim: str, value: Any
) -> None:
    verifier = DPoPVerifier(clock=clock)
    found = refusal(verifier, proof_key, **{claim: value})
    assert found is not None
    assert found.error == "invalid_dpop_proof"
    assert found.claim == claim


@pytest.mark.parametrize("nonce", ["é", "nönce", 7, ["x"], None])
def test_an_odd_nonce_gets_the_nonce_challenge_not_a_crash(
    proof_key: SigningKey, clock: FakeClock, nonce: Any
) -> None:
    """Any nonce that is not the current one is ``use_dpop_nonce`` (RFC 9449 section 8)."""
    verifier = DPoPVerifier(clock=clock, nonces=DPoPNonces(b"0123456789abcdef"))
    found = refusal(verifier, proof_key, nonce=nonce)
    assert found is not None
    assert found.error == "use_dpop_nonce"


def test_a_valid_proof_passes(proof_key: SigningKey, clock: FakeClock) -> None:
    """The helper itself: nothing else in these proofs is wrong."""
    assert refusal(DPoPVerifier(clock=clock), proof_key) is None


@pytest.mark.parametrize("claim", ["ath", "nonce", "jti", "htu"])
def test_a_lone_surrogate_is_a_malformed_proof(
    proof_key: SigningKey, clock: FakeClock, claim: str
) -> None:
    """JSON's ``\\ud800`` escape decodes to no text at all: the proof is malformed."""
    verifier = DPoPVerifier(clock=clock, nonces=DPoPNonces(b"0123456789abcdef"))
    found = refusal(verifier, proof_key, **{claim: "\ud800"})
    assert found is not None
    assert found.reason == "dpop_proof_malformed"


@pytest.mark.parametrize(
    "header",
    [
        {"crit": ["exp"], "exp": 1},  # RFC 7515 section 4.1.11: not understood, so refused
        {"crit": ["b64"], "b64": False},  # RFC 7797: would change what the signature covers
        {"crit": []},
        {"crit": "b64"},
    ],
    ids=["crit-unknown", "crit-b64", "crit-empty", "crit-string"],
)
def test_a_critical_header_extension_is_refused(
    proof_key: SigningKey, clock: FakeClock, header: dict[str, Any]
) -> None:
    """No extension is understood (as for access tokens): any ``crit`` fails the proof."""
    found = refusal(DPoPVerifier(clock=clock), proof_key, header=header)
    assert found is not None
    assert found.error == "invalid_dpop_proof"
    assert found.claim == "crit"


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com:99999/orders",  # not a port: never the default one
        "https://api.example.com:abc/orders",
        "https://user@api.example.com/orders",  # userinfo is not part of the request URI
        "https://user:pw@api.example.com/orders",
        "https://api.exa\tmple.com/orders",  # urlsplit drops tabs and newlines silently
        "https://api.example.com/or\nders",
        " https://api.example.com/orders",
        "https://api.example.com/orders\x00",
    ],
    ids=[
        "port-out-of-range",
        "port-letters",
        "userinfo",
        "userinfo-password",
        "tab-in-host",
        "newline-in-path",
        "leading-space",
        "nul",
    ],
)
def test_an_htu_that_is_not_a_plain_uri_matches_nothing(
    proof_key: SigningKey, clock: FakeClock, htu: str
) -> None:
    """Normalisation never turns a malformed ``htu`` into the request's URL."""
    assert normalise_htu(htu) != normalise_htu(URL)
    found = refusal(DPoPVerifier(clock=clock), proof_key, htu=htu)
    assert found is not None
    assert found.claim == "htu"


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com:99999/orders", "https://api.example.com:abc/orders"],
)
def test_a_request_url_with_a_bad_port_matches_no_proof_for_the_default_port(
    proof_key: SigningKey, clock: FakeClock, url: str
) -> None:
    found = refusal(DPoPVerifier(clock=clock), proof_key, url=url)
    assert found is not None
    assert found.claim == "htu"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("https://[::1]:443/orders", "https://[::1]/orders"),
        ("HTTPS://[::1]/orders", "https://[::1]/orders"),
        ("http://API.example.com:80", "http://api.example.com/"),
        ("https://api.example.com:/orders", "https://api.example.com/orders"),  # RFC 3986 6.2.3
        ("https://api.example.com/orders?a=1#top", "https://api.example.com/orders"),
    ],
)
def test_htu_normalisation_still_matches_equivalent_uris(left: str, right: str) -> None:
    assert normalise_htu(left) == normalise_htu(right)


# -- certificate binding (RFC 8705): one certificate, or none -------------------------------


@pytest.fixture(scope="module")
def authority() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.mark.parametrize(
    "shape",
    ["bound+other", "other+bound", "ca+bound", "bound+junk", "junk+bound", "bound-twice"],
)
def test_a_forwarded_certificate_that_is_not_exactly_one_certificate_is_refused(
    authority: CertificateAuthority, shape: str
) -> None:
    """A proxy header holding a chain or extra text is ambiguous: which one was presented?
    It never satisfies the binding, even when the bound certificate is in it."""
    bound = authority.issue("client-a").certificate_pem
    other = authority.issue("client-b").certificate_pem
    value = {
        "bound+other": bound + other,
        "other+bound": other + bound,
        "ca+bound": authority.certificate_pem + bound,
        "bound+junk": bound + b"\nextra text",
        "junk+bound": b"extra text\n" + bound,
        "bound-twice": bound + bound,
    }[shape]
    constraints = SenderConstraints(
        client_cert_header="x-ssl-client-cert", trusted_proxies=["10.0.0.0/8"]
    )
    claims = {"cnf": {"x5t#S256": certificate_thumbprint(bound)}}
    forwarded = constraints.client_certificate(None, [quote(value.decode())], "10.0.0.1")
    with pytest.raises(InvalidClaim) as caught:
        check_certificate_binding(claims, forwarded)
    assert caught.value.reason == "certificate_mismatch"
    check_certificate_binding(
        claims, constraints.client_certificate(None, [quote(bound.decode())], "10.0.0.1")
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("https://a.example/caf%c3%a9", "https://a.example/caf%C3%A9"),  # hex case
        ("https://a.example/a%7Eb", "https://a.example/a~b"),  # unreserved decoded
        ("https://a.example/%41%62c%2d%5f", "https://a.example/Abc-_"),
        ("https://a.example/a%2eb", "https://a.example/a%2Eb"),
    ],
)
def test_htu_percent_encoding_is_normalised_as_rfc3986_section_6_2_2_asks(
    left: str, right: str
) -> None:
    """A WSGI server re-encodes the decoded path (``%7E`` comes back as ``~``, ``%c3`` as
    ``%C3``): a proof for the same resource must still match."""
    assert normalise_htu(left) == normalise_htu(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("https://a.example/a%2Fb", "https://a.example/a/b"),  # a reserved character stays
        ("https://a.example/a%3Fb", "https://a.example/a?b"),
        ("https://a.example/%2e%2e/admin", "https://a.example/../admin"),  # dots stay encoded
        ("https://a.example/a%25b", "https://a.example/a%b"),
    ],
)
def test_htu_never_decodes_what_changes_the_path(left: str, right: str) -> None:
    assert normalise_htu(left) != normalise_htu(right)


@pytest.mark.parametrize("bound_to", ["é", "\u2028", "x5t-\udc80"])
def test_a_non_ascii_certificate_binding_is_a_mismatch_not_a_crash(
    authority: CertificateAuthority, bound_to: str
) -> None:
    """``hmac.compare_digest`` refuses non-ASCII str with ``TypeError``: an odd ``cnf`` (from
    the token or an introspection answer) must still be a clean refusal."""
    certificate = authority.issue("client-a").certificate_pem
    with pytest.raises(InvalidClaim) as caught:
        check_certificate_binding({"cnf": {"x5t#S256": bound_to}}, certificate)
    assert caught.value.reason == "certificate_mismatch"
