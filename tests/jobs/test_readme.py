"""The README's job-queue examples are the modules the tests run, character for character."""

from __future__ import annotations

import ast
import re

import pytest

from tests.support import ROOT


def _python_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)]


@pytest.mark.parametrize("queue", ["celery", "arq", "taskiq"])
def test_the_readme_quotes_the_example_the_tests_run(queue: str) -> None:
    source = (ROOT / "tests" / "jobs" / f"example_{queue}.py").read_text()
    docstring_end = ast.parse(source).body[0].end_lineno
    body = "\n".join(source.splitlines()[docstring_end:]).strip()
    section = (ROOT / "README.md").read_text().split("## Background jobs", 1)[1].split("\n## ", 1)[0]
    assert body in _python_blocks(section), f"README's {queue} example differs from tests/jobs/example_{queue}.py"
