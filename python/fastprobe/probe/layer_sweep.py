"""Sweeps over layers: one single-layer probe per layer from one extraction pass, and their result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fastprobe import features
from fastprobe._validation import check_prompts
from fastprobe.estimators import LogisticProbe, MassMeanProbe, RidgeClassifierProbe, RidgeProbe
from fastprobe.exceptions import InvalidInputError, NotFittedError, UnknownOptionError
from fastprobe.probe.config import cached_reads, check_params, probe_context, retries
from fastprobe.probe.inspection import pyplot
from fastprobe.probe.pipeline import fit_matrix, standard_scaler_from, training_rows

if TYPE_CHECKING:
    from fastprobe.probe.probe import Probe

__all__ = ["LayerSweepResult", "run_sweep"]

#: The classifiers the Rust layer sweep fits (every layer in parallel, each worker reading its layer from the store).
RUST_SWEEP = (LogisticProbe, RidgeProbe, RidgeClassifierProbe, MassMeanProbe)


@dataclass
class LayerSweepResult:
    """One fitted single-layer probe per layer.

    Attributes
    ----------
    probes : dict of int to Probe
    metrics_ : dict of int to dict
        Every layer's metrics from the last :meth:`evaluate` (also run by :meth:`Probe.evaluate` in sweep mode);
        :meth:`table` and :meth:`plot` show them.
    """

    probes: dict[int, Probe] = field(default_factory=dict)
    metrics_: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        """The swept layers, ascending."""
        return sorted(self.probes)

    def __len__(self) -> int:
        return len(self.probes)

    def __getitem__(self, layer: int) -> Probe:
        return self.probes[layer]

    def _warm(self, prompts: Sequence[str], remote: bool | None = None, batch_size: int | None = None) -> None:
        """Extract every swept layer for the prompts in one pass."""
        first = self.probes[self.layers[0]]
        spec = check_params(first).inference
        prompts = check_prompts(prompts, "prompts")
        reads = features.reads(spec)
        ctx = probe_context(first, remote, cached_reads(prompts, lambda _n: self.layers, reads))
        bs = batch_size or first.batch_size
        features.ensure_extracted(ctx, prompts, self.layers, bs, retries(first), reads)

    def score(self, prompts: Sequence[str], labels: Any) -> dict[int, float]:
        """Accuracy (R^2 for regression) of every layer's probe."""
        self._warm(prompts)
        return {layer: self.probes[layer].score(prompts, labels) for layer in self.layers}

    def best_layer(self, prompts: Sequence[str], labels: Any) -> int:
        """Return the layer with the highest score (the lowest such layer on ties)."""
        scores = self.score(prompts, labels)
        return max(self.layers, key=lambda layer: scores[layer])

    def predict(self, prompts: Sequence[str]) -> dict[int, np.ndarray]:
        """Every layer's predictions."""
        self._warm(prompts)
        return {layer: self.probes[layer].predict(prompts) for layer in self.layers}

    def predict_proba(self, prompts: Sequence[str]) -> dict[int, np.ndarray]:
        """Every layer's class probabilities."""
        self._warm(prompts)
        return {layer: self.probes[layer].predict_proba(prompts) for layer in self.layers}

    def evaluate(self, prompts: Sequence[str], labels: Any, **options: Any) -> dict[int, dict[str, Any]]:
        """Every layer's :meth:`Probe.evaluate` (the same options), after one extraction pass; kept in ``metrics_``.

        Parameters
        ----------
        prompts : sequence of str
        labels : array-like of shape (n_prompts,)
        **options
            ``remote``, ``batch_size``, ``control_prompts``, ``target_fpr``, ``confidence``, ``n_bootstrap``.

        Returns
        -------
        dict of int to dict
        """
        control = list(options.get("control_prompts") or [])
        self._warm(list(check_prompts(prompts, "prompts")) + control, options.get("remote"), options.get("batch_size"))
        self.metrics_ = {layer: self.probes[layer].evaluate(prompts, labels, **options) for layer in self.layers}
        return self.metrics_

    def table(self) -> Any:
        """Return the metrics of the last :meth:`evaluate`, one row per layer.

        Interval metrics become two columns (``accuracy_ci_low``, ``accuracy_ci_high``, ...); the per-class metrics
        and confusion matrix stay in :attr:`metrics_`.

        Returns
        -------
        pandas.DataFrame or list of dict
            A DataFrame indexed by layer when pandas is installed, else a list of row dicts (each with ``layer``).
        """
        if not self.metrics_:
            raise NotFittedError("no metrics yet; call evaluate(prompts, labels) first")
        rows = []
        for layer in self.layers:
            row: dict[str, Any] = {"layer": layer}
            for key, value in self.metrics_[layer].items():
                if isinstance(value, tuple) and len(value) == 2:
                    row[f"{key}_low"], row[f"{key}_high"] = value
                elif key != "eval_hash" and not isinstance(value, (dict, list)):  # per-class tables stay in metrics_
                    row[key] = value
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows).set_index("layer")

    def plot(self, metric: str | None = None, baseline: Any = None, ax: Any = None) -> tuple[Any, Any]:
        """Plot a metric of the last :meth:`evaluate` by layer, with its bootstrap interval and a baseline line.

        Parameters
        ----------
        metric : str, optional
            A key of the metrics; default ``"accuracy"`` (``"r2"`` for regression).
        baseline : float, dict of str to float, or an object with ``get_best()``, optional
            Drawn as a horizontal dashed line: a score; the best of named scores; or the best result of a baseline
            battery (``BaselineResults``: its ``get_best()`` gives results with ``name`` and ``score``).
        ax : matplotlib.axes.Axes, optional

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        if not self.metrics_:
            raise NotFittedError("no metrics yet; call evaluate(prompts, labels) first")
        first = self.metrics_[self.layers[0]]
        metric = metric or ("r2" if "r2" in first else "accuracy")
        if metric not in first:
            raise UnknownOptionError(f"unknown metric {metric!r}; expected one of: {', '.join(sorted(first))}")
        plt = pyplot()
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
        values = [self.metrics_[layer][metric] for layer in self.layers]
        ax.plot(self.layers, values, marker="o", label=f"probe {metric}")
        if all(f"{metric}_ci" in self.metrics_[layer] for layer in self.layers):
            low, high = zip(*(self.metrics_[layer][f"{metric}_ci"] for layer in self.layers), strict=True)
            ax.fill_between(self.layers, low, high, alpha=0.25, label="bootstrap interval")
        name, score = _baseline_line(baseline)
        if score is not None:
            ax.axhline(score, linestyle="--", color="grey", label=f"best baseline: {name} ({score:.3f})")
        ax.set_xlabel("layer")
        ax.set_ylabel(metric)
        ax.legend(loc="best", fontsize="small")
        return fig, ax


def _baseline_line(baseline: Any) -> tuple[str, float | None]:
    """(name, score) of the baseline to draw: a number, the best of a dict, or the best of a battery's results."""
    if baseline is None:
        return "", None
    if isinstance(baseline, (int, float)):
        return "baseline", float(baseline)
    if isinstance(baseline, dict):
        name = max(baseline, key=lambda k: baseline[k])
        return str(name), float(baseline[name])
    if hasattr(baseline, "get_best"):
        best = baseline.get_best(1)
        best = best[0] if isinstance(best, (list, tuple)) else best
        return str(best.name), float(best.score)
    raise InvalidInputError(
        "baseline must be a number, a dict of scores or baseline results with get_best(); got "
        f"{type(baseline).__name__}"
    )


