"""Layer sweeps: one probe per layer, every layer read once, layers fitted in parallel in Rust.

:func:`fit_layers` fits a copy of one estimator on each layer's activations. The layers come from arrays in memory
or, through :class:`StoreLayers`, straight from an :class:`~fastprobe.ActivationStore` (each layer's pooled
activations are read once, by the worker that fits it, and dropped after: memory holds one layer matrix per worker,
never the whole sweep).

For :class:`~fastprobe.estimators.RidgeProbe`, :class:`~fastprobe.estimators.RidgeClassifierProbe`,
:class:`~fastprobe.estimators.LogisticProbe` and :class:`~fastprobe.estimators.MassMeanProbe` the whole sweep runs in
Rust with the interpreter released. Any other scikit-learn estimator is fitted layer by layer in Python (the same
results a loop would give, with the same progress bar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _check_sample_weight, check_consistent_length

from fastprobe import _core
from fastprobe.estimators import (
    LayerScaler,
    LogisticProbe,
    MassMeanProbe,
    RidgeClassifierProbe,
    RidgeProbe,
    solver_plan,
)
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, ShapeMismatchError
from fastprobe.sites import SiteSpec, store_ids
from fastprobe.store import ActivationStore

__all__ = ["StoreLayers", "fit_layers"]

_RUST_ESTIMATORS = (RidgeProbe, RidgeClassifierProbe, LogisticProbe, MassMeanProbe)


@dataclass(frozen=True)
class StoreLayers:
    """The layers of a sweep, read from a store: layer ``i`` is ``store.read_pooled(prompts, [sites[i]], pooling)``.

    Parameters
    ----------
    store : ActivationStore
    prompts : sequence of str
        The training prompts, in the order of ``y``.
    sites : sequence of int or str
        One stored site per probe: a layer or a site name (:mod:`fastprobe.sites`), e.g. every head of a block.
    pooling : {"last_token", "first_token", "mean", "max", "min"}, default="last_token"
    """

    store: ActivationStore
    prompts: Sequence[str]
    sites: Sequence[SiteSpec]
    pooling: str = "last_token"

    def __len__(self) -> int:
        return len(self.sites)

    def layer(self, i: int) -> np.ndarray:
        """Layer ``i``'s pooled activations, ``(n_prompts, hidden)`` float32."""
        return self.store.read_pooled(self.prompts, [self.sites[i]], self.pooling)


def _as_layers(layers: Any) -> StoreLayers | list[np.ndarray]:
    if isinstance(layers, StoreLayers):
        if len(layers) == 0:
            raise InvalidInputError("StoreLayers has no sites; give at least one layer to sweep")
        if not isinstance(layers.pooling, str):
            raise ArgumentTypeError(
                f"StoreLayers pooling must be a pooling name, one of: {', '.join(_core.POOLING_METHODS)}; "
                f"got {layers.pooling!r} ({type(layers.pooling).__name__})"
            )
        return layers
    if isinstance(layers, np.ndarray) and layers.ndim != 3:
        raise ShapeMismatchError(
            f"layers: expected a 3-D array (n_layers, n_samples, hidden) or a sequence of 2-D arrays, "
            f"got shape {layers.shape}"
        )
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in layers]
    if not arrays:
        raise InvalidInputError("layers is empty; give at least one layer to sweep")
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[0] != arrays[0].shape[0]:
            raise ShapeMismatchError(
                f"layer {i}: expected shape ({arrays[0].shape[0]}, hidden) like layer 0, got {a.shape}"
            )
    return arrays


