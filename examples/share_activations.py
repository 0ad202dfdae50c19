r"""Share a layer sweep's activations through the Hugging Face Hub, then train probes from the shared copy.

A layer sweep caches every layer's activations of its prompts. ``push_dataset`` publishes them (lmprobe's dataset
format 2.0: a parquet index plus per-layer safetensors shards), and anyone can then train on them without the model:
``load_activations`` gives arrays, and ``pull_dataset`` puts them into fastprobe's cache so that a ``Probe`` on the
same model trains on those prompts without running it.

Usage::

    python examples/share_activations.py user/city-facts-activations \\
        [--model HuggingFaceTB/SmolLM2-135M-Instruct] [--layers all] [--endpoint URL] [--token TOKEN]

``--endpoint`` points at another Hub (a mirror, or the test suite's stand-in); the token defaults to the one
``huggingface-cli login`` saved.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from fastprobe import Probe
from fastprobe.datasets import city_facts
from fastprobe.sharing import fetch_dataset_metadata, load_activations, push_dataset


@contextlib.contextmanager
def hub_endpoint(endpoint: str | None) -> Iterator[None]:
    """Talk to ``endpoint`` instead of huggingface.co inside the block (nothing changes when it is None)."""
    if endpoint is None:
        yield
        return
    from fastprobe.testing_hub import use_hub

    with use_hub(endpoint):
        yield


def main(argv: Sequence[str] | None = None) -> None:
    """Sweep, push, load back and train one probe per layer from the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo_id", help="dataset repository to push to, 'user/name'")
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    parser.add_argument("--layers", default="all", help="'all' or a comma-separated list of layers")
    parser.add_argument("--endpoint", default=None, help="Hub endpoint (default: huggingface.co)")
    parser.add_argument("--token", default=None, help="Hugging Face token (default: the saved one)")
    parser.add_argument("--n", type=int, default=60, help="number of statements")
    args = parser.parse_args(argv)
    layers = args.layers if args.layers == "all" else [int(x) for x in args.layers.split(",")]

    data = city_facts(args.n, seed=0)
    prompts, labels = data.statements, data.labels
    sweep = Probe.sweep_layers(args.model, prompts, labels, layers=layers, device="cpu", random_state=0)
    print(f"swept layers {sweep.layers} of {args.model}; their activations are cached")

    with hub_endpoint(args.endpoint):
        url = push_dataset(
            args.repo_id,
            args.model,
            prompts,
            labels=labels.tolist(),
            metadata=[{"city": c} for c in data.cities],
            description="True and false statements about which country a city is in (fastprobe's city_facts).",
            token=args.token,
            exist_ok=True,
        )
        print(f"pushed {len(prompts)} prompts to {url}")
        meta = fetch_dataset_metadata(args.repo_id, token=args.token)
        print(f"the dataset holds layers {meta.available_layers} of {meta.model_name}")
        acts, y = load_activations(args.repo_id, token=args.token, return_labels=True, show_progress=False)

    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[: len(y) // 2], order[len(y) // 2 :]
    scores = {}
    for layer, x in acts.items():
        probe = Probe(classifier="logistic_regression", random_state=0).fit_from_activations(x[train], y[train])
        scores[layer] = probe.score_from_activations(x[test], y[test])
        print(f"layer {layer}: held-out accuracy {scores[layer]:.3f} (trained from the dataset, no model)")
    best = max(scores, key=lambda k: scores[k])
    print(f"best layer {best}: {scores[best]:.3f}")


if __name__ == "__main__":
    main()
