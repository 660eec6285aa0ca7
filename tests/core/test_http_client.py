"""The fetch drivers run on the HTTP client we ship (httpx), and on httpx2 when aliased."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from jwkguard.keys import _fetch
from jwkguard.sender import _introspection

ROOT = Path(__file__).resolve().parents[2]


def test_the_fetch_drivers_use_the_declared_httpx() -> None:
    assert _fetch.httpx is httpx
    assert importlib.metadata.version("httpx") == httpx.__version__
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in dependencies if d.startswith("httpx")] == ["httpx>=0.27"]
    assert tuple(int(part) for part in httpx.__version__.split(".")[:2]) >= (0, 27)
    assert "httpx2" not in _introspection.__dict__


_ON_HTTPX2 = """
import asyncio, sys
import httpx2
httpx2.alias_httpx()
import httpx
assert httpx is httpx2, httpx

from jwkguard import Validator
from jwkguard.testing import LocalIssuer

with LocalIssuer(audience="https://api.example.com") as issuer:
    for run in ("sync", "async"):
        validator = Validator(issuers=[issuer.issuer_config()], algorithms=["RS256"])
        token = issuer.mint(subject=run)
        if run == "sync":
            claims = validator.validate(token)
            validator.close()
        else:
            async def main():
                try:
                    return await validator.avalidate(token)
                finally:
                    await validator.aclose()
            claims = asyncio.run(main())
        assert claims.subject == run, claims
print(sorted(name for name in sys.modules if name.split(".")[0] in ("httpx", "httpx2")))
"""


def test_an_application_on_httpx2_runs_jwkguard_through_alias_httpx() -> None:
    pytest.importorskip("httpx2")
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _ON_HTTPX2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "'httpx2'" in result.stdout
