"""Cross-validation over layers, shared splits, control tasks and selectivity, against independent computations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from fastprobe import InvalidInputError, UnknownOptionError
from fastprobe.evaluation import (
    as_layer_dict,
    control_task_labels,
    cross_validate,
    make_splits,
    permuted_labels,
    selectivity,
)


def blobs(n: int = 240, d: int = 12, k: int = 3, sep: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = rng.normal(size=(k, d)) * sep
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def records(table: Any) -> list[dict[str, Any]]:
    return table.to_dict("records") if hasattr(table, "to_dict") else table


# ---------------------------------------------------------------------------------------------- splits


def test_stratified_splits_cover_every_example_once_per_seed_and_keep_proportions() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 15)
    splits = make_splits(y, n_folds=5, seeds=(0, 1))
    assert [(s.seed, s.fold) for s in splits] == [(seed, f) for seed in (0, 1) for f in range(5)]
    for seed in (0, 1):
        tests = np.concatenate([s.test for s in splits if s.seed == seed])
        np.testing.assert_array_equal(np.sort(tests), np.arange(len(y)))
    for s in splits:
        assert np.intersect1d(s.train, s.test).size == 0 and len(s.train) + len(s.test) == len(y)
        np.testing.assert_array_equal(np.bincount(y[s.test]), [12, 6, 3])  # the proportions, exactly here
    assert not np.array_equal(splits[0].test, splits[5].test)  # another seed, another shuffle
    again = make_splits(y, n_folds=5, seeds=(0, 1))
    assert all(np.array_equal(a.test, b.test) for a, b in zip(splits, again, strict=True))


def test_grouped_splits_never_put_a_group_on_both_sides_and_dev_parts_are_disjoint() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 5)
    y = rng.integers(0, 2, size=len(groups))
    for s in make_splits(y, n_folds=4, seeds=(3,), groups=groups, dev_fraction=0.25):
        assert s.dev is not None
        sides = [set(groups[s.train]), set(groups[s.dev]), set(groups[s.test])]
        assert all(a.isdisjoint(b) for i, a in enumerate(sides) for b in sides[i + 1 :])
        assert len(s.train) + len(s.dev) + len(s.test) == len(y)


def test_bad_splits_are_refused_naming_what_was_expected() -> None:
    with pytest.raises(InvalidInputError, match="5 folds need at least 5 examples; got 4"):
        make_splits([0, 1, 0, 1], n_folds=5)
    with pytest.raises(InvalidInputError, match=r"at least 5 examples of every class; these have fewer: \{'2': 3\}"):
        make_splits([0] * 10 + [1] * 10 + [2] * 3, n_folds=5)
    with pytest.raises(InvalidInputError, match="5 folds need at least 5 groups; got 3"):
        make_splits([0, 1] * 6, n_folds=5, groups=[0, 1, 2] * 4)
    with pytest.raises(InvalidInputError, match="regression targets are constant"):
        make_splits([1.5] * 10, task="regression")
    with pytest.raises(InvalidInputError, match=r"dev_fraction must be in \(0, 1\); got 1.5"):
        make_splits([0, 1] * 10, dev_fraction=1.5)


# ---------------------------------------------------------------------------------------------- cross-validation


def test_scores_equal_scikit_learn_fitted_split_by_split() -> None:
    X, y = blobs()
    noise = np.random.default_rng(1).normal(size=X.shape).astype(np.float32)
    est = LogisticRegression(max_iter=500)
    result = cross_validate([X, noise], y, est, n_folds=4, seeds=(0, 1), standardize=False, progress=False)
    splits = make_splits(y, n_folds=4, seeds=(0, 1))
    assert len(result.records) == 2 * len(splits)
    for layer, data in enumerate((X, noise)):
        for s, rec in zip(splits, [r for r in result.records if r["layer"] == layer], strict=True):
            ref = LogisticRegression(max_iter=500).fit(data[s.train], y[s.train])
            pred, proba = ref.predict(data[s.test]), ref.predict_proba(data[s.test])
            assert (rec["seed"], rec["fold"]) == (s.seed, s.fold)
            assert rec["accuracy"] == pytest.approx(np.mean(pred == y[s.test]))
            assert rec["macro_f1"] == pytest.approx(f1_score(y[s.test], pred, average="macro"))
            assert rec["auroc"] == pytest.approx(roc_auc_score(y[s.test], proba, multi_class="ovr"))
    rows = records(result.table())
    acc = [r["accuracy"] for r in result.records if r["layer"] == 0]
    assert rows[0]["accuracy"] == pytest.approx(np.mean(acc)) and rows[0]["accuracy_std"] == pytest.approx(
        np.std(acc, ddof=1)
    )
    assert rows[0]["accuracy"] > 0.95 and rows[1]["accuracy"] < 0.5


def test_the_rust_logistic_path_agrees_with_scikit_learn() -> None:
    X, y = blobs(sep=0.6)
    ours = cross_validate([X], y, "logistic_regression", n_folds=5, seeds=(0, 1), progress=False)
    sk = cross_validate([X], y, LogisticRegression(max_iter=1000), n_folds=5, seeds=(0, 1), progress=False)
    np.testing.assert_allclose(ours.values(0), sk.values(0), atol=0.02)


def test_regression_scores_and_minmax_scaling() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    y = X @ rng.normal(size=6) * 10 + 50 + rng.normal(size=200)
    result = cross_validate([X], y, Ridge(alpha=1.0), n_folds=5, standardize=False, progress=False)
    assert result.task == "regression" and result.default_metric == "r2"
    for s, rec in zip(make_splits(y, n_folds=5), result.records, strict=True):
        pred = Ridge(alpha=1.0).fit(X[s.train], y[s.train]).predict(X[s.test])
        assert rec["r2"] == pytest.approx(r2_score(y[s.test], pred))
        assert rec["mae"] == pytest.approx(np.mean(np.abs(pred - y[s.test])))
        assert rec["pearson"] == pytest.approx(np.corrcoef(pred, y[s.test])[0, 1])
    scaled = cross_validate(
        [X], y, Ridge(alpha=1.0), n_folds=5, standardize=False, scale_targets="minmax", progress=False
    )
    # scaled to [0, 1]: a near-perfect fit keeps its correlation, and its errors are on the new scale
    assert min(scaled.values(0, "pearson")) > 0.99 and max(scaled.values(0, "mse")) < 0.01
    with pytest.raises(InvalidInputError, match="scale_targets='minmax' is for regression targets"):
        cross_validate([X], np.arange(200) % 2, scale_targets="minmax", progress=False)


def test_the_same_splits_serve_every_layer_estimator_and_control() -> None:
    X, y = blobs()
    splits = make_splits(y, n_folds=3, seeds=(0,))
    a = cross_validate({"a": X}, y, splits=splits, progress=False)
    b = cross_validate({"a": X}, y, "ridge", splits=splits, progress=False)
    assert [(r["seed"], r["fold"]) for r in a.records] == [(r["seed"], r["fold"]) for r in b.records]
    with pytest.raises(UnknownOptionError, match="unknown metric 'r2'; expected one of: accuracy, macro_f1, auroc"):
        a.values("a", "r2")


# ---------------------------------------------------------------------------------------------- controls


def test_control_labels() -> None:
    y = np.array([0, 0, 0, 1, 1, 2] * 50)
    p = permuted_labels(y, 3)
    assert sorted(p.tolist()) == sorted(y.tolist()) and not np.array_equal(p, y)
    np.testing.assert_array_equal(p, permuted_labels(y, 3))
    types = [f"w{i % 30}" for i in range(len(y))]
    c = control_task_labels(y, types, seed=0)
    for t in set(types):
        assert len({c[i] for i in range(len(y)) if types[i] == t}) == 1  # one label per type
    many = np.concatenate([control_task_labels(y, [str(i) for i in range(len(y))], seed=s) for s in range(20)])
    np.testing.assert_allclose(np.bincount(many) / len(many), np.bincount(y) / len(y), atol=0.03)
    with pytest.raises(InvalidInputError, match="needs a type for every example; 1 have none"):
        control_task_labels(y[:3], ["a", None, "b"], seed=0)
    with pytest.raises(InvalidInputError, match=r"needs one type per example \(3\); got 2"):
        control_task_labels(y[:3], ["a", "b"], seed=0)


def test_selectivity_is_high_for_a_representing_layer_and_low_for_noise() -> None:
    X, y = blobs(n=300, k=2, sep=1.5)
    noise = np.random.default_rng(5).normal(size=X.shape).astype(np.float32)
    layers = {"signal": X, "noise": noise}
    task = cross_validate(layers, y, n_folds=5, seeds=(0, 1, 2), progress=False)
    control = cross_validate(layers, y, n_folds=5, seeds=(0, 1, 2), control="permutation", progress=False)
    rows = {r["layer"]: r for r in records(selectivity(task, control))}
    assert rows["signal"]["selectivity"] > 0.3 and abs(rows["noise"]["selectivity"]) < 0.1
    assert rows["signal"]["selectivity_std"] >= 0.0
    per_seed_task, per_seed_control = task.per_seed(), control.per_seed()
    want = np.mean([per_seed_task["signal"][s] - per_seed_control["signal"][s] for s in (0, 1, 2)])
    assert rows["signal"]["selectivity"] == pytest.approx(want)
    with pytest.raises(InvalidInputError, match="needs each example's type"):
        cross_validate(layers, y, control="control_task", progress=False)


def test_layers_in_every_form() -> None:
    X, _ = blobs(n=20)
    assert list(as_layer_dict(np.stack([X, X]))) == [0, 1]
    assert list(as_layer_dict({"h": X})) == ["h"]
    with pytest.raises(InvalidInputError, match="no layers to evaluate"):
        as_layer_dict([])
