"""``manage.py jwkguard``: revoke tokens, cut off users and clients, distrust keys.

Every change goes through :class:`~jwkguard.lifecycle.LifecycleAdmin` on the database store,
so it is audited and every process with ``JWKGUARD["LIFECYCLE_STORE"]`` enforces it within its poll
interval::

    manage.py jwkguard revoke JTI --issuer ISS --expires-at 1767225600 --why "leaked"
    manage.py jwkguard cut-off alice --issuer ISS --why "offboarded"
    manage.py jwkguard cut-off batch-svc --client --issuer ISS --why "secret leaked"
    manage.py jwkguard distrust --kid k1 --issuer ISS --why "HSM incident"
    manage.py jwkguard trust --kid k1 --issuer ISS --why "false alarm"
    manage.py jwkguard changes --limit 20
"""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jwkguard import ConfigurationError
from jwkguard.errors import StoreUnavailable
from jwkguard.lifecycle import LifecycleChange

from ...lifecycle import lifecycle_admin


def _when(text: str) -> float | datetime:
    """Unix seconds, or an ISO 8601 time with its offset (``2026-01-01T00:00:00+00:00``)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is neither unix seconds nor an ISO 8601 time") from None


class Command(BaseCommand):
    help = "Revoke tokens, cut off subjects and clients, and (dis)trust keys (audited)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)

        def action(name: str, help: str) -> ArgumentParser:
            sub = actions.add_parser(name, help=help)
            if name != "changes":
                sub.add_argument("--issuer", required=True, help="the issuer (iss) it concerns")
                sub.add_argument("--why", required=True, help="the reason, for the audit trail")
                sub.add_argument("--by", help="who (default: manage.py:<your login>)")
            return sub

        revoke = action("revoke", "refuse the token with this jti until it expires")
        revoke.add_argument("token_id", help="the token's jti")
        revoke.add_argument(
            "--expires-at", required=True, help="the token's exp: unix seconds or ISO 8601"
        )
        cut = action("cut-off", "refuse a subject's (or client's) tokens issued before now")
        cut.add_argument("value", help="the subject (sub), or the client id with --client")
        cut.add_argument("--client", action="store_true", help="cut off a client id instead")
        cut.add_argument("--before", help="the cut-off time (default: now)")
        for name, text in (("distrust", "refuse tokens signed by a key"), ("trust", "lift it")):
            sub = action(name, text)
            key = sub.add_mutually_exclusive_group(required=True)
            key.add_argument("--kid", help="the key id")
            key.add_argument("--thumbprint", help="the RFC 7638 thumbprint")
        changes = action("changes", "list the latest changes (the audit history)")
        changes.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "changes":
            self._changes(options["limit"])
            return
        admin = lifecycle_admin()
        who = {
            "issuer": options["issuer"],
            "by": options["by"] or f"manage.py:{getpass.getuser()}",
            "why": options["why"],
        }
        try:
            change = self._apply(admin, options, who)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        except StoreUnavailable as exc:
            raise CommandError(f"{exc}: is the database reachable and migrated?") from exc
        self.stdout.write(f"{change.op} {change.value} ({change.issuer}) by {change.by}")

    def _apply(self, admin: Any, options: dict[str, Any], who: dict[str, str]) -> LifecycleChange:
        action = options["action"]
        if action == "revoke":
            expires = _when(options["expires_at"])
            change: LifecycleChange = admin.revoke_token(
                options["token_id"], expires_at=expires, **who
            )
            return change
        if action == "cut-off":
            before = None if options["before"] is None else _when(options["before"])
            method = admin.cut_off_client if options["client"] else admin.cut_off_subject
            change = method(options["value"], before=before, **who)
            return change
        method = admin.distrust_key if action == "distrust" else admin.trust_key
        change = method(kid=options["kid"], thumbprint=options["thumbprint"], **who)
        return change

    def _changes(self, limit: int) -> None:
        from ...models import LifecycleRecord

        for row in LifecycleRecord.objects.order_by("-id")[: max(1, limit)]:
            when = datetime.fromtimestamp(row.timestamp).astimezone().isoformat(timespec="seconds")
            self.stdout.write(
                f"{row.id}\t{when}\t{row.op}\t{row.value}\t{row.issuer}\t{row.by}\t{row.why}"
            )
