"""Running an experiment's cells: claims, one commit per cell, a heartbeat, Ctrl-C, worker threads, a progress bar.

The loop, in the calling thread: take the next unfinished cell, claim it (:meth:`ExperimentDatabase.claim`), call the
user's function (inline with one worker, on a thread pool with several), and store its result in one transaction
that also drops the claim. Cells another live process has claimed are set aside and looked at again every
:data:`POLL_S` seconds until they are finished (by it) or free (its run stopped or failed, or its claim went stale),
so every process running the experiment returns when the whole grid is finished, unless ``wait=False``.

While the run holds claims, a heartbeat thread (its own SQLite connection) refreshes them every ``stale_after / 10``
seconds (at most every minute), so a claim whose heartbeat is older than ``stale_after`` belongs to a process that
is gone (or stopped, ``SIGSTOP``) wherever it ran, and another run takes it over.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from fastprobe.exceptions import ArgumentTypeError
from fastprobe.experiments.database import BUSY, FINISHED, ExperimentDatabase, beat, connect
from fastprobe.experiments.grid import canonical_json, to_json_value

__all__ = ["POLL_S", "RunStats", "graceful_interrupt", "run_cells", "utc_now"]

LOG = logging.getLogger("fastprobe.experiments")

#: How often a run looks again at cells other processes hold, and at its worker threads (seconds).
POLL_S = 0.2


@dataclass
class RunStats:
    """What one :meth:`Experiment.run` did.

    Attributes
    ----------
    total : int
        Cells in the grid.
    skipped : int
        Cells already finished when the run began.
    ran : int
        Cells this run computed and stored.
    by_others : int
        Cells other processes finished while this run was going.
    failed : int
        Cells whose function raised (recorded in the errors table, left unfinished).
    left_busy : int
        Cells still held by other live processes when the run returned (only with ``wait=False``).
    interrupted : bool
        Whether Ctrl-C stopped the run.
    """

    total: int = 0
    skipped: int = 0
    ran: int = 0
    by_others: int = 0
    failed: int = 0
    left_busy: int = 0
    interrupted: bool = False


@dataclass
class _Outcome:
    result: str | None
    error: Exception | None
    started_at: str
    finished_at: str
    seconds: float


def utc_now() -> str:
    """Return the current time in UTC, ISO 8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@contextlib.contextmanager
def graceful_interrupt(stop: threading.Event) -> Iterator[None]:
    """While the block runs, the first Ctrl-C sets ``stop``; the second raises :class:`KeyboardInterrupt`.

    Only in the main thread, and only where SIGINT has Python's default handler (a handler the program installed
    is left alone).

    Parameters
    ----------
    stop : threading.Event
        Set by the first SIGINT.

    Yields
    ------
    None
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        sys.stderr.write("\nfastprobe: stopping after the cells in flight (press Ctrl-C again to abort them)\n")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Heartbeat:
    """A daemon thread refreshing a run's claims until the block ends."""

    def __init__(self, db: ExperimentDatabase, interval: float) -> None:
        self.db = db
        self.interval = interval
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="fastprobe-experiment-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _loop(self) -> None:
        try:
            conn = connect(self.db.path)
        except sqlite3.Error as error:
            LOG.warning("experiment heartbeat could not open %s: %s", self.db.path, error)
            return
        try:
            while not self.done.wait(self.interval):
                try:
                    beat(conn, self.db.token)
                except sqlite3.Error as error:  # a busy database for two minutes: try again next time
                    LOG.warning("experiment heartbeat failed: %s", error)
        finally:
            conn.close()


def _attempt(fn: Callable[[dict[str, Any]], Any], config: dict[str, Any]) -> _Outcome:
    """Call ``fn`` on a copy of the configuration; an :class:`Exception` is returned, anything else propagates."""
    started = utc_now()
    begin = time.perf_counter()
    try:
        value = fn(copy.deepcopy(config))
        if not isinstance(value, Mapping):
            raise ArgumentTypeError(
                f"the experiment function must return a dict of JSON-able results; got {type(value).__name__}"
            )
        plain = to_json_value(value, where="the experiment function's result", allow_nan=True)
        text: str | None = json.dumps(plain, ensure_ascii=False, allow_nan=True)
        error: Exception | None = None
    except Exception as exc:
        text, error = None, exc
    return _Outcome(text, error, started, utc_now(), time.perf_counter() - begin)


