"""What every baseline shares: the method tables, input checks, the text features and prediction from features."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastprobe._validation import check_labels, check_training_data
from fastprobe.estimators import build_classifier
from fastprobe.exceptions import (
    InvalidInputError,
    NotFittedError,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.features import ModelContext
from fastprobe.model import model_identity, sentence_model_here

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


NEEDS_MODEL = ("perplexity", "random_direction", "pca", "layer_0")


LENGTH_FEATURES = ["char_count", "word_count", "chars_per_word"]


PERPLEXITY_FEATURE_NAMES = ["mean_perplexity", "min_perplexity", "max_perplexity"]


#: Feature methods whose features are standardized before the classifier.
STANDARDIZED = ("sentence_length", "perplexity")


class BaselineNotFoundError(UnknownOptionError, KeyError):
    """A baseline name that is not known, or that did not run in this battery (also a :class:`KeyError`)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def training_data(first: Any, second: Any) -> tuple[list[str], np.ndarray]:
    """``fit(positive, negative)`` or ``fit(prompts, labels)`` -> (prompts, labels), with :class:`Probe`'s checks."""
    prompts, y, _ = check_training_data(first, second)
    return prompts, y


def make_classifier(classifier: Any, random_state: int | None) -> Any:
    """Build the classifier a baseline fits (a name or an estimator), quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_classifier(classifier, random_state=random_state)


def accepts_sparse(estimator: Any) -> bool:
    """Tell whether an estimator takes scipy sparse input (scikit-learn's tags)."""
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.sparse)
    except Exception:  # not a scikit-learn estimator: give it a dense array
        return False


def check_model(saved: dict[str, Any] | None, ctx: ModelContext, what: str) -> None:
    """Refuse a model other than the one a baseline was fitted on."""
    if saved and model_identity(saved) != model_identity(ctx.fingerprint):
        raise InvalidInputError(
            f"this {what} was fitted on model {saved.get('model')!r} ({saved.get('architecture')}), but "
            f"{ctx.fingerprint.get('model')!r} is a different model ({ctx.fingerprint.get('architecture')}); fit a "
            "new baseline for it"
        )


def length_features(prompts: Sequence[str]) -> np.ndarray:
    """Characters, words (whitespace-separated) and characters per word of each prompt."""
    chars = np.fromiter((len(p) for p in prompts), dtype=np.float64, count=len(prompts))
    words = np.fromiter((len(p.split()) for p in prompts), dtype=np.float64, count=len(prompts))
    return np.column_stack([chars, words, chars / np.maximum(words, 1.0)])


def sentence_available(name: str) -> bool:
    """Tell whether sentence-transformers and the encoder ``name`` are on this machine."""
    return importlib.util.find_spec("sentence_transformers") is not None and sentence_model_here(name)


class PromptClassifier:
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
        y = check_labels(prompts, labels)
        return float(np.mean(self.predict(prompts) == y))
