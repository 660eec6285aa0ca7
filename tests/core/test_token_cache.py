"""The verified-token cache: a hit skips the signature but re-checks time, keys, lifecycle."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwkguard import (
    Claims,
    ConfigurationError,
    Event,
    Issuer,
    TokenCache,
    TokenError,
    Validator,
    build_validator,
)
from jwkguard._algorithms import Verifier
from jwkguard._parse import _c_loads
from jwkguard._policy import ClaimsPolicy
from jwkguard._token_cache import _deep_size, validity_window
from jwkguard.errors import LifecycleError
from jwkguard.keys import KeySet
from jwkguard.keys._source import KeyMatch, key_not_found
from jwkguard.lifecycle import Lifecycle, LifecycleAdmin, LifecycleCheck, MemoryStore
from jwkguard.testing import LocalIssuer, SigningKey, generate_key, mint_token, sign_compact

from ..conftest import AUDIENCE, ISSUER, FakeClock


class SwappableKeySource:
    """A key source whose key set a test replaces, counting signature checks."""

    def __init__(self, key_set: KeySet) -> None:
        self.key_set = key_set
        self.verifications = 0
        self.lookups = 0

    def key_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        self.lookups += 1
        found = self.key_set.select(kid, alg)
        if found is None:
            raise key_not_found()
        key, verify = found
        return key, self._counting(verify)

    async def akey_for(self, kid: str | None, alg: str, now: float) -> KeyMatch:
        await asyncio.sleep(0)
        return self.key_for(kid, alg, now)

    def _counting(self, verify: Verifier) -> Verifier:
        def counted(signing_input: bytes, signature: bytes) -> bool:
            self.verifications += 1
            return verify(signing_input, signature)

        return counted

    def current_keys(self) -> KeySet:
        return self.key_set

    def warm_up(self) -> None:
        """Nothing to fetch."""

    async def awarm_up(self) -> None:
        """Nothing to fetch."""

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""


class SwappableValidator(Validator):
    """A validator whose issuers' keys come from a ``SwappableKeySource``."""

    def _key_source_for(self, issuer: Issuer) -> Any:
        keys = super()._key_source_for(issuer).current_keys()
        assert keys is not None
        return SwappableKeySource(keys)

    @property
    def source(self) -> SwappableKeySource:
        source = self.key_source(ISSUER)
        assert isinstance(source, SwappableKeySource)
        return source


