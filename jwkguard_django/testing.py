"""Test helpers: fake claims without keys, and ``JWKGUARD`` pointed at a local issuer.

Example::

    from jwkguard.testing import make_claims
    from jwkguard_django.testing import fake_claims

    def test_orders(client):
        with fake_claims(make_claims(scopes=["orders:read"])):
            assert client.get("/orders/").status_code == 200
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.test import override_settings

from jwkguard import Claims
from jwkguard.testing import fake_pipeline

from . import conf

__all__ = ["fake_claims", "issuer_settings", "use_issuer"]

_REPLACED = frozenset({"issuers", "algorithms"})


@contextmanager
def fake_claims(claims: Claims) -> Iterator[None]:
    """Inside the block every request judged by jwkguard has ``claims``, token or not.

    The middleware, the decorators and DRF's authentication class all see them (with the
    user ``USER_LOADER`` makes of them); scopes required by views are still checked, so a
    missing scope is answered 403 ``insufficient_scope``. No key or issuer is needed, but the
    ``JWKGUARD`` setting must be valid (its adapter options apply).
    """
    real = conf.get_state()
    fake = conf.State(source=real.source, validator=real.validator, options=real.options)
    object.__setattr__(fake, "pipeline", fake_pipeline(claims, realm=real.options.realm))
    cache = conf._cache
    with cache._lock:
        cache._state = fake
    try:
        yield
    finally:
        with cache._lock:
            if cache._state is fake:
                cache._state = real


def issuer_settings(local: Mapping[str, Any]) -> dict[str, Any]:
    """The current ``JWKGUARD`` with its ``ISSUERS`` and ``ALGORITHMS`` taken from ``local``.

    The adapter's options (``MODE``, ``EXEMPT_PATHS``...) and the other validator options
    stay, so the app is tested as configured, against another issuer.
    """
    current = getattr(settings, "JWKGUARD", None) or {}
    kept = {key: value for key, value in current.items() if str(key).lower() not in _REPLACED}
    return {**kept, **local}


@contextmanager
def use_issuer(local: Mapping[str, Any]) -> Iterator[None]:
    """``override_settings`` with :func:`issuer_settings` for the block."""
    with override_settings(JWKGUARD=issuer_settings(local)):
        yield
