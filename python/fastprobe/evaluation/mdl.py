"""MDL probing: the online codelength of the labels given a representation (Voita and Titov, 2020).

A representation that makes the labels easy to predict lets a receiver who holds the representation learn the
labels from few examples: transmitting the labels block by block, each block coded by a probe trained on every
block before it, takes few bits. :func:`online_code` computes that online codelength for one representation and
:func:`online_code_layers` for every layer of a model (the layers of one block fitted in parallel in Rust for
fastprobe's estimators).

The code, for ``N`` examples and block fractions ``f_1 < ... < f_k = 1``:

1. The examples are put in the order of a seeded shuffle, ``np.random.default_rng(random_state).permutation(N)``.
2. Block ends ``t_i = floor(f_i * N)`` (see :func:`block_ends` for how they are kept strictly increasing).
3. The first ``t_1`` labels are sent with a code that needs no probe; each next block ``[t_i, t_{i+1})`` with a
   code built from a probe trained on the first ``t_i`` examples.
4. ``codelength = first block + sum of the later blocks``; ``compression = uniform codelength / codelength``,
   where the uniform codelength sends all ``N`` labels with the first block's code.

What the code of a label is depends on the task (``mode``):

``"categorical"`` (classification, exactly Voita and Titov's)
    First block: ``t_1 * log2(K)`` bits (uniform over the ``K`` classes of ``y``). A later example costs
    ``-log2 p(y | x)`` bits, ``p`` from the probe's ``predict_proba`` floored at :data:`PROBABILITY_FLOOR` (so a
    confidently wrong prediction costs about 40 bits, not infinitely many). Uniform: ``N * log2(K)`` bits.
``"gaussian"`` (regression, in bits)
    Each target is sent as the index of its cell in a grid of width ``precision`` over the target range
    ``[low, high]`` (``M = ceil((high - low) / precision)`` cells ``[low + j * precision, low + (j + 1) *
    precision)``, the last one closed). First block: ``t_1 * log2(M)`` bits. A later example costs the Gaussian
    mass of its cell, ``-log2(Phi((c + precision - mu) / sigma) - Phi((c - mu) / sigma))`` bits, where ``c`` is
    the cell's lower edge, ``mu`` the probe's prediction and ``sigma`` (at least ``precision``) the root mean
    squared error of the previous block's probe on the previous block, or, for the first coded block, the standard
    deviation of the first block's targets: errors the receiver has already seen, out of sample. (A probe's residual
    on its own training block would not do: a probe with more features than examples fits its block almost exactly,
    and a ``sigma`` near the precision makes every later miss cost tens of bits.) Uniform: ``N * log2(M)`` bits.
    The exact cell mass is used, not the density approximation ``-log2(precision * phi((y - mu) / sigma) / sigma)``:
    the masses of all cells sum to at most 1, so it is a proper code; the approximation's do not, and it is furthest
    off where ``sigma`` is near the precision (its floor). The mass is computed in
    log space (``scipy.special.log_ndtr``), so a far miss costs many, but finitely many, bits.
``"squared_error_proxy"`` (regression, NOT bits: workflow B's compatibility mode)
    Uniform: the summed squared error of predicting the mean of all ``N`` targets (a ``DummyRegressor``).
    First block: ``t_1 * uniform / N``. A later block costs the summed squared error of the probe trained on the
    examples before it. Workflow B sums a SmoothL1 loss for the blocks; this mode uses the squared error, the
    same unit as its uniform term. ``unit`` is ``"squared error"``.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning

from fastprobe import _core
from fastprobe._validation import as_float, check_max_iter
from fastprobe.estimators import (
    LayerScaler,
    LogisticProbe,
    MassMeanProbe,
    RidgeClassifierProbe,
    RidgeProbe,
)
from fastprobe.evaluation.mdl_checks import (
    DEFAULT_RELATIVE_PRECISION,
    build_estimator,
    check_first_block,
    check_fractions,
    check_precision,
    check_seed,
)
from fastprobe.evaluation.mdl_results import MDLLayers, MDLResult
from fastprobe.evaluation.targets import as_layer_dict, check_targets
from fastprobe.exceptions import (
    InvalidEstimatorError,
    InvalidInputError,
    ShapeMismatchError,
    UnknownOptionError,
)
from fastprobe.sweep import fit_layers

__all__ = [
    "DEFAULT_FRACTIONS",
    "DEFAULT_RELATIVE_PRECISION",
    "MODES",
    "PROBABILITY_FLOOR",
    "block_ends",
    "online_code",
    "online_code_layers",
]

#: Voita and Titov's block ends: 0.1%, 0.2%, 0.4%, 0.8%, 1.6%, 3.2%, 6.25%, 12.5%, 25%, 50% and 100% of the examples.
DEFAULT_FRACTIONS: tuple[float, ...] = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
#: The codes: ``"categorical"`` for classification; ``"gaussian"`` (bits) and ``"squared_error_proxy"`` for regression.
MODES: tuple[str, ...] = ("categorical", "gaussian", "squared_error_proxy")
#: The smallest probability a class is given (a confidently wrong prediction costs ``-log2(1e-12)``, about 40 bits).
PROBABILITY_FLOOR = 1e-12

_RUST_ESTIMATORS = (LogisticProbe, RidgeProbe, RidgeClassifierProbe, MassMeanProbe)


@dataclass(frozen=True)
class _Plan:
    """Everything the code of ``y`` needs except the representation (shared by all layers)."""

    task: str
    mode: str
    order: np.ndarray
    ends: list[int]
    y: np.ndarray  # shuffled: class indices for classification, float64 targets for regression
    n_classes: int | None
    precision: float | None
    target_range: tuple[float, float] | None
    template: BaseEstimator
    random_state: int


def block_ends(n_examples: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[int]:
    """Return the block ends ``t_1 < ... < t_k = n_examples`` the fractions give.

    ``t_i = floor(f_i * N)`` (as Voita and Titov's and workflow B's code take them; the product is rounded to 9
    decimals first, so ``0.29 * 100`` gives 29), then moved up to ``t_{i-1} + 1`` (and ``t_1`` to at least 1) when
    it would repeat the previous end, and down to ``N - (k - i)`` so that every later block keeps at least one
    example. With ``N`` much larger than ``1 / f_1`` the rule is plain ``floor(f_i * N)``.

    Parameters
    ----------
    n_examples : int
        ``N``, at least the number of fractions.
    fractions : sequence of float, default=DEFAULT_FRACTIONS
        Strictly increasing, in ``(0, 1]``, the last one 1.

    Returns
    -------
    list of int

    Raises
    ------
    InvalidInputError
        If the fractions are not strictly increasing in ``(0, 1]`` ending at 1, or there are fewer examples than
        blocks.
    ArgumentTypeError
        If a fraction is not a number.
    """
    fracs = check_fractions(fractions)
    k = len(fracs)
    if n_examples < k:
        raise InvalidInputError(
            f"fewer examples than MDL blocks: {k} fractions need at least {k} examples, got {n_examples}"
        )
    ends: list[int] = []
    for i, f in enumerate(fracs):
        raw = math.floor(round(f * n_examples, 9))
        previous = ends[-1] if ends else 0
        ends.append(min(max(raw, previous + 1), n_examples - (k - 1 - i)))
    return ends


def _plan(
    y: Any,
    n_rows: int,
    estimator: Any,
    task: str | None,
    fractions: Sequence[float],
    random_state: Any,
    mode: str | None,
    precision: float | None,
    estimator_kwargs: Mapping[str, Any] | None,
) -> _Plan:
    labels = np.asarray(y)
    if labels.ndim == 1 and len(labels) != n_rows:
        raise ShapeMismatchError(f"y has {len(labels)} labels but X has {n_rows} rows; give one label per row")
    seed = check_seed(random_state)
    values, task = check_targets(labels, task)
    if mode is None:
        mode = "categorical" if task == "classification" else "gaussian"
    if mode not in MODES:
        raise UnknownOptionError(f"unknown MDL mode {mode!r}; expected one of: {', '.join(MODES)}")
    if (mode == "categorical") != (task == "classification"):
        expected = "'categorical'" if task == "classification" else "'gaussian' or 'squared_error_proxy'"
        raise InvalidInputError(f"mode {mode!r} does not apply to task {task!r}; expected {expected}")
    if precision is not None and mode != "gaussian":
        raise InvalidInputError(f"precision applies only to mode='gaussian'; got precision={precision!r} with {mode!r}")
    ends = block_ends(n_rows, fractions)
    order = np.random.default_rng(seed).permutation(n_rows)
    template = build_estimator(estimator, task, seed, estimator_kwargs)
    if task == "classification":
        classes, codes = np.unique(values, return_inverse=True)
        shuffled = codes[order]
        check_first_block(classes, shuffled, ends[0], fractions)
        return _Plan(task, mode, order, ends, shuffled, len(classes), None, None, template, seed)
    targets = values.astype(np.float64)
    low, high = float(targets.min()), float(targets.max())
    eps = None
    if mode == "gaussian":
        eps = check_precision(precision, low, high)
    return _Plan(task, mode, order, ends, targets[order], None, eps, (low, high), template, seed)


def _as_rows(X: Any, name: str) -> np.ndarray:
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"{name} must be 2-D (n_examples, n_features); got shape {arr.shape}")
    return arr


def _prepared(X: np.ndarray, plan: _Plan) -> np.ndarray:
    """Return the rows in shuffled order, C-contiguous float32 (as activations are, and as the Rust estimators fit)."""
    return np.ascontiguousarray(X[plan.order], dtype=np.float32)


def _log2_normal_mass(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``log2(Phi(hi) - Phi(lo))`` for ``lo < hi``, accurate far in both tails."""
    from scipy.special import log_ndtr

    flip = lo > 0  # Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi): work in the left tail, where log_ndtr is accurate
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    la, lb = log_ndtr(a), log_ndtr(b)
    return np.asarray((lb + np.log(-np.expm1(la - lb))) / np.log(2.0))


