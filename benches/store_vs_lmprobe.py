"""The activation store against lmprobe 0.10.3's cache and against plain zstd, on real SmolLM2 activations.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``), every token of all
30 layers of SmolLM2-135M-Instruct on the CPU. Run with ``make bench`` or ``python benches/store_vs_lmprobe.py``;
prints a table and writes ``bench-results/store.json``. Reported:

- bytes on disk of lmprobe's cache (``Probe.warmup``, all layers) and of fastprobe's store (default bfloat16);
- pooled read of all prompts x 30 layers, last token: fastprobe ``read_pooled`` against lmprobe's cached path (what
  its ``Probe.fit`` / ``predict`` run on a warm cache: check every prompt's file, reload the raw activations, pad,
  pool; ``Probe._extract_and_pool``);
- the store's codec (byte-shuffled bfloat16 + zstd level 1) against plain zstd (levels 1 and 3) of the same bfloat16
  bytes: compression ratio and single-core speed;
- write and read throughput of the store on one core, in MB/s of raw float32 activations (reads layer by layer, and
  all layers in one call into one (tokens, 30 * hidden) array, whose scattered column blocks cost extra).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def data_file() -> Path:
    base = Path(os.environ.get("FASTPROBE_DATA_DIR", ROOT.parent / "shared" / "data"))
    return base / "cities.csv"


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        out = None  # free the previous result first, as a loop over calls would
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts (smoke runs)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--record-prompts", type=int, default=64, help="prompts per stored record")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "store.json")
    args = parser.parse_args(argv)
    if not data_file().is_file():
        print(f"skipped: {data_file()} not found (set FASTPROBE_DATA_DIR)")
        return 0

    import torch
    import zstandard

    from fastprobe import ActivationStore
    from fastprobe.extraction import extract_to_store, load_model
    from fastprobe.models import smollm2

    torch.set_num_threads(os.cpu_count() or 1)
    with data_file().open() as f:
        prompts = [row["statement"] for row in csv.DictReader(f)][: args.limit]
    model = str(smollm2())
    work = Path(tempfile.mkdtemp(prefix="fastprobe-bench-store-"))
    results: dict[str, Any] = {
        "prompts": len(prompts),
        "layers": 30,
        "device": "cpu",
        "record_prompts": args.record_prompts,
    }
    try:
        # ---- lmprobe: its own cache of the same prompts and layers.
        os.environ["LMPROBE_CACHE_DIR"] = str(work / "lmprobe")
        from lmprobe import Probe as LmProbe
        from lmprobe.cache import set_cache_backend

        set_cache_backend(None)
        lm_probe = LmProbe(model=model, layers="all", device="cpu")  # lmprobe's default batch size
        t0 = time.perf_counter()
        lm_probe.warmup(prompts)
        results["lmprobe_extract_s"] = time.perf_counter() - t0
        results["lmprobe_bytes"] = du(work / "lmprobe")

        # ---- fastprobe: extract the same tokens into a store (default bfloat16), records of --record-prompts.
        loaded = load_model(model, device="cpu")
        layers = list(range(loaded.n_layers))
        store = ActivationStore(work / "fastprobe")
        t0 = time.perf_counter()
        extract_to_store(loaded, prompts, layers, store, batch_size=args.batch_size, record_prompts=args.record_prompts)
        results["fastprobe_extract_and_write_s"] = time.perf_counter() - t0
        results["fastprobe_bytes"] = du(work / "fastprobe")
        # The token batches again, as the records hold them (prompts by token count, then text), for the codec
        # runs: (layers, tokens, hidden) float32 of the stored bfloat16 values, whose bfloat16 bytes are the stored
        # ones (rounding a bfloat16 value to bfloat16 again changes nothing).
        stored = sorted(store.prompts(), key=lambda p: (p[2], p[0]))
        batches: list[tuple[list[str], np.ndarray, np.ndarray]] = []
        for start in range(0, len(stored), args.record_prompts):
            names = [p[0] for p in stored[start : start + args.record_prompts]]
            values, offsets = store.read_tokens(names, layers)
            tokens = np.ascontiguousarray(values.reshape(len(values), len(layers), -1).transpose(1, 0, 2))
            batches.append((names, tokens, np.diff(offsets)))
        raw_f32 = sum(t.nbytes for _, t, _ in batches)
        results["raw_float32_bytes"] = raw_f32

        # ---- pooled read, last token, all prompts x all layers.
        t_ours, ours = median_time(lambda: store.read_pooled(prompts, layers, "last_token"), args.repeats)
        t_lm, theirs = median_time(
            lambda: lm_probe._extract_and_pool(prompts, "last_token")[0],
            max(1, args.repeats // 2),
        )
        results["pooled_read_fastprobe_s"] = t_ours
        results["pooled_read_lmprobe_s"] = t_lm
        theirs = np.asarray(theirs, dtype=np.float32)
        scale = np.abs(theirs).max()
        results["pooled_read_max_abs_diff_over_scale"] = float(np.abs(ours - theirs).max() / scale)

        # ---- codec against plain zstd, one core: on the same token bytes, and on the same content as the store
        # (tokens plus the three pooled vectors per prompt and layer), all as raw bfloat16 in the same groups.
        def bf16_bytes(a: np.ndarray) -> bytes:
            return torch.from_numpy(np.ascontiguousarray(a)).bfloat16().view(torch.int16).numpy().tobytes()

        bf16 = [bf16_bytes(t) for _, t, _ in batches]
        raw_bf16 = sum(len(b) for b in bf16)
        same_content = []
        for _, t, counts in batches:
            ends = np.cumsum(counts)
            starts = ends - counts
            means = np.stack([np.add.reduceat(t[j], starts, axis=0) / counts[:, None] for j in range(t.shape[0])])
            same_content.append(
                bf16_bytes(t) + bf16_bytes(t[:, ends - 1]) + bf16_bytes(means) + bf16_bytes(t[:, starts])
            )
        for level in (1, 3):
            cctx = zstandard.ZstdCompressor(level=level, threads=0)
            t_c, frames = median_time(lambda cctx=cctx: [cctx.compress(b) for b in bf16], 3)
            dctx = zstandard.ZstdDecompressor()
            t_d, _ = median_time(lambda frames=frames, dctx=dctx: [dctx.decompress(f) for f in frames], 3)
            results[f"plain_zstd{level}_ratio_vs_bf16"] = raw_bf16 / sum(len(f) for f in frames)
            results[f"plain_zstd{level}_compress_MBps_f32"] = raw_f32 / t_c / 1e6
            results[f"plain_zstd{level}_decompress_MBps_f32"] = raw_f32 / t_d / 1e6
            same = sum(len(cctx.compress(b)) for b in same_content)
            results[f"plain_zstd{level}_same_content_bytes"] = same
        record_bytes = store.stats()["live_bytes"]
        results["store_ratio_vs_bf16"] = raw_bf16 / record_bytes
        results["store_ratio_vs_f32"] = raw_f32 / record_bytes

        # ---- store write and read throughput on one core (raw float32 MB/s).
        def write_all() -> None:
            fresh = ActivationStore(work / f"write-{time.perf_counter_ns()}")
            for names, tokens, counts in batches:
                fresh.write(names, tokens, counts, sites=layers, n_threads=1)

        t_w, _ = median_time(write_all, 3)
        results["store_write_MBps_f32_1core"] = raw_f32 / t_w / 1e6

        def read_layer_by_layer() -> None:
            for layer in layers:
                store.read_tokens(prompts, [layer], n_threads=1)

        t_r, _ = median_time(read_layer_by_layer, 3)
        results["store_read_MBps_f32_1core"] = raw_f32 / t_r / 1e6
        t_r1, _ = median_time(lambda: store.read_tokens(prompts, layers, n_threads=1), 3)
        results["store_read_all_layers_one_call_MBps_f32_1core"] = raw_f32 / t_r1 / 1e6
        t_r_all, _ = median_time(lambda: store.read_tokens(prompts, layers), 3)
        results["store_read_MBps_f32_all_cores"] = raw_f32 / t_r_all / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)

    r = results
    rows = [
        (
            "bytes on disk",
            f"{r['lmprobe_bytes'] / 1e6:,.0f} MB",
            f"{r['fastprobe_bytes'] / 1e6:,.0f} MB",
            f"1/{r['lmprobe_bytes'] / r['fastprobe_bytes']:.1f}",
        ),
        (
            "pooled read, last token, all layers (median)",
            f"{r['pooled_read_lmprobe_s']:.3f} s",
            f"{r['pooled_read_fastprobe_s']:.3f} s",
            f"{r['pooled_read_lmprobe_s'] / r['pooled_read_fastprobe_s']:.0f}x faster",
        ),
    ]
    print(f"\n{len(prompts)} prompts x 30 layers, SmolLM2-135M, CPU; raw float32 activations {raw_f32 / 1e6:,.0f} MB")
    print(f"{'':48} {'lmprobe':>12} {'fastprobe':>12}  ratio")
    for name, a, b, ratio in rows:
        print(f"{name:48} {a:>12} {b:>12}  {ratio}")
    print(
        f"store compression vs raw bfloat16: {r['store_ratio_vs_bf16']:.2f}x "
        f"(vs float32 {r['store_ratio_vs_f32']:.2f}x); plain zstd of the tokens alone: level 1 "
        f"{r['plain_zstd1_ratio_vs_bf16']:.2f}x, level 3 {r['plain_zstd3_ratio_vs_bf16']:.2f}x"
    )
    print(
        f"same content as the store (tokens + pooled last/mean/first): store {r['fastprobe_bytes'] / 1e6:,.0f} MB, "
        f"plain zstd-1 {r['plain_zstd1_same_content_bytes'] / 1e6:,.0f} MB, "
        f"zstd-3 {r['plain_zstd3_same_content_bytes'] / 1e6:,.0f} MB"
    )
    print(
        f"one core, MB/s of raw float32: store write {r['store_write_MBps_f32_1core']:,.0f}, "
        f"read {r['store_read_MBps_f32_1core']:,.0f} layer by layer, "
        f"{r['store_read_all_layers_one_call_MBps_f32_1core']:,.0f} all layers in one call "
        f"(all cores {r['store_read_MBps_f32_all_cores']:,.0f}); "
        f"plain zstd-1 compress {r['plain_zstd1_compress_MBps_f32']:,.0f}, "
        f"decompress {r['plain_zstd1_decompress_MBps_f32']:,.0f}"
    )
    print(
        f"pooled values agree with lmprobe's to {r['pooled_read_max_abs_diff_over_scale']:.1e} of their scale "
        "(bfloat16 storage)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
