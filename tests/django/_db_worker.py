"""A Django process on a shared database with ``LIFECYCLE_STORE``, for the two-process test.

``DB`` is a SQLite file, or a ``postgresql://user@host:port/name`` URL (no password: the
test cluster trusts loopback). ``python -m tests.django._db_worker DB migrate`` creates the
tables;
``... DB serve`` validates each token read from stdin and answers one line (``ok`` or the
refusal's reason); ``... DB command ARGS...`` runs ``manage.py jwkguard ARGS...``;
``... DB admin`` runs one such command per stdin line and answers ``done <unix time after
the commit>``. The issuer comes from ``JWKGUARD_TEST_ISSUER`` (JSON: url, audience, jwks).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import django
from django.conf import settings

POLL_INTERVAL = 0.25


def database(db: str) -> dict[str, Any]:
    if not db.startswith("postgresql://"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": db}
    url = urlsplit(db)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/"),
        "USER": url.username or "",
        "HOST": url.hostname or "",
        "PORT": str(url.port or ""),
    }


def configure(db: str) -> None:
    issuer = json.loads(os.environ["JWKGUARD_TEST_ISSUER"])
    settings.configure(
        SECRET_KEY="tests-only-secret-key-that-is-long-enough-for-django",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "jwkguard_django"],
        DATABASES={"default": database(db)},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
        JWKGUARD={
            "ISSUERS": [
                {"ISSUER": issuer["url"], "AUDIENCES": [issuer["audience"]], "JWKS": issuer["jwks"]}
            ],
            "ALGORITHMS": ["RS256"],
            "LIFECYCLE_STORE": {
                "STORE": "database",
                "POLL_INTERVAL": POLL_INTERVAL,
                "ON_UNAVAILABLE": "fail_closed",
            },
        },
    )
    django.setup()


def serve() -> None:
    from jwkguard import JWKGuardError
    from jwkguard_django.conf import get_validator

    validator = get_validator()
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            validator.validate(line.strip())
        except JWKGuardError as exc:
            print(getattr(exc, "reason", None) or exc.error, flush=True)
        else:
            print("ok", flush=True)


def main() -> None:
    db, action, *rest = sys.argv[1:]
    configure(db)
    from django.core.management import call_command

    if action == "migrate":
        call_command("migrate", "jwkguard_django", verbosity=0)
    elif action == "serve":
        serve()
    elif action == "admin":
        import shlex
        import time

        print("ready", flush=True)
        for line in sys.stdin:
            call_command("jwkguard", *shlex.split(line), stdout=sys.stderr)
            print(f"done {time.time()!r}", flush=True)  # committed by now
    else:
        call_command("jwkguard", *rest)


if __name__ == "__main__":
    main()
