"""SenderConstraints: the async driver, per-route and per-issuer requirements, where the client
certificate comes from, the challenge every adapter sends, and the settings builder."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import quote

import pytest

from jwkguard import Claims, ConfigurationError, Issuer, TokenError, Validator
from jwkguard.errors import InsufficientScope, InvalidDPoPProof, InvalidRequest, UseDPoPNonce
from jwkguard.sender import (
    DPoPVerifier,
    Introspector,
    MemoryReplayLedger,
    PresentedRequest,
    SenderConstraints,
    SenderOptions,
    build_sender_settings,
    certificate_thumbprint,
)
from jwkguard.testing import CertificateAuthority, SigningKey, generate_key, make_dpop_proof
from jwkguard.testing import mint_token as mint

from ..conftest import AUDIENCE, ISSUER, FakeClock

URL = "https://api.example.com/orders"
OTHER_ISSUER = "https://other.example.com/"


@pytest.fixture(scope="module")
def proof_key() -> SigningKey:
    return generate_key("ES256")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture
def validator(rsa_key: SigningKey, clock: FakeClock) -> Validator:
    jwks = {"keys": [rsa_key.public_jwk]}
    return Validator(
        issuers=[
            Issuer(ISSUER, audiences=[AUDIENCE], jwks=jwks),
            Issuer(OTHER_ISSUER, audiences=[AUDIENCE], jwks=jwks),
        ],
        algorithms=["RS256"],
        clock=clock,
    )


def claims_of(
    validator: Validator, key: SigningKey, clock: FakeClock, issuer: str = ISSUER, **extra: Any
) -> tuple[str, Claims]:
    token = mint(key, issuer=issuer, audience=AUDIENCE, now=clock.now, **extra)
    return token, validator.validate(token)


def request(token: str, *proofs: str, scheme: str = "DPoP", **extra: Any) -> PresentedRequest:
    return PresentedRequest(
        scheme=scheme, token=token, method="GET", url=URL, dpop_proofs=proofs, **extra
    )


class CountingLedger(MemoryReplayLedger):
    """A memory ledger that counts how it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.sync_calls = 0
        self.async_calls = 0

    def first_use(self, key: str, ttl: float, now: float) -> bool:
        self.sync_calls += 1
        return super().first_use(key, ttl, now)

    async def afirst_use(self, key: str, ttl: float, now: float) -> bool:
        self.async_calls += 1
        return super().first_use(key, ttl, now)


# -- one decision core, two drivers ---------------------------------------------------------


@pytest.mark.anyio
async def test_acheck_gives_the_same_answers_and_asks_the_ledger_asynchronously(
    validator: Validator, rsa_key: SigningKey, proof_key: SigningKey, clock: FakeClock
) -> None:
    ledger = CountingLedger()
    constraints = SenderConstraints(dpop=DPoPVerifier(clock=clock, replay=ledger))
    token, claims = claims_of(validator, rsa_key, clock, cnf={"jkt": proof_key.thumbprint})
    proof = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token, iat=clock.now)
    verified = await constraints.acheck(claims, request(token, proof))
    assert verified is not None
    assert verified.thumbprint == proof_key.thumbprint
    assert (ledger.sync_calls, ledger.async_calls) == (0, 1)
    with pytest.raises(TokenError) as replayed:
        await constraints.acheck(claims, request(token, proof))
    assert replayed.value.reason == "dpop_replayed"
    with pytest.raises(TokenError) as downgrade:
        await constraints.acheck(claims, request(token, scheme="Bearer"))
    assert downgrade.value.reason == "dpop_required"
    stale = make_dpop_proof(
        proof_key, method="GET", url=URL, access_token=token, iat=clock.now - 3600
    )
    with pytest.raises(TokenError) as old:
        await constraints.acheck(claims, request(token, stale))
    assert old.value.claim == "iat"
    assert ledger.async_calls == 2, "refused before the ledger: only good proofs are spent"


