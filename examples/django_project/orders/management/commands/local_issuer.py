"""``python manage.py local_issuer``: a local token issuer for trying the example by hand."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jwkguard.testing import LocalIssuer


class Command(BaseCommand):
    help = "Run jwkguard's local test issuer on 127.0.0.1 and print tokens for the example."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--audience", default="https://api.example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        with LocalIssuer(port=options["port"], audience=options["audience"]) as issuer:
            self.stdout.write(f"Issuer {issuer.url} (discovery and {issuer.jwks_uri})")
            self.stdout.write("Tokens, valid for one hour:")
            for scopes in (["orders:read"], ["orders:read", "orders:write"]):
                token = issuer.mint(subject="alice", scopes=scopes, lifetime=3600)
                self.stdout.write(f"\n  {' '.join(scopes)}:\n  {token}")
            self.stdout.write(
                "\nTry: curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8000/api/me"
            )
            self.stdout.write("Ctrl+C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
