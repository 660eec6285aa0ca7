"""The public API: a small top level, public namespaces, and one release of old paths."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import jwkguard

NAMESPACES = (
    "jwkguard",
    "jwkguard.errors",
    "jwkguard.keys",
    "jwkguard.lifecycle",
    "jwkguard.fleet",
    "jwkguard.sender",
    "jwkguard.pipeline",
    "jwkguard.settings",
    "jwkguard.metrics",
    "jwkguard.otel",
    "jwkguard.typed",
    "jwkguard.testing",
    "jwkguard.asgi",
    "jwkguard.wsgi",
)


def test_the_top_level_is_what_an_application_needs() -> None:
    assert len(jwkguard.__all__) <= 24
    essentials = {"Validator", "Issuer", "Claims", "RequestPipeline", "TokenError"}
    assert essentials <= set(jwkguard.__all__)


@pytest.mark.parametrize("name", NAMESPACES)
def test_every_public_name_resolves_without_a_warning(name: str) -> None:
    namespace = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for public in namespace.__all__:
            assert getattr(namespace, public) is not None, public
    assert set(namespace.__all__) <= set(dir(namespace))


@pytest.mark.parametrize("old", sorted(jwkguard._MOVED))
def test_a_moved_name_still_works_for_one_release_with_a_warning(old: str) -> None:
    new_home = jwkguard._MOVED[old]
    with pytest.warns(DeprecationWarning, match=rf"from {new_home} import {old}"):
        value = getattr(jwkguard, old)
    assert value is getattr(importlib.import_module(new_home), old)
    assert old in importlib.import_module(new_home).__all__


def test_from_import_of_a_moved_name_warns_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning, match="jwkguard.fleet") as caught:
        from jwkguard import RedisStore  # noqa: F401
    assert caught[0].filename == __file__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        jwkguard.Nope  # noqa: B018
    with pytest.raises(ImportError):
        from jwkguard.keys import Nope  # type: ignore[attr-defined]  # noqa: F401


def test_namespaces_load_their_modules_on_first_use() -> None:
    code = (
        "import sys, jwkguard.keys, jwkguard.lifecycle, jwkguard.fleet, jwkguard.sender; "
        "print(sorted(m for m in ('httpx', 'redis', 'jwkguard.fleet._redis_store', "
        "'jwkguard.keys._remote', 'jwkguard.sender._introspection') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
