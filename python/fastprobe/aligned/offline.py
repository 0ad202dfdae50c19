"""Offline scorers: no network. VADER sentiment and alt-profanity-check (optional packages), and a lexicon."""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from types import ModuleType

import numpy as np

from fastprobe.exceptions import (
    ArgumentTypeError,
    InvalidInputError,
    MissingDependencyError,
    UnknownOptionError,
)

__all__ = ["LexiconScorer", "ProfanityScorer", "VaderScorer"]

# --------------------------------------------------------------------------------------------------------------------
# offline scorers


def _import_optional(module: str, package: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{what} needs the {package} package (import name {module.split('.')[0]!r}); install it with: "
            f"pip install {package}"
        ) from err


def _package_version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


class VaderScorer:
    """Sentiment from VADER (the ``vaderSentiment`` package, an optional extra).

    Returns VADER's four polarity scores per text: ``compound`` (normalized to [-1, 1]), and the proportions
    ``pos``, ``neg`` and ``neu`` (each in [0, 1]).

    Raises
    ------
    MissingDependencyError
        When ``vaderSentiment`` is not installed (``pip install vaderSentiment``).

    Attributes
    ----------
    name : str
        ``"vader[<package version>]"``.
    """

    score_names = ("compound", "pos", "neg", "neu")

    def __init__(self) -> None:
        module = _import_optional("vaderSentiment.vaderSentiment", "vaderSentiment", "VaderScorer")
        self._analyzer = module.SentimentIntensityAnalyzer()
        self.name = f"vader[{_package_version('vaderSentiment')}]"

    def __repr__(self) -> str:
        return "VaderScorer()"

    def __call__(self, texts: Sequence[str]) -> dict[str, list[float | None]]:
        """Score ``texts``; return ``{"compound", "pos", "neg", "neu": one value per text}``."""
        out: dict[str, list[float | None]] = {name: [] for name in self.score_names}
        for text in texts:
            polarity = self._analyzer.polarity_scores(text)
            for name in self.score_names:
                out[name].append(float(polarity[name]))
        return out


class ProfanityScorer:
    """Offensive-language probability from ``alt-profanity-check`` (an optional extra; import name ``profanity_check``).

    A linear SVM over bag-of-words features trained on offensive-language data sets, shipped with the package; the
    score ``profanity`` is its ``predict_prob``, the probability that a text is offensive, in [0, 1].

    Raises
    ------
    MissingDependencyError
        When the package is not installed (``pip install alt-profanity-check``).

    Attributes
    ----------
    name : str
        ``"alt-profanity-check[<package version>]"``.
    """

    score_names = ("profanity",)

    def __init__(self) -> None:
        module = _import_optional("profanity_check", "alt-profanity-check", "ProfanityScorer")
        self._predict_prob = module.predict_prob
        self.name = f"alt-profanity-check[{_package_version('alt-profanity-check')}]"

    def __repr__(self) -> str:
        return "ProfanityScorer()"

    def __call__(self, texts: Sequence[str]) -> dict[str, list[float | None]]:
        """Score ``texts``; return ``{"profanity": one probability per text}``."""
        texts = list(texts)
        if not texts:
            return {"profanity": []}
        probabilities = np.asarray(self._predict_prob(texts), dtype=np.float64).reshape(-1)
        return {"profanity": [float(p) for p in probabilities]}


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_REDUCTIONS = ("mean", "max")


class LexiconScorer:
    """A word-list scorer with no dependency: a simple stand-in for tests and examples, not a toxicity model.

    A text is split into lower-case word tokens (runs of letters and digits, with inner apostrophes: ``don't``);
    each token scores its lexicon value, 0 when the lexicon lacks it; the text's score is the mean (``reduce="mean"``)
    or the maximum (``reduce="max"``) over its tokens, and 0 for a text with no token.

    Parameters
    ----------
    lexicon : mapping of str to float
        Word -> value. Keys are matched lower-case; two keys that differ only by case must have the same value.
    name : str
        The name of the returned score.
    reduce : {"mean", "max"}
        How token values combine.

    Attributes
    ----------
    name : str
        The scorer's identity in a :class:`ScoreCache`: ``"lexicon[<score name>;<reduce>;<lexicon digest>]"``, so
        two different lexicons never share cache entries.
    score_name : str
        The name of the returned score (the ``name`` parameter).

    Examples
    --------
    >>> scorer = LexiconScorer({"Awful": 1.0, "bad": 0.5}, name="negativity", reduce="max")
    >>> scorer(["An awful, bad day", "fine"])
    {'negativity': [1.0, 0.0]}
    """

    def __init__(self, lexicon: Mapping[str, float], *, name: str = "lexicon", reduce: str = "mean") -> None:
        if not isinstance(lexicon, Mapping):
            raise ArgumentTypeError(f"lexicon must be a mapping from words to numbers; got {type(lexicon).__name__}")
        if not isinstance(name, str) or not name:
            raise ArgumentTypeError(f"name must be a non-empty str; got {name!r}")
        if reduce not in _REDUCTIONS:
            raise UnknownOptionError(f"reduce must be one of {list(_REDUCTIONS)}; got {reduce!r}")
        table: dict[str, float] = {}
        for word, value in lexicon.items():
            if not isinstance(word, str) or not word:
                raise ArgumentTypeError(f"lexicon keys must be non-empty str; got {word!r}")
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise InvalidInputError(f"lexicon value of {word!r} must be a finite number; got {value!r}")
            key = word.lower()
            if key in table and table[key] != float(value):
                raise InvalidInputError(
                    f"lexicon has {word!r} and another key equal to it in lower case with different values "
                    f"({table[key]} and {float(value)})"
                )
            table[key] = float(value)
        self._table = table
        self.score_name = name
        self.reduce = reduce
        digest = hashlib.sha256(json.dumps(sorted(table.items())).encode("utf-8")).hexdigest()[:16]
        self.name = f"lexicon[{name};{reduce};{digest}]"

    def __repr__(self) -> str:
        return f"LexiconScorer(<{len(self._table)} words>, name={self.score_name!r}, reduce={self.reduce!r})"

    @staticmethod
    def tokens(text: str) -> list[str]:
        """Return the lower-case word tokens of ``text``, as the scorer sees them."""
        return _WORD.findall(text.lower())

    def score(self, text: str) -> float:
        """Return one text's score."""
        values = [self._table.get(token, 0.0) for token in self.tokens(text)]
        if not values:
            return 0.0
        return max(values) if self.reduce == "max" else math.fsum(values) / len(values)

    def __call__(self, texts: Sequence[str]) -> dict[str, list[float | None]]:
        """Score ``texts``; return ``{name: one value per text}``."""
        return {self.score_name: [self.score(text) for text in texts]}
