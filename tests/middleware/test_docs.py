"""The snippets of docs/pipeline.md run as written, against a local issuer."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from jwkguard.testing import LocalIssuer

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "pipeline.md"
PLACEHOLDER_ISSUER = "https://id.example.com/"
AUDIENCE = "https://api.example.com"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def run(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(source, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_pipeline_page_snippets_protect_their_apps() -> None:
    asgi_source, wsgi_source, integration_source = blocks()
    with LocalIssuer(audience=AUDIENCE) as issuer:
        namespace = run(asgi_source.replace(PLACEHOLDER_ISSUER, issuer.url), {"__name__": "doc"})
        token = issuer.mint(scopes=["orders:read"])
        authorization = [(b"authorization", f"Bearer {token}".encode())]
        assert asgi_get(namespace["app"], "/orders", [])[0] == 401
        assert asgi_get(namespace["app"], "/orders", authorization) == (200, b"user-123")

        run(wsgi_source, namespace)
        statuses: list[str] = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders", "QUERY_STRING": ""}
        body = namespace["wsgi_app"](
            {**environ, "HTTP_AUTHORIZATION": f"Bearer {token}"},
            lambda status, headers: statuses.append(status),
        )
        assert statuses == ["200 OK"]
        assert b"".join(body) == b"user-123"

        run(integration_source, namespace)
        handle = namespace["handle"]
        assert handle({**environ, "HTTP_AUTHORIZATION": f"Bearer {token}"})[0] == 200
        status, headers, _ = handle({**environ, "HTTP_AUTHORIZATION": f"Bearer {issuer.mint()}"})
        assert status == 403
        assert 'scope="orders:read"' in headers["WWW-Authenticate"]
        namespace["validator"].close()
