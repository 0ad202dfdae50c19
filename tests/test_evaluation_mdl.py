"""MDL probing (the online code of Voita and Titov, 2020): hand computations, limiting cases and bad input."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from fastprobe.estimators import LogisticProbe
from fastprobe.evaluation import MDLLayers
from fastprobe.evaluation.mdl import (
    DEFAULT_FRACTIONS,
    PROBABILITY_FLOOR,
    block_ends,
    online_code,
    online_code_layers,
)
from fastprobe.exceptions import (
    ArgumentTypeError,
    InvalidEstimatorError,
    InvalidInputError,
    ShapeMismatchError,
    UnknownOptionError,
)

FRACTIONS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0)


class FrequencyClassifier(ClassifierMixin, BaseEstimator):
    """Predicts every example's class probabilities as the class frequencies of its training set."""

    def fit(self, X: Any, y: Any) -> FrequencyClassifier:
        self.classes_, counts = np.unique(y, return_counts=True)
        self.freq_ = counts / counts.sum()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.tile(self.freq_, (len(X), 1))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class UniformClassifier(ClassifierMixin, BaseEstimator):
    """Gives every class the same probability."""

    def fit(self, X: Any, y: Any) -> UniformClassifier:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


class LstsqRegressor(RegressorMixin, BaseEstimator):
    """Ordinary least squares with an intercept, in float64."""

    def fit(self, X: Any, y: Any) -> LstsqRegressor:
        A = np.c_[np.asarray(X, dtype=np.float64), np.ones(len(X))]
        self.coef_ = np.linalg.lstsq(A, np.asarray(y, dtype=np.float64), rcond=None)[0]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.c_[np.asarray(X, dtype=np.float64), np.ones(len(X))] @ self.coef_


def _arranged(seq: list[Any], seed: int) -> np.ndarray:
    """Labels whose seeded shuffle (``default_rng(seed).permutation``) is exactly ``seq``."""
    order = np.random.default_rng(seed).permutation(len(seq))
    y = np.empty(len(seq), dtype=np.asarray(seq).dtype)
    y[order] = seq
    return y


