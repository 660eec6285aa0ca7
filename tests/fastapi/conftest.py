"""Fixtures for the FastAPI and Starlette adapter: a real local issuer and its validators."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jwkguard import Issuer, Validator
from jwkguard.testing import LocalIssuer

from ..servers import ASGIServer


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
def validator(issuer: LocalIssuer) -> Iterator[Validator]:
    """The validator most tests use: keys found by discovery and fetched over HTTP."""
    remote = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
    yield remote
    remote.close()


class ServedApp(ASGIServer):
    """An ASGI app served by uvicorn in a background thread on 127.0.0.1, with WebSockets,
    its lifespan run, and uvicorn's default trust of proxy headers from 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, ws="websockets-sansio", lifespan="on", proxy_headers=True)
