"""Fixtures for the FastAPI and Starlette adapter: a real local issuer and its validators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jwkguard import Issuer, Validator
from jwkguard.testing import LocalIssuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """A real issuer on 127.0.0.1 (discovery and JWKS over HTTP), shared by a module."""
    with LocalIssuer() as local:
        yield local


@pytest.fixture
def static_validator(issuer: LocalIssuer) -> Validator:
    """A validator holding the issuer's current JWK Set (no network)."""
    return Validator(
        issuers=[Issuer(issuer.url, audiences=[issuer.audience], jwks=issuer.jwks())],
        algorithms=["RS256"],
    )


@pytest.fixture
def validator(static_validator: Validator) -> Validator:
    """The validator most tests use."""
    return static_validator


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}
