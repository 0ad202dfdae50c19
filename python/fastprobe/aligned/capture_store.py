"""A capture's home on disk: pooled vectors in an activation store, continuations and settings in SQLite.

:func:`~fastprobe.aligned.capture_generation` given ``store=`` streams every finished batch here, so a killed run
keeps every batch it finished and a rerun generates only the rest. The layout of a :class:`CaptureStore` directory:

- ``vectors/``: an :class:`~fastprobe.store.ActivationStore` holding one record per (prompt, template, sample, span,
  pooling) at every captured site (the pooled vector, as a last-token record; its token count is the span's);
- ``captures.sqlite``: the settings the store was made with (model fingerprint, sites, poolings, sampling settings,
  seed, batch size), the templates by name, and one row per (prompt, template, sample) with its continuation, its
  token ids and whether it ended;
- ``scores.sqlite``: a :class:`~fastprobe.aligned.ScoreCache` for :meth:`CaptureStore.score`.

A batch is committed in two steps: its vectors are written (one atomic write of the store), then its rows (one SQLite
transaction). A row exists only once its vectors do, so a process killed between the two leaves vectors without rows,
which the rerun writes again (the new record supersedes the old one). Batches are formed the same way on every run
and seeded by their rows, so a rerun samples the same continuations for the batches it generates.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe.exceptions import FastprobeIOError, InvalidInputError
from fastprobe.store import ActivationStore

__all__ = ["CaptureStore"]

_FORMAT_VERSION = 1
_BUSY_TIMEOUT_S = 60.0
_SEP = "\x1f"


class CaptureStore:
    """Captured generations in a directory, committed batch by batch; see :mod:`fastprobe.aligned.capture_store`.

    Parameters
    ----------
    path : str or path-like
        The directory (created when absent).
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Storage dtype of the pooled vectors of a new store.

    Raises
    ------
    FastprobeIOError
        If the directory or its database cannot be opened, or holds a newer format.
    """

    def __init__(self, path: str | os.PathLike[str], *, dtype: str = "float32") -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                os.fspath(self.path / "captures.sqlite"), timeout=_BUSY_TIMEOUT_S, isolation_level=None
            )
            self._init_schema()
        except (OSError, sqlite3.Error) as err:
            raise FastprobeIOError(f"cannot open the capture store {os.fspath(self.path)!r}: {err}") from err
        self.vectors = ActivationStore(self.path / "vectors", dtype=dtype)

    def __repr__(self) -> str:
        return f"CaptureStore({os.fspath(self.path)!r}, {len(self)} rows)"

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def _init_schema(self) -> None:
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _FORMAT_VERSION:
            raise sqlite3.DatabaseError(
                f"the capture store has format version {version}; this fastprobe reads up to {_FORMAT_VERSION} "
                "(upgrade fastprobe)"
            )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS templates (name TEXT PRIMARY KEY, definition TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rows (prompt TEXT NOT NULL, template TEXT NOT NULL, sample INTEGER NOT NULL, "
            "continuation TEXT NOT NULL, tokens TEXT NOT NULL, ended INTEGER NOT NULL, counts TEXT NOT NULL, "
            "PRIMARY KEY (prompt, template, sample))"
        )
        if version == 0:
            conn.execute(f"PRAGMA user_version = {_FORMAT_VERSION}")

    # ---------------------------------------------------------------------------------------------------------------
    # settings

    def settings(self) -> dict[str, Any]:
        """Return the settings recorded by the first capture into this store (empty for a new store)."""
        return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM settings")}

    def check_settings(self, settings: Mapping[str, Any], templates: Mapping[str, Any]) -> None:
        """Record ``settings`` and ``templates`` in a new store; in a used one, check that they match.

        Raises
        ------
        InvalidInputError
            If a setting differs from the recorded one, or a template name is recorded with another definition
            (the message names them); mixing them would put incomparable rows side by side.
        """
        recorded = self.settings()
        wanted = {k: json.loads(json.dumps(v, sort_keys=True)) for k, v in settings.items()}
        if recorded:
            differ = {k: (recorded.get(k), v) for k, v in wanted.items() if recorded.get(k) != v}
            if differ:
                detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in sorted(differ.items()))
                raise InvalidInputError(
                    f"the capture store {os.fspath(self.path)!r} was made with other settings ({detail}); use "
                    "another store for these settings"
                )
        known = dict(self._conn.execute("SELECT name, definition FROM templates"))
        for name, definition in templates.items():
            text = json.dumps(definition, sort_keys=True)
            if name in known and known[name] != text:
                raise InvalidInputError(
                    f"template {name!r} is stored with another definition ({known[name]}) than given ({text}); "
                    "give the template another name"
                )
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            if not recorded:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO settings VALUES (?, ?)",
                    [(k, json.dumps(v, sort_keys=True)) for k, v in wanted.items()],
                )
            self._conn.executemany(
                "INSERT OR IGNORE INTO templates VALUES (?, ?)",
                [(name, json.dumps(d, sort_keys=True)) for name, d in templates.items()],
            )

    # ---------------------------------------------------------------------------------------------------------------
    # rows and vectors

    def done(self, keys: Iterable[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
        """Return the ``(prompt, template, sample)`` keys among ``keys`` whose rows are committed."""
        have = {(p, t, int(s)) for p, t, s in self._conn.execute("SELECT prompt, template, sample FROM rows")}
        return {k for k in keys if k in have}

    def commit(
        self,
        rows: Sequence[Mapping[str, Any]],
        vectors: Mapping[tuple[str, str], np.ndarray],
        counts: Mapping[str, Sequence[int]],
        sites: Sequence[str],
    ) -> None:
        """Store one batch: its vectors, then its rows.

        Parameters
        ----------
        rows : sequence of mapping
            One per sequence: ``prompt`` (the text), ``template``, ``sample``, ``continuation``, ``tokens`` (ids),
            ``ended``.
        vectors : mapping of (span, pooling) to ndarray of shape (n_sites, len(rows), hidden)
        counts : mapping of span to one token count per row
        sites : sequence of str
            The site of each slab.
        """
        if not rows:
            return
        keys: list[str] = []
        slabs: list[np.ndarray] = []
        n_tokens: list[int] = []
        for (span, pooling), v in vectors.items():
            keys.extend(_record_key(r, span, pooling) for r in rows)
            slabs.append(np.asarray(v, dtype=np.float32))
            n_tokens.extend(max(int(c), 1) for c in counts[span])
        self.vectors.write_last_token(keys, np.concatenate(slabs, axis=1), n_tokens, list(sites))
        values = [
            (
                r["prompt"],
                r["template"],
                int(r["sample"]),
                r["continuation"],
                json.dumps([int(t) for t in r["tokens"]]),
                int(bool(r["ended"])),
                json.dumps({span: int(counts[span][i]) for span in counts}),
            )
            for i, r in enumerate(rows)
        ]
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)", values)

    def rows(self, keys: Sequence[tuple[str, str, int]]) -> list[dict[str, Any]]:
        """Return the committed rows of ``keys``, in that order.

        Raises
        ------
        InvalidInputError
            If a key has no committed row.
        """
        found: dict[tuple[str, str, int], dict[str, Any]] = {}
        query = "SELECT prompt, template, sample, continuation, tokens, ended, counts FROM rows"
        wanted = set(keys)
        for p, t, s, text, tokens, ended, counts in self._conn.execute(query):
            if (p, t, int(s)) in wanted:
                found[(p, t, int(s))] = {
                    "prompt": p,
                    "template": t,
                    "sample": int(s),
                    "continuation": text,
                    "tokens": tuple(json.loads(tokens)),
                    "ended": bool(ended),
                    "counts": json.loads(counts),
                }
        missing = [k for k in keys if k not in found]
        if missing:
            raise InvalidInputError(
                f"{len(missing)} (prompt, template, sample) rows are not in the capture store, e.g. {missing[0]!r}"
            )
        return [found[k] for k in keys]

    def read(self, keys: Sequence[tuple[str, str, int]], span: str, pooling: str, sites: Sequence[str]) -> np.ndarray:
        """Return the ``(len(keys), len(sites) * hidden)`` vectors of one span and pooling."""
        rows = [{"prompt": p, "template": t, "sample": s} for p, t, s in keys]
        return self.vectors.read_pooled([_record_key(r, span, pooling) for r in rows], list(sites), "last_token")

    # ---------------------------------------------------------------------------------------------------------------
    # scores

    def score(self, scorer: Any, texts: Sequence[str], *, batch_size: int = 32) -> dict[str, np.ndarray]:
        """Score ``texts`` through the store's score cache (``scores.sqlite``): each text is scored once.

        See :func:`~fastprobe.aligned.score_texts`.
        """
        from fastprobe.aligned.scorers import score_texts

        return score_texts(scorer, texts, cache=self.path / "scores.sqlite", batch_size=batch_size)


def _record_key(row: Mapping[str, Any], span: str, pooling: str) -> str:
    return _SEP.join([str(row["template"]), str(int(row["sample"])), span, pooling, str(row["prompt"])])
