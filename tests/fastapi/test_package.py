"""The package itself: its public names, and a one-line hint when FastAPI is missing."""

from __future__ import annotations

import subprocess
import sys

import jwkguard_fastapi


def test_every_public_name_exists_and_all_is_sorted() -> None:
    assert all(hasattr(jwkguard_fastapi, name) for name in jwkguard_fastapi.__all__)
    assert list(jwkguard_fastapi.__all__) == sorted(jwkguard_fastapi.__all__)


def test_importing_without_fastapi_gives_an_install_hint() -> None:
    code = "import sys; sys.modules['fastapi'] = None; import jwkguard_fastapi"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: jwkguard_fastapi needs FastAPI and Starlette: pip install 'jwkguard[fastapi]'"
    )
