"""``jwkguard demo``: the narrated tour of a protected API over real HTTP."""

from __future__ import annotations

import click

from ._output import require_extra

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--once", is_flag=True, help="Exit after the tour (status 1 if a step misbehaved).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="The API's port on 127.0.0.1 (0: any free one). Without it: 8000, or a free port "
    "if 8000 is busy.",
)
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
@click.option("--json", "as_json", is_flag=True, help="Report the tour as one JSON document.")
def demo_command(once: bool, port: int | None, color: bool | None, as_json: bool) -> None:
    """Run a local issuer and the example API, then a narrated tour with real requests.

    Afterwards it keeps serving and prints ready-to-paste curl commands until Ctrl-C.
    Exit status: 0 every step behaved as told, 1 some did not, 2 it cannot start.
    """
    require_extra("demo", "demo", "fastapi", "uvicorn", as_json=as_json)
    from .._demo import run_demo

    raise SystemExit(run_demo(once=once, port=port, color=color, as_json=as_json))
