"""The ``jwkguard`` command line: incident review, key listings, the demo and the gateway server.

Every command takes ``--json``; exit status 0 means valid/done, 1 invalid, 2 usage or
configuration, 3 keys (or the store) unavailable.
"""

from __future__ import annotations

import logging
import sys

import click

from ._admin import ADMIN_COMMANDS
from ._demo import demo_command
from ._issuer import issuer_command
from ._keys import keys_command
from ._serve import serve_command
from ._tokens import inspect_command, verify_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="jwkguard", prog_name="jwkguard")
def cli() -> None:
    """Strict local validation of JWT access tokens: review tokens, list keys, run the demo
    or a forward-auth server for gateways."""
    # Library loggers stay quiet in the CLI unless a command sets up logging itself.
    library = logging.getLogger("jwkguard")
    if not any(isinstance(handler, logging.NullHandler) for handler in library.handlers):
        library.addHandler(logging.NullHandler())


cli.add_command(inspect_command)
cli.add_command(verify_command)
cli.add_command(keys_command)
cli.add_command(serve_command)
cli.add_command(demo_command)
cli.add_command(issuer_command)
for _command in ADMIN_COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script calls ``sys.exit`` on it)."""
    try:
        cli.main(args=argv, prog_name="jwkguard", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
