"""Capture during generation on SmolLM2 (CPU): fastprobe against workflow B's method and bare ``generate``.

The work: 100 prompts of the built-in sentiment set x 4 samples x 20 new tokens (temperature 1, top-p 0.9, seeded),
each prompt in SmolLM2's chat template (the capture's default template, which workflow B applies too), 16 sequences
per ``generate`` call, and the mean of every one of the 30 blocks' outputs over three spans (the prompt,
the instruction, the generated tokens). Each side runs in a fresh process and is timed from after the model is
loaded; its peak memory beyond what the loaded model holds is the process's peak resident set size from that point
(reset through ``/proc/self/clear_refs``) minus its resident size at that point, after a short warm-up generation has
paged the memory-mapped weights in.

- ``floor``: bare ``model.generate`` (the model with its head, from transformers), no capture at all;
- ``floor_sampler``: the same with fastprobe's sampler (``fastprobe.extraction.sampling.Sampler``, the one the
  capture and the monitor draw with) in place of ``generate``'s top-p filter and draw: the capture's own cost, apart
  from what the sampler saves;
- ``workflow_b``: the aligned-probing workflow's method: ``generate(output_hidden_states=True,
  return_dict_in_generate=True)``, then every span's mean computed in Python from the returned hidden states (all
  steps of the batch kept until the call returns);
- ``fastprobe``: ``fastprobe.aligned.capture_generation(model, prompts, "all", n_samples=4, store=...)``: hooks pool
  as the model runs, with the KV cache on, and each batch's vectors stream into a capture store on disk (the
  returned capture reads them from there when asked);
- ``monitor``: ``fastprobe.aligned.monitor_generation`` with a logistic probe on block 16 (fitted first, not timed)
  scoring every generated token of the same 400 templated sequences, against ``floor`` per generated token.

Medians over ``--repeats`` (each side's runs interleaved); writes ``bench-results/capture.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("floor", "floor_sampler", "workflow_b", "fastprobe", "monitor")
SAMPLES, NEW_TOKENS, BATCH_PROMPTS = 4, 20, 4


def _rss() -> tuple[int, int]:
    """(current, peak) resident set size in bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def _mark() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set size to the current one
    return _rss()[0]


def _prompts(n: int) -> list[str]:
    from fastprobe.aligned import sentiment_prompts

    return sentiment_prompts(n, seed=0)


def _templated(tok: Any, prompts: list[str]) -> tuple[list[str], bool, list[tuple[list[int], list[int]]]]:
    """Each prompt in the capture's default template (the tokenizer's chat template), as workflow B renders it: the
    texts, whether to add special tokens, and each one's prompt and instruction token positions."""
    from fastprobe.aligned import PLAIN_TEMPLATE, render

    rendered = [render(PLAIN_TEMPLATE, p, tok) for p in prompts]
    return [r.text for r in rendered], rendered[0].add_special_tokens, [r.token_spans(tok) for r in rendered]


