"""Claim checks (RFC 7519 section 4.1, RFC 9068) and the ``Claims`` result."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from jwkguard import Claims, InsufficientScope, Issuer, TokenError, Validator, errors
from jwkguard.testing import SigningKey, generate_key, mint_token

from ..conftest import AUDIENCE, ISSUER, FakeClock

Make = Callable[..., Validator]
Mint = Callable[..., str]


@pytest.fixture
def make(rsa_key: SigningKey, clock: FakeClock) -> Make:
    def build(issuer_options: Mapping[str, Any] | None = None, **options: Any) -> Validator:
        issuer_args: dict[str, Any] = {
            "audiences": [AUDIENCE],
            "jwks": {"keys": [rsa_key.public_jwk]},
        }
        issuer_args.update(issuer_options or {})
        options.setdefault("algorithms", ["RS256"])
        options.setdefault("clock", clock)
        return Validator(issuers=[Issuer(ISSUER, **issuer_args)], **options)

    return build


@pytest.fixture
def mint(rsa_key: SigningKey, clock: FakeClock) -> Mint:
    def build(**claims: Any) -> str:
        claims.setdefault("issuer", ISSUER)
        claims.setdefault("audience", AUDIENCE)
        claims.setdefault("now", clock.now)
        return mint_token(rsa_key, **claims)

    return build


def _refusal(validator: Validator, token: str, **kwargs: Any) -> TokenError:
    with pytest.raises(TokenError) as caught:
        validator.validate(token, **kwargs)
    return caught.value


# -- the result --------------------------------------------------------------------------------


def test_claims_expose_the_registered_claims_with_types(
    make: Make, mint: Mint, clock: FakeClock, rsa_key: SigningKey
) -> None:
    token = mint(scopes="a b", jti="id-1", client_id="web", lifetime=300)
    claims = make().validate(token)
    assert isinstance(claims, Claims)
    assert claims.subject == "user-123"
    assert claims.issuer == ISSUER
    assert claims.audiences == (AUDIENCE,)
    assert claims.scopes == frozenset({"a", "b"})
    assert claims.token_id == "id-1"
    assert claims.client_id == "web"
    assert claims.expires_at == datetime.fromtimestamp(int(clock.now) + 300, UTC)
    assert claims.issued_at == datetime.fromtimestamp(int(clock.now), UTC)
    assert claims.not_before == claims.issued_at
    assert claims.key_id == rsa_key.kid
    assert claims.thumbprint == rsa_key.thumbprint
    assert claims.header == {"alg": "RS256", "typ": "at+jwt", "kid": rsa_key.kid}


def test_claims_are_a_read_only_mapping_of_the_payload(make: Make, mint: Mint) -> None:
    claims = make().validate(mint(custom={"nested": [1, 2]}))
    assert claims["custom"] == {"nested": [1, 2]}
    assert "sub" in claims
    assert dict(claims)["sub"] == "user-123"
    assert len(claims) == len(dict(claims))
    with pytest.raises(TypeError):
        claims["sub"] = "admin"  # type: ignore[index]
    with pytest.raises(TypeError):
        claims.header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(AttributeError):
        claims.subject = "admin"  # type: ignore[misc]


def test_claims_repr_does_not_contain_the_token(make: Make, mint: Mint) -> None:
    token = mint()
    claims = make().validate(token)
    assert token not in repr(claims)
    assert "user-123" in repr(claims)


def test_audiences_are_a_tuple_whether_aud_is_a_string_or_a_list(make: Make, mint: Mint) -> None:
    claims = make().validate(mint(audience=["https://other.example.com", AUDIENCE]))
    assert claims.audiences == ("https://other.example.com", AUDIENCE)


def test_optional_accessors_are_none_when_absent_or_of_another_type(make: Make, mint: Mint) -> None:
    claims = make(required_claims=()).validate(mint(omit=("jti", "exp", "iat", "nbf"), sub=5))
    assert (claims.subject, claims.token_id, claims.expires_at, claims.issued_at) == (
        None,
        None,
        None,
        None,
    )
    assert claims.client_id is None


@pytest.mark.anyio
async def test_avalidate_gives_the_same_claims_and_the_same_refusals(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    validator = make()
    token = mint(scopes="a")
    assert dict(await validator.avalidate(token)) == dict(validator.validate(token))
    clock.advance(301)
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token)
    assert caught.value.reason == _refusal(validator, token).reason == "expired"


# -- exp, nbf, iat ---------------------------------------------------------------------------


def test_exp_is_exclusive(make: Make, mint: Mint, clock: FakeClock) -> None:
    validator, token = make(), mint(lifetime=60)
    clock.advance(59)
    assert validator.validate(token)
    clock.advance(1)  # now == exp: RFC 7519 section 4.1.4 says "on or after"
    error = _refusal(validator, token)
    assert (error.reason, error.claim, error.status_code, error.error) == (
        "expired",
        "exp",
        401,
        "invalid_token",
    )
    assert isinstance(error, errors.ExpiredToken)


def test_leeway_extends_exp(make: Make, mint: Mint, clock: FakeClock) -> None:
    validator, token = make(leeway=30), mint(lifetime=60)
    clock.advance(89)
    assert validator.validate(token)
    clock.advance(1)
    assert _refusal(validator, token).reason == "expired"


def test_exp_is_required_by_default(make: Make, mint: Mint) -> None:
    error = _refusal(make(), mint(omit=("exp",)))
    assert (error.reason, error.claim) == ("missing_claim", "exp")


def test_exp_may_be_made_optional(make: Make, mint: Mint) -> None:
    assert make(required_claims=()).validate(mint(omit=("exp",)))


@pytest.mark.parametrize("missing", ["jti", "sub"])
def test_required_claims_must_be_present(make: Make, mint: Mint, missing: str) -> None:
    error = _refusal(make(required_claims=("exp", "jti", "sub")), mint(omit=(missing,)))
    assert (error.reason, error.claim) == ("missing_claim", missing)


def test_nbf_in_the_future_is_refused_unless_within_leeway(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    token = mint(nbf=int(clock.now) + 10)
    error = _refusal(make(), token)
    assert (error.reason, error.claim) == ("not_yet_valid", "nbf")
    assert make(leeway=10).validate(token)
    clock.advance(10)  # now == nbf is valid
    assert make().validate(token)


def test_iat_in_the_future_is_refused_unless_within_leeway(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    token = mint(iat=int(clock.now) + 5, nbf=int(clock.now))
    error = _refusal(make(), token)
    assert (error.reason, error.claim) == ("issued_in_future", "iat")
    assert make(leeway=5).validate(token)


def test_float_times_are_accepted(make: Make, mint: Mint, clock: FakeClock) -> None:
    token = mint(exp=clock.now + 0.5, iat=clock.now - 0.5, nbf=clock.now - 0.25)
    assert make().validate(token)["exp"] == clock.now + 0.5


@pytest.mark.parametrize(
    ("exp", "reason"),
    [(0, "expired"), (253402300799, None), (253402300800, "invalid_claim"), (-1, "invalid_claim")],
)
def test_exp_range_is_sane(make: Make, mint: Mint, exp: int, reason: str | None) -> None:
    token = mint(exp=exp)
    if reason is None:
        assert make().validate(token).expires_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    else:
        assert _refusal(make(), token).reason == reason


def test_max_age_counts_from_iat(make: Make, mint: Mint, clock: FakeClock) -> None:
    validator, token = make(max_age=100), mint(lifetime=3600)
    clock.advance(100)
    assert validator.validate(token)
    clock.advance(1)
    error = _refusal(validator, token)
    assert (error.reason, error.claim) == ("too_old", "iat")


def test_max_age_needs_iat(make: Make, mint: Mint) -> None:
    error = _refusal(make(max_age=100), mint(omit=("iat",)))
    assert (error.reason, error.claim) == ("missing_claim", "iat")


def test_max_lifetime_limits_exp_minus_iat(make: Make, mint: Mint) -> None:
    assert make(max_lifetime=300).validate(mint(lifetime=300))
    error = _refusal(make(max_lifetime=300), mint(lifetime=301))
    assert (error.reason, error.claim) == ("lifetime_too_long", "exp")


def test_max_lifetime_uses_nbf_without_iat_and_needs_one_of_them(make: Make, mint: Mint) -> None:
    assert _refusal(make(max_lifetime=300), mint(lifetime=301, omit=("iat",))).reason == (
        "lifetime_too_long"
    )
    error = _refusal(make(max_lifetime=300), mint(omit=("iat", "nbf")))
    assert (error.reason, error.claim) == ("missing_claim", "iat")


# -- iss and aud -----------------------------------------------------------------------------


def test_several_issuers_each_with_their_own_keys_and_audiences(
    rsa_key: SigningKey, ec_key: SigningKey, clock: FakeClock
) -> None:
    other = "https://other.example.com"
    validator = Validator(
        issuers=[
            Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]}),
            Issuer(other, audiences=["urn:other"], jwks={"keys": [ec_key.public_jwk]}),
        ],
        algorithms=["RS256", "ES256"],
        clock=clock,
    )
    assert validator.validate(mint_token(ec_key, issuer=other, audience="urn:other", now=clock.now))
    # The unverified iss only picks an issuer; that issuer's keys and audiences then apply.
    crossed_key = mint_token(rsa_key, issuer=other, audience="urn:other", now=clock.now)
    assert _refusal(validator, crossed_key).reason == "unknown_key"
    crossed_audience = mint_token(ec_key, issuer=other, audience=AUDIENCE, now=clock.now)
    assert _refusal(validator, crossed_audience).reason == "audience_mismatch"


def test_a_token_signed_by_another_key_with_a_trusted_kid_is_a_bad_signature(
    make: Make, clock: FakeClock, rsa_key: SigningKey
) -> None:
    impostor = generate_key("RS256", kid=rsa_key.kid)
    token = mint_token(impostor, issuer=ISSUER, audience=AUDIENCE, now=clock.now)
    error = _refusal(make(), token)
    assert (error.reason, error.description) == (
        "bad_signature",
        "The access token signature is invalid",
    )


def test_any_configured_audience_is_enough(make: Make, mint: Mint) -> None:
    validator = make({"audiences": ["urn:a", AUDIENCE]})
    assert validator.validate(mint(audience=["urn:b", AUDIENCE]))
    assert validator.validate(mint(audience="urn:a"))
    assert _refusal(validator, mint(audience=["urn:b"])).reason == "audience_mismatch"


def test_issuer_without_audiences_skips_aud_but_checks_the_client(make: Make, mint: Mint) -> None:
    validator = make({"audiences": None, "allowed_client_ids": ["web"]})
    assert validator.validate(mint(audience=None, client_id="web"))
    assert validator.validate(mint(audience="anything", client_id="web"))


# -- client_id / azp ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason", "claim"),
    [
        ({"client_id": "web"}, None, None),
        ({"azp": "web"}, None, None),
        ({"client_id": "web", "azp": "other"}, None, None),
        ({"client_id": "other", "azp": "web"}, "client_not_allowed", "client_id"),
        ({"azp": "other"}, "client_not_allowed", "azp"),
        ({}, "missing_claim", "client_id"),
        ({"client_id": ["web"]}, "invalid_claim", "client_id"),
        ({"azp": 1}, "invalid_claim", "azp"),
    ],
)
def test_allowed_client_ids_read_client_id_then_azp(
    make: Make, mint: Mint, claims: dict[str, Any], reason: str | None, claim: str | None
) -> None:
    validator = make({"allowed_client_ids": ["web", "cli"]})
    token = mint(**claims)
    if reason is None:
        assert validator.validate(token)
    else:
        error = _refusal(validator, token)
        assert (error.reason, error.claim) == (reason, claim)


# -- scopes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "scope_claim", "granted"),
    [
        ({"scope": "a b  c"}, None, {"a", "b", "c"}),
        # RFC 6749 section 3.3: only SP separates; other whitespace is part of a scope token.
        ({"scope": "read\tadmin"}, None, {"read\tadmin"}),
        ({"scope": "read\u00a0admin"}, None, {"read\u00a0admin"}),
        ({"scope": "read\nadmin "}, None, {"read\nadmin"}),
        ({"scp": "read\u2003admin"}, None, {"read\u2003admin"}),
        ({"scp": ["a", "b"]}, None, {"a", "b"}),
        ({"scp": "a b"}, None, {"a", "b"}),
        ({"scope": "a", "scp": ["b"]}, None, {"a", "b"}),
        ({"scope": ["a", "b"]}, None, {"a", "b"}),  # some issuers send a list
        ({"scope": 7}, None, set()),
        ({"scp": [1, "b", None]}, None, {"b"}),
        ({"permissions": ["read:orders"]}, "permissions", {"read:orders"}),
        ({"realm_access": {"roles": ["admin"]}}, "realm_access.roles", {"admin"}),
        ({"realm_access": ["admin"]}, "realm_access.roles", set()),
        ({"cognito:groups": ["ops"]}, "cognito:groups", {"ops"}),
        ({"scope": "ignored", "permissions": "p q"}, "permissions", {"p", "q"}),
    ],
)
def test_scopes_are_read_where_the_issuer_publishes_them(
    make: Make, mint: Mint, claims: dict[str, Any], scope_claim: str | None, granted: set[str]
) -> None:
    validator = make({"scope_claim": scope_claim})
    assert validator.validate(mint(**claims)).scopes == frozenset(granted)


@pytest.mark.parametrize(
    "separator", ["\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"]
)
def test_a_scope_glued_by_whitespace_other_than_sp_grants_neither_scope(
    make: Make, mint: Mint, separator: str
) -> None:
    """RFC 6749 section 3.3: ``read<TAB>admin`` is one (odd) scope, not ``read`` and ``admin``."""
    validator = make()
    token = mint(scopes=f"read{separator}admin")
    for wanted in ("admin", "read"):
        error = _refusal(validator, token, scopes=[wanted])
        assert (error.status_code, error.error) == (403, "insufficient_scope")
    assert validator.validate(token).scopes == frozenset({f"read{separator}admin"})


def test_required_scopes_given_as_a_string_split_on_sp_alone(make: Make, mint: Mint) -> None:
    validator = make()
    assert validator.validate(mint(scopes="read write"), scopes="read  write").scopes
    error = _refusal(validator, mint(scopes="read write"), scopes="read\twrite")
    assert error.error == "insufficient_scope"


def test_validator_required_scopes_refuse_with_403_insufficient_scope(
    make: Make, mint: Mint
) -> None:
    validator = make(required_scopes=["read", "write"])
    assert validator.validate(mint(scopes="read write extra"))
    error = _refusal(validator, mint(scopes="read"))
    assert isinstance(error, InsufficientScope)
    assert (error.error, error.status_code, error.reason, error.claim) == (
        "insufficient_scope",
        403,
        "insufficient_scope",
        "scope",
    )
    assert error.required_scopes == frozenset({"read", "write"})


@pytest.mark.parametrize("scopes", [["read"], ("read",), frozenset({"read"}), "read", "read  "])
def test_per_request_scopes_in_any_collection_or_a_space_separated_string(
    make: Make, mint: Mint, scopes: Any
) -> None:
    validator = make()
    assert validator.validate(mint(scopes="read"), scopes=scopes)
    assert _refusal(validator, mint(scopes="write"), scopes=scopes).reason == "insufficient_scope"


def test_a_string_of_scopes_is_split_not_read_as_characters(make: Make, mint: Mint) -> None:
    error = _refusal(make(), mint(scopes="r e a d"), scopes="read")
    assert isinstance(error, InsufficientScope)
    assert error.required_scopes == frozenset({"read"})


# -- custom checks ---------------------------------------------------------------------------


def test_custom_checks_of_validator_and_issuer_both_run(make: Make, mint: Mint) -> None:
    seen: list[str] = []

    def on_validator(payload: Mapping[str, Any]) -> None:
        seen.append("validator")

    def on_issuer(payload: Mapping[str, Any]) -> bool:
        seen.append("issuer")
        return payload.get("tenant") == "acme"

    validator = make({"claim_checks": [on_issuer]}, claim_checks=[on_validator])
    assert validator.validate(mint(tenant="acme"))
    assert seen == ["validator", "issuer"]
    assert _refusal(validator, mint(tenant="evil")).reason == "custom_check_failed"


def test_a_custom_check_may_raise_its_own_token_error(make: Make, mint: Mint) -> None:
    def check(payload: Mapping[str, Any]) -> None:
        raise errors.InvalidClaim("Wrong tenant", reason="wrong_tenant", claim="tenant")

    error = _refusal(make(claim_checks=[check]), mint())
    assert (error.reason, error.claim, error.description) == (
        "wrong_tenant",
        "tenant",
        "Wrong tenant",
    )


def test_a_crashing_custom_check_refuses_the_token_and_is_logged(
    make: Make, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    def check(payload: Mapping[str, Any]) -> None:
        raise KeyError("tenant")

    with caplog.at_level(logging.ERROR, logger="jwkguard.claims"):
        error = _refusal(make(claim_checks=[check]), mint())
    assert error.reason == "custom_check_failed"
    assert "custom claim check" in caplog.text


# -- lifecycle hook --------------------------------------------------------------------------


class _Recorder:
    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[str, str | None, float]] = []
        self.refuse = refuse

    def check(self, claims: Claims, now: float) -> None:
        self.calls.append(("sync", claims.token_id, now))
        if self.refuse:
            raise errors.LifecycleError("The access token was revoked", reason="revoked")

    async def acheck(self, claims: Claims, now: float) -> None:
        self.calls.append(("async", claims.token_id, now))
        if self.refuse:
            raise errors.LifecycleError("The access token was revoked", reason="revoked")


@pytest.mark.anyio
async def test_lifecycle_checks_run_after_the_claims_in_both_drivers(
    make: Make, mint: Mint, clock: FakeClock
) -> None:
    recorder = _Recorder()
    validator = make(lifecycle=recorder)
    validator.validate(mint(jti="t1"))
    await validator.avalidate(mint(jti="t2"))
    assert recorder.calls == [("sync", "t1", clock.now), ("async", "t2", clock.now)]
    # A token refused by the claims never reaches the lifecycle checks.
    _refusal(validator, mint(jti="t3", audience="urn:other"))
    assert len(recorder.calls) == 2


def test_a_lifecycle_refusal_is_a_token_error(make: Make, mint: Mint) -> None:
    assert _refusal(make(lifecycle=_Recorder(refuse=True)), mint()).reason == "revoked"


# -- confirmation (cnf, RFC 7800) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "cnf",
    [
        {
            "jwk": {
                "kty": "EC",
                "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            }
        },  # RFC 7800 section 3.2
        {"jwe": "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkExMjhDQkMtSFMyNTYifQ.x.y.z.w"},
        {"kid": "dfd1aa97-6d8d-4575-a0fe-34b96de2bfad"},
        {"jku": "https://keys.example.com/jwks", "kid": "k1"},
        {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "jwk": {"kty": "EC"}},
        {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2", "osc": "x"},
        {"future-method": "x"},
        {"jkt": {"value": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}},
        {"jkt": ["0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"]},
        {"jkt": 1},
        {"jkt": None},
        {"jkt": ""},
        {"x5t#S256": ["bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"]},
        {"x5t#S256": None},
        {},
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        ["jkt"],
        None,
        True,
        0,
    ],
    ids=repr,
)
def test_a_confirmation_that_cannot_be_enforced_refuses_the_token(
    make: Make, mint: Mint, cnf: Any
) -> None:
    """A ``cnf`` means the issuer bound the token: one we cannot check is never a bearer token."""
    error = _refusal(make(), mint(cnf=cnf))
    assert isinstance(error, errors.InvalidClaim)
    assert (error.status_code, error.error, error.reason, error.claim) == (
        401,
        "invalid_token",
        "cnf_unsupported",
        "cnf",
    )


@pytest.mark.parametrize(
    "cnf",
    [
        {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
        {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
        {
            "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
            "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2",
        },
    ],
)
def test_an_enforceable_confirmation_passes_validation_for_the_sender_check(
    make: Make, mint: Mint, cnf: dict[str, str]
) -> None:
    """``jkt`` and ``x5t#S256`` pass the validator; ``SenderConstraints`` then enforces them."""
    assert make().validate(mint(cnf=cnf))["cnf"] == cnf


def test_a_refused_confirmation_is_refused_again_and_never_cached_as_valid(
    make: Make, mint: Mint
) -> None:
    validator = make(token_cache=True)
    token = mint(cnf={"jwk": {"kty": "EC"}})
    for _ in range(2):
        assert _refusal(validator, token).reason == "cnf_unsupported"
