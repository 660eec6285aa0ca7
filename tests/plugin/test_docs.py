"""The "Testing your API" page's example project runs as written, through the plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._inner import STRICT_WARNINGS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"

# pytester is enabled here: pytest_plugins in a conftest is allowed only at the rootdir.
pytest_plugins = ["pytester"]


def test_the_example_project_of_the_testing_page_passes(pytester: pytest.Pytester) -> None:
    files = re.findall(r'```python title="([^"]+)"\n(.*?)```', PAGE.read_text(), re.DOTALL)
    assert [name for name, _ in files] == ["myapp.py", "test_orders.py"]
    for name, source in files:
        pytester.path.joinpath(name).write_text(source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *STRICT_WARNINGS)
    result.assert_outcomes(passed=3)
