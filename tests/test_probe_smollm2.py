"""Correctness against lmprobe on the real model: per-layer accuracy on the cities data, every layer of SmolLM2."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from fastprobe import Probe

DATA = Path(os.environ.get("FASTPROBE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def cities_split() -> tuple[list[str], list[str], list[str], list[int]]:
    """Positives, negatives, test prompts and labels.

    The seeded 1,000 / 496 split of ../shared/data/cities.csv (the benchmark's) when that file is present; otherwise
    (a clone away from ../shared) the same kind of split of the 398 built-in city statements, so the test never skips.
    """
    if (DATA / "cities.csv").is_file():
        with (DATA / "cities.csv").open() as f:
            rows = [(r["statement"], int(r["label"])) for r in csv.DictReader(f)]
    else:
        from fastprobe.datasets import city_facts

        facts = city_facts(seed=0)
        rows = list(zip(facts.statements, [int(v) for v in facts.labels], strict=True))
    order = np.random.default_rng(0).permutation(len(rows))
    n_train = round(len(rows) * 1000 / 1496)
    train, test = [rows[i] for i in order[:n_train]], [rows[i] for i in order[n_train:]]
    return (
        [s for s, y in train if y == 1],
        [s for s, y in train if y == 0],
        [s for s, _ in test],
        [y for _, y in test],
    )


def test_every_layer_within_1_5_points_of_lmprobe(
    smollm2_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lmprobe

    pos, neg, test, labels = cities_split()
    # 1.5 points on the 496 cities.csv test statements (7 statements); on the 133 built-in ones, 2 statements.
    tolerance = 0.015 if len(test) == 496 else 2 / len(test)
    monkeypatch.setenv("LMPROBE_CACHE_DIR", str(tmp_path / "lmprobe"))
    lmprobe.set_cache_backend(None)
    model = str(smollm2_path)
    kwargs = {"layers": "all", "device": "cpu", "random_state": 0, "batch_size": 16}
    theirs = lmprobe.Probe.sweep_layers(model, pos, neg, **kwargs).score(test, labels)
    ours = Probe.sweep_layers(model, pos, neg, **kwargs).score(test, labels)
    assert sorted(ours) == sorted(theirs) == list(range(30))
    gaps = {layer: abs(ours[layer] - theirs[layer]) for layer in ours}
    assert max(gaps.values()) <= tolerance + 1e-9, gaps
    # The signal is real: the best layers are far above the majority class.
    majority = max(np.mean(labels), 1 - np.mean(labels))
    assert max(ours.values()) >= majority + 0.25, (majority, ours)
