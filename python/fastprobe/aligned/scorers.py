"""Behavioural scores: scorers that map texts to named scores, a validating driver and a cache by text.

A *scorer* is any callable from a sequence of texts to named scores, one value per text::

    scorer(["a text", "another"]) -> {"toxicity": [0.12, None], "insult": [0.05, None]}

``None`` marks a missing score (a text the scorer could not score); it becomes NaN in the arrays
:func:`score_texts` returns, never a sentinel number. :func:`score_texts` sends the texts in batches, checks every
answer (a mapping, one finite number or ``None`` per text for each name, the same names in every batch) and, given a
:class:`ScoreCache`, sends only the texts the cache does not hold, committing each batch as soon as it is scored so
that a killed run keeps what it paid for.

Built-in scorers (:mod:`fastprobe.aligned.perspective`, :mod:`fastprobe.aligned.offline`):

- :class:`PerspectiveScorer`: Google's Perspective API (``comments:analyze``), one request per text, with a rate
  limit, retries with exponential backoff on 429 and 5xx answers, and a failed text recorded as missing. Standard
  library only (``urllib.request``).
- :class:`VaderScorer`: sentiment from the ``vaderSentiment`` package (an optional extra).
- :class:`ProfanityScorer`: offensive-language probability from the ``alt-profanity-check`` package (an optional
  extra).
- :class:`LexiconScorer`: a word-list scorer with no dependency, a stand-in for tests and examples (not a toxicity
  model).

A scorer's *identity* (:func:`scorer_identity`) keys its entries in the cache: its ``name`` attribute when it has a
non-empty string one, else its qualified name. The built-in scorers put their configuration (attributes and
languages, the package's version, a digest of the lexicon) into ``name``, so two differently configured scorers never
share cache entries; a user-defined scorer whose behaviour changes should change its ``name`` too.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe.exceptions import (
    ArgumentTypeError,
    FastprobeIOError,
    InvalidInputError,
)

__all__ = ["ScoreCache", "Scorer", "score_texts", "scorer_identity"]

#: What a scorer is: texts in, named scores out (one value per text, ``None`` for a missing one).
Scorer = Callable[[Sequence[str]], Mapping[str, Sequence[Any]]]

_CACHE_FORMAT_VERSION = 1
_SQL_CHUNK = 500  # host parameters per query, below SQLite's oldest limit of 999
_BUSY_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------------------------------------------------
# identity and validation


def scorer_identity(scorer: Callable[..., Any]) -> str:
    """Return the string that identifies ``scorer`` in a :class:`ScoreCache`.

    Parameters
    ----------
    scorer : callable
        A scorer.

    Returns
    -------
    str
        ``scorer.name`` when it is a non-empty string; else the qualified name of the function (``module.qualname``)
        or, for an object, of its class.

    Examples
    --------
    >>> from fastprobe.aligned import LexiconScorer
    >>> scorer_identity(LexiconScorer({"bad": 1.0}, name="bad_words")).startswith("lexicon[bad_words;mean;")
    True
    """
    name = getattr(scorer, "name", None)
    if isinstance(name, str) and name:
        return name
    target: Any = scorer
    if not hasattr(target, "__qualname__"):
        target = type(scorer)
    module = getattr(target, "__module__", None) or ""
    qualname = getattr(target, "__qualname__", None) or type(scorer).__name__
    return f"{module}.{qualname}" if module else str(qualname)


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (Sequence, np.ndarray)):
        raise ArgumentTypeError(f"texts must be a sequence of str; got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise ArgumentTypeError(f"texts must be a sequence of str; texts[{i}] is {type(text).__name__} {text!r}")
    if not out:
        raise InvalidInputError("texts is empty; expected at least one text to score")
    return out


def _check_value(value: Any, identity: str, name: str, i: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"scorer {identity!r} returned a non-number for score {name!r} at text {i}: expected a finite number or "
            f"None (missing); got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if math.isnan(number):
        raise InvalidInputError(
            f"scorer {identity!r} returned NaN for score {name!r} at text {i}: expected a finite number, or None for "
            "a missing score"
        )
    if math.isinf(number):
        raise InvalidInputError(
            f"scorer {identity!r} returned {number} for score {name!r} at text {i}: expected a finite number or None"
        )
    return number


def _check_result(result: Any, identity: str, n_texts: int) -> dict[str, list[float | None]]:
    """Check a scorer's answer for ``n_texts`` texts; return plain lists (``None`` for missing)."""
    if not isinstance(result, Mapping):
        raise InvalidInputError(
            f"scorer {identity!r} returned {type(result).__name__}; expected a mapping from score names to one value "
            f"per text ({n_texts} texts)"
        )
    if not result:
        raise InvalidInputError(f"scorer {identity!r} returned no scores; expected at least one named score")
    checked: dict[str, list[float | None]] = {}
    for name, values in result.items():
        if not isinstance(name, str) or not name:
            raise InvalidInputError(
                f"scorer {identity!r} returned a score named {name!r}; expected non-empty str score names"
            )
        if isinstance(values, np.ndarray):
            if values.ndim != 1:
                raise InvalidInputError(
                    f"scorer {identity!r} returned an array of shape {values.shape} for score {name!r}; expected "
                    f"one value per text, shape ({n_texts},)"
                )
            values = values.tolist()
        elif isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InvalidInputError(
                f"scorer {identity!r} returned {type(values).__name__} for score {name!r}; expected a sequence of "
                f"{n_texts} values (one per text)"
            )
        if len(values) != n_texts:
            raise InvalidInputError(
                f"scorer {identity!r} returned {len(values)} values for score {name!r}; expected {n_texts} (one per "
                "text)"
            )
        checked[name] = [_check_value(v, identity, name, i) for i, v in enumerate(values)]
    return checked