@pytest.mark.anyio
async def test_averify_refuses_what_verify_refuses(
    validator: Validator, rsa_key: SigningKey, proof_key: SigningKey, clock: FakeClock
) -> None:
    verifier = DPoPVerifier(clock=clock)
    token, claims = claims_of(validator, rsa_key, clock, cnf={"jkt": proof_key.thumbprint})
    for broken in (
        make_dpop_proof(proof_key, method="PUT", url=URL, access_token=token, iat=clock.now),
        make_dpop_proof(proof_key, method="GET", url=URL, iat=clock.now),
        make_dpop_proof(
            generate_key("ES256"), method="GET", url=URL, access_token=token, iat=clock.now
        ),
        "not.a.proof",
    ):
        with pytest.raises(InvalidDPoPProof) as sync:
            verifier.verify(broken, method="GET", url=URL, access_token=token, claims=claims)
        with pytest.raises(InvalidDPoPProof) as async_:
            await verifier.averify(broken, method="GET", url=URL, access_token=token, claims=claims)
        assert (sync.value.reason, sync.value.claim) == (async_.value.reason, async_.value.claim)


def test_a_certificate_refusal_does_not_spend_the_proof(
    validator: Validator,
    rsa_key: SigningKey,
    proof_key: SigningKey,
    clock: FakeClock,
    ca: CertificateAuthority,
) -> None:
    mine, other = ca.issue("client-a"), ca.issue("client-b")
    cnf = {"jkt": proof_key.thumbprint, "x5t#S256": certificate_thumbprint(mine.der)}
    token, claims = claims_of(validator, rsa_key, clock, cnf=cnf)
    constraints = SenderConstraints(dpop=DPoPVerifier(clock=clock))
    proof = make_dpop_proof(proof_key, method="GET", url=URL, access_token=token, iat=clock.now)
    with pytest.raises(TokenError) as caught:
        constraints.check(claims, request(token, proof, client_certificate=other.der))
    assert caught.value.reason == "certificate_mismatch"
    assert constraints.check(claims, request(token, proof, client_certificate=mine.der))


# -- requirements per route and per issuer --------------------------------------------------


def test_dpop_required_for_one_issuer_only(
    validator: Validator, rsa_key: SigningKey, proof_key: SigningKey, clock: FakeClock
) -> None:
    constraints = SenderConstraints(
        dpop=DPoPVerifier(clock=clock), require_dpop_issuers=[OTHER_ISSUER]
    )
    token, claims = claims_of(validator, rsa_key, clock)
    assert constraints.check(claims, request(token, scheme="Bearer")) is None
    token, claims = claims_of(validator, rsa_key, clock, issuer=OTHER_ISSUER)
    with pytest.raises(TokenError) as caught:
        constraints.check(claims, request(token, scheme="Bearer"))
    assert caught.value.reason == "dpop_required"
    assert constraints.challenge_scheme == "Bearer", "the issuer is unknown before the token"


def test_requiring_shares_the_verifier_and_checks_only_what_is_left(
    validator: Validator, rsa_key: SigningKey, proof_key: SigningKey, clock: FakeClock
) -> None:
    base = SenderConstraints(dpop=DPoPVerifier(clock=clock))
    strict = base.requiring(dpop=True)
    assert strict.dpop is base.dpop
    assert base.requiring(dpop=True) is strict, "built once, asked per request"
    assert strict.require_dpop
    assert not base.require_dpop
    _, unbound = claims_of(validator, rsa_key, clock)
    with pytest.raises(TokenError) as caught:
        strict.check_required(unbound)
    assert caught.value.reason == "dpop_required"
    _, bound = claims_of(validator, rsa_key, clock, cnf={"jkt": proof_key.thumbprint})
    strict.check_required(bound)
    with pytest.raises(TokenError) as certificate:
        base.requiring(certificate=True).check_required(bound)
    assert certificate.value.reason == "certificate_binding_required"


