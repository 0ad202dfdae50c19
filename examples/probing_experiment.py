"""A resumable probing experiment on SmolLM2, offline: truth by layer, against what a probe could memorize.

For the built-in true/false city statements, every cell of the grid (layer x control) runs 5-fold x 3-seed
cross-validation grouped by city, and the MDL online code, and its numbers go into an SQLite file. The controls:
the labels permuted, and Hewitt and Liang's control task with the country a statement names as its type (a probe
that reads the country, not the truth, can learn it). Run it twice: the second run finds every cell finished and
only prints the table. Kill it half-way (Ctrl-C, or worse): the next run
does only the cells that were not finished.

Run: ``python examples/probing_experiment.py [--db FILE] [--layers 0,4,8,...] [--plot FILE]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def main(db: Path, layers: list[int | str], plot: Path | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run (or resume) the experiment; return one row per (layer, control)."""
    import numpy as np

    from fastprobe.datasets import city_facts
    from fastprobe.evaluation import control_labels, cross_validate, online_code, read_layers
    from fastprobe.experiments import Experiment
    from fastprobe.models import smollm2

    facts = city_facts(seed=0)
    countries = [s.rsplit(" is in ", 1)[1].rstrip(".") for s in facts.statements]  # the control task's types
    model = str(smollm2())
    acts: dict[Any, np.ndarray] = {}

    def cell(config: dict[str, Any]) -> dict[str, Any]:
        layer = config["layer"]
        if layer not in acts:  # read once per process, from the cache after the first run
            acts.update(read_layers(model, facts.statements, [layer], device="cpu"))
        X = {layer: acts[layer]}
        control = None if config["control"] == "none" else config["control"]
        cv = cross_validate(
            X,
            facts.labels,
            n_folds=5,
            seeds=config["seeds"],
            groups=facts.cities,
            control=control,
            control_types=countries,
            progress=False,
        )
        row = cv.table()
        row = row.to_dict("records")[0] if hasattr(row, "to_dict") else row[0]
        labels = facts.labels if control is None else control_labels(control, facts.labels, 0, countries)
        mdl = online_code(acts[layer], labels, fractions=(0.032, 0.0625, 0.125, 0.25, 0.5, 1.0))
        return {
            "accuracy": row["accuracy"],
            "accuracy_std": row["accuracy_std"],
            "auroc": row["auroc"],
            "mdl_bits": mdl.codelength,
            "compression": mdl.compression,
        }

    exp = Experiment(
        "truth-by-layer",
        {"layer": layers, "control": ["none", "permutation", "control_task"]},
        fixed={"model": "SmolLM2-135M-Instruct", "data": "city_facts(seed=0)", "seeds": [0, 1, 2]},
        path=db,
    )
    rows = exp.run(cell, progress=progress, as_frame=False)
    print(f"{exp.last_run}")
    print(f"{'layer':>6} {'control':>13} {'accuracy':>14} {'compression':>12}")
    for r in rows:
        print(
            f"{r['layer']!s:>6} {r['control']:>13} {r['accuracy']:8.3f} ± {r['accuracy_std']:.3f} "
            f"{r['compression']:12.2f}"
        )
    if plot is not None:
        from fastprobe.probe.inspection import pyplot

        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for control in ("none", "permutation", "control_task"):
            pts = [
                (i, r["accuracy"], r["accuracy_std"]) for i, r in enumerate(x for x in rows if x["control"] == control)
            ]
            xs, ys, sd = (np.array(v) for v in zip(*pts, strict=True))
            ax.errorbar(xs, ys, yerr=sd, marker="o", capsize=3, label=control)
        ax.set_xticks(range(len(layers)), [str(layer) for layer in layers])
        ax.set_xlabel("layer")
        ax.set_ylabel("accuracy (5 folds x 3 seeds)")
        ax.legend(fontsize="small")
        fig.savefig(plot, bbox_inches="tight", dpi=120)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("truth-by-layer.sqlite"))
    parser.add_argument("--layers", default="embed,0,4,8,12,16,20,24,29")
    parser.add_argument("--plot", type=Path, default=Path("truth-by-layer.png"))
    args = parser.parse_args()
    chosen: list[int | str] = [v if v == "embed" else int(v) for v in args.layers.split(",")]
    main(args.db, chosen, args.plot)
