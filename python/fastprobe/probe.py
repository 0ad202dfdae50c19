"""The ``Probe``: a linear classifier on a language model's pooled activations, with lmprobe's API.

This is the first slice of the drop-in ``Probe``: the constructor takes lmprobe's names and defaults for the
parameters it supports so far (``model``, ``layers``, ``pooling``, ``classifier``, ``device``, ``random_state``,
``batch_size``, ``dtype``), and ``fit`` / ``predict`` / ``predict_proba`` / ``score`` behave as lmprobe's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from fastprobe.exceptions import InvalidInputError, NotFittedError, ShapeMismatchError, UnknownOptionError
from fastprobe.extraction import extract_pooled, load_model
from fastprobe.layers import LayerSpec, resolve_layers

__all__ = ["CLASSIFIERS", "POOLINGS", "LinearProbe", "Probe"]

#: The classifiers this version supports.
CLASSIFIERS: tuple[str, ...] = ("logistic_regression",)
#: Activation-stage poolings (each prompt becomes one vector before the classifier).
POOLINGS: tuple[str, ...] = ("last_token", "first_token", "mean")


def _is_labels(second: Any, n_first: int) -> bool:
    """Whether the second argument of ``fit`` is a label array (numbers) rather than a list of negative prompts."""
    if second is None or isinstance(second, str):
        return False
    arr = np.asarray(second)
    return arr.ndim == 1 and arr.dtype.kind in "biuf" and (arr.size > 0 or n_first == 0)


class Probe(BaseEstimator):
    """A linear probe on a language model's activations.

    Parameters
    ----------
    model : str or path-like, optional
        The model to probe: a local directory (or a cached Hugging Face id). Required by every method that takes
        prompts.
    layers : int, list of int, or {"middle", "last", "all"}, default="middle"
        Which decoder blocks' outputs to use; layer ``i`` is block ``i``'s output (not the embeddings), negative
        indices count from the end, ``"middle"`` is the middle third. Features of several layers are concatenated
        in ascending layer order.
    pooling : {"last_token", "first_token", "mean"}, default="last_token"
        How each prompt's tokens are reduced to one vector. Padding is ignored on either side.
    classifier : {"logistic_regression"}, default="logistic_regression"
        L2-regularised logistic regression (lbfgs, ``max_iter=1000``), after standard scaling of every feature.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    random_state : int, optional
        Seed for the classifier.
    batch_size : int, default=8
        Prompts per forward pass.
    dtype : {"float32", "float16", "bfloat16"}, optional
        The model's compute dtype; None means float32.

    Attributes
    ----------
    classes_ : numpy.ndarray
        The class labels, sorted.
    layers_ : list of int
        The resolved block indices, ascending.
    scaler_ : sklearn.preprocessing.StandardScaler
        The fitted feature scaler.
    classifier_ : sklearn.linear_model.LogisticRegression
        The fitted classifier.
    n_features_in_ : int
        The number of activation features (``len(layers_) * hidden_size``).

    Examples
    --------
    >>> from fastprobe import Probe
    >>> from fastprobe.testing import tiny_model
    >>> probe = Probe(model=tiny_model("llama"), layers=-1, random_state=0)
    >>> probe = probe.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> probe.predict(["They love Paris", "They love Tokyo"]).tolist()
    [1, 0]
    """

    def __init__(
        self,
        model: Any = None,
        layers: LayerSpec = "middle",
        pooling: str = "last_token",
        classifier: str = "logistic_regression",
        device: str = "auto",
        random_state: int | None = None,
        batch_size: int = 8,
        dtype: str | None = None,
    ) -> None:
        self.model = model
        self.layers = layers
        self.pooling = pooling
        self.classifier = classifier
        self.device = device
        self.random_state = random_state
        self.batch_size = batch_size
        self.dtype = dtype

    # ------------------------------------------------------------------ validation and features

    def _check_params(self) -> None:
        if self.pooling not in POOLINGS:
            raise UnknownOptionError(f"unknown pooling {self.pooling!r}; expected one of: {', '.join(POOLINGS)}")
        if self.classifier not in CLASSIFIERS:
            raise UnknownOptionError(
                f"unknown classifier {self.classifier!r}; expected one of: {', '.join(CLASSIFIERS)}"
            )

    def _loaded(self) -> Any:
        if self.model is None:
            raise InvalidInputError(
                "No model specified: pass model=... to Probe to fit or predict from prompts "
                "(or use fit_from_activations with precomputed features)"
            )
        return load_model(self.model, device=self.device, dtype=self.dtype)

    def _features(self, prompts: Sequence[str], *, resolve: bool = False) -> np.ndarray:
        loaded = self._loaded()
        if resolve:
            self.layers_ = resolve_layers(self.layers, loaded.n_layers)
        return extract_pooled(loaded, prompts, self.layers_, (self.pooling,), batch_size=self.batch_size)[self.pooling]

    def _check_fitted(self) -> None:
        if not hasattr(self, "classifier_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit before using it")

    # ------------------------------------------------------------------ fitting

    def fit(self, positive_prompts: Sequence[str], negative_prompts: Any = None) -> Probe:
        """Train the probe.

        Two forms are accepted: ``fit(positive_prompts, negative_prompts)`` (labels 1 and 0) and
        ``fit(prompts, labels)`` where ``labels`` is an array of numbers (ints, bools or floats holding class
        values).

        Parameters
        ----------
        positive_prompts : sequence of str
            Positive-class prompts, or all prompts in the labels form.
        negative_prompts : sequence of str or array-like of numbers
            Negative-class prompts, or one label per prompt.

        Returns
        -------
        Probe
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            If there is no training data, only one class, or labels whose length differs from the prompts.
        """
        self._check_params()
        if negative_prompts is None:
            raise InvalidInputError("fit needs negative prompts or labels as its second argument; got None")
        prompts = list(positive_prompts)
        if _is_labels(negative_prompts, len(prompts)):
            y = np.asarray(negative_prompts)
            if len(y) != len(prompts):
                raise InvalidInputError(f"got {len(prompts)} prompts but {len(y)} labels; give one label per prompt")
        else:
            negatives = list(negative_prompts)
            y = np.concatenate([np.ones(len(prompts), dtype=np.int64), np.zeros(len(negatives), dtype=np.int64)])
            prompts = prompts + negatives
        if not prompts:
            raise InvalidInputError("no training prompts were given")
        X = self._features(prompts, resolve=True)
        return self._fit_features(X, y)

    def fit_from_activations(self, X: Any, y: Any) -> Probe:
        """Train the probe on precomputed pooled activations.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (n_samples, n_features)
            Pooled activations (several layers concatenated along features).
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        Probe
            ``self``, fitted.
        """
        self._check_params()
        from fastprobe._arrays import to_numpy

        X = to_numpy(X, dtype=np.float32, name="X", ndim=2)
        y = np.asarray(y)
        if len(y) != len(X):
            raise InvalidInputError(f"got {len(X)} rows of activations but {len(y)} labels")
        if not hasattr(self, "layers_"):
            self.layers_ = []
        return self._fit_features(X, y)

    def _fit_features(self, X: np.ndarray, y: np.ndarray) -> Probe:
        classes = np.unique(y)
        if len(classes) < 2:
            raise InvalidInputError(
                f"training data has a single class ({classes.tolist()}); a probe needs at least two classes"
            )
        self.scaler_ = StandardScaler().fit(X)
        clf = LogisticRegression(max_iter=1000, solver="lbfgs", random_state=self.random_state)
        self.classifier_ = clf.fit(self.scaler_.transform(X), y)
        self.classes_ = self.classifier_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    # ------------------------------------------------------------------ inference

    def _proba_features(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_features_in_:
            raise ShapeMismatchError(f"X has {X.shape[1]} features, but the probe was fitted on {self.n_features_in_}")
        return np.asarray(self.classifier_.predict_proba(self.scaler_.transform(X)))

    def predict_proba(self, prompts: Sequence[str]) -> np.ndarray:
        """Class probabilities for each prompt.

        Parameters
        ----------
        prompts : sequence of str

        Returns
        -------
        numpy.ndarray of shape (n_prompts, n_classes)
            Columns follow ``classes_``.
        """
        self._check_fitted()
        return self._proba_features(self._features(prompts))

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Predicted class of each prompt.

        Parameters
        ----------
        prompts : sequence of str

        Returns
        -------
        numpy.ndarray of shape (n_prompts,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(prompts)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score(self, prompts: Sequence[str], labels: Any) -> float:
        """Accuracy of :meth:`predict` against ``labels``.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)

        Returns
        -------
        float
        """
        labels = np.asarray(labels)
        if len(labels) != len(prompts):
            raise InvalidInputError(f"got {len(prompts)} prompts but {len(labels)} labels")
        return float(np.mean(self.predict(prompts) == labels))

    def predict_proba_from_activations(self, X: Any) -> np.ndarray:
        """Class probabilities from precomputed pooled activations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_classes)
        """
        self._check_fitted()
        from fastprobe._arrays import to_numpy

        return self._proba_features(to_numpy(X, dtype=np.float32, name="X", ndim=2))

    def predict_from_activations(self, X: Any) -> np.ndarray:
        """Predicted classes from precomputed pooled activations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        proba = self.predict_proba_from_activations(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def score_from_activations(self, X: Any, y: Any) -> float:
        """Accuracy on precomputed pooled activations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        float
        """
        return float(np.mean(self.predict_from_activations(X) == np.asarray(y)))


#: lmprobe's alias.
LinearProbe = Probe
