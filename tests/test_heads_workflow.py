"""The attention-head probing example, shortened, on the real SmolLM2: a head found, its probe far above chance."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from typing import Any

import pytest

from fastprobe.heads import PositionDataset

ROOT = pathlib.Path(__file__).resolve().parents[1]


def example() -> Any:
    spec = importlib.util.spec_from_file_location("attention_heads", ROOT / "examples" / "attention_heads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("smollm2_path")
def test_the_shortened_workflow_finds_a_head_that_carries_the_noun(tmp_path: pathlib.Path) -> None:
    run = example().main
    first = run(tmp_path / "a", n_nouns=24, n_search=12, seed=0, progress=False)
    # 24 nouns x 4 templates; 20 % held out (stratified: one sentence of most nouns)
    assert first["n_train"] + first["n_test"] == 96
    assert first["logistic_test_accuracy"] >= 0.6 > 10 * first["chance"]
    assert first["mlp_test_accuracy"] >= 0.5
    assert first["head"].startswith("head.") and first["head"][5:] == first["ranked"][0]
    assert (tmp_path / "a" / "heads.png").stat().st_size > 1000
    saved = PositionDataset.load(tmp_path / "a" / "noun_it.safetensors")
    assert len(saved) == 96 and saved.sites == [first["head"]]
    assert saved.metadata["user"] == {"experiment": "noun-it test"}
    again = run(tmp_path / "b", n_nouns=24, n_search=12, seed=0, progress=False)
    assert again == first  # the same seed gives the same numbers
    assert json.loads((tmp_path / "b" / "results.json").read_text()) == first
