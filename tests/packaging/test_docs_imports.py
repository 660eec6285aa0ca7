"""Every import the docs show works as written, without a deprecation warning."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
OURS = ("jwkguard", "jwkguard_fastapi", "jwkguard_django", "jwkguard_flask", "jwkguard_pytest")


def _imports(page: Path) -> list[tuple[str, str]]:
    found = []
    for block in BLOCK.findall(page.read_text()):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").split(".")[0] in OURS
            ):
                found += [(str(node.module), alias.name) for alias in node.names]
    return found


CASES = sorted({(page.name, module, name) for page in PAGES for module, name in _imports(page)})


def test_the_docs_show_imports_of_ours() -> None:
    assert len(CASES) > 50


CORE_CASES = [case for case in CASES if not case[1].startswith("jwkguard_django")]


@pytest.mark.parametrize(("page", "module", "name"), CORE_CASES)
def test_a_documented_import_works_without_a_warning(page: str, module: str, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imported = importlib.import_module(module)
        if name != "*":
            assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}")


def test_the_documented_django_imports_work_without_a_warning() -> None:
    """In a process of their own: Django's settings are configured once per process."""
    pytest.importorskip("django")
    names = [(module, name) for _, module, name in CASES if module.startswith("jwkguard_django")]
    assert names
    script = (
        "import importlib, sys, django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes',"
        " 'django.contrib.auth', 'jwkguard_django'], JWKGUARD={})\n"
        "django.setup()\n"
        f"for module, name in {names!r}:\n"
        "    imported = importlib.import_module(module)\n"
        "    found = hasattr(imported, name) or importlib.util.find_spec(module + '.' + name)\n"
        "    assert found, name\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
