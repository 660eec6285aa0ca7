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


def test_import_jwkguard_defers_everything_beyond_validation() -> None:
    """The request pipeline, DPoP, introspection, stores and admin load on first use."""
    deferred = (
        "jwkguard.pipeline._pipeline",
        "jwkguard.sender._dpop",
        "jwkguard.lifecycle._admin",
        "jwkguard.fleet._redis_store",
    )
    code = (
        "import sys, json, jwkguard; "
        f"print(json.dumps([name for name in {list(deferred)!r} if name in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


def test_every_public_name_resolves() -> None:
    """Deferred names still import (`from jwkguard import X`) and `dir()` lists them."""
    code = (
        "import jwkguard; "
        "missing = [n for n in jwkguard.__all__ if getattr(jwkguard, n, None) is None]; "
        "assert not missing, missing; "
        "assert set(jwkguard.__all__) <= set(dir(jwkguard)); "
        "from jwkguard import RequestPipeline, DPoPVerifier, Introspector; "
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