def run_sweep(
    config: Probe,
    ctx: features.ModelContext,
    prompts: list[str],
    y: np.ndarray,
    w: np.ndarray | None,
    layers: list[int],
    batch_size: int | None,
    n_retries: int,
    overwrite: bool = False,
) -> LayerSweepResult:
    """Extract every layer once, then fit one probe per layer (in Rust, in parallel, when the classifier allows)."""
    from sklearn.base import clone
    from tqdm.auto import tqdm

    from fastprobe.store import evict
    from fastprobe.sweep import StoreLayers, fit_layers

    train, spec, template = check_params(config)
    features.ensure_extracted(ctx, prompts, layers, batch_size, n_retries, features.reads(train, spec), overwrite)
    params = config.get_params(deep=False)

    def member(layer: int) -> Probe:
        probe = type(config)(**{**params, "layers": layer})
        probe.layers_ = [layer]
        probe.model_fingerprint_ = ctx.fingerprint
        probe.sweep_result_ = None
        return probe

    probes: dict[int, Probe] = {}
    rust = isinstance(template, RUST_SWEEP) and train != "all"
    if rust and not config.preprocessing and not config.mass_mean_augment:
        y_fit = y.astype(np.float64) if config.task == "regression" else y
        fitted = fit_layers(StoreLayers(ctx.store, prompts, layers, train), y_fit, template, sample_weight=w)
        for layer, pipe in zip(layers, fitted, strict=True):
            probe = member(layer)
            probe.scaler_ = standard_scaler_from(pipe.named_steps["scale"], len(prompts))
            probe.classifier_ = pipe.named_steps["probe"]
            probe.classes_ = probe.classifier_.classes_ if config.task == "classification" else None
            probe.preprocessing_pipeline_ = None
            probe.mass_mean_direction_ = None
            probe.n_features_in_ = ctx.loaded.hidden_size
            probes[layer] = probe
    else:
        for layer in tqdm(layers, desc="fitting layers", unit="layer", dynamic_ncols=True):
            probe = member(layer)
            X, y_rows, w_rows = training_rows(ctx, prompts, [layer], train, y, w)
            fit_matrix(probe, X, y_rows, w_rows, 1, clone(template))
            probes[layer] = probe
    evict()
    return LayerSweepResult(probes)
