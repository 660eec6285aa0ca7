"""Bearer extraction and error responses shared by every adapter (RFC 6750 sections 2 and 3)."""

from __future__ import annotations

import json

import pytest

from jwkguard import InsufficientScope, KeysUnavailable, TokenError, errors
from jwkguard.errors import InvalidRequest
from jwkguard.pipeline import (
    Credentials,
    error_response,
    extract_bearer,
    extract_credentials,
    missing_token_response,
)
from jwkguard.testing import SigningKey, mint_token

from ..conftest import ISSUER, FakeClock
from ..helpers import validator_trusting

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def _refusal(**kwargs: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        extract_bearer(**kwargs)  # type: ignore[arg-type]
    assert (caught.value.error, caught.value.status_code) == ("invalid_request", 400)
    return caught.value


def test_no_authorization_header_means_no_token() -> None:
    assert extract_bearer([]) is None


@pytest.mark.parametrize(
    "value",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"  Bearer   {TOKEN}  ",
    ],
)
def test_the_bearer_scheme_is_case_insensitive_and_whitespace_tolerant(value: str) -> None:
    assert extract_bearer([value]) == TOKEN


@pytest.mark.parametrize("token", ["abc==", "a-b_c.d~e+f/g", "x"])
def test_every_b64token_character_is_accepted(token: str) -> None:
    assert extract_bearer([f"Bearer {token}"]) == token


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Digest username=x", "Token abc"])
def test_other_schemes_carry_no_bearer_token(value: str) -> None:
    assert extract_bearer([value]) is None


@pytest.mark.parametrize(
    "value",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer a=b", "Bearer a,b", 'Bearer "abc"', "Bearer tök"],
)
def test_a_bearer_header_without_a_well_formed_token_is_a_bad_request(value: str) -> None:
    assert _refusal(authorization=[value]).reason == "malformed_authorization_header"


@pytest.mark.parametrize("space", ["\xa0", "\x85", "\x1c", "\x1f", "\x0b", "\x0c", "\u3000"])
def test_only_spaces_and_tabs_surround_a_token(space: str) -> None:
    """HTTP's optional whitespace is SP and HTAB: what Python's str.strip also removes (NBSP,
    NEL, the separators) is part of the value, so a gateway that matches the header exactly
    and jwkguard never see two spellings of one token."""
    for value in (f"Bearer {TOKEN}{space}", f"Bearer {space}{TOKEN}", f"Bearer {TOKEN} {space}"):
        assert _refusal(authorization=[value]).reason == "malformed_authorization_header"
    assert extract_bearer([f"{space}Bearer {TOKEN}"]) is None  # another scheme: no token
    assert extract_bearer([f"\t Bearer \t{TOKEN}\t "]) == TOKEN


def test_two_authorization_headers_are_a_bad_request() -> None:
    error = _refusal(authorization=[f"Bearer {TOKEN}", "Bearer other"])
    assert error.reason == "multiple_authorization_headers"


def test_a_query_token_is_refused_unless_allowed() -> None:
    assert _refusal(authorization=[], query_token=TOKEN).reason == "token_in_query"
    assert extract_bearer([], query_token=TOKEN, allow_query=True) == TOKEN


def test_a_token_in_two_places_is_a_bad_request() -> None:
    error = _refusal(authorization=[f"Bearer {TOKEN}"], query_token=TOKEN, allow_query=True)
    assert error.reason == "multiple_tokens"


def test_extract_bearer_ignores_dpop_while_extract_credentials_names_the_scheme() -> None:
    assert extract_bearer([f"DPoP {TOKEN}"]) is None
    assert extract_credentials([f"dpop {TOKEN}"]) == Credentials("DPoP", TOKEN)
    assert extract_credentials([f"Bearer {TOKEN}"]) == Credentials("Bearer", TOKEN)
    assert extract_credentials([], query_token=TOKEN, allow_query=True) == Credentials(
        "Bearer", TOKEN
    )


def test_missing_token_gets_a_bare_challenge_without_an_error_code() -> None:
    response = missing_token_response("orders")
    assert response.status_code == 401
    # RFC 6750 section 3.1: no error code when the request carried no credentials.
    assert response.headers == {"WWW-Authenticate": 'Bearer realm="orders"'}
    assert response.body["reason"] == "missing_token"


