"""The built wheel, installed as users install it: into a clean venv, with documented extras only.

The versions come from ``uv.lock`` (as constraints), so this test is as reproducible as the rest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from jwkguard.testing import LocalIssuer

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = Path(sys.executable).with_name("uv")
    if not uv.is_file():
        message = f"uv is not installed next to {sys.executable} (the dev group brings it)"
        if os.environ.get("JWKGUARD_REQUIRE_BINARIES"):
            pytest.fail(message)
        pytest.skip(message)
    return str(uv)


def _run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH and a directory outside the checkout: only the installed wheel is imported.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make dist``'s wheel and sdist, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    built = _run(_uv(), "build", "--quiet", "--out-dir", str(out), str(ROOT), cwd=out)
    assert built.returncode == 0, built.stderr
    return out


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The locked runtime versions, as pip constraints."""
    path = tmp_path_factory.mktemp("lock") / "constraints.txt"
    exported = _run(
        _uv(),
        "export",
        "--frozen",
        "--quiet",
        "--all-extras",
        "--no-dev",
        "--no-hashes",
        "--no-emit-project",
        "--output-file",
        str(path),
        cwd=ROOT,
    )
    assert exported.returncode == 0, exported.stderr
    return path


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("jwkguard-*.whl")
    return wheel


def _venv(dist: Path, constraints: Path, where: Path, extras: str) -> Path:
    """A fresh venv with the wheel (and ``extras``) installed; returns its bin directory."""
    venv = where / "venv"
    made = _run(_uv(), "venv", "--quiet", "--python", sys.executable, str(venv), cwd=where)
    assert made.returncode == 0, made.stderr
    requirement = f"jwkguard{extras} @ {_wheel(dist).as_uri()}"
    installed = _run(
        _uv(),
        "pip",
        "install",
        "--quiet",
        "--python",
        str(venv / "bin" / "python"),
        "--constraint",
        str(constraints),
        requirement,
        cwd=where,
    )
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


@pytest.fixture(scope="module")
def demo_venv(dist: Path, constraints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(dist, constraints, tmp_path_factory.mktemp("demo"), "[demo]")


@pytest.fixture(scope="module")
def plain_venv(dist: Path, constraints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _venv(dist, constraints, tmp_path_factory.mktemp("plain"), "")


def test_the_wheel_carries_the_demo_and_the_metadata_an_index_shows(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        names = set(wheel.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    for package in (
        "jwkguard",
        "jwkguard_fastapi",
        "jwkguard_django",
        "jwkguard_flask",
        "jwkguard_pytest",
    ):
        assert f"{package}/py.typed" in names
    assert "jwkguard/_demo/_api.py" in names
    assert not any(name.startswith(("tests/", "examples/")) for name in names)
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert set(urls) >= {"Documentation", "Changelog", "Issues", "Source"}
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = metadata.get_all("Classifier") or []
    for framework in ("Django", "FastAPI", "Flask"):
        assert f"Framework :: {framework}" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata["Keywords"]
    (sdist,) = dist.glob("jwkguard-*.tar.gz")
    assert sdist.stat().st_size > 0


def test_demo_runs_from_the_wheel_with_the_demo_extra(demo_venv: Path, tmp_path: Path) -> None:
    helped = _run(str(demo_venv / "jwkguard"), "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout
    assert "inspect" in helped.stdout
    demo = _run(str(demo_venv / "jwkguard"), "demo", "--once", "--port", "0", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Every step behaved as told." in demo.stdout
    assert "Traceback" not in demo.stderr
    where = _run(
        str(demo_venv / "python"), "-c", "import jwkguard; print(jwkguard.__file__)", cwd=tmp_path
    )
    assert "site-packages" in where.stdout  # the wheel, not this checkout


def test_a_plain_install_runs_the_cli_and_names_the_extras_it_lacks(
    plain_venv: Path, tmp_path: Path
) -> None:
    jwkguard = str(plain_venv / "jwkguard")
    helped = _run(jwkguard, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    with LocalIssuer(audience="https://api.example.com") as issuer:
        token = issuer.mint(subject="alice")
        inspected = _run(jwkguard, "inspect", token, cwd=tmp_path)
        assert inspected.returncode == 0, inspected.stderr
        assert "alice" in inspected.stdout
        claims = ["--issuer", issuer.url, "--audience", issuer.audience]
        verified = _run(jwkguard, "verify", token, *claims, cwd=tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    for command, extra, modules in [
        (["demo", "--once"], "demo", "fastapi and uvicorn"),
        (["serve", "--check"], "cli", "starlette and uvicorn"),
    ]:
        result = _run(jwkguard, *command, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"error: `jwkguard {command[0]}` needs {modules}: pip install 'jwkguard[{extra}]'\n"
        )


def test_the_makefile_bootstraps_the_uv_the_lock_was_made_with() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pinned = [r for r in pyproject["dependency-groups"]["dev"] if r.startswith("uv==")]
    makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile is not None
    assert pinned == [f"uv=={makefile.group(1)}"]
