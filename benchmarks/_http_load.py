"""The HTTP load client and server-process helpers shared by the HTTP suites.

Requests are raw HTTP/1.1 bytes built once and sent over keep-alive connections to a server
in a child process on 127.0.0.1: from threads with blocking sockets (:func:`load_threads`) or
from asyncio (:func:`load_async`). Responses carry ``Content-Length``; only the status is read.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0
HOST = "127.0.0.1"


# -- requests and responses -----------------------------------------------------------------


def get_request(path: str, headers: Iterable[str] = ()) -> bytes:
    """A keep-alive ``GET path`` to 127.0.0.1 with the given header lines."""
    return "\r\n".join([f"GET {path} HTTP/1.1", f"Host: {HOST}", *headers, "", ""]).encode()


def api_request(path: str, token: str | None) -> bytes:
    """A JSON ``GET path``, with ``Authorization: Bearer token`` unless ``token`` is None."""
    bearer = [] if token is None else [f"Authorization: Bearer {token}"]
    return get_request(path, ["Accept: application/json", *bearer])


def parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of a response head; a missing length counts as 0."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return status, length


def _receive(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("server closed the connection")
    return chunk


def read_response(sock: socket.socket, buffer: bytearray) -> int:
    """Read one response from ``sock``; return its status.

    ``buffer`` holds what was received beyond the previous response; it is kept for the next.
    """
    while b"\r\n\r\n" not in buffer:
        buffer += _receive(sock)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status, length = parse_head(head)
    while len(rest) < length:
        rest += _receive(sock)
    buffer[:] = rest[length:]
    return status


async def aread_response(reader: asyncio.StreamReader) -> int:
    """Read one response from ``reader``; return its status."""
    status, length = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if length:
        await reader.readexactly(length)
    return status


# -- load from threads ------------------------------------------------------------------------


def load_threads(
    port: int,
    request: bytes,
    total: int,
    *,
    connections: int,
    latencies: list[float] | None = None,
    timeout: float = TIMEOUT,
) -> float:
    """Send ``total`` requests over ``connections`` keep-alive connections; return seconds taken.

    One thread per connection; the clock starts when all are connected. Each request's latency
    (send to full response) is appended to ``latencies`` if given. Any status but 200 stops
    its connection and raises ``RuntimeError`` at the end.
    """
    per_connection = total // connections
    start = threading.Barrier(connections + 1)
    failures: list[str] = []

    def worker() -> None:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = bytearray()
            start.wait(timeout)
            for _ in range(per_connection):
                began = time.perf_counter()
                sock.sendall(request)
                status = read_response(sock, buffer)
                if latencies is not None:
                    latencies.append(time.perf_counter() - began)
                if status != 200:
                    failures.append(f"status {status}")
                    return

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    start.wait(timeout)
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout * 4)
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"the benchmark route did not answer 200: {failures[0]}")
    return elapsed


# -- load from asyncio ------------------------------------------------------------------------


@dataclass
class Tally:
    """What the client saw: latencies in seconds, errors, and a count per status."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


Mix = Sequence[tuple[bytes, int]]
"""Requests sent in turn, each with the status it must get."""


async def _connection(
    port: int, mix: Mix, offset: int, count: float, until: float, tally: Tally
) -> None:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as exc:
        tally.errors.append(f"connect: {exc}")
        return
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    index = offset
    try:
        while index - offset < count and time.perf_counter() < until:
            request, expected = mix[index % len(mix)]
            index += 1
            began = time.perf_counter()
            writer.write(request)
            status = await aread_response(reader)
            tally.latencies.append(time.perf_counter() - began)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status != expected:
                tally.errors.append(f"expected {expected}, got {status}")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        tally.errors.append(f"connection: {type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def load_async(
    port: int,
    mix: Mix,
    *,
    connections: int,
    total: int | None = None,
    seconds: float | None = None,
    limit: float,
) -> tuple[float, Tally]:
    """Send ``mix`` in turn over ``connections`` keep-alive connections: (seconds taken, tally).

    Each connection stops after ``total // connections`` requests or ``seconds`` of load,
    whichever comes first (at least one of them must be given); connection ``n`` starts at
    the ``n``-th request of the mix. The whole load may take ``limit`` seconds at most.
    """
    if total is None and seconds is None:
        raise ValueError("give the total number of requests or the seconds of load")
    count = float("inf") if total is None else total // connections
    tally = Tally()
    began = time.perf_counter()
    until = float("inf") if seconds is None else began + seconds
    jobs = [_connection(port, mix, n, count, until, tally) for n in range(connections)]
    await asyncio.wait_for(asyncio.gather(*jobs), limit)
    return time.perf_counter() - began, tally


# -- the server process -------------------------------------------------------------------------


def pin(cpu: int) -> None:
    """Keep this process (and the threads it starts later) on ``cpu``, if it may use two."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        os.sched_setaffinity(0, {allowed[cpu]})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_serve(module: str, environment: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """Run ``python -m module serve`` from the repository; return it and the port it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "serve"],
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout is not None else ""
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError("the benchmark server did not start")
    return process, int(line)


def wait_ready(
    process: subprocess.Popen[bytes], port: int, path: str, *, name: str, timeout: float = TIMEOUT
) -> None:
    """Wait until ``GET path`` on ``port`` answers 200; kill ``process`` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited")
        try:
            with socket.create_connection((HOST, port), timeout=1) as probe:
                probe.sendall(get_request(path))
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not become ready")


def stop(processes: Iterable[subprocess.Popen[Any]]) -> None:
    """Terminate each server process, wait for it, and close its pipe."""
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
