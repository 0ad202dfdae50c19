"""The four aligned-probing scenarios as a resumable experiment: what the internals say about input and output scores.

With a :class:`~fastprobe.aligned.capture.GenerationCapture` (each site pooled over the prompt's and the generated
tokens of every (prompt, template, sample)), a score per prompt and a score per continuation, workflow B asks four
questions:

============  ====================  ===========================================================================
scenario      internals (span)      target (examples)
============  ====================  ===========================================================================
``input``     the prompt's tokens   the prompt's score (one per (prompt, template): its samples share the span)
``output``    the generated tokens  that continuation's score (one per capture row)
``forward``   the generated tokens  the prompt's score (one per capture row)
``backward``  the prompt's tokens   the ``"max"`` or ``"mean"`` of the scores of that (prompt, template)'s
                                    continuations, NaNs ignored (one per (prompt, template))
============  ====================  ===========================================================================

Examples whose target is missing (NaN) or whose vector is not finite are dropped and counted. :func:`scenario_data`
builds one scenario's ``(layers, y, groups)`` for any tool; :func:`run_scenarios` evaluates each (scenario,
attribute) at every site as three cells of an :class:`fastprobe.experiments.Experiment` (``kind``): ``"task"``
(:func:`fastprobe.evaluation.cross_validate`, regression, folds grouped by prompt, targets min-max scaled),
``"control"`` (the same splits on control targets; selectivity by :func:`fastprobe.evaluation.selectivity`) and
``"mdl"`` (:func:`fastprobe.evaluation.online_code_layers`, Gaussian code, bits). Stored in a SQLite file, a run
resumes where it stopped and a rerun skips every finished cell.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastprobe import evaluation
from fastprobe.aligned.capture import GenerationCapture
from fastprobe.aligned.scenario_checks import (
    check_capture,
    check_int,
    check_items,
    check_scores,
    check_str,
    score_array,
)
from fastprobe.aligned.scenario_results import ScenarioResults, check_choice
from fastprobe.evaluation import CONTROLS, DEFAULT_FRACTIONS, REGRESSION_METRICS, CVResult, minmax_scale
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, ShapeMismatchError, UnknownOptionError
from fastprobe.experiments import Experiment

__all__ = [
    "MDL_MIN_FIRST_BLOCK",
    "SCENARIOS",
    "SCENARIOS_EXPERIMENT",
    "SUMMARIES",
    "ScenarioData",
    "ScenarioResults",
    "mdl_fractions",
    "run_scenarios",
    "scenario_data",
]

#: The four scenarios, in the order workflow B names them.
SCENARIOS: tuple[str, ...] = ("input", "output", "forward", "backward")
#: How ``backward`` summarizes the continuation scores of one (prompt, template).
SUMMARIES: tuple[str, ...] = ("max", "mean")
#: The name of the experiment :func:`run_scenarios` stores its cells under.
SCENARIOS_EXPERIMENT = "aligned-scenarios"

#: scenario -> (span read, where the target comes from, one example per (prompt, template)?)
_PLAN: dict[str, tuple[str, str, bool]] = {
    "input": ("prompt", "prompt", True),
    "output": ("generation", "continuation", False),
    "forward": ("generation", "prompt", False),
    "backward": ("prompt", "continuation", True),
}
#: The fewest examples in the online code's first block. The Gaussian code's sigma is a probe's residual on its own
#: training block; a probe fitted to a handful of examples fits them almost exactly, sigma falls to its floor and the
#: next block costs thousands of bits: the codelength would measure the first block's size more than the layer.
MDL_MIN_FIRST_BLOCK = 10
_LOWER_IS_BETTER = ("mse", "mae")
_ROW_BLOCK = 4096
_REGRESSORS = ("ridge", "ridge_regression", "logistic_regression")


@dataclass(frozen=True)
class ScenarioData:
    """One scenario's examples for one attribute: every site's activations, the targets and the prompt groups.

    Attributes
    ----------
    scenario : str
    attribute : str
    layers : dict of str to numpy.ndarray
        Site name (the capture's, in its column order) to a C-contiguous float32 ``(n_examples, hidden)`` array.
    y : numpy.ndarray
        The targets (float64, not scaled).
    groups : numpy.ndarray
        Each example's prompt index (int64): give it as ``groups=`` to keep a prompt on one side of every split.
    rows : numpy.ndarray
        Each example's capture row (int64); for ``input`` and ``backward`` the first row of its (prompt, template).
    n_missing_target : int
        Examples dropped because their target was missing (NaN).
    n_missing_vector : int
        Examples dropped (after those) because their vector held a NaN or an infinity.
    """

    scenario: str
    attribute: str
    layers: dict[str, np.ndarray]
    y: np.ndarray
    groups: np.ndarray
    rows: np.ndarray
    n_missing_target: int = 0
    n_missing_vector: int = 0

    @property
    def n_dropped(self) -> int:
        """How many examples were dropped (missing target or vector)."""
        return self.n_missing_target + self.n_missing_vector


def _pairs(capture: GenerationCapture) -> tuple[list[tuple[int, str]], np.ndarray, np.ndarray]:
    """Return the (prompt, template) pairs in order of appearance, each pair's first row, and each row's pair."""
    index: dict[tuple[int, str], int] = {}
    first: list[int] = []
    pair_of = np.empty(len(capture.rows), dtype=np.int64)
    for i, row in enumerate(capture.rows):
        key = (row.prompt, row.template)
        if key not in index:
            index[key] = len(first)
            first.append(i)
        pair_of[i] = index[key]
    return list(index), np.asarray(first, dtype=np.int64), pair_of


def _scores_of(
    capture: GenerationCapture, source: str, prompts: Mapping[str, Any], continuations: Mapping[str, Any], attr: str
) -> np.ndarray:
    if source == "prompt":
        return score_array(prompts, attr, "prompt_scores", len(capture.prompts), "prompt")
    return score_array(continuations, attr, "continuation_scores", len(capture.rows), "capture row")


def _targets(
    capture: GenerationCapture, scenario: str, values: np.ndarray, summary: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return every candidate example's capture row, target (NaN: missing) and prompt, before any drop."""
    _, source, per_pair = _PLAN[scenario]
    prompts = np.asarray([r.prompt for r in capture.rows], dtype=np.int64)
    if not per_pair:
        rows = np.arange(len(capture.rows), dtype=np.int64)
        y = values[prompts] if source == "prompt" else values
        return rows, y, prompts
    pairs, first, pair_of = _pairs(capture)
    if source == "prompt":
        y = values[prompts[first]]
    else:  # the summary of each pair's scores, NaNs ignored; NaN where all are
        present = ~np.isnan(values)
        counts = np.bincount(pair_of[present], minlength=len(pairs))
        if summary == "max":
            y = np.full(len(pairs), -np.inf)
            np.maximum.at(y, pair_of[present], values[present])
        else:
            y = np.bincount(pair_of[present], weights=values[present], minlength=len(pairs)) / np.maximum(counts, 1)
        y[counts == 0] = np.nan
    return first, y, prompts[first]


def _finite_rows(matrix: np.ndarray) -> np.ndarray:
    """Whether each row of ``matrix`` is all finite (read in blocks of rows)."""
    out = np.empty(matrix.shape[0], dtype=bool)
    for start in range(0, matrix.shape[0], _ROW_BLOCK):
        out[start : start + _ROW_BLOCK] = np.isfinite(matrix[start : start + _ROW_BLOCK]).all(axis=1)
    return out


def _hidden(capture: GenerationCapture, matrix: np.ndarray) -> int:
    n_sites = len(capture.sites)
    if matrix.ndim != 2 or matrix.shape[0] != len(capture.rows) or matrix.shape[1] % n_sites:
        raise ShapeMismatchError(
            f"capture vectors must have shape (rows, sites * hidden) = ({len(capture.rows)}, {n_sites} * hidden); "
            f"got {matrix.shape}"
        )
    return matrix.shape[1] // n_sites


class _Examples:
    """Targets and kept rows of every (scenario, attribute) of a run, and their activations built on demand."""

    def __init__(
        self,
        capture: GenerationCapture,
        prompt_scores: Mapping[str, Any],
        continuation_scores: Mapping[str, Any],
        summary: str,
        pooling: str,
    ) -> None:
        self.capture, self.summary, self.pooling = capture, summary, pooling
        self.prompt_scores, self.continuation_scores = prompt_scores, continuation_scores
        self._finite: dict[str, np.ndarray] = {}
        self._last: tuple[tuple[str, str], ScenarioData] | None = None

    def matrix(self, span: str) -> np.ndarray:
        return self.capture.span(span, self.pooling)

    def finite(self, span: str) -> np.ndarray:
        if span not in self._finite:
            matrix = self.matrix(span)
            _hidden(self.capture, matrix)
            self._finite[span] = _finite_rows(matrix)
        return self._finite[span]

    def scores(self, source: str, attribute: str) -> np.ndarray:
        return _scores_of(self.capture, source, self.prompt_scores, self.continuation_scores, attribute)

    def kept(self, scenario: str, attribute: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """Return the kept rows, targets and groups, and how many were dropped for a target and for a vector."""
        values = self.scores(_PLAN[scenario][1], attribute)
        rows, y, groups = _targets(self.capture, scenario, values, self.summary)
        has_target = ~np.isnan(y)
        rows, y, groups = rows[has_target], y[has_target], groups[has_target]
        has_vector = self.finite(_PLAN[scenario][0])[rows]
        kept = rows[has_vector], y[has_vector], groups[has_vector]
        return (*kept, int((~has_target).sum()), int((~has_vector).sum()))

    def data(self, scenario: str, attribute: str) -> ScenarioData:
        if self._last is not None and self._last[0] == (scenario, attribute):
            return self._last[1]
        rows, y, groups, missing_target, missing_vector = self.kept(scenario, attribute)
        matrix = self.matrix(_PLAN[scenario][0])
        h = _hidden(self.capture, matrix)
        picked = matrix[rows]
        layers = {
            site: np.ascontiguousarray(picked[:, j * h : (j + 1) * h], dtype=np.float32)
            for j, site in enumerate(self.capture.sites)
        }
        out = ScenarioData(scenario, attribute, layers, y, groups, rows, missing_target, missing_vector)
        self._last = ((scenario, attribute), out)
        return out


def scenario_data(
    capture: GenerationCapture,
    scenario: str,
    prompt_scores: Mapping[str, Any] | None = None,
    continuation_scores: Mapping[str, Any] | None = None,
    *,
    attribute: str,
    summary: str = "max",
    pooling: str = "mean",
) -> ScenarioData:
    """Build one scenario's examples for any tool: each site's activations, the targets and each example's prompt.

    Parameters
    ----------
    capture : GenerationCapture
    scenario : {"input", "output", "forward", "backward"}
    prompt_scores, continuation_scores : mapping of str to array-like, optional
        Attribute to one score per prompt, or per capture row (NaN: missing); as the scenario needs.
    attribute : str
    summary : {"max", "mean"}, default="max"
        ``backward``: the summary of a (prompt, template)'s scores (NaNs ignored; all NaN: dropped).
    pooling : str, default="mean"

    Returns
    -------
    ScenarioData

    Raises
    ------
    UnknownOptionError
        An unknown scenario or summary, an attribute the scores lack, a pooling the capture lacks.
    ShapeMismatchError
        A score array of the wrong length.
    ArgumentTypeError, InvalidInputError
        Arguments of the wrong type; an infinite score.

    Examples
    --------
    >>> import numpy as np
    >>> from fastprobe.aligned import CaptureRow, GenerationCapture
    >>> rows = [CaptureRow(p, "plain", s, "...", (1,), True) for p in range(2) for s in range(2)]
    >>> vectors = {(span, "mean"): np.arange(8, dtype=np.float32).reshape(4, 2) for span in ("prompt", "generation")}
    >>> capture = GenerationCapture(rows, ["a", "b"], ["resid.0", "resid.1"], vectors)
    >>> data = scenario_data(capture, "backward", continuation_scores={"tox": [0.1, 0.5, np.nan, 0.2]}, attribute="tox")
    >>> data.y.tolist(), data.groups.tolist(), data.rows.tolist()
    ([0.5, 0.2], [0, 1], [0, 2])
    >>> data.layers["resid.1"].ravel().tolist()
    [1.0, 5.0]
    """
    capture = check_capture(capture)
    check_choice(scenario, SCENARIOS, "scenario")
    check_choice(summary, SUMMARIES, "summary")
    prompts = check_scores(prompt_scores, "prompt_scores")
    continuations = check_scores(continuation_scores, "continuation_scores")
    return _Examples(capture, prompts, continuations, summary, pooling).data(scenario, attribute)


def _summary(cv: CVResult) -> dict[str, list[float]]:
    """Each metric's mean and standard deviation over folds x seeds, per layer (as ``CVResult.table`` gives them)."""
    out: dict[str, list[float]] = {}
    for m in REGRESSION_METRICS:
        means, stds = [], []
        for layer in cv.layers:
            v = cv.values(layer, m)
            finite = np.isfinite(v)
            means.append(float(np.nanmean(v)) if finite.any() else math.nan)
            stds.append(float(np.nanstd(v, ddof=1)) if finite.sum() > 1 else 0.0)
        out[f"{m}_mean"], out[f"{m}_std"] = means, stds
    return out


def _mean_std(per_seed: list[list[float]]) -> tuple[list[float], list[float]]:
    values = np.asarray(per_seed, dtype=np.float64)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    return values.mean(axis=0).tolist(), std.tolist()


def _estimator(estimator: Any) -> tuple[Any, Any]:
    """Return the estimator to fit (the names all mean fastprobe's ridge regression) and its JSON description."""
    if isinstance(estimator, str):
        if estimator not in _REGRESSORS:
            raise UnknownOptionError(
                f"unknown estimator {estimator!r}; expected one of: {', '.join(_REGRESSORS)} (all ridge regression), "
                "or a regressor object"
            )
        return "ridge_regression", estimator
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise ArgumentTypeError(
            f"estimator must be a name or a regressor with fit and predict; got {type(estimator).__name__}"
        )
    kind = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return estimator, {"class": kind, "params": repr(sorted(params.items()))}


def _data_hash(examples: _Examples, spans: Sequence[str], scores: Sequence[tuple[str, str, np.ndarray]]) -> str:
    """SHA-256 of what the cells read: rows, sites, each span used and each attribute's scores."""
    h = hashlib.sha256()
    capture = examples.capture
    h.update(repr([(r.prompt, r.template, r.sample) for r in capture.rows]).encode())
    h.update(repr((len(capture.prompts), list(capture.sites), examples.pooling)).encode())
    for span in spans:
        matrix = examples.matrix(span)
        h.update(f"{span}{matrix.shape}{matrix.dtype}".encode())
        for start in range(0, matrix.shape[0], _ROW_BLOCK):
            h.update(np.ascontiguousarray(matrix[start : start + _ROW_BLOCK]).tobytes())
    for source, attribute, values in scores:
        h.update(f"{source}:{attribute}".encode())
        h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return h.hexdigest()


def _default_attributes(needs: set[str], prompts: Mapping[str, Any], continuations: Mapping[str, Any]) -> list[str]:
    sources = [m for name, m in (("prompt", prompts), ("continuation", continuations)) if name in needs]
    out = [a for a in sources[0] if all(a in m for m in sources[1:])]
    if not out:
        raise InvalidInputError(
            "no attribute has the scores these scenarios need "
            f"(prompt scores: {sorted(prompts)}; continuation scores: {sorted(continuations)})"
        )
    return out


def mdl_fractions(n_examples: int) -> list[float]:
    """Return the online code's block fractions for ``n_examples``: Voita and Titov's, the first block at least 10.

    The fractions of :data:`fastprobe.evaluation.DEFAULT_FRACTIONS` whose block would end before
    :data:`MDL_MIN_FIRST_BLOCK` examples are left out (see there why), so from 10,000 examples on all of them are kept.

    Examples
    --------
    >>> mdl_fractions(100)
    [0.125, 0.25, 0.5, 1.0]
    >>> len(mdl_fractions(10_000))
    11
    """
    return [f for f in DEFAULT_FRACTIONS if math.floor(round(f * n_examples, 9)) >= MDL_MIN_FIRST_BLOCK]


def _check_examples(examples: _Examples, scenarios: list[str], attributes: list[str], n_folds: int, mdl: bool) -> None:
    """Check every (scenario, attribute) before anything is fitted."""
    for scenario in scenarios:
        for attribute in attributes:
            _, y, groups, _, _ = examples.kept(scenario, attribute)
            where = f"scenario {scenario!r}, attribute {attribute!r}"
            n_groups = len(np.unique(groups))
            if n_groups < n_folds:
                raise InvalidInputError(
                    f"{where}: {n_folds} folds grouped by prompt need at least {n_folds} distinct prompts with a "
                    f"score; got {n_groups} (use fewer folds)"
                )
            if np.ptp(y) == 0:
                raise InvalidInputError(f"{where}: every target is {float(y[0])}; there is nothing to predict")
            if mdl and len(y) < 2 * MDL_MIN_FIRST_BLOCK:
                raise InvalidInputError(
                    f"{where}: the online code needs at least {2 * MDL_MIN_FIRST_BLOCK} examples (two blocks of at "
                    f"least {MDL_MIN_FIRST_BLOCK}); got {len(y)} (or give mdl=False)"
                )


class _Cells:
    """The function every cell runs: cross-validation (task, control) or the online code (mdl)."""

    def __init__(self, examples: _Examples, estimator: Any, settings: dict[str, Any]) -> None:
        self.examples, self.estimator, self.settings = examples, estimator, settings

    def __call__(self, cell: dict[str, Any]) -> dict[str, Any]:
        data = self.examples.data(cell["scenario"], cell["attribute"])
        base: dict[str, Any] = {"layers": list(data.layers), "n_examples": len(data.y)}
        base |= {"n_prompts": len(np.unique(data.groups)), "n_missing_target": data.n_missing_target}
        base["n_missing_vector"] = data.n_missing_vector
        if cell["kind"] == "mdl":
            return base | self._mdl(data)
        control = self.settings["control"] if cell["kind"] == "control" else None
        cv = evaluation.cross_validate(
            data.layers,
            data.y,
            self.estimator,
            task="regression",
            **{k: self.settings[k] for k in ("n_folds", "seeds", "scale_targets")},
            groups=data.groups,
            control=control,
            control_types=data.groups.tolist() if control == "control_task" else None,
            progress=False,
        )
        records = [{k: v for k, v in r.items() if k != "control"} for r in cv.records]
        return base | _summary(cv) | {"records": records}

    def _mdl(self, data: ScenarioData) -> dict[str, Any]:
        y = minmax_scale(data.y)[0] if self.settings["scale_targets"] == "minmax" else data.y
        fractions = mdl_fractions(len(y))
        per: dict[str, list[list[float]]] = {"codelength": [], "uniform": [], "compression": []}
        for seed in self.settings["seeds"]:
            kw = {"task": "regression", "fractions": fractions, "random_state": seed, "mode": "gaussian"}
            coded = evaluation.online_code_layers(data.layers, y, self.estimator, **kw)
            per["codelength"].append([coded[k].codelength for k in data.layers])
            per["uniform"].append([coded[k].uniform_codelength for k in data.layers])
            per["compression"].append([coded[k].compression for k in data.layers])
        out: dict[str, Any] = {"fractions": fractions, **per}
        for name, values in per.items():
            out[f"{name}_mean"], out[f"{name}_std"] = _mean_std(values)
        return out


def _run_in_memory(
    grid: dict[str, list[str]], fixed: dict[str, Any], fn: Callable[[dict[str, Any]], dict[str, Any]], progress: bool
) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    configs = [
        {"scenario": s, "attribute": a, "kind": k, **fixed}
        for s in grid["scenario"]
        for a in grid["attribute"]
        for k in grid["kind"]
    ]
    return [{**c, **fn(dict(c))} for c in tqdm(configs, desc="scenarios", unit="cell", disable=not progress)]


def run_scenarios(
    capture: GenerationCapture,
    prompt_scores: Mapping[str, Any] | None,
    continuation_scores: Mapping[str, Any] | None,
    *,
    scenarios: Sequence[str] = SCENARIOS,
    attributes: str | Sequence[str] | None = None,
    summary: str = "max",
    pooling: str = "mean",
    estimator: Any = "ridge",
    n_folds: int = 5,
    seeds: int | Sequence[int] = (0, 1, 2),
    scale_targets: str | None = "minmax",
    mdl: bool = True,
    control: str | None = "permutation",
    experiment: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> ScenarioResults:
    """Probe every site of a capture in the four aligned-probing scenarios: task, control, selectivity and MDL.

    Parameters
    ----------
    capture : GenerationCapture
    prompt_scores, continuation_scores : mapping of str to array-like, or None
        Attribute to one score per prompt (needed by ``input`` and ``forward``), or per capture row (``output``,
        ``backward``); NaN: missing.
    scenarios : sequence of str, default=SCENARIOS
    attributes : str or sequence of str, optional
        Default: every attribute the scenarios have scores for, in the order of the first mapping they need.
    summary : {"max", "mean"}, default="max"
        How ``backward`` summarizes a (prompt, template)'s continuation scores.
    pooling : str, default="mean"
    estimator : str or regressor, default="ridge"
        ``"ridge"``, ``"ridge_regression"`` or ``"logistic_regression"`` (all fastprobe's ridge regression), or an
        unfitted scikit-learn regressor.
    n_folds : int, default=5
        Folds, grouped by prompt: a prompt's templates and samples are never on both sides.
    seeds : int or sequence of int, default=(0, 1, 2)
        One shuffle per seed of the folds, of the control's targets and of the online code's examples.
    scale_targets : {"minmax", None}, default="minmax"
        Min-max scale each scenario's targets to [0, 1] before splitting, as workflow B does.
    mdl : bool, default=True
        Also compute the online codelength (Gaussian code, bits, the blocks of :func:`mdl_fractions`). Its shuffle
        is by example, not by prompt.
    control : {"permutation", "control_task", None}, default="permutation"
        The control (:func:`fastprobe.evaluation.control_labels`; ``"control_task"``: one random target per
        prompt), on the task's splits; None: none.
    experiment : str or path-like, optional
        A SQLite file holding every cell as it finishes (an :class:`~fastprobe.experiments.Experiment` named
        :data:`SCENARIOS_EXPERIMENT`): a rerun computes only the cells not stored yet. None: the cells are computed in
        this process, kept only in the result, and nothing resumes (an experiment needs a database file: each of
        its operations opens a new connection, so SQLite's in-memory database cannot hold one).
    progress : bool, default=True

    Returns
    -------
    ScenarioResults

    Raises
    ------
    UnknownOptionError
        An unknown scenario, summary, control, estimator or ``scale_targets``; an attribute the scores lack; a
        pooling the capture lacks.
    ShapeMismatchError
        A score array of the wrong length.
    InvalidInputError
        Fewer prompts with a score than folds, constant targets, fewer than 20 examples with ``mdl=True``, an
        infinite score, empty or repeated scenarios, attributes or seeds.
    ArgumentTypeError
        Arguments of the wrong type.

    Notes
    -----
    The cells' fixed settings are the data's SHA-256 (rows, sites, the spans read, the evaluated attributes'
    scores), ``summary``, ``pooling``, ``estimator``, ``n_folds``, ``seeds``, ``scale_targets``, ``control`` and
    the MDL code: changing one computes every cell anew (so does adding an attribute, whose scores enter the hash).
    Adding a scenario or turning ``mdl`` on adds cells and keeps the finished ones.
    """
    capture = check_capture(capture)
    prompts = check_scores(prompt_scores, "prompt_scores")
    continuations = check_scores(continuation_scores, "continuation_scores")
    scenario_list = check_items(scenarios, "scenarios", lambda v: check_choice(v, SCENARIOS, "scenario"), str)
    check_choice(summary, SUMMARIES, "summary")
    if control is not None:
        check_choice(control, CONTROLS, "control")
    if scale_targets is not None:
        check_choice(scale_targets, ("minmax",), "scale_targets")
    if not isinstance(mdl, bool):
        raise ArgumentTypeError(f"mdl must be a bool; got {type(mdl).__name__}")
    if experiment is not None and not isinstance(experiment, (str, os.PathLike)):
        raise ArgumentTypeError(f"experiment must be a path or None; got {type(experiment).__name__}")
    n_folds = check_int(n_folds, "n_folds", 2)
    seed_list = check_items(seeds, "seeds", lambda v: check_int(v, "each seed", 0), numbers.Integral)
    fit_with, described = _estimator(estimator)
    needs = {_PLAN[s][1] for s in scenario_list}
    attribute_list = (
        _default_attributes(needs, prompts, continuations)
        if attributes is None
        else check_items(attributes, "attributes", check_str, str)
    )
    examples = _Examples(capture, prompts, continuations, summary, pooling)
    for span in sorted({_PLAN[s][0] for s in scenario_list}):
        capture.span(span, pooling)  # a pooling the capture lacks fails before anything else
    _check_examples(examples, scenario_list, attribute_list, n_folds, mdl)
    scores = [(source, a, examples.scores(source, a)) for a in attribute_list for source in sorted(needs)]
    fixed: dict[str, Any] = {
        "data": _data_hash(examples, sorted({_PLAN[s][0] for s in scenario_list}), scores),
        "summary": summary,
        "pooling": pooling,
        "estimator": described,
        "n_folds": n_folds,
        "seeds": seed_list,
        "scale_targets": scale_targets,
        "control": control,
        "mdl_code": {"mode": "gaussian", "min_first_block": MDL_MIN_FIRST_BLOCK},
    }
    kinds = ["task", *(["control"] if control is not None else []), *(["mdl"] if mdl else [])]
    grid = {"scenario": scenario_list, "attribute": attribute_list, "kind": kinds}
    fn = _Cells(examples, fit_with, fixed)
    handle: Experiment | None = None
    if experiment is None:
        records = _run_in_memory(grid, fixed, fn, progress)
    else:
        handle = Experiment(SCENARIOS_EXPERIMENT, grid, fixed=fixed, path=experiment)
        records = handle.run(fn, progress=progress, as_frame=False)
    cells = {(r["scenario"], r["attribute"], r["kind"]): r for r in records}
    return ScenarioResults(
        scenarios=scenario_list,
        attributes=attribute_list,
        layers=list(capture.sites),
        cells=cells,
        settings=fixed,
        experiment=handle,
        run_stats=handle.last_run if handle is not None else None,
    )
