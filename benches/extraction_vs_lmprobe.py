"""Extraction on SmolLM2-135M against lmprobe 0.10.3 and against a bare forward pass, side by side in one run.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``), on the CPU, batch
size 8 for everyone (lmprobe's default). Each measurement runs in a fresh process, so its peak resident memory is its
own (the model's weights included, the same for all). Reported (medians over ``--repeats``), for layer 16 alone and
for all 30 layers:

- lmprobe: its cold-cache extraction, ``CachedExtractor.extract`` (what ``Probe.fit`` runs on a new cache: forward
  passes, per-prompt cache files, the padded activation tensor it returns);
- fastprobe: ``extract_to_store`` into a new store (forward passes that stop after the deepest needed block, every
  token of every layer written unpadded with its pooled vectors);
- the floor: a bare forward pass of only the needed blocks (the model cut after the deepest one, no hooks, no copies,
  no cache) over the same batches of tokens as fastprobe.

Run with ``make bench`` or ``python benches/extraction_vs_lmprobe.py``; writes ``bench-results/extraction.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8


def prompts() -> list[str]:
    base = Path(os.environ.get("FASTPROBE_DATA_DIR", ROOT.parent / "shared" / "data"))
    with (base / "cities.csv").open() as f:
        return [r["statement"] for r in csv.DictReader(f)]


def child(kind: str, layers: list[int], limit: int | None) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    import torch

    from fastprobe.extraction import load_model
    from fastprobe.models import smollm2

    torch.set_grad_enabled(False)
    texts = prompts()[:limit]
    model_dir = str(smollm2())
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "lmprobe":
            os.environ["LMPROBE_CACHE_DIR"] = tmp
            from lmprobe.cache import CachedExtractor
            from lmprobe.extraction import ActivationExtractor

            extractor = ActivationExtractor(model_dir, device="cpu", layers=layers, batch_size=BATCH)
            _ = extractor.model  # load before timing
            t0 = time.perf_counter()
            CachedExtractor(extractor).extract(texts)
            elapsed = time.perf_counter() - t0
            tokens = None
        else:
            from fastprobe.extraction import extract_to_store
            from fastprobe.model import anatomy, pad_batch, tokenize
            from fastprobe.store import ActivationStore

            loaded = load_model(model_dir, device="cpu")
            rows = tokenize(loaded, texts)
            tokens = sum(len(r["input_ids"]) for r in rows)
            if kind == "fastprobe":
                store = ActivationStore(tmp)
                t0 = time.perf_counter()
                extract_to_store(loaded, texts, layers, store, batch_size=BATCH, progress=False)
                elapsed = time.perf_counter() - t0
            else:  # the floor: the same batches through only the needed blocks
                body = anatomy(loaded.model)
                kept = body.blocks[: max(layers) + 1]
                full = loaded.model.layers
                loaded.model.layers = kept
                loaded.model.config.num_hidden_layers = len(kept)
                order = sorted(range(len(texts)), key=lambda i: (len(rows[i]["input_ids"]), texts[i]))
                batches = [
                    pad_batch(loaded, [rows[i] for i in order[s : s + BATCH]]) for s in range(0, len(order), BATCH)
                ]
                t0 = time.perf_counter()
                with torch.inference_mode():
                    for batch in batches:
                        loaded.model(**batch, use_cache=False)
                elapsed = time.perf_counter() - t0
                loaded.model.layers = full
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": elapsed, "peak_bytes": peak, "tokens": tokens}


def measure(kind: str, layers: list[int], repeats: int, limit: int | None) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        cmd = [sys.executable, __file__, "--child", kind, "--layers", ",".join(map(str, layers))]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_bytes": statistics.median(r["peak_bytes"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts (smoke runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "extraction.json")
    parser.add_argument("--child", choices=["lmprobe", "fastprobe", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--layers", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, [int(x) for x in args.layers.split(",")], args.limit)))
        return 0
    results: dict[str, Any] = {}
    for label, layers in (("layer 16", [16]), ("all 30 layers", list(range(30)))):
        row = {kind: measure(kind, layers, args.repeats, args.limit) for kind in ("lmprobe", "fastprobe", "floor")}
        results[label] = row
        lm, fp, fl = row["lmprobe"], row["fastprobe"], row["floor"]
        print(
            f"{label:14}: lmprobe {lm['seconds']:.1f} s, {lm['peak_bytes'] / 1e9:.2f} GB peak | fastprobe "
            f"{fp['seconds']:.1f} s, {fp['peak_bytes'] / 1e9:.2f} GB | floor {fl['seconds']:.1f} s, "
            f"{fl['peak_bytes'] / 1e9:.2f} GB || {lm['seconds'] / fp['seconds']:.2f}x faster than lmprobe, "
            f"{fp['peak_bytes'] / lm['peak_bytes']:.2f} of its peak memory, {fp['seconds'] / fl['seconds']:.2f}x "
            "the floor",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
