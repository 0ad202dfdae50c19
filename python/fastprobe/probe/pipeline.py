"""The feature pipeline of a probe: scaling, preprocessing and the mass-mean column, then the classifier.

``fit_matrix`` fits it on a feature matrix (rows: prompts, or tokens) and sets the probe's fitted attributes;
``transform`` applies it; ``predict_proba_rows`` and ``predict_rows`` turn features into one output per prompt
through the inference pooling. ``Probe``, ``ProbeEnsemble`` and the layer sweep all fit and predict through these.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.estimators import LayerScaler, PerLayerScaler
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError, UnsupportedMethodError
from fastprobe.layers import resolve_layers
from fastprobe.probe.config import (
    cached_reads,
    check_params,
    check_same_model,
    preprocessing_steps,
    probe_context,
    retries,
)
from fastprobe.profiling import section
from fastprobe.store.pooling import PoolingSpec, reduce_scores

__all__ = [
    "check_fitted",
    "fit_matrix",
    "fit_scaler",
    "inference_rows",
    "pad_tokens",
    "predict_proba_rows",
    "predict_rows",
    "proba_spec",
    "require_proba",
    "score_values",
    "standard_scaler_from",
    "training_rows",
    "transform",
]


def fit_scaler(X: np.ndarray, n_layers: int, mode: str) -> Any:
    """Fit a probe's feature scaler, as lmprobe builds it.

    One layer: scikit-learn's ``StandardScaler`` (a single layer is always standardized). Several: a
    :class:`~fastprobe.scaling.PerLayerScaler` (Rust kernels) per neuron or per layer block.
    """
    from sklearn.preprocessing import StandardScaler

    if n_layers == 1:
        return StandardScaler().fit(X)
    return PerLayerScaler(n_layers, X.shape[1] // n_layers, strategy=mode).fit(X)


def standard_scaler_from(fitted: LayerScaler, n_samples: int) -> Any:
    """Express a fitted one-block :class:`LayerScaler` (the Rust sweep's) as the ``StandardScaler`` it equals.

    ``var_`` is ``scale_ ** 2``: a feature of zero variance, whose scale the fit set to 1, reports a variance of 1.
    """
    from sklearn.preprocessing import StandardScaler

    out = StandardScaler()
    out.mean_ = np.asarray(fitted.mean_, dtype=np.float64)
    out.scale_ = np.asarray(fitted.scale_, dtype=np.float64)
    out.var_ = out.scale_**2
    out.n_features_in_ = int(fitted.n_features_in_)
    out.n_samples_seen_ = int(n_samples)
    return out


def fit_matrix(probe: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, n_layers: int, template: Any) -> None:
    """Scale, preprocess, augment and fit on a feature matrix (rows: prompts or tokens); set the fitted attributes."""
    from sklearn.pipeline import Pipeline

    if len(X) != len(y):
        raise ShapeMismatchError(f"got {len(X)} rows of activations but {len(y)} labels")
    if X.shape[1] % n_layers:
        raise ShapeMismatchError(f"{X.shape[1]} features cannot be split into {n_layers} equal layer blocks")
    steps = preprocessing_steps(probe.preprocessing, probe.pca_components)
    mode = "per_layer" if probe.normalize_layers == "per_layer" else "per_neuron"
    scale = n_layers == 1 or probe.normalize_layers is not False
    if probe.normalize_layers is not False and any(name.startswith("scaler") for name, _ in steps):
        warnings.warn(
            "normalize_layers auto-disabled: preprocessing includes StandardScaler, which standardizes every "
            "feature, so the per-layer scaling (normalize_layers) is skipped (a single layer is standardized "
            "either way); set normalize_layers=False to silence this warning",
            UserWarning,
            stacklevel=3,
        )
        scale = n_layers == 1
    with section("scale"):
        probe.scaler_ = fit_scaler(X, n_layers, mode) if scale else None
        Xs = probe.scaler_.transform(X) if probe.scaler_ is not None else np.asarray(X, dtype=np.float32)
    probe.mass_mean_direction_ = None
    if probe.mass_mean_augment:
        classes = np.unique(y)
        if len(classes) != 2:
            raise InvalidInputError(f"mass_mean_augment needs exactly two classes; got {len(classes)}")
        diff = Xs[y == classes[1]].mean(axis=0, dtype=np.float64) - Xs[y == classes[0]].mean(axis=0, dtype=np.float64)
        norm = float(np.linalg.norm(diff))
        probe.mass_mean_direction_ = diff / norm if norm > 0 else diff
    probe.preprocessing_pipeline_ = Pipeline(steps) if steps else None
    with section("preprocess"):
        Xp = probe.preprocessing_pipeline_.fit_transform(Xs) if probe.preprocessing_pipeline_ is not None else Xs
    if probe.mass_mean_direction_ is not None:
        Xp = np.column_stack([Xp, Xs @ probe.mass_mean_direction_])
    if probe.task == "regression":
        y = y.astype(np.float64)
    try:
        with section("fit"):
            clf = template.fit(Xp, y) if w is None else template.fit(Xp, y, sample_weight=w)
    except TypeError as err:
        if w is not None and "sample_weight" in str(err):
            raise InvalidInputError(f"{type(template).__name__} does not accept sample_weight") from err
        raise
    probe.classifier_ = clf
    probe.classes_ = np.asarray(clf.classes_) if probe.task == "classification" else None
    probe.n_features_in_ = int(X.shape[1])
    probe.n_blocks_ = n_layers


def transform(probe: Any, X: np.ndarray) -> np.ndarray:
    """Apply a fitted probe's scaling, preprocessing and mass-mean column to a feature matrix."""
    if getattr(probe, "n_features_in_", None) is not None and X.shape[1] != probe.n_features_in_:
        raise ShapeMismatchError(f"X has {X.shape[1]} features, but the probe was fitted on {probe.n_features_in_}")
    with section("transform"):
        Xs = probe.scaler_.transform(X) if probe.scaler_ is not None else np.asarray(X, dtype=np.float32)
        Xp = probe.preprocessing_pipeline_.transform(Xs) if probe.preprocessing_pipeline_ is not None else Xs
        if probe.mass_mean_direction_ is not None:
            Xp = np.column_stack([Xp, Xs @ probe.mass_mean_direction_])
        return np.asarray(Xp)


def check_fitted(probe: Any) -> None:
    """Raise :class:`~fastprobe.NotFittedError` before ``fit``."""
    from fastprobe.exceptions import NotFittedError

    if getattr(probe, "classifier_", None) is None:
        raise NotFittedError(f"this {type(probe).__name__} has not been fitted yet; call fit before using it")


def require_proba(probe: Any) -> None:
    """Raise unless the probe gives class probabilities."""
    if probe.task == "regression":
        raise InvalidInputError("predict_proba is for classification; this probe has task='regression'")
    if not hasattr(probe.classifier_, "predict_proba"):
        raise UnsupportedMethodError(
            f"the classifier {type(probe.classifier_).__name__} does not support predict_proba; use predict, or a "
            "classifier with probabilities (e.g. 'logistic_regression')"
        )


def pad_tokens(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-token rows to ``(n_prompts, max_tokens, k)``, NaN past each prompt's end."""
    counts = np.diff(offsets)
    out = np.full((len(counts), int(counts.max()), rows.shape[1]), np.nan)
    mask = np.arange(out.shape[1])[None, :] < counts[:, None]
    out[mask] = rows
    return out


def proba_spec(spec: PoolingSpec) -> PoolingSpec:
    """Return the pooling that gives one probability row per prompt (``"all"`` averages its token scores)."""
    return PoolingSpec("mean", "score") if spec.stage == "tokens" else spec


def predict_proba_rows(probe: Any, spec: PoolingSpec, X: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
    """Class probabilities from features: per row, or per prompt through the inference pooling ``spec``."""
    Xt = transform(probe, X)
    with section("predict"):
        proba = np.asarray(probe.classifier_.predict_proba(Xt), dtype=np.float64)
    if offsets is None:
        return proba
    if spec.stage == "tokens":
        return pad_tokens(proba, offsets)
    if proba.shape[1] == 2:
        p1 = reduce_scores(proba[:, 1], offsets, spec.base)
        return np.column_stack([1.0 - p1, p1])
    reduced = reduce_scores(proba, offsets, spec.base)
    return np.asarray(reduced / reduced.sum(axis=1, keepdims=True))


def predict_rows(probe: Any, spec: PoolingSpec, X: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
    """One prediction per prompt (for ``"all"``: the class with the highest mean token probability)."""
    clf = probe.classifier_
    if probe.task == "regression":
        Xt = transform(probe, X)
        with section("predict"):
            values = np.asarray(clf.predict(Xt), dtype=np.float64)
        if offsets is None:
            return values
        return np.asarray(reduce_scores(values, offsets, "mean" if spec.stage == "tokens" else spec.base))
    if offsets is None:
        Xt = transform(probe, X)
        with section("predict"):
            if hasattr(clf, "predict_proba"):
                return np.asarray(probe.classes_[np.argmax(clf.predict_proba(Xt), axis=1)])
            return np.asarray(clf.predict(Xt))
    method = "mean" if spec.stage == "tokens" else spec.base
    if hasattr(clf, "predict_proba"):
        proba = predict_proba_rows(probe, PoolingSpec(method, "score"), X, offsets)
        return np.asarray(probe.classes_[np.argmax(proba, axis=1)])
    scores = np.asarray(clf.decision_function(transform(probe, X)), dtype=np.float64)
    reduced = reduce_scores(scores, offsets, method)
    idx = (reduced > 0).astype(int) if reduced.ndim == 1 else np.argmax(reduced, axis=1)
    return np.asarray(probe.classes_[idx])


def score_values(probe: Any, pred: np.ndarray, y: np.ndarray) -> float:
    """Accuracy (classification) or R^2 (regression) of predictions."""
    if probe.task == "regression":
        from sklearn.metrics import r2_score

        return float(r2_score(y, pred))
    return float(np.mean(pred == y))


def training_rows(
    ctx: features.ModelContext, prompts: list[str], layers: list[int], train: str, y: np.ndarray, w: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read the training matrix: one pooled row per prompt, or (``"all"``) one row per real token with its label."""
    read = features.read_features(ctx, prompts, layers, train)
    if read.offsets is None:
        return read.X, y, w
    counts = np.diff(read.offsets)
    return read.X, np.repeat(y, counts), None if w is None else np.repeat(w, counts)


def inference_rows(
    probe: Any, prompts: Sequence[str], remote: bool | None, batch_size: int | None
) -> tuple[PoolingSpec, np.ndarray, np.ndarray | None]:
    """(inference pooling, features, token offsets or None) of the prompts, extracted where the cache lacks them."""
    check_fitted(probe)
    spec = check_params(probe).inference
    prompts = check_prompts(prompts, "prompts", non_empty=True)
    reads = features.reads(spec)

    def layers_of(n_layers: int) -> list[int]:
        return list(probe.layers_) if probe.layers_ else list(resolve_layers(probe.layers, n_layers))

    ctx = probe_context(probe, remote, cached_reads(prompts, layers_of, reads))
    check_same_model(probe, ctx)
    if not probe.layers_:
        probe.layers_ = resolve_layers(probe.layers, ctx.loaded.n_layers)
    with section("extract_and_pool"):
        bs = batch_size or probe.batch_size
        features.ensure_extracted(ctx, prompts, probe.layers_, bs, retries(probe), reads)
        read = features.read_features(ctx, prompts, probe.layers_, spec.base if spec.stage == "activation" else "all")
    return spec, read.X, read.offsets
