"""``import jwkguard`` stays light: heavy optional pieces load only when they are used."""

from __future__ import annotations

import json
import subprocess
import sys

# Each is imported on first use (a remote key source, introspection, the Redis store, mTLS,
# metrics), never by `import jwkguard`; see benchmarks/imports.py for the figures.
LAZY = ("httpx", "asyncio", "ssl", "cryptography.x509", "redis", "prometheus_client", "authlib")


def test_import_jwkguard_loads_no_heavy_optional_module() -> None:
    code = (
        "import sys, json, jwkguard; "
        f"print(json.dumps([name for name in {list(LAZY)!r} if name in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []
