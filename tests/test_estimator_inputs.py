"""Bad parameters and bad data for the Rust-backed estimators and layer sweeps: each error's type and message.

Every message names what was expected and what was given. Ranges are checked by the Rust solvers; a value that is
not a number at all is refused in Python with an ArgumentTypeError (a ValueError and a TypeError, as the plain
conversion errors it replaces were one or the other).
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fastprobe import ActivationStore
from fastprobe.classifiers import MassMeanClassifier, build_classifier
from fastprobe.estimators import (
    GroupLassoProbe,
    LogisticProbe,
    MassMeanProbe,
    RidgeClassifierProbe,
    RidgeProbe,
    logistic_path,
    solver_plan,
)
from fastprobe.exceptions import ArgumentTypeError, InvalidEstimatorError, InvalidInputError, UnknownOptionError
from fastprobe.sweep import StoreLayers, fit_layers

NOT_A_NUMBER = [("a", "'a' (str)"), (None, "None (NoneType)"), ([1.0], "[1.0] (list)")]


def exact(message: str) -> str:
    """A pattern that matches ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    X = rng.standard_normal((40, 3)).astype(np.float32)
    X[:, 0] += 2 * y
    return X, y


# --------------------------------------------------------------------------------------------------- logistic: C


@pytest.mark.parametrize(("C", "shown"), [(0, "0"), (0.0, "0"), (-1.5, "-1.5"), (np.nan, "NaN"), (np.inf, "inf")])
def test_logistic_c_must_be_finite_and_positive(data, C, shown) -> None:
    with pytest.raises(InvalidInputError, match=exact(f"C must be finite and > 0; got {shown}")):
        LogisticProbe(C=C).fit(*data)
    with pytest.raises(InvalidInputError, match=exact(f"C must be finite and > 0; got {shown}")):
        logistic_path(*data, [1.0, C])