# --------------------------------------------------------------------------------------------------------------------
# the cache


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ScoreCache:
    """Scores by text in an SQLite file, keyed by (scorer identity, SHA-256 of the text, score name).

    Every named score of a scored text is kept, a missing one as NULL; a text with a missing score counts as not
    cached, so the next :func:`score_texts` call sends it again (a transient failure gets another chance). Each
    :meth:`store` is one committed transaction. The file is in WAL mode, so readers do not block the writer.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created with its folder when absent), or ``":memory:"``.

    Examples
    --------
    >>> with ScoreCache(":memory:") as cache:
    ...     cache.store("demo", ["a", "b"], {"score": [0.5, None]})
    ...     cache.lookup("demo", ["a", "b", "c"])
    {'a': {'score': 0.5}, 'b': {'score': None}}
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ArgumentTypeError(f"path must be a str or os.PathLike; got {type(path).__name__} {path!r}")
        self.path = Path(path)
        memory = os.fspath(path) == ":memory:"
        try:
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                os.fspath(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None
            )
        except (OSError, sqlite3.Error) as err:
            raise FastprobeIOError(f"cannot open the score cache {os.fspath(path)!r}: {err}") from err
        try:
            self._init_schema(memory)
        except sqlite3.DatabaseError as err:
            self.close()
            raise FastprobeIOError(
                f"{os.fspath(path)!r} is not a fastprobe score cache (an SQLite file): {err}"
            ) from err

    def _init_schema(self, memory: bool) -> None:
        conn = self._connection()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, _CACHE_FORMAT_VERSION):
            raise sqlite3.DatabaseError(f"format version {version}; this fastprobe reads {_CACHE_FORMAT_VERSION}")
        if not memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS scores (scorer TEXT NOT NULL, text_sha256 TEXT NOT NULL, name TEXT NOT NULL, "
            "value REAL, PRIMARY KEY (scorer, text_sha256, name)) WITHOUT ROWID"
        )
        if version == 0:
            conn.execute(f"PRAGMA user_version = {_CACHE_FORMAT_VERSION}")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InvalidInputError(f"the score cache {os.fspath(self.path)!r} is closed")
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ScoreCache({os.fspath(self.path)!r})"

    def names(self, identity: str) -> list[str]:
        """Return the score names cached for a scorer identity, sorted."""
        rows = self._connection().execute("SELECT DISTINCT name FROM scores WHERE scorer = ?", (identity,))
        return sorted(row[0] for row in rows)

    def lookup(self, identity: str, texts: Sequence[str]) -> dict[str, dict[str, float | None]]:
        """Return the cached scores of those ``texts`` that have any, as ``{text: {name: value or None}}``.

        The result follows the order of ``texts`` (the first of equal texts); names are sorted.
        """
        by_key: dict[str, list[str]] = {}
        for text in texts:
            by_key.setdefault(_text_key(text), []).append(text)
        by_sha: dict[str, dict[str, float | None]] = {}
        conn = self._connection()
        for chunk in _chunks(list(by_key), _SQL_CHUNK):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT text_sha256, name, value FROM scores WHERE scorer = ? AND text_sha256 IN ({marks})",
                (identity, *chunk),
            )
            for key, name, value in rows:
                by_sha.setdefault(key, {})[name] = None if value is None else float(value)
        found: dict[str, dict[str, float | None]] = {}
        for key, same in by_key.items():
            if key in by_sha:
                for text in same:
                    found[text] = dict(sorted(by_sha[key].items()))
        return found

    def store(self, identity: str, texts: Sequence[str], scores: Mapping[str, Sequence[float | None]]) -> None:
        """Write the scores of ``texts`` (``scores[name][i]`` belongs to ``texts[i]``) in one committed transaction."""
        rows = [
            (identity, _text_key(text), name, None if values[i] is None else float(values[i]))  # type: ignore[arg-type]
            for name, values in scores.items()
            for i, text in enumerate(texts)
        ]
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def clear(self, identity: str | None = None) -> int:
        """Delete the entries of one scorer identity (all entries when None); return the number of rows deleted."""
        conn = self._connection()
        if identity is None:
            cursor = conn.execute("DELETE FROM scores")
        else:
            cursor = conn.execute("DELETE FROM scores WHERE scorer = ?", (identity,))
        return int(cursor.rowcount)


# --------------------------------------------------------------------------------------------------------------------
# the driver


def score_texts(
    scorer: Scorer,
    texts: Sequence[str],
    *,
    cache: ScoreCache | str | os.PathLike[str] | None = None,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Score texts with a scorer, checking its answers, through an optional cache by text.

    Each distinct text is sent at most once (duplicates share one score), in batches of ``batch_size``; texts the
    cache holds with every score present are not sent. With a cache, each batch's scores are committed as soon as
    the batch is scored.

    Parameters
    ----------
    scorer : callable
        ``texts -> {name: one value per text}``; a value is a finite number or ``None`` (missing).
    texts : sequence of str
        The texts, at least one.
    cache : ScoreCache, str, os.PathLike or None
        A :class:`ScoreCache`, or the path of one (opened and closed by this call).
    batch_size : int
        Texts per scorer call.

    Returns
    -------
    dict of str to numpy.ndarray
        One float64 array of ``len(texts)`` values per score name (sorted by name), NaN where a score is missing.

    Raises
    ------
    InvalidInputError
        Empty ``texts``; a scorer answer that is not a mapping, has a name with the wrong number of values, a value
        that is not a number or None, NaN or infinity, or other names than an earlier batch or the cache.
    ArgumentTypeError
        ``texts`` not a sequence of str, ``scorer`` not callable, a bad ``batch_size`` or ``cache``.

    Examples
    --------
    >>> from fastprobe.aligned import LexiconScorer
    >>> scores = score_texts(LexiconScorer({"awful": 1.0}, name="bad"), ["an awful day", "a fine day"])
    >>> scores["bad"].tolist()
    [0.3333333333333333, 0.0]
    """
    if not callable(scorer):
        raise ArgumentTypeError(f"scorer must be callable (texts -> named scores); got {type(scorer).__name__}")
    items = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ArgumentTypeError(f"batch_size must be an int >= 1; got {batch_size!r}")
    if cache is None or isinstance(cache, ScoreCache):
        return _score(scorer, items, cache, int(batch_size))
    if not isinstance(cache, (str, os.PathLike)):
        raise ArgumentTypeError(f"cache must be a ScoreCache, a path or None; got {type(cache).__name__} {cache!r}")
    with ScoreCache(cache) as opened:
        return _score(scorer, items, opened, int(batch_size))


