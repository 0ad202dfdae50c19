"""The README's Python examples run as written."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_quick_start_runs_and_scores_as_documented(smollm2_path, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The examples name SmolLM2 by its Hub id; offline, it is read from a Hugging Face cache holding the model."""
    from fastprobe.testing import offline_hub, place_in_hub_cache

    blocks = python_blocks()
    assert blocks, "README.md has no python example"
    assert 'MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"' in blocks[0]
    place_in_hub_cache(smollm2_path, "HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path / "hub")
    namespace: dict[str, object] = {}
    with offline_hub(tmp_path / "hub"):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    printed = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed >= 0.95  # the README says "about 0.97"