def fit_layers(
    layers: Any,
    y: Any,
    estimator: BaseEstimator,
    *,
    sample_weight: Any = None,
    standardize: bool = True,
    n_threads: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[Any]:
    """Fit a copy of ``estimator`` on every layer.

    Parameters
    ----------
    layers : StoreLayers, ndarray of shape (n_layers, n_samples, hidden), or sequence of 2-D arrays
        Each layer's activations (rows in the order of ``y``).
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Shared by every layer.
    estimator : estimator
        Cloned once per layer (its parameters are kept; ``n_threads`` on it is ignored in favour of this call's).
    sample_weight : array-like of shape (n_samples,), optional
    standardize : bool, default=True
        Standardize each layer per neuron (fitted on that layer) before the estimator: each result is then a
        ``Pipeline([("scale", LayerScaler), ("probe", estimator)])`` that predicts from raw activations.
    n_threads : int, optional
        Threads of the pool (default: ``FASTPROBE_NUM_THREADS``, else every CPU).
    workers : int, optional
        Layers fitted at once (default: one per thread). Each holds one layer matrix in memory.
    progress : bool, default=True
        Show a progress bar over layers.

    Returns
    -------
    list
        One fitted estimator (or pipeline) per layer, in layer order.

    Raises
    ------
    InvalidInputError, ShapeMismatchError
        For empty or mismatched layers, or bad targets; a layer's own bad values are named with its index.
    UnknownOptionError, ArgumentTypeError
        For a :class:`StoreLayers` pooling that is not a pooling name.
    MissingActivationsError
        When a prompt is not stored at a site.

    Examples
    --------
    >>> import numpy as np
    >>> from fastprobe.estimators import LogisticProbe
    >>> from fastprobe.sweep import fit_layers
    >>> rng = np.random.default_rng(0)
    >>> y = np.tile([0, 1], 50)
    >>> layers = rng.standard_normal((3, 100, 8)).astype(np.float32)
    >>> layers[2, :, 0] += 3 * y  # only the last layer separates the classes
    >>> probes = fit_layers(layers, y, LogisticProbe(), progress=False)
    >>> [round(p.score(layers[i], y), 2) >= 0.9 for i, p in enumerate(probes)]
    [False, False, True]
    """
    from tqdm.auto import tqdm

    source = _as_layers(layers)
    y = np.asarray(y)
    n_samples = len(source.prompts) if isinstance(source, StoreLayers) else source[0].shape[0]
    check_consistent_length(np.empty(n_samples), y)
    w = None
    if sample_weight is not None:
        w = np.ascontiguousarray(_check_sample_weight(sample_weight, np.empty((n_samples, 1)), dtype=np.float64))
    n_layers = len(source)
    bar = tqdm(total=n_layers, desc="fitting layers", unit="layer", disable=not progress, dynamic_ncols=True)
    try:
        if isinstance(estimator, _RUST_ESTIMATORS):
            try:
                return _rust_sweep(
                    source, y, estimator, w, standardize, n_threads, workers, lambda _layer: bar.update()
                )
            except InvalidInputError:
                if not (isinstance(estimator, MassMeanProbe) and estimator.lda_fallback):
                    raise
                bar.reset()  # a singular within-class covariance: each layer's fit inverts it in numpy
        return _python_sweep(source, y, estimator, w, standardize, n_threads, bar.update)
    finally:
        bar.close()


def _scaler(mean: np.ndarray, scale: np.ndarray) -> LayerScaler:
    scaler = LayerScaler()
    scaler.mean_, scaler.scale_, scaler.n_features_in_ = mean, scale, len(mean)
    return scaler


def _rust_sweep(
    source: StoreLayers | list[np.ndarray],
    y: np.ndarray,
    estimator: BaseEstimator,
    w: np.ndarray | None,
    standardize: bool,
    n_threads: int | None,
    workers: int | None,
    on_layer: Any,
) -> list[Any]:
    template = clone(estimator)
    plan = solver_plan(template, y)
    if isinstance(source, StoreLayers):
        src: Any = (source.store.native, list(source.prompts), store_ids(source.sites), source.pooling)
    else:
        src = source
    raws = _core.sweep_layers(
        src,
        plan.targets,
        plan.n_classes,
        w,
        plan.solver,
        plan.grid,
        standardize=bool(standardize),
        n_threads=n_threads,
        workers=workers,
        progress=on_layer,
        **plan.options,
    )
    fitted = []
    for scaler, raw in raws:
        est = clone(estimator)
        if hasattr(template, "classes_"):
            est.classes_ = template.classes_
        plan.finish(est, raw)
        est.n_features_in_ = est.coef_.shape[-1]
        fitted.append(est if scaler is None else Pipeline([("scale", _scaler(*scaler)), ("probe", est)]))
    return fitted


def _python_sweep(
    source: StoreLayers | list[np.ndarray],
    y: np.ndarray,
    estimator: BaseEstimator,
    w: np.ndarray | None,
    standardize: bool,
    n_threads: int | None,
    on_layer: Any,
) -> list[Any]:
    fitted = []
    for i in range(len(source)):
        X = source.layer(i) if isinstance(source, StoreLayers) else source[i]
        model: Any = (
            Pipeline([("scale", LayerScaler(n_threads=n_threads)), ("probe", clone(estimator))])
            if standardize
            else clone(estimator)
        )
        if w is None:
            model.fit(X, y)
        elif standardize:
            model.fit(X, y, probe__sample_weight=w)
        else:
            model.fit(X, y, sample_weight=w)
        fitted.append(model)
        on_layer()
    return fitted
