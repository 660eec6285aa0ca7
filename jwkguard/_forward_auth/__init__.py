"""``jwkguard serve``: a forward-auth server for gateways (nginx, Traefik, Envoy)."""

from __future__ import annotations

import logging
import sys

from ._app import ForwardAuthApp, create_app
from ._config import ServerConfig, apply_environment, load_config, parse_config
from ._identity import decode_list, decode_text, encode_list, encode_text, header_value
from ._original import GATEWAYS, OriginalRequest, reader_for
from ._routes import RouteRule, RouteTable, normalise_host, normalise_path

__all__ = [
    "GATEWAYS",
    "ForwardAuthApp",
    "OriginalRequest",
    "RouteRule",
    "RouteTable",
    "ServerConfig",
    "apply_environment",
    "create_app",
    "decode_list",
    "decode_text",
    "encode_list",
    "encode_text",
    "header_value",
    "load_config",
    "normalise_host",
    "normalise_path",
    "parse_config",
    "reader_for",
    "serve",
]


def configure_logging(level: str) -> None:
    """Events and decisions to stderr; the audit trail as bare JSON lines to stderr."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root = logging.getLogger("jwkguard")
    root.setLevel(numeric)
    if not any(getattr(h, "_jwkguard_serve", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._jwkguard_serve = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    audit = logging.getLogger("jwkguard.audit")
    audit.setLevel(logging.INFO)
    audit.propagate = False
    if not audit.handlers:
        line = logging.StreamHandler(sys.stderr)
        line.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(line)


def serve(config: ServerConfig, *, host: str | None = None, port: int | None = None) -> None:
    """Run the server with uvicorn until interrupted."""
    import uvicorn

    configure_logging(config.log_level)
    app = create_app(config)
    uvicorn.run(
        app,
        host=host or config.host,
        port=config.port if port is None else port,
        log_level=config.log_level,
        access_log=config.access_log,
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
