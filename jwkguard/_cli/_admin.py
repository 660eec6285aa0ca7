"""Fleet admin commands: revoke, cut-off, distrust, trust and force-refresh through Redis.

Each command builds one change with :class:`jwkguard.lifecycle.LifecycleAdmin`, which stores
it in Redis and broadcasts it, so every instance using the same Redis enforces it within
seconds. Each change is written to the audit trail (stderr, and ``--audit-log`` if given).
"""

from __future__ import annotations

import functools
import getpass
import logging
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError, MalformedToken, StoreUnavailable
from ..lifecycle._admin import LifecycleAdmin
from ..lifecycle._audit import AUDIT_LOGGER, AuditTrail, token_hash
from ..lifecycle._replica import LifecycleChange
from ._output import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, Style, emit_json, fail, format_time
from ._review import decode_token
from ._tokens import parse_time, read_token

__all__ = ["ADMIN_COMMANDS"]


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class _Fleet:
    """What every admin command shares: where the fleet's Redis is, who acts and why."""

    redis_url: str | None
    prefix: str
    why: str
    actor: str | None
    audit_log: Path | None
    as_json: bool

    @property
    def by(self) -> str:
        return self.actor or _default_actor()


def admin_options(function: Callable[..., None]) -> Callable[..., None]:
    """The options every admin command shares, handed to it as one ``fleet`` argument."""

    @functools.wraps(function)
    def command(
        *,
        redis_url: str | None,
        prefix: str,
        why: str,
        actor: str | None,
        audit_log: Path | None,
        as_json: bool,
        **arguments: Any,
    ) -> None:
        function(fleet=_Fleet(redis_url, prefix, why, actor, audit_log, as_json), **arguments)

    decorators = [
        click.option(
            "--redis",
            "redis_url",
            envvar="JWKGUARD_REDIS_URL",
            help="The fleet's Redis URL (or $JWKGUARD_REDIS_URL).",
        ),
        click.option(
            "--prefix",
            default="jwkguard:",
            show_default=True,
            envvar="JWKGUARD_REDIS_PREFIX",
            help="Key prefix, as the fleet's RedisStore uses it.",
        ),
        click.option("--why", required=True, help="Why (kept in the audit trail)."),
        click.option("--by", "actor", help="Who (default: user@host)."),
        click.option(
            "--audit-log",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="JWKGUARD_AUDIT_LOG",
            help="Also append the audit record to this file.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the change as JSON."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@contextmanager
def _admin(redis_url: str | None, prefix: str, audit_log: Path | None) -> Iterator[LifecycleAdmin]:
    if not redis_url:
        raise click.UsageError("fleet admin commands need --redis URL (or $JWKGUARD_REDIS_URL)")
    from ..fleet._redis_store import RedisStore

    logger = logging.getLogger(AUDIT_LOGGER)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if audit_log is not None:
        handlers.append(logging.FileHandler(audit_log, encoding="utf-8"))
    saved = (logger.level, logger.propagate)
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        try:
            store = RedisStore(redis_url, prefix=prefix)
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            yield LifecycleAdmin(store, on_event=AuditTrail())
        finally:
            store.close()
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()


def _run(
    fleet: _Fleet,
    action: Callable[[LifecycleAdmin], LifecycleChange],
    summary: str,
    **extra: Any,
) -> None:
    as_json = fleet.as_json
    try:
        with _admin(fleet.redis_url, fleet.prefix, fleet.audit_log) as admin:
            change = action(admin)
    except StoreUnavailable as exc:
        fail(f"Redis is unreachable: {exc.description}", EXIT_UNAVAILABLE, as_json=as_json)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE, as_json=as_json)
    if as_json:
        emit_json({"change": asdict(change), "broadcast": True, **extra})
    else:
        style = Style()
        click.echo(f"{style.ok('done')}  {summary}; broadcast to every instance on {fleet.prefix}")
    raise SystemExit(EXIT_OK)


@click.command("revoke")
@click.argument("token_id", required=False)
@click.option("--issuer", help="The issuer of the token (default: from --token).")
@click.option("--expires-at", metavar="TIME", help="The token's exp (default: from --token).")
@click.option(
    "--token",
    "token_text",
    metavar="TOKEN|-",
    help="Take jti, iss and exp from this token (decoded, not verified; never logged).",
)
@admin_options
def revoke_command(
    token_id: str | None,
    issuer: str | None,
    expires_at: str | None,
    token_text: str | None,
    fleet: _Fleet,
) -> None:
    """Revoke one token by its jti (TOKEN_ID) until it expires, across the fleet.

    Exit status: 0 done, 2 usage, 3 Redis unreachable.
    """
    now = time.time()
    extra: dict[str, Any] = {}
    expiry = parse_time(expires_at, now) if expires_at else None
    if token_text is not None:
        raw = read_token(token_text)
        try:
            decoded = decode_token(raw, now)
        except MalformedToken as exc:
            raise click.UsageError(f"--token: {exc.description}") from None
        claims = decoded.payload
        token_id = token_id or _claim_text(claims, "jti")
        issuer = issuer or _claim_text(claims, "iss")
        if expiry is None and type(claims.get("exp")) in (int, float):
            expiry = float(claims["exp"])
        extra["token_hash"] = token_hash(raw)
    if not token_id or not issuer or expiry is None:
        raise click.UsageError("give TOKEN_ID, --issuer and --expires-at, or --token")
    chosen_id, chosen_issuer, chosen_expiry = token_id, issuer, expiry
    _run(
        fleet,
        lambda admin: admin.revoke_token(
            chosen_id, issuer=chosen_issuer, expires_at=chosen_expiry, by=fleet.by, why=fleet.why
        ),
        f"token {chosen_id} revoked until {format_time(chosen_expiry)}",
        **extra,
    )


def _claim_text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


@click.command("cut-off")
@click.argument("kind", type=click.Choice(["subject", "client"]))
@click.argument("value")
@click.option("--issuer", required=True, help="The issuer whose tokens are cut off.")
@click.option(
    "--before",
    metavar="TIME",
    help="Refuse tokens issued before this time (default: now).",
)
@admin_options
def cut_off_command(
    kind: str,
    value: str,
    issuer: str,
    before: str | None,
    fleet: _Fleet,
) -> None:
    """Refuse every token of a subject or client issued before a time (offboarding).

    Exit status: 0 done, 2 usage, 3 Redis unreachable.
    """
    moment = parse_time(before, time.time()) if before else time.time()
    who = fleet.by

    def action(admin: LifecycleAdmin) -> LifecycleChange:
        cut_off = admin.cut_off_subject if kind == "subject" else admin.cut_off_client
        return cut_off(value, issuer=issuer, before=moment, by=who, why=fleet.why)

    _run(
        fleet,
        action,
        f"{kind} {value} cut off: tokens issued before {format_time(moment)} are refused",
    )


def _key_command(name: str, trust: bool) -> click.Command:
    verb = "trusted again" if trust else "distrusted"

    @click.command(name)
    @click.option("--issuer", required=True, help="The issuer that publishes the key.")
    @click.option("--kid", help="The key id.")
    @click.option("--thumbprint", help="The RFC 7638 thumbprint (safer: kids can be reused).")
    @admin_options
    def command(
        issuer: str,
        kid: str | None,
        thumbprint: str | None,
        fleet: _Fleet,
    ) -> None:
        if (kid is None) == (thumbprint is None):
            raise click.UsageError("name the key by exactly one of --kid or --thumbprint")
        who = fleet.by

        def action(admin: LifecycleAdmin) -> LifecycleChange:
            method = admin.trust_key if trust else admin.distrust_key
            return method(issuer=issuer, kid=kid, thumbprint=thumbprint, by=who, why=fleet.why)

        label = f"kid {kid}" if kid is not None else f"thumbprint {thumbprint}"
        _run(fleet, action, f"key {label} {verb}")

    command.help = (
        "Trust again a key distrusted earlier."
        if trust
        else "Refuse tokens signed by a key, even while the issuer still publishes it."
    ) + "\n\nExit status: 0 done, 2 usage, 3 Redis unreachable."
    return command


@click.command("force-refresh")
@click.option("--issuer", required=True, help="The issuer whose JWK Set every instance refetches.")
@admin_options
def force_refresh_command(
    issuer: str,
    fleet: _Fleet,
) -> None:
    """Ask every instance to refetch an issuer's JWK Set now.

    Exit status: 0 done, 2 usage, 3 Redis unreachable.
    """
    who = fleet.by
    _run(
        fleet,
        lambda admin: admin.force_refresh(issuer, by=who, why=fleet.why),
        f"refresh of {issuer}'s keys requested",
    )


ADMIN_COMMANDS = (
    revoke_command,
    cut_off_command,
    _key_command("distrust", trust=False),
    _key_command("trust", trust=True),
    force_refresh_command,
)