def _score(scorer: Scorer, texts: list[str], cache: ScoreCache | None, batch_size: int) -> dict[str, np.ndarray]:
    identity = scorer_identity(scorer)
    unique = list(dict.fromkeys(texts))
    known: dict[str, dict[str, float | None]] = {}
    names: list[str] | None = None
    names_from = "the cache holds"
    if cache is not None:
        cached_names = cache.names(identity)
        if cached_names:
            names = cached_names
            for text, values in cache.lookup(identity, unique).items():
                if all(values.get(name) is not None for name in cached_names):
                    known[text] = values
    todo = [text for text in unique if text not in known]
    for batch in _chunks(todo, batch_size):
        result = _check_result(scorer(list(batch)), identity, len(batch))
        batch_names = sorted(result)
        if names is None:
            names, names_from = batch_names, "an earlier batch returned"
        elif batch_names != names:
            raise InvalidInputError(
                f"scorer {identity!r} returned the scores {batch_names}; {names_from} {names}. A scorer "
                "must return the same names for every batch; a scorer whose output changed needs another name "
                f"(or ScoreCache.clear({identity!r}))"
            )
        if cache is not None:
            cache.store(identity, batch, result)
        for i, text in enumerate(batch):
            known[text] = {name: result[name][i] for name in names}
    assert names is not None  # texts is not empty: either the cache or the scorer gave names
    out: dict[str, np.ndarray] = {}
    for name in names:
        column = (known[text][name] for text in texts)
        out[name] = np.fromiter((math.nan if v is None else v for v in column), dtype=np.float64, count=len(texts))
    return out
