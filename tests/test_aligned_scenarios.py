"""The four aligned-probing scenarios on a capture built by hand: the examples, the scores, the resumable cells."""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np
import pytest

import fastprobe.evaluation
from fastprobe import InvalidInputError, ShapeMismatchError, UnknownOptionError
from fastprobe.aligned import CaptureRow, GenerationCapture
from fastprobe.aligned.scenarios import SCENARIOS, ScenarioResults, mdl_fractions, run_scenarios, scenario_data
from fastprobe.evaluation import cross_validate, make_splits, selectivity

N_PROMPTS, TEMPLATES, N_SAMPLES, HIDDEN = 40, ("plain", "brief"), 3, 6
SITES = ["resid.0", "resid.1", "resid.2"]
MISSING_PROMPT = 3  # its prompt score is NaN
NAN_VECTOR_ROW = 7  # its generation vector is NaN
ALL_MISSING_PAIR = (5, "brief")  # every continuation of this pair lacks a score


def build() -> tuple[GenerationCapture, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A capture where resid.1 holds the prompt's score (both spans), resid.2 the continuation's; resid.0 is noise.

    Each (prompt, template) has one prompt-span vector shared by its samples, as one forward pass gives them.
    """
    rng = np.random.default_rng(0)
    prompt_score = rng.uniform(0, 1, N_PROMPTS)
    w_prompt, w_gen = rng.standard_normal(HIDDEN), rng.standard_normal(HIDDEN)
    rows, prompt_vec, gen_vec, cont_score = [], [], [], []
    for p in range(N_PROMPTS):
        for t in TEMPLATES:
            shared = [
                rng.standard_normal(HIDDEN),
                prompt_score[p] * 3.0 * w_prompt + 0.1 * rng.standard_normal(HIDDEN),
                rng.standard_normal(HIDDEN),
            ]
            for s in range(N_SAMPLES):
                c = rng.uniform(0, 1)
                rows.append(CaptureRow(p, t, s, f"continuation {p}.{t}.{s}", (1, 2), True))
                prompt_vec.append(np.concatenate(shared))
                gen_vec.append(
                    np.concatenate(
                        [
                            rng.standard_normal(HIDDEN),
                            prompt_score[p] * 3.0 * w_prompt + 0.1 * rng.standard_normal(HIDDEN),
                            c * 3.0 * w_gen + 0.1 * rng.standard_normal(HIDDEN),
                        ]
                    )
                )
                cont_score.append(c)
    gen = np.asarray(gen_vec, dtype=np.float32)
    gen[NAN_VECTOR_ROW, 2] = np.nan
    vectors = {("prompt", "mean"): np.asarray(prompt_vec, dtype=np.float32), ("generation", "mean"): gen}
    capture = GenerationCapture(rows, [f"prompt {p}" for p in range(N_PROMPTS)], list(SITES), vectors)
    prompt_score[MISSING_PROMPT] = np.nan
    cont = np.asarray(cont_score)
    cont[[i for i, r in enumerate(rows) if (r.prompt, r.template) == ALL_MISSING_PAIR]] = np.nan
    cont[10] = np.nan  # one sample of pair (1, "plain"): that pair's summary ignores it
    return capture, {"tox": prompt_score}, {"tox": cont}


@pytest.fixture(scope="module")
def data() -> tuple[GenerationCapture, dict[str, np.ndarray], dict[str, np.ndarray]]:
    return build()


@pytest.fixture(scope="module")
def results(data: Any) -> ScenarioResults:
    capture, ps, cs = data
    return run_scenarios(capture, ps, cs, seeds=(0, 1), progress=False)


def records(table: Any) -> list[dict[str, Any]]:
    """A table's rows as dicts (a DataFrame when pandas is installed, else already a list)."""
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


def split_sites(matrix: np.ndarray) -> dict[str, np.ndarray]:
    return {site: matrix[:, j * HIDDEN : (j + 1) * HIDDEN] for j, site in enumerate(SITES)}


def hand_examples(capture: GenerationCapture, ps: Any, cs: Any, scenario: str, summary: str = "max") -> Any:
    """Each scenario's (rows, y, groups) by plain loops over the rows, NaN targets and NaN vectors dropped."""
    rows, y, groups = [], [], []
    if scenario in ("output", "forward"):
        for i, r in enumerate(capture.rows):
            target = cs["tox"][i] if scenario == "output" else ps["tox"][r.prompt]
            if not math.isnan(target) and i != NAN_VECTOR_ROW:
                rows.append(i), y.append(target), groups.append(r.prompt)
        return rows, y, groups
    seen: dict[tuple[int, str], int] = {}
    for i, r in enumerate(capture.rows):
        seen.setdefault((r.prompt, r.template), i)
    for (p, t), first in seen.items():
        if scenario == "input":
            target = ps["tox"][p]
        else:
            mine = [
                cs["tox"][i]
                for i, r in enumerate(capture.rows)
                if (r.prompt, r.template) == (p, t) and not math.isnan(cs["tox"][i])
            ]
            target = (max(mine) if summary == "max" else sum(mine) / len(mine)) if mine else math.nan
        if not math.isnan(target):
            rows.append(first), y.append(target), groups.append(p)
    return rows, y, groups


@pytest.mark.parametrize(
    ("scenario", "summary", "span", "n_missing_target", "n_missing_vector"),
    [
        ("input", "max", "prompt", 2, 0),  # the two templates of the prompt without a score
        ("output", "max", "generation", N_SAMPLES + 1, 1),
        ("forward", "max", "generation", 2 * N_SAMPLES, 1),
        ("backward", "max", "prompt", 1, 0),  # the pair whose samples all lack a score
        ("backward", "mean", "prompt", 1, 0),
    ],
)
def test_each_scenario_builds_the_examples_a_hand_construction_gives(
    data: Any, scenario: str, summary: str, span: str, n_missing_target: int, n_missing_vector: int
) -> None:
    capture, ps, cs = data
    got = scenario_data(capture, scenario, ps, cs, attribute="tox", summary=summary)
    rows, y, groups = hand_examples(capture, ps, cs, scenario, summary)
    assert got.rows.tolist() == rows and got.groups.tolist() == groups
    np.testing.assert_array_equal(got.y, np.asarray(y))
    want = split_sites(capture.vectors[(span, "mean")][rows])
    assert list(got.layers) == SITES
    for site in SITES:
        np.testing.assert_array_equal(got.layers[site], want[site])
        assert got.layers[site].flags.c_contiguous and got.layers[site].dtype == np.float32
    assert (got.n_missing_target, got.n_missing_vector) == (n_missing_target, n_missing_vector)
    if scenario in ("input", "backward"):  # one example per (prompt, template): the samples are deduplicated
        assert len(got.y) == N_PROMPTS * len(TEMPLATES) - n_missing_target
        assert len(set(zip(got.groups.tolist(), [capture.rows[i].template for i in rows], strict=True))) == len(rows)


def test_backward_summaries_take_the_max_or_the_mean_ignoring_missing_samples(data: Any) -> None:
    capture, _, cs = data
    pair_rows = [i for i, r in enumerate(capture.rows) if (r.prompt, r.template) == (1, "plain")]
    assert pair_rows == [6, 7, 8]  # row 10 is (1, "brief", 1); pair (1, "plain") keeps its three scores
    brief = [i for i, r in enumerate(capture.rows) if (r.prompt, r.template) == (1, "brief")]
    kept = [cs["tox"][i] for i in brief if i != 10]
    for summary, want in (("max", max(kept)), ("mean", sum(kept) / 2)):
        got = scenario_data(capture, "backward", continuation_scores=cs, attribute="tox", summary=summary)
        assert got.y[got.rows.tolist().index(brief[0])] == pytest.approx(want, abs=0)


def test_the_informative_layer_wins_well_above_its_control_and_the_noise_layers_stay_near_zero(
    results: ScenarioResults,
) -> None:
    best = {"input": "resid.1", "forward": "resid.1", "output": "resid.2"}
    for scenario, layer in best.items():
        assert results.best_layer(scenario, "tox") == layer
        rows = {r["layer"]: r for r in records(results.table(scenario, "tox"))}
        assert rows[layer]["task"] > 0.95
        assert abs(rows[layer]["control"]) < 0.3 and rows[layer]["selectivity"] > 0.7
        assert rows[layer]["compression"] > 1.15  # noise layers stay below 1.05
        for noise in set(SITES) - {layer}:
            assert abs(rows[noise]["task"]) < 0.3, (scenario, noise, rows[noise]["task"])
            assert rows[noise]["compression"] < 1.05
    assert results.best_layer("output", "tox", metric="mse") == "resid.2"
    backward = {r["layer"]: r for r in records(results.table("backward", "tox"))}
    assert all(abs(r["task"]) < 0.35 for r in backward.values())  # prompt internals know nothing of the continuation


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_scenario_equals_cross_validate_on_the_same_examples_splits_and_seeds(
    data: Any, results: ScenarioResults, scenario: str
) -> None:
    capture, ps, cs = data
    d = scenario_data(capture, scenario, ps, cs, attribute="tox")
    kw: dict[str, Any] = {"task": "regression", "n_folds": 5, "seeds": (0, 1), "groups": d.groups, "progress": False}
    task = cross_validate(d.layers, d.y, "ridge_regression", scale_targets="minmax", **kw)
    control = cross_validate(d.layers, d.y, "ridge_regression", scale_targets="minmax", control="permutation", **kw)
    got_task, got_control = results.cv(scenario, "tox"), results.cv(scenario, "tox", "control")
    assert got_task is not None and got_control is not None
    assert got_task.records == task.records and got_control.records == control.records
    rows = records(results.table(scenario, "tox"))
    want = records(task.table())
    want_sel = records(selectivity(task, control, "pearson"))
    for row, w, sel in zip(rows, want, want_sel, strict=True):
        assert (row["layer"], row["task"], row["task_std"]) == (w["layer"], w["pearson"], w["pearson_std"])
        assert (row["selectivity"], row["selectivity_std"]) == (sel["selectivity"], sel["selectivity_std"])
        assert row["n_examples"] == len(d.y) and row["n_dropped"] == d.n_dropped
    assert results.counts(scenario, "tox")["n_examples"] == len(d.y)


def test_the_online_code_equals_online_code_layers_on_the_same_examples(data: Any, results: ScenarioResults) -> None:
    capture, ps, cs = data
    d = scenario_data(capture, "forward", ps, cs, attribute="tox")
    scaled = (d.y - d.y.min()) / (d.y.max() - d.y.min())
    fractions = [0.0625, 0.125, 0.25, 0.5, 1.0]  # 233 examples: the first block holds 14
    assert mdl_fractions(len(d.y)) == fractions and len(d.y) == 233
    per_seed = [
        fastprobe.evaluation.online_code_layers(
            d.layers, scaled, "ridge_regression", fractions=fractions, random_state=s, mode="gaussian"
        )
        for s in (0, 1)
    ]
    cell = results.cells[("forward", "tox", "mdl")]
    assert cell["compression"] == [[r[site].compression for site in SITES] for r in per_seed]
    table = {r["layer"]: r for r in records(results.table("forward", "tox"))}
    for site in SITES:
        assert table[site]["compression"] == pytest.approx(np.mean([r[site].compression for r in per_seed]), rel=1e-12)
        assert table[site]["codelength"] == pytest.approx(np.mean([r[site].codelength for r in per_seed]), rel=1e-12)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_folds_are_grouped_by_prompt(data: Any, scenario: str) -> None:
    capture, ps, cs = data
    d = scenario_data(capture, scenario, ps, cs, attribute="tox")
    splits = make_splits(d.y, task="regression", n_folds=5, seeds=(0, 1), groups=d.groups)
    for s in splits:
        assert not set(d.groups[s.train].tolist()) & set(d.groups[s.test].tolist())
    if scenario in ("output", "forward"):  # several examples per prompt, all on one side
        assert max(np.bincount(d.groups)) == len(TEMPLATES) * N_SAMPLES


def test_a_rerun_on_the_same_database_skips_every_finished_cell(
    data: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture, ps, cs = data
    db = tmp_path / "scenarios.sqlite"
    kw: dict[str, Any] = {"scenarios": ("input", "output"), "seeds": (0,), "progress": False, "experiment": db}
    first = run_scenarios(capture, ps, cs, mdl=False, **kw)
    assert first.run_stats is not None and (first.run_stats.ran, first.run_stats.skipped) == (4, 0)
    calls: list[str] = []
    real_cv, real_mdl = fastprobe.evaluation.cross_validate, fastprobe.evaluation.online_code_layers

    def counting_cv(*a: Any, **k: Any) -> Any:
        calls.append("cv")
        return real_cv(*a, **k)

    def counting_mdl(*a: Any, **k: Any) -> Any:
        calls.append("mdl")
        return real_mdl(*a, **k)

    monkeypatch.setattr(fastprobe.evaluation, "cross_validate", counting_cv)
    monkeypatch.setattr(fastprobe.evaluation, "online_code_layers", counting_mdl)
    again = run_scenarios(capture, ps, cs, mdl=False, **kw)
    assert calls == [] and again.run_stats is not None and (again.run_stats.ran, again.run_stats.skipped) == (0, 4)
    assert again.experiment is not None and again.experiment.status().finished == 4
    for key, cell in first.cells.items():  # the stored cells read back as they were computed
        assert again.cells[key]["records"] == cell["records"]
        assert again.cells[key]["pearson_mean"] == cell["pearson_mean"]
    with_mdl = run_scenarios(capture, ps, cs, mdl=True, **kw)  # only the new MDL cells run
    assert calls == ["mdl", "mdl"] and with_mdl.run_stats is not None and with_mdl.run_stats.ran == 2
    in_memory = run_scenarios(capture, ps, cs, mdl=False, **{**kw, "experiment": None})
    assert in_memory.experiment is None and in_memory.run_stats is None
    assert {k: c["records"] for k, c in in_memory.cells.items()} == {k: c["records"] for k, c in first.cells.items()}
    changed = {"tox": cs["tox"].copy()}
    changed["tox"][0] = 0.5
    other = run_scenarios(capture, ps, changed, mdl=False, **kw)  # other data: new cells
    assert other.run_stats is not None and other.run_stats.ran == 4


def test_the_table_without_control_or_mdl_and_the_list_form(data: Any) -> None:
    capture, ps, _ = data
    r = run_scenarios(capture, ps, None, scenarios=["input"], seeds=0, control=None, mdl=False, progress=False)
    rows = records(r.table())
    assert [row["layer"] for row in rows] == SITES and all(row["scenario"] == "input" for row in rows)
    assert all(math.isnan(row["control"]) and math.isnan(row["compression"]) for row in rows)
    assert list(rows[0]) == [
        "scenario",
        "attribute",
        "layer",
        "n_examples",
        "n_dropped",
        "task",
        "task_std",
        "control",
        "control_std",
        "selectivity",
        "selectivity_std",
        "codelength",
        "compression",
        "compression_std",
    ]
    r2 = records(r.table(metric="r2"))
    cell = r.cells[("input", "tox", "task")]
    assert [row["task"] for row in r2] == cell["r2_mean"]


def test_the_plot_has_one_panel_per_scenario_with_the_task_and_the_control(results: ScenarioResults) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = results.plot("tox")
    try:
        assert len(axes) == 4 and [ax.get_title() for ax in axes] == [f"{s}: tox" for s in SCENARIOS]
        for ax, scenario in zip(axes, SCENARIOS, strict=True):
            task, control = ax.get_lines()[:2]
            want = records(results.table(scenario, "tox"))
            np.testing.assert_allclose(task.get_ydata(), [w["task"] for w in want])
            np.testing.assert_allclose(control.get_ydata(), [w["control"] for w in want])
            assert ax.get_ylabel() == "pearson"
    finally:
        plt.close(fig)


def test_bad_inputs_fail_with_clear_errors(data: Any, results: ScenarioResults) -> None:
    capture, ps, cs = data
    with pytest.raises(ShapeMismatchError, match=r"prompt_scores\['tox'\].*expected shape \(40,\); got \(39,\)"):
        run_scenarios(capture, {"tox": ps["tox"][:-1]}, cs, progress=False)
    with pytest.raises(ShapeMismatchError, match=r"one score per capture row: expected shape \(240,\); got \(3,\)"):
        scenario_data(capture, "output", continuation_scores={"tox": [0.1, 0.2, 0.3]}, attribute="tox")
    with pytest.raises(UnknownOptionError, match="unknown scenario 'sideways'; expected one of: input, output"):
        run_scenarios(capture, ps, cs, scenarios=["input", "sideways"], progress=False)
    with pytest.raises(UnknownOptionError, match="unknown scenario 'sideways'"):
        scenario_data(capture, "sideways", ps, cs, attribute="tox")
    with pytest.raises(UnknownOptionError, match="unknown summary 'median'; expected one of: max, mean"):
        run_scenarios(capture, ps, cs, summary="median", progress=False)
    with pytest.raises(UnknownOptionError, match="prompt_scores has no attribute 'insult'; it has: 'tox'"):
        run_scenarios(capture, ps, cs, attributes=["insult"], progress=False)
    with pytest.raises(UnknownOptionError, match="continuation_scores has no attribute 'tox'; it has: none"):
        scenario_data(capture, "backward", ps, None, attribute="tox")
    with pytest.raises(
        UnknownOptionError, match="span pooled by 'max'; this capture has: generation/mean, prompt/mean"
    ):
        run_scenarios(capture, ps, cs, pooling="max", progress=False)
    with pytest.raises(InvalidInputError, match="50 folds grouped by prompt need at least 50 distinct prompts"):
        run_scenarios(capture, ps, cs, n_folds=50, progress=False)
    with pytest.raises(UnknownOptionError, match="unknown control 'shuffle'"):
        run_scenarios(capture, ps, cs, control="shuffle", progress=False)
    with pytest.raises(
        UnknownOptionError, match="unknown estimator 'forest'; expected one of: ridge, ridge_regression"
    ):
        run_scenarios(capture, ps, cs, estimator="forest", progress=False)
    with pytest.raises(UnknownOptionError, match="no scenario 'sideways' in these results"):
        results.table("sideways")
    with pytest.raises(UnknownOptionError, match="unknown metric 'accuracy'"):
        results.best_layer("input", "tox", metric="accuracy")