def _plain(path: str, prompts: list[str], hidden: bool, fast_sampler: bool = False) -> tuple[int, float, int]:
    """Bare generate (``hidden=False``) or workflow B's method; returns (generated tokens, seconds, peak bytes)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from fastprobe.extraction.sampling import Sampler

    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    texts, special, spans = _templated(tok, prompts)
    with torch.inference_mode():  # page the memory-mapped weights in before the mark
        lm.generate(**tok(texts[:1], return_tensors="pt"), max_new_tokens=2, pad_token_id=tok.pad_token_id)
    base = _mark()
    t0 = time.perf_counter()
    n_tokens = 0
    pooled: list[Any] = []
    sampler = Sampler(temperature=1.0, top_p=0.9)
    for start in range(0, len(prompts), BATCH_PROMPTS):
        chunk = slice(start, start + BATCH_PROMPTS)
        batch = tok(texts[chunk], return_tensors="pt", padding=True, add_special_tokens=special)
        torch.manual_seed(start)
        sampler.reseed(start)
        how: dict[str, Any] = {"do_sample": True, "temperature": 1.0, "top_p": 0.9, "top_k": 0}
        how["num_return_sequences"] = SAMPLES
        if fast_sampler:  # greedy steps take the sampler's draw; each prompt repeated, as num_return_sequences does
            how = {"do_sample": False, "logits_processor": LogitsProcessorList([sampler])}
            batch = {k: v.repeat_interleave(SAMPLES, dim=0) for k, v in batch.items()}
        with torch.inference_mode():
            out = lm.generate(
                **batch,
                max_new_tokens=NEW_TOKENS,
                **how,
                pad_token_id=tok.pad_token_id,
                output_hidden_states=hidden,
                return_dict_in_generate=True,
            )
        n_tokens += int(out.sequences.shape[0]) * (out.sequences.shape[1] - batch["input_ids"].shape[1])
        if hidden:  # B: prompt and instruction tokens from step 0, generated ones from steps 1..T-1, every block
            width = batch["input_ids"].shape[1]
            prompt_mask = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
            for b, (prompt_pos, _) in enumerate(spans[chunk]):
                pad = width - int(batch["attention_mask"][b].sum())
                prompt_mask[b, [pad + p for p in prompt_pos]] = True
            instruction_mask = batch["attention_mask"].bool() & ~prompt_mask
            states = torch.stack(list(out.hidden_states[0][1:]))  # (L, B*S, T, H)
            means = []
            for mask in (prompt_mask, instruction_mask):
                m = mask.repeat_interleave(SAMPLES, dim=0)[None, :, :, None].float()
                means.append(((states * m).sum(2) / m.sum(2).clamp_min(1)).numpy())
            generated = torch.stack([torch.stack(list(s[1:])) for s in out.hidden_states[1:]])  # (T-1, L, B*S, 1, H)
            means.append(generated.mean(dim=(0, 3)).numpy())
            pooled.append(means)
    return n_tokens, time.perf_counter() - t0, _rss()[1] - base


def _fastprobe(path: str, prompts: list[str]) -> tuple[int, float, int]:
    from fastprobe.aligned import capture_generation
    from fastprobe.model import load_with_head

    loaded = load_with_head(path, device="cpu")
    capture_generation(loaded, prompts[:1], "all", max_new_tokens=2, progress=False)  # page the weights in
    base = _mark()
    t0 = time.perf_counter()
    cap = capture_generation(
        loaded,
        prompts,
        "all",
        store=tempfile.mkdtemp(prefix="fastprobe-capture-bench-"),
        n_samples=SAMPLES,
        max_new_tokens=NEW_TOKENS,
        temperature=1.0,
        top_p=0.9,
        seed=0,
        batch_size=BATCH_PROMPTS * SAMPLES,
        progress=False,
    )
    seconds = time.perf_counter() - t0
    return sum(r.n_generated for r in cap.rows), seconds, _rss()[1] - base


def _monitor(path: str, prompts: list[str]) -> tuple[int, float, int]:
    from fastprobe import Probe
    from fastprobe.aligned import monitor_generation
    from fastprobe.datasets import city_facts
    from fastprobe.model import load_with_head

    facts = city_facts(seed=0)
    loaded = load_with_head(path, device="cpu")
    probe = Probe(model=path, layers=16, pooling="last_token", device="cpu", random_state=0)
    probe.fit(list(facts.statements[:200]), list(facts.labels[:200]))
    texts, special, _ = _templated(loaded.tokenizer, [p for p in prompts for _ in range(SAMPLES)])
    monitor_generation(probe, texts[:1], model=loaded, max_new_tokens=2, add_special_tokens=special)  # warm-up
    base = _mark()
    t0 = time.perf_counter()
    result = monitor_generation(
        probe,
        texts,
        model=loaded,
        add_special_tokens=special,
        max_new_tokens=NEW_TOKENS,
        do_sample=True,
        temperature=1.0,
        top_p=0.9,
        seed=0,
        batch_size=BATCH_PROMPTS * SAMPLES,
    )
    seconds = time.perf_counter() - t0
    return sum(s.n_generated for s in result.sequences), seconds, _rss()[1] - base


def child(side: str, n_prompts: int) -> dict[str, Any]:
    from fastprobe.models import smollm2

    path = str(smollm2())
    prompts = _prompts(n_prompts)
    if side == "floor":
        tokens, seconds, peak = _plain(path, prompts, hidden=False)
    elif side == "floor_sampler":
        tokens, seconds, peak = _plain(path, prompts, hidden=False, fast_sampler=True)
    elif side == "workflow_b":
        tokens, seconds, peak = _plain(path, prompts, hidden=True)
    elif side == "fastprobe":
        tokens, seconds, peak = _fastprobe(path, prompts)
    else:
        tokens, seconds, peak = _monitor(path, prompts)
    return {"side": side, "tokens": tokens, "seconds": seconds, "peak_beyond_model_bytes": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "capture.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.prompts)))
        return 0
    sides = args.sides.split(",")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for _ in range(args.repeats):
        for side in sides:
            cmd = [sys.executable, __file__, "--child", side, "--prompts", str(args.prompts)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    result: dict[str, Any] = {"prompts": args.prompts, "samples": SAMPLES, "new_tokens": NEW_TOKENS, "runs": runs}
    for side in sides:
        result[side] = {
            "seconds": statistics.median(r["seconds"] for r in runs[side]),
            "peak_beyond_model_bytes": statistics.median(r["peak_beyond_model_bytes"] for r in runs[side]),
            "tokens": statistics.median(r["tokens"] for r in runs[side]),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for side in sides:
        r = result[side]
        print(
            f"{side:>13}: {r['seconds']:.2f} s, {r['peak_beyond_model_bytes'] / 1e6:.0f} MB beyond the model, "
            f"{r['tokens']:.0f} tokens (runs: {[round(x['seconds'], 2) for x in runs[side]]})"
        )
    for floor in ("floor", "floor_sampler"):
        if {floor, "fastprobe"} <= set(sides):
            print(f"fastprobe / {floor}: {result['fastprobe']['seconds'] / result[floor]['seconds']:.3f}x")
    if {"workflow_b", "fastprobe"} <= set(sides):
        b, f = result["workflow_b"], result["fastprobe"]
        print(
            f"workflow B / fastprobe: {b['seconds'] / f['seconds']:.2f}x the time; fastprobe's memory beyond the model "
            f"{f['peak_beyond_model_bytes'] / max(b['peak_beyond_model_bytes'], 1):.3f} of B's"
        )
    for floor in ("floor", "floor_sampler"):
        if {floor, "monitor"} <= set(sides):
            m, fl = result["monitor"], result[floor]
            per = (m["seconds"] / m["tokens"] - fl["seconds"] / fl["tokens"]) * 1e3
            print(f"monitor / {floor}: {m['seconds'] / fl['seconds']:.3f}x; {per:.3f} ms more per generated token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
