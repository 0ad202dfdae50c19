"""Resumable experiments: skip finished cells, survive SIGKILL and Ctrl-C, share a grid between processes, export."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastprobe.exceptions import (
    ArgumentTypeError,
    FastprobeIOError,
    InvalidInputError,
    MissingDependencyError,
    UnknownOptionError,
)
from fastprobe.experiments import FORMAT_VERSION, Experiment, cell_key
from fastprobe.experiments.database import host_identity

GRID: dict[str, list[Any]] = {"layer": [0, 1, 2], "classifier": ["logistic_regression", "ridge_regression"]}

# A child process running the experiment "child" over cells i = 0..n-1. Each call appends "start <i> <pid>" to the
# log with O_APPEND (one write per line), sleeps, and returns results the parent can check exactly.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from fastprobe.experiments import Experiment

    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when the suite runs with SIGINT ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    db, log, n, sleep, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    workers, stale_after = int(sys.argv[6]), float(sys.argv[7])
    experiment = Experiment("child", {"i": list(range(n))}, fixed={"data": "d0"}, path=db)

    def fn(cell):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"start {cell['i']} {os.getpid()}\\n".encode())
        os.close(fd)
        time.sleep(sleep)
        return {"square": cell["i"] ** 2, "pid": os.getpid(), "payload": "x" * 2000}

    print("ready", flush=True)
    while go and not Path(go).exists():
        time.sleep(0.01)
    experiment.run(fn, progress=False, workers=workers, stale_after=stale_after)
    print("done", flush=True)
    """
)


def child_experiment(db: Path, n: int) -> Experiment:
    return Experiment("child", {"i": list(range(n))}, fixed={"data": "d0"}, path=db)


def start_child(
    tmp_path: Path,
    db: Path,
    log: Path,
    n: int,
    sleep: float,
    go: Path | None = None,
    workers: int = 1,
    stale_after: float = 600.0,
) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(db), str(log), str(n), str(sleep), str(go or ""), str(workers)]
    args.append(str(stale_after))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def stop(child: subprocess.Popen) -> None:
    """Kill a child still running (a failed test) and close its pipes."""
    if child.poll() is None:
        child.kill()
    child.communicate()