def _code(plan: _Plan, X: np.ndarray, model_for: Callable[[int], Any]) -> MDLResult:
    """Code ``plan.y`` given the shuffled rows ``X``; ``model_for(i)`` is the probe trained on ``X[:ends[i]]``."""
    ends, y, n = plan.ends, plan.y, len(plan.y)
    costs: list[float] = []
    accuracy: list[float] = [math.nan]
    mse: list[float] = [math.nan]
    sigmas: list[float] = [math.nan]
    if plan.mode == "categorical":
        assert plan.n_classes is not None
        unit_cost = math.log2(plan.n_classes)
    elif plan.mode == "gaussian":
        assert plan.precision is not None and plan.target_range is not None
        low, high = plan.target_range
        n_cells = math.ceil(round((high - low) / plan.precision, 9))
        unit_cost = math.log2(n_cells)
    else:
        unit_cost = float(np.sum((y - y.mean()) ** 2)) / n
    costs.append(ends[0] * unit_cost)
    for i in range(len(ends) - 1):
        start, stop = ends[i], ends[i + 1]
        model = model_for(i)
        xb, yb = X[start:stop], y[start:stop]
        if plan.mode == "categorical":
            proba = np.asarray(model.predict_proba(xb), dtype=np.float64)
            if proba.shape != (len(yb), plan.n_classes):
                raise InvalidEstimatorError(
                    f"{type(model).__name__}.predict_proba returned shape {proba.shape}; expected "
                    f"{(len(yb), plan.n_classes)} (one column per class of y)"
                )
            p = np.maximum(proba[np.arange(len(yb)), yb], PROBABILITY_FLOOR)
            costs.append(float(-np.sum(np.log2(p))))
            accuracy.append(float(np.mean(np.argmax(proba, axis=1) == yb)))
            continue
        mu = np.asarray(model.predict(xb), dtype=np.float64).reshape(-1)
        previous = mse[-1]
        mse.append(float(np.mean((yb - mu) ** 2)))
        if plan.mode == "squared_error_proxy":
            costs.append(float(np.sum((yb - mu) ** 2)))
            continue
        assert plan.precision is not None and plan.target_range is not None
        eps, low = plan.precision, plan.target_range[0]
        # the noise scale is what the receiver already knows: the previous probe's error on the previous block, or,
        # for the first probe, the spread of the first block's targets
        spread = previous if i > 0 else float(np.mean((y[:start] - y[:start].mean()) ** 2))
        sigma = max(math.sqrt(spread), eps)
        sigmas.append(sigma)
        cell = np.minimum(np.floor((yb - low) / eps), n_cells - 1)
        lower = low + cell * eps
        costs.append(float(-np.sum(_log2_normal_mass((lower - mu) / sigma, (lower + eps - mu) / sigma))))
    return _result(plan, costs, unit_cost, accuracy, mse, sigmas)