@pytest.mark.parametrize(("C", "shown"), NOT_A_NUMBER)
def test_logistic_c_must_be_a_number(data, C, shown) -> None:
    with pytest.raises(ArgumentTypeError, match=exact(f"C must be a number; got {shown}")) as info:
        LogisticProbe(C=C).fit(*data)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_logistic_path_cs_must_be_numbers_and_not_empty(data) -> None:
    with pytest.raises(InvalidInputError, match=exact("Cs must be a non-empty sequence of numbers > 0; got []")):
        logistic_path(*data, [])
    with pytest.raises(ArgumentTypeError, match=exact("Cs must be a sequence of numbers > 0; got [1.0, 'big']")):
        logistic_path(*data, [1.0, "big"])
    with pytest.raises(ArgumentTypeError, match=exact("Cs must be a sequence of numbers > 0; got 1.0")):
        logistic_path(*data, 1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------- tol


@pytest.mark.parametrize(("tol", "shown"), [(-1e-4, "-0.0001"), (np.nan, "NaN"), (np.inf, "inf")])
def test_logistic_tol_must_be_finite_and_non_negative(data, tol, shown) -> None:
    with pytest.raises(InvalidInputError, match=exact(f"tol must be finite and >= 0; got {shown}")):
        LogisticProbe(tol=tol).fit(*data)
    with pytest.raises(InvalidInputError, match=exact(f"tol must be finite and >= 0; got {shown}")):
        logistic_path(*data, [1.0], tol=tol)


@pytest.mark.parametrize(("tol", "shown"), [(0.0, "0"), (-1.0, "-1"), (np.nan, "NaN")])
def test_group_lasso_tol_must_be_finite_and_positive(data, tol, shown) -> None:
    with pytest.raises(InvalidInputError, match=exact(f"tol must be finite and > 0; got {shown}")):
        GroupLassoProbe(tol=tol).fit(*data)


@pytest.mark.parametrize(("tol", "shown"), NOT_A_NUMBER)
def test_tol_must_be_a_number(data, tol, shown) -> None:
    for est in (LogisticProbe(tol=tol), GroupLassoProbe(tol=tol)):
        with pytest.raises(ArgumentTypeError, match=exact(f"tol must be a number; got {shown}")):
            est.fit(*data)


# ----------------------------------------------------------------------------------------------------- max_iter


@pytest.mark.parametrize(("max_iter", "shown"), [(0, "0"), (-3, "-3"), (1.5, "1.5"), (None, "None"), ("10", "'10'")])
def test_max_iter_must_be_an_integer_of_at_least_one(data, max_iter, shown) -> None:
    message = exact(f"max_iter must be an integer >= 1; got {shown}")
    for est in (LogisticProbe(max_iter=max_iter), GroupLassoProbe(max_iter=max_iter)):
        with pytest.raises(InvalidInputError, match=message):
            est.fit(*data)
    with pytest.raises(InvalidInputError, match=message):
        logistic_path(*data, [1.0], max_iter=max_iter)


# ------------------------------------------------------------------------------------------- mass-mean shrinkage


@pytest.mark.parametrize("whiten", [True, False])
@pytest.mark.parametrize(("shrinkage", "shown"), [(-0.1, "-0.1"), (1.5, "1.5"), (np.nan, "NaN"), (np.inf, "inf")])
def test_mass_mean_shrinkage_must_be_in_unit_interval(data, whiten, shrinkage, shown) -> None:
    with pytest.raises(InvalidInputError, match=exact(f"shrinkage must be in [0, 1]; got {shown}")):
        MassMeanProbe(whiten=whiten, shrinkage=shrinkage).fit(*data)


def test_lda_shrinkage_option_is_checked_at_fit(data) -> None:
    lda = build_classifier("lda", 0, {"shrinkage": 2.0})
    assert isinstance(lda, MassMeanProbe)
    with pytest.raises(InvalidInputError, match=exact("shrinkage must be in [0, 1]; got 2")):
        lda.fit(*data)


@pytest.mark.parametrize(("shrinkage", "shown"), NOT_A_NUMBER)
def test_mass_mean_shrinkage_must_be_a_number(data, shrinkage, shown) -> None:
    for whiten in (True, False):
        with pytest.raises(ArgumentTypeError, match=exact(f"shrinkage must be a number; got {shown}")):
            MassMeanProbe(whiten=whiten, shrinkage=shrinkage).fit(*data)


def test_mass_mean_bounds_of_shrinkage_are_accepted(data) -> None:
    for shrinkage in (0.0, 1.0):
        assert MassMeanProbe(whiten=True, shrinkage=shrinkage).fit(*data).score(*data) > 0.7


# ---------------------------------------------------------------------------------------------------- ridge alphas


@pytest.mark.parametrize(
    ("alphas", "shown"),
    [("strong", "'strong' (str)"), (["a", 1.0], "['a', 1.0] (list)"), ({"a": 1}, "{'a': 1} (dict)")],
)
@pytest.mark.parametrize("cls", [RidgeProbe, RidgeClassifierProbe])
def test_ridge_alphas_must_be_numbers(data, cls, alphas, shown) -> None:
    X, y = data
    target = y.astype(np.float64) if cls is RidgeProbe else y
    message = exact(f"alphas must be a positive number or a 1-D sequence of them; got {shown}")
    with pytest.raises(ArgumentTypeError, match=message):
        cls(alphas=alphas).fit(X, target)


@pytest.mark.parametrize(
    ("alphas", "message"),
    [
        ([], "alphas must be a positive number or a 1-D sequence of them; got []"),
        ([[0.1, 1.0]], "alphas must be a positive number or a 1-D sequence of them; got [[0.1, 1.0]]"),
        ([0.1, 0.0], "every alpha must be finite and > 0; got [0.1, 0.0]"),
        ([np.nan], "every alpha must be finite and > 0; got [nan]"),
    ],
)
def test_ridge_alphas_must_be_a_positive_grid(data, alphas, message) -> None:
    X, y = data
    with pytest.raises(InvalidInputError, match=exact(message)):
        RidgeProbe(alphas=alphas).fit(X, y.astype(np.float64))


# ------------------------------------------------------------------------------------- X that is not finite


@pytest.mark.parametrize(
    "make",
    [
        lambda: RidgeProbe(),
        lambda: RidgeClassifierProbe(),
        lambda: LogisticProbe(),
        lambda: GroupLassoProbe(),
        lambda: MassMeanProbe(),
        lambda: MassMeanProbe(whiten=True, shrinkage=0.1),
        lambda: MassMeanProbe(whiten=True),  # more samples than features: the Rust solver first
        lambda: MassMeanClassifier(),
    ],
    ids=["ridge", "ridge_classifier", "logistic", "group_lasso", "mass_mean", "shrunk_lda", "lda", "mm_classifier"],
)
@pytest.mark.parametrize(("value", "shown"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_values_that_are_not_finite_are_named_with_their_place(data, make, value, shown) -> None:
    X, y = data
    bad = X.astype(np.float64)
    bad[7, 2] = value
    with pytest.raises(
        InvalidInputError, match=exact(f"X contains {shown} at row 7, column 2; every value must be finite")
    ):
        make().fit(bad, y)


def test_lda_with_fewer_samples_than_features_names_a_value_that_is_not_finite() -> None:
    """The numpy path (scikit-learn's LDA) checks X itself, with the solvers' message."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 30))
    X[4, 11] = np.nan
    with pytest.raises(
        InvalidInputError, match=exact("X contains NaN at row 4, column 11; every value must be finite")
    ):
        MassMeanProbe(whiten=True).fit(X, np.arange(10) % 2)


# ---------------------------------------------------------------------------------------------- the solver plan


def test_solver_plan_and_lda_fallback_are_public(data) -> None:
    _, y = data
    plan = solver_plan(LogisticProbe(C=0.5), y)
    assert (plan.solver, plan.grid, plan.n_classes) == ("logistic", [0.5], 2)
    assert MassMeanProbe(whiten=True).lda_fallback
    assert not MassMeanProbe(whiten=True, shrinkage=0.1).lda_fallback
    assert not MassMeanProbe().lda_fallback
    with pytest.raises(
        InvalidEstimatorError,
        match=r"^LogisticRegression has no solver plan; expected RidgeProbe, RidgeClassifierProbe, LogisticProbe or "
        r"MassMeanProbe$",
    ):
        solver_plan(LogisticRegression(), y)


# ----------------------------------------------------------------------------------------------- StoreLayers


@pytest.fixture
def store(tmp_path: pathlib.Path) -> tuple[ActivationStore, list[str], np.ndarray]:
    rng = np.random.default_rng(2)
    n, hidden = 30, 4
    counts = rng.integers(1, 4, size=n)
    tokens = rng.standard_normal((1, int(counts.sum()), hidden)).astype(np.float32)
    prompts = [f"prompt {i}" for i in range(n)]
    activation_store = ActivationStore(tmp_path, dtype="float32")
    activation_store.write(prompts, tokens, counts, sites=[3])
    return activation_store, prompts, np.arange(n) % 2


@pytest.mark.parametrize("estimator", [LogisticProbe(), LogisticRegression()], ids=["rust", "python"])
def test_store_layers_with_no_sites(store, estimator) -> None:
    activation_store, prompts, y = store
    with pytest.raises(InvalidInputError, match=exact("StoreLayers has no sites; give at least one layer to sweep")):
        fit_layers(StoreLayers(activation_store, prompts, []), y, estimator, progress=False)


@pytest.mark.parametrize("estimator", [LogisticProbe(), LogisticRegression()], ids=["rust", "python"])
def test_store_layers_with_an_unknown_pooling(store, estimator) -> None:
    activation_store, prompts, y = store
    message = 'unknown pooling "median"; expected one of: last_token, first_token, mean, max, min'
    with pytest.raises(UnknownOptionError, match=exact(message)):
        fit_layers(StoreLayers(activation_store, prompts, [3], "median"), y, estimator, progress=False)


@pytest.mark.parametrize("estimator", [LogisticProbe(), LogisticRegression()], ids=["rust", "python"])
def test_store_layers_with_a_pooling_that_is_not_a_name(store, estimator) -> None:
    activation_store, prompts, y = store
    message = "StoreLayers pooling must be a pooling name, one of: last_token, first_token, mean, max, min; got 3 (int)"
    with pytest.raises(ArgumentTypeError, match=exact(message)):
        fit_layers(StoreLayers(activation_store, prompts, [3], 3), y, estimator, progress=False)  # type: ignore[arg-type]
