"""Property tests: whatever arrives as a token, only ``TokenError`` ever leaves the validator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwkguard import Issuer, TokenError, Validator
from jwkguard.testing import SigningKey, b64url, generate_key, sign_compact

from ..conftest import AUDIENCE, ISSUER

NOW = 1_800_000_000
KEYS = {alg: generate_key(alg, kid=f"{alg}-1") for alg in ("RS256", "ES256", "EdDSA")}
SECRET = b"k" * 32
ISSUERS = [
    Issuer(
        ISSUER, audiences=[AUDIENCE], jwks={"keys": [dict(k.public_jwk) for k in KEYS.values()]}
    ),
    Issuer("https://hs.example.com", audiences=[AUDIENCE], secret=SECRET, secret_kid="hs"),
]
OPTIONS: dict[str, Any] = {
    "algorithms": ["RS256", "ES256", "EdDSA", "HS256"],
    "clock": lambda: float(NOW),
    "max_token_size": 4096,
}
VALIDATOR = Validator(issuers=ISSUERS, **OPTIONS)
# The same promise holds with the verified-token cache in front.
CACHED = Validator(issuers=ISSUERS, token_cache=True, **OPTIONS)
# One event loop for every example: asyncio.run() per example would dominate the run time.
RUNNER = asyncio.Runner()
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Structured examples cost more to generate (and to sign); fewer of them cover the shapes.
STRUCTURED_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=60)


def _only_token_errors(token: Any) -> None:
    """Validate with both drivers; anything but a TokenError (or success) fails the property."""
    outcomes: list[TokenError | None] = []
    runs = (
        VALIDATOR.validate,
        lambda t: RUNNER.run(VALIDATOR.avalidate(t)),
        CACHED.validate,
        lambda t: RUNNER.run(CACHED.avalidate(t)),
    )
    for run in runs:
        try:
            run(token)
        except TokenError as error:
            outcomes.append(error)
        else:
            outcomes.append(None)
    for error in outcomes:
        if error is not None:
            assert isinstance(error.reason, str)
            assert isinstance(error.description, str)
            assert error.reason
            assert error.description
            assert error.status_code in (400, 401, 403, 503)
    reasons = {error.reason if error else "valid" for error in outcomes}
    assert len(reasons) == 1, reasons


@PROPERTY_SETTINGS
@given(st.text(max_size=600))
def test_arbitrary_text_raises_only_token_errors(token: str) -> None:
    _only_token_errors(token)


@PROPERTY_SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_token_errors(token: bytes) -> None:
    _only_token_errors(token)
    _only_token_errors(bytearray(token))
    _only_token_errors(memoryview(token))


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.lists(st.text(max_size=5), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        st.tuples(st.text(max_size=5)),
        st.just(object()),
        st.just(memoryview(b"ab.cd.ef").cast("B", shape=[2, 4])),
    )
)
def test_values_that_are_not_text_raise_only_token_errors(token: Any) -> None:
    _only_token_errors(token)


B64URL = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=120
)


@PROPERTY_SETTINGS
@given(
    st.lists(B64URL, min_size=1, max_size=7).map(".".join),
)
def test_dotted_base64url_lookalikes_raise_only_token_errors(token: str) -> None:
    _only_token_errors(token)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
TIME_VALUES = st.one_of(
    st.integers(min_value=NOW - 10**6, max_value=NOW + 10**6),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
HEADERS = st.fixed_dictionaries(
    {"alg": st.sampled_from(["RS256", "ES256", "EdDSA", "HS256", "none", "PS256", "rs256"])},
    optional={
        "kid": st.one_of(
            st.sampled_from([f"{alg}-1" for alg in KEYS] + ["hs", "../x"]), JSON_VALUES
        ),
        "typ": st.one_of(
            st.sampled_from(["at+jwt", "JWT", "dpop+jwt", "application/at+jwt"]), JSON_VALUES
        ),
        "crit": JSON_VALUES,
        "b64": st.booleans(),
        "jwk": JSON_VALUES,
        "x5c": JSON_VALUES,
    },
)
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "iss": st.one_of(
            st.sampled_from([ISSUER, "https://hs.example.com", ISSUER.rstrip("/")]), JSON_VALUES
        ),
        "aud": st.one_of(
            st.just(AUDIENCE), st.lists(st.sampled_from([AUDIENCE, "x"]), max_size=3), JSON_VALUES
        ),
        "exp": TIME_VALUES,
        "nbf": TIME_VALUES,
        "iat": TIME_VALUES,
        "scope": JSON_VALUES,
        "scp": JSON_VALUES,
        "client_id": JSON_VALUES,
        "sub": JSON_VALUES,
    },
)


def _signed(header: dict[str, Any], payload: dict[str, Any], sign_with: str) -> str:
    if sign_with == "hs":
        return sign_compact(header, payload, secret=SECRET, alg="HS256")
    if sign_with in KEYS:
        key = KEYS[sign_with]
        unsigned = sign_compact(header, payload)
        return unsigned + b64url(key.sign(unsigned[:-1].encode()))
    return sign_compact(header, payload) + sign_with


@STRUCTURED_SETTINGS
@given(
    HEADERS,
    PAYLOADS,
    st.sampled_from([*KEYS, "hs", "", "AAAA", "c2ln"]),
)
def test_structured_random_tokens_raise_only_token_errors(
    header: dict[str, Any], payload: dict[str, Any], sign_with: str
) -> None:
    _only_token_errors(_signed(header, payload, sign_with))


@PROPERTY_SETTINGS
@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=80))
def test_random_segment_bytes_raise_only_token_errors(
    header: bytes, payload: bytes, signature: bytes
) -> None:
    _only_token_errors(".".join(b64url(part) for part in (header, payload, signature)))


@STRUCTURED_SETTINGS
@given(JSON_VALUES, JSON_VALUES)
def test_random_json_documents_raise_only_token_errors(header: Any, payload: Any) -> None:
    token = ".".join(b64url(json.dumps(part).encode()) for part in (header, payload, {"s": 1}))
    _only_token_errors(token)


@pytest.fixture(scope="module", autouse=True)
def _close_runner() -> Iterator[None]:
    yield
    RUNNER.close()


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_the_structured_generator_can_produce_valid_tokens(alg: str) -> None:
    """Guards the strategies above: a well-formed row of them does validate."""
    key: SigningKey = KEYS[alg]
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60, "iat": NOW, "sub": "s"}
    token = _signed({"alg": alg, "kid": key.kid, "typ": "at+jwt"}, payload, alg)
    assert VALIDATOR.validate(token).subject == "s"
    assert RUNNER.run(VALIDATOR.avalidate(token)).subject == "s"
