"""Fixtures of the token-cache tests."""

from __future__ import annotations

import pytest

from jwkguard.testing import SigningKey

from ...conftest import FakeClock
from .kit import FakeLifecycle, SwappableValidator, make_validator


@pytest.fixture
def lifecycle() -> FakeLifecycle:
    return FakeLifecycle()


@pytest.fixture
def validator(
    rsa_key: SigningKey, clock: FakeClock, lifecycle: FakeLifecycle
) -> SwappableValidator:
    return make_validator(rsa_key, clock, lifecycle=lifecycle)
