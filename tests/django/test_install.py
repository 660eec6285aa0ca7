"""Importing the adapter without its framework fails with a one-line install hint."""

from __future__ import annotations

import subprocess
import sys

import pytest


def import_without(blocked: str, module: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; sys.modules[{blocked!r}] = None; import {module}"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("blocked", "module", "hint"),
    [
        ("django", "jwkguard_django", "pip install 'jwkguard[django]'"),
        ("rest_framework", "jwkguard_django.rest_framework", "pip install 'jwkguard[drf]'"),
    ],
)
def test_missing_framework_gives_an_install_hint(blocked: str, module: str, hint: str) -> None:
    result = import_without(blocked, module)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError:")
    assert hint in last_line
