"""Resumable experiments: a named grid whose cells are computed once each, with results in a SQLite file.

An :class:`Experiment` is a grid (models, sites or layers, poolings, classifiers, targets, controls, folds, seeds:
any axes) and a function computing one cell. :meth:`Experiment.run` calls the function for every cell the database
has no result for, and commits each result the moment it is known, so:

- running the experiment again computes only what is missing (finished cells are skipped);
- a run killed at any moment (SIGKILL included) loses no finished cell and leaves no partial row;
- several processes running the same experiment share its cells through claims and never compute one twice;
- Ctrl-C stops after the cells in flight are stored (a second Ctrl-C aborts them);
- the results come back as a pandas DataFrame (a list of dicts without pandas), or as CSV or Parquet files.

Each cell is keyed by :func:`cell_key`, the SHA-256 of the canonical JSON of the experiment's name and the cell's
full configuration (its grid values and the experiment's fixed settings). The database is one SQLite file with no
server (default ``<fastprobe cache root>/experiments.sqlite``); :mod:`fastprobe.experiments.database` describes its
tables, format version :data:`FORMAT_VERSION`. A file of a newer format version is refused with a request to
upgrade fastprobe.

Example::

    from fastprobe.experiments import Experiment

    experiment = Experiment(
        "cities-probes",
        {"layer": list(range(30)), "classifier": ["logistic_regression", "ridge_regression"], "seed": [0, 1, 2]},
        fixed={"data": data_hash, "n_folds": 5},
    )

    def one_cell(cell):
        accuracy = ...  # fit and score the probe the cell describes
        return {"accuracy": accuracy}

    table = experiment.run(one_cell)  # again after a crash: only the missing cells run
    experiment.to_csv("cities.csv")
"""

from __future__ import annotations

from fastprobe.experiments.database import FORMAT_VERSION
from fastprobe.experiments.experiment import (
    DEFAULT_DATABASE_NAME,
    ON_ERROR,
    Experiment,
    ExperimentStatus,
    default_database_path,
)
from fastprobe.experiments.grid import canonical_json, cell_key
from fastprobe.experiments.runner import RunStats

__all__ = [
    "DEFAULT_DATABASE_NAME",
    "FORMAT_VERSION",
    "ON_ERROR",
    "Experiment",
    "ExperimentStatus",
    "RunStats",
    "canonical_json",
    "cell_key",
    "default_database_path",
]
