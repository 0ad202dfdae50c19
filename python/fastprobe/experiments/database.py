"""The experiment database: one SQLite file (WAL mode), any number of experiments, any number of processes.

Tables (format version 1):

- ``meta(key, value)``: ``application = fastprobe.experiments``, ``format_version = 1`` and the version of fastprobe
  that created the file.
- ``results``: one row per finished cell, keyed by the cell key: experiment name, configuration (canonical JSON),
  result (JSON), the fastprobe version that computed it, started and finished times (ISO 8601, UTC), seconds, host
  name and process id. A row is written in one transaction together with the removal of the cell's claim, so it is
  either complete or absent.
- ``claims``: the cells being computed: cell key, experiment, the claimer's host identity (host name and PID
  namespace), process id, run token, claim time and last heartbeat (Unix seconds).
- ``errors``: the last failure of each cell not yet finished (the exception, its traceback and the attempt count).

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode a commit is atomic and survives the death of
the process at any instant (SIGKILL included) whatever ``synchronous`` says; ``FULL`` adds one ``fsync`` of the WAL per
commit, so a finished cell also survives a power cut or an operating-system crash. One ``fsync`` per cell is nothing
next to the seconds or hours a cell takes, so the stronger setting costs nothing worth saving.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastprobe._core import __version__
from fastprobe.exceptions import ArgumentTypeError, FastprobeIOError, InvalidInputError

__all__ = [
    "APPLICATION",
    "BUSY",
    "CLAIMED",
    "FINISHED",
    "FORMAT_VERSION",
    "ExperimentDatabase",
    "beat",
    "connect",
    "host_identity",
    "open_database",
    "pid_alive",
    "transaction",
]

LOG = logging.getLogger("fastprobe.experiments")

#: The experiment database's format version this fastprobe writes (and the newest it reads).
FORMAT_VERSION = 1
#: ``meta.application``: what marks a SQLite file as an experiment database.
APPLICATION = "fastprobe.experiments"
#: Outcomes of :meth:`ExperimentDatabase.claim`.
CLAIMED, FINISHED, BUSY = "claimed", "finished", "busy"
#: How long a statement waits for another process's write lock before failing (seconds).
BUSY_TIMEOUT_S = 120.0

_HEADER = b"SQLite format 3\x00"
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE results (key TEXT PRIMARY KEY, experiment TEXT NOT NULL, config TEXT NOT NULL, "
    "result TEXT NOT NULL, version TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, "
    "seconds REAL NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL)",
    "CREATE INDEX results_by_experiment ON results (experiment)",
    "CREATE TABLE claims (key TEXT PRIMARY KEY, experiment TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, "
    "token TEXT NOT NULL, claimed_at REAL NOT NULL, heartbeat_at REAL NOT NULL)",
    "CREATE TABLE errors (key TEXT PRIMARY KEY, experiment TEXT NOT NULL, config TEXT NOT NULL, error TEXT NOT NULL, "
    "traceback TEXT NOT NULL, attempts INTEGER NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL, "
    "host TEXT NOT NULL, pid INTEGER NOT NULL)",
)
_TABLES = ("meta", "results", "claims", "errors")
_RESULT_COLUMNS = "key, config, result, version, started_at, finished_at, seconds, host, pid"


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block as one write transaction (``BEGIN IMMEDIATE``): committed when it ends, rolled back if it raises.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection in autocommit mode (``isolation_level=None``), as :func:`open_database` returns.

    Yields
    ------
    sqlite3.Connection
        ``conn``.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection in autocommit mode with the busy timeout; no check of what the file holds."""
    return sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)


