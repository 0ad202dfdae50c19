"""Attention-head probing on SmolLM2, offline: the heads that carry a noun to a later "it", and what they carry.

1. 97 nouns x 4 templates = 388 sentences ("I saw a cat, and it was big.").
2. Head search over a seeded sample of 50 sentences: every (layer, head) scored by the attention of "it" on the
   noun, the noun's rank and the fraction of sentences where the noun is the top key; the ranking is printed and
   the heatmap saved.
3. The causal check: a probe on the residual stream at "it" a few blocks later, and its accuracy with each top head
   ablated.
4. A dataset of the top head's output at "it" for all 388 sentences (saved as safetensors + JSON, and exported to
   the workflow's JSONL format), a seeded stratified 80/20 split, a multinomial logistic probe and an MLP probe,
   their test accuracy.
5. The probe's prediction for a sentence outside the dataset.

Run: ``python examples/attention_heads.py [--out DIR] [--nouns N] [--search N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np


def main(
    out: Path, n_nouns: int = 97, n_search: int = 50, seed: int = 0, progress: bool = True, top: int = 10
) -> dict[str, Any]:
    """Run the workflow; return its numbers (also written to ``out / "results.json"``)."""
    from fastprobe.estimators import LogisticProbe, MLPProbe
    from fastprobe.extraction import load_model
    from fastprobe.heads import build_position_dataset, find_token_positions, head_effects, score_heads
    from fastprobe.heads.noun_it import NOUNS, noun_it_sentences
    from fastprobe.models import smollm2

    out.mkdir(parents=True, exist_ok=True)
    loaded = load_model(smollm2(), device="cpu")
    nouns = list(NOUNS[:n_nouns])
    sentences = noun_it_sentences(nouns)
    texts = [s.text for s in sentences]
    it = [find_token_positions(loaded, t, "it", whole_token=True).last for t in texts]
    noun_at = [find_token_positions(loaded, s.text, s.noun, whole_token=True).last for s in sentences]
    print(f"{len(texts)} sentences, {len(nouns)} nouns; e.g. {texts[0]!r}: 'it' at token {it[0]}, noun at {noun_at[0]}")

    # 2. The head search.
    sample = sorted(random.Random(seed).sample(range(len(texts)), min(n_search, len(texts))))
    scores = score_heads(
        loaded, [texts[i] for i in sample], [it[i] for i in sample], [noun_at[i] for i in sample], progress=progress
    )
    ranked = scores.ranked("attention", top=top)
    print(f"\nheads ranked by the attention of 'it' on the noun ({len(sample)} sentences):")
    print(f"{'head':>6} {'attention':>9} {'rank':>6} {'top-1':>6}")
    for layer, head in ranked:
        print(
            f"{layer:>3}.{head:<2} {scores.attention[layer, head]:9.3f} {scores.rank[layer, head]:6.2f} "
            f"{scores.top_k[layer, head]:6.2f}"
        )
    always = scores.heads_where(1.0)
    print(f"heads where the noun is the top key in every sentence: {[f'{a}.{b}' for a, b in always]}")
    scores.plot(path=out / "heads.png")
    best = ranked[0]

    # 3. The causal check: a probe on the residual stream a few blocks after the top heads, with each ablated.
    resid = min(loaded.n_layers - 1, max(layer for layer, _ in ranked[:3]) + 2)
    X_resid = build_position_dataset(
        loaded,
        [(s.text, p, s.label) for s, p in zip(sentences, it, strict=True)],
        [resid],
        class_names=nouns,
        progress=progress,
    )
    train_r, test_r = X_resid.split(test_size=0.2, random_state=seed)
    resid_probe = LogisticProbe(C=1.0, max_iter=1000).fit(train_r.X, train_r.labels)
    effects = head_effects(
        loaded,
        test_r.texts,
        test_r.positions,
        ranked[:3],
        classifier=resid_probe,
        site=resid,
        labels=test_r.labels,
        progress=progress,
    )
    print(f"\nprobe on resid.{resid} at 'it': held-out accuracy {effects.clean:.3f}; with one head ablated:")
    for (layer, head), acc in zip(effects.heads, effects.ablated, strict=True):
        print(f"  {layer}.{head}: {acc:.3f} (drop {effects.clean - acc:+.3f})")

    # 4. The dataset of the top head's output at "it", and the probes.
    site = f"head.{best[0]}.{best[1]}"
    dataset = build_position_dataset(
        loaded,
        [(s.text, p, s.label) for s, p in zip(sentences, it, strict=True)],
        [site],
        class_names=nouns,
        metadata={"experiment": "noun-it test"},
        progress=progress,
    )
    dataset.save(out / "noun_it.safetensors")
    dataset.to_jsonl(out / "noun_it.jsonl")
    train, test = dataset.split(test_size=0.2, random_state=seed)
    logistic = LogisticProbe(C=1.0, max_iter=1000).fit(train.X, train.labels)
    mlp = MLPProbe(hidden_size=128, learning_rate=1e-3, max_epochs=200, random_state=seed).fit(train.X, train.labels)
    results = {
        "head": site,
        "ranked": [f"{a}.{b}" for a, b in ranked],
        "always_top": [f"{a}.{b}" for a, b in always],
        "n_train": len(train),
        "n_test": len(test),
        "chance": 1.0 / len(nouns),
        "logistic_test_accuracy": float(np.mean(logistic.predict(test.X) == test.labels)),
        "mlp_test_accuracy": float(np.mean(mlp.predict(test.X) == test.labels)),
        "mlp_epochs": int(mlp.n_epochs_),
        "resid_site": resid,
        "resid_probe_accuracy": effects.clean,
        "resid_probe_ablated": {f"{a}.{b}": float(v) for (a, b), v in zip(effects.heads, effects.ablated, strict=True)},
    }
    print(
        f"\n{site} at 'it' ({len(train)} train / {len(test)} test, chance {results['chance']:.3f}): logistic "
        f"{results['logistic_test_accuracy']:.3f}, MLP {results['mlp_test_accuracy']:.3f} "
        f"({results['mlp_epochs']} epochs)"
    )

    # 5. A sentence outside the dataset.
    noun = "box" if "box" in nouns else nouns[0]
    unseen = f"In the corner of the room there was a {noun}. I wonder what is in it."
    from fastprobe.extraction import extract_at

    where = find_token_positions(loaded, unseen, "it", whole_token=True, occurrence="last").last
    x = extract_at(loaded, [unseen], [where], site, progress=False)
    guess = nouns[int(logistic.predict(x)[0])]
    results["unseen"] = {"text": unseen, "noun": noun, "predicted": guess}
    print(f"unseen: {unseen!r} -> the probe says {guess!r}")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("attention-heads-out"))
    parser.add_argument("--nouns", type=int, default=97)
    parser.add_argument("--search", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.out, args.nouns, args.search, args.seed)
