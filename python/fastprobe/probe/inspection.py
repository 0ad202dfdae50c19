"""What a fitted probe says about the layers: automatic layer selection, layer importance, steering vectors."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from fastprobe.estimators import GroupLassoProbe, LayerScaler
from fastprobe.exceptions import InvalidInputError, UnknownOptionError, UnsupportedMethodError
from fastprobe.probe.config import preprocessing_steps
from fastprobe.probe.pipeline import check_fitted, fit_matrix

__all__ = [
    "IMPORTANCE_METRICS",
    "compute_layer_importance",
    "layer_blocks",
    "plot_layer_importance",
    "pyplot",
    "select_layers",
    "steering_vectors",
]

#: Metrics of :meth:`Probe.compute_layer_importance`.
IMPORTANCE_METRICS = ("l2", "l1", "mean_abs", "max_abs")


def pyplot() -> Any:
    """Matplotlib's pyplot (the optional ``plot`` extra), or a clear error."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dev dependency
        raise ImportError("plots need matplotlib: pip install 'fastprobe[plot]'") from None
    return plt


def layer_blocks(probe: Any) -> list[int]:
    """Return the layers of the feature blocks: ``layers_``, else block numbers (``fit_from_activations``)."""
    return list(getattr(probe, "layers_", None) or range(getattr(probe, "n_blocks_", None) or 1))


