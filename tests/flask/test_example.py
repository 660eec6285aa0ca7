"""The example app, its environment configuration, and the README/docs snippets, as written."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples.flask_app import create_app
from jwkguard import ConfigurationError
from jwkguard.testing import LocalIssuer
from jwkguard_flask import config_from_env

from ..helpers import bearer

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_ISSUER = "https://id.example.com/"


def python_blocks(path: Path, after: str) -> list[str]:
    """The python code blocks of the section that starts at heading ``after``."""
    text = path.read_text()
    section = text[text.index(after) :]
    following = re.search(r"\n## ", section[len(after) :])
    if following is not None:
        section = section[: len(after) + following.start()]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def run_snippet(source: str, issuer: LocalIssuer) -> dict[str, Any]:
    """Execute our own documentation's snippet with its placeholder issuer made local."""
    assert PLACEHOLDER_ISSUER in source
    namespace: dict[str, Any] = {"__name__": "snippet"}
    code = compile(source.replace(PLACEHOLDER_ISSUER, issuer.url), "snippet", "exec")
    exec(code, namespace)  # noqa: S102
    return namespace


@pytest.fixture
def closing() -> Iterator[list[Flask]]:
    """Apps whose validators (and their HTTP clients) are closed after the test."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        app.extensions["jwkguard"].validator.close()


@pytest.mark.parametrize(
    ("method", "path", "scopes", "status"),
    [
        ("GET", "/", None, 200),
        ("GET", "/health", None, 200),
        ("GET", "/me", None, 401),
        ("GET", "/me", [], 200),
        ("GET", "/orders", [], 403),
        ("GET", "/orders", ["orders:read"], 200),
        ("GET", "/orders/2", ["orders:read"], 200),
        ("GET", "/orders/9", ["orders:read"], 404),
        ("POST", "/orders", ["orders:read"], 403),
        ("POST", "/orders", ["orders:write"], 201),
        ("GET", "/greeting", None, 200),
        ("GET", "/async/me", None, 401),
        ("GET", "/async/me", [], 200),
        ("GET", "/admin/stats", ["orders:read"], 403),
        ("GET", "/admin/stats", ["admin"], 200),
        ("GET", "/admin/status", None, 200),
        ("OPTIONS", "/admin/stats", None, 200),
    ],
)
def test_example_routes(
    client: FlaskClient,
    issuer: LocalIssuer,
    method: str,
    path: str,
    scopes: list[str] | None,
    status: int,
) -> None:
    headers = {} if scopes is None else bearer(issuer.mint(scopes=scopes))
    answer = client.open(path, method=method, headers=headers, json={"item": "tea"})
    assert answer.status_code == status


def test_example_views_see_the_callers_claims(client: FlaskClient, issuer: LocalIssuer) -> None:
    token = bearer(issuer.mint(subject="ada", scopes=["orders:write"]))
    created = client.post("/orders", headers=token, json={"item": "tea"})
    assert created.json == {"created": {"item": "tea"}, "by": "ada"}
    assert client.get("/greeting", headers=token).json == {"greeting": "hello, ada"}
    assert client.get("/greeting").json == {"greeting": "hello, stranger"}
    assert client.get("/async/me", headers=token).json == {"sub": "ada", "async": True}


def test_config_from_env_gives_the_config_keys() -> None:
    assert config_from_env({}) == {}
    settings = config_from_env(
        {
            "JWKGUARD_ISSUER": "https://id.example.com/",
            "JWKGUARD_AUDIENCES": "https://api.example.com, https://other.example.com",
            "JWKGUARD_JWKS_URI": "https://id.example.com/keys",
            "JWKGUARD_ALGORITHMS": "RS256, ES256",
            "JWKGUARD_EXEMPT_PATHS": '["/health"]',
        }
    )
    assert settings == {
        "JWKGUARD_ISSUERS": [
            {
                "issuer": "https://id.example.com/",
                "audiences": ["https://api.example.com", "https://other.example.com"],
                "jwks_uri": "https://id.example.com/keys",
            }
        ],
        "JWKGUARD_ALGORITHMS": ["RS256", "ES256"],
        "JWKGUARD_EXEMPT_PATHS": ["/health"],
    }
    with pytest.raises(ConfigurationError, match=r"JWKGUARD_EXEMPT_PATH \(did you mean"):
        config_from_env({"JWKGUARD_EXEMPT_PATH": "/health"})


def test_create_app_reads_a_real_issuer_from_the_environment(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch, closing: list[Flask]
) -> None:
    monkeypatch.setenv("JWKGUARD_ISSUER", issuer.url)
    monkeypatch.setenv("JWKGUARD_AUDIENCES", issuer.audience)
    monkeypatch.setenv("JWKGUARD_ALGORITHMS", issuer.alg)
    monkeypatch.setenv("JWKGUARD_REALM", "orders")
    app = create_app()
    closing.append(app)
    client = app.test_client()
    # No JWKS URI given: discovery finds it.
    assert client.get("/me", headers=bearer(issuer.mint(subject="kim"))).json == {
        "sub": "kim",
        "scopes": [],
    }
    assert client.get("/me").headers["WWW-Authenticate"] == 'Bearer realm="orders"'
    assert "demo_token" not in app.view_functions


def test_demo_mode_serves_tokens_its_app_accepts(
    monkeypatch: pytest.MonkeyPatch, closing: list[Flask]
) -> None:
    monkeypatch.delenv("JWKGUARD_ISSUER", raising=False)
    app = create_app()
    closing.append(app)
    client = app.test_client()
    token = client.get("/demo/token?scope=orders:read admin").json["access_token"]
    assert client.get("/orders", headers=bearer(token)).status_code == 200
    assert client.get("/admin/stats", headers=bearer(token)).status_code == 200
    assert client.get("/orders").status_code == 401


def test_flask_cli_finds_the_factory() -> None:
    env = {"PATH": "", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "examples/flask_app", "routes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for endpoint in ("api.list_orders", "api.async_me", "admin.stats", "demo_token"):
        assert endpoint in result.stdout


def test_readme_flask_snippet(issuer: LocalIssuer, closing: list[Flask]) -> None:
    (source,) = python_blocks(ROOT / "README.md", "## Flask in five minutes")
    namespace = run_snippet(source, issuer)
    app: Flask = namespace["app"]
    closing.append(app)
    app.register_blueprint(namespace["admin"])
    client = app.test_client()
    assert client.get("/orders").status_code == 401
    assert client.get("/orders", headers=bearer(issuer.mint())).status_code == 403
    granted = client.get("/orders", headers=bearer(issuer.mint(scopes=["orders:read"])))
    assert granted.json == {"for": "user-123"}
    assert client.get("/catalog").json == {"hello": "guest"}
    assert client.get("/catalog", headers=bearer(issuer.mint(subject="jo"))).json == {"hello": "jo"}
    assert client.get("/catalog", headers=bearer("x.y.z")).status_code == 401


def test_docs_five_minute_start(issuer: LocalIssuer, closing: list[Flask]) -> None:
    (source,) = python_blocks(ROOT / "docs" / "flask.md", "## Five-minute start")
    namespace = run_snippet(source, issuer)
    app: Flask = namespace["app"]
    closing.append(app)
    client = app.test_client()
    token = bearer(issuer.mint(subject="kim", scopes=["orders:write"]))
    assert client.get("/me", headers=token).json == {"sub": "kim", "scopes": ["orders:write"]}
    assert client.post("/orders", headers=token).status_code == 201
    assert client.post("/orders", headers=bearer(issuer.mint())).status_code == 403


def test_docs_testing_example_passes() -> None:
    (source,) = python_blocks(ROOT / "docs" / "flask.md", "## Testing your app")
    namespace: dict[str, Any] = {"__name__": "docs_test"}
    exec(compile(source, "docs_test", "exec"), namespace)  # noqa: S102
    namespace["test_orders_need_the_read_scope"]()


def test_docs_error_handler_example(issuer: LocalIssuer, blank_app: Flask) -> None:
    from jwkguard_flask import JWKGuard

    guard = JWKGuard(blank_app)

    @blank_app.get("/me")
    @guard.require
    def me() -> str:
        return "never"

    (source,) = python_blocks(ROOT / "docs" / "flask.md", "## Errors")
    exec(compile(source, "docs_errors", "exec"), {"app": blank_app})  # noqa: S102
    answer = blank_app.test_client().get("/me", headers=bearer(issuer.mint(lifetime=-60)))
    assert answer.status_code == 401
    assert answer.json == {"message": "please sign in again", "reason": "expired"}
    assert answer.headers["WWW-Authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )
