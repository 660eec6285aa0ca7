"""The README's "Django in five minutes" snippets run as written."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient, Client, override_settings
from django.urls import path

from jwkguard.testing import LocalIssuer

from .conftest import MIDDLEWARE
from .test_checks import check_ids

README = Path(__file__).resolve().parents[2] / "README.md"


def django_snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Django in five minutes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def run(snippet: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute a README snippet (our own documentation, not untrusted input)."""
    exec(snippet, namespace)  # noqa: S102
    return namespace


def test_readme_settings_pass_the_checks() -> None:
    namespace = run(django_snippets()[0], {})
    assert "jwkguard_django.middleware.JWKGuardMiddleware" in namespace["MIDDLEWARE"]
    with override_settings(JWKGUARD=namespace["JWKGUARD"]):
        assert not {i for i in check_ids() if i.startswith("jwkguard.")}


@pytest.fixture
def readme_views(issuer: LocalIssuer) -> Iterator[None]:
    """The README's views mounted under the README's settings, keys from the local issuer."""
    settings = run(django_snippets()[0], {})["JWKGUARD"]
    settings["ISSUERS"] = [
        {"ISSUER": issuer.url, "AUDIENCES": [issuer.audience], "JWKS": issuer.jwks()}
    ]
    urls = types.ModuleType("readme_urls")
    views = types.ModuleType("readme_views")
    run(django_snippets()[1], views.__dict__)
    urls.urlpatterns = [path("me", views.me), path("orders", views.orders)]  # type: ignore[attr-defined]
    sys.modules["readme_urls"] = urls
    try:
        with override_settings(
            JWKGUARD=settings, ROOT_URLCONF="readme_urls", MIDDLEWARE=MIDDLEWARE
        ):
            yield
    finally:
        del sys.modules["readme_urls"]


def test_readme_views_under_wsgi(readme_views: None, issuer: LocalIssuer) -> None:
    client = Client()
    assert client.get("/me").status_code == 401
    token = issuer.mint(subject="ada", scopes=["profile"])
    me = client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"sub": "ada", "user": "ada"}
    assert client.get("/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 403


@pytest.mark.anyio
async def test_readme_views_under_asgi(readme_views: None, issuer: LocalIssuer) -> None:
    token = issuer.mint(subject="ada", scopes=["orders:read"])
    response = await AsyncClient().get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"orders": [], "for": "ada"}


def test_docs_testing_example_passes() -> None:
    """docs/django.md "Testing your own views": its TestCase runs green against a real view."""
    import unittest

    from .project import views

    text = (README.parent / "docs" / "django.md").read_text()
    section = text.split("## Testing your own views", 1)[1].split("\n## ", 1)[0]
    snippet = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    module = types.ModuleType("docs_testing_example")
    run(snippet, module.__dict__)
    urls = types.ModuleType("docs_urls")
    urls.urlpatterns = [path("api/orders", views.required)]  # type: ignore[attr-defined]
    sys.modules["docs_urls"] = urls
    try:
        with override_settings(ROOT_URLCONF="docs_urls"):
            suite = unittest.defaultTestLoader.loadTestsFromTestCase(module.OrdersTests)
            result = unittest.TestResult()
            suite.run(result)
    finally:
        del sys.modules["docs_urls"]
    assert result.testsRun == 2
    assert result.wasSuccessful(), result.errors + result.failures
