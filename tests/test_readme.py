"""The README's usage example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_runs(capsys):
    """The first Python block of the README executes and prints the finished task."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None, "README has no python example"
    namespace: dict[str, object] = {}
    exec(compile(block.group(1), str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "'status': 'completed'" in out
    assert "{'content': [{'type': 'text', 'text': '42'}]}" in out
