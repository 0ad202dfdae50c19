"""Baselines: what a probe has to beat before its accuracy means anything.

A probe that scores 90% says little if a bag of words scores 89%. This module has lmprobe's three baseline classes
with lmprobe's parameters and defaults:

- :class:`BaselineProbe`: text-only baselines (bag of words, TF-IDF, chance, the majority class, sentence length,
  the model's own perplexity, sentence-transformer embeddings, and any of those features with shuffled labels);
- :class:`ActivationBaseline`: the model's activations through a deliberately weak lens (one random direction, the
  top principal components, or the token embeddings);
- :class:`BaselineBattery`: every applicable baseline at once, timed and scored, as :class:`BaselineResults`.

Activations go through fastprobe's activation cache, so a baseline and a :class:`~fastprobe.Probe` on the same model
share what was extracted. Perplexity features are cached too (a store of their own next to the activations). A
battery extracts the activations of all its activation baselines in one pass and reads them in one call, and tokenizes
the text once for bag of words and TF-IDF. When everything a run needs is cached, the model's weights are not loaded
at all: a weightless copy of the model (its configuration on PyTorch's meta device) gives the fingerprint that names
its cache.

Differences from lmprobe (each deliberate):

- ``layer_0`` uses the token embeddings (site ``"embed"``, Hugging Face's ``hidden_states[0]``), as lmprobe's
  documentation says; lmprobe's code reads block 0's output instead.
- Perplexity runs batched through a transformers causal language model (lmprobe: one prompt at a time through
  nnsight), with positions counting real tokens only, so padding changes nothing.
- ``fit`` also accepts ``fit(prompts, labels)``, as :meth:`fastprobe.Probe.fit` does.
- Classifier names resolve through :func:`fastprobe.classifiers.build_classifier`: logistic regression, ridge,
  mass-mean, LDA and the ensemble run on fastprobe's Rust solvers.
- Bad input raises a :class:`~fastprobe.FastprobeError` naming what was expected: unknown methods and baseline names
  (lmprobe's battery ignores unknown names), a battery with nothing to run, ``include``/``exclude`` typos, single-class
  training data, use before ``fit``.
- ``method="sentence_transformers"`` never downloads: it needs the ``sentence-transformers`` package and the encoder
  (``model``, default ``sentence-transformers/all-MiniLM-L6-v2``) on this machine. A battery without ``include``
  leaves it out when either is missing, instead of warning on every run.
- The features of ``sentence_length`` and ``perplexity`` are standardized before the classifier (lmprobe fits on
  the raw values, perplexities in the thousands, where logistic regression stops before converging).
- :meth:`BaselineProbe.get_feature_names` names the features of ``sentence_length`` and ``perplexity`` too.
- ``vectorizer_`` is the word counter of both ``bow`` and ``tfidf``; ``tfidf`` adds ``tfidf_``, its TF-IDF
  weighting (together exactly scikit-learn's ``TfidfVectorizer``, lmprobe's ``vectorizer_``), so a battery counts
  words once for both.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator

from fastprobe.classifiers import build_classifier
from fastprobe.exceptions import (
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    NotFittedError,
    ShapeMismatchError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.layers import LayerSpec, resolve_layers
from fastprobe.model import register_model_cache
from fastprobe.perplexity import perplexity_features as _perplexity_features
from fastprobe.perplexity import perplexity_store as _perplexity_store
from fastprobe.probe import _as_array, _check_prompts, _Context, _context, _extract, _identity
from fastprobe.probe import _training_data as _probe_training_data

__all__ = [
    "ACTIVATION_METHODS",
    "ACTIVATION_POOLINGS",
    "BASELINES",
    "BASE_METHODS",
    "DEFAULT_SENTENCE_MODEL",
    "TEXT_METHODS",
    "ActivationBaseline",
    "BaselineBattery",
    "BaselineNotFoundError",
    "BaselineProbe",
    "BaselineResult",
    "BaselineResults",
]

#: The methods of :class:`BaselineProbe`.
TEXT_METHODS: tuple[str, ...] = (
    "bow",
    "tfidf",
    "random",
    "majority",
    "sentence_length",
    "perplexity",
    "sentence_transformers",
    "shuffled_labels",
)
#: The feature methods ``shuffled_labels`` can take its features from (``base_method``).
BASE_METHODS: tuple[str, ...] = ("bow", "tfidf", "sentence_length", "perplexity", "sentence_transformers")
#: The methods of :class:`ActivationBaseline`.
ACTIVATION_METHODS: tuple[str, ...] = ("random_direction", "pca", "layer_0")
#: Poolings an :class:`ActivationBaseline` accepts (``max`` and ``min`` make the cache keep every token).
ACTIVATION_POOLINGS: tuple[str, ...] = ("last_token", "first_token", "mean", "max", "min")
#: Every baseline a :class:`BaselineBattery` knows, in the order it runs them (lmprobe's names and order).
BASELINES: tuple[str, ...] = (
    "bow",
    "tfidf",
    "random",
    "majority",
    "sentence_length",
    "sentence_transformers",
    "perplexity",
    "random_direction",
    "pca",
    "layer_0",
)
#: The sentence encoder of ``method="sentence_transformers"`` when ``model`` is not given.
DEFAULT_SENTENCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_NEEDS_MODEL = ("perplexity", "random_direction", "pca", "layer_0")
_LENGTH_FEATURES = ["char_count", "word_count", "chars_per_word"]
_PERPLEXITY_FEATURES = ["mean_perplexity", "min_perplexity", "max_perplexity"]
#: Feature methods whose features are standardized before the classifier.
_STANDARDIZED = ("sentence_length", "perplexity")


class BaselineNotFoundError(UnknownOptionError, KeyError):
    """A baseline name that is not known, or that did not run in this battery (also a :class:`KeyError`)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------------------------------- shared helpers


