"""The default size limit: large legitimate tokens pass, anything past 32 KiB is refused unread."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from jwkguard import Issuer, Validator
from jwkguard.errors import MalformedToken
from jwkguard.testing import SigningKey

from ..conftest import AUDIENCE, ISSUER
from ..helpers import mint

DEFAULT = 32 * 1024


@pytest.fixture(scope="module")
def validator(rsa_key: SigningKey) -> Validator:
    return _validator(rsa_key)


def _validator(key: SigningKey, **options: Any) -> Validator:
    jwks = {"keys": [dict(key.public_jwk)]}
    issuer = Issuer(ISSUER, audiences=[AUDIENCE], jwks=jwks)
    return Validator(issuers=[issuer], algorithms=["RS256"], **options)


def _token(key: SigningKey, padding: int = 0, **claims: Any) -> str:
    return mint(key, pad="x" * padding, **claims)


def _sized(key: SigningKey, predicate: Any, start: int) -> str:
    """The first token, growing its padding one byte at a time from ``start``, that fits."""
    for padding in range(start, start + 64):
        token = _token(key, padding)
        if predicate(len(token)):
            return token
    raise AssertionError("no padding gave the size asked for")


def test_the_default_is_32_kib(validator: Validator) -> None:
    assert validator.max_token_size == DEFAULT
    default = inspect.signature(Validator).parameters["max_token_size"].default
    assert default == DEFAULT


def test_an_8_kb_token_with_500_roles_passes_by_default(
    validator: Validator, rsa_key: SigningKey
) -> None:
    roles = [f"role-{index:03d}" for index in range(500)]
    token = _token(rsa_key, roles=roles)
    assert 8192 < len(token) < 9000  # past the old 8 KiB default, as Keycloak and Entra mint
    assert list(validator.validate(token)["roles"]) == roles


def test_the_largest_token_within_the_bound_passes(
    validator: Validator, rsa_key: SigningKey
) -> None:
    base = len(_token(rsa_key))
    # base64url turns 3 bytes into 4: start a little below the bound and grow.
    token = _sized(rsa_key, lambda size: size > DEFAULT - 4, (DEFAULT - base) * 3 // 4 - 8)
    assert DEFAULT - 4 < len(token) <= DEFAULT
    assert validator.validate(token)["sub"] == "user-123"


def test_a_token_just_over_the_bound_is_refused_before_parsing(
    validator: Validator, rsa_key: SigningKey
) -> None:
    base = len(_token(rsa_key))
    token = _sized(rsa_key, lambda size: size > DEFAULT, (DEFAULT - base) * 3 // 4 - 8)
    assert DEFAULT < len(token) <= DEFAULT + 4
    for candidate in (token, token.encode()):
        with pytest.raises(MalformedToken) as caught:
            validator.validate(candidate)
        assert caught.value.reason == "token_too_large"
        assert caught.value.status_code == 401
    # The same token under a limit that admits it: its size was the only reason.
    assert _validator(rsa_key, max_token_size=len(token)).validate(token)["sub"] == "user-123"


@pytest.mark.anyio
async def test_the_async_path_refuses_the_same(validator: Validator) -> None:
    with pytest.raises(MalformedToken) as caught:
        await validator.avalidate("e" * (DEFAULT + 1))
    assert caught.value.reason == "token_too_large"
