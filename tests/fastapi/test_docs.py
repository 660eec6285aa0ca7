"""The README's FastAPI snippet and the FastAPI docs page snippets run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from jwkguard.testing import LocalIssuer

from ..helpers import bearer

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_ISSUER = "https://id.example.com/"


def python_blocks(path: Path, after: str, count: int = 1) -> list[str]:
    """The first ``count`` python code blocks after the heading ``after``."""
    text = path.read_text()
    section = text[text.index(after) :]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[:count]


def run_snippet(source: str, issuer: LocalIssuer) -> dict[str, Any]:
    """Execute a snippet with its placeholder issuer pointed at the local one."""
    assert PLACEHOLDER_ISSUER in source
    namespace: dict[str, Any] = {"__name__": "snippet"}
    exec(compile(source.replace(PLACEHOLDER_ISSUER, issuer.url), "snippet", "exec"), namespace)  # noqa: S102
    return namespace


def test_readme_fastapi_snippet(issuer: LocalIssuer) -> None:
    (source,) = python_blocks(ROOT / "README.md", "## FastAPI in five minutes")
    namespace = run_snippet(source, issuer)
    with TestClient(namespace["app"]) as client:
        assert client.get("/orders").status_code == 401
        assert client.get("/orders", headers=bearer(issuer.mint())).status_code == 403
        granted = client.get("/orders", headers=bearer(issuer.mint(scopes=["orders:read"])))
        assert granted.json() == {"for": "user-123"}
        assert client.get("/catalog").json() == {"hello": "guest"}
        assert client.get("/catalog", headers=bearer(issuer.mint(subject="jo"))).json() == {
            "hello": "jo"
        }
        assert client.get("/catalog", headers=bearer("x.y.z")).status_code == 401


def test_docs_five_minute_start_and_dependency_override(issuer: LocalIssuer) -> None:
    page = ROOT / "docs" / "fastapi.md"
    (start,) = python_blocks(page, "## Five-minute start")
    namespace = run_snippet(start, issuer)
    with TestClient(namespace["app"]) as client:
        assert client.get("/me", headers=bearer(issuer.mint(subject="kim"))).json() == {
            "sub": "kim"
        }
        assert client.get("/orders", headers=bearer(issuer.mint())).status_code == 403
    (override,) = python_blocks(page, "For tests that do not care about authentication")
    exec(compile(override, "override", "exec"), namespace)  # noqa: S102
    with TestClient(namespace["app"]) as client:
        assert client.get("/orders").json() == {"for": "test-user"}