def select_layers(
    probe: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, candidates: list[int], template: Any
) -> tuple[np.ndarray, list[int]]:
    """Choose layers among the candidates (``layers="auto"`` or ``"fast_auto"``); return their columns and indices.

    ``auto``: group-lasso logistic regression (one group per candidate layer, on the layer-scaled features, in
    Rust), keeping the layers whose coefficient block is not zero; ``layer_importances_`` are the block norms.
    ``fast_auto``: the probe's own classifier on every candidate, keeping the ``fast_auto_top_k`` layers (default
    half, at least one) with the largest coefficient norm; ``layer_importances_`` are those norms.
    """
    from sklearn.base import clone

    n = len(candidates)
    probe.candidate_layers_ = list(candidates)
    if probe.layers == "auto":
        if probe.task == "regression" or len(np.unique(y)) != 2:
            raise InvalidInputError(
                "layers='auto' selects layers with a group-lasso logistic regression, which needs two classes; "
                "use layers='fast_auto' (or a sweep) for regression or more classes"
            )
        mode = "per_layer" if probe.normalize_layers == "per_layer" else "per_neuron"
        Xs = LayerScaler(n, mode=mode).fit_transform(X) if probe.normalize_layers is not False else X
        lasso = GroupLassoProbe(alpha=float(probe.auto_alpha), n_groups=n).fit(Xs, y, sample_weight=w)
        importances = np.asarray(lasso.group_norms_, dtype=np.float64)
        chosen = [int(g) for g in lasso.selected_groups_]
        if not chosen:
            warnings.warn(
                f"the group lasso kept no layer at auto_alpha={probe.auto_alpha}; using every candidate layer "
                f"{candidates} (lower auto_alpha to select among them)",
                UserWarning,
                stacklevel=3,
            )
            chosen = list(range(n))
    else:
        probe.layers_ = list(candidates)
        fit_matrix(probe, X, y, w, n, clone(template))
        importances = compute_layer_importance(probe, metric="l2", normalize=False)
        k = min(int(probe.fast_auto_top_k or max(1, n // 2)), n)
        chosen = sorted(int(g) for g in np.argsort(-importances, kind="stable")[:k])
    probe.layer_importances_ = importances
    probe.selected_layers_ = [candidates[g] for g in chosen]
    h = X.shape[1] // n
    columns = np.concatenate([np.arange(g * h, (g + 1) * h) for g in chosen])
    return np.ascontiguousarray(X[:, columns]), probe.selected_layers_


def compute_layer_importance(probe: Any, metric: str = "l2", normalize: bool = True) -> np.ndarray:
    """How much of the fitted classifier's weight falls on each layer (see :meth:`Probe.compute_layer_importance`)."""
    check_fitted(probe)
    if metric not in IMPORTANCE_METRICS:
        raise UnknownOptionError(
            f"Unknown metric {metric!r} for layer importance; expected one of: {', '.join(IMPORTANCE_METRICS)}"
        )
    coef = getattr(probe.classifier_, "coef_", None)
    if coef is None:
        raise UnsupportedMethodError(
            f"layer importance needs a linear classifier with coef_; {type(probe.classifier_).__name__} has none"
        )
    if any(name.startswith("pca") for name, _ in preprocessing_steps(probe.preprocessing, probe.pca_components)):
        raise InvalidInputError("layer importance needs coefficients per feature; PCA preprocessing mixes the layers")
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    if probe.mass_mean_direction_ is not None:
        coef = coef[:, :-1]
    layers = layer_blocks(probe)
    if coef.shape[1] % len(layers):
        raise InvalidInputError(f"{coef.shape[1]} coefficients cannot be split into {len(layers)} equal layer blocks")
    blocks = np.abs(coef).reshape(coef.shape[0], len(layers), -1)
    reduce = {
        "l2": lambda b: np.sqrt((b**2).sum(axis=-1)),
        "l1": lambda b: b.sum(axis=-1),
        "mean_abs": lambda b: b.mean(axis=-1),
        "max_abs": lambda b: b.max(axis=-1),
    }[metric]
    importance = reduce(blocks).sum(axis=0)
    if normalize and importance.sum() > 0:
        importance = importance / importance.sum()
    probe.candidate_layers_ = layers
    probe.layer_importances_ = importance
    return np.asarray(importance)


def _direction(probe: Any, target: Any) -> tuple[np.ndarray, list[Any]]:
    """Return the classifier's coefficient row that raises ``target``'s score, and the classes."""
    coef = getattr(probe.classifier_, "coef_", None)
    if coef is None:
        raise InvalidInputError(
            f"a steering vector needs a linear classifier with coef_; {type(probe.classifier_).__name__} has none"
        )
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    classes = [] if probe.classes_ is None else np.asarray(probe.classes_).tolist()
    if coef.shape[0] == 1:
        if target is not None and (len(classes) != 2 or target != classes[1]):
            if len(classes) == 2 and target == classes[0]:
                coef = -coef
            else:
                raise InvalidInputError(f"target {target!r} is not one of the classes {classes}")
        return coef[0], classes
    if target not in classes:
        raise InvalidInputError(f"this probe has {len(classes)} classes; pass target= one of {classes}")
    return coef[classes.index(target)], classes


def steering_vectors(
    probe: Any, path: str | os.PathLike[str] | None = None, *, normalize: bool = True, target: Any = None
) -> dict[int, np.ndarray]:
    """Return the probe's direction in activation space, one vector per layer (see :meth:`Probe.steering_vectors`)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    check_fitted(probe)
    w, classes = _direction(probe, target)
    if probe.mass_mean_direction_ is not None:
        w, along = w[:-1], w[-1]
    pipeline = probe.preprocessing_pipeline_
    for _, step in reversed(pipeline.steps if pipeline is not None else []):
        if isinstance(step, PCA):
            if step.whiten:
                w = w / np.sqrt(step.explained_variance_)
            w = step.components_.T @ w
        elif isinstance(step, StandardScaler):
            w = w / step.scale_ if step.scale_ is not None else w
        else:  # pragma: no cover - preprocessing_steps builds only these two
            raise InvalidInputError(f"cannot map a direction back through {type(step).__name__}")
    if probe.mass_mean_direction_ is not None:
        w = w + along * probe.mass_mean_direction_
    if probe.scaler_ is not None:
        w = w / np.asarray(probe.scaler_.scale_, dtype=np.float64)
    layers = layer_blocks(probe)
    blocks = w.reshape(len(layers), -1)
    if normalize:
        norms = np.linalg.norm(blocks, axis=1, keepdims=True)
        blocks = blocks / np.where(norms > 0, norms, 1.0)
    vectors = {int(layer): blocks[i].copy() for i, layer in enumerate(layers)}
    if path is not None:
        from safetensors.numpy import save_file

        meta = {
            "format": "fastprobe-steering",
            "model": str((getattr(probe, "model_fingerprint_", None) or {}).get("model", probe.model)),
            "target": str(target if target is not None else (classes[1] if len(classes) == 2 else "")),
            "layers": "layer.{i}: added to the output of decoder block i (transformers hidden_states[i + 1])",
            "normalized": str(bool(normalize)),
        }
        save_file({f"layer.{k}": v.astype(np.float32) for k, v in vectors.items()}, os.fspath(path), metadata=meta)
    return vectors


def plot_layer_importance(probe: Any, ax: Any = None) -> tuple[Any, Any]:
    """Bar chart of ``layer_importances_`` by layer (see :meth:`Probe.plot_layer_importance`)."""
    plt = pyplot()
    if getattr(probe, "layer_importances_", None) is None:
        compute_layer_importance(probe)
    layers = list(probe.candidate_layers_ or [])
    values = np.asarray(probe.layer_importances_, dtype=np.float64)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(max(4.0, 0.35 * len(layers) + 2), 3.2))
    selected = set(getattr(probe, "selected_layers_", None) or [])
    colours = ["#1f4e79" if layer in selected else "#7fa7cc" for layer in layers]
    ax.bar([str(layer) for layer in layers], values, color=colours)
    ax.set_xlabel("layer")
    ax.set_ylabel("importance")
    ax.set_title("layer importance" + (" (dark: selected)" if selected else ""))
    return fig, ax
