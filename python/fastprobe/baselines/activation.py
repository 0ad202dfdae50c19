"""``ActivationBaseline``: the model's activations, but projected so they should carry little: controls for a probe."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.baselines.common import (
    ACTIVATION_METHODS,
    ACTIVATION_POOLINGS,
    PromptClassifier,
    check_model,
    make_classifier,
    training_data,
)
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError, UnknownOptionError
from fastprobe.extraction import DEFAULT_BATCH_SIZE
from fastprobe.features import ModelContext
from fastprobe.layers import LayerSpec, resolve_layers

__all__ = ["ActivationBaseline", "fit_shared_activations"]


class ActivationBaseline(PromptClassifier, BaseEstimator):
    """A classifier on the model's activations seen through a weak lens, to test whether a probe's direction matters.

    Parameters
    ----------
    model : str or path-like
        The model (a local directory, or a Hugging Face id in the local cache or on NDIF).
    method : {"random_direction", "pca", "layer_0"}, default="random_direction"
        ``"random_direction"``: the projection on one random unit vector (a seeded Gaussian draw), a single feature.
        ``"pca"``: the top ``n_components`` principal components of the training activations. ``"layer_0"``: the
        token embeddings (site ``"embed"``, Hugging Face's ``hidden_states[0]``), no context at all; ``layers`` is
        ignored. (lmprobe documents embeddings too, but reads block 0's output.)
    layers : int, list of int or str, default=-1
        Layers for ``random_direction`` and ``pca``, as for :class:`~fastprobe.Probe` (concatenated in ascending
        order).
    pooling : {"last_token", "first_token", "mean", "max", "min"}, default="last_token"
        How a prompt's tokens become one vector.
    classifier : str or estimator, default="logistic_regression"
        As for :class:`~fastprobe.Probe`. The features are not standardized (as in lmprobe).
    device : str, default="auto"
    remote : bool, default=False
        Extract on NDIF through nnsight (needs ``backend="nnsight"``).
    random_state : int, optional
        Seed of the random direction, of PCA and of the classifier.
    n_components : int, default=10
        Principal components for ``"pca"`` (at most the number of training prompts and of features).
    batch_size : int or None, default=8
        Prompts per forward pass; left at its default (lmprobe's 8) or None, passes are filled to the device's token
        budget (see :class:`~fastprobe.Probe`).
    backend : {"local", "nnsight"}, default="local"
    revision : str, optional
        The Hub revision (branch, tag or commit) when ``model`` is a Hub id; None is the default branch.

    Attributes
    ----------
    classifier_ : estimator
    classes_ : numpy.ndarray
    random_direction_ : numpy.ndarray or None
        The unit vector of ``"random_direction"``.
    pca_ : sklearn.decomposition.PCA or None
        The fitted PCA of ``"pca"``.
    layers_ : list
        The sites read: block indices, or ``["embed"]`` for ``"layer_0"``.
    n_features_in_ : int
        Activation features (before the projection).
    model_fingerprint_ : dict

    Examples
    --------
    >>> from fastprobe.baselines import ActivationBaseline
    >>> from fastprobe.testing import tiny_model
    >>> baseline = ActivationBaseline(tiny_model("llama"), method="pca", n_components=2, random_state=0)
    >>> baseline = baseline.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> baseline.pca_.n_components_
    2
    """

    classifier_: Any
    classes_: np.ndarray
    random_direction_: np.ndarray | None
    pca_: Any
    layers_: list[int | str]
    n_features_in_: int
    model_fingerprint_: dict[str, Any] | None

    def __init__(
        self,
        model: Any,
        method: str = "random_direction",
        layers: LayerSpec = -1,
        pooling: str = "last_token",
        classifier: Any = "logistic_regression",
        device: str = "auto",
        remote: bool = False,
        random_state: int | None = None,
        n_components: int = 10,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        backend: str = "local",
        revision: str | None = None,
    ) -> None:
        self.model = model
        self.method = method
        self.layers = layers
        self.pooling = pooling
        self.classifier = classifier
        self.device = device
        self.remote = remote
        self.random_state = random_state
        self.n_components = n_components
        self.batch_size = batch_size
        self.backend = backend
        self.revision = revision
        self._check_params()

    # ------------------------------------------------------------------ configuration

    def _check_params(self) -> Any:
        """Validate the configuration; return the unfitted classifier."""
        from fastprobe.extraction import BACKENDS

        if self.method not in ACTIVATION_METHODS:
            raise UnknownOptionError(
                f"Unknown method {self.method!r}; expected one of: {', '.join(ACTIVATION_METHODS)}"
            )
        if self.model is None:
            raise InvalidInputError("ActivationBaseline needs a model: pass model=<a local directory or a Hub id>")
        if self.pooling not in ACTIVATION_POOLINGS:
            raise UnknownOptionError(
                f"unknown pooling {self.pooling!r} for an activation baseline; expected one of: "
                f"{', '.join(ACTIVATION_POOLINGS)}"
            )
        if self.backend not in BACKENDS:
            raise UnknownOptionError(f"unknown backend {self.backend!r}; expected one of: {', '.join(BACKENDS)}")
        if self.remote and self.backend != "nnsight":
            raise InvalidInputError("remote=True runs on NDIF through nnsight; pass backend='nnsight'")
        for name in ("n_components", "batch_size"):
            value = getattr(self, name)
            if name == "batch_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1; got {value!r}")
        if not isinstance(self.layers, (int, np.integer, str, list, tuple, range)) or isinstance(self.layers, bool):
            raise InvalidInputError(f"layers must be an int, a list of ints or a string; got {self.layers!r}")
        return make_classifier(self.classifier, self.random_state)

    def _ctx(self, prompts: Sequence[str]) -> ModelContext:
        """Return the model's context for ``prompts`` (weightless when their activations are all cached)."""
        return features.ready_context(
            self.model,
            self.device,
            self.backend,
            bool(self.remote),
            lambda ctx: features.is_extracted(ctx, prompts, self._sites(ctx), self.pooling),
            self.revision,
        )

    def _sites(self, ctx: ModelContext) -> list[int | str]:
        if self.method == "layer_0":
            return ["embed"]
        return list(resolve_layers(self.layers, ctx.loaded.n_layers))

    # ------------------------------------------------------------------ features

    def _project(self, X: np.ndarray, fit: bool) -> np.ndarray:
        """Activations -> this method's features (fitting the direction or the PCA when ``fit``)."""
        from sklearn.decomposition import PCA

        if self.method == "random_direction":
            if fit:
                direction = np.random.RandomState(self.random_state).randn(X.shape[1])
                self.random_direction_ = direction / np.linalg.norm(direction)
            assert self.random_direction_ is not None
            return (X.astype(np.float64) @ self.random_direction_)[:, None]
        if self.method == "pca":
            if fit:
                k = min(int(self.n_components), X.shape[0], X.shape[1])
                self.pca_ = PCA(n_components=k, random_state=self.random_state)
                return np.asarray(self.pca_.fit_transform(X))
            return np.asarray(self.pca_.transform(X))
        return X

    def _fit_features(self, X: np.ndarray, y: np.ndarray, template: Any) -> None:
        self.random_direction_ = None
        self.pca_ = None
        self.n_features_in_ = int(X.shape[1])
        self.classifier_ = template.fit(self._project(X, fit=True), y)
        self.classes_ = np.asarray(self.classifier_.classes_)

    def _check_width(self, X: np.ndarray) -> None:
        if X.shape[1] != self.n_features_in_:
            raise ShapeMismatchError(
                f"the activations have {X.shape[1]} features, but the baseline was fitted on {self.n_features_in_}"
            )

    def _predict_features(self, X: np.ndarray) -> np.ndarray:
        self._check_width(X)
        return np.asarray(self.classifier_.predict(self._project(X, fit=False)))

    # ------------------------------------------------------------------ fitting and inference

    def fit(self, positive_prompts: Sequence[str], negative_prompts: Any = None) -> ActivationBaseline:
        """Train the baseline: extract (or read from the cache) the activations, project them, fit the classifier.

        Two forms: ``fit(positive_prompts, negative_prompts)`` and ``fit(prompts, labels)``.

        Parameters
        ----------
        positive_prompts : sequence of str
        negative_prompts : sequence of str or array-like of labels

        Returns
        -------
        ActivationBaseline
            ``self``, fitted.
        """
        from fastprobe.store import evict

        template = self._check_params()
        prompts, y = training_data(positive_prompts, negative_prompts)
        ctx = self._ctx(prompts)
        sites = self._sites(ctx)
        X = features.pooled_features(ctx, prompts, sites, self.pooling, self.batch_size)
        self._fit_features(X, y, template)
        self.layers_ = sites
        self.model_fingerprint_ = ctx.fingerprint
        evict()
        return self

    def _inference(self, prompts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        self._check_params()
        prompts = check_prompts(prompts, "prompts", non_empty=True)
        ctx = self._ctx(prompts)
        check_model(self.model_fingerprint_, ctx, "baseline")
        X = features.pooled_features(ctx, prompts, self.layers_, self.pooling, self.batch_size)
        self._check_width(X)
        return self._project(X, fit=False)


def fit_shared_activations(
    baseline: ActivationBaseline,
    X_train: np.ndarray,
    X_test: np.ndarray,
    y: np.ndarray,
    share: float,
    layers: list[int | str],
    fingerprint: dict[str, Any],
) -> tuple[ActivationBaseline, float, np.ndarray, float]:
    """Fit a battery's activation baseline on activations read once for all of them; predict the test rows.

    ``share``: this baseline's share of the seconds of that extraction and read, counted in its fit time. Returns
    (the fitted baseline, fit seconds, test predictions, predict seconds).
    """
    template = baseline._check_params()
    t0 = time.perf_counter()
    baseline._fit_features(X_train, y, template)
    baseline.layers_ = layers
    baseline.model_fingerprint_ = fingerprint
    fit_time = time.perf_counter() - t0 + share
    t0 = time.perf_counter()
    pred = baseline._predict_features(X_test)
    return baseline, fit_time, pred, time.perf_counter() - t0