def _training_data(first: Any, second: Any) -> tuple[list[str], np.ndarray]:
    """``fit(positive, negative)`` or ``fit(prompts, labels)`` -> (prompts, labels), with :class:`Probe`'s checks."""
    prompts, y, _ = _probe_training_data(first, second)
    return prompts, y


def _labels_for(prompts: Sequence[str], labels: Any) -> np.ndarray:
    y = _as_array(labels)
    if y.ndim != 1 or len(y) != len(prompts):
        raise ShapeMismatchError(f"got {len(prompts)} prompts but labels of shape {y.shape}; give one per prompt")
    return y


def _inference_prompts(prompts: Any) -> list[str]:
    out = _check_prompts(prompts, "prompts")
    if not out:
        raise InvalidInputError("prompts is empty; give at least one prompt")
    return out


def _classifier(classifier: Any, random_state: int | None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_classifier(classifier, random_state=random_state)


def _accepts_sparse(estimator: Any) -> bool:
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.sparse)
    except Exception:  # not a scikit-learn estimator: give it a dense array
        return False


def _check_model(saved: dict[str, Any] | None, ctx: _Context, what: str) -> None:
    if saved and _identity(saved) != _identity(ctx.fingerprint):
        raise InvalidInputError(
            f"this {what} was fitted on model {saved.get('model')!r} ({saved.get('architecture')}), but "
            f"{ctx.fingerprint.get('model')!r} is a different model ({ctx.fingerprint.get('architecture')}); fit a "
            "new baseline for it"
        )


def _length_features(prompts: Sequence[str]) -> np.ndarray:
    """Characters, words (whitespace-separated) and characters per word of each prompt."""
    chars = np.fromiter((len(p) for p in prompts), dtype=np.float64, count=len(prompts))
    words = np.fromiter((len(p.split()) for p in prompts), dtype=np.float64, count=len(prompts))
    return np.column_stack([chars, words, chars / np.maximum(words, 1.0)])


_LIGHT: dict[tuple[str, str | None, str, str], tuple[Any, dict[str, Any]] | None] = register_model_cache({})
_LIGHT_LOCK = threading.Lock()


