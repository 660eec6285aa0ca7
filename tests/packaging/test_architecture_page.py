"""docs/architecture.md is the map of the tree: it names every module, and only real ones."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jwkguard"
PAGE = (ROOT / "docs" / "architecture.md").read_text()
APPLICATION_FOLDERS = ("_cli", "_demo", "_forward_auth", "testing")
NAMED = set(re.findall(r"`([\w/]+\.py)`", PAGE))


def _modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.name == "__init__.py" or relative.parts[0] in APPLICATION_FOLDERS:
            continue
        found.add(relative.as_posix())
    return found


def test_the_page_names_every_module_of_the_core() -> None:
    assert sorted(_modules() - NAMED) == []


def test_every_module_the_page_names_exists() -> None:
    missing = [name for name in NAMED if not (PACKAGE / name).is_file()]
    assert missing == []


def test_the_page_names_every_folder_of_the_package() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    named = set(re.findall(r"`(?:jwkguard/)?(\w+)/`", PAGE))
    assert sorted(folders - named) == []
