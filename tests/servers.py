"""Real servers for the tests, each on a loopback port: redis-server, PostgreSQL, nginx, uvicorn.

The binaries come from ``require_binary`` (tests/conftest.py) in the callers, so a missing one
skips the test locally and fails it in CI.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> str:
    """Terminate ``process`` (only this one), kill it if it lingers, return what it printed."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    if process.stdout is None or process.stdout.closed:
        return ""
    with process.stdout:
        return str(process.stdout.read())


def wait_until_listening(port: int, process: subprocess.Popen[Any] | None, timeout: float) -> None:
    """Block until something accepts connections on ``port`` (or fail with the process log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = stop_process(process)
            raise AssertionError(f"process exited with {process.returncode}:\n{output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


class RedisServer:
    """A real redis-server on a loopback port, without persistence.

    Tests may kill it (SIGKILL: all data gone), pause it (SIGSTOP: a hung Redis), or stop it
    and start it again on the same port (an outage). As a context manager it starts and stops.
    """

    def __init__(self, binary: str, workdir: Path, *, args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.args = args  # extra options: --replicaof, --cluster-enabled, ...
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--loglevel",
            "warning",
            *self.args,
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not answer in time")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server vanishes with all its data (no persistence)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a hung Redis)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.resume()  # a paused server would not act on SIGTERM
        process, self.process = self.process, None
        stop_process(process)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class PostgresServer:
    """A throwaway PostgreSQL cluster on a loopback port: ``initdb`` into a fresh directory,
    then ``postgres`` in the foreground (no fsync, trust authentication for ``postgres``).

    ``bindir`` holds ``initdb`` and ``postgres`` (Debian: /usr/lib/postgresql/<N>/bin, not on
    PATH). Both refuse to run as root, so under root they run as the ``postgres`` user and the
    cluster lives in a directory of its own under the system temp dir (pytest's tmp_path is not
    reachable by another user). As a context manager it starts and stops, and removes the
    directory.
    """

    def __init__(self, bindir: Path, *, user: str = "postgres") -> None:
        self.bindir = bindir
        self.port = free_port()
        self.as_user: pwd.struct_passwd | None = pwd.getpwnam(user) if os.geteuid() == 0 else None
        self.workdir: Path | None = None
        self.process: subprocess.Popen[str] | None = None

    @property
    def user(self) -> str:
        return self.as_user.pw_name if self.as_user is not None else pwd.getpwuid(os.geteuid())[0]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def django_database(self, name: str = "postgres") -> dict[str, Any]:
        """A ``DATABASES`` entry for database ``name`` of this cluster."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": self.user,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }

    def _run_as(self) -> dict[str, Any]:
        if self.as_user is None:
            return {}
        return {"user": self.as_user.pw_uid, "group": self.as_user.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 30.0) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="jwkguard-pg-"))
        self.workdir = workdir
        if self.as_user is not None:
            os.chown(workdir, self.as_user.pw_uid, self.as_user.pw_gid)
        data = workdir / "data"
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(workdir)}
        initdb = [str(self.bindir / "initdb"), "-D", str(data), "-U", self.user]
        initdb += ["--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"]
        done = subprocess.run(
            initdb, env=env, cwd=workdir, capture_output=True, text=True, **self._run_as()
        )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb exited with {done.returncode}:\n{done.stdout}{done.stderr}")
        command = [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port)]
        command += ["-k", str(workdir), "-h", "127.0.0.1", "-F", "-c", "max_connections=50"]
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **self._run_as(),
        )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = stop_process(self.process)
                self.process = None
                self.stop()
                raise RuntimeError(f"postgres did not start:\n{output}")
            time.sleep(0.05)

    def ready(self) -> bool:
        """True once the server accepts a connection (not just the port: startup refuses)."""
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
        if process is not None:
            stop_process(process, timeout=20)
        workdir, self.workdir = self.workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Nginx:
    """nginx in the foreground, confined to ``workdir`` (prefix, pid file, temp paths, logs).

    ``http_block`` goes inside ``http { }``. With ``capture_output`` nginx's stdout and stderr
    are kept for the failure message; otherwise they are discarded. ``auth_port`` is free for
    the caller to record the port of the service nginx asks (``auth_request``).
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        http_block: str,
        port: int,
        *,
        worker_connections: int = 64,
        capture_output: bool = False,
        auth_port: int = 0,
        start_timeout: float = 15.0,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = port
        self.auth_port = auth_port
        self.capture_output = capture_output
        self.start_timeout = start_timeout
        temp = "\n".join(
            f"    {kind}_temp_path {workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (workdir / "nginx.conf").write_text(
            f"""
daemon off;
master_process off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
{temp}
{http_block}
}}
""",
            encoding="utf-8",
        )
        self.command = [
            binary,
            "-p",
            str(workdir),
            "-c",
            str(workdir / "nginx.conf"),
            "-e",
            str(workdir / "error.log"),
        ]
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        capture = self.capture_output
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
            text=True,
        )
        try:
            wait_until_listening(self.port, self.process, timeout=self.start_timeout)
        except AssertionError as exc:
            self.__exit__()
            raise AssertionError(f"nginx: {exc}\n{self.error_log()}") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""


class ASGIServer:
    """uvicorn serving an ASGI app in a thread on 127.0.0.1.

    ``options`` go to ``uvicorn.Config`` (TLS with ``ssl_cert_reqs``, proxy headers, ``ws``,
    ``lifespan``...); by default the lifespan is off and proxy headers are not trusted.
    """

    def __init__(self, app: Any, **options: Any) -> None:
        import uvicorn  # here, so that tests without an ASGI server need no uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        options.setdefault("proxy_headers", False)
        options.setdefault("lifespan", "off")
        config = uvicorn.Config(app, log_level="warning", access_log=False, **options)
        self._tls = config.is_ssl
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