def _light_context(model: Any, device: str, backend: str, revision: str | None = None) -> _Context | None:
    """Return the model's context with a weightless (meta-device) model: its fingerprint and store, no weights.

    Everything :func:`fastprobe.extraction.model_fingerprint` reads (configuration, tokenizer, weight files, dtype,
    architecture) is there, so the fingerprint and the store are those of the loaded model; only a forward pass is
    impossible. None when the model's files are not on this machine yet (a Hub model whose weights were never
    downloaded) or it cannot be described this way: the full load then says what is wrong.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from fastprobe.architectures import anatomy
    from fastprobe.extraction import LoadedModel, model_fingerprint, resolve_device
    from fastprobe.model import from_pretrained, resolve_model, weights_digest
    from fastprobe.store import model_store

    key = (os.fspath(model), revision, resolve_device(device), backend)
    with _LIGHT_LOCK:
        if key not in _LIGHT:
            _LIGHT[key] = None
            try:
                source = resolve_model(model, revision)
                if weights_digest(source.path) is not None:
                    tokenizer = from_pretrained(AutoTokenizer, source)
                    if tokenizer.pad_token is None:
                        tokenizer.pad_token = tokenizer.eos_token
                    config = from_pretrained(AutoConfig, source)
                    with torch.device("meta"):
                        skeleton = AutoModel.from_config(config, dtype=torch.float32)
                    body = anatomy(skeleton)
                    loaded = LoadedModel(
                        source.name,
                        skeleton,
                        tokenizer,
                        key[2],
                        body.n_layers,
                        body.hidden_size,
                        backend,
                        source=source,
                    )
                    _LIGHT[key] = (loaded, model_fingerprint(loaded))
            except Exception:  # anything unusual: the full load will say what is wrong
                pass
        memo = _LIGHT[key]
    if memo is None:
        return None
    return _Context(memo[0], memo[1], model_store(memo[1]))  # the store of the cache directory in use now


def _ready_context(
    model: Any,
    device: str,
    backend: str,
    remote: bool,
    cached: Callable[[_Context], bool],
    revision: str | None = None,
) -> _Context:
    """Return the model's context, loading its weights only when ``cached(context)`` says the cache lacks something.

    A run whose activations (and perplexities) are all cached never needs a forward pass; on a large model,
    loading the weights would be most of its time.
    """
    if not remote:
        light = _light_context(model, device, backend, revision)
        if light is not None and cached(light):
            return light
    return _context(model, device, None, backend, remote, revision)


def _activation_sites_cached(ctx: _Context, prompts: Sequence[str], sites: Sequence[int | str], pooling: str) -> bool:
    """Whether :func:`_extract` would run nothing for these prompts, sites and pooling."""
    from fastprobe.store import cache_keeps_tokens

    keep = cache_keeps_tokens(pooling in ("max", "min"))
    return bool(np.all(ctx.store.contains(list(prompts), list(sites), tokens=keep, pooling=pooling)))


def _activations(
    ctx: _Context, prompts: list[str], sites: list[int | str], pooling: str, batch_size: int
) -> np.ndarray:
    """Pooled activations at ``sites`` through the cache: one extraction of what is missing, one read."""
    _extract(ctx, prompts, cast(Any, sites), batch_size, 3, [pooling])
    return np.asarray(ctx.store.read_pooled(prompts, sites, pooling))


# ---------------------------------------------------------------------------------------------- perplexity
# Computed, batched and cached by fastprobe.perplexity (shared with fastprobe.unified_cache); imported above.


# ---------------------------------------------------------------------------------------------- sentence encoders

_ENCODERS: dict[tuple[str, str], Any] = register_model_cache({})


def _sentence_model_here(name: str) -> bool:
    """Whether the sentence encoder is a local directory or in the local Hugging Face cache."""
    if os.path.isdir(name):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a malformed repository id
        return False


def _sentence_available(name: str) -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None and _sentence_model_here(name)


def _sentence_encoder(name: str, device: str) -> Any:
    try:
        import sentence_transformers
    except ImportError as err:
        raise MissingDependencyError(
            "sentence-transformers is required for method='sentence_transformers', and it is not installed; install "
            "it with: pip install sentence-transformers"
        ) from err
    if not _sentence_model_here(name):
        raise ModelLoadError(
            f"method='sentence_transformers' needs the sentence encoder {name!r} on this machine (a local directory, "
            "or a model in the local Hugging Face cache); fastprobe does not download it. Pass model=<local "
            "directory> to use another encoder"
        )
    from fastprobe.extraction import resolve_device

    key = (name, resolve_device(device))
    if key not in _ENCODERS:
        _ENCODERS[key] = sentence_transformers.SentenceTransformer(name, device=key[1], local_files_only=True)
    return _ENCODERS[key]


# ---------------------------------------------------------------------------------------------- BaselineProbe


class _PromptClassifier:
    """``predict``, ``predict_proba`` and ``score`` of a fitted baseline, from its ``_inference(prompts)`` features."""

    classifier_: Any

    def _inference(self, prompts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if getattr(self, "classifier_", None) is None:
            raise NotFittedError(f"this {type(self).__name__} has not been fitted yet; call fit before using it")

    def predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Predict the class of each prompt.

        Parameters
        ----------
        prompts : sequence of str

        Returns
        -------
        numpy.ndarray of shape (n_prompts,)

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        X = self._inference(prompts)  # checks that the baseline is fitted first
        return np.asarray(self.classifier_.predict(X))

    def predict_proba(self, prompts: Sequence[str]) -> np.ndarray:
        """Class probabilities of each prompt, shape ``(n_prompts, n_classes)``, columns in ``classes_`` order.

        Raises
        ------
        UnsupportedMethodError
            If the classifier has no ``predict_proba`` (also an :class:`AttributeError`).
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        if not hasattr(self.classifier_, "predict_proba"):
            raise UnsupportedMethodError(
                f"the classifier {type(self.classifier_).__name__} does not support predict_proba; use predict, or a "
                "classifier with probabilities (e.g. 'logistic_regression')"
            )
        return np.asarray(self.classifier_.predict_proba(self._inference(prompts)), dtype=np.float64)

    def score(self, prompts: Sequence[str], labels: Any) -> float:
        """Accuracy on labelled prompts.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)

        Returns
        -------
        float
        """
        self._check_fitted()
        y = _labels_for(prompts, labels)
        return float(np.mean(self.predict(prompts) == y))


