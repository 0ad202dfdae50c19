"""Steering vectors (the probe's exact gradient in activation space) and sweep tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastprobe import InvalidInputError, NotFittedError, Probe, UnknownOptionError
from fastprobe.testing import tiny_model

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
POS = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
NEG = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]


def data(n: int = 300, layers: int = 2, hidden: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, layers * hidden)) * rng.uniform(0.5, 4, layers * hidden) + 3).astype(np.float32)
    y = (X[:, 1] - X[:, hidden + 2] + rng.standard_normal(n) > 0).astype(int)
    return X, y


def logit(probe: Probe, X: np.ndarray) -> np.ndarray:
    p = probe.predict_proba_from_activations(X)[:, 1]
    return np.log(p) - np.log1p(-p)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"preprocessing": "standard+pca:5", "normalize_layers": False},
        {"preprocessing": "pca:6", "mass_mean_augment": True},
        {"normalize_layers": "per_layer", "mass_mean_augment": True},
    ],
)
def test_steering_vectors_are_the_exact_gradient_of_the_probe_score(options: dict[str, Any]) -> None:
    X, y = data()
    probe = Probe(random_state=0, **options).fit_from_activations(X, y, n_layers=2)
    probe.layers_ = [3, 7]
    raw = probe.steering_vectors(normalize=False)
    assert sorted(raw) == [3, 7] and raw[3].shape == (8,)
    gradient = np.concatenate([raw[3], raw[7]])
    rng = np.random.default_rng(1)
    for _ in range(5):
        step = rng.standard_normal(16)
        moved = logit(probe, X[:4] + step.astype(np.float32)) - logit(probe, X[:4])
        np.testing.assert_allclose(moved, gradient @ step, rtol=1e-3, atol=1e-3)
    unit = probe.steering_vectors()
    for layer in (3, 7):
        assert np.linalg.norm(unit[layer]) == pytest.approx(1.0)
        np.testing.assert_allclose(unit[layer], raw[layer] / np.linalg.norm(raw[layer]))
    against = probe.steering_vectors(normalize=False, target=0)
    np.testing.assert_allclose(against[3], -raw[3])


def test_steering_vectors_file_and_errors(tmp_path: Path) -> None:
    from safetensors import safe_open

    X, y = data()
    probe = Probe(random_state=0).fit_from_activations(X, y, n_layers=2)
    probe.layers_ = [0, 1]
    vectors = probe.steering_vectors(tmp_path / "steer.safetensors")
    with safe_open(tmp_path / "steer.safetensors", framework="numpy") as f:
        assert sorted(f.keys()) == ["layer.0", "layer.1"]
        np.testing.assert_allclose(f.get_tensor("layer.1"), vectors[1], rtol=1e-6)
        meta = f.metadata()
    assert meta["format"] == "fastprobe-steering" and meta["target"] == "1" and "hidden_states[i + 1]" in meta["layers"]
    with pytest.raises(InvalidInputError, match=r"target 5 is not one of the classes \[0, 1\]"):
        probe.steering_vectors(target=5)
    three = Probe(random_state=0).fit_from_activations(X, np.arange(len(X)) % 3, n_layers=2)
    with pytest.raises(InvalidInputError, match=r"this probe has 3 classes; pass target= one of \[0, 1, 2\]"):
        three.steering_vectors()
    assert three.steering_vectors(target=2)[0].shape == (8,)
    from sklearn.neighbors import KNeighborsClassifier

    knn = Probe(classifier=KNeighborsClassifier()).fit_from_activations(X, y, n_layers=2)
    with pytest.raises(InvalidInputError, match="needs a linear classifier with coef_; KNeighborsClassifier has none"):
        knn.steering_vectors()


def test_sweep_table_and_plot(exact_cache: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = tiny_model("llama")
    probe = Probe(model=model, layers="sweep", random_state=0).fit(POS[::2], NEG[::2])
    sweep = probe.sweep_result_
    with pytest.raises(NotFittedError, match="call evaluate"):
        sweep.table()
    test, y = POS[1::2] + NEG[1::2], np.r_[np.ones(24, int), np.zeros(24, int)]
    out = probe.evaluate(test, y, n_bootstrap=200)
    table = sweep.table()
    rows = table.reset_index().to_dict("records") if hasattr(table, "reset_index") else table
    assert [r["layer"] for r in rows] == sweep.layers
    for r in rows:
        metrics = out["layer_results"][r["layer"]]
        assert r["accuracy"] == metrics["accuracy"]
        assert (r["accuracy_ci_low"], r["accuracy_ci_high"]) == metrics["accuracy_ci"]
    fig, ax = sweep.plot(baseline={"tfidf": 0.61, "bow": 0.58})
    (line, *_) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [out["layer_results"][k]["accuracy"] for k in sweep.layers])
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == 0.61
    assert "tfidf" in ax.get_legend().get_texts()[-1].get_text()
    plt.close(fig)
    with pytest.raises(UnknownOptionError, match="unknown metric 'speed'"):
        sweep.plot("speed")
    with pytest.raises(InvalidInputError, match="baseline must be a number, a dict of scores"):
        sweep.plot(baseline="tfidf")
