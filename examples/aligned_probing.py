"""Aligned probing on SmolLM2, offline: the sentiment of what the model reads and writes, found in its internals.

1. The built-in prompt set (``fastprobe.aligned.sentiment_prompts``: beginnings of reviews, diary lines, messages,
   news, with an even spread of sentiment) is rendered with two templates: the prompt alone, and an instruction to
   continue it in SmolLM2's chat template.
2. ``capture_generation`` samples continuations of each (prompt, template) and, in the same pass, mean-pools every
   layer over the prompt's tokens, the instruction's and the generated ones, streaming each batch into a
   ``CaptureStore``: kill the run and start it again, and it goes on where it stopped.
3. VADER scores the prompts and the continuations (``compound``, in [-1, 1]), cached by text in the store.
4. ``run_scenarios`` probes every layer in the four scenarios (input, output, forward, backward) with ridge
   regression, 5 folds grouped by prompt x seeds, against a permutation control, and with the MDL online code; every
   cell goes into an experiment database beside the store, so a rerun only prints.

Run: ``python examples/aligned_probing.py [--dir DIR] [--prompts N] [--samples K] [--tokens T] [--plot FILE]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TEMPLATE_NAMES = ("plain", "continue")


def main(
    workdir: Path,
    *,
    n_prompts: int = 300,
    n_samples: int = 4,
    max_new_tokens: int = 20,
    layers: Any = "all",
    seeds: Sequence[int] = (0, 1, 2),
    mdl: bool = True,
    plot: Path | None = None,
    progress: bool = True,
) -> Any:
    """Capture, score and probe; return the :class:`~fastprobe.aligned.ScenarioResults`."""
    import numpy as np

    from fastprobe.aligned import PromptTemplate, VaderScorer, capture_generation, run_scenarios, sentiment_prompts
    from fastprobe.aligned.capture_store import CaptureStore
    from fastprobe.models import smollm2

    prompts = sentiment_prompts(n_prompts, seed=0) if n_prompts < len(sentiment_prompts()) else sentiment_prompts()
    templates = [
        PromptTemplate("{prompt}", name=TEMPLATE_NAMES[0]),
        PromptTemplate("Continue this text: {prompt}", system="You are a helpful writer.", name=TEMPLATE_NAMES[1]),
    ]
    workdir.mkdir(parents=True, exist_ok=True)
    capture = capture_generation(
        str(smollm2()),
        prompts,
        layers,
        templates=templates,
        n_samples=n_samples,
        max_new_tokens=max_new_tokens,
        temperature=1.0,
        top_p=0.9,
        seed=0,
        batch_size=16,
        progress=progress,
        store=workdir / "capture",
    )
    with CaptureStore(workdir / "capture") as store:
        scorer = VaderScorer()
        prompt_scores = {"sentiment": store.score(scorer, prompts)["compound"]}
        continuation_scores = {"sentiment": store.score(scorer, capture.continuations)["compound"]}
    results = run_scenarios(
        capture,
        prompt_scores,
        continuation_scores,
        summary="mean",
        n_folds=5,
        seeds=seeds,
        mdl=mdl,
        experiment=workdir / "scenarios.sqlite",
        progress=progress,
    )
    if progress:
        spread = np.percentile(prompt_scores["sentiment"], [5, 50, 95]).round(2).tolist()
        print(
            f"{len(prompts)} prompts x {len(templates)} templates x {n_samples} samples; prompt sentiment 5/50/95%: "
            f"{spread}"
        )
        for scenario in results.scenarios:
            best = results.best_layer(scenario, "sentiment")
            row = next(r for r in _rows(results.table(scenario, "sentiment")) if r["layer"] == best)
            print(
                f"{scenario:>8}: best layer {best}, Pearson {row['task']:.3f} +- {row['task_std']:.3f}, control "
                f"{row['control']:.3f}, selectivity {row['selectivity']:.3f}, MDL compression {row['compression']:.2f}"
            )
    if plot is not None:
        fig, _ = results.plot("sentiment")
        fig.savefig(plot, dpi=120, bbox_inches="tight")
    return results


def _rows(table: Any) -> list[dict[str, Any]]:
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("aligned-probing"), help="the capture store and database")
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--plot", type=Path, default=None, help="save the by-layer plot here (PNG)")
    args = parser.parse_args()
    main(args.dir, n_prompts=args.prompts, n_samples=args.samples, max_new_tokens=args.tokens, plot=args.plot)
