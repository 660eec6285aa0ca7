"""jwkguard for Django: middleware, view decorators, DRF authentication and system checks.

Add ``"jwkguard_django"`` to ``INSTALLED_APPS``, ``"jwkguard_django.middleware.JWKGuardMiddleware"``
to ``MIDDLEWARE``, and a ``JWKGUARD`` settings dict whose keys mirror ``jwkguard.Validator`` and
``jwkguard.Issuer`` options. See ``docs/django.md``.

Every adapter exports the same shape: its entry point (:class:`JWKGuardMiddleware`), the
view decorators (:func:`token_required`, :func:`token_optional`, :func:`token_exempt`), the
user (:class:`TokenUser`, :func:`user_from_subject`), the metrics view and settings from the
environment; the verified claims are ``request.jwt_claims``. Test helpers live in
:mod:`jwkguard_django.testing`, typed claims in :mod:`jwkguard_django.typed`, Django REST
framework classes in :mod:`jwkguard_django.rest_framework`. Every name loads on first use,
so importing the package needs neither configured settings nor a ready app registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jwkguard._lazy import lazy_namespace, require_modules

require_modules("jwkguard_django", "Django", "django", "django")

if TYPE_CHECKING:
    from .conf import settings_from_env
    from .decorators import token_exempt, token_optional, token_required
    from .middleware import JWKGuardMiddleware
    from .users import TokenUser, user_from_subject
    from .views import metrics as metrics_view

__all__ = [
    "JWKGuardMiddleware",
    "TokenUser",
    "metrics_view",
    "settings_from_env",
    "token_exempt",
    "token_optional",
    "token_required",
    "user_from_subject",
]

__getattr__, __dir__ = lazy_namespace(
    globals(),
    {
        "JWKGuardMiddleware": ".middleware",
        "TokenUser": ".users",
        "metrics_view": ".views:metrics",
        "settings_from_env": ".conf",
        "token_exempt": ".decorators",
        "token_optional": ".decorators",
        "token_required": ".decorators",
        "user_from_subject": ".users",
    },
)
