"""The README's Python examples run as written."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_quick_start_runs_and_scores_as_documented(smollm2_path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocks = python_blocks()
    assert blocks, "README.md has no python example"
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    printed = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed >= 0.95  # the README says "about 0.97"
