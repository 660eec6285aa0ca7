"""Test helpers: fake claims without keys, and an app pointed at a local issuer.

Example::

    from jwkguard.testing import make_claims
    from jwkguard_flask.testing import fake_claims

    def test_orders(app):
        with fake_claims(app, make_claims(scopes=["orders:read"])):
            assert app.test_client().get("/orders").status_code == 200
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from jwkguard import Claims, Validator
from jwkguard.testing import fake_pipeline

from ._config import GuardState
from ._request import EXTENSION_KEY, state_of

__all__ = ["fake_claims", "use_validator"]


@contextmanager
def _swapped(app: Flask, state: GuardState) -> Iterator[None]:
    real = state_of(app)
    app.extensions[EXTENSION_KEY] = state
    try:
        yield
    finally:
        if app.extensions.get(EXTENSION_KEY) is state:
            app.extensions[EXTENSION_KEY] = real


@contextmanager
def fake_claims(app: Flask, claims: Claims) -> Iterator[None]:
    """Inside the block every request to ``app`` judged by jwkguard has ``claims``.

    ``require`` and ``protect`` see them with or without a token; their scopes are still
    checked, so a missing scope is answered 403 ``insufficient_scope``. No key is needed.
    """
    real = state_of(app)
    fake = dataclasses.replace(real)
    object.__setattr__(fake, "pipeline", fake_pipeline(claims, realm=real.realm))
    with _swapped(app, fake):
        yield


@contextmanager
def use_validator(app: Flask, validator: Validator) -> Iterator[None]:
    """Validate ``app``'s tokens with ``validator`` (a local issuer's) inside the block.

    The app's other ``JWKGUARD_*`` options (realm, exemptions, DPoP...) stay as configured.
    """
    with _swapped(app, dataclasses.replace(state_of(app), validator=validator)):
        yield
