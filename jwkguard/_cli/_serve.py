"""``jwkguard serve``: run the forward-auth server from a TOML file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import ConfigurationError
from ._output import EXIT_USAGE, emit_json, fail, require_extra

__all__ = ["serve_command"]


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="JWKGUARD_CONFIG",
    help="The TOML configuration (or $JWKGUARD_CONFIG); JWKGUARD__SECTION__KEY overrides it.",
)
@click.option("--host", help="Listen address (overrides server.host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen port (overrides server.port).")
@click.option("--check", is_flag=True, help="Validate the configuration, print it and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --check: print JSON.")
def serve_command(
    config_path: Path | None, host: str | None, port: int | None, check: bool, as_json: bool
) -> None:
    """Run the forward-auth server for nginx auth_request, Traefik ForwardAuth and Envoy.

    Exit status: 0 on a clean stop (or a valid --check), 2 for a bad configuration.
    """
    require_extra("serve", "cli", "starlette", "uvicorn", as_json=as_json)
    from .._forward_auth import load_config, serve
    from .._settings import build_validator

    try:
        config = load_config(config_path, os.environ)
        if check:
            build_validator(config.validator).close()
    except ConfigurationError as exc:
        hint = ""
        if config_path is None:
            hint = (
                " (no configuration file was given: pass --config FILE or set JWKGUARD_CONFIG;"
                " see jwkguard serve --help and docs/gateways.md)"
            )
        fail(f"configuration: {exc}{hint}", EXIT_USAGE, as_json=as_json)
    if check:
        summary = {
            "valid": True,
            "listen": f"{host or config.host}:{config.port if port is None else port}",
            "gateway": config.gateway,
            "trusted_proxies": list(config.trusted_proxies),
            "issuers": [
                issuer.get("issuer") if isinstance(issuer, dict) else str(issuer)
                for issuer in config.validator.get("issuers", [])
            ],
            "routes": [route.describe() for route in config.routes.routes],
            "unmatched": config.unmatched,
        }
        if as_json:
            emit_json(summary)
        else:
            click.echo("configuration is valid")
            for key, value in summary.items():
                if key != "valid":
                    click.echo(f"  {key}: {value}")
        return
    serve(config, host=host, port=port)
