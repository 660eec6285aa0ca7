"""Settings of the jwkguard example project.

The trusted issuer comes from the environment; by default it is the local test issuer that
``python manage.py local_issuer`` runs on http://127.0.0.1:8765. Every key of ``JWKGUARD``
may be set as ``JWKGUARD_<KEY>`` (docs/configuration.md), for example:

    JWKGUARD_ISSUER     the issuer identifier (``iss``)
    JWKGUARD_AUDIENCES  this API's identifier (``aud``), comma-separated or JSON
    JWKGUARD_JWKS_URI   where its JWK Set is (optional: discovery finds it)
    JWKGUARD_ALGORITHMS comma-separated or JSON, default RS256
"""

from __future__ import annotations

import os

from jwkguard_django import settings_from_env

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-secret-key-change-me-in-production")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "jwkguard_django",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "jwkguard_django.middleware.JWKGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"
ASGI_APPLICATION = "example.asgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

JWKGUARD = {
    "ISSUERS": [{"ISSUER": "http://127.0.0.1:8765", "AUDIENCES": ["https://api.example.com"]}],
    "ALGORITHMS": ["RS256"],
    "MODE": "protect",
    "EXEMPT_PATHS": ["/health"],
    **settings_from_env(),  # JWKGUARD_* environment variables win
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwkguard_django.rest_framework.JWKGuardAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["jwkguard_django.rest_framework.HasScopes"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
