"""``jwkguard issuer``: a local issuer on loopback for calling your own protected API by hand."""

from __future__ import annotations

import json
import shlex
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click

from .._algorithms import ASYMMETRIC_ALGORITHMS
from ._output import EXIT_USAGE, Style, emit_json, fail

__all__ = ["issuer_command"]

_MAX_LIFETIME = 24 * 3600


def _claims(pairs: tuple[str, ...]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--claim")
        try:
            claims[name] = json.loads(text)
        except ValueError:
            claims[name] = text
    return claims


def _token_endpoint(issuer: Any, defaults: dict[str, Any]) -> Any:
    """``GET /token?scope=a+b&sub=ada&lifetime=600``: a fresh token, as an OAuth token response."""

    def handle(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        status = 200
        document: dict[str, Any] = {}
        try:
            lifetime = float(query.get("lifetime", defaults["lifetime"]))
            if not 0 < lifetime <= _MAX_LIFETIME:
                raise ValueError
        except ValueError:
            status, document = (
                400,
                {
                    "error": "invalid_request",
                    "error_description": f"lifetime must be 1..{_MAX_LIFETIME} seconds",
                },
            )
        if status == 200:
            scope = query.get("scope", " ".join(defaults["scopes"]))
            token = issuer.mint(
                subject=query.get("sub", defaults["subject"]),
                scopes=scope or None,
                lifetime=lifetime,
                **defaults["claims"],
            )
            document = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(lifetime),
                **({"scope": scope} if scope else {}),
            }
        payload = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    return handle


@click.command("issuer")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free one).",
)
@click.option("--audience", default="https://api.example.com", show_default=True)
@click.option(
    "--alg",
    type=click.Choice(sorted(ASYMMETRIC_ALGORITHMS)),
    default="RS256",
    show_default=True,
    help="The signing algorithm of the generated key.",
)
@click.option("--subject", default="alice", show_default=True, help="The sub of the tokens.")
@click.option("--scope", "scopes", multiple=True, help="A scope of the token (repeatable).")
@click.option(
    "--claim",
    "claim_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An extra claim (repeatable); VALUE is JSON or a string, e.g. roles='[\"admin\"]'.",
)
@click.option(
    "--lifetime",
    type=click.IntRange(1, _MAX_LIFETIME),
    default=3600,
    show_default=True,
    help="Token lifetime (s).",
)
@click.option(
    "--api",
    default="http://127.0.0.1:8000/",
    show_default=True,
    help="The URL of your API, for the printed curl line.",
)
@click.option("--once", is_flag=True, help="Print the issuer and token, then stop (for scripts).")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Serve for this many seconds, then stop (default: until Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def issuer_command(
    port: int,
    audience: str,
    alg: str,
    subject: str,
    scopes: tuple[str, ...],
    claim_pairs: tuple[str, ...],
    lifetime: int,
    api: str,
    once: bool,
    duration: float | None,
    as_json: bool,
) -> None:
    """Run a local issuer on 127.0.0.1 (discovery, JWK Set, a /token endpoint) and print a
    ready-to-paste token, the JWKGUARD_* settings for your API and a curl line.

    Keys are generated at start and live only as long as the process: for development, never
    for production. Stop with Ctrl-C. Exit status: 0 stopped, 2 it cannot start.
    """
    from ..testing import LocalIssuer

    claims = _claims(claim_pairs)
    try:
        issuer = LocalIssuer(port=port, audience=audience, alg=alg)
    except OSError as exc:
        fail(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} "
            "(pass --port 0 for any free port)",
            EXIT_USAGE,
            as_json=as_json,
        )
    defaults = {"subject": subject, "scopes": list(scopes), "lifetime": lifetime, "claims": claims}
    issuer.routes["/token"] = _token_endpoint(issuer, defaults)
    with issuer:
        token = issuer.mint(
            subject=subject, scopes=list(scopes) or None, lifetime=lifetime, **claims
        )
        environment = {
            "JWKGUARD_ISSUER": issuer.url,
            "JWKGUARD_AUDIENCES": audience,
            "JWKGUARD_ALGORITHMS": alg,
        }
        curl = f"curl -H 'Authorization: Bearer {token}' {shlex.quote(api)}"
        mint_more = f"curl -s '{issuer.base_url}/token?scope=read+write&sub=bob'"
        if as_json:
            emit_json(
                {
                    "issuer": issuer.url,
                    "discovery": f"{issuer.url}/.well-known/openid-configuration",
                    "jwks_uri": issuer.jwks_uri,
                    "token_endpoint": f"{issuer.base_url}/token",
                    "audience": audience,
                    "algorithm": alg,
                    "kid": issuer.active_key.kid,
                    "access_token": token,
                    "expires_in": lifetime,
                    "environment": environment,
                    "curl": curl,
                }
            )
        else:
            _print(issuer, token, environment, curl, mint_more, lifetime, once)
        if once:
            return
        _serve(duration, quiet=as_json)


def _print(
    issuer: Any,
    token: str,
    environment: dict[str, str],
    curl: str,
    mint_more: str,
    lifetime: int,
    once: bool,
) -> None:
    style = Style()
    click.echo(f"{style.bold('Local issuer')}  {issuer.url}  {style.dim('(loopback only)')}")
    click.echo(f"  discovery  {issuer.url}/.well-known/openid-configuration")
    click.echo(f"  jwks_uri   {issuer.jwks_uri}")
    click.echo()
    click.echo(style.bold("Configure your API") + style.dim("  (jwkguard settings from env)"))
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())
    click.echo(f"  export {exports}")
    click.echo()
    click.echo(style.bold("Token") + style.dim(f"  (valid {lifetime} s)"))
    click.echo(f"  {token}")
    click.echo()
    click.echo(style.bold("Call your API"))
    click.echo(f"  {curl}")
    if not once:
        click.echo()
        click.echo(style.bold("More tokens") + style.dim("  (scope, sub, lifetime)"))
        click.echo(f"  {mint_more}")
        click.echo()
        click.echo(style.dim("Ctrl-C to stop; the keys are gone when it stops."))


def _serve(duration: float | None, *, quiet: bool) -> None:
    stop = threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not stop.is_set():
            remaining = 3600.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            stop.wait(min(remaining, 1.0))
    except KeyboardInterrupt:
        pass
    if not quiet:
        click.echo("stopped", err=True)