def test_an_invalid_token_gets_401_with_the_error_in_the_challenge() -> None:
    error = errors.ExpiredToken("The access token has expired", claim="exp")
    response = error_response(error)
    assert response.status_code == 401
    assert response.headers == {
        "WWW-Authenticate": (
            'Bearer realm="api", error="invalid_token", '
            'error_description="The access token has expired"'
        )
    }
    assert response.body == {
        "error": "invalid_token",
        "error_description": "The access token has expired",
        "reason": "expired",
    }
    assert json.loads(response.body_bytes()) == response.body
    assert response.body_bytes().startswith(b'{"error":"invalid_token","error_description"')


def test_a_bad_request_gets_400() -> None:
    response = error_response(InvalidRequest("Only one", reason="multiple_authorization_headers"))
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_insufficient_scope_gets_403_with_the_scopes_needed() -> None:
    error = InsufficientScope(required_scopes=frozenset({"write", "read"}))
    response = error_response(error, required_scopes=["admin"])
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"].endswith(
        'error="insufficient_scope", '
        'error_description="The access token lacks a required scope", scope="admin read write"'
    )


def test_the_scope_parameter_is_only_given_with_insufficient_scope() -> None:
    response = error_response(TokenError(), required_scopes=["read"])
    assert "scope=" not in response.headers["WWW-Authenticate"]


def test_no_keys_gets_503_with_retry_after_and_no_challenge() -> None:
    response = error_response(KeysUnavailable(retry_after=12))
    assert response.status_code == 503
    assert response.headers == {"Retry-After": "12"}
    assert response.body["reason"] == "keys_unavailable"


def test_challenge_values_cannot_break_out_of_their_quotes() -> None:
    error = TokenError('bad "quoted" \\ value\r\nX-Injected: 1')
    challenge = error_response(error, realm='a"b').headers["WWW-Authenticate"]
    assert challenge == (
        'Bearer realm="ab", error="invalid_token", '
        'error_description="bad quoted  valueX-Injected: 1"'
    )


def test_dpop_scheme_challenge_and_nonce() -> None:
    response = error_response(
        errors.UseDPoPNonce(nonce="n-1"), scheme="DPoP", challenge_params=[("algs", "ES256")]
    )
    assert response.headers["WWW-Authenticate"].startswith(
        'DPoP realm="api", error="use_dpop_nonce"'
    )
    assert response.headers["WWW-Authenticate"].endswith('algs="ES256"')
    assert response.headers["DPoP-Nonce"] == "n-1"


def test_a_real_refusal_maps_to_a_response_that_never_echoes_the_token(
    rsa_key: SigningKey, clock: FakeClock
) -> None:
    validator = validator_trusting(rsa_key, clock=clock)
    token = mint_token(
        rsa_key, issuer=ISSUER, audience="https://elsewhere.example.com", now=clock.now
    )
    with pytest.raises(TokenError) as caught:
        validator.validate(extract_bearer([f"Bearer {token}"]) or "")
    response = error_response(caught.value)
    assert response.status_code == 401
    assert response.body["reason"] == "audience_mismatch"
    assert token not in response.headers["WWW-Authenticate"]
    assert token.encode() not in response.body_bytes()


def _instances() -> list[TokenError]:
    made: list[TokenError] = []
    for name in errors.__all__:
        kind = getattr(errors, name)
        if not (isinstance(kind, type) and issubclass(kind, TokenError)):
            continue
        if kind is errors.UseDPoPNonce:
            made.append(kind(nonce="n"))
        else:
            made.append(kind())
    return made


@pytest.mark.parametrize("error", _instances(), ids=lambda error: type(error).__name__)
def test_every_token_error_carries_the_attributes_adapters_read(error: TokenError) -> None:
    assert isinstance(error.error, str)
    assert error.error
    assert error.status_code in (400, 401, 403, 503)
    assert isinstance(error.reason, str)
    assert error.reason
    assert error.claim is None or isinstance(error.claim, str)
    assert isinstance(error.description, str)
    assert error.description
    response = error_response(error)
    assert response.status_code == error.status_code
    assert response.body["reason"] == error.reason