def _ols(X: np.ndarray, y: np.ndarray, X_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predictions on X, predictions on X_new) of least squares with an intercept."""
    A = np.c_[X, np.ones(len(X))]
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return A @ coef, np.c_[X_new, np.ones(len(X_new))] @ coef


# --- block ends ----------------------------------------------------------------------------------------------------


def test_block_ends_follow_voita_and_titov_fractions() -> None:
    assert block_ends(2000) == [2, 4, 8, 16, 32, 64, 125, 250, 500, 1000, 2000]
    assert block_ends(20, (0.25, 0.5, 1.0)) == [5, 10, 20]
    assert block_ends(100, (0.29, 1.0)) == [29, 100]  # floor(0.29 * 100) is 29, not 28
    # too few examples for floor(f * N) to increase: each end moves up by one (and down to leave every block one)
    assert block_ends(11) == list(range(1, 12))
    assert block_ends(30) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 30]
    assert block_ends(3, (0.9, 0.95, 1.0)) == [1, 2, 3]


# --- classification: hand computations and limiting cases ------------------------------------------------------------


def test_codelength_equals_a_hand_computation() -> None:
    # shuffled labels: first block of 5, then a block of 5 coded by the first 5, then 10 coded by the first 10
    first_block, second_block = ["a", "b", "c", "a", "b"], ["a", "a", "b", "c", "c"]
    seq = [*first_block, *second_block, "a", "b", "b", "b", "c", "c", "c", "a", "b", "c"]
    y = _arranged(seq, seed=7)
    X = np.random.default_rng(1).standard_normal((20, 3))
    r = online_code(X, y, FrequencyClassifier(), fractions=(0.25, 0.5, 1.0), random_state=7)
    first = 5 * math.log2(3)
    # trained on a, b, c, a, b: p(a) = p(b) = 0.4, p(c) = 0.2; the block is a, a, b, c, c
    second = -3 * math.log2(0.4) - 2 * math.log2(0.2)
    # trained on the first 10: p(a) = 0.4, p(b) = p(c) = 0.3; the block has 2 a, 4 b, 4 c
    third = -2 * math.log2(0.4) - 8 * math.log2(0.3)
    assert r.block_ends == [5, 10, 20]
    assert r.block_costs == pytest.approx([first, second, third], abs=1e-9)
    assert r.codelength == pytest.approx(first + second + third, abs=1e-9)
    assert r.uniform_codelength == pytest.approx(20 * math.log2(3), abs=1e-9)
    assert r.compression == pytest.approx(20 * math.log2(3) / (first + second + third), abs=1e-12)
    assert (r.unit, r.mode, r.task, r.n_classes, r.n_examples) == ("bits", "categorical", "classification", 3, 20)
    # the argmax of (0.4, 0.4, 0.2) is "a": 2 of 5 right; of (0.4, 0.3, 0.3) also "a": 2 of 10
    assert r.block_accuracy is not None and math.isnan(r.block_accuracy[0])
    assert r.block_accuracy[1:] == [0.4, 0.2]
    assert r.block_mse is None and r.block_sigma is None and r.precision is None


def test_a_probability_of_zero_costs_the_floor() -> None:
    # trained on a, b, b, b: p(a) = 0.25, p(b) = 0.75; the block is a, b, b, b
    seq = ["a", "b", "b", "b"] * 2
    y = _arranged(seq, seed=0)
    X = np.zeros((8, 1))
    r = online_code(X, y, FrequencyClassifier(), fractions=(0.5, 1.0))
    assert r.block_costs == pytest.approx([4.0, -math.log2(0.25) - 3 * math.log2(0.75)], abs=1e-12)

    class Certain(FrequencyClassifier):
        def predict_proba(self, X: Any) -> np.ndarray:
            return np.tile([0.0, 1.0], (len(X), 1))

    r = online_code(X, y, Certain(), fractions=(0.5, 1.0))
    assert r.block_costs == pytest.approx([4.0, -math.log2(PROBABILITY_FLOOR)], abs=1e-9)


@pytest.mark.parametrize(("n_classes", "exact"), [(2, True), (4, True), (3, False)])
def test_a_probe_that_predicts_uniformly_gives_compression_one(n_classes: int, exact: bool) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(120) % n_classes
    X = rng.standard_normal((120, 5))
    r = online_code(X, y, UniformClassifier(), fractions=(0.1, 0.3, 1.0), random_state=3)
    if exact:
        assert r.compression == 1.0
        assert r.codelength == 120 * math.log2(n_classes)
    else:
        assert r.compression == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_labels_give_compression_close_to_one(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    X = rng.standard_normal((2000, 16))
    y = rng.integers(0, 2, 2000)
    r = online_code(X, y, fractions=FRACTIONS, random_state=seed)
    assert 0.9 < r.compression < 1.1
    assert r.uniform_codelength == 2000.0


def test_separable_classes_give_compression_close_to_n_over_t1() -> None:
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 500)
    X = rng.standard_normal((1000, 8)) + 20.0 * y[:, None]
    fractions = (0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0)
    r = online_code(X, y, fractions=fractions, estimator_kwargs={"C": 100.0})
    assert r.block_ends[0] == 20
    # the first block costs t1 bits and every later block almost nothing: compression approaches N / t1 = 50
    assert 0.8 * 50 < r.compression <= 50
    assert r.block_accuracy is not None and r.block_accuracy[1:] == [1.0] * 6


def test_the_seed_decides_the_shuffle() -> None:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 6))
    y = (X[:, 0] + rng.standard_normal(400) > 0).astype(int)
    a = online_code(X, y, fractions=FRACTIONS[2:], random_state=11)
    b = online_code(X, y, fractions=FRACTIONS[2:], random_state=11)
    c = online_code(X, y, fractions=FRACTIONS[2:], random_state=12)
    assert (a.codelength, a.block_costs) == (b.codelength, b.block_costs)
    assert a.random_state == 11
    assert a.codelength != c.codelength


def test_labels_of_any_type_and_a_scikit_learn_probe() -> None:
    rng = np.random.default_rng(2)
    codes = np.arange(300) % 3
    X = rng.standard_normal((300, 4)) + 3.0 * np.eye(3, 4)[codes]
    names = np.array(["cat", "dog", "eel"])[codes]
    ours = online_code(X, names, fractions=(0.1, 0.3, 1.0))
    as_ints = online_code(X, codes, fractions=(0.1, 0.3, 1.0))
    assert ours.codelength == as_ints.codelength
    sk = online_code(X, names, LogisticRegression(max_iter=1000), fractions=(0.1, 0.3, 1.0))
    assert sk.codelength == pytest.approx(ours.codelength, rel=1e-3)  # the same objective, two solvers


class _GenericLogistic(LogisticProbe):
    """fastprobe's logistic regression fitted through the generic path (only the class itself goes to Rust's loop)."""


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_one_rust_call_equals_a_fresh_probe_per_block(n_classes: int) -> None:
    # online_code codes LogisticProbe in one Rust call (rows gathered in the shuffle's order, each block's fit
    # warm-started from the last); fitted to a tight tolerance it equals a fresh probe per block, as the generic path
    # fits them, and a standardized scikit-learn LogisticRegression per block
    rng = np.random.default_rng(8)
    y = np.arange(500) % n_classes
    X = (rng.standard_normal((500, 20)) + 0.7 * np.eye(n_classes, 20)[y] + 5.0).astype(np.float32)
    tight = {"tol": 1e-9, "max_iter": 20000}
    fractions = (0.04, 0.1, 0.25, 0.5, 1.0)
    fast = online_code(X, y, fractions=fractions, estimator_kwargs=tight, random_state=3)
    generic = online_code(X, y, _GenericLogistic(**tight), fractions=fractions, random_state=3)
    assert fast.block_costs == pytest.approx(generic.block_costs, rel=1e-6)
    assert fast.block_accuracy == generic.block_accuracy
    order = np.random.default_rng(3).permutation(500)
    Xs, ys = X[order].astype(np.float64), y[order]
    expected = [fast.block_ends[0] * math.log2(n_classes)]
    for start, stop in itertools.pairwise(fast.block_ends):
        scaler = StandardScaler().fit(Xs[:start])
        clf = LogisticRegression(tol=1e-10, max_iter=20000).fit(scaler.transform(Xs[:start]), ys[:start])
        proba = clf.predict_proba(scaler.transform(Xs[start:stop]))[np.arange(stop - start), ys[start:stop]]
        expected.append(float(-np.sum(np.log2(np.maximum(proba, PROBABILITY_FLOOR)))))
    assert fast.block_costs == pytest.approx(expected, rel=1e-4)


def test_a_probe_out_of_iterations_is_a_convergence_warning() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    X = rng.standard_normal((200, 6)) + y[:, None]
    with pytest.warns(ConvergenceWarning, match=r"layer 0 did not converge in max_iter=1 .* block\(s\) \[1, 2\]"):
        online_code(X, y, fractions=(0.1, 0.5, 1.0), estimator_kwargs={"max_iter": 1})


# --- many layers -----------------------------------------------------------------------------------------------------


def test_layers_in_parallel_equal_each_layer_alone() -> None:
    rng = np.random.default_rng(3)
    y = np.arange(600) % 3
    layers = rng.standard_normal((3, 600, 12)).astype(np.float32)
    layers[1, :, 0] += 2.0 * y
    layers[2, :, :3] += 4.0 * np.eye(3, dtype=np.float32)[y]
    many = online_code_layers(layers, y, fractions=FRACTIONS[1:], random_state=4)
    assert isinstance(many, MDLLayers) and many.layers == [0, 1, 2] and len(many) == 3
    for i in range(3):
        alone = online_code(layers[i], y, fractions=FRACTIONS[1:], random_state=4)
        assert many[i].block_costs == pytest.approx(alone.block_costs, rel=1e-9)
        assert many[i].compression == pytest.approx(alone.compression, rel=1e-9)
    assert many[0].compression < many[1].compression < many[2].compression
    named = online_code_layers({"low": layers[0], "high": layers[2]}, y, fractions=FRACTIONS[1:], random_state=4)
    assert named.layers == ["low", "high"]
    assert named["high"].codelength == pytest.approx(many[2].codelength, rel=1e-9)


def test_layers_with_a_python_probe_loop_and_equal_each_layer_alone() -> None:
    rng = np.random.default_rng(4)
    y = np.arange(200) % 2
    layers = [rng.standard_normal((200, 5)).astype(np.float32) + k * y[:, None] for k in range(2)]
    many = online_code_layers(layers, y, LogisticRegression(), fractions=(0.1, 0.5, 1.0))
    for i, X in enumerate(layers):
        assert many[i].block_costs == online_code(X, y, LogisticRegression(), fractions=(0.1, 0.5, 1.0)).block_costs


def test_regression_layers_in_parallel_equal_each_layer_alone() -> None:
    rng = np.random.default_rng(6)
    layers = rng.standard_normal((2, 300, 6)).astype(np.float32)
    y = layers[1] @ rng.standard_normal(6) + 0.1 * rng.standard_normal(300)
    for mode in ("gaussian", "squared_error_proxy"):
        many = online_code_layers(layers, y, task="regression", mode=mode, fractions=(0.05, 0.2, 1.0))
        for i in range(2):
            alone = online_code(layers[i], y, task="regression", mode=mode, fractions=(0.05, 0.2, 1.0))
            assert many[i].block_costs == pytest.approx(alone.block_costs, rel=1e-9)
        assert many[1].compression > many[0].compression


def test_table_and_plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    layers = {"a": rng.standard_normal((200, 4)), "b": rng.standard_normal((200, 4)) + 3.0 * y[:, None]}
    result = online_code_layers(layers, y, LogisticProbe(), fractions=(0.1, 0.5, 1.0), progress=False)
    table = result.table()
    rows = table if isinstance(table, list) else table.to_dict("records")
    assert [row["layer"] for row in rows] == ["a", "b"]
    assert rows[1] == {
        "layer": "b",
        "codelength": result["b"].codelength,
        "uniform": 200.0,
        "compression": result["b"].compression,
    }
    fig, ax = result.plot()
    (line, _) = ax.get_lines()
    assert list(line.get_ydata()) == [result["a"].compression, result["b"].compression]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    plt.close(fig)


# --- regression ------------------------------------------------------------------------------------------------------


def test_gaussian_code_equals_a_hand_computation() -> None:
    rng = np.random.default_rng(8)
    X = rng.integers(-4, 5, (16, 1)).astype(np.float64)  # exact in float32
    y = 0.7 * X[:, 0] + rng.normal(0.0, 0.5, 16)
    eps = 0.1
    r = online_code(
        X, y, LstsqRegressor(), task="regression", fractions=(0.25, 0.5, 1.0), precision=eps, standardize=False
    )  # the raw features, as the hand computation fits them
    order = np.random.default_rng(0).permutation(16)
    Xs, ys = X[order], y[order]
    low, high = y.min(), y.max()
    n_cells = math.ceil((high - low) / eps)
    expected = [4 * math.log2(n_cells)]
    sigmas = []
    # the first coded block's noise scale: the spread of the first block; the next one's: the previous probe's error
    previous = float(np.mean((ys[:4] - ys[:4].mean()) ** 2))
    for start, stop in ((4, 8), (8, 16)):
        _, mu = _ols(Xs[:start], ys[:start], Xs[start:stop])
        sigma = max(math.sqrt(previous), eps)
        sigmas.append(sigma)
        previous = float(np.mean((ys[start:stop] - mu) ** 2))
        cell = np.minimum(np.floor((ys[start:stop] - low) / eps), n_cells - 1)
        a, b = (low + cell * eps - mu) / sigma, (low + (cell + 1) * eps - mu) / sigma
        mass = np.where(a > 0, norm.sf(a) - norm.sf(b), norm.cdf(b) - norm.cdf(a))
        expected.append(float(-np.sum(np.log2(mass))))
    assert r.block_costs == pytest.approx(expected, rel=1e-9)
    assert r.uniform_codelength == pytest.approx(16 * math.log2(n_cells), rel=1e-12)
    assert r.compression == pytest.approx(16 * math.log2(n_cells) / sum(expected), rel=1e-9)
    assert r.block_sigma is not None and r.block_sigma[1:] == pytest.approx(sigmas, rel=1e-9)
    assert (r.unit, r.mode, r.precision, r.target_range) == ("bits", "gaussian", eps, (low, high))


def test_gaussian_default_precision_is_a_thousandth_of_the_range() -> None:
    rng = np.random.default_rng(9)
    X = rng.standard_normal((100, 3))
    y = rng.uniform(2.0, 7.0, 100)
    r = online_code(X, y, fractions=(0.2, 1.0))
    assert r.task == "regression" and r.mode == "gaussian"  # inferred from the non-integral floats
    assert r.precision == pytest.approx((y.max() - y.min()) / 1000, rel=1e-12)
    assert r.uniform_codelength == pytest.approx(100 * math.log2(1000), rel=1e-12)
    assert r.block_costs[0] == pytest.approx(20 * math.log2(1000), rel=1e-12)


def test_gaussian_code_signal_and_noise() -> None:
    rng = np.random.default_rng(10)
    X = rng.standard_normal((2000, 8))
    linear = online_code(X, X @ rng.standard_normal(8), task="regression", fractions=FRACTIONS)
    assert linear.compression > 3
    noise = online_code(X, rng.uniform(0.0, 1.0, 2000), task="regression", fractions=FRACTIONS)
    assert 0.8 < noise.compression < 1.02


def test_a_confidently_wrong_gaussian_costs_finite_bits() -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((200, 2))
    # the first block's targets are all 0.5: its spread, the first probe's noise scale, falls to the precision; the
    # next block's targets are up to 0.5 away, thousands of noise scales
    y = _arranged([0.5] * 100 + rng.uniform(0.0, 1.0, 100).tolist(), seed=0)
    r = online_code(X, y, KNeighborsRegressor(n_neighbors=1), task="regression", fractions=(0.5, 1.0), precision=1e-4)
    assert r.block_sigma is not None and r.block_sigma[1] == pytest.approx(1e-4)
    assert math.isfinite(r.codelength) and r.block_costs[1] > 100 * 100 * math.log2(1e4)
    assert r.compression < 0.2


def test_squared_error_proxy_equals_a_hand_computation() -> None:
    rng = np.random.default_rng(12)
    X = rng.integers(-3, 4, (16, 2)).astype(np.float64)
    y = X @ np.array([0.5, -1.0]) + rng.normal(0.0, 0.3, 16)
    r = online_code(
        X,
        y,
        LstsqRegressor(),
        task="regression",
        mode="squared_error_proxy",
        fractions=(0.25, 0.5, 1.0),
        standardize=False,
    )
    order = np.random.default_rng(0).permutation(16)
    Xs, ys = X[order], y[order]
    uniform = float(np.sum((y - y.mean()) ** 2))
    expected = [4 * uniform / 16]
    for start, stop in ((4, 8), (8, 16)):
        _, pred = _ols(Xs[:start], ys[:start], Xs[start:stop])
        expected.append(float(np.sum((ys[start:stop] - pred) ** 2)))
    assert r.block_costs == pytest.approx(expected, rel=1e-9)
    assert r.uniform_codelength == pytest.approx(uniform, rel=1e-12)
    assert r.compression == pytest.approx(uniform / sum(expected), rel=1e-9)
    assert (r.unit, r.mode, r.precision, r.block_sigma) == ("squared error", "squared_error_proxy", None, None)


# --- bad input -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((0.5, 0.25, 1.0), r"strictly increasing; got \(0.5, 0.25, 1.0\)"),
        ((0.25, 0.25, 1.0), "strictly increasing"),
        ((0.25, 0.5, 0.9), r"must end at 1.0 .*got \(0.25, 0.5, 0.9\)"),
        ((0.0, 0.5, 1.0), r"must lie in \(0, 1\]; got \[0.0\]"),
        ((0.5, 1.0, 1.5), r"must lie in \(0, 1\]; got \[1.5\]"),
        ((-0.1, 1.0), r"must lie in \(0, 1\]"),
        ((), "fractions is empty"),
    ],
)
def test_bad_fractions(fractions: tuple[float, ...], match: str) -> None:
    X, y = np.zeros((40, 2)), np.arange(40) % 2
    with pytest.raises(InvalidInputError, match=match):
        online_code(X, y, fractions=fractions)


def test_fractions_that_are_not_numbers() -> None:
    X, y = np.zeros((40, 2)), np.arange(40) % 2
    with pytest.raises(ArgumentTypeError, match="fractions must be numbers"):
        online_code(X, y, fractions=("half", 1.0))  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="sequence of numbers"):
        online_code(X, y, fractions=0.5)  # type: ignore[arg-type]


def test_a_first_block_without_every_class() -> None:
    seq = ["common"] * 100
    seq[10] = seq[50] = "rare"
    y = _arranged(seq, seed=0)
    X = np.zeros((100, 2))
    with pytest.raises(InvalidInputError) as info:
        online_code(X, y, fractions=(0.05, 0.5, 1.0))
    message = str(info.value)
    assert "the first MDL block (the first 5 of 100 shuffled examples, fraction 0.05) lacks classes ['rare']" in message
    assert "within the first 11 shuffled examples" in message
    assert "larger first fraction (at least 0.11)" in message
    online_code(X, y, FrequencyClassifier(), fractions=(0.11, 0.5, 1.0))  # the suggestion works


def test_constant_regression_targets() -> None:
    with pytest.raises(InvalidInputError, match="regression targets are constant"):
        online_code(np.zeros((50, 2)), np.full(50, 2.5), task="regression", fractions=(0.2, 1.0))
    with pytest.raises(InvalidInputError, match="constant"):
        online_code(np.zeros((50, 2)), np.full(50, 2.5), task="regression", mode="squared_error_proxy")


def test_fewer_examples_than_blocks() -> None:
    with pytest.raises(InvalidInputError, match="11 fractions need at least 11 examples, got 10"):
        online_code(np.zeros((10, 2)), np.arange(10) % 2, fractions=DEFAULT_FRACTIONS)
    with pytest.raises(InvalidInputError, match="fewer examples than MDL blocks"):
        block_ends(2, (0.3, 0.6, 1.0))


def test_shapes() -> None:
    with pytest.raises(ShapeMismatchError, match="y has 9 labels but X has 10 rows"):
        online_code(np.zeros((10, 2)), np.arange(9) % 2, fractions=(0.5, 1.0))
    with pytest.raises(ShapeMismatchError, match=r"X must be 2-D .* got shape \(10,\)"):
        online_code(np.zeros(10), np.arange(10) % 2, fractions=(0.5, 1.0))
    with pytest.raises(ShapeMismatchError, match="rows"):
        online_code_layers([np.zeros((10, 2)), np.zeros((9, 2))], np.arange(10) % 2, fractions=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match="no layers"):
        online_code_layers([], np.arange(10) % 2)


def test_bad_options() -> None:
    X, y, yr = np.zeros((20, 2)), np.arange(20) % 2, np.linspace(0.0, 1.0, 20)
    with pytest.raises(UnknownOptionError, match="unknown MDL mode 'bits'; expected one of: categorical, gaussian"):
        online_code(X, yr, mode="bits", fractions=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match="mode 'gaussian' does not apply to task 'classification'"):
        online_code(X, y, mode="gaussian", fractions=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match="mode 'categorical' does not apply to task 'regression'"):
        online_code(X, yr, mode="categorical", fractions=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match="precision applies only to mode='gaussian'"):
        online_code(X, yr, mode="squared_error_proxy", precision=0.1, fractions=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match=r"precision must be > 0 and below the target range 1.0"):
        online_code(X, yr, precision=1.0, fractions=(0.5, 1.0))
    with pytest.raises(ArgumentTypeError, match="precision must be a number"):
        online_code(X, yr, precision="fine", fractions=(0.5, 1.0))  # type: ignore[arg-type]
    with pytest.raises(UnknownOptionError, match="unknown task 'ranking'"):
        online_code(X, y, task="ranking", fractions=(0.5, 1.0))
    with pytest.raises(ArgumentTypeError, match="random_state must be an int seed; got 0.5"):
        online_code(X, y, random_state=0.5, fractions=(0.5, 1.0))  # type: ignore[arg-type]
    with pytest.raises(InvalidEstimatorError, match="needs predict_proba; KNeighborsRegressor has none"):
        online_code(X, y, KNeighborsRegressor(), fractions=(0.5, 1.0))
    with pytest.raises(InvalidEstimatorError, match="'ridge' builds RidgeClassifierProbe, which has none"):
        online_code(X, y, "ridge", fractions=(0.5, 1.0))
    with pytest.raises(UnknownOptionError, match="Unknown classifier 'forest'"):
        online_code(X, y, "forest", fractions=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match="at least two classes"):
        online_code(X, np.zeros(20, dtype=int), fractions=(0.5, 1.0))
