"""What the demo runs: a local issuer and the example API, both on 127.0.0.1, in this process."""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import threading
import time
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self

from .._admin import LifecycleAdmin
from .._audit import AuditTrail
from .._lifecycle import Lifecycle
from .._stores import MemoryStore
from .._validator import Validator
from ..errors import ConfigurationError
from ..testing import LocalIssuer

__all__ = ["DemoStack", "ExampleMissing", "example_path", "load_example"]

AUDIENCE = "https://orders.example.com"
# A short cache lifetime so that the outage step is felt within seconds.
CACHE_SECONDS = 2


class ExampleMissing(Exception):
    """``examples/fastapi_app.py`` is not next to the package: not a source checkout."""


def example_path() -> Path:
    """Where the example API lives in a source checkout."""
    import jwkguard

    return Path(jwkguard.__file__).resolve().parents[1] / "examples" / "fastapi_app.py"


def load_example(path: Path | None = None) -> ModuleType:
    """Import the example API module from its file.

    Raises:
        ExampleMissing: The file does not exist (jwkguard installed from a wheel).
    """
    path = path or example_path()
    if not path.is_file():
        raise ExampleMissing(str(path))
    spec = importlib.util.spec_from_file_location("jwkguard_demo_example_app", path)
    if spec is None or spec.loader is None:
        raise ExampleMissing(str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "create_app", None)):
        raise ExampleMissing(f"{path} has no create_app(validator)")
    return module


class _AuditLines(logging.Handler):
    """Keeps the audit trail's JSON lines so the tour can show them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class DemoStack:
    """The issuer, the validator with its lifecycle store, and the API served by uvicorn.

    Args:
        port: The API's port on 127.0.0.1; 0 picks a free one.
    """

    def __init__(self, port: int = 8000) -> None:
        self.requested_port = port
        self.issuer = LocalIssuer(audience=AUDIENCE, cache_control=f"max-age={CACHE_SECONDS}")
        self.store = MemoryStore()
        audit_logger = logging.getLogger("jwkguard.demo.audit")
        audit_logger.propagate = False
        audit_logger.setLevel(logging.INFO)
        self.audit_lines = _AuditLines()
        audit_logger.addHandler(self.audit_lines)
        self.audit = AuditTrail(logger=audit_logger)
        self.admin = LifecycleAdmin(self.store, on_event=self.audit)
        self.validator: Validator | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- starting ---------------------------------------------------------------------------

    def start_issuer(self) -> None:
        """Serve discovery and the JWK Set on 127.0.0.1."""
        self.issuer.start()

    def build_app(self) -> Any:
        """The validator (keys by discovery, lifecycle checks) and the example API around it."""
        module = load_example()
        self.validator = Validator(
            issuers=[
                self.issuer.issuer_config(min_ttl=CACHE_SECONDS, max_stale=3600),
            ],
            algorithms=["RS256"],
            lifecycle=Lifecycle(self.store),
            on_event=self.audit,
        )
        return module.create_app(self.validator)

    def serve(self, app: Any, timeout: float = 20.0) -> None:
        """Run the API with uvicorn in a background thread until it accepts requests."""
        import uvicorn

        self._socket = _bind(self.requested_port)
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="jwkguard-demo-api"
        )
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError("the example API did not start")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        if self._socket is None:
            return self.requested_port
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the API, then the issuer."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.issuer.stop()
        logging.getLogger("jwkguard.demo.audit").removeHandler(self.audit_lines)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def last_audit(self) -> dict[str, Any] | None:
        """The latest audit record, parsed."""
        if not self.audit_lines.lines:
            return None
        record: dict[str, Any] = json.loads(self.audit_lines.lines[-1])
        return record


def _bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port``, or on a free port if that one is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        if port == 0:
            raise
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
