"""Attention-head probing on SmolLM2: fastprobe against the same steps done with plain transformers, in one run.

The workflow (the noun-it task: 97 nouns x 4 templates = 388 sentences; CPU):

1. head search over a seeded sample of 50 sentences: the attention of "it" on the noun, per (layer, head);
2. a dataset of the top head's output at "it" for all 388 sentences;
3. a multinomial logistic probe on a seeded 80/20 split (the same split on both sides).

``plain`` does it as the attention-head probing workflow does: one forward pass per sentence with every attention
map returned (eager attention, ``output_attentions=True``), then one more per sentence with a hook on the top head's
block to read its output, and scikit-learn's logistic regression. ``fastprobe`` uses ``score_heads``,
``build_position_dataset`` and ``LogisticProbe``. Each side runs in a fresh process (times include importing and
loading the model; peak memory is the process's own); medians over ``--repeats``. The time of the steps after the
model is loaded (search, dataset, probe) is reported beside it. Also reported: whether both rank
the heads the same way, the largest difference of the attention scores and of the probe inputs.

Run with ``make bench`` or ``python benches/heads_vs_transformers.py``; writes ``bench-results/heads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("plain", "fastprobe")


def task(n_nouns: int) -> tuple[list[str], list[str], list[int], list[int]]:
    """(texts, nouns, labels, search sample) of the noun-it task."""
    from fastprobe.heads.noun_it import NOUNS, noun_it_sentences

    nouns = list(NOUNS[:n_nouns])
    sentences = noun_it_sentences(nouns)
    sample = sorted(random.Random(0).sample(range(len(sentences)), min(50, len(sentences))))
    return [s.text for s in sentences], nouns, [s.label for s in sentences], sample


def _whole_token(tokens: list[str], word: str) -> int:
    return next(i for i, t in enumerate(tokens) if t in (word, "Ġ" + word))


def plain(model_path: str, n_nouns: int, out: Path) -> dict[str, Any]:
    """The workflow with transformers alone, one sentence at a time."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    texts, nouns, labels, sample = task(n_nouns)
    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()
    loaded_at = time.perf_counter()
    n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
    weight = np.zeros((n_layers, n_heads))
    for i in sample:
        enc = tok(texts[i], return_tensors="pt")
        tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
        query, key = _whole_token(tokens, "it"), _whole_token(tokens, nouns[labels[i]])
        with torch.inference_mode():
            maps = model(**enc, output_attentions=True).attentions
        for layer in range(n_layers):
            weight[layer] += maps[layer][0, :, query, key].double().numpy()
    weight /= len(sample)
    order = sorted((-weight[layer, head], layer, head) for layer in range(n_layers) for head in range(n_heads))
    layer, head = order[0][1], order[0][2]
    proj = model.layers[layer].self_attn.o_proj
    width = proj.in_features // n_heads
    block = proj.weight.T.reshape(n_heads, width, -1)[head]
    seen: dict[str, Any] = {}
    handle = proj.register_forward_hook(lambda _m, inputs, _o: seen.__setitem__("x", inputs[0]))
    rows = []
    for text in texts:
        enc = tok(text, return_tensors="pt")
        query = _whole_token(tok.convert_ids_to_tokens(enc["input_ids"][0]), "it")
        with torch.inference_mode():
            model(**enc)
            rows.append((seen["x"][0, query, head * width : (head + 1) * width] @ block).numpy())
    handle.remove()
    X = np.stack(rows).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(texts))  # the seeded split PositionDataset.split makes
    n_test = -(-len(texts) * 2 // 10)
    test, train = order[:n_test], order[n_test:]
    y = np.asarray(labels)
    clf = LogisticRegression(max_iter=1000).fit(X[train], y[train])
    steps = time.perf_counter() - loaded_at
    np.save(out / "plain_X.npy", X)
    np.save(out / "plain_attention.npy", weight)
    return {"head": f"{layer}.{head}", "accuracy": float(clf.score(X[test], y[test])), "steps_seconds": steps}


def fastprobe_run(model_path: str, n_nouns: int, out: Path) -> dict[str, Any]:
    """The workflow with fastprobe: batched, scored, only the query rows and the blocks needed."""
    from fastprobe.estimators import LogisticProbe
    from fastprobe.extraction import load_model
    from fastprobe.heads import build_position_dataset, find_token_positions, score_heads

    texts, nouns, labels, sample = task(n_nouns)
    loaded = load_model(model_path, device="cpu")
    loaded_at = time.perf_counter()
    it = [find_token_positions(loaded, t, "it", whole_token=True).last for t in texts]
    noun_at = [
        find_token_positions(loaded, t, nouns[y], whole_token=True).last for t, y in zip(texts, labels, strict=True)
    ]
    scores = score_heads(
        loaded, [texts[i] for i in sample], [it[i] for i in sample], [noun_at[i] for i in sample], progress=False
    )
    layer, head = scores.ranked("attention")[0]
    dataset = build_position_dataset(
        loaded,
        list(zip(texts, it, labels, strict=True)),
        [f"head.{layer}.{head}"],
        class_names=nouns,
        progress=False,
    )
    train, test = dataset.split(test_size=0.2, random_state=0)
    clf = LogisticProbe(C=1.0, max_iter=1000).fit(train.X, train.labels)
    steps = time.perf_counter() - loaded_at
    np.save(out / "fastprobe_X.npy", dataset.X)
    np.save(out / "fastprobe_attention.npy", scores.attention)
    return {
        "head": f"{layer}.{head}",
        "accuracy": float(np.mean(clf.predict(test.X) == test.labels)),
        "steps_seconds": steps,
    }


def child(kind: str, n_nouns: int, out: Path) -> dict[str, Any]:
    from fastprobe.models import smollm2

    path = str(smollm2())
    t0 = time.perf_counter()
    result = plain(path, n_nouns, out) if kind == "plain" else fastprobe_run(path, n_nouns, out)
    result["seconds"] = time.perf_counter() - t0
    result["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(kind: str, n_nouns: int, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--nouns", str(n_nouns), "--dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nouns", type=int, default=97)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "heads.json")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.nouns, args.dir)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _run("plain", 4, work)  # prime the bytecode caches and the model's conversion (not measured)
        _run("fastprobe", 4, work)
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for _ in range(args.repeats):
            for kind in KINDS:
                runs[kind].append(_run(kind, args.nouns, work))
        X = {kind: np.load(work / f"{kind}_X.npy") for kind in KINDS}
        A = {kind: np.load(work / f"{kind}_attention.npy") for kind in KINDS}
    summary: dict[str, Any] = {}
    for kind in KINDS:
        summary[kind] = {
            "seconds": statistics.median(r["seconds"] for r in runs[kind]),
            "steps_seconds": statistics.median(r["steps_seconds"] for r in runs[kind]),
            "peak_bytes": statistics.median(r["peak_bytes"] for r in runs[kind]),
            "runs": [round(r["seconds"], 3) for r in runs[kind]],
            "head": runs[kind][0]["head"],
            "accuracy": runs[kind][0]["accuracy"],
        }

    def ranking(a: np.ndarray) -> list[tuple[int, int]]:
        return [
            (int(i), int(h))
            for _, i, h in sorted((-a[i, h], i, h) for i in range(a.shape[0]) for h in range(a.shape[1]))
        ]

    summary["same_ranking"] = ranking(A["plain"]) == ranking(A["fastprobe"])
    summary["same_top10"] = ranking(A["plain"])[:10] == ranking(A["fastprobe"])[:10]
    summary["attention_max_diff"] = float(np.max(np.abs(A["plain"] - A["fastprobe"])))
    summary["probe_input_max_diff"] = float(np.max(np.abs(X["plain"] - X["fastprobe"])))
    summary["probe_input_scale"] = float(np.max(np.abs(X["plain"])))
    pl, fp = summary["plain"], summary["fastprobe"]
    print(
        f"plain transformers {pl['seconds']:.2f} s (runs {pl['runs']}), {pl['peak_bytes'] / 1e9:.2f} GB peak | "
        f"fastprobe {fp['seconds']:.2f} s (runs {fp['runs']}), {fp['peak_bytes'] / 1e9:.2f} GB peak || "
        f"{pl['seconds'] / fp['seconds']:.1f}x faster, {fp['peak_bytes'] / pl['peak_bytes']:.2f} of the peak memory; "
        f"the steps after loading the model: {pl['steps_seconds']:.2f} s vs {fp['steps_seconds']:.2f} s "
        f"({pl['steps_seconds'] / fp['steps_seconds']:.1f}x); "
        f"top head {pl['head']} vs {fp['head']}, same ranking: {summary['same_ranking']} (top 10: "
        f"{summary['same_top10']}), attention max diff {summary['attention_max_diff']:.2e}, probe inputs max diff "
        f"{summary['probe_input_max_diff']:.2e} (of values up to {summary['probe_input_scale']:.2f}); test accuracy "
        f"{pl['accuracy']:.3f} vs {fp['accuracy']:.3f}",
        flush=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