def _result(
    plan: _Plan, costs: list[float], unit_cost: float, accuracy: list[float], mse: list[float], sigmas: list[float]
) -> MDLResult:
    ends, n = plan.ends, len(plan.y)
    codelength = float(sum(costs))
    uniform = n * unit_cost
    classification = plan.task == "classification"
    return MDLResult(
        codelength=codelength,
        uniform_codelength=uniform,
        compression=uniform / codelength if codelength > 0 else math.inf,
        unit="squared error" if plan.mode == "squared_error_proxy" else "bits",
        mode=plan.mode,
        task=plan.task,
        block_ends=list(ends),
        block_costs=costs,
        n_examples=n,
        n_classes=plan.n_classes,
        precision=plan.precision,
        target_range=plan.target_range,
        block_accuracy=accuracy if classification else None,
        block_mse=None if classification else mse,
        block_sigma=sigmas if plan.mode == "gaussian" else None,
        random_state=plan.random_state,
    )


def _online_logistic(
    plan: _Plan, layers: dict[Any, np.ndarray], standardize: bool, progress: bool
) -> dict[Any, MDLResult]:
    """Code every layer (rows in ``y``'s order) with the plan's :class:`LogisticProbe` in one Rust call.

    The layers run in parallel, the rows are taken in the plan's order, and each block's fit starts from the previous
    block's solution.
    """
    from tqdm.auto import tqdm

    probe = plan.template
    assert plan.n_classes is not None
    names = list(layers)
    unit_cost = math.log2(plan.n_classes)
    first = plan.ends[0] * unit_cost
    sizes = np.diff(plan.ends)
    with tqdm(total=len(names), desc="MDL layers", unit="layer", disable=not progress, dynamic_ncols=True) as bar:
        coded = _core.online_code_logistic(
            [np.ascontiguousarray(layers[name], dtype=np.float32) for name in names],
            np.ascontiguousarray(plan.order, dtype=np.int64),
            np.ascontiguousarray(plan.y, dtype=np.int64),
            plan.n_classes,
            list(plan.ends),
            c=as_float(probe.C, "C"),
            fit_intercept=bool(probe.fit_intercept),
            max_iter=check_max_iter(probe.max_iter),
            tol=as_float(probe.tol, "tol"),
            standardize=standardize,
            floor=PROBABILITY_FLOOR,
            n_threads=probe.n_threads,
            progress=lambda _layer: bar.update(1),
        )
    results = {}
    for name, (bits, correct, _n_iter, converged) in zip(names, coded, strict=True):
        if not converged.all():
            warnings.warn(
                f"MDL probe of layer {name!r} did not converge in max_iter={probe.max_iter} iterations for block(s) "
                f"{(np.flatnonzero(~converged) + 1).tolist()}; increase max_iter (estimator_kwargs)",
                ConvergenceWarning,
                stacklevel=3,
            )
        costs = [first, *(float(b) for b in bits)]
        accuracy = [math.nan, *(float(c) / float(k) for c, k in zip(correct, sizes, strict=True))]
        results[name] = _result(plan, costs, unit_cost, accuracy, [math.nan], [math.nan])
    return results


