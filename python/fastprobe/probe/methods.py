"""The parts of :class:`~fastprobe.probe.Probe`'s API that stand apart from fitting on prompts, as mixins.

Layer inspection (importance, steering vectors, their plot), precomputed activations (the ``*_from_activations``
methods) and persistence (``save`` / ``load``). Each method is lmprobe's, documented here, and calls into the
modules of this package; :class:`~fastprobe.probe.Probe` combines them with its fitting and inference.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

import numpy as np

from fastprobe._arrays import to_numpy
from fastprobe._validation import as_array
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError
from fastprobe.probe import inspection, persistence, pipeline
from fastprobe.probe.config import check_params
from fastprobe.profiling import profiled
from fastprobe.store.pooling import PoolingSpec

__all__ = ["ActivationMethods", "LayerMethods", "PersistenceMethods"]

_ACTIVATIONS = PoolingSpec("last_token", "activation")  # how precomputed pooled activations are read
_A = TypeVar("_A", bound="ActivationMethods")
_P = TypeVar("_P", bound="PersistenceMethods")


class LayerMethods:
    """How the fitted classifier's weight falls on the layers, and the probe's direction per layer."""

    def compute_layer_importance(self, metric: str = "l2", normalize: bool = True) -> np.ndarray:
        """How much of the fitted classifier's weight falls on each layer.

        The classifier's coefficients (on the scaled features) are split into one equal block per layer of
        ``layers_`` (the mass-mean column of ``mass_mean_augment`` left out), and each block is reduced by ``metric``;
        for several coefficient rows (more than two classes) the rows' values are summed.

        Parameters
        ----------
        metric : {"l2", "l1", "mean_abs", "max_abs"}, default="l2"
            Block norm, sum of absolute values, their mean, or their maximum.
        normalize : bool, default=True
            Divide by the total so the importances sum to 1.

        Returns
        -------
        numpy.ndarray of shape (n_layers,)
            Also stored as ``layer_importances_``, with the layers in ``candidate_layers_``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidInputError
            If the classifier has no coefficients (``coef_``), or they do not live in the layers' feature space
            (PCA preprocessing).
        """
        return inspection.compute_layer_importance(self, metric, normalize)

    def steering_vectors(
        self, path: str | os.PathLike[str] | None = None, *, normalize: bool = True, target: Any = None
    ) -> dict[int, np.ndarray]:
        """Return the probe's direction in activation space, one vector per layer, for activation steering.

        The probe's score is linear in the raw activations (through the layer scaling, the ``standard`` and ``pca``
        preprocessing and the mass-mean column), so its gradient with respect to them is exact: split into one
        block per layer of ``layers_``, each block is where that layer's activation must move to raise the score of
        ``target``. Added to the residual stream at layer ``i`` (the output of decoder block ``i``, transformers'
        ``hidden_states[i + 1]``), a positive multiple pushes the model towards what the probe detects.

        Parameters
        ----------
        path : str or path-like, optional
            Also write the vectors to this safetensors file: one float32 tensor ``layer.{i}`` per layer, and metadata
            naming the model, the target class and what a layer index means.
        normalize : bool, default=True
            Unit vectors (each layer's block divided by its norm); False gives the raw gradient blocks.
        target : optional
            The class whose score the vectors raise: ``classes_[1]`` by default (binary); required beyond two classes.

        Returns
        -------
        dict of int to numpy.ndarray of shape (hidden_size,)

        Raises
        ------
        InvalidInputError
            If the classifier has no coefficients (``coef_``), or ``target`` is not a class.
        """
        return inspection.steering_vectors(self, path, normalize=normalize, target=target)

    def plot_layer_importance(self, ax: Any = None) -> tuple[Any, Any]:
        """Bar chart of ``layer_importances_`` by layer (computing L2 importance first if needed).

        With automatic selection, the selected layers are drawn in a darker colour.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure when None.

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        return inspection.plot_layer_importance(self, ax)


class ActivationMethods:
    """Fit and predict on precomputed pooled activations instead of prompts."""

    task: str
    layers_: list[int]

    @profiled("fit_from_activations")
    def fit_from_activations(self: _A, X: Any, y: Any, sample_weight: Any = None, n_layers: int = 1) -> _A:
        """Train on precomputed pooled activations (the same scaling, preprocessing and classifier as :meth:`fit`).

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Pooled activations; ``n_layers`` layers side by side.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
        n_layers : int, default=1
            How many equal layer blocks ``X`` holds (for per-layer scaling).

        Returns
        -------
        Probe
            ``self``, fitted.
        """
        template = check_params(self).template
        Xa = to_numpy(X, dtype=np.float32, name="X", ndim=2)
        y = as_array(y)
        if y.ndim != 1 or len(y) != len(Xa):
            raise ShapeMismatchError(f"got {len(Xa)} rows of activations but labels of shape {y.shape}")
        if self.task == "classification" and len(np.unique(y)) < 2:
            raise InvalidInputError(f"training data has a single class ({np.unique(y).tolist()})")
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w is not None and w.shape != (len(Xa),):
            raise ShapeMismatchError(
                f"sample_weight length must match the rows of X: expected shape ({len(Xa)},), got {w.shape}"
            )
        if not isinstance(n_layers, int) or n_layers < 1:
            raise InvalidInputError(f"n_layers must be an integer >= 1; got {n_layers!r}")
        pipeline.fit_matrix(self, Xa, y, w, n_layers, template)
        if not hasattr(self, "layers_"):
            self.layers_ = []
        self.model_fingerprint_ = getattr(self, "model_fingerprint_", None)
        self.sweep_result_ = getattr(self, "sweep_result_", None)
        return self

    def _activations(self, X: Any) -> np.ndarray:
        pipeline.check_fitted(self)
        return to_numpy(X, dtype=np.float32, name="X", ndim=2)

    @profiled("predict_from_activations")
    def predict_from_activations(self, X: Any) -> np.ndarray:
        """Predictions from precomputed pooled activations, shape (n_samples,)."""
        return pipeline.predict_rows(self, _ACTIVATIONS, self._activations(X), None)

    @profiled("predict_proba_from_activations")
    def predict_proba_from_activations(self, X: Any) -> np.ndarray:
        """Class probabilities from precomputed pooled activations, shape (n_samples, n_classes)."""
        X = self._activations(X)
        pipeline.require_proba(self)
        return pipeline.predict_proba_rows(self, _ACTIVATIONS, X, None)

    def score_from_activations(self, X: Any, y: Any) -> float:
        """Accuracy (classification) or R^2 (regression) on precomputed pooled activations."""
        X = self._activations(X)
        y = as_array(y)
        if len(y) != len(X):
            raise ShapeMismatchError(f"got {len(X)} rows of activations but {len(y)} labels")
        return pipeline.score_values(self, self.predict_from_activations(X), y)


class PersistenceMethods:
    """Save a fitted probe to one safe file, and load it (or lmprobe's pickle) back."""

    def save(self, path: str | Any) -> None:
        """Save the fitted probe to one file: arrays in safetensors, configuration and classes as JSON.

        Loading it never runs code, unless the classifier is a custom estimator class (from outside scikit-learn and
        fastprobe): that is stored as a pickle, and :meth:`load` then needs ``trust_pickle=True``. The file is written
        to a temporary name and renamed, so an interrupted save leaves any earlier file intact.

        Parameters
        ----------
        path : str or path-like
        """
        persistence.save_probe(self, path)

    @classmethod
    def load(
        cls: type[_P], path: str | Any, *, trust_pickle: bool = False, model: Any = None, revision: str | None = None
    ) -> _P:
        """Load a probe saved by :meth:`save`, or by lmprobe (a pickle: needs ``trust_pickle=True``).

        Parameters
        ----------
        path : str or path-like
        trust_pickle : bool, default=False
            Allow unpickling: lmprobe's files, and fastprobe files holding a custom estimator. Unpickling can run
            arbitrary code; only allow it for files from a trusted source.
        model : str or path-like, optional
            Use this model instead of the saved one (say, the same model at a new path, or its Hub id). A model with
            different weights or architecture is refused when the probe first reads prompts.
        revision : str, optional
            The Hub revision of ``model`` (only with ``model``; the saved probe's own revision otherwise).

        Returns
        -------
        Probe

        Raises
        ------
        FastprobeError
            If the file is not a probe, or holds a pickle and ``trust_pickle`` is false.
        """
        probe: _P = persistence.load_probe(cls, path, trust_pickle=trust_pickle, model=model, revision=revision)
        return probe
