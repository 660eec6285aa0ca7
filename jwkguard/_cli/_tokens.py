"""``jwkguard inspect`` and ``jwkguard verify``: incident review of one token."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from .._algorithms import ASYMMETRIC_ALGORITHMS, SUPPORTED_ALGORITHMS
from .._issuer import Issuer
from .._validator import Validator
from ..errors import ConfigurationError, MalformedToken
from ._output import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Style,
    emit_json,
    fail,
    format_time,
    relative,
    table,
)
from ._review import Decoded, Review, decode_token, numeric_date, review_token

__all__ = ["inspect_command", "parse_time", "read_token", "verify_command"]

_RELATIVE = re.compile(r"([+-])(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STDIN = "-"
_FILE_SUFFIXES = frozenset({"jwt", "txt", "token", "json"})


def parse_time(text: str, now: float) -> float:
    """A point in time: ``now``, unix seconds, ISO 8601 (UTC if no offset), or ``-2h``/``+30m``."""
    value = text.strip()
    if value.lower() == "now":
        return now
    relative_match = _RELATIVE.fullmatch(value)
    if relative_match:
        sign, amount, unit = relative_match.groups()
        offset = float(amount) * _UNITS[unit]
        return now + offset if sign == "+" else now - offset
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use ISO 8601 (2024-05-01T12:00:00Z), unix seconds, 'now', or -2h / +30m"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def read_token(token: str | None) -> str:
    """The token argument, or standard input for ``-`` (keeps tokens out of shell history)."""
    if token in (None, _STDIN):
        if sys.stdin is None or sys.stdin.isatty():
            raise click.UsageError("give a TOKEN, or '-' and the token on standard input")
        token = sys.stdin.read()
    elif _is_file(token):
        raise click.UsageError(
            f"{token} is a file, not a token: read it from standard input with "
            f"`{_command()} - < {token}`"
        )
    token = token.strip()
    scheme, _, rest = token.partition(" ")
    if scheme.lower() == "bearer" and rest:
        token = rest.strip()
    if not token:
        raise click.UsageError("the token is empty")
    return token


def _is_file(text: str) -> bool:
    try:
        return len(text) < 1024 and Path(text).is_file()
    except (OSError, ValueError):
        return False


def _command() -> str:
    context = click.get_current_context(silent=True)
    return f"jwkguard {context.info_name}" if context is not None else "jwkguard inspect"


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _render_inspect(decoded: Decoded, now: float, style: Style) -> None:
    click.echo(
        style.warn("UNVERIFIED")
        + "  decoded only: the signature and claims have NOT been checked "
        + style.dim("(use `jwkguard verify`)")
    )
    click.echo()
    click.echo(style.bold("Header"))
    click.echo(table([[style.accent(k), _render_value(v)] for k, v in decoded.header.items()]))
    click.echo()
    click.echo(style.bold("Claims"))
    rows = []
    for name, value in decoded.payload.items():
        moment = numeric_date(value) if name in ("exp", "nbf", "iat", "auth_time") else None
        if moment is not None:
            text = f"{format_time(moment)}  {style.dim('(' + relative(moment, now) + ')')}"
        else:
            text = _render_value(value)
        rows.append([style.accent(name), text])
    click.echo(table(rows))
    click.echo()
    click.echo(
        table(
            [
                [style.bold("kid"), str(decoded.kid)],
                [style.bold("token"), f"{decoded.fingerprint}  ({decoded.size} bytes)"],
            ],
            indent=0,
        )
    )
    if decoded.warnings:
        click.echo()
        click.echo(style.bold("Notes"))
        for warning in decoded.warnings:
            click.echo(f"  {style.warn('!')} {warning}")


@click.command("inspect")
@click.argument("token", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def inspect_command(token: str | None, as_json: bool) -> None:
    """Decode TOKEN (or '-' for stdin) WITHOUT verifying it: header, claims, times, key id.

    Exit status: 0 decoded, 1 not a well-formed token, 2 usage.
    """
    raw = read_token(token)
    now = time.time()
    try:
        decoded = decode_token(raw, now)
    except MalformedToken as exc:
        hint = ""
        if "/" in raw or "\\" in raw or raw.rsplit(".", 1)[-1].lower() in _FILE_SUFFIXES:
            hint = f" (to read a token from a file: `{_command()} - < FILE`)"
        fail(exc.description + hint, EXIT_INVALID, as_json=as_json, reason=exc.reason)
    if as_json:
        emit_json(decoded.as_dict(now))
    else:
        _render_inspect(decoded, now, Style())


def build_review_validator(
    *,
    issuer: str,
    audiences: tuple[str, ...],
    client_ids: tuple[str, ...],
    jwks: str | None,
    algorithms: tuple[str, ...],
    leeway: float,
    token_type: str | None,
    at: float,
    allow_http: bool,
) -> tuple[Validator, str]:
    """A validator for one issuer whose clock is frozen at ``at``, and where its keys come from."""
    options: dict[str, Any] = {}
    if jwks is None:
        label = "discovery"
    elif jwks.startswith(("https://", "http://")):
        options["jwks_uri"] = label = jwks
    else:
        path = Path(jwks)
        if not path.is_file():
            raise ConfigurationError(f"--jwks {jwks}: no such file")
        options["jwks"] = path
        label = str(path)
    config = Issuer(
        issuer,
        audiences=list(audiences) or None,
        allowed_client_ids=list(client_ids) or None,
        allow_insecure_http=allow_http,
        **options,
    )
    validator = Validator(
        issuers=[config],
        algorithms=algorithms or sorted(ASYMMETRIC_ALGORITHMS),
        clock=lambda: at,
        leeway=leeway,
        token_type=token_type,
    )
    return validator, label


def _render_review(review: Review, now: float, style: Style) -> None:
    when = f"{format_time(review.at)} ({relative(review.at, now)})"
    error = review.error
    if error is None:
        click.echo(f"{style.ok('VALID')}    at {when}")
    else:
        where = f" ({error.claim})" if error.claim else ""
        cause = f" ({review.cause})" if review.cause else ""
        click.echo(
            f"{style.bad('INVALID')}  at {when}: {error.reason}{where}: {error.description}{cause}"
        )
    rows = []
    if review.key is not None:
        key = review.key
        rows.append(["signed by", f"kid {key.kid} · {key.kty} · thumbprint {key.thumbprint}"])
    elif review.available_kids:
        kids = ", ".join(str(kid) for kid in review.available_kids)
        rows.append(["key set", f"holds kids {kids}"])
    if review.key_source:
        rows.append(["keys from", review.key_source])
    if review.decoded is not None:
        rows.append(["token", review.decoded.fingerprint])
    click.echo(table([[style.bold(a), b] for a, b in rows]))
    click.echo()
    click.echo(style.bold("Checks"))
    click.echo(
        table(
            [
                [style.mark(check.passed), check.name, style.dim(check.detail)]
                for check in review.checks
            ]
        )
    )


@click.command("verify")
@click.argument("token", required=False)
@click.option("--issuer", required=True, help="The trusted issuer (exact iss value).")
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="An accepted audience (repeatable); required unless --client-id is given.",
)
@click.option(
    "--client-id",
    "client_ids",
    multiple=True,
    help="An allowed client_id/azp (repeatable), for issuers whose tokens carry no aud.",
)
@click.option(
    "--jwks",
    metavar="FILE|URL",
    help="The key set: a JWK Set file, or its URL. Default: discovery from the issuer.",
)
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="Judge the token at this time: ISO 8601, unix seconds, 'now', or -2h/+30m.",
)
@click.option(
    "--algorithm",
    "algorithms",
    multiple=True,
    type=click.Choice(sorted(SUPPORTED_ALGORITHMS - {"HS256", "HS384", "HS512"})),
    help="An allowed algorithm (repeatable). Default: every asymmetric algorithm.",
)
@click.option("--scope", "scopes", multiple=True, help="A scope the token must grant (repeatable).")
@click.option("--leeway", type=float, default=0.0, show_default=True, help="Clock tolerance (s).")
@click.option("--token-type", help="Require this JOSE typ, e.g. at+jwt.")
@click.option("--allow-http", is_flag=True, help="Allow plain http for a non-loopback issuer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def verify_command(
    token: str | None,
    issuer: str,
    audiences: tuple[str, ...],
    client_ids: tuple[str, ...],
    jwks: str | None,
    at_text: str | None,
    algorithms: tuple[str, ...],
    scopes: tuple[str, ...],
    leeway: float,
    token_type: str | None,
    allow_http: bool,
    as_json: bool,
) -> None:
    """Validate TOKEN fully, now or --at a past time: which key signed it and every check.

    Exit status: 0 valid, 1 invalid, 2 usage or configuration, 3 keys unavailable.
    """
    raw = read_token(token)
    if not audiences and not client_ids:
        raise click.UsageError("give --audience (or --client-id for tokens without aud)")
    now = time.time()
    at = parse_time(at_text, now) if at_text else now
    try:
        validator, label = build_review_validator(
            issuer=issuer,
            audiences=audiences,
            client_ids=client_ids,
            jwks=jwks,
            algorithms=algorithms,
            leeway=leeway,
            token_type=token_type,
            at=at,
            allow_http=allow_http,
        )
    except ConfigurationError as exc:
        hint = ""
        urls = [issuer, jwks or ""]
        if not allow_http and any(url.lower().startswith("http://") for url in urls):
            hint = " (pass --allow-http to read keys over plain HTTP; never in production)"
        fail(f"{exc}{hint}", EXIT_USAGE, as_json=as_json)
    with validator:
        review = review_token(validator, raw, at=at, scopes=scopes, source_label=label)
    code = EXIT_OK if review.valid else EXIT_UNAVAILABLE if review.unavailable else EXIT_INVALID
    if as_json:
        emit_json({**review.as_dict(), "exit_code": code})
    else:
        _render_review(review, now, Style())
    raise SystemExit(code)
