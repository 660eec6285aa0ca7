"""jwkguard for Django: middleware, view decorators, DRF authentication and system checks.

Add ``"jwkguard_django"`` to ``INSTALLED_APPS``, ``"jwkguard_django.middleware.JWKGuardMiddleware"``
to ``MIDDLEWARE``, and a ``JWKGUARD`` settings dict whose keys mirror ``jwkguard.Validator`` and
``jwkguard.Issuer`` options. See ``docs/django.md``.
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("jwkguard_django needs Django: pip install 'jwkguard[django]'") from exc

__all__: list[str] = []