class FakeLifecycle:
    """The lifecycle layer in miniature: revoked jtis and distrusted key thumbprints."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.distrusted: set[str] = set()
        self.checks = 0

    def check(self, claims: Claims, now: float) -> None:
        self.checks += 1
        if claims.token_id in self.revoked:
            raise LifecycleError("The access token has been revoked", reason="revoked")
        if claims.thumbprint in self.distrusted:
            raise LifecycleError("The signing key is not trusted", reason="key_distrusted")

    async def acheck(self, claims: Claims, now: float) -> None:
        await asyncio.sleep(0)
        self.check(claims, now)


def key_set_of(*keys: SigningKey) -> KeySet:
    return KeySet.from_jwks({"keys": [dict(key.public_jwk) for key in keys]}, ["RS256"])


@pytest.fixture
def lifecycle() -> FakeLifecycle:
    return FakeLifecycle()


def make_validator(
    rsa_key: SigningKey,
    clock: FakeClock,
    *,
    lifecycle: LifecycleCheck | None = None,
    cache: TokenCache | bool = True,
    **options: Any,
) -> SwappableValidator:
    return SwappableValidator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        clock=clock,
        lifecycle=lifecycle,
        token_cache=cache,
        **options,
    )


@pytest.fixture
def validator(
    rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> SwappableValidator:
    return make_validator(rsa_key, clock, lifecycle=lifecycle)


def mint(key: SigningKey, clock: FakeClock, **claims: Any) -> str:
    return mint_token(key, issuer=ISSUER, audience=AUDIENCE, now=clock.now, **claims)


def cache_of(validator: Validator) -> TokenCache:
    assert validator.token_cache is not None
    return validator.token_cache


# -- hits -------------------------------------------------------------------------------------


def test_a_repeated_token_is_verified_once_and_gets_equal_claims(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, scopes="a b", roles=["admin"], realm_access={"roles": ["x"]})
    first = validator.validate(token)
    second = validator.validate(token)
    assert validator.source.verifications == 1
    assert_same_claims(second, first)
    assert second.scopes == frozenset({"a", "b"})
    assert second.thumbprint == rsa_key.thumbprint
    assert second.roles == frozenset({"admin"})


def assert_same_claims(hit: Claims, full: Claims) -> None:
    """A hit's claims equal the full validation's in every accessor, and share no mutable
    value with them (each hit decodes the cached payload again)."""
    assert hit is not full
    assert dict(hit) == dict(full)
    assert {name: type(value) for name, value in hit.items()} == {
        name: type(value) for name, value in full.items()
    }
    assert dict(hit.header) == dict(full.header)
    assert (hit.key_id, hit.thumbprint, hit.scopes, hit.roles) == (
        full.key_id,
        full.thumbprint,
        full.scopes,
        full.roles,
    )
    assert (hit.subject, hit.issuer, hit.audiences, hit.expires_at, hit.client_id) == (
        full.subject,
        full.issuer,
        full.audiences,
        full.expires_at,
        full.client_id,
    )
    for name, value in hit.items():
        if isinstance(value, list | dict):
            assert value is not full[name]


def test_every_hit_of_a_token_comes_from_the_same_entry(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    full = validator.validate(token)
    hits = [validator.validate(token) for _ in range(3)]
    assert full._origin is None
    entry = cache_of(validator).get(token)
    assert entry is not None
    assert all(hit._origin is entry for hit in hits)


def test_payloads_orjson_would_read_differently_are_rebuilt_by_the_strict_decoder(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    # An integer beyond 64 bits: orjson would read a float, the strict decoder an int.
    token = mint(rsa_key, clock, big=2**70 + 1, nested={"a": [1, {"b": 2.5}]})
    first = validator.validate(token)
    entry = cache_of(validator).get(token)
    assert entry is not None
    assert entry.decode is not _c_loads
    second = validator.validate(token)
    assert second["big"] == 2**70 + 1
    assert type(second["big"]) is int
    assert_same_claims(second, first)
    assert validator.source.verifications == 1


def test_a_typical_entry_is_estimated_under_one_kib(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    # About 450 characters, nine claims: the issue's "typical 500-byte token".
    token = mint(rsa_key, clock, scope="orders:read orders:write profile", client_id="web-app")
    validator.validate(token)
    cache = cache_of(validator)
    entry = cache.get(token)
    assert entry is not None
    assert entry.decode is _c_loads
    # The header, the scope set and the member names are shared among tokens (counted once,
    # with the first entry that holds them): the rest is what each further token costs.
    shared = _deep_size(dict(entry.header)) + _deep_size(entry.scopes) + _deep_size(entry.names)
    assert entry.size - shared <= 1024
    assert entry.size == cache.size_bytes
    second = mint(rsa_key, clock, scope="orders:read orders:write profile", client_id="web-app")
    validator.validate(second)
    assert cache.size_bytes - entry.size <= 1024


def test_a_hit_answers_membership_without_decoding_its_payload(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock)  # no lifecycle checks: nothing reads the claims
    token = mint(rsa_key, clock, cnf={"jkt": "x"})
    full = validator.validate(token)
    hit = validator.validate(token)
    assert ("cnf" in hit, "act" in hit, 1 in hit) == (True, False, False)
    assert hit._decoded is None  # type: ignore[attr-defined]
    assert hit.scopes == full.scopes
    assert hit["cnf"] == {"jkt": "x"}
    assert hit._decoded is not None  # type: ignore[attr-defined]
    assert ("cnf" in hit, "act" in hit) == (True, False)
    assert ("cnf" in full, "act" in full, 1 in full) == (True, False, False)


@pytest.mark.anyio
async def test_avalidate_shares_the_cache_with_validate(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    first = validator.validate(token)
    assert_same_claims(await validator.avalidate(token), first)
    assert validator.source.verifications == 1


def test_str_and_bytes_forms_of_a_token_share_one_entry(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token.encode("ascii"))
    validator.validate(token)
    assert len(cache_of(validator)) == 1
    assert validator.source.verifications == 1


def test_every_hit_asks_the_key_source_and_runs_the_lifecycle_checks(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    token = mint(rsa_key, clock)
    for _ in range(3):
        validator.validate(token)
    assert validator.source.lookups == 3
    assert lifecycle.checks == 3


def test_the_cache_keeps_a_digest_of_the_token_never_the_token(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    cache = cache_of(validator)
    assert list(cache._entries) == [hashlib.sha256(token.encode()).digest()]
    signature = token.rsplit(".", 1)[1]
    texts = list(reachable_text(cache))
    assert any(isinstance(text, str) and text == ISSUER for text in texts)  # the walk works
    assert not any(signature in text for text in texts if isinstance(text, str))
    assert not any(signature.encode() in text for text in texts if isinstance(text, bytes))


def reachable_text(root: object, limit: int = 200_000) -> Iterator[str | bytes]:
    """Every str and bytes object reachable from ``root`` (bounded walk)."""
    seen: set[int] = set()
    pending = [root]
    while pending and len(seen) < limit:
        item = pending.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        if isinstance(item, str | bytes):
            yield item
            continue
        pending.extend(gc.get_referents(item))


def test_static_keys_serve_hits_until_the_token_expires(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = Validator(
        issuers=[Issuer(ISSUER, audiences=[AUDIENCE], jwks={"keys": [rsa_key.public_jwk]})],
        algorithms=["RS256"],
        clock=clock,
        token_cache=True,
    )
    token = mint(rsa_key, clock, lifetime=10)
    first = validator.validate(token)
    clock.advance(9)
    assert_same_claims(validator.validate(token), first)
    assert len(cache_of(validator)) == 1
    clock.advance(1)
    with pytest.raises(TokenError, match="expired"):
        validator.validate(token)
    assert len(cache_of(validator)) == 0


def test_the_cache_is_off_unless_asked_for(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, cache=False)
    token = mint(rsa_key, clock)
    validator.validate(token)
    validator.validate(token)
    assert validator.token_cache is None
    assert validator.source.verifications == 2


# -- time -------------------------------------------------------------------------------------


def test_a_token_that_expires_between_two_hits_is_refused_and_dropped(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, lifetime=60)
    validator.validate(token)
    clock.advance(59)
    validator.validate(token)
    clock.advance(1)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim) == ("expired", "exp")
    assert len(cache_of(validator)) == 0
    assert validator.source.verifications == 1


def test_leeway_applies_to_hits_as_to_full_validation(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, leeway=30)
    token = mint(rsa_key, clock, lifetime=60)
    validator.validate(token)
    clock.advance(89)
    validator.validate(token)
    clock.advance(1)
    with pytest.raises(TokenError, match="expired"):
        validator.validate(token)


def test_max_age_is_rechecked_on_a_hit(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, max_age=100)
    token = mint(rsa_key, clock, lifetime=3600)
    validator.validate(token)
    clock.advance(100)
    validator.validate(token)
    clock.advance(0.5)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim) == ("too_old", "iat")


def test_nbf_is_rechecked_when_the_clock_steps_back(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, nbf=int(clock.now) + 10, iat=int(clock.now) - 5)
    clock.advance(10)
    validator.validate(token)
    clock.advance(-1)  # e.g. an NTP step backwards
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert (caught.value.reason, caught.value.claim) == ("not_yet_valid", "nbf")
    assert len(cache_of(validator)) == 0


@settings(max_examples=150, deadline=None)
@given(
    exp=st.one_of(st.none(), st.integers(0, 4_000_000_000)),
    nbf=st.one_of(st.none(), st.integers(0, 4_000_000_000)),
    iat=st.one_of(st.none(), st.integers(0, 4_000_000_000), st.floats(0, 4e9)),
    leeway=st.sampled_from([0.0, 1.0, 30.0, 0.25]),
    max_age=st.one_of(st.none(), st.sampled_from([1.0, 60.0, 3600.5])),
    offset=st.floats(-200, 200),
)
def test_the_validity_window_agrees_with_check_times(
    exp: int | None,
    nbf: int | None,
    iat: float | None,
    leeway: float,
    max_age: float | None,
    offset: float,
) -> None:
    payload = {
        name: value
        for name, value in (("exp", exp), ("nbf", nbf), ("iat", iat))
        if value is not None
    }
    policy = ClaimsPolicy(
        issuer=ISSUER,
        audiences=frozenset({AUDIENCE}),
        leeway=leeway,
        required_claims=(),
        max_age=max_age,
        max_lifetime=None,
        scope_claim=None,
        required_scopes=frozenset(),
        allowed_client_ids=None,
        claim_checks=(),
    )
    valid_from, valid_until = validity_window(policy, payload)
    anchors = [float(v) for v in payload.values()] or [1_800_000_000.0]
    for anchor in anchors:
        for now in (anchor + offset, anchor + leeway, anchor - leeway, anchor + (max_age or 0)):
            try:
                policy.check_times(payload, now)
            except TokenError:
                passes = False
            else:
                passes = True
            assert (valid_from <= now < valid_until) == passes, (payload, now)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=50, deadline=None)
@given(payload=st.dictionaries(st.text(), json_values, max_size=12))
def test_the_size_estimate_never_undercounts(payload: dict[str, Any]) -> None:
    exact = 0
    pending: list[Any] = [payload]
    while pending:
        item = pending.pop()
        exact += sys.getsizeof(item)
        if isinstance(item, dict):
            pending += [*item, *item.values()]
        elif isinstance(item, list):
            pending += item
    assert _deep_size(payload) >= exact


# -- keys and lifecycle -----------------------------------------------------------------------


def test_a_key_removed_from_the_jwks_stops_cached_tokens_at_once(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    validator.source.key_set = key_set_of(generate_key("RS256", kid="rsa-2"))
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "unknown_key"
    assert len(cache_of(validator)) == 0


def test_a_key_replaced_under_the_same_kid_stops_cached_tokens(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    validator.source.key_set = key_set_of(generate_key("RS256", kid=rsa_key.kid))
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "bad_signature"
    assert len(cache_of(validator)) == 0


def test_a_token_revoked_after_caching_is_refused_and_dropped(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    assert claims.token_id is not None
    lifecycle.revoked.add(claims.token_id)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "revoked"
    assert len(cache_of(validator)) == 0
    with pytest.raises(TokenError, match="revoked"):
        validator.validate(token)
    assert len(cache_of(validator)) == 0


@pytest.mark.anyio
async def test_a_distrusted_key_stops_cached_tokens_in_async_code(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    token = mint(rsa_key, clock)
    await validator.avalidate(token)
    lifecycle.distrusted.add(rsa_key.thumbprint)
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token)
    assert caught.value.reason == "key_distrusted"
    assert len(cache_of(validator)) == 0
    lifecycle.distrusted.clear()
    await validator.avalidate(token)
    assert validator.source.verifications == 2


# -- with the real lifecycle layer and a real remote issuer -----------------------------------


@pytest.fixture
def fleet(
    rsa_key: SigningKey, clock: FakeClock
) -> tuple[SwappableValidator, LifecycleAdmin, list[Event]]:
    store = MemoryStore(clock=clock)
    events: list[Event] = []
    validator = make_validator(rsa_key, clock, lifecycle=Lifecycle(store))
    return validator, LifecycleAdmin(store, clock=clock, on_event=events.append), events


def test_lifecycle_revocation_reaches_a_cached_token(
    fleet: tuple[SwappableValidator, LifecycleAdmin, list[Event]],
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    validator, admin, _ = fleet
    token = mint(rsa_key, clock)
    claims = validator.validate(token)
    assert claims.token_id is not None
    admin.revoke_token(
        claims.token_id, issuer=ISSUER, expires_at=claims["exp"], by="ops", why="leaked"
    )
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "revoked"
    assert len(cache_of(validator)) == 0


def test_lifecycle_distrust_and_trust_of_the_signing_key(
    fleet: tuple[SwappableValidator, LifecycleAdmin, list[Event]],
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    validator, admin, _ = fleet
    token = mint(rsa_key, clock)
    validator.validate(token)
    admin.distrust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="ops", why="compromised")
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "key_distrusted"
    assert len(cache_of(validator)) == 0
    admin.trust_key(issuer=ISSUER, thumbprint=rsa_key.thumbprint, by="ops", why="false alarm")
    validator.validate(token)
    assert validator.source.verifications == 2


def test_lifecycle_subject_cut_off_reaches_a_cached_token(
    fleet: tuple[SwappableValidator, LifecycleAdmin, list[Event]],
    rsa_key: SigningKey,
    clock: FakeClock,
) -> None:
    validator, admin, _ = fleet
    token = mint(rsa_key, clock, subject="leaver")
    validator.validate(token)
    clock.advance(1)
    admin.cut_off_subject("leaver", issuer=ISSUER, by="hr", why="offboarded")
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "subject_cut_off"


def test_a_one_time_token_is_refused_on_its_second_use_even_from_the_cache(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    lifecycle = Lifecycle(MemoryStore(clock=clock), one_time=lambda claims: True)
    validator = make_validator(rsa_key, clock, lifecycle=lifecycle)
    token = mint(rsa_key, clock)
    validator.validate(token)
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "replayed"
    assert len(cache_of(validator)) == 0


@pytest.fixture
def remote(local_issuer: LocalIssuer, clock: FakeClock) -> Iterator[Validator]:
    with Validator(
        issuers=[local_issuer.issuer_config(jwks_uri=local_issuer.jwks_uri, cooldown=0)],
        algorithms=["RS256"],
        clock=clock,
        token_cache=True,
    ) as validator:
        yield validator


def test_a_key_retired_by_a_remote_issuer_stops_cached_tokens(
    remote: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote
    token = local_issuer.mint(now=clock.now)
    first = validator.validate(token)
    assert validator.validate(token)._origin is cache_of(validator).get(token)
    assert_same_claims(validator.validate(token), first)
    local_issuer.rotate(retire_old=True)
    validator.validate(local_issuer.mint(now=clock.now))  # the new kid: one refetch
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "unknown_key"
    assert cache_of(validator).get(token) is None
    assert len(cache_of(validator)) == 1


def test_a_remote_refresh_due_during_hits_still_happens(
    remote: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote
    token = local_issuer.mint(now=clock.now, lifetime=3600)
    validator.validate(token)
    fetches = local_issuer.requests["/jwks.json"]
    local_issuer.rotate(retire_old=True)
    clock.advance(301)  # past the JWK Set's max-age: the next lookup refreshes
    with pytest.raises(TokenError) as caught:
        validator.validate(token)
    assert caught.value.reason == "unknown_key"
    assert local_issuer.requests["/jwks.json"] > fetches


def test_keys_stale_past_max_stale_stop_cached_tokens(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    issuer = local_issuer.issuer_config(jwks_uri=local_issuer.jwks_uri, max_stale=60)
    with Validator(
        issuers=[issuer], algorithms=["RS256"], clock=clock, token_cache=True
    ) as validator:
        token = local_issuer.mint(now=clock.now, lifetime=3600)
        validator.validate(token)
        with local_issuer.outage():
            clock.advance(300 + 30)  # past max-age, within max_stale: the old keys serve
            validator.validate(token)
            clock.advance(60)
            with pytest.raises(TokenError) as caught:
                validator.validate(token)
        assert (caught.value.status_code, caught.value.reason) == (503, "keys_unavailable")
        assert len(cache_of(validator)) == 0


@pytest.mark.anyio
async def test_a_key_retired_by_a_remote_issuer_stops_cached_tokens_in_async_code(
    remote: Validator, local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    validator = remote
    token = local_issuer.mint(now=clock.now)
    first = await validator.avalidate(token)
    assert_same_claims(await validator.avalidate(token), first)
    local_issuer.rotate(retire_old=True)
    assert await validator.key_source(local_issuer.url).arefresh()  # type: ignore[attr-defined]
    with pytest.raises(TokenError) as caught:
        await validator.avalidate(token)
    assert caught.value.reason == "unknown_key"
    assert len(cache_of(validator)) == 0
    await validator.aclose()


# -- scopes -----------------------------------------------------------------------------------


def test_request_scopes_are_checked_on_every_hit_without_dropping_the_entry(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, scopes="orders:read")
    validator.validate(token, scopes=["orders:read"])
    with pytest.raises(TokenError) as caught:
        validator.validate(token, scopes=["orders:write"])
    assert (caught.value.error, caught.value.status_code) == ("insufficient_scope", 403)
    with pytest.raises(TokenError, match="scope"):
        validator.validate(token, scopes="orders:read orders:write")
    validator.validate(token, scopes=frozenset({"orders:read"}))
    assert len(cache_of(validator)) == 1
    assert validator.source.verifications == 1


# -- what never enters ------------------------------------------------------------------------


def test_failures_are_never_cached(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    other_key = generate_key("RS256", kid=rsa_key.kid)
    refused = [
        mint(other_key, clock),  # bad signature
        mint(rsa_key, clock, lifetime=-1),  # expired
        mint_token(rsa_key, issuer=ISSUER, audience="https://other.example", now=clock.now),
    ]
    for token in refused:
        for _ in range(2):
            with pytest.raises(TokenError):
                validator.validate(token)
    assert len(cache_of(validator)) == 0
    assert validator.source.verifications == 2 * len(refused)


def test_a_token_refused_by_the_lifecycle_on_first_sight_is_not_cached(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> None:
    lifecycle.distrusted.add(rsa_key.thumbprint)
    token = mint(rsa_key, clock)
    with pytest.raises(TokenError, match="not trusted"):
        validator.validate(token)
    assert len(cache_of(validator)) == 0


def test_a_token_lacking_request_scopes_on_first_sight_is_not_cached(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock, scopes="a")
    with pytest.raises(TokenError, match="scope"):
        validator.validate(token, scopes=["b"])
    assert len(cache_of(validator)) == 0


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "a.b",
        "a.b.c.d.e",
        "éé.éé.éé",
        "\udc80.x.y",
        b"\xff\xfe.x.y",
        "x" * 9000,
    ],
)
def test_malformed_tokens_never_enter(validator: SwappableValidator, token: str | bytes) -> None:
    for _ in range(2):
        with pytest.raises(TokenError):
            validator.validate(token)
    assert len(cache_of(validator)) == 0


def test_a_hit_for_a_tampered_copy_is_impossible(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    signature = token.rsplit(".", 1)[1]
    forged = sign_compact(
        {"alg": "RS256", "kid": rsa_key.kid, "typ": "at+jwt"},
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(clock.now) + 60, "sub": "admin"},
    )
    with pytest.raises(TokenError, match="signature"):
        validator.validate(f"{forged.rsplit('.', 1)[0]}.{signature}")
    assert len(cache_of(validator)) == 1


# -- bounds -----------------------------------------------------------------------------------


def test_capacity_evicts_the_entry_not_used_since_the_last_sweep(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_entries=3))
    cache = cache_of(validator)
    a, b, c, d, e = (mint(rsa_key, clock, subject=f"user-{n}") for n in range(5))
    for token in (a, b, c):
        validator.validate(token)
    validator.validate(a)  # a is used again: it gets a second chance
    validator.validate(d)
    assert [cache.get(token) is not None for token in (a, b, c, d)] == [True, False, True, True]
    validator.validate(e)
    assert [cache.get(token) is not None for token in (a, c, d, e)] == [True, False, True, True]
    assert len(cache) == 3


def test_expired_entries_are_evicted_before_used_ones(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_entries=2))
    cache = cache_of(validator)
    short = mint(rsa_key, clock, lifetime=10)
    long = mint(rsa_key, clock, lifetime=600)
    validator.validate(short)
    validator.validate(long)
    validator.validate(short)
    validator.validate(long)
    clock.advance(20)
    validator.validate(fresh := mint(rsa_key, clock))
    assert cache.get(short) is None
    assert cache.get(long) is not None
    assert cache.get(fresh) is not None


def test_the_memory_bound_holds(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_bytes=12_000))
    cache = cache_of(validator)
    tokens = [mint(rsa_key, clock, subject=f"user-{n}", note="x" * 500) for n in range(12)]
    for token in tokens:
        validator.validate(token)
        assert cache.size_bytes <= 12_000
    assert 2 <= len(cache) < len(tokens)
    assert cache.size_bytes == sum(entry.size for entry in cache._entries.values())
    assert cache.get(tokens[-1]) is not None


def test_an_entry_larger_than_the_whole_budget_is_not_cached(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_bytes=500))
    validator.validate(mint(rsa_key, clock))
    assert len(cache_of(validator)) == 0


# -- concurrency ------------------------------------------------------------------------------


def test_concurrent_hits_and_inserts_from_threads(rsa_key: SigningKey, clock: FakeClock) -> None:
    validator = make_validator(rsa_key, clock, cache=TokenCache(max_entries=8))
    cache = cache_of(validator)
    hot = mint(rsa_key, clock, subject="hot")
    cold = [mint(rsa_key, clock, subject=f"cold-{n}") for n in range(24)]
    validator.validate(hot)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def hammer(worker: int) -> None:
        try:
            start.wait(timeout=10)
            for round_ in range(150):
                assert validator.validate(hot).subject == "hot"
                token = cold[(worker * 7 + round_) % len(cold)]
                assert validator.validate(token).subject is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(cache) <= 8
    assert cache.size_bytes == sum(entry.size for entry in cache._entries.values())
    live = [slot for slot in cache._ring if slot is not None]
    assert sorted(id(entry) for entry in live) == sorted(id(e) for e in cache._entries.values())


@pytest.mark.anyio
async def test_concurrent_hits_from_tasks(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    first = await validator.avalidate(token)
    results = await asyncio.gather(*(validator.avalidate(token) for _ in range(200)))
    for claims in results:
        assert_same_claims(claims, first)
    assert validator.source.verifications == 1


# -- configuration ----------------------------------------------------------------------------


def test_one_cache_cannot_serve_two_validators(rsa_key: SigningKey, clock: FakeClock) -> None:
    shared = TokenCache()
    make_validator(rsa_key, clock, cache=shared)
    with pytest.raises(ConfigurationError, match="one Validator"):
        make_validator(rsa_key, clock, cache=shared)


@pytest.mark.parametrize(
    "value",
    [0, "yes", TokenCache, {"max_entries": 10, "ttl": 5}, {"max_entries": 0}, {"max_bytes": 1.5}],
)
def test_bad_cache_settings_fail_at_start_up(
    rsa_key: SigningKey, clock: FakeClock, value: Any
) -> None:
    with pytest.raises(ConfigurationError):
        make_validator(rsa_key, clock, cache=value)


def test_the_cache_can_be_configured_from_a_settings_mapping(rsa_key: SigningKey) -> None:
    validator = build_validator(
        {
            "ISSUERS": [
                {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"keys": [rsa_key.public_jwk]}}
            ],
            "ALGORITHMS": ["RS256"],
            "TOKEN_CACHE": {"MAX_ENTRIES": 50, "max_bytes": 1_000_000},
        }
    )
    cache = cache_of(validator)
    assert (cache.max_entries, cache.max_bytes) == (50, 1_000_000)


def test_clear_empties_the_cache(
    validator: SwappableValidator, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = mint(rsa_key, clock)
    validator.validate(token)
    cache_of(validator).clear()
    assert (len(cache_of(validator)), cache_of(validator).size_bytes) == (0, 0)
    validator.validate(token)
    assert validator.source.verifications == 2
