"""Capture during generation against a plain forward pass over each finished sequence, on tiny models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fastprobe import InvalidInputError, UnknownOptionError
from fastprobe.aligned import PromptTemplate, render
from fastprobe.aligned.capture import capture_generation
from fastprobe.extraction import load_model
from fastprobe.testing import tiny_model

PROMPTS = ["The cat sat on the mat", "A dog ran", "I saw a box in the corner and"]
TEMPLATES = [
    PromptTemplate("{prompt}", name="plain"),
    PromptTemplate("Continue: {prompt}", system="Be brief.", name="brief"),
]


def reference(loaded: Any, cap: Any, layers: list[int]) -> dict[tuple[str, int], np.ndarray]:
    """Each row's templated input plus its kept tokens, run alone; each span's mean at each layer."""
    tok = loaded.tokenizer
    out: dict[tuple[str, int], list[np.ndarray]] = {}
    for row in cap.rows:
        template = next(t for t in TEMPLATES if t.name == row.template)
        ti = render(template, cap.prompts[row.prompt], tok)
        ids = tok(ti.text, add_special_tokens=ti.add_special_tokens)["input_ids"]
        prompt_pos, instruction_pos = ti.token_spans(tok)
        new = list(row.tokens)
        with torch.inference_mode():
            hidden = loaded.model(torch.tensor([ids + new]), output_hidden_states=True).hidden_states
        gen_pos = list(range(len(ids), len(ids) + len(new)))
        for layer in layers:
            h = hidden[layer + 1][0].double().numpy()
            for span, pos in (("prompt", prompt_pos), ("instruction", instruction_pos), ("generation", gen_pos)):
                out.setdefault((span, layer), []).append(h[pos].mean(axis=0))
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen2"])
def test_pooled_spans_equal_a_forward_pass_over_each_finished_sequence(arch: str) -> None:
    loaded = load_model(tiny_model(arch, padding_side="left"), device="cpu")
    cap = capture_generation(
        loaded,
        PROMPTS,
        [0, 2],
        templates=TEMPLATES,
        n_samples=2,
        max_new_tokens=6,
        seed=3,
        batch_size=4,
        progress=False,
    )
    assert len(cap.rows) == len(PROMPTS) * 2 * 2 and cap.sites == ["resid.0", "resid.2"]
    assert [(r.prompt, r.template, r.sample) for r in cap.rows[:4]] == [
        (0, "plain", 0),
        (0, "plain", 1),
        (0, "brief", 0),
        (0, "brief", 1),
    ]
    for r in cap.rows:
        assert 1 <= r.n_generated <= 6 and (r.ended or r.n_generated == 6)
    want = reference(loaded, cap, [0, 2])
    h = loaded.model.config.hidden_size
    for span in ("prompt", "instruction", "generation"):
        got = cap.span(span)
        for j, layer in enumerate([0, 2]):
            np.testing.assert_allclose(got[:, j * h : (j + 1) * h], want[(span, layer)], rtol=1e-4, atol=1e-5)


def test_the_same_seed_gives_the_same_samples_and_another_seed_others() -> None:
    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    kw: dict[str, Any] = {"n_samples": 3, "max_new_tokens": 8, "progress": False, "poolings": ("mean", "max")}
    a = capture_generation(loaded, PROMPTS, [1], seed=0, **kw)
    b = capture_generation(loaded, PROMPTS, [1], seed=0, **kw)
    c = capture_generation(loaded, PROMPTS, [1], seed=1, **kw)
    assert [r.tokens for r in a.rows] == [r.tokens for r in b.rows] != [r.tokens for r in c.rows]
    np.testing.assert_array_equal(a.span("generation", "max"), b.span("generation", "max"))
    assert len({r.tokens for r in a.rows if r.prompt == 0}) > 1  # the samples of one prompt differ
    with pytest.raises(UnknownOptionError, match="no 'generation' span pooled by 'min'"):
        a.span("generation", "min")


def test_bad_input() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    with pytest.raises(InvalidInputError, match="n_samples must be at least 1; got 0"):
        capture_generation(loaded, PROMPTS, [1], n_samples=0, progress=False)
    with pytest.raises(UnknownOptionError, match="unknown pooling 'median'"):
        capture_generation(loaded, PROMPTS, [1], poolings=("median",), progress=False)
    with pytest.raises(InvalidInputError, match="empty"):
        capture_generation(loaded, ["fine", "  "], [1], progress=False)


# --- the capture store: streaming, resuming, settings -----------------------------------------------------------


def _kw() -> dict[str, Any]:
    return {"n_samples": 2, "max_new_tokens": 5, "seed": 4, "batch_size": 2, "progress": False, "poolings": ("mean",)}


def _same(a: Any, b: Any) -> None:
    assert [(r.prompt, r.template, r.sample, r.tokens, r.continuation, r.ended) for r in a.rows] == [
        (r.prompt, r.template, r.sample, r.tokens, r.continuation, r.ended) for r in b.rows
    ]
    for span in ("prompt", "instruction", "generation"):
        np.testing.assert_array_equal(a.span(span), b.span(span))


def test_the_batching_changes_no_continuation_and_no_vector_beyond_rounding() -> None:
    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    kw = _kw() | {"top_p": 0.9, "temperature": 1.2}
    runs = [
        capture_generation(loaded, PROMPTS, [0, 2], templates=TEMPLATES, **(kw | {"batch_size": b}))
        for b in (1, 3, None)
    ]
    for other in runs[1:]:
        assert [r.tokens for r in other.rows] == [r.tokens for r in runs[0].rows]
        for span in ("prompt", "instruction", "generation"):
            np.testing.assert_allclose(other.span(span), runs[0].span(span), rtol=1e-4, atol=1e-5)
    assert len({r.tokens for r in runs[0].rows}) > 1  # the samples differ from one another


def test_a_stored_capture_equals_the_in_memory_one_and_a_rerun_generates_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastprobe.aligned.capture as capture_module

    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    memory = capture_generation(loaded, PROMPTS, [0, 2], templates=TEMPLATES, **_kw())
    stored = capture_generation(loaded, PROMPTS, [0, 2], templates=TEMPLATES, store=tmp_path / "cap", **_kw())
    _same(stored, memory)
    generated: list[int] = []
    real = capture_module.generate_batches

    def counting(*args: Any, **kwargs: Any) -> Any:
        for gen in real(*args, **kwargs):
            generated.append(len(gen.idx))
            yield gen

    monkeypatch.setattr(capture_module, "generate_batches", counting)
    again = capture_generation(loaded, PROMPTS, [0, 2], templates=TEMPLATES, store=tmp_path / "cap", **_kw())
    assert generated == []
    _same(again, memory)
    # one more prompt: its rows are generated and stored; the stored rows keep their continuations
    more = capture_generation(
        loaded, [*PROMPTS, "One more"], [0, 2], templates=TEMPLATES, store=tmp_path / "cap", **_kw()
    )
    assert sum(generated) > 0
    assert [r.tokens for r in more.rows[: len(memory.rows)]] == [r.tokens for r in memory.rows]
    np.testing.assert_array_equal(more.span("generation")[: len(memory.rows)], memory.span("generation"))


_KILLED_CHILD = r"""
import os, signal, sys
from fastprobe.aligned import PromptTemplate
from fastprobe.aligned.capture import capture_generation
from fastprobe.extraction import load_model
from fastprobe.store import ActivationStore
from fastprobe.testing import tiny_model

