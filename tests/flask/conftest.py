"""Fixtures for the Flask adapter: a local issuer, its settings, and the example app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples.flask_app import create_app
from jwkguard.testing import LocalIssuer


@pytest.fixture(scope="session")
def issuer() -> Iterator[LocalIssuer]:
    """A running local issuer shared by the Flask tests (never rotated or faulted here)."""
    with LocalIssuer() as local:
        yield local


def static_settings(issuer: LocalIssuer, **extra: Any) -> dict[str, Any]:
    """``JWKGUARD_*`` config that trusts ``issuer`` with its key set loaded up front."""
    return {
        "JWKGUARD_ISSUERS": [
            {"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}
        ],
        "JWKGUARD_ALGORITHMS": [issuer.alg],
        **extra,
    }


@pytest.fixture
def settings(issuer: LocalIssuer) -> dict[str, Any]:
    return static_settings(issuer)


@pytest.fixture
def app(settings: dict[str, Any]) -> Flask:
    """The example app trusting the shared issuer."""
    return create_app({**settings, "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def blank_app(settings: dict[str, Any]) -> Flask:
    """A bare app holding the settings, for tests that build their own routes."""
    app = Flask(__name__)
    app.config.update(settings, TESTING=True)
    return app