@pytest.mark.parametrize(
    "options",
    [
        {"require_dpop": True},
        {"require_dpop_issuers": [ISSUER]},
        {"client_cert_header": "X-SSL-Client-Cert"},
        {"client_cert_header": " ", "trusted_proxies": ["127.0.0.1"]},
        {"trusted_proxies": ["nonsense"]},
        {"trusted_proxies": "127.0.0.1"},
    ],
)
def test_inconsistent_options_fail_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SenderConstraints(**options)


def test_sender_options_name_every_keyword_of_the_constraints() -> None:
    """:class:`SenderOptions` declares exactly the keywords of :class:`SenderConstraints`, so
    an adapter that takes them flat can pass them on as given."""
    parameters = inspect.signature(SenderConstraints).parameters
    assert set(SenderOptions.__annotations__) == set(parameters)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())


# -- where the certificate comes from -------------------------------------------------------


def test_a_forwarded_certificate_counts_only_from_a_trusted_peer(
    ca: CertificateAuthority,
) -> None:
    mine, proxy_own = ca.issue("client-a"), ca.issue("proxy")
    constraints = SenderConstraints(
        client_cert_header="X-SSL-Client-Cert", trusted_proxies=["10.0.0.0/8", "::1"]
    )
    forwarded = [quote(mine.certificate_pem.decode())]
    found = constraints.client_certificate(proxy_own.der, forwarded, "10.9.8.7")
    assert isinstance(found, str)
    assert certificate_thumbprint(found) == certificate_thumbprint(mine.der)
    assert constraints.client_certificate(None, forwarded, "::1") is not None
    assert constraints.client_certificate(proxy_own.der, forwarded, "192.0.2.1") == proxy_own.der
    assert constraints.client_certificate(None, forwarded, None) is None
    assert constraints.client_certificate(None, forwarded, "localhost") is None
    assert constraints.client_certificate(None, forwarded * 2, "10.0.0.1") is None
    assert constraints.client_certificate(proxy_own.der, [""], "10.0.0.1") is None
    assert constraints.client_certificate(mine.der, [], "10.0.0.1") == mine.der
    assert SenderConstraints().client_certificate(mine.der, forwarded, "10.0.0.1") == mine.der


# -- the challenge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraints", "exc", "authorization", "expected"),
    [
        (SenderConstraints(), None, (), 'Bearer realm="api"'),
        (
            SenderConstraints(dpop=DPoPVerifier(algorithms=["ES256"]), require_dpop=True),
            None,
            (),
            'DPoP realm="api", algs="ES256"',
        ),
        (
            SenderConstraints(dpop=DPoPVerifier(algorithms=["ES256"])),
            TokenError("The access token has expired", reason="expired"),
            ("DPoP abc",),
            'DPoP realm="api", error="invalid_token", '
            'error_description="The access token has expired", algs="ES256"',
        ),
        (
            SenderConstraints(dpop=DPoPVerifier(algorithms=["ES256"])),
            TokenError("The access token has expired", reason="expired"),
            ("Bearer abc",),
            'Bearer realm="api", error="invalid_token", '
            'error_description="The access token has expired"',
        ),
        (
            SenderConstraints(),
            InvalidDPoPProof("DPoP-bound tokens are not accepted here"),
            ("DPoP abc",),
            'DPoP realm="api", error="invalid_dpop_proof", '
            'error_description="DPoP-bound tokens are not accepted here"',
        ),
        (
            SenderConstraints(dpop=DPoPVerifier(algorithms=["EdDSA"]), require_dpop=True),
            InsufficientScope(required_scopes=frozenset({"a"})),
            ("DPoP abc",),
            'DPoP realm="api", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", scope="a", '
            'algs="EdDSA"',
        ),
    ],
    ids=["bearer", "dpop-required", "dpop-client", "bearer-client", "no-verifier", "scope"],
)
def test_the_challenge_follows_the_route_the_error_and_the_clients_scheme(
    constraints: SenderConstraints,
    exc: TokenError | None,
    authorization: tuple[str, ...],
    expected: str,
) -> None:
    answer = constraints.refusal(exc, authorization=authorization)
    assert answer.headers["WWW-Authenticate"] == expected


