"""``BaselineProbe``: a classifier on features of the prompt text (words, length, perplexity, a sentence encoder)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.baselines.common import (
    BASE_METHODS,
    DEFAULT_SENTENCE_MODEL,
    LENGTH_FEATURES,
    PERPLEXITY_FEATURE_NAMES,
    STANDARDIZED,
    TEXT_METHODS,
    PromptClassifier,
    accepts_sparse,
    check_model,
    length_features,
    make_classifier,
    training_data,
)
from fastprobe.exceptions import InvalidInputError, UnknownOptionError
from fastprobe.extraction.perplexity import perplexity_features, perplexity_store
from fastprobe.features import ModelContext
from fastprobe.model import sentence_encoder

__all__ = ["BaselineProbe", "fit_shared_text"]


class BaselineProbe(PromptClassifier, BaseEstimator):
    """A text-only baseline: a classifier on features of the prompt text, not on the model's activations.

    Parameters
    ----------
    method : str, default="tfidf"
        ``"bow"`` (word counts), ``"tfidf"`` (TF-IDF weighted counts), ``"random"`` (uniformly random predictions),
        ``"majority"`` (always the most frequent class), ``"sentence_length"`` (characters, words and characters per
        word), ``"perplexity"`` (the model's mean, smallest and largest per-token perplexity; needs ``model``),
        ``"sentence_transformers"`` (a sentence encoder's embeddings), ``"shuffled_labels"`` (``base_method``'s
        features with the training labels permuted: a sanity check that should score near chance).
    classifier : str or estimator, default="logistic_regression"
        A name from :data:`fastprobe.classifiers.CLASSIFIERS` or a scikit-learn estimator (cloned). Ignored by
        ``"random"`` and ``"majority"``.
    random_state : int, optional
        Seed of the classifier, of ``"random"``'s draws and of ``"shuffled_labels"``'s permutation.
    max_features : int, optional, default=10000
        Vocabulary size of ``"bow"`` and ``"tfidf"`` (the most frequent terms); None keeps every term.
    ngram_range : tuple of (int, int), default=(1, 1)
        Word n-gram lengths of ``"bow"`` and ``"tfidf"``: ``(1, 2)`` adds bigrams.
    base_method : str, default="tfidf"
        Where ``"shuffled_labels"`` takes its features: one of :data:`BASE_METHODS`.
    model : str or path-like, optional
        The language model of ``"perplexity"``. For ``"sentence_transformers"``, the sentence encoder (a local
        directory or a Hub id in the local cache; default :data:`DEFAULT_SENTENCE_MODEL`).
    device : str, default="auto"
        Where the model runs (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``).
    remote : bool, default=False
        Compute perplexity on NDIF through nnsight (needs ``NDIF_API_KEY`` and a Hub model id).
    revision : str, optional
        The Hub revision (branch, tag or commit) when ``model`` is a Hub id; None is the default branch.

    Attributes
    ----------
    classifier_ : estimator
        The fitted classifier.
    classes_ : numpy.ndarray
        The class labels, sorted.
    vectorizer_ : sklearn.feature_extraction.text.CountVectorizer or None
        The fitted word counter of ``"bow"`` and ``"tfidf"``.
    tfidf_ : sklearn.feature_extraction.text.TfidfTransformer or None
        The fitted TF-IDF weighting of ``"tfidf"`` (counts, then this: exactly scikit-learn's ``TfidfVectorizer``).
    scaler_ : sklearn.preprocessing.StandardScaler or None
        The standardization of ``"sentence_length"`` and ``"perplexity"`` features (None for the others), applied
        before the classifier; :meth:`get_top_features` reports weights of the standardized features.
    n_features_in_ : int
    model_fingerprint_ : dict or None
        The model ``"perplexity"`` was fitted with.

    Examples
    --------
    >>> from fastprobe.baselines import BaselineProbe
    >>> baseline = BaselineProbe(method="bow", random_state=0)
    >>> baseline = baseline.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> baseline.predict(["They love Paris", "They love Tokyo"]).tolist()
    [1, 0]
    >>> baseline.get_top_features(n=1)["positive"][0][0]
    'paris'
    """

    classifier_: Any
    classes_: np.ndarray
    vectorizer_: Any
    tfidf_: Any
    scaler_: Any
    n_features_in_: int
    model_fingerprint_: dict[str, Any] | None

    def __init__(
        self,
        method: str = "tfidf",
        classifier: Any = "logistic_regression",
        random_state: int | None = None,
        max_features: int | None = 10000,
        ngram_range: tuple[int, int] = (1, 1),
        base_method: str = "tfidf",
        model: Any = None,
        device: str = "auto",
        remote: bool = False,
        revision: str | None = None,
    ) -> None:
        self.method = method
        self.classifier = classifier
        self.random_state = random_state
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.base_method = base_method
        self.model = model
        self.device = device
        self.remote = remote
        self.revision = revision
        self._check_params()

    # ------------------------------------------------------------------ configuration

    @property
    def _feature_method(self) -> str:
        return self.base_method if self.method == "shuffled_labels" else self.method

    def _check_params(self) -> Any:
        """Validate the configuration; return the unfitted classifier."""
        from sklearn.dummy import DummyClassifier

        if self.method not in TEXT_METHODS:
            raise UnknownOptionError(f"Unknown method {self.method!r}; expected one of: {', '.join(TEXT_METHODS)}")
        if self.method == "shuffled_labels" and self.base_method not in BASE_METHODS:
            raise UnknownOptionError(
                f"unknown base_method {self.base_method!r} for method='shuffled_labels'; expected one of: "
                f"{', '.join(BASE_METHODS)}"
            )
        if self._feature_method == "perplexity" and self.model is None:
            raise InvalidInputError(
                "method='perplexity' requires the 'model' parameter (the language model): pass model=<a Hugging "
                "Face Hub id or a local directory>"
            )
        if self.max_features is not None and (
            isinstance(self.max_features, bool) or not isinstance(self.max_features, int) or self.max_features < 1
        ):
            raise InvalidInputError(f"max_features must be an integer >= 1 or None; got {self.max_features!r}")
        ngram = self.ngram_range
        if (
            not isinstance(ngram, (tuple, list))
            or len(ngram) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in ngram)
            or not 1 <= ngram[0] <= ngram[1]
        ):
            raise InvalidInputError(
                f"ngram_range must be a pair (min_n, max_n) with 1 <= min_n <= max_n; got {ngram!r}"
            )
        if self.method in ("random", "majority"):
            strategy = "uniform" if self.method == "random" else "most_frequent"
            return DummyClassifier(strategy=strategy, random_state=self.random_state)
        return make_classifier(self.classifier, self.random_state)

    def _ctx(self, prompts: Sequence[str]) -> ModelContext:
        """Return the model's context for the perplexity of ``prompts`` (weightless when they are all cached)."""
        backend = "nnsight" if self.remote else "local"
        unique = list(dict.fromkeys(prompts))
        return features.ready_context(
            self.model,
            self.device,
            backend,
            bool(self.remote),
            lambda ctx: bool(np.all(perplexity_store(ctx).contains(unique, [0]))),
            self.revision,
        )

    # ------------------------------------------------------------------ features

    def _features(self, prompts: list[str], fit: bool) -> Any:
        """Return the prompts' feature matrix (fitting the vectorizer first when ``fit``)."""
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        method = self._feature_method
        if method in ("bow", "tfidf"):
            if fit:
                self.vectorizer_ = CountVectorizer(max_features=self.max_features, ngram_range=tuple(self.ngram_range))
                counts = self.vectorizer_.fit_transform(prompts)
                self.tfidf_ = TfidfTransformer().fit(counts) if method == "tfidf" else None
            else:
                counts = self.vectorizer_.transform(prompts)
            return self._weigh(counts)
        if method == "sentence_length":
            return length_features(prompts)
        if method == "perplexity":
            ctx = self._ctx(prompts)
            if fit:
                self.model_fingerprint_ = ctx.fingerprint
            else:
                check_model(getattr(self, "model_fingerprint_", None), ctx, "baseline")
            return perplexity_features(ctx, prompts)
        if method == "sentence_transformers":
            encoder = sentence_encoder(os.fspath(self.model or DEFAULT_SENTENCE_MODEL), self.device)
            return np.asarray(encoder.encode(list(prompts), show_progress_bar=False), dtype=np.float32)
        return np.zeros((len(prompts), 1))  # random, majority: the features do not matter

    def _weigh(self, counts: Any) -> Any:
        """Word counts -> this method's features (TF-IDF weighting for ``"tfidf"``)."""
        if self.tfidf_ is not None:
            return self.tfidf_.transform(counts)
        return counts.astype(np.float64)

    def _fit_matrix(self, X: Any, y: np.ndarray, template: Any) -> None:
        """Fit the classifier on a feature matrix (permuting the labels first for ``"shuffled_labels"``).

        The few dense features of ``sentence_length`` and ``perplexity`` (counts in the tens, perplexities up to
        the thousands) are standardized first: unscaled, logistic regression does not converge on them.
        """
        from sklearn.preprocessing import StandardScaler

        if self.method == "shuffled_labels":
            y = np.random.RandomState(self.random_state).permutation(y)
        self.n_features_in_ = int(X.shape[1])
        self.scaler_ = StandardScaler().fit(X) if self._feature_method in STANDARDIZED else None
        self.classifier_ = None
        X = self._matrix(X, template)
        self.classifier_ = template.fit(X, y)
        self.classes_ = np.asarray(self.classifier_.classes_)

    def _matrix(self, X: Any, classifier: Any = None) -> Any:
        """Features -> the classifier's input: standardized where the method asks, dense unless it takes sparse."""
        from scipy import sparse

        if self.scaler_ is not None:
            X = self.scaler_.transform(X)
        if sparse.issparse(X) and not accepts_sparse(classifier if classifier is not None else self.classifier_):
            return X.toarray()
        return X

    # ------------------------------------------------------------------ fitting and inference

    def fit(self, positive_prompts: Sequence[str], negative_prompts: Any = None) -> BaselineProbe:
        """Train the baseline.

        Two forms, as for :meth:`fastprobe.Probe.fit`: ``fit(positive_prompts, negative_prompts)`` (labels 1 and 0)
        and ``fit(prompts, labels)`` with one label per prompt.

        Parameters
        ----------
        positive_prompts : sequence of str
            Positive prompts, or every prompt in the labels form.
        negative_prompts : sequence of str or array-like of labels

        Returns
        -------
        BaselineProbe
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            For no training data or a single class.
        ShapeMismatchError
            If the labels are not one per prompt.
        """
        template = self._check_params()
        prompts, y = training_data(positive_prompts, negative_prompts)
        self.vectorizer_ = None
        self.tfidf_ = None
        self.model_fingerprint_ = None
        X = self._features(prompts, fit=True)
        self._fit_matrix(X, y, template)
        if self._feature_method == "perplexity":
            from fastprobe.store import evict

            evict()
        return self

    def _inference(self, prompts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        return self._matrix(self._features(check_prompts(prompts, "prompts", non_empty=True), fit=False))

    # ------------------------------------------------------------------ inspection

    def get_feature_names(self) -> list[str] | None:
        """Return the names of the features.

        The vocabulary for ``bow`` and ``tfidf`` (and ``shuffled_labels`` on them), the named features of
        ``sentence_length`` and ``perplexity``; None for methods whose features have no names (``random``,
        ``majority``, ``sentence_transformers``).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        method = self._feature_method
        if method in ("bow", "tfidf"):
            return [str(name) for name in self.vectorizer_.get_feature_names_out()]
        if method == "sentence_length":
            return list(LENGTH_FEATURES)
        if method == "perplexity":
            return list(PERPLEXITY_FEATURE_NAMES)
        return None

    def get_top_features(self, n: int = 20) -> dict[str, list[tuple[str, float]]] | None:
        """Return the features with the largest classifier weights.

        Parameters
        ----------
        n : int, default=20
            How many features per list.

        Returns
        -------
        dict or None
            Two classes: ``"positive"`` (the ``n`` largest weights, towards ``classes_[1]``, largest first) and
            ``"negative"`` (the ``n`` smallest, smallest first), each a list of ``(name, weight)``. More classes: one
            list per class label (as a string), its ``n`` largest weights. None when the features have no names or
            the classifier has no ``coef_``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidInputError
            If ``n`` is not a positive integer.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInputError(f"n must be an integer >= 1; got {n!r}")
        names = self.get_feature_names()
        coef = getattr(self.classifier_, "coef_", None)
        if names is None or coef is None:
            return None
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        if coef.shape[0] == 1:
            order = np.argsort(coef[0], kind="stable")
            return {
                "positive": [(names[i], float(coef[0, i])) for i in order[::-1][:n]],
                "negative": [(names[i], float(coef[0, i])) for i in order[:n]],
            }
        out: dict[str, list[tuple[str, float]]] = {}
        for label, row in zip(self.classes_, coef, strict=True):
            top = np.argsort(row, kind="stable")[::-1][:n]
            out[str(label)] = [(names[i], float(row[i])) for i in top]
        return out


def fit_shared_text(
    baseline: BaselineProbe,
    train: list[str],
    test: list[str],
    y: np.ndarray,
    counts: Callable[[], tuple[Any, Any, Any, float]],
    perplexity: Callable[[], tuple[dict[str, Any], np.ndarray, np.ndarray]],
) -> tuple[BaselineProbe, float, np.ndarray, float]:
    """Fit a battery's text baseline on features it shares with others; predict the test prompts.

    ``counts()``: (fitted word counter, training counts, test counts, this baseline's share of their seconds), for
    ``bow`` and ``tfidf``; ``perplexity()``: (the model's fingerprint, training and test perplexity features). Returns
    (the fitted baseline, fit seconds, test predictions, predict seconds).
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    name = baseline.method
    template = baseline._check_params()
    baseline.vectorizer_ = None
    baseline.tfidf_ = None
    baseline.model_fingerprint_ = None
    share = 0.0
    t0 = time.perf_counter()
    if name in ("bow", "tfidf"):
        vec, counts_train, counts_test, share = counts()
        baseline.vectorizer_ = vec
        baseline.tfidf_ = TfidfTransformer().fit(counts_train) if name == "tfidf" else None
        X_train = baseline._weigh(counts_train)
    elif name == "perplexity":
        baseline.model_fingerprint_, X_train, feats_test = perplexity()
    else:
        X_train = baseline._features(train, fit=True)
    baseline._fit_matrix(X_train, y, template)
    fit_time = time.perf_counter() - t0 + share
    t0 = time.perf_counter()
    if name in ("bow", "tfidf"):
        X_test = baseline._weigh(counts_test)
    elif name == "perplexity":
        X_test = feats_test
    else:
        X_test = baseline._features(test, fit=False)
    pred = np.asarray(baseline.classifier_.predict(baseline._matrix(X_test)))
    return baseline, fit_time, pred, time.perf_counter() - t0
