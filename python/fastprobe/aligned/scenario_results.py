"""The results of :func:`~fastprobe.aligned.run_scenarios`: every (scenario, attribute, kind) cell, tabled and drawn."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe import evaluation
from fastprobe.evaluation import REGRESSION_METRICS, CVResult
from fastprobe.exceptions import UnknownOptionError
from fastprobe.experiments import Experiment, RunStats
from fastprobe.probe.inspection import pyplot

__all__ = ["ScenarioResults", "check_choice"]

_LOWER_IS_BETTER = ("mse", "mae")


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise :class:`UnknownOptionError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise UnknownOptionError(f"unknown {name} {value!r}; expected one of: {', '.join(choices)}")
    return value


@dataclass
class ScenarioResults:
    """Every (scenario, attribute, kind) cell of :func:`run_scenarios`.

    Attributes
    ----------
    scenarios, attributes, layers : list of str
        ``layers``: the capture's site names.
    cells : dict
        ``(scenario, attribute, kind)`` to the cell's record: its configuration (``scenario``, ``attribute``,
        ``kind`` in ``"task"``, ``"control"``, ``"mdl"``, and the fixed settings) and its result. Every result has
        ``layers``, ``n_examples``, ``n_prompts``, ``n_missing_target``, ``n_missing_vector``; a task or control
        result ``<metric>_mean`` and ``<metric>_std`` (per layer, over folds x seeds) and ``records`` (per layer,
        seed and fold, as :class:`~fastprobe.evaluation.CVResult` keeps them); an MDL result ``fractions``,
        ``codelength``, ``uniform`` and ``compression`` (per seed and layer, bits) with ``<name>_mean`` and
        ``<name>_std`` over seeds.
    settings : dict
        The cells' fixed settings, the data's hash included.
    experiment : Experiment or None
        Where the cells are stored (None: a run without a database).
    run_stats : RunStats or None
        What the run computed and what it skipped as finished (None without a database).
    """

    scenarios: list[str]
    attributes: list[str]
    layers: list[str]
    cells: dict[tuple[str, str, str], dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    experiment: Experiment | None = None
    run_stats: RunStats | None = None

    def _check(self, scenario: str | None, attribute: str | None) -> None:
        if scenario is not None and scenario not in self.scenarios:
            raise UnknownOptionError(
                f"no scenario {scenario!r} in these results; they have: {', '.join(self.scenarios)}"
            )
        if attribute is not None and attribute not in self.attributes:
            raise UnknownOptionError(
                f"no attribute {attribute!r} in these results; they have: {', '.join(self.attributes)}"
            )

    def _check_metric(self, metric: str) -> str:
        return check_choice(metric, REGRESSION_METRICS, "metric")

    def cv(self, scenario: str, attribute: str, kind: str = "task") -> CVResult | None:
        """Return the task's (or ``kind="control"``: the control's) cross-validation; None if not computed."""
        self._check(scenario, attribute)
        check_choice(kind, ("task", "control"), "kind")
        cell = self.cells.get((scenario, attribute, kind))
        if cell is None:
            return None
        control = cell["control"] if kind == "control" else None
        records = [{**r, "control": control} for r in cell["records"]]
        return CVResult(records, list(cell["layers"]), "regression", control, REGRESSION_METRICS)

    def counts(self, scenario: str, attribute: str) -> dict[str, int]:
        """Return ``n_examples``, ``n_prompts``, ``n_missing_target`` and ``n_missing_vector`` of one scenario."""
        self._check(scenario, attribute)
        cell = self.cells[(scenario, attribute, "task")]
        return {k: int(cell[k]) for k in ("n_examples", "n_prompts", "n_missing_target", "n_missing_vector")}

    def table(self, scenario: str | None = None, attribute: str | None = None, metric: str = "pearson") -> Any:
        """Return one row per (scenario, attribute, layer): the task's and the control's score, selectivity, MDL.

        Parameters
        ----------
        scenario, attribute : str, optional
            Keep only these rows.
        metric : {"pearson", "spearman", "r2", "mse", "mae"}, default="pearson"

        Returns
        -------
        pandas.DataFrame or list of dict
            A DataFrame when pandas is installed. Columns ``scenario``, ``attribute``, ``layer``, ``n_examples``,
            ``n_dropped``, ``task`` and ``task_std`` (over folds x seeds), ``control`` and ``control_std``,
            ``selectivity`` and ``selectivity_std`` (:func:`fastprobe.evaluation.selectivity`: the task's minus the
            control's per seed, over seeds; negative is good for ``mse`` and ``mae``), ``codelength`` (bits),
            ``compression`` and ``compression_std`` (over seeds). NaN where the run computed no control or MDL.
        """
        self._check(scenario, attribute)
        metric = self._check_metric(metric)
        rows = [
            row
            for s in self.scenarios
            for a in self.attributes
            if scenario in (None, s) and attribute in (None, a)
            for row in self._rows(s, a, metric)
        ]
        try:
            import pandas as pd
        except ImportError:  # pandas is optional
            return rows
        return pd.DataFrame(rows)

    def _rows(self, scenario: str, attribute: str, metric: str) -> list[dict[str, Any]]:
        task = self.cells[(scenario, attribute, "task")]
        control = self.cells.get((scenario, attribute, "control"))
        mdl = self.cells.get((scenario, attribute, "mdl"))
        selective: dict[Any, dict[str, Any]] = {}
        if control is not None:
            task_cv, control_cv = self.cv(scenario, attribute), self.cv(scenario, attribute, "control")
            table = evaluation.selectivity(task_cv, control_cv, metric)
            selective = {r["layer"]: r for r in (table.to_dict("records") if hasattr(table, "to_dict") else table)}
        nan, out = math.nan, []
        for j, layer in enumerate(task["layers"]):
            sel = selective.get(layer, {})
            out.append(
                {
                    "scenario": scenario,
                    "attribute": attribute,
                    "layer": layer,
                    "n_examples": int(task["n_examples"]),
                    "n_dropped": int(task["n_missing_target"]) + int(task["n_missing_vector"]),
                    "task": task[f"{metric}_mean"][j],
                    "task_std": task[f"{metric}_std"][j],
                    "control": control[f"{metric}_mean"][j] if control else nan,
                    "control_std": control[f"{metric}_std"][j] if control else nan,
                    "selectivity": float(sel.get("selectivity", nan)),
                    "selectivity_std": float(sel.get("selectivity_std", nan)),
                    "codelength": mdl["codelength_mean"][j] if mdl else nan,
                    "compression": mdl["compression_mean"][j] if mdl else nan,
                    "compression_std": mdl["compression_std"][j] if mdl else nan,
                }
            )
        return out

    def best_layer(self, scenario: str, attribute: str, metric: str = "pearson") -> str:
        """Return the layer with the best mean task score (highest; lowest for ``mse`` and ``mae``).

        Ties go to the earlier layer; layers whose score is NaN never win unless all are.
        """
        self._check(scenario, attribute)
        metric = self._check_metric(metric)
        task = self.cells[(scenario, attribute, "task")]
        means = np.asarray(task[f"{metric}_mean"], dtype=np.float64)
        if metric in _LOWER_IS_BETTER:
            means = -means
        if np.isnan(means).all():
            return str(task["layers"][0])
        return str(task["layers"][int(np.nanargmax(means))])

    def plot(self, attribute: str, metric: str = "pearson") -> tuple[Any, Any]:
        """Plot one attribute's score by layer, one panel per scenario: the task and the control, mean +- std.

        Each panel is :meth:`fastprobe.evaluation.CVResult.plot` (mean over folds and seeds, a band of one standard
        deviation) of the task with the control beside it.

        Returns
        -------
        (matplotlib.figure.Figure, numpy.ndarray of matplotlib.axes.Axes)
        """
        self._check(None, attribute)
        metric = self._check_metric(metric)
        n = len(self.scenarios)
        fig, grid = pyplot().subplots(1, n, figsize=(5.0 * n, 3.5), squeeze=False, sharey=True)
        panels = grid[0]
        for ax, scenario in zip(panels, self.scenarios, strict=True):
            task = self.cv(scenario, attribute)
            assert task is not None
            task.plot(metric, control=self.cv(scenario, attribute, "control"), ax=ax)
            ax.set_title(f"{scenario}: {attribute}")
        return fig, panels
