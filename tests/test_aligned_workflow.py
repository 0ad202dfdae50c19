"""The aligned-probing example, shortened, on the real SmolLM2: the prompts' sentiment is in the prompt internals."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def example() -> Any:
    spec = importlib.util.spec_from_file_location("aligned_probing", ROOT / "examples" / "aligned_probing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(table: Any) -> dict[str, dict[str, Any]]:
    rows = table.to_dict("records") if hasattr(table, "to_dict") else table
    return {r["layer"]: r for r in rows}


@pytest.mark.usefixtures("smollm2_path")
def test_the_input_scenarios_best_layer_reads_the_prompts_sentiment_well_above_its_control(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("vaderSentiment")
    run = example().main
    kw: dict[str, Any] = {
        "n_prompts": 60,
        "n_samples": 2,
        "max_new_tokens": 6,
        "layers": [4, 14, 24],
        "seeds": (0,),
        "progress": False,
    }
    results = run(tmp_path, plot=tmp_path / "scenarios.png", **kw)
    assert results.scenarios == ["input", "output", "forward", "backward"] and results.attributes == ["sentiment"]
    best = results.best_layer("input", "sentiment")
    row = _rows(results.table("input", "sentiment"))[best]
    assert row["n_examples"] == 120  # 60 prompts x 2 templates; the samples of a pair share the prompt span
    assert row["task"] > 0.6 and row["task"] - row["control"] > 0.4
    assert row["compression"] > 1.0
    assert (tmp_path / "scenarios.png").stat().st_size > 1000
    # a rerun generates nothing and computes no cell: the store and the experiment database hold them
    import fastprobe.aligned.capture as capture_module

    def no_generation(*args: Any, **kwargs: Any) -> Any:
        for _gen in real(*args, **kwargs):
            raise AssertionError("a finished capture was generated again")
        return
        yield

    real = capture_module.generate_batches
    monkeypatch.setattr(capture_module, "generate_batches", no_generation)
    again = run(tmp_path, **kw)
    assert again.run_stats is not None and again.run_stats.ran == 0
    assert _rows(again.table("input", "sentiment"))[best]["task"] == row["task"]
