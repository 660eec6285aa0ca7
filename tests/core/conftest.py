"""Fixtures for the core tests: a validator factory and a minter for the suite's issuer, both on
the controllable clock, and the attack tables' context."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from jwkguard import Issuer, Validator
from jwkguard.testing import SigningKey

from ..conftest import AUDIENCE, ISSUER, FakeClock
from ..helpers import Mint, minter
from ._attacks import Context

Make = Callable[..., Validator]


@pytest.fixture
def make(rsa_key: SigningKey, clock: FakeClock) -> Make:
    """``make(issuer_options, **options)``: a validator trusting ``rsa_key`` for ``ISSUER``."""

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
    """``mint(**claims)``: a token from ``rsa_key`` for ``ISSUER``, issued at the clock's time."""
    return minter(rsa_key, clock)


@pytest.fixture(scope="module")
def ctx() -> Context:
    """The keys and validators of an attack table (tests/core/test_attacks_*.py), one per module."""
    return Context()
