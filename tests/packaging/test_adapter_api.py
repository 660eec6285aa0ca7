"""The adapters' public API: one shape in FastAPI, Django and Flask; old names for a release."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

ADAPTERS = ("jwkguard_fastapi", "jwkguard_django", "jwkguard_flask")

# Names that left an adapter's top level in 0.2, and what each became.
MOVED = [
    ("jwkguard_fastapi", "ClaimsUser", "jwkguard_fastapi", "TokenUser"),
    ("jwkguard_fastapi", "QueryPolicy", "jwkguard.pipeline", "QueryPolicy"),
    ("jwkguard_flask", "handle_bearer_error", "jwkguard_flask", "bearer_error_handler"),
]
RETIRED = [
    ("jwkguard_fastapi", "Authenticator"),
    ("jwkguard_fastapi", "metadata_response"),
    ("jwkguard_fastapi", "to_response"),
    ("jwkguard_flask", "CLAIMS_ATTRIBUTE"),
    ("jwkguard_flask", "GuardState"),
]


@pytest.mark.parametrize("name", ADAPTERS)
def test_every_public_name_resolves_without_a_warning(name: str) -> None:
    adapter = importlib.import_module(name)
    assert list(adapter.__all__) == sorted(adapter.__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for public in adapter.__all__:
            assert getattr(adapter, public) is not None, public
    assert set(adapter.__all__) <= set(dir(adapter))


def test_one_name_for_the_user_built_from_a_token() -> None:
    import jwkguard_django
    import jwkguard_fastapi

    assert "TokenUser" in jwkguard_fastapi.__all__
    assert "TokenUser" in jwkguard_django.__all__


@pytest.mark.parametrize(("package", "old", "home", "new"), MOVED)
def test_a_moved_name_still_works_for_one_release_with_a_warning(
    package: str, old: str, home: str, new: str
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"from {home} import {new}"):
        value = getattr(importlib.import_module(package), old)
    assert value is getattr(importlib.import_module(home), new)
    assert new in importlib.import_module(home).__all__


@pytest.mark.parametrize(("package", "old"), RETIRED)
def test_an_internal_name_still_works_for_one_release_with_a_warning(
    package: str, old: str
) -> None:
    adapter = importlib.import_module(package)
    with pytest.warns(DeprecationWarning, match=rf"{package}.{old} is internal"):
        assert getattr(adapter, old) is not None
    assert old not in adapter.__all__


def test_the_django_adapter_imports_before_settings_are_configured() -> None:
    code = (
        "import sys, jwkguard_django; "
        "from django.conf import settings; "
        "assert not settings.configured; "
        "print(sorted(m for m in sys.modules if m.startswith('jwkguard_django.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
