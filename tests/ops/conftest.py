"""Helpers for the operations tests: free ports, an echoing upstream, `jwkguard serve` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwkguard.testing import LocalIssuer

from ..conftest import require_binary
from ..servers import RedisServer, stop_process, wait_until_listening

JWKGUARD = str(Path(sys.executable).with_name("jwkguard"))


def inline_validator(issuer: LocalIssuer) -> dict[str, Any]:
    """A ``[validator]`` table trusting ``issuer`` with its JWK Set written inline (RS256)."""
    return {
        "algorithms": ["RS256"],
        "issuers": [{"issuer": issuer.url, "audiences": [issuer.audience], "jwks": issuer.jwks()}],
    }


class EchoUpstream:
    """An upstream on 127.0.0.1 that answers every request with its method, path and headers."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _echo(self) -> None:
                body = json.dumps(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = _echo

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> EchoUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def toml_string(value: str) -> str:
    """A TOML basic string."""
    return json.dumps(value)


def forward_auth_toml(
    *,
    issuer: str,
    audience: str,
    jwks: str | None = None,
    port: int,
    extra_issuer: str = "",
    server_extra: str = "",
    gateway: str = "nginx",
) -> str:
    """A `jwkguard serve` configuration with the routes the gateway tests use."""
    keys = f"jwks = {toml_string(jwks)}\n" if jwks else ""
    return f"""
[server]
gateway = "{gateway}"
host = "127.0.0.1"
port = {port}
realm = "orders"
log_level = "warning"
claim_headers = {{ "X-Auth-Client" = "client_id", "X-Auth-Tenant" = "org.tenant" }}
{server_extra}

[validator]
algorithms = ["RS256"]

[[validator.issuers]]
issuer = {toml_string(issuer)}
audiences = [{toml_string(audience)}]
cooldown = 1
timeout = 2
{keys}{extra_issuer}

[[routes]]
path = "/public"
anonymous = true

[[routes]]
path = "/orders"
methods = ["GET"]
scopes = ["orders:read"]

[[routes]]
path = "/orders"
methods = ["POST", "PUT", "DELETE"]
scopes = ["orders:write"]

[[routes]]
path = "/admin"
scopes = ["admin"]
"""


@contextmanager
def jwkguard_serve(
    config: str, tmp_path: Path, port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Run `jwkguard serve` as a child process until the block ends (its log in a file)."""
    path = tmp_path / f"serve-{port}.toml"
    path.write_text(config, encoding="utf-8")
    with (tmp_path / f"serve-{port}.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [JWKGUARD, "serve", "--config", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        try:
            try:
                wait_until_listening(port, process, timeout=30)
            except AssertionError as exc:
                stop_process(process)
                log.flush()
                text = (tmp_path / f"serve-{port}.log").read_text(encoding="utf-8")
                raise AssertionError(f"{exc}\n{text}") from None
            yield process
        finally:
            stop_process(process)


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """A real issuer on 127.0.0.1, shared by a module."""
    with LocalIssuer() as local:
        yield local


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the module (skipped locally without the binary, fails in CI)."""
    with RedisServer(require_binary("redis-server"), tmp_path_factory.mktemp("redis")) as server:
        yield server
