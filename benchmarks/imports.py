"""Import cost: ``import jwkguard`` and each adapter beside ``import jwt`` (PyJWT), cold.

Every figure comes from fresh interpreters, the modules taking turns round by round:

- ``CPU ms``: user + system CPU time of ``python -c "import M"`` minus that of
  ``python -c "pass"`` (CPU time, so that neighbours on a shared machine do not inflate it);
- ``importtime ms``: the module's cumulative time from ``python -X importtime -c "import M"``
  (wall time inside the process, without interpreter start-up);
- ``modules``: how many modules the import adds to ``sys.modules``.

Medians over the rounds. Each framework is listed too, so an adapter's own share is its row
minus its framework's. Modules that cannot be imported here are reported and skipped.
Run with ``python -m benchmarks imports``; ``JWKGUARD_IMPORT_ROUNDS`` sets the rounds.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (module, what it stands for); frameworks first so that adapters can be read against them.
MODULES = (
    ("jwt", "PyJWT"),
    ("jwkguard", "jwkguard core"),
    ("fastapi", "FastAPI itself"),
    ("jwkguard_fastapi", "jwkguard FastAPI adapter"),
    ("flask", "Flask itself"),
    ("jwkguard_flask", "jwkguard Flask adapter"),
    ("django.http", "Django request/response"),
    ("jwkguard_django.middleware", "jwkguard Django middleware"),
)
# Optional pieces that ``import jwkguard`` must not load (they load when first used).
LAZY = (
    "httpx",
    "asyncio",
    "ssl",
    "cryptography.x509",
    "redis",
    "prometheus_client",
    "authlib",
    "jwkguard.keys._remote",
)
_TIMEOUT = 60.0


def _run(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=False,
        cwd=ROOT,
    )


def _cpu_ms(code: str) -> float:
    """User + system CPU time of a fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _run(["-c", code])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return used * 1e3


def _importtime_ms(module: str) -> float:
    """The cumulative import time of ``module`` (and of its packages, imported first)."""
    done = _run(["-X", "importtime", "-c", f"import {module}"])
    parts_of = module.split(".")
    names = {" " + ".".join(parts_of[: end + 1]) for end in range(len(parts_of))}
    total = 0.0
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].rstrip() in names:
            total += int(parts[1]) / 1e3
    return total


def _loaded(module: str) -> tuple[int, list[str]]:
    code = (
        "import sys, json; before = set(sys.modules); "
        f"import {module}; "
        f"print(json.dumps([len(set(sys.modules) - before), "
        f"[name for name in {list(LAZY)!r} if name in sys.modules]]))"
    )
    done = _run(["-c", code])
    count, heavy = json.loads(done.stdout)
    return int(count), list(heavy)


def importable(module: str) -> bool:
    """True if ``module`` imports in a fresh interpreter."""
    return _run(["-c", f"import {module}"]).returncode == 0


def measure(modules: list[str], rounds: int) -> dict[str, dict[str, float]]:
    """Median CPU time and import time per module."""
    cpu: dict[str, list[float]] = {name: [] for name in modules}
    inner: dict[str, list[float]] = {name: [] for name in modules}
    baseline: list[float] = []
    for round_number in range(rounds):
        shift = round_number % len(modules)
        baseline.append(_cpu_ms("pass"))
        for name in modules[shift:] + modules[:shift]:
            cpu[name].append(_cpu_ms(f"import {name}"))
            inner[name].append(_importtime_ms(name))
    start = statistics.median(baseline)
    return {
        name: {
            "importtime": statistics.median(inner[name]),
            "cpu": statistics.median(cpu[name]) - start,
            "start": start,
        }
        for name in modules
    }


def main() -> None:
    """Print the import table and what ``import jwkguard`` leaves unloaded."""
    rounds = int(os.environ.get("JWKGUARD_IMPORT_ROUNDS", "11"))
    present = [name for name, _ in MODULES if importable(name)]
    missing = [name for name, _ in MODULES if name not in present]
    results = measure(present, rounds)
    labels = dict(MODULES)
    start = results[present[0]]["start"]
    print(f"{rounds} rounds; interpreter start-up {start:.0f} ms of CPU (median, subtracted)")
    print()
    print("| import | stands for | CPU ms | x PyJWT | importtime ms | modules |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    reference = results.get("jwt", {}).get("cpu")
    heavy_in_core: list[str] = []
    for name in present:
        count, heavy = _loaded(name)
        if name == "jwkguard":
            heavy_in_core = heavy
        row = results[name]
        ratio = f"{row['cpu'] / reference:.2f}x" if reference else "-"
        print(
            f"| `{name}` | {labels[name]} | {row['cpu']:.1f} | {ratio} "
            f"| {row['importtime']:.1f} | {count} |"
        )
    for name in missing:
        print(f"| `{name}` | {labels[name]} | not importable here | | | |")
    print()
    print(f"lazy pieces checked: {', '.join(LAZY)}")
    if "jwkguard" in present:
        loaded = ", ".join(heavy_in_core) if heavy_in_core else "none"
        print(f"loaded by `import jwkguard`: {loaded}")


if __name__ == "__main__":
    main()