def _rust_online(plan: _Plan) -> bool:
    """Whether the plan's probe is coded by the one Rust call (fastprobe's logistic regression, classification)."""
    return type(plan.template) is LogisticProbe and plan.mode == "categorical"


def _fit_prefix(plan: _Plan, X: np.ndarray, standardize: bool, block: int) -> Any:
    """Fit a fresh copy of the plan's estimator on the examples before block ``block + 1``."""
    from sklearn.pipeline import Pipeline

    t = plan.ends[block]
    model = clone(plan.template)
    if standardize:
        model = Pipeline([("scale", LayerScaler()), ("probe", model)])
    return model.fit(X[:t], plan.y[:t])


def online_code(
    X: Any,
    y: Any,
    estimator: Any = "logistic_regression",
    *,
    task: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    random_state: int = 0,
    mode: str | None = None,
    precision: float | None = None,
    estimator_kwargs: Mapping[str, Any] | None = None,
    standardize: bool = True,
) -> MDLResult:
    """Compute the online codelength of ``y`` given the representation ``X`` (Voita and Titov's MDL probe).

    The codes are described in :mod:`fastprobe.evaluation.mdl`. For classification the code is exactly Voita and
    Titov's: ``t_1 * log2(K)`` bits for the first block, then ``-log2 p(y | x)`` per example from a probe trained
    on all examples before its block, and ``compression = N * log2(K) / codelength``.

    Parameters
    ----------
    X : array-like of shape (n_examples, n_features)
    y : array-like of shape (n_examples,)
        Class labels of any type, or regression targets.
    estimator : str or estimator, default="logistic_regression"
        A name built by :func:`fastprobe.estimators.build_classifier` (``"logistic_regression"`` is fastprobe's
        :class:`~fastprobe.estimators.LogisticProbe`, ``max_iter=1000``, for classification and ridge regression
        for regression; ``"mlp"`` the torch MLP), or an unfitted estimator (cloned for every block). For
        classification it needs ``predict_proba``; it is fitted on class indices ``0..K-1`` (the order of
        ``np.unique(y)``) and its ``predict_proba`` columns must follow them. It sees the raw ``X`` (wrap it in a
        ``Pipeline`` with a scaler to standardize), converted once to float32 (as activations are, and as fastprobe's
        estimators fit).
    task : {"classification", "regression"}, optional
        Default: regression for floating targets with a non-integral value, classification otherwise.
    fractions : sequence of float, default=DEFAULT_FRACTIONS
        Block ends as fractions of the examples: strictly increasing in ``(0, 1]``, the last 1.0. The ends are
        :func:`block_ends` of them.
    random_state : int, default=0
        Seed of the shuffle (and of named estimators that take one).
    mode : {"categorical", "gaussian", "squared_error_proxy"}, optional
        ``"categorical"`` for classification (the only one); for regression ``"gaussian"`` (the default, bits) or
        ``"squared_error_proxy"`` (workflow B's numbers, not bits).
    precision : float, optional
        For ``mode="gaussian"``: the width of the cells targets are sent in, in the targets' unit (default
        :data:`DEFAULT_RELATIVE_PRECISION` times the target range); above 0 and below the range.
    estimator_kwargs : mapping, optional
        Options for a named estimator (say ``{"C": 0.1}``), or ``set_params`` options for an estimator object.
    standardize : bool, default=True
        Standardize each feature with the mean and standard deviation of the probe's training examples (the examples
        before the block it codes), as ``Probe`` and :func:`~fastprobe.evaluation.cross_validate` do by default.

    Returns
    -------
    MDLResult

    Raises
    ------
    InvalidInputError
        For fractions that are not strictly increasing in ``(0, 1]`` ending at 1, fewer examples than blocks, a
        first block without every class (the message names the missing classes and the first fraction that would
        hold them all), fewer than 2 classes, constant or non-finite regression targets, a mode that does not fit
        the task, or a precision outside ``(0, range)``.
    ShapeMismatchError
        If ``X`` is not 2-D, ``y`` not 1-D, or their lengths differ.
    UnknownOptionError
        For an unknown task, mode or estimator name.
    InvalidEstimatorError
        If a classification estimator has no ``predict_proba``.

    Notes
    -----
    fastprobe's :class:`~fastprobe.estimators.LogisticProbe` (``"logistic_regression"`` for classification) is coded
    in one Rust call: each block's probe starts from the previous block's solution (re-expressed for the new block's
    standardization), which changes how soon the tolerance is met, not the optimum; class probabilities are
    computed in float64. A probe that runs out of iterations gives a :class:`~sklearn.exceptions.ConvergenceWarning`
    naming the blocks.

    Every block's probe is trained on the first block and more, so when the first block holds every class, so does
    every training set, and every class gets a probability. A first block without a class is refused rather than
    coded with a probe that cannot give that class any probability.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.tile([0, 1], 500)
    >>> X = rng.standard_normal((1000, 4)) + 4.0 * y[:, None]
    >>> r = online_code(X, y, fractions=(0.02, 0.1, 0.5, 1.0))
    >>> r.block_ends, round(r.uniform_codelength)
    ([20, 100, 500, 1000], 1000)
    >>> r.compression > 10
    True
    """
    X = _as_rows(X, "X")
    plan = _plan(y, X.shape[0], estimator, task, fractions, random_state, mode, precision, estimator_kwargs)
    if _rust_online(plan):
        return _online_logistic(plan, {0: X}, standardize, progress=False)[0]
    Xs = _prepared(X, plan)
    return _code(plan, Xs, functools.partial(_fit_prefix, plan, Xs, standardize))