class BaselineProbe(_PromptClassifier, BaseEstimator):
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
        return _classifier(self.classifier, self.random_state)

    def _ctx(self, prompts: Sequence[str]) -> _Context:
        """Return the model's context for the perplexity of ``prompts`` (weightless when they are all cached)."""
        backend = "nnsight" if self.remote else "local"
        unique = list(dict.fromkeys(prompts))
        return _ready_context(
            self.model,
            self.device,
            backend,
            bool(self.remote),
            lambda ctx: bool(np.all(_perplexity_store(ctx).contains(unique, [0]))),
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
            return _length_features(prompts)
        if method == "perplexity":
            ctx = self._ctx(prompts)
            if fit:
                self.model_fingerprint_ = ctx.fingerprint
            else:
                _check_model(getattr(self, "model_fingerprint_", None), ctx, "baseline")
            return _perplexity_features(ctx, prompts)
        if method == "sentence_transformers":
            encoder = _sentence_encoder(os.fspath(self.model or DEFAULT_SENTENCE_MODEL), self.device)
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
        self.scaler_ = StandardScaler().fit(X) if self._feature_method in _STANDARDIZED else None
        self.classifier_ = None
        X = self._matrix(X, template)
        self.classifier_ = template.fit(X, y)
        self.classes_ = np.asarray(self.classifier_.classes_)

    def _matrix(self, X: Any, classifier: Any = None) -> Any:
        """Features -> the classifier's input: standardized where the method asks, dense unless it takes sparse."""
        from scipy import sparse

        if self.scaler_ is not None:
            X = self.scaler_.transform(X)
        if sparse.issparse(X) and not _accepts_sparse(classifier if classifier is not None else self.classifier_):
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
        prompts, y = _training_data(positive_prompts, negative_prompts)
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
        return self._matrix(self._features(_inference_prompts(prompts), fit=False))

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
            return list(_LENGTH_FEATURES)
        if method == "perplexity":
            return list(_PERPLEXITY_FEATURES)
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


# ---------------------------------------------------------------------------------------------- ActivationBaseline


class ActivationBaseline(_PromptClassifier, BaseEstimator):
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
    batch_size : int, default=8
        Prompts per forward pass.
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
        batch_size: int = 8,
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
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1; got {value!r}")
        if not isinstance(self.layers, (int, np.integer, str, list, tuple, range)) or isinstance(self.layers, bool):
            raise InvalidInputError(f"layers must be an int, a list of ints or a string; got {self.layers!r}")
        return _classifier(self.classifier, self.random_state)

    def _ctx(self, prompts: Sequence[str]) -> _Context:
        """Return the model's context for ``prompts`` (weightless when their activations are all cached)."""
        return _ready_context(
            self.model,
            self.device,
            self.backend,
            bool(self.remote),
            lambda ctx: _activation_sites_cached(ctx, prompts, self._sites(ctx), self.pooling),
            self.revision,
        )

    def _sites(self, ctx: _Context) -> list[int | str]:
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
        prompts, y = _training_data(positive_prompts, negative_prompts)
        ctx = self._ctx(prompts)
        sites = self._sites(ctx)
        X = _activations(ctx, prompts, sites, self.pooling, int(self.batch_size))
        self._fit_features(X, y, template)
        self.layers_ = sites
        self.model_fingerprint_ = ctx.fingerprint
        evict()
        return self

    def _inference(self, prompts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        self._check_params()
        prompts = _inference_prompts(prompts)
        ctx = self._ctx(prompts)
        _check_model(self.model_fingerprint_, ctx, "baseline")
        X = _activations(ctx, prompts, self.layers_, self.pooling, int(self.batch_size))
        self._check_width(X)
        return self._project(X, fit=False)


# ---------------------------------------------------------------------------------------------- results

Baseline = BaselineProbe | ActivationBaseline


@dataclass
class BaselineResult:
    """One baseline's outcome in a battery.

    Attributes
    ----------
    name : str
        The baseline's name (one of :data:`BASELINES`).
    score : float
        Its score on the test prompts (accuracy unless the battery has a ``scorer``).
    baseline : BaselineProbe or ActivationBaseline
        The fitted baseline.
    fit_time : float
        Seconds to fit it, including its equal share of feature work it shares with other baselines of the
        battery (one extraction and one read for the activation baselines; one tokenization for bow and tfidf).
    predict_time : float
        Seconds to predict the test prompts from their features.
    """

    name: str
    score: float
    baseline: Baseline
    fit_time: float = 0.0
    predict_time: float = 0.0

    def __repr__(self) -> str:
        return f"BaselineResult(name={self.name!r}, score={self.score:.4f})"


@dataclass
class BaselineResults:
    """The results of :meth:`BaselineBattery.fit`, in the order the baselines ran.

    Iterate over it, take ``len``, index it by position or by name, rank it with :meth:`get_best`, print
    :meth:`summary`.

    Attributes
    ----------
    results : list of BaselineResult
    """

    results: list[BaselineResult] = field(default_factory=list)

    def get_best(self, n: int = 1) -> list[BaselineResult]:
        """Return the ``n`` highest-scoring baselines, best first (ties keep the running order).

        Parameters
        ----------
        n : int, default=1

        Returns
        -------
        list of BaselineResult

        Raises
        ------
        InvalidInputError
            If ``n`` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInputError(f"n must be an integer >= 1; got {n!r}")
        return sorted(self.results, key=lambda r: r.score, reverse=True)[: int(n)]

    def __iter__(self) -> Iterator[BaselineResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key: str | int) -> BaselineResult:
        """Return a result by position or by baseline name.

        Raises
        ------
        BaselineNotFoundError
            If no result has that name (also a :class:`KeyError`).
        """
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self.results[int(key)]
        for r in self.results:
            if r.name == key:
                return r
        raise BaselineNotFoundError(
            f"no result for baseline {key!r}; these baselines ran: {', '.join(r.name for r in self.results) or 'none'}"
        )

    @property
    def names(self) -> list[str]:
        """The names of the baselines that ran, in running order."""
        return [r.name for r in self.results]

    def summary(self) -> str:
        """Format every result as a table, best first: name, score, fit and predict seconds.

        Returns
        -------
        str
        """
        width = max([len("baseline"), *(len(r.name) for r in self.results)])
        lines = [
            f"Baseline results ({len(self.results)}, best first)",
            f"{'baseline':<{width}}  {'score':>7}  {'fit (s)':>8}  {'predict (s)':>11}",
            f"{'-' * width}  {'-' * 7}  {'-' * 8}  {'-' * 11}",
        ]
        for r in self.get_best(len(self.results)) if self.results else []:
            lines.append(f"{r.name:<{width}}  {r.score:>7.4f}  {r.fit_time:>8.2f}  {r.predict_time:>11.2f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------------------------- BaselineBattery


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


class BaselineBattery:
    """Run every applicable baseline on one task and compare them.

    Text baselines always run (``sentence_transformers`` only when its package and encoder are on this machine, or
    when named in ``include``); ``perplexity`` and the activation baselines need ``model``. A baseline that fails
    becomes a warning and is left out of the results, except when the model itself cannot be loaded: that is an
    error (a :class:`~fastprobe.exceptions.ModelLoadError` for a missing model), never a shorter table. The
    activation baselines share one extraction and one read of the cache; bag of words and TF-IDF share one
    tokenization; each feature set is computed once for the training and test prompts together.

    Parameters
    ----------
    model : str or path-like, optional
        The model for ``perplexity`` and the activation baselines.
    layers : int, list of int or str, default=-1
        Layers of the activation baselines (``layer_0`` always reads the embeddings).
    pooling : str, default="last_token"
        Pooling of the activation baselines (one of :data:`ACTIVATION_POOLINGS`).
    classifier : str or estimator, default="logistic_regression"
        The classifier of every baseline (except ``random`` and ``majority``).
    device : str, default="auto"
    remote : bool, default=False
        Run the model on NDIF through nnsight.
    random_state : int, optional
    include : list of str, optional
        Run only these baselines (names from :data:`BASELINES`).
    exclude : list of str, optional
        Do not run these.
    scorer : callable, optional
        ``scorer(y_true, y_pred) -> float``, higher is better; accuracy when None.
    revision : str, optional
        The Hub revision (branch, tag or commit) when ``model`` is a Hub id; None is the default branch.

    Attributes
    ----------
    results_ : BaselineResults or None
        The last :meth:`fit`'s results (None before).
    baselines_ : dict of str to BaselineProbe or ActivationBaseline
        The fitted baselines of the last :meth:`fit`.

    Examples
    --------
    >>> from fastprobe.baselines import BaselineBattery
    >>> battery = BaselineBattery(random_state=0)  # no model: the text baselines
    >>> results = battery.fit(["I saw Paris", "We like Paris"], ["I saw Tokyo", "We like Tokyo"])
    >>> results.names
    ['bow', 'tfidf', 'random', 'majority', 'sentence_length']
    >>> results["bow"].score
    1.0
    """

    def __init__(
        self,
        model: Any = None,
        layers: LayerSpec = -1,
        pooling: str = "last_token",
        classifier: Any = "logistic_regression",
        device: str = "auto",
        remote: bool = False,
        random_state: int | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        scorer: Callable[[np.ndarray, np.ndarray], float] | None = None,
        revision: str | None = None,
    ) -> None:
        self.model = model
        self.layers = layers
        self.pooling = pooling
        self.classifier = classifier
        self.device = device
        self.remote = remote
        self.random_state = random_state
        self.include = include
        self.exclude = exclude
        self.scorer = scorer
        self.revision = revision
        self.results_: BaselineResults | None = None
        self.baselines_: dict[str, Baseline] = {}

    def __repr__(self) -> str:
        return (
            f"BaselineBattery(model={self.model!r}, layers={self.layers!r}, pooling={self.pooling!r}, "
            f"classifier={self.classifier!r}, include={self.include!r}, exclude={self.exclude!r})"
        )

    # ------------------------------------------------------------------ which baselines

    def _names(self, what: str) -> list[str]:
        value = getattr(self, what)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        names = list(value)
        for name in names:
            if name not in BASELINES:
                raise UnknownOptionError(
                    f"unknown baseline {name!r} in {what}; expected names from: {', '.join(BASELINES)}"
                )
        return names

    @property
    def available_baselines(self) -> list[str]:
        """Every baseline name a battery knows (:data:`BASELINES`)."""
        return list(BASELINES)

    @property
    def applicable_baselines(self) -> list[str]:
        """The baselines :meth:`fit` would run with this configuration, in running order.

        Raises
        ------
        UnknownOptionError
            If ``include`` or ``exclude`` names an unknown baseline.
        """
        include = self._names("include") if self.include is not None else None
        exclude = self._names("exclude")
        out = []
        for name in BASELINES:
            if name in _NEEDS_MODEL and self.model is None:
                continue
            if include is not None and name not in include:
                continue
            if name in exclude:
                continue
            if name == "sentence_transformers" and include is None and not _sentence_available(DEFAULT_SENTENCE_MODEL):
                continue
            out.append(name)
        return out

    def _require_some(self, names: list[str]) -> None:
        if names:
            return
        include = self._names("include") if self.include is not None else None
        exclude = self._names("exclude")
        reasons = []
        for name in include if include is not None else list(BASELINES):
            if name in exclude:
                reasons.append(f"{name} is excluded")
            elif name in _NEEDS_MODEL and self.model is None:
                reasons.append(f"{name} needs model=...")
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise InvalidInputError(
            f"no baseline applies to this battery (include={self.include!r}, exclude={self.exclude!r}, "
            f"model={self.model!r}){detail}; the text baselines (bow, tfidf, random, majority, sentence_length) "
            "need no model"
        )

    # ------------------------------------------------------------------ running

    def fit(
        self,
        positive_prompts: Sequence[str],
        negative_prompts: Any = None,
        test_prompts: Sequence[str] | None = None,
        test_labels: Any = None,
    ) -> BaselineResults:
        """Fit every applicable baseline and score it.

        Parameters
        ----------
        positive_prompts : sequence of str
            Positive training prompts, or every training prompt in the labels form.
        negative_prompts : sequence of str or array-like of labels
            Negative training prompts, or one label per training prompt.
        test_prompts : sequence of str, optional
            Prompts to score on; the training prompts when None.
        test_labels : array-like, optional
            Their labels (required with ``test_prompts``).

        Returns
        -------
        BaselineResults
            One result per baseline that ran, in running order.

        Raises
        ------
        InvalidInputError
            If no baseline applies, the training data is empty or has one class, or ``test_prompts`` come without
            labels.
        ShapeMismatchError
            If labels are not one per prompt.
        """
        from tqdm.auto import tqdm

        from fastprobe.store import evict

        names = self.applicable_baselines
        self._require_some(names)
        train, y = _training_data(positive_prompts, negative_prompts)
        if test_prompts is None:
            if test_labels is not None:
                raise InvalidInputError("test_labels were given without test_prompts")
            test, y_test = train, y
        else:
            test = _inference_prompts(test_prompts)
            if test_labels is None:
                raise InvalidInputError("test_prompts need test_labels (one per test prompt)")
            y_test = _labels_for(test, test_labels)
        scorer = self.scorer if self.scorer is not None else _accuracy
        shared = _Shared(self, names, train, test)
        results: list[BaselineResult] = []
        self.baselines_ = {}
        with tqdm(total=len(names), desc="baselines", unit="baseline", dynamic_ncols=True) as bar:
            for name in names:
                bar.set_postfix_str(name)
                try:
                    baseline, fit_time, pred, predict_time = shared.run(name, y)
                except Exception as err:
                    if isinstance(err, ModelLoadError):
                        raise  # a model that cannot be loaded is an error, never a shorter table
                    warnings.warn(
                        f"baseline {name!r} failed and is left out of the results: {type(err).__name__}: {err}",
                        UserWarning,
                        stacklevel=2,
                    )
                else:
                    score = float(scorer(y_test, pred))
                    self.baselines_[name] = baseline
                    results.append(BaselineResult(name, score, baseline, fit_time, predict_time))
                bar.update(1)
        self.results_ = BaselineResults(results)
        if shared.used_model:
            evict()
        return self.results_

    def _check_fitted(self) -> BaselineResults:
        if self.results_ is None:
            raise NotFittedError("this BaselineBattery is not fitted: it has not run yet; call fit first")
        return self.results_

    def get_best(self, n: int = 1) -> list[BaselineResult]:
        """Return the ``n`` highest-scoring baselines of the last :meth:`fit`, best first.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        return self._check_fitted().get_best(n)

    def get_baseline(self, name: str) -> Baseline:
        """Return the fitted baseline of that name from the last :meth:`fit`.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        BaselineNotFoundError
            If the name is unknown or that baseline did not run (also a :class:`KeyError`).
        """
        self._check_fitted()
        if name not in BASELINES:
            raise BaselineNotFoundError(f"unknown baseline {name!r}; expected one of: {', '.join(BASELINES)}")
        if name not in self.baselines_:
            ran = ", ".join(self.baselines_) or "none"
            raise BaselineNotFoundError(f"baseline {name!r} did not run in this battery; these ran: {ran}")
        return self.baselines_[name]


class _Shared:
    """One battery run: builds each baseline and computes features shared by several of them once, lazily."""

    def __init__(self, battery: BaselineBattery, names: list[str], train: list[str], test: list[str]) -> None:
        self.battery = battery
        self.names = names
        self.train = train
        self.test = test
        self.used_model = False
        self._ctx: _Context | None = None
        self._ctx_error: Exception | None = None
        self._acts_failed: Exception | None = None
        self._counts: tuple[Any, Any, Any, float] | None = None
        self._acts: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._acts_time = 0.0
        self._sites: list[int | str] = []

    # -------------------------------------------------------------- shared features

    def ctx(self) -> _Context:
        if self._ctx_error is not None:  # the model's context failed once: every baseline that needs it fails alike
            raise self._ctx_error
        if self._ctx is None:
            b = self.battery
            backend = "nnsight" if b.remote else "local"
            try:
                self._ctx = _ready_context(b.model, b.device, backend, bool(b.remote), self._all_cached, b.revision)
            except Exception as err:
                self._ctx_error = err
                raise
            self.used_model = True
        return self._ctx

    def _layers(self, ctx: _Context) -> list[int]:
        methods = [n for n in self.names if n in ACTIVATION_METHODS]
        if any(m != "layer_0" for m in methods):
            return list(resolve_layers(self.battery.layers, ctx.loaded.n_layers))
        return []

    def _activation_sites(self, ctx: _Context) -> list[int | str]:
        """Return the sites the battery's activation baselines read, together: layers, then ``"embed"``."""
        embed: list[int | str] = ["embed"] if "layer_0" in self.names else []
        return [*self._layers(ctx), *embed]

    def _all_cached(self, ctx: _Context) -> bool:
        """Whether the cache holds every perplexity and activation this battery reads."""
        unique = self._everything()[0]
        if "perplexity" in self.names and not np.all(_perplexity_store(ctx).contains(unique, [0])):
            return False
        sites = self._activation_sites(ctx)
        return not sites or _activation_sites_cached(ctx, unique, sites, self.battery.pooling)

    def _everything(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Distinct prompts of training and test, and the rows of each in it."""
        unique = list(dict.fromkeys(self.train + self.test))
        index = {p: i for i, p in enumerate(unique)}
        return unique, np.array([index[p] for p in self.train]), np.array([index[p] for p in self.test])

    def counts(self) -> tuple[Any, Any, Any, float]:
        """(fitted word counter, training counts, test counts, seconds per sharing baseline)."""
        if self._counts is None:
            from sklearn.feature_extraction.text import CountVectorizer

            t0 = time.perf_counter()
            vec = CountVectorizer(max_features=10000, ngram_range=(1, 1))
            train = vec.fit_transform(self.train)
            test = vec.transform(self.test)
            users = sum(n in ("bow", "tfidf") for n in self.names)
            self._counts = (vec, train, test, (time.perf_counter() - t0) / users)
        return self._counts

    def activations(self, method: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(training, test) activations of an activation baseline, and its share of the one extraction and read."""
        if self._acts_failed is not None:  # the shared extraction failed: so does every baseline reading it
            raise self._acts_failed
        if self._acts is None:
            try:
                self._read_activations()
            except Exception as err:
                self._acts_failed = err
                raise
        assert self._acts is not None
        train, test = self._acts[method]
        return train, test, self._acts_time

    def _read_activations(self) -> None:
        """Extract what is missing and read every activation site of the battery's activation baselines, once."""
        b = self.battery
        t0 = time.perf_counter()
        methods = [n for n in self.names if n in ACTIVATION_METHODS]
        ctx = self.ctx()
        layers = self._layers(ctx)
        sites = self._activation_sites(ctx)
        unique, rows_train, rows_test = self._everything()
        X = _activations(ctx, unique, sites, b.pooling, 8)
        split = len(layers) * ctx.loaded.hidden_size
        self._acts = {}
        for m in methods:
            block = X[:, split:] if m == "layer_0" else X[:, :split]
            self._acts[m] = (block[rows_train], block[rows_test])
        self._sites = sites
        self._acts_time = (time.perf_counter() - t0) / len(methods)

    # -------------------------------------------------------------- one baseline

    def run(self, name: str, y: np.ndarray) -> tuple[Baseline, float, np.ndarray, float]:
        """Fit and predict one baseline: (fitted baseline, fit seconds, test predictions, predict seconds)."""
        if name in ACTIVATION_METHODS:
            return self._run_activation(name, y)
        return self._run_text(name, y)

    def _run_text(self, name: str, y: np.ndarray) -> tuple[Baseline, float, np.ndarray, float]:
        b = self.battery
        extra: dict[str, Any] = {}
        if name == "perplexity":
            extra = {"model": b.model, "device": b.device, "remote": b.remote, "revision": b.revision}
        baseline = BaselineProbe(method=name, classifier=b.classifier, random_state=b.random_state, **extra)
        template = baseline._check_params()
        baseline.vectorizer_ = None
        baseline.tfidf_ = None
        baseline.model_fingerprint_ = None
        share = 0.0
        t0 = time.perf_counter()
        if name in ("bow", "tfidf"):
            from sklearn.feature_extraction.text import TfidfTransformer

            vec, counts_train, counts_test, share = self.counts()
            baseline.vectorizer_ = vec
            baseline.tfidf_ = TfidfTransformer().fit(counts_train) if name == "tfidf" else None
            X_train = baseline._weigh(counts_train)
        elif name == "perplexity":
            ctx = self.ctx()
            unique, rows_train, rows_test = self._everything()
            feats = _perplexity_features(ctx, unique)
            baseline.model_fingerprint_ = ctx.fingerprint
            X_train = feats[rows_train]
        else:
            X_train = baseline._features(self.train, fit=True)
        baseline._fit_matrix(X_train, y, template)
        fit_time = time.perf_counter() - t0 + share
        t0 = time.perf_counter()
        if name in ("bow", "tfidf"):
            X_test = baseline._weigh(counts_test)
        elif name == "perplexity":
            X_test = feats[rows_test]
        else:
            X_test = baseline._features(self.test, fit=False)
        pred = np.asarray(baseline.classifier_.predict(baseline._matrix(X_test)))
        return baseline, fit_time, pred, time.perf_counter() - t0

    def _run_activation(self, name: str, y: np.ndarray) -> tuple[Baseline, float, np.ndarray, float]:
        b = self.battery
        baseline = ActivationBaseline(
            b.model,
            method=name,
            layers=b.layers,
            pooling=b.pooling,
            classifier=b.classifier,
            device=b.device,
            remote=b.remote,
            random_state=b.random_state,
            backend="nnsight" if b.remote else "local",
            revision=b.revision,
        )
        template = baseline._check_params()
        X_train, X_test, share = self.activations(name)
        t0 = time.perf_counter()
        baseline._fit_features(X_train, y, template)
        baseline.layers_ = ["embed"] if name == "layer_0" else [s for s in self._sites if s != "embed"]
        baseline.model_fingerprint_ = self.ctx().fingerprint
        fit_time = time.perf_counter() - t0 + share
        t0 = time.perf_counter()
        pred = baseline._predict_features(X_test)
        return baseline, fit_time, pred, time.perf_counter() - t0
