"""``jwkguard demo`` (and ``make demo``): a local issuer, the example API, a narrated tour.

Everything runs in this process on 127.0.0.1: :class:`jwkguard.testing.LocalIssuer` serves
discovery and a JWK Set, the orders API (``jwkguard/_demo/_api.py``, re-exported as
``examples/fastapi_app.py``) is protected by a validator that finds the keys by discovery, and
the tour sends real HTTP requests to it.
"""

from __future__ import annotations

import io
import json
import shlex
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from ._console import Console
from ._stack import DemoStack, PortUnavailable
from ._tour import run_tour

__all__ = ["cli_command", "run_demo"]

TOKEN_LIFETIME = 3600


def run_demo(
    *,
    once: bool = False,
    port: int | None = None,
    color: bool | None = None,
    as_json: bool = False,
) -> int:
    """Run the demo; returns the exit status (1 if a step misbehaved, 2 if it cannot start).

    ``port=None`` serves on 8000, or on a free port (said so) when 8000 is busy; a port asked
    for that cannot be had is an error. With ``as_json`` the narration is replaced by one JSON
    document on stdout.
    """
    console = Console(io.StringIO(), color=False) if as_json else Console(color=color)
    style = console.style
    console.line(style.bold("jwkguard demo") + style.dim("  strict local JWT validation"))
    try:
        with DemoStack(port) as stack:
            with console.progress("Starting a local issuer (discovery + JWK Set)"):
                stack.start_issuer()
            with console.progress("Loading the orders API (FastAPI)"):
                app = stack.build_app()
            with console.progress("Serving it with uvicorn and fetching the issuer's keys"):
                stack.serve(app)
            if stack.moved_from is not None:
                console.line(
                    style.dim(
                        f"Port {stack.moved_from} is busy, so the API uses port {stack.port} "
                        "(choose one with --port N)."
                    )
                )
            console.row("issuer", stack.issuer.url)
            console.row("API", f"{stack.url}  (Swagger UI: {stack.url}/docs)")
            reports: list[dict[str, Any]] = []
            ok = run_tour(stack, console, reports)
            if as_json:
                document = {
                    "ok": ok,
                    "issuer": stack.issuer.url,
                    "api": stack.url,
                    "port_moved_from": stack.moved_from,
                    "steps": reports,
                    "try": None if once else [command for _, command in _commands(stack)],
                }
                print(json.dumps(document, indent=2))
                sys.stdout.flush()
            console.line()
            if ok:
                console.line(style.ok("Every step behaved as told."))
            else:
                console.line(style.bad("Some steps did NOT behave as told (see the ✗ above)."))
            if once:
                return 0 if ok else 1
            _keep_serving(stack, console)
            return 0 if ok else 1
    except PortUnavailable as exc:
        message = str(exc)
        if as_json:
            print(json.dumps({"ok": False, "error": message, "exit_code": 2}))
        else:
            console.line(style.bad(message))
        return 2


def cli_command() -> str:
    """How a fresh shell runs this installation's ``jwkguard``.

    In a virtual environment (``make demo`` uses ``.venv-demo``) a new shell has not activated
    it, so the command is the script's absolute path; elsewhere the name is on ``PATH``.
    """
    script = Path(sys.executable).parent / "jwkguard"
    in_venv = sys.prefix != sys.base_prefix
    if script.is_file() and (in_venv or shutil.which("jwkguard") is None):
        return shlex.quote(str(script.absolute()))
    if shutil.which("jwkguard") is not None:
        return "jwkguard"
    return f"{shlex.quote(sys.executable)} -m jwkguard._cli"


def _curl(url: str, token: str | None, *extra: str) -> str:
    parts = ["curl", "-si", *extra]
    if token is not None:
        parts += ["-H", f"Authorization: Bearer {token}"]
    parts.append(url)
    return " ".join(shlex.quote(part) for part in parts)


def _commands(stack: DemoStack) -> list[tuple[str, str]]:
    """Ready-to-paste commands with fresh tokens."""
    issuer = stack.issuer
    jwkguard = cli_command()
    reader = issuer.mint(subject="alice", scopes=["orders:read"], lifetime=TOKEN_LIFETIME)
    writer = issuer.mint(
        subject="alice", scopes=["orders:read", "orders:write"], lifetime=TOKEN_LIFETIME
    )
    return [
        ("your claims", _curl(f"{stack.url}/me", reader)),
        ("read orders", _curl(f"{stack.url}/orders", reader)),
        (
            "create one",
            _curl(
                f"{stack.url}/orders",
                writer,
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                '{"item": "tea", "quantity": 1}',
            ),
        ),
        ("403", _curl(f"{stack.url}/orders", reader, "-X", "POST", "-d", "{}")),
        ("401", _curl(f"{stack.url}/orders", None)),
        ("inspect", f"{jwkguard} inspect {reader}"),
        (
            "verify",
            f"{jwkguard} verify {reader} --issuer {issuer.url} --audience {issuer.audience}",
        ),
        ("keys", f"{jwkguard} keys {issuer.url}"),
    ]


def _print_commands(stack: DemoStack, console: Console) -> None:
    style = console.style
    console.title(f"Try it yourself (tokens valid for {TOKEN_LIFETIME // 60} minutes)")
    for label, command in _commands(stack):
        console.line(f"  {style.dim(label.ljust(12))}{command}")
    if cli_command() != "jwkguard" and sys.prefix != sys.base_prefix:
        activate = shlex.quote(str(Path(sys.prefix).absolute() / "bin" / "activate"))
        console.line(style.dim(f"  (or `source {activate}` first, then type plain `jwkguard`)"))
    console.line()
    interactive = sys.stdin is not None and sys.stdin.isatty()
    keys = "Enter for fresh tokens, Ctrl-C to stop." if interactive else "Ctrl-C to stop."
    console.line(style.dim(f"Serving on 127.0.0.1. {keys}"))


def _keep_serving(stack: DemoStack, console: Console) -> None:
    _print_commands(stack, console)
    interactive = sys.stdin is not None and sys.stdin.isatty()
    stopped = threading.Event()
    try:
        while not stopped.is_set():
            if interactive:
                if not sys.stdin.readline():  # end of input: keep serving quietly
                    interactive = False
                    continue
                _print_commands(stack, console)
            else:
                stopped.wait(3600)
    except KeyboardInterrupt:
        console.line()
        console.line("Stopped.")
