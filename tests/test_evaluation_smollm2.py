"""Cross-validation and selectivity on the real SmolLM2 and real true/false statements, grouped by city."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fastprobe.datasets import city_facts
from fastprobe.evaluation import cross_validate, read_layers, selectivity


def rows(table: Any) -> dict[Any, dict[str, Any]]:
    recs = table.to_dict("records") if hasattr(table, "to_dict") else table
    return {r["layer"]: r for r in recs}


@pytest.mark.usefixtures("exact_cache")
def test_truth_is_read_from_a_middle_layer_not_from_the_embeddings(smollm2_path: Any) -> None:
    data = city_facts(seed=0)
    layers = read_layers(str(smollm2_path), data.statements, ["embed", 16], device="cpu", batch_size=16)
    assert list(layers) == ["embed", 16] and layers[16].shape == (398, 576)
    again = read_layers(str(smollm2_path), data.statements, [16], device="cpu")  # from the cache now
    np.testing.assert_array_equal(again[16], layers[16])
    groups = data.cities  # a city's true and false statement never on both sides
    task = cross_validate(layers, data.labels, n_folds=5, seeds=(0, 1), groups=groups, progress=False)
    control = cross_validate(
        layers, data.labels, n_folds=5, seeds=(0, 1), groups=groups, control="permutation", progress=False
    )
    scores = rows(task.table())
    assert scores[16]["accuracy"] > 0.75 > scores["embed"]["accuracy"]
    sel = rows(selectivity(task, control))
    assert sel[16]["selectivity"] > 0.2
    assert abs(rows(control.table())[16]["accuracy"] - 0.5) < 0.1
