"""The probing-experiment example, shortened, on the real SmolLM2: results in SQLite, a rerun resumes."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def example() -> Any:
    spec = importlib.util.spec_from_file_location("probing_experiment", ROOT / "examples" / "probing_experiment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures("smollm2_path", "exact_cache")
def test_the_experiment_runs_resumes_and_separates_truth_from_its_controls(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = example().main
    db = tmp_path / "exp.sqlite"
    rows = run(db, ["embed", 16], tmp_path / "plot.png", progress=False)
    assert len(rows) == 6 and (tmp_path / "plot.png").stat().st_size > 1000
    by = {(r["layer"], r["control"]): r for r in rows}
    assert by[(16, "none")]["accuracy"] > 0.75 > by[("embed", "none")]["accuracy"]
    assert abs(by[(16, "permutation")]["accuracy"] - 0.5) < 0.1
    assert by[(16, "none")]["compression"] > 1.2 > by[(16, "permutation")]["compression"]
    assert "ran=6" in capsys.readouterr().out
    again = run(db, ["embed", 16], None, progress=False)
    out = capsys.readouterr().out
    assert "ran=0" in out and "skipped=6" in out
    assert [(r["layer"], r["control"], r["accuracy"]) for r in again] == [
        (r["layer"], r["control"], r["accuracy"]) for r in rows
    ]
