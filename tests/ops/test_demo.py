"""`jwkguard demo --once`: the README's first command, run as users run it."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jwkguard import _demo
from jwkguard._demo import _stack, _tour, cli_command, run_demo

from .conftest import JWKGUARD

pytestmark = pytest.mark.slow


def test_demo_tour_runs_every_step_as_told() -> None:
    result = subprocess.run(
        [JWKGUARD, "demo", "--once", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    titles = [step.title for step in _tour.steps()]
    for index, title in enumerate(titles, 1):
        assert f"[{index:>2}/{len(titles)}] {title}" in output
    assert output.count("✓ as told") == len(titles) == 11
    assert "NOT as told" not in output
    assert "Every step behaved as told." in output
    assert "\x1b[" not in output  # no colours when stdout is not a terminal
    assert re.search(r"WWW-Authenticate: Bearer realm=\"api\"\n", output)
    assert 'scope="orders:write"' in output
    assert "the JWK Set was fetched 1 time(s)" in output
    assert '"action":"subject_cut_off"' in output


@pytest.mark.parametrize("as_json", [False, True])
def test_demo_exits_1_when_a_step_misbehaves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    def teapot(stack: _stack.DemoStack, client: object) -> _tour.Seen:
        return _tour.Seen(False, notes=["the API did not answer 418"])

    monkeypatch.setattr(
        _tour,
        "steps",
        lambda: [_tour.Step("A step that cannot pass", "expects a teapot", teapot)],
    )
    assert run_demo(once=True, port=0, color=False, as_json=as_json) == 1
    output = capsys.readouterr().out
    if as_json:
        document = json.loads(output)
        assert document["ok"] is False
        assert document["steps"] == [
            {
                "title": "A step that cannot pass",
                "story": "expects a teapot",
                "ok": False,
                "request": None,
                "status": None,
                "reason": None,
                "www_authenticate": None,
                "notes": ["the API did not answer 418"],
            }
        ]
    else:
        assert "✗ NOT as told" in output
        assert "Some steps did NOT behave as told" in output


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_a_port_asked_for_that_is_busy_is_an_error(
    busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(once=True, port=busy_port, color=False) == 2
    output = capsys.readouterr().out
    assert f"port {busy_port} on 127.0.0.1 cannot be used" in output
    assert "--port 0" in output
    assert "[ 1/" not in output  # no tour against another program


def test_a_busy_default_port_is_said_and_another_one_used(
    busy_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_stack, "DEFAULT_PORT", busy_port)
    monkeypatch.setattr(_tour, "steps", lambda: [])
    assert run_demo(once=True, color=False) == 0
    output = capsys.readouterr().out
    moved = re.search(rf"Port {busy_port} is busy, so the API uses port (\d+)", output)
    assert moved is not None, output
    assert int(moved.group(1)) != busy_port
    assert f"API      http://127.0.0.1:{moved.group(1)}" in output


def test_the_closing_line_is_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_demo, "_commands", lambda stack: [("keys", "jwkguard keys x")])
    for tty, closing in [
        (True, "Serving on 127.0.0.1. Enter for fresh tokens, Ctrl-C to stop.\n"),
        (False, "Serving on 127.0.0.1. Ctrl-C to stop.\n"),
    ]:
        monkeypatch.setattr(sys.stdin, "isatty", lambda tty=tty: tty, raising=False)
        _demo._print_commands(object(), _demo.Console(color=False))  # type: ignore[arg-type]
        assert capsys.readouterr().out.endswith(closing)


def test_printed_commands_run_in_a_fresh_shell(tmp_path: Path) -> None:
    """In a venv the printed `jwkguard` is the script's absolute path: no activation needed."""
    command = cli_command()
    if sys.prefix != sys.base_prefix:
        assert command == str(Path(sys.executable).parent.absolute() / "jwkguard")
    # A shell with a bare PATH, started elsewhere, runs it.
    result = subprocess.run(
        ["/bin/sh", "-c", f"{command} --version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("jwkguard, version ")
