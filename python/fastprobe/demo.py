"""The demo: probe every layer of SmolLM2-135M-Instruct for truth on fastprobe's built-in city facts.

Run it with ``make demo`` or ``python -m fastprobe.demo``. It converts the bundled SmolLM2 once (about half a
minute), extracts the last-token activations of all 30 layers in one pass (with a progress bar), trains one
logistic-regression probe per layer on 75% of the cities and prints each layer's accuracy on the other 25%.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from fastprobe.datasets import city_facts
from fastprobe.extraction import extract_pooled, load_model
from fastprobe.models import smollm2
from fastprobe.probe import Probe


def layer_table(
    model: str, *, pooling: str = "last_token", seed: int = 0, batch_size: int = 16, device: str = "auto"
) -> list[dict[str, float]]:
    """Train one probe per layer on the built-in dataset and return each layer's train and test accuracy.

    Parameters
    ----------
    model : str
        A model directory.
    pooling : str, default="last_token"
        The pooling.
    seed : int, default=0
        Seed of the dataset, the split and the probes.
    batch_size : int, default=16
        Prompts per forward pass.
    device : str, default="auto"
        Where the model runs.

    Returns
    -------
    list of dict
        One ``{"layer", "train_accuracy", "test_accuracy"}`` per layer.
    """
    data = city_facts(seed=seed)
    train, test = data.split(0.25, seed=seed)
    loaded = load_model(model, device=device)
    layers = list(range(loaded.n_layers))
    prompts = train.statements + test.statements
    X = extract_pooled(loaded, prompts, layers, (pooling,), batch_size=batch_size)[pooling]
    X_train, X_test = X[: len(train)], X[len(train) :]
    h = loaded.hidden_size
    rows = []
    for layer in layers:
        cols = slice(layer * h, (layer + 1) * h)
        probe = Probe(layers=layer, pooling=pooling, random_state=seed).fit_from_activations(
            X_train[:, cols], train.labels
        )
        rows.append(
            {
                "layer": layer,
                "train_accuracy": probe.score_from_activations(X_train[:, cols], train.labels),
                "test_accuracy": probe.score_from_activations(X_test[:, cols], test.labels),
            }
        )
    return rows


def format_table(rows: Sequence[dict[str, float]]) -> str:
    """Render the per-layer table with a bar for test accuracy (50% = chance at the left edge).

    Parameters
    ----------
    rows : sequence of dict
        From :func:`layer_table`.

    Returns
    -------
    str
    """
    best = max(rows, key=lambda r: r["test_accuracy"])
    lines = ["layer  train   test   (test accuracy; bar from 50% to 100%)"]
    for r in rows:
        bar = "#" * round(max(0.0, r["test_accuracy"] - 0.5) * 80)
        mark = "  <- best" if r is best else ""
        lines.append(f"{int(r['layer']):>5}  {r['train_accuracy']:.3f}  {r['test_accuracy']:.3f}  {bar}{mark}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m fastprobe.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--pooling", default="last_token", choices=["last_token", "first_token", "mean"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print("Preparing SmolLM2-135M-Instruct (converted once from the bundled GGUF) ...", flush=True)
    model = smollm2()
    data = city_facts(seed=args.seed)
    print(f"Dataset: {len(data)} city statements ({int(np.sum(data.labels))} true), split by city 75/25.", flush=True)
    rows = layer_table(str(model), pooling=args.pooling, seed=args.seed, batch_size=args.batch_size, device=args.device)
    print(format_table(rows))
    best = max(rows, key=lambda r: r["test_accuracy"])
    print(
        f"Best layer: {int(best['layer'])} with test accuracy {best['test_accuracy']:.3f} "
        f"({time.perf_counter() - start:.1f} s in all)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