def online_code_layers(
    layers: Any,
    y: Any,
    estimator: Any = "logistic_regression",
    *,
    task: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    random_state: int = 0,
    mode: str | None = None,
    precision: float | None = None,
    estimator_kwargs: Mapping[str, Any] | None = None,
    standardize: bool = True,
    progress: bool = False,
) -> MDLLayers:
    """Compute :func:`online_code` for every layer, with the same shuffle and blocks for all of them.

    For fastprobe's Rust estimators (:class:`~fastprobe.estimators.LogisticProbe`, which ``"logistic_regression"``
    builds, :class:`~fastprobe.estimators.RidgeProbe`, which it builds for regression, and the other estimators
    :func:`fastprobe.sweep.fit_layers` runs in Rust) the probes of one block are fitted for all layers at once, in
    parallel in Rust; any other estimator is fitted layer by layer. Each layer's result is what
    :func:`online_code` gives on that layer alone.

    Parameters
    ----------
    layers : ndarray of shape (n_layers, n_examples, n_features), sequence of 2-D arrays, or mapping
        Each layer's activations (rows in the order of ``y``); a mapping gives the layers' names (else 0..L-1).
    y, estimator, task, fractions, random_state, mode, precision, estimator_kwargs, standardize
        As in :func:`online_code`.
    progress : bool, default=False
        Show a progress bar over blocks.

    Returns
    -------
    MDLLayers

    Raises
    ------
    InvalidInputError, ShapeMismatchError, UnknownOptionError, InvalidEstimatorError
        As :func:`online_code`; also for empty layers or layers with different numbers of rows.
    """
    from tqdm.auto import tqdm

    named = as_layer_dict(layers)
    n_rows = next(iter(named.values())).shape[0]
    plan = _plan(y, n_rows, estimator, task, fractions, random_state, mode, precision, estimator_kwargs)
    if _rust_online(plan):
        return MDLLayers(_online_logistic(plan, named, standardize, progress))
    shuffled = {name: _prepared(X, plan) for name, X in named.items()}
    n_blocks = len(plan.ends) - 1
    if isinstance(plan.template, _RUST_ESTIMATORS):
        names = list(shuffled)
        models: list[list[Any]] = []
        for i in tqdm(range(n_blocks), desc="MDL blocks", unit="block", disable=not progress, dynamic_ncols=True):
            t = plan.ends[i]
            prefixes = [shuffled[name][:t] for name in names]
            models.append(fit_layers(prefixes, plan.y[:t], plan.template, standardize=standardize, progress=False))
        return MDLLayers(
            {name: _code(plan, shuffled[name], functools.partial(_pick, models, j)) for j, name in enumerate(names)}
        )
    results = {}
    for name in tqdm(list(shuffled), desc="MDL layers", unit="layer", disable=not progress, dynamic_ncols=True):
        results[name] = _code(plan, shuffled[name], functools.partial(_fit_prefix, plan, shuffled[name], standardize))
    return MDLLayers(results)


def _pick(models: list[list[Any]], layer: int, block: int) -> Any:
    return models[block][layer]
