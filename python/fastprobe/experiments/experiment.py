"""The :class:`Experiment`: a named grid whose cells are computed once each and stored in a SQLite file."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastprobe._config import cache_root
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, MissingDependencyError, UnknownOptionError
from fastprobe.experiments.database import ExperimentDatabase
from fastprobe.experiments.grid import cell_key, check_grid, expand_grid
from fastprobe.experiments.runner import RunStats, run_cells
from fastprobe.experiments.tables import records_from_rows, to_frame, write_csv, write_parquet

__all__ = ["DEFAULT_DATABASE_NAME", "ON_ERROR", "Experiment", "ExperimentStatus", "default_database_path"]

#: The file name of the default experiment database, in fastprobe's cache root.
DEFAULT_DATABASE_NAME = "experiments.sqlite"
#: Values of ``Experiment.run(on_error=...)``.
ON_ERROR: tuple[str, ...] = ("raise", "skip")


def default_database_path() -> Path:
    """Return the default experiment database: ``<fastprobe cache root>/experiments.sqlite``.

    The cache root is ``FASTPROBE_HOME``, else ``$XDG_CACHE_HOME/fastprobe``, else ``~/.cache/fastprobe``.

    Returns
    -------
    pathlib.Path
    """
    return cache_root() / DEFAULT_DATABASE_NAME


@dataclass(frozen=True)
class ExperimentStatus:
    """Where an experiment's grid stands in its database.

    Attributes
    ----------
    total : int
        Cells in the grid.
    finished : int
        Cells with a stored result.
    running : int
        Unfinished cells some run holds a claim on (possibly a stale claim of a process that died).
    failed : int
        Unfinished cells whose last attempt raised (see :meth:`Experiment.errors`).
    pending : int
        Cells neither finished nor claimed (failed cells included).
    """

    total: int
    finished: int
    running: int
    failed: int
    pending: int


class Experiment:
    """A named grid of configurations, each computed once by a function and stored in an SQLite database.

    Parameters
    ----------
    name : str
        The experiment's name; part of every cell's key, so two experiments never share results.
    grid : Mapping[str, Sequence]
        Axis name -> the values it takes, for example ``{"model": [...], "layer": [...], "classifier": [...],
        "fold": [...], "seed": [...]}``. Values must be JSON-able (None, bool, int, float, str, and lists and
        str-keyed dicts of these; numpy scalars and arrays are converted); give an estimator by its name or its
        parameters, not as an object.
    fixed : Mapping[str, Any], optional
        Settings shared by every cell (the data's hash, estimator keyword arguments, a code revision...). They are
        part of every cell's configuration, so of its key: change one and every cell is new.
    path : str or path-like, optional
        The SQLite file; default :func:`default_database_path`. Created (with its directory) if missing; several
        experiments may share one file.

    Raises
    ------
    ArgumentTypeError
        If a grid or fixed value is not JSON-able, or an argument has the wrong type.
    InvalidInputError
        If an axis is empty or repeats a value, a fixed setting shares an axis's name, or the file is not an
        experiment database (not SQLite, another application's SQLite file, or one written by a newer fastprobe).

    Notes
    -----
    A cell is a dict: one value per axis (in the grid's order, the last axis varying fastest), then the fixed
    settings. Its key is the SHA-256 of the canonical JSON of the experiment's name and that dict
    (:func:`fastprobe.experiments.cell_key`); neither the axes' order nor the fastprobe version enter it, so
    results computed by an older fastprobe count as finished (each row records its version; put a version in
    ``fixed`` to recompute on upgrade).
    """

    def __init__(
        self,
        name: str,
        grid: Mapping[str, Sequence[Any]],
        *,
        fixed: Mapping[str, Any] | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ArgumentTypeError(f"name must be a str; got {type(name).__name__}")
        if not name.strip():
            raise InvalidInputError("name must be a non-empty str; got an empty one")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise ArgumentTypeError(f"path must be a str, a path-like or None; got {type(path).__name__}")
        self.name = name
        self.axes, self.fixed = check_grid(grid, fixed)
        self.path = Path(path) if path is not None else default_database_path()
        self.last_run: RunStats | None = None
        self._keyed: list[tuple[str, dict[str, Any]]] | None = None
        with ExperimentDatabase(self.path, self.name):
            pass  # create the database, or check it now

    def __repr__(self) -> str:
        axes = ", ".join(f"{name}={len(values)}" for name, values in self.axes.items())
        return f"Experiment({self.name!r}, {len(self)} cells: {axes}; path={str(self.path)!r})"

    def __len__(self) -> int:
        return math.prod(len(values) for values in self.axes.values())

    def cells(self) -> Iterator[dict[str, Any]]:
        """Yield every cell's configuration (a fresh dict each), in the grid's order.

        Yields
        ------
        dict[str, Any]
            The axes' values, then the fixed settings.
        """
        yield from expand_grid(self.axes, self.fixed)

    def key(self, cell: Mapping[str, Any]) -> str:
        """Return a cell's key (fixed settings the mapping lacks are added first).

        Parameters
        ----------
        cell : Mapping[str, Any]
            A configuration as :meth:`cells` yields it, or just its axis values.

        Returns
        -------
        str
            64 hexadecimal digits.
        """
        if not isinstance(cell, Mapping):
            raise ArgumentTypeError(f"cell must be a mapping; got {type(cell).__name__}")
        config = dict(cell)
        for name, value in self.fixed.items():
            config.setdefault(name, value)
        return cell_key(self.name, config)

    def _cells_with_keys(self) -> list[tuple[str, dict[str, Any]]]:
        if self._keyed is None:
            self._keyed = [(cell_key(self.name, config), config) for config in self.cells()]
        return self._keyed

    def run(
        self,
        fn: Callable[[dict[str, Any]], Mapping[str, Any]],
        *,
        progress: bool = True,
        workers: int = 1,
        on_error: str = "raise",
        wait: bool = True,
        stale_after: float = 600.0,
        as_frame: bool | None = None,
    ) -> Any:
        """Compute every cell not finished yet, storing each result as soon as it is known; return all results.

        Parameters
        ----------
        fn : callable
            ``fn(cell) -> dict`` of JSON-able results (NaN and infinity allowed), called with a copy of the cell.
        progress : bool, default True
            A progress bar over the grid (cells finished before the run count from the start).
        workers : int, default 1
            Cells computed at once, on threads (fastprobe's Rust solvers and torch release the GIL). With 1, ``fn``
            runs in the calling thread. For processes, start several runs of the same experiment: they share the
            work through the database.
        on_error : {"raise", "skip"}, default "raise"
            When ``fn`` raises, the cell is recorded in the errors table (:meth:`errors`) and stays unfinished, to
            be tried again by the next run. ``"raise"`` stops claiming cells, stores the cells in flight, and
            re-raises the exception; ``"skip"`` goes on with the other cells.
        wait : bool, default True
            Wait for cells another live process is computing, so the run returns with the whole grid finished
            (taking over any cell that process drops). False returns without them.
        stale_after : float, default 600
            Seconds without a heartbeat after which another run's claim on a cell is stale and taken over.
            A run refreshes its claims every ``stale_after / 10`` seconds (at most every 60) from a thread,
            so only a process that died, hangs without running Python, or is stopped is ever overtaken; a claim of
            a process of this host that no longer exists is taken over at once.
        as_frame : bool, optional
            How to return the results (see :meth:`results`).

        Returns
        -------
        pandas.DataFrame or list of dict
            :meth:`results`.

        Raises
        ------
        Exception
            What ``fn`` raised, with ``on_error="raise"``.
        KeyboardInterrupt
            On Ctrl-C (SIGINT, in the main thread, where Python's default handler is installed): the first stops
            the run once the cells in flight are stored; a second aborts them (nothing stored, claims released).
            A :class:`KeyboardInterrupt` raised inside ``fn`` aborts that cell the same way and propagates.

        Notes
        -----
        Each result is committed in its own transaction together with the release of its claim, so killing the
        process at any moment (SIGKILL included) loses no stored cell and leaves no partial row. Before computing
        a cell, a run claims it (a row in the claims table, inserted in a ``BEGIN IMMEDIATE`` transaction), so
        two processes never compute the same cell, unless one stops sending heartbeats for ``stale_after``
        seconds and comes back (its late result is then dropped: a cell has one row).
        """
        if not callable(fn):
            raise ArgumentTypeError(f"fn must be callable (cell -> dict of results); got {type(fn).__name__}")
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise ArgumentTypeError(f"workers must be an int; got {type(workers).__name__}")
        if workers < 1:
            raise InvalidInputError(f"workers must be at least 1; got {workers}")
        if on_error not in ON_ERROR:
            raise UnknownOptionError(f"on_error={on_error!r}; expected one of: {', '.join(ON_ERROR)}")
        if isinstance(stale_after, bool) or not isinstance(stale_after, (int, float)):
            raise ArgumentTypeError(f"stale_after must be a number of seconds; got {type(stale_after).__name__}")
        if not (math.isfinite(stale_after) and stale_after > 0):
            raise InvalidInputError(f"stale_after must be a positive number of seconds; got {stale_after!r}")
        cells = self._cells_with_keys()
        with ExperimentDatabase(self.path, self.name) as db:
            self.last_run = run_cells(
                db,
                cells,
                fn,
                workers=workers,
                on_error=on_error,
                progress=bool(progress),
                wait=bool(wait),
                stale_after=float(stale_after),
                desc=f"experiment {self.name}",
            )
        return self.results(as_frame=as_frame)

    def results(self, *, as_frame: bool | None = None, all_rows: bool = False) -> Any:
        """Return the finished cells' results, one row per cell in the grid's order.

        Columns: the configuration's (nested dicts flattened with dots), the result's (a name taken by a
        configuration column becomes ``result.<name>``), then ``seconds``, ``version`` (the fastprobe that computed
        the cell), ``started_at``, ``finished_at`` (UTC, ISO 8601), ``host``, ``pid`` and ``cell_key``.

        Parameters
        ----------
        as_frame : bool, optional
            True: a pandas DataFrame (pandas required); False: a list of dicts; None (default): a DataFrame when
            pandas is installed, else a list of dicts.
        all_rows : bool, default False
            Also return rows stored under this experiment's name for cells not in the current grid (an axis value
            since removed, other fixed settings), after the grid's rows, oldest first.

        Returns
        -------
        pandas.DataFrame or list of dict

        Raises
        ------
        MissingDependencyError
            If ``as_frame=True`` and pandas is not installed.
        """
        records = self.records(all_rows=all_rows)
        if as_frame is False:
            return records
        if importlib.util.find_spec("pandas") is None:
            if as_frame:
                raise MissingDependencyError(
                    "results(as_frame=True) needs the pandas package; install it with: pip install pandas"
                )
            return records
        return to_frame(records)

    def records(self, *, all_rows: bool = False) -> list[dict[str, Any]]:
        """Return the finished cells' results as a list of flat dicts (see :meth:`results`)."""
        with ExperimentDatabase(self.path, self.name) as db:
            rows = {row["key"]: row for row in db.result_rows()}
        ordered = [rows.pop(key) for key, _ in self._cells_with_keys() if key in rows]
        if all_rows:
            ordered.extend(rows.values())
        return records_from_rows(ordered, [*self.axes, *self.fixed])

    def to_csv(self, path: str | os.PathLike[str], *, all_rows: bool = False) -> Path:
        """Write :meth:`results` to a CSV file (replaced whole, never half-written); return its path.

        Parameters
        ----------
        path : str or path-like
        all_rows : bool, default False
            As in :meth:`results`.

        Returns
        -------
        pathlib.Path
        """
        return write_csv(self.records(all_rows=all_rows), path)

    def to_parquet(self, path: str | os.PathLike[str], *, all_rows: bool = False) -> Path:
        """Write :meth:`results` to a Parquet file with pyarrow (replaced whole, never half-written); return its path.

        Parameters
        ----------
        path : str or path-like
        all_rows : bool, default False
            As in :meth:`results`.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        MissingDependencyError
            If pyarrow is not installed.
        """
        return write_parquet(self.records(all_rows=all_rows), path)

    def status(self) -> ExperimentStatus:
        """Return how many of the grid's cells are finished, claimed, failed and pending.

        Returns
        -------
        ExperimentStatus
        """
        keys = {key for key, _ in self._cells_with_keys()}
        with ExperimentDatabase(self.path, self.name) as db:
            finished = keys & db.finished_keys()
            running = {row["key"] for row in db.claim_rows()} & (keys - finished)
            failed = {row["key"] for row in db.error_rows()} & (keys - finished)
        return ExperimentStatus(
            total=len(keys),
            finished=len(finished),
            running=len(running),
            failed=len(failed),
            pending=len(keys) - len(finished) - len(running),
        )

    def errors(self) -> list[dict[str, Any]]:
        """Return the last failure of every unfinished cell of the grid.

        Returns
        -------
        list of dict
            ``cell_key``, ``config`` (a dict), ``error`` (``"Type: message"``), ``traceback``, ``attempts``,
            ``version``, ``at`` (UTC), ``host`` and ``pid``.
        """
        keys = {key for key, _ in self._cells_with_keys()}
        with ExperimentDatabase(self.path, self.name) as db:
            rows = db.error_rows()
        out = []
        for row in rows:
            if row["key"] in keys:
                key = row.pop("key")
                out.append({"cell_key": key, **row, "config": json.loads(row["config"])})
        return out
