"""Run the benchmark suites: ``python -m benchmarks [suite ...]`` (all by default)."""

from __future__ import annotations

import importlib
import platform
import sys

# Each suite is a module in this package with a ``main() -> None`` that prints its table.
SUITES = (
    "core",
    "remote",
    "lifecycle",
    "token_cache",
    "imports",
    "pipeline",
    "http_fastapi",
    "http_flask",
    "http_django",
    "forward_auth",
    "sender",
)


def main(argv: list[str]) -> int:
    """Run the named suites (all when none is named)."""
    chosen = argv or list(SUITES)
    unknown = [name for name in chosen if name not in SUITES]
    if unknown:
        print(f"unknown suites: {', '.join(unknown)}; known: {', '.join(SUITES)}")
        return 2
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"# {python} on {platform.machine()}")
    for name in chosen:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{name}":
                raise
            print(f"\n## {name}: not written yet")
            continue
        print(f"\n## {name}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