def open_database(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating it if needed) an experiment database, in WAL mode with ``synchronous=FULL``.

    A file that exists is checked before anything is written to it, so a refused file is left as it was.

    Parameters
    ----------
    path : str or path-like
        The SQLite file. Missing parent directories are created.

    Returns
    -------
    sqlite3.Connection
        In autocommit mode: write through :func:`transaction`.

    Raises
    ------
    InvalidInputError
        If the file is not a SQLite database, is a SQLite database of something else, or was written by a newer
        fastprobe (a newer format version).
    FastprobeIOError
        If the file or its directory cannot be created or opened.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a str or path-like; got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"experiment database {path} is a directory; expected a SQLite file")
    existing = path.is_file() and path.stat().st_size > 0
    if existing:
        with path.open("rb") as handle:
            header = handle.read(len(_HEADER))
        if header != _HEADER:
            raise InvalidInputError(
                f"{path} is not a SQLite database (its first bytes are {header[:16]!r}); expected a fastprobe "
                "experiment database, or a path where one can be created"
            )
    try:
        if not existing:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise FastprobeIOError(f"experiment database {path} could not be created or opened: {exc}") from exc
    try:
        if existing:
            _check_schema(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        with transaction(conn):
            if _check_schema(conn, path) == "empty":
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("application", APPLICATION),
                        ("format_version", str(FORMAT_VERSION)),
                        ("created_by", __version__),
                    ],
                )
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise InvalidInputError(f"{path} could not be opened as a fastprobe experiment database: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _check_schema(conn: sqlite3.Connection, path: Path) -> str:
    """Return ``"empty"`` for a database with no table, ``"ok"`` for an experiment database this fastprobe reads."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return "empty"
    foreign = f"{path} is a SQLite database but not a fastprobe experiment database (its tables: {sorted(tables)})"
    if "meta" not in tables:
        raise InvalidInputError(foreign)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        raise InvalidInputError(foreign) from None
    if meta.get("application") != APPLICATION:
        raise InvalidInputError(foreign)
    text = meta.get("format_version")
    try:
        version = int(str(text))
    except ValueError:
        raise InvalidInputError(f"{path}: format_version is {text!r}; expected an integer") from None
    if version > FORMAT_VERSION:
        raise InvalidInputError(
            f"{path} was written by a newer fastprobe (experiment database format version {version}; fastprobe "
            f"{__version__} reads format version {FORMAT_VERSION} and older): upgrade fastprobe"
        )
    if version < 1:
        raise InvalidInputError(f"{path}: format_version is {version}; expected 1 to {FORMAT_VERSION}")
    missing = [name for name in _TABLES if name not in tables]
    if missing:
        raise InvalidInputError(f"{path} is an incomplete experiment database: it lacks the tables {missing}")
    return "ok"


def host_identity() -> str:
    """Return what tells processes of this machine apart from others': the host name and, on Linux, PID namespace.

    Two containers that share a database on a volume may have the same host name but see different processes; the
    PID namespace keeps a claim from one from being judged dead by the other.

    Returns
    -------
    str
    """
    name = socket.gethostname()
    with contextlib.suppress(OSError):
        return f"{name}/{os.readlink('/proc/self/ns/pid')}"
    return name


def pid_alive(pid: int) -> bool:
    """Return whether a process of this host (PID namespace) with this id exists and is not a zombie.

    Parameters
    ----------
    pid : int

    Returns
    -------
    bool
        True where the answer cannot be known (on Windows, ``os.kill`` would end the process instead of probing it).
    """
    if pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    return True


class ExperimentDatabase:
    """One process's connection to an experiment database, for one experiment.

    Parameters
    ----------
    path : str or path-like
        The SQLite file (see :func:`open_database`).
    experiment : str
        The experiment's name (rows are filtered by it).
    """

    def __init__(self, path: str | os.PathLike[str], experiment: str) -> None:
        self.path = Path(path)
        self.experiment = experiment
        self.hostname = socket.gethostname()
        self.identity = host_identity()
        self.pid = os.getpid()
        self.token = uuid.uuid4().hex
        self.conn = open_database(self.path)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> ExperimentDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished_keys(self) -> set[str]:
        """Return the keys of this experiment's finished cells."""
        rows = self.conn.execute("SELECT key FROM results WHERE experiment = ?", (self.experiment,))
        return {row[0] for row in rows}

    def is_finished(self, key: str) -> bool:
        """Return whether a cell has a result row."""
        return self.conn.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone() is not None

    def claim(self, key: str, stale_after: float) -> str:
        """Try to claim a cell for this run: :data:`CLAIMED`, :data:`FINISHED` (nothing to do) or :data:`BUSY`.

        In one ``BEGIN IMMEDIATE`` transaction: a finished cell is left alone; otherwise a claim row is inserted
        (``INSERT OR IGNORE``); an existing claim is taken over when it is stale, that is its process is gone (same
        host identity, no such live process) or its heartbeat is older than ``stale_after`` seconds.
        """
        with transaction(self.conn):
            if self.is_finished(key):
                return FINISHED
            now = time.time()
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO claims (key, experiment, host, pid, token, claimed_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, self.experiment, self.identity, self.pid, self.token, now, now),
            )
            if cursor.rowcount == 1:
                return CLAIMED
            host, pid, heartbeat = self.conn.execute(
                "SELECT host, pid, heartbeat_at FROM claims WHERE key = ?", (key,)
            ).fetchone()
            dead = host == self.identity and not pid_alive(int(pid))
            if not dead and now - float(heartbeat) <= stale_after:
                return BUSY
            self.conn.execute(
                "UPDATE claims SET host = ?, pid = ?, token = ?, claimed_at = ?, heartbeat_at = ? WHERE key = ?",
                (self.identity, self.pid, self.token, now, now, key),
            )
            why = "its process is gone" if dead else f"no heartbeat for {now - float(heartbeat):.0f} s"
            LOG.info("taking over cell %s of %s from pid %s on %s: %s", key[:12], self.experiment, pid, host, why)
            return CLAIMED

    def finish(self, key: str, config: str, result: str, started_at: str, finished_at: str, seconds: float) -> bool:
        """Store a finished cell and drop its claim and error, in one transaction; False if it was already stored."""
        with transaction(self.conn):
            cursor = self.conn.execute(
                f"INSERT OR IGNORE INTO results ({_RESULT_COLUMNS}, experiment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, config, result, __version__, started_at, finished_at, seconds, self.hostname, self.pid,
                 self.experiment),
            )  # fmt: skip
            self.conn.execute("DELETE FROM claims WHERE key = ? AND token = ?", (key, self.token))
            self.conn.execute("DELETE FROM errors WHERE key = ?", (key,))
        return cursor.rowcount == 1

    def release(self, key: str) -> None:
        """Drop this run's claim on a cell (the cell stays unfinished)."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM claims WHERE key = ? AND token = ?", (key, self.token))

    def release_all(self) -> None:
        """Drop every claim this run holds."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM claims WHERE token = ?", (self.token,))

    def record_error(self, key: str, config: str, error: str, traceback: str, at: str) -> None:
        """Record a cell's failure (replacing its previous one, counting attempts) and drop its claim."""
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO errors (key, experiment, config, error, traceback, attempts, version, at, host, pid) "
                "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET error = excluded.error, "
                "traceback = excluded.traceback, attempts = errors.attempts + 1, version = excluded.version, "
                "at = excluded.at, host = excluded.host, pid = excluded.pid",
                (key, self.experiment, config, error, traceback, __version__, at, self.hostname, self.pid),
            )
            self.conn.execute("DELETE FROM claims WHERE key = ? AND token = ?", (key, self.token))

    def result_rows(self) -> list[dict[str, Any]]:
        """Return this experiment's result rows (JSON columns still text), oldest first."""
        cursor = self.conn.execute(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE experiment = ? ORDER BY finished_at, key", (self.experiment,)
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def error_rows(self) -> list[dict[str, Any]]:
        """Return this experiment's recorded failures."""
        cursor = self.conn.execute(
            "SELECT key, config, error, traceback, attempts, version, at, host, pid FROM errors "
            "WHERE experiment = ? ORDER BY at, key",
            (self.experiment,),
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def claim_rows(self) -> list[dict[str, Any]]:
        """Return this experiment's current claims."""
        cursor = self.conn.execute(
            "SELECT key, host, pid, token, claimed_at, heartbeat_at FROM claims WHERE experiment = ? ORDER BY key",
            (self.experiment,),
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def beat(conn: sqlite3.Connection, token: str) -> None:
    """Refresh the heartbeat of every claim a run holds."""
    with transaction(conn):
        conn.execute("UPDATE claims SET heartbeat_at = ? WHERE token = ?", (time.time(), token))
