"""Django is configured here, for tests/django only, when the first of its tests runs.

Other adapters' tests share the pytest process, so nothing happens at import time: a
session fixture starts a local issuer, configures settings, runs ``django.setup()`` and builds
an in-memory test database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from jwkguard.testing import LocalIssuer

from ..helpers import bearer_from

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "jwkguard_django.middleware.JWKGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def jwkguard_settings(issuer: LocalIssuer, **overrides: Any) -> dict[str, Any]:
    """A JWKGUARD dict trusting ``issuer`` with its static JWK Set."""
    settings: dict[str, Any] = {
        "ISSUERS": [{"ISSUER": issuer.url, "AUDIENCES": [issuer.audience], "JWKS": issuer.jwks()}],
        "ALGORITHMS": ["RS256"],
        "EXEMPT_PATHS": ["/health", "/public/*"],
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def django_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="session", autouse=True)
def django_project(django_issuer: LocalIssuer) -> Iterator[None]:
    import django
    from django.conf import settings
    from django.test.utils import setup_test_environment, teardown_test_environment

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests-only-secret-key-that-is-long-enough-for-django",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF="tests.django.project.urls",
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "rest_framework",
                "jwkguard_django",
            ],
            MIDDLEWARE=MIDDLEWARE,
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
            USE_TZ=True,
            JWKGUARD=jwkguard_settings(django_issuer),
            REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
        )
        django.setup()
    from django.db import connection

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def close_thread_connections() -> None:
    """Close the calling thread's database connections, the in-memory SQLite ones too.

    Django's ``close()`` leaves an in-memory SQLite connection open (closing the last one would
    drop the database), and since Python 3.13 sqlite3 warns when one is collected unclosed. A
    test that reaches the database from another thread closes that thread's connection with
    this; the main thread's connection keeps the shared test database alive.
    """
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper

    for connection in connections.all(initialized_only=True):
        BaseDatabaseWrapper.close(connection)


@pytest.fixture
def issuer(django_issuer: LocalIssuer) -> LocalIssuer:
    return django_issuer


@pytest.fixture
def bearer(issuer: LocalIssuer) -> Callable[..., dict[str, str]]:
    """Headers carrying a fresh token from the local issuer: ``bearer(scopes=[...])``."""
    return partial(bearer_from, issuer)


class Fetch:
    """Sends requests through Django's test client (WSGI handler) or async client (ASGI)."""

    def __init__(self, kind: str, *, enforce_csrf_checks: bool = False) -> None:
        self.kind = kind
        self.enforce_csrf_checks = enforce_csrf_checks

    def __call__(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> Any:
        from asgiref.sync import async_to_sync
        from django.test import AsyncClient, Client

        if self.kind == "wsgi":
            client = Client(enforce_csrf_checks=self.enforce_csrf_checks)
            return getattr(client, method)(path, headers=headers or {}, **extra)
        aclient = AsyncClient(enforce_csrf_checks=self.enforce_csrf_checks)

        async def send() -> Any:
            # Django 4.2's AsyncClient methods return awaitables without being coroutine
            # functions, and asgiref warns when async_to_sync is handed one.
            return await getattr(aclient, method)(path, headers=headers or {}, **extra)

        return async_to_sync(send)()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self("get", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self("post", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self("delete", path, **kwargs)


@pytest.fixture(params=["wsgi", "asgi"])
def fetch(request: pytest.FixtureRequest) -> Fetch:
    """Runs the test once through the sync middleware path and once through the async one."""
    return Fetch(request.param)