def run_cells(
    db: ExperimentDatabase,
    cells: list[tuple[str, dict[str, Any]]],
    fn: Callable[[dict[str, Any]], Any],
    *,
    workers: int,
    on_error: str,
    progress: bool,
    wait: bool,
    stale_after: float,
    desc: str,
) -> RunStats:
    """Run every unfinished cell once; see the module's description.

    Parameters
    ----------
    db : ExperimentDatabase
        The experiment's database connection.
    cells : list of (key, configuration)
        The grid, in order.
    fn : callable
        ``fn(configuration) -> dict`` of JSON-able results.
    workers : int
        Cells computed at once (threads; 1 runs ``fn`` in the calling thread).
    on_error : {"raise", "skip"}
        What a cell whose ``fn`` raises does to the run: stop it and re-raise (after the cells in flight are
        stored), or be recorded and skipped.
    progress : bool
        Show a progress bar.
    wait : bool
        Wait for the cells other processes hold.
    stale_after : float
        Seconds without a heartbeat after which another process's claim is taken over.
    desc : str
        The progress bar's label.

    Returns
    -------
    RunStats

    Raises
    ------
    Exception
        The first exception of ``fn`` when ``on_error="raise"``.
    KeyboardInterrupt
        After Ctrl-C, once the cells in flight are stored (or at once on a second Ctrl-C, dropping them).
    """
    from tqdm.auto import tqdm

    stats = RunStats(total=len(cells))
    finished = db.finished_keys()
    todo = deque((key, config) for key, config in cells if key not in finished)
    stats.skipped = len(cells) - len(todo)
    deferred: list[tuple[str, dict[str, Any]]] = []
    held: dict[str, dict[str, Any]] = {}
    in_flight: dict[Future[_Outcome], str] = {}
    failure: list[Exception] = []
    stop = threading.Event()
    executor = ThreadPoolExecutor(workers, thread_name_prefix="fastprobe-experiment") if workers > 1 else None
    bar = tqdm(
        total=len(cells), initial=stats.skipped, desc=desc, unit="cell", disable=not progress, dynamic_ncols=True
    )

    def settle(key: str, outcome: _Outcome) -> None:
        config = canonical_json(held.pop(key))
        if outcome.error is None and outcome.result is not None:
            if not db.finish(key, config, outcome.result, outcome.started_at, outcome.finished_at, outcome.seconds):
                LOG.info("cell %s was stored by another process first; this run's result was dropped", key[:12])
            stats.ran += 1
            bar.update(1)
            return
        error = outcome.error
        assert error is not None
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        db.record_error(key, config, f"{type(error).__name__}: {error}", text, utc_now())
        stats.failed += 1
        bar.set_postfix(failed=stats.failed)
        LOG.warning("cell %s failed: %s: %s", key[:12], type(error).__name__, error)
        if on_error == "raise":
            failure.append(error)

    def going() -> bool:
        return not stop.is_set() and not failure

    try:
        with graceful_interrupt(stop), _Heartbeat(db, min(60.0, max(0.05, stale_after / 10))):
            while True:
                while todo and len(in_flight) < workers and going():
                    key, config = todo.popleft()
                    state = db.claim(key, stale_after)
                    if state == FINISHED:
                        stats.by_others += 1
                        bar.update(1)
                    elif state == BUSY:
                        deferred.append((key, config))
                    else:
                        held[key] = config
                        if executor is None:
                            settle(key, _attempt(fn, config))
                        else:
                            in_flight[executor.submit(_attempt, fn, config)] = key
                if in_flight:
                    done, _ = wait_futures(in_flight, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        settle(in_flight.pop(future), future.result())
                elif todo and going():
                    continue
                elif deferred and wait and going():
                    stop.wait(POLL_S)
                    todo.extend(deferred)
                    deferred.clear()
                else:
                    break
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.release_all()  # every claim of this run, including one committed just before an abort
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        bar.close()
    stats.left_busy = len(deferred)
    if failure:
        raise failure[0]
    if stop.is_set():
        stats.interrupted = True
        raise KeyboardInterrupt(
            f"experiment {db.experiment!r} stopped by Ctrl-C after {stats.ran} cells; run it again to resume"
        )
    return stats