def test_a_nonce_refusal_carries_the_dpop_nonce_header() -> None:
    constraints = SenderConstraints(dpop=DPoPVerifier())
    answer = constraints.refusal(UseDPoPNonce(nonce="n-1"))
    assert answer.status_code == 401
    assert answer.headers["DPoP-Nonce"] == "n-1"
    assert answer.headers["WWW-Authenticate"].startswith('DPoP realm="api", error="use_dpop_nonce"')


def test_a_malformed_request_is_400_in_either_scheme() -> None:
    constraints = SenderConstraints(dpop=DPoPVerifier(), require_dpop=True)
    answer = constraints.refusal(InvalidRequest("Only one Authorization header is allowed"))
    assert answer.status_code == 400
    assert answer.headers["WWW-Authenticate"].startswith(
        'DPoP realm="api", error="invalid_request"'
    )


# -- settings ---------------------------------------------------------------------------------


def test_settings_build_the_verifier_the_constraints_and_the_introspector() -> None:
    ledger = MemoryReplayLedger()
    built = build_sender_settings(
        {
            "DPOP": {
                "ALGORITHMS": ["ES256"],
                "MAX_AGE": 30,
                "LEEWAY": 2,
                "NONCE_SECRET": "0123456789abcdef",
                "NONCE_PERIOD": 60,
                "REPLAY": ledger,
            },
            "REQUIRE_DPOP_ISSUERS": [ISSUER],
            "REQUIRE_CLIENT_CERTIFICATE": True,
            "CLIENT_CERT_HEADER": "X-SSL-Client-Cert",
            "TRUSTED_PROXIES": ["127.0.0.1"],
            "INTROSPECTION": {
                "ENDPOINT": "https://id.example.com/introspect",
                "CLIENT_ID": "rs",
                "CLIENT_SECRET": "secret",
            },
            "ALGORITHMS": ["RS256"],  # someone else's setting: ignored here
        }
    )
    dpop = built.constraints.dpop
    assert dpop is not None
    assert (dpop.algorithms, dpop.max_age, dpop.leeway) == (("ES256",), 30, 2)
    assert dpop.replay is ledger
    assert dpop.nonces is not None
    assert built.constraints.require_dpop_issuers == {ISSUER}
    assert built.constraints.require_certificate
    assert built.constraints.client_cert_header == "X-SSL-Client-Cert"
    assert isinstance(built.introspector, Introspector)
    assert build_sender_settings({}).constraints.dpop is None
    assert build_sender_settings({"dpop": True}).constraints.dpop is not None


@pytest.mark.parametrize(
    "settings",
    [
        {"DPOP": "yes"},
        {"DPOP": {"ALGORITHMS": "ES256"}},
        {"DPOP": {"MAX_AGE": True}},
        {"DPOP": {"NONCE_SECRET": "short"}},
        {"DPOP": {"NONCE_PERIOD": 60}},
        {"DPOP": {"NONCE_SECRET": "s" * 32, "NONCE_PERIOD": float("nan")}},
        {"DPOP": {"NONCE_SECRET": "s" * 32, "NONCE_PERIOD": float("inf")}},
        {"DPOP": {"NONCE_SECRET": "s" * 32, "NONCE_PERIOD": 0}},
        {"DPOP": {"REPLAY": "redis"}},
        {"DPOP": {"ALGS": ["ES256"]}},
        {"REQUIRE_DPOP": "yes", "DPOP": True},
        {"REQUIRE_DPOP": True},
        {"REQUIRE_DPOP_ISSUERS": ISSUER, "DPOP": True},
        {"CLIENT_CERT_HEADER": 1, "TRUSTED_PROXIES": ["127.0.0.1"]},
        {"INTROSPECTION": {"ENDPOINT": "http://id.example.com/i", "CLIENT_ID": "rs"}},
        {"INTROSPECTION": {"URL": "https://id.example.com/i"}},
        {"INTROSPECTION": "https://id.example.com/i"},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        build_sender_settings(settings)
