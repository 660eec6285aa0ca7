"""What the demo runs: a local issuer and the example API, both on 127.0.0.1, in this process."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

from .._context import SyncContext
from .._validator import Validator
from ..errors import ConfigurationError
from ..lifecycle._admin import LifecycleAdmin
from ..lifecycle._audit import AuditTrail
from ..lifecycle._policy import Lifecycle
from ..lifecycle._store import MemoryStore
from ..testing import LocalIssuer

__all__ = ["DemoStack", "PortUnavailable"]

AUDIENCE = "https://orders.example.com"
DEFAULT_PORT = 8000
# A short cache lifetime so that the outage step is felt within seconds.
CACHE_SECONDS = 2


class PortUnavailable(Exception):
    """The port asked for with ``--port`` cannot be had."""


class _AuditLines(logging.Handler):
    """Keeps the audit trail's JSON lines so the tour can show them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class DemoStack(SyncContext):
    """The issuer, the validator with its lifecycle store, and the API served by uvicorn.

    Args:
        port: The API's port on 127.0.0.1; 0 picks a free one; ``None`` tries
            :data:`DEFAULT_PORT` and takes a free one if that is busy (``moved_from`` says so).
    """

    def __init__(self, port: int | None = None) -> None:
        self.requested_port = port
        self.moved_from: int | None = None
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
        """The validator (keys by discovery, lifecycle checks) and the orders API around it."""
        from ._api import create_app

        self.validator = Validator(
            issuers=[
                self.issuer.issuer_config(min_ttl=CACHE_SECONDS, max_stale=3600),
            ],
            algorithms=["RS256"],
            lifecycle=Lifecycle(self.store),
            on_event=self.audit,
        )
        return create_app(self.validator)

    def serve(self, app: Any, timeout: float = 20.0) -> None:
        """Run the API with uvicorn in a background thread until it accepts requests."""
        import uvicorn

        self._socket, self.moved_from = _bind(self.requested_port)
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
            return DEFAULT_PORT if self.requested_port is None else self.requested_port
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

    def _exit(self) -> None:
        self.stop()

    def last_audit(self) -> dict[str, Any] | None:
        """The latest audit record, parsed."""
        if not self.audit_lines.lines:
            return None
        record: dict[str, Any] = json.loads(self.audit_lines.lines[-1])
        return record


def _bind(port: int | None) -> tuple[socket.socket, int | None]:
    """A listening socket on 127.0.0.1, and the default port it moved from (if it did).

    Raises:
        PortUnavailable: ``port`` was asked for and cannot be had.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    moved_from = None
    try:
        sock.bind(("127.0.0.1", DEFAULT_PORT if port is None else port))
    except OSError as exc:
        sock.close()
        if port is not None:
            raise PortUnavailable(
                f"port {port} on 127.0.0.1 cannot be used ({exc.strerror or exc}); "
                "choose another with --port N, or --port 0 for any free port"
            ) from None
        moved_from = DEFAULT_PORT
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock, moved_from
