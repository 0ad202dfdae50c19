"""Trustworthy probing results: k-fold x seed cross-validation, control tasks and selectivity, MDL (online code).

- :func:`make_splits`: shared, seeded splits (stratified, grouped, with a dev part);
- :func:`cross_validate`: one probe per (layer, seed, fold), scored on the held-out fold (:class:`CVResult`: a table
  of means and spreads per layer, a plot by layer);
- :func:`permuted_labels`, :func:`control_task_labels`, :func:`selectivity`: control tasks (Hewitt and Liang) and
  the task's score minus the control's;
- :func:`online_code`, :func:`online_code_layers`: MDL probing, the online codelength of the labels given the
  representation (Voita and Titov), in bits, and a separately named squared-error compatibility mode;
- :func:`read_layers`: the activations of a model's layers for a list of prompts, through the cache.

They take any activations fastprobe reads: a probe's layers, a sweep, a head dataset's ``X``.
"""

from __future__ import annotations

from fastprobe.evaluation.control import (
    CONTROLS,
    control_labels,
    control_task_labels,
    permuted_labels,
    selectivity,
)
from fastprobe.evaluation.cv import CLASSIFICATION_METRICS, REGRESSION_METRICS, CVResult, cross_validate
from fastprobe.evaluation.layers import read_layers
from fastprobe.evaluation.mdl import DEFAULT_FRACTIONS, MODES, block_ends, online_code, online_code_layers
from fastprobe.evaluation.mdl_results import MDLLayers, MDLResult
from fastprobe.evaluation.splits import Split, make_splits
from fastprobe.evaluation.targets import TASKS, as_layer_dict, check_targets, infer_task, minmax_scale

__all__ = [
    "CLASSIFICATION_METRICS",
    "CONTROLS",
    "DEFAULT_FRACTIONS",
    "MODES",
    "REGRESSION_METRICS",
    "TASKS",
    "CVResult",
    "MDLLayers",
    "MDLResult",
    "Split",
    "as_layer_dict",
    "block_ends",
    "check_targets",
    "control_labels",
    "control_task_labels",
    "cross_validate",
    "infer_task",
    "make_splits",
    "minmax_scale",
    "online_code",
    "online_code_layers",
    "permuted_labels",
    "read_layers",
    "selectivity",
]