def starts(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    return [(int(i), int(pid)) for _, i, pid in (line.split() for line in log.read_text().splitlines())]


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def stored_rows(db: Path) -> list[dict[str, Any]]:
    """Every result row, read with sqlite3 directly (the documented table), after an integrity check."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        cursor = conn.execute("SELECT * FROM results")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    conn.close()
    return rows


def check_complete(rows: list[dict[str, Any]]) -> set[int]:
    """Assert every row is whole and right; return the finished cells' i."""
    done = set()
    for row in rows:
        assert all(value is not None for value in row.values())
        config, result = json.loads(row["config"]), json.loads(row["result"])
        assert config == {"data": "d0", "i": config["i"]}
        assert result == {"square": config["i"] ** 2, "pid": row["pid"], "payload": "x" * 2000}
        assert row["key"] == cell_key("child", config)
        assert row["seconds"] >= 0 and row["finished_at"] >= row["started_at"]
        done.add(config["i"])
    return done


class Counter:
    def __init__(self, fail_on: set[int] | None = None, interrupt_on: int | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_on = fail_on or set()
        self.interrupt_on = interrupt_on

    def __call__(self, cell: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(cell)
        if len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        if cell["layer"] in self.fail_on:
            raise ValueError(f"boom at layer {cell['layer']}")
        return {"accuracy": cell["layer"] / 10, "name": cell["classifier"][:5]}


# -- grid and keys ------------------------------------------------------------------------------------------------


def test_cells_are_the_product_in_grid_order_with_fixed_settings(tmp_path: Path) -> None:
    experiment = Experiment("demo", GRID, fixed={"data": "abc", "kwargs": {"C": 1.0}}, path=tmp_path / "e.sqlite")
    cells = list(experiment.cells())
    assert len(experiment) == 6
    assert cells[:3] == [
        {"layer": 0, "classifier": "logistic_regression", "data": "abc", "kwargs": {"C": 1.0}},
        {"layer": 0, "classifier": "ridge_regression", "data": "abc", "kwargs": {"C": 1.0}},
        {"layer": 1, "classifier": "logistic_regression", "data": "abc", "kwargs": {"C": 1.0}},
    ]
    assert experiment.key(cells[0]) == experiment.key({"layer": 0, "classifier": "logistic_regression"})


def test_cell_key_is_the_sha256_of_the_canonical_json() -> None:
    text = '{"config":{"layer":3,"model":"m","pool":[1,"é"]},"experiment":"demo"}'
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert cell_key("demo", {"model": "m", "pool": (1, "é"), "layer": 3}) == expected
    assert cell_key("demo", {"layer": np.int64(3), "model": "m", "pool": np.array([1, "é"], dtype=object)}) == expected


def test_keys_depend_on_name_fixed_settings_and_types_but_not_axis_order(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    a = Experiment("demo", {"layer": [1], "seed": [0]}, fixed={"data": "h1"}, path=db)
    b = Experiment("demo", {"seed": [0], "layer": [1]}, fixed={"data": "h1"}, path=db)
    c = Experiment("demo", {"layer": [1], "seed": [0]}, fixed={"data": "h2"}, path=db)
    d = Experiment("other", {"layer": [1], "seed": [0]}, fixed={"data": "h1"}, path=db)
    e = Experiment("demo", {"layer": [1.0], "seed": [0]}, fixed={"data": "h1"}, path=db)
    keys = [x.key(next(x.cells())) for x in (a, b, c, d, e)]
    assert keys[0] == keys[1]
    assert len(set(keys)) == 4


def test_keys_are_stable_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    experiment = Experiment("demo", GRID, fixed={"data": "abc", "kwargs": {"C": 0.5}}, path=db)
    code = (
        "import json, sys\nfrom fastprobe.experiments import Experiment\n"
        f"e = Experiment('demo', {GRID!r}, fixed={{'kwargs': {{'C': 0.5}}, 'data': 'abc'}}, path=sys.argv[1])\n"
        "print(json.dumps([e.key(c) for c in e.cells()]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [experiment.key(cell) for cell in experiment.cells()]


@pytest.mark.parametrize(
    ("grid", "fixed", "error", "match"),
    [
        ({"classifier": [object()]}, None, ArgumentTypeError, r"grid axis 'classifier' holds <object .* type object"),
        ({"layer": [{1, 2}]}, None, ArgumentTypeError, r"grid axis 'layer' holds \{1, 2\} of type set"),
        ({"layer": [{1: "a"}]}, None, ArgumentTypeError, r"the key 1 \(int\); JSON dict keys must be str"),
        ({"alpha": [0.1, float("nan")]}, None, InvalidInputError, r"grid axis 'alpha' holds nan; expected a finite"),
        ({"layer": []}, None, InvalidInputError, r"grid axis 'layer' has no value"),
        ({"layer": [1, 2, 1]}, None, InvalidInputError, r"grid axis 'layer' lists the value 1 twice"),
        ({"pooling": "mean"}, None, ArgumentTypeError, r"grid axis 'pooling' must be a list of values; got str"),
        ([("layer", [1])], None, ArgumentTypeError, r"grid must be a mapping"),
        ({"layer": [1]}, {"layer": 2}, InvalidInputError, r"fixed setting 'layer' is also a grid axis"),
        ({"layer": [1]}, {"estimator": object()}, ArgumentTypeError, r"fixed setting 'estimator' holds"),
    ],
)
def test_bad_grids_are_refused(tmp_path: Path, grid: Any, fixed: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Experiment("demo", grid, fixed=fixed, path=tmp_path / "e.sqlite")


def test_default_path_is_in_the_cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTPROBE_HOME", str(tmp_path / "home"))
    experiment = Experiment("demo", GRID)
    assert experiment.path == tmp_path / "home" / "experiments.sqlite"
    assert experiment.path.is_file()


# -- running ------------------------------------------------------------------------------------------------------


def test_rerun_skips_finished_cells(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    first = Counter()
    rows = Experiment("demo", GRID, path=db).run(first, progress=False, as_frame=False)
    assert len(first.calls) == 6 and len(rows) == 6
    again = Counter()
    experiment = Experiment("demo", GRID, path=db)
    assert experiment.run(again, progress=False, as_frame=False) == rows
    assert again.calls == []
    assert experiment.last_run is not None and (experiment.last_run.skipped, experiment.last_run.ran) == (6, 0)
    bigger = Experiment("demo", {**GRID, "layer": [0, 1, 2, 3]}, path=db)
    more = Counter()
    bigger.run(more, progress=False)
    assert [cell["layer"] for cell in more.calls] == [3, 3]


def test_results_round_trip_and_exports(tmp_path: Path) -> None:
    experiment = Experiment("demo", GRID, fixed={"kwargs": {"C": 1.0}}, path=tmp_path / "e.sqlite")

    def fn(cell: dict[str, Any]) -> dict[str, Any]:
        score = np.float32(0.25) if cell["layer"] == 1 else float("nan")
        return {"accuracy": score, "layer": cell["layer"] * 2, "curve": np.arange(2), "extra": {"n": 3}}

    rows = experiment.run(fn, progress=False, as_frame=False)
    cells = list(experiment.cells())
    assert [(row["layer"], row["classifier"]) for row in rows] == [(c["layer"], c["classifier"]) for c in cells]
    first = rows[2]
    assert list(first)[:7] == ["layer", "classifier", "kwargs.C", "accuracy", "result.layer", "curve", "extra.n"]
    assert (first["kwargs.C"], first["accuracy"], first["result.layer"], first["curve"], first["extra.n"]) == (
        1.0, 0.25, 2, [0, 1], 3,
    )  # fmt: skip
    assert math.isnan(rows[0]["accuracy"])
    assert list(first)[7:] == ["seconds", "version", "started_at", "finished_at", "host", "pid", "cell_key"]
    assert first["pid"] == os.getpid() and first["cell_key"] == experiment.key(list(experiment.cells())[2])

    written = experiment.to_csv(tmp_path / "out.csv")
    with written.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["classifier"] for row in table] == [row["classifier"] for row in rows]
    assert table[2]["accuracy"] == "0.25" and table[2]["curve"] == "[0,1]" and table[0]["accuracy"] == "nan"
    assert table[2]["cell_key"] == first["cell_key"]
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []

    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    experiment.to_parquet(tmp_path / "out.parquet")
    back = pyarrow_parquet.read_table(tmp_path / "out.parquet").to_pylist()
    assert back[2] == first and len(back) == 6


def test_results_as_frame(tmp_path: Path) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    experiment.run(Counter(), progress=False)
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert isinstance(experiment.results(), list)
        with pytest.raises(MissingDependencyError, match="needs the pandas package"):
            experiment.results(as_frame=True)
        return
    frame = experiment.results()
    assert list(frame["layer"]) == [0, 0, 1, 1, 2, 2] and list(frame["accuracy"]) == [0, 0, 0.1, 0.1, 0.2, 0.2]


def test_results_of_cells_outside_the_grid_only_on_request(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    Experiment("demo", GRID, path=db).run(Counter(), progress=False)
    smaller = Experiment("demo", {"layer": [2], "classifier": GRID["classifier"]}, path=db)
    assert [row["layer"] for row in smaller.results(as_frame=False)] == [2, 2]
    assert sorted(row["layer"] for row in smaller.results(as_frame=False, all_rows=True)) == [0, 0, 1, 1, 2, 2]


def test_progress_bar_counts_finished_cells_from_the_start(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "e.sqlite"
    Experiment("demo", {**GRID, "layer": [0]}, path=db).run(Counter(), progress=False)
    Experiment("demo", GRID, path=db).run(Counter(), progress=True)
    err = capsys.readouterr().err
    assert "experiment demo" in err and "2/6" in err and "6/6" in err


def test_workers_run_every_cell_once(tmp_path: Path) -> None:
    counter = Counter()
    experiment = Experiment("demo", {**GRID, "seed": list(range(5))}, path=tmp_path / "e.sqlite")
    rows = experiment.run(counter, progress=False, workers=4, as_frame=False)
    keys = sorted(experiment.key(cell) for cell in counter.calls)
    assert keys == sorted(experiment.key(cell) for cell in experiment.cells())
    assert [row["cell_key"] for row in rows] == [experiment.key(cell) for cell in experiment.cells()]


@pytest.mark.parametrize("workers", [1, 3])
def test_a_failing_cell_is_recorded_released_and_reraised(tmp_path: Path, workers: int) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    with pytest.raises(ValueError, match="boom at layer 1"):
        experiment.run(Counter(fail_on={1}), progress=False, workers=workers)
    status = experiment.status()
    # one worker stops at the first failure; with three, the other layer-1 cell may be in flight and fail as well
    assert status.running == 0 and status.failed == (1 if workers == 1 else status.failed) and status.failed in (1, 2)
    assert 2 <= status.finished <= 6 - status.failed
    errors = experiment.errors()
    assert len(errors) == status.failed
    for error in errors:
        assert error["error"] == "ValueError: boom at layer 1" and error["attempts"] == 1
        assert error["config"]["layer"] == 1 and "Traceback" in error["traceback"]
    retry = Counter()
    experiment.run(retry, progress=False)
    assert len(retry.calls) == 6 - status.finished
    assert experiment.errors() == [] and experiment.status().finished == 6


def test_on_error_skip_goes_on_and_retries_next_time(tmp_path: Path) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    rows = experiment.run(Counter(fail_on={1}), progress=False, on_error="skip", as_frame=False)
    assert [row["layer"] for row in rows] == [0, 0, 2, 2]
    assert experiment.last_run is not None and experiment.last_run.failed == 2
    again = Counter(fail_on={1})
    experiment.run(again, progress=False, on_error="skip")
    assert [cell["layer"] for cell in again.calls] == [1, 1]
    assert [error["attempts"] for error in experiment.errors()] == [2, 2]


@pytest.mark.parametrize(
    ("fn", "error", "match"),
    [
        (lambda cell: [1, 2], ArgumentTypeError, "must return a dict of JSON-able results; got list"),
        (lambda cell: {"model": object()}, ArgumentTypeError, "the experiment function's result holds <object"),
    ],
)
def test_results_that_are_not_json_are_refused(tmp_path: Path, fn: Any, error: type, match: str) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    with pytest.raises(error, match=match):
        experiment.run(fn, progress=False)
    assert experiment.status().finished == 0


def test_bad_run_arguments(tmp_path: Path) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    with pytest.raises(UnknownOptionError, match="on_error='ignore'; expected one of: raise, skip"):
        experiment.run(Counter(), on_error="ignore")
    with pytest.raises(InvalidInputError, match="workers must be at least 1; got 0"):
        experiment.run(Counter(), workers=0)
    with pytest.raises(ArgumentTypeError, match="fn must be callable"):
        experiment.run("fit")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="stale_after must be a positive number of seconds; got 0"):
        experiment.run(Counter(), stale_after=0)


# -- Ctrl-C -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_keyboard_interrupt_in_fn_keeps_finished_cells_and_releases_the_claim(tmp_path: Path, workers: int) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    with pytest.raises(KeyboardInterrupt):
        experiment.run(Counter(interrupt_on=3), progress=False, workers=workers)
    status = experiment.status()
    assert status.running == 0 and 2 - (workers - 1) <= status.finished <= 2 + (workers - 1)
    rest = Counter()
    experiment.run(rest, progress=False)
    assert len(rest.calls) == 6 - status.finished and experiment.status().finished == 6


@pytest.mark.parametrize("workers", [1, 2])
def test_sigint_stops_after_the_cells_in_flight(tmp_path: Path, workers: int) -> None:
    db, log = tmp_path / "e.sqlite", tmp_path / "log"
    child = start_child(tmp_path, db, log, n=20, sleep=0.4, workers=workers)
    try:
        wait_for(lambda: len(starts(log)) >= 2)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        stop(child)
    assert child.returncode != 0
    assert "stopping after the cells in flight" in err and "KeyboardInterrupt" in err and "run it again" in err
    started = {i for i, _ in starts(log)}
    assert check_complete(stored_rows(db)) == started  # the cells in flight were finished, no other one begun
    assert child_experiment(db, 20).status().running == 0


def test_a_second_sigint_aborts_the_cell_in_flight(tmp_path: Path) -> None:
    db, log = tmp_path / "e.sqlite", tmp_path / "log"
    child = start_child(tmp_path, db, log, n=20, sleep=5.0)
    try:
        wait_for(lambda: len(starts(log)) >= 1)
        begin = time.monotonic()
        child.send_signal(signal.SIGINT)
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        stop(child)
    assert child.returncode != 0 and "KeyboardInterrupt" in err and time.monotonic() - begin < 4.0
    assert starts(log) == [(0, child.pid)] and stored_rows(db) == []
    status = child_experiment(db, 20).status()
    assert (status.finished, status.running, status.failed) == (0, 0, 0)


# -- crashes and concurrency --------------------------------------------------------------------------------------


def test_sigkill_mid_cell_loses_nothing_and_the_rerun_finishes_the_rest(tmp_path: Path) -> None:
    db, log = tmp_path / "e.sqlite", tmp_path / "log"
    child = start_child(tmp_path, db, log, n=30, sleep=0.1)
    wait_for(lambda: len(starts(log)) >= 5)
    child.kill()
    child.communicate()  # reap it and close its pipes
    started = [i for i, _ in starts(log)]
    done = check_complete(stored_rows(db))
    assert len(done) >= 4 and done <= set(started) and set(started) - done <= {started[-1]}
    experiment = child_experiment(db, 30)
    status = experiment.status()
    assert (status.finished, status.running) == (len(done), len(set(started) - done))
    ran: list[int] = []

    def fn(cell: dict[str, Any]) -> dict[str, Any]:
        ran.append(cell["i"])
        return {"square": cell["i"] ** 2, "pid": os.getpid(), "payload": "x" * 2000}

    experiment.run(fn, progress=False)  # the dead process's claim is taken over at once
    assert sorted(ran) == sorted(set(range(30)) - done)
    assert check_complete(stored_rows(db)) == set(range(30))


def test_sigkill_at_random_moments_never_corrupts(tmp_path: Path) -> None:
    db, log = tmp_path / "e.sqlite", tmp_path / "log"
    rng = np.random.default_rng(0)
    for _ in range(3):
        child = start_child(tmp_path, db, log, n=400, sleep=0.0)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        child.kill()
        child.communicate()  # reap it (a zombie would still answer kill(pid, 0)) and close its pipes
        check_complete(stored_rows(db))
    done = check_complete(stored_rows(db))
    assert len(done) > 0
    fresh: list[int] = []

    def fn(cell: dict[str, Any]) -> dict[str, Any]:
        fresh.append(cell["i"])
        return {"square": cell["i"] ** 2, "pid": os.getpid(), "payload": "x" * 2000}

    child_experiment(db, 400).run(fn, progress=False)
    assert sorted(fresh) == sorted(set(range(400)) - done)
    assert check_complete(stored_rows(db)) == set(range(400))


@pytest.mark.parametrize(
    ("n", "sleep", "stale_after"),
    [(30, 0.05, 600.0), (6, 0.8, 0.5)],  # the second: cells outlast stale_after, so only heartbeats keep claims
)
def test_two_processes_share_the_grid_without_duplicates(
    tmp_path: Path, n: int, sleep: float, stale_after: float
) -> None:
    db, log, go = tmp_path / "e.sqlite", tmp_path / "log", tmp_path / "go"
    child_experiment(db, n)  # create the database before the race
    children = [start_child(tmp_path, db, log, n=n, sleep=sleep, go=go, stale_after=stale_after) for _ in range(2)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out == "done\n"
    runs = starts(log)
    assert sorted(i for i, _ in runs) == list(range(n))  # each cell ran exactly once in total
    assert {pid for _, pid in runs} == {child.pid for child in children}
    rows = stored_rows(db)
    assert check_complete(rows) == set(range(n))
    assert {json.loads(row["config"])["i"]: row["pid"] for row in rows} == dict(runs)


def claim(db: Path, key: str, host: str, pid: int, heartbeat: float) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO claims (key, experiment, host, pid, token, claimed_at, heartbeat_at) VALUES (?,?,?,?,?,?,?)",
            (key, "demo", host, pid, "someone-else", heartbeat, heartbeat),
        )
    conn.close()


def test_stale_claims_are_taken_over_and_live_ones_respected(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    experiment = Experiment("demo", GRID, path=db)
    keys = [experiment.key(cell) for cell in experiment.cells()]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = time.time()
    claim(db, keys[0], host_identity(), gone.pid, now)  # this host, process gone
    claim(db, keys[1], host_identity(), os.getpid(), now - 3600)  # alive, but no heartbeat for an hour
    claim(db, keys[2], host_identity(), os.getpid(), now)  # alive and beating
    claim(db, keys[3], "elsewhere/pid:[1]", 1, now)  # another host, fresh heartbeat
    assert experiment.status().running == 4
    counter = Counter()
    experiment.run(counter, progress=False, wait=False)
    assert sorted(experiment.key(cell) for cell in counter.calls) == sorted([keys[0], keys[1], keys[4], keys[5]])
    assert experiment.last_run is not None and experiment.last_run.left_busy == 2
    assert experiment.status() == type(experiment.status())(total=6, finished=4, running=2, failed=0, pending=0)
    begin = time.monotonic()
    later = Counter()
    experiment.run(later, progress=False, stale_after=1.0)  # waits until the two claims are a second old
    assert sorted(experiment.key(cell) for cell in later.calls) == sorted(keys[2:4])
    assert 0.5 < time.monotonic() - begin < 30 and experiment.status().finished == 6


# -- the database file --------------------------------------------------------------------------------------------


def test_a_newer_format_version_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    Experiment("demo", GRID, path=db).run(Counter(), progress=False)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (str(FORMAT_VERSION + 1),))
    conn.close()
    before = db.read_bytes()
    newer = r"written by a newer fastprobe \(experiment database format version 2;"
    with pytest.raises(InvalidInputError, match=newer):
        Experiment("demo", GRID, path=db)
    with pytest.raises(InvalidInputError, match=r"reads format version 1 and older\): upgrade fastprobe"):
        Experiment("other", GRID, path=db)
    assert db.read_bytes() == before


def test_files_that_are_not_experiment_databases_are_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.close()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n")
    for path, match in [
        (other, r"is a SQLite database but not a fastprobe experiment database \(its tables: \['meta', 'people'\]\)"),
        (text, r"is not a SQLite database \(its first bytes are b'not a database a'\)"),
        (tmp_path, r"is a directory; expected a SQLite file"),
    ]:
        before = path.read_bytes() if path.is_file() else None
        with pytest.raises(InvalidInputError, match=match):
            Experiment("demo", GRID, path=path)
        assert (path.read_bytes() if path.is_file() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "other.sqlite"]


def test_the_database_is_in_wal_mode_with_format_metadata(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    Experiment("demo", GRID, path=db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    conn.close()
    assert meta["application"] == "fastprobe.experiments" and meta["format_version"] == "1"


def test_a_path_that_cannot_be_created_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FastprobeIOError, match=r"experiment database .*file/sub/e.sqlite could not be created"):
        Experiment("demo", GRID, path=tmp_path / "file" / "sub" / "e.sqlite")


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = Experiment("demo", GRID, path=tmp_path / "e.sqlite")
    experiment.run(Counter(), progress=False)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match="needs the pyarrow package; install it with: pip install pyarrow"):
        experiment.to_parquet(tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