real = ActivationStore.write_last_token
calls = []

def write_then_die(self, *args, **kwargs):
    real(self, *args, **kwargs)
    calls.append(1)
    if len(calls) == 2:  # the second batch's vectors are on disk, its rows are not
        os.kill(os.getpid(), signal.SIGKILL)

ActivationStore.write_last_token = write_then_die
loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
capture_generation(loaded, PROMPTS, [0, 2], templates=TEMPLATES, store=sys.argv[1], **KW)
"""


def test_a_killed_run_resumes_where_it_stopped(tmp_path: Any) -> None:
    import signal
    import subprocess
    import sys

    from fastprobe.aligned import CaptureStore

    setup = f"PROMPTS = {PROMPTS!r}\nTEMPLATES = [PromptTemplate('{{prompt}}', name='plain')]\nKW = {_kw()!r}\n"
    script = _KILLED_CHILD.replace("loaded = load_model", setup + "loaded = load_model")
    child = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cap")], capture_output=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    with CaptureStore(tmp_path / "cap") as store:
        assert len(store) == 2  # the first batch (2 sequences) only
    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    template = [PromptTemplate("{prompt}", name="plain")]
    resumed = capture_generation(loaded, PROMPTS, [0, 2], templates=template, store=tmp_path / "cap", **_kw())
    _same(resumed, capture_generation(loaded, PROMPTS, [0, 2], templates=template, **_kw()))


def test_a_store_refuses_other_settings_and_a_renamed_template(tmp_path: Any) -> None:
    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    capture_generation(loaded, PROMPTS[:1], [0], templates=TEMPLATES[:1], store=tmp_path / "cap", **_kw())
    with pytest.raises(InvalidInputError, match=r"made with other settings \(seed: stored 4, given 5\)"):
        capture_generation(
            loaded, PROMPTS[:1], [0], templates=TEMPLATES[:1], store=tmp_path / "cap", **_kw() | {"seed": 5}
        )
    with pytest.raises(InvalidInputError, match="other settings.*sites: stored"):
        capture_generation(loaded, PROMPTS[:1], [1], templates=TEMPLATES[:1], store=tmp_path / "cap", **_kw())
    other = PromptTemplate("Say: {prompt}", name="plain")
    with pytest.raises(InvalidInputError, match="template 'plain' is stored with another definition"):
        capture_generation(loaded, PROMPTS[:1], [0], templates=[other], store=tmp_path / "cap", **_kw())


# --- precision ---------------------------------------------------------------------------------------------------


def test_a_model_named_is_loaded_with_its_head_once_and_captures_as_a_loaded_one() -> None:
    from fastprobe.model import causal_lm, load_with_head

    path = tiny_model("llama", padding_side="left")
    with_head = load_with_head(path, device="cpu")
    assert with_head.model is causal_lm(with_head).base_model  # one copy of the weights
    by_name = capture_generation(path, PROMPTS, [0, 2], **_kw())
    _same(by_name, capture_generation(load_model(path, device="cpu"), PROMPTS, [0, 2], **_kw()))


def test_bfloat16_is_part_of_a_stores_settings(tmp_path: Any) -> None:
    path = tiny_model("llama", padding_side="left")
    half = capture_generation(path, PROMPTS[:2], [1], precision="bfloat16", store=tmp_path / "cap", **_kw())
    full = capture_generation(path, PROMPTS[:2], [1], **_kw())
    assert np.abs(half.span("prompt") - full.span("prompt")).max() < 0.1  # the same model, rounded
    assert not np.array_equal(half.span("prompt"), full.span("prompt"))
    with pytest.raises(InvalidInputError, match=r"other settings \(model: .*'dtype': 'bfloat16'.*'dtype': 'float32'"):
        capture_generation(path, PROMPTS[:2], [1], store=tmp_path / "cap", **_kw())


def test_precision_errors() -> None:
    path = tiny_model("llama", padding_side="left")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="4bit loading quantizes the weights with bitsandbytes on a CUDA"):
            capture_generation(path, PROMPTS, [0], precision="4bit", **_kw())
    with pytest.raises(UnknownOptionError, match="unknown precision '3bit'; expected one of: float32, float16"):
        capture_generation(path, PROMPTS, [0], precision="3bit", **_kw())
    loaded = load_model(path, device="cpu")
    with pytest.raises(InvalidInputError, match="this model is already loaded in 'float32'"):
        capture_generation(loaded, PROMPTS, [0], precision="float16", **_kw())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["8bit", "4bit"])
def test_quantized_capture_on_cuda(precision: str, tmp_path: Any) -> None:
    pytest.importorskip("bitsandbytes")
    path = tiny_model("llama", padding_side="left")
    cap = capture_generation(path, PROMPTS, [0, 2], precision=precision, store=tmp_path / "cap", **_kw())
    assert len(cap.rows) == len(PROMPTS) * 2 and np.isfinite(cap.span("generation")).all()
    from fastprobe.aligned import CaptureStore

    with CaptureStore(tmp_path / "cap") as store:
        assert store.settings()["model"]["quantization"] == precision


def test_an_end_of_sequence_token_that_ends_the_batch_is_pooled() -> None:
    # greedy decoding of one prompt, with the model's third generated token made its end-of-sequence token: the
    # generation stops there, and that token's activations are in the generation span
    from fastprobe.model import causal_lm

    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    lm = causal_lm(loaded)
    ids = loaded.tokenizer(PROMPTS[0], return_tensors="pt")
    with torch.inference_mode():
        plain = lm.generate(**ids, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    third = int(plain[0, ids["input_ids"].shape[1] + 2])
    before = lm.generation_config.eos_token_id
    lm.generation_config.eos_token_id = third
    try:
        cap = capture_generation(loaded, PROMPTS[:1], [0, 2], max_new_tokens=6, do_sample=False, progress=False)
    finally:
        lm.generation_config.eos_token_id = before
    row = cap.rows[0]
    assert row.ended and row.tokens[-1] == third and row.n_generated == list(plain[0, -6:]).index(third) + 1
    want = reference(loaded, cap, [0, 2])
    h = loaded.model.config.hidden_size
    for j, layer in enumerate([0, 2]):
        np.testing.assert_allclose(
            cap.span("generation")[:, j * h : (j + 1) * h], want[("generation", layer)], atol=1e-5
        )


def test_reads_consumed_in_their_hooks_are_the_step_captures_and_are_not_kept() -> None:
    # the capture pools residual sites inside their hooks (generate_batches(on_read=)); what a hook hands over is the
    # read the step would have captured, and a consumed read is not kept for the step
    from fastprobe.extraction import generate_batches
    from fastprobe.sites import resolve_sites

    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    sites = resolve_sites([0, 2], loaded.n_layers)
    seen: dict[tuple[int, tuple[str, int]], Any] = {}
    steps: dict[int, Any] = {}

    def on_read(idx: Any, step: int, key: tuple[str, int], value: Any, mask: Any) -> bool:
        seen[(step, key)] = value.clone()
        return key == ("resid", 0)

    def on_step(idx: Any, step: int, cap: Any) -> None:
        steps[step] = cap.full(sites[1]).clone()

    for _ in generate_batches(
        loaded, PROMPTS, sites, 4, False, on_read=on_read, on_step=on_step, max_new_tokens=3, do_sample=False
    ):
        pass
    assert sorted(steps) == [0, 1, 2]
    for step, captured in steps.items():
        torch.testing.assert_close(seen[(step, ("resid", 2))], captured, rtol=0, atol=0)
        assert (step, ("resid", 0)) in seen
