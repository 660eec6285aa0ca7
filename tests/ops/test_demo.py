"""`jwkguard demo --once`: the README's first command, run as users run it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from jwkguard import _demo
from jwkguard._demo import _stack, _tour, run_demo
from jwkguard._demo._stack import ExampleMissing, load_example

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


def test_demo_explains_that_it_needs_a_source_checkout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "examples" / "fastapi_app.py"
    monkeypatch.setattr(_stack, "example_path", lambda: missing)
    monkeypatch.setattr(_demo, "example_path", lambda: missing)
    assert run_demo(once=True, port=0, color=False) == 2
    output = capsys.readouterr().out
    assert "runs from a source checkout" in output
    assert str(missing) in output


def test_the_example_is_loaded_by_file_path() -> None:
    module = load_example()
    assert callable(module.create_app)
    with pytest.raises(ExampleMissing):
        load_example(Path("/nonexistent/fastapi_app.py"))
