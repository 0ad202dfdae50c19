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

from fastprobe.baselines.activation import ActivationBaseline
from fastprobe.baselines.battery import Baseline, BaselineBattery, BaselineResult, BaselineResults  # noqa: F401
from fastprobe.baselines.common import (
    ACTIVATION_METHODS,
    ACTIVATION_POOLINGS,
    BASE_METHODS,
    BASELINES,
    DEFAULT_SENTENCE_MODEL,
    TEXT_METHODS,
    BaselineNotFoundError,
)
from fastprobe.baselines.text import BaselineProbe

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
