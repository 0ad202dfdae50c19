"""The extraction seams: interventions in the plan (a module's input or output replaced during the pass) and the
runner driving ``generate`` with the same hooks, each checked against a hand computation on a tiny model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from fastprobe import InvalidInputError, UnknownOptionError
from fastprobe.extraction import Intervention, extract_pooled, generate_batches, load_model
from fastprobe.model import causal_lm, decoder_blocks
from fastprobe.sites import resolve_sites
from fastprobe.testing import tiny_model

PROMPTS = [
    "The city of Paris is in France.",
    "Tokyo is in Japan.",
    "Rome",
    "The city of Berlin is in Germany and the city of Madrid is in Spain.",
    "Cairo is in Egypt.",
]
POOLINGS = ("last_token", "mean")


def zeros(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x)


def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0


def run(loaded: Any, sites: list[Any], interventions: list[Intervention] | None = None) -> dict[str, np.ndarray]:
    return extract_pooled(
        loaded, PROMPTS, sites, POOLINGS, batch_size=2, progress=False, interventions=interventions or []
    )


class hand_hook:
    """A forward hook on one module, written by hand, that replaces the first element of its output by ``fn(it)``."""

    def __init__(self, module: torch.nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        def hook(_m: Any, _i: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (fn(output[0]), *output[1:])
            return fn(output)

        self.handle = module.register_forward_hook(hook)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


@pytest.fixture(scope="module")
def llama() -> Iterator[Any]:
    yield load_model(tiny_model("llama"), device="cpu")


@pytest.mark.parametrize("arch", ["llama", "gpt2", "opt"])
def test_zeroing_a_block_output_changes_later_layers_as_a_hand_made_hook_does(arch: str) -> None:
    loaded = load_model(tiny_model(arch), device="cpu")
    clean = run(loaded, [2, 3])
    got = run(loaded, [2, 3], [Intervention(1, zeros)])
    with hand_hook(decoder_blocks(loaded.model)[1], zeros):
        want = run(loaded, [2, 3])
    for p in POOLINGS:
        np.testing.assert_array_equal(got[p], want[p])
        assert not np.allclose(got[p], clean[p], atol=1e-3)


def test_an_intervention_is_seen_by_a_read_of_the_same_site_and_removed_after_the_run(llama: Any) -> None:
    before = run(llama, [1])
    got = run(llama, [1], [Intervention("resid.1", zeros)])
    assert not np.any(got["last_token"]) and not np.any(got["mean"])
    after = run(llama, [1])
    for p in POOLINGS:
        assert np.any(after[p])
        np.testing.assert_array_equal(after[p], before[p])


def test_no_op_interventions_leave_every_site_bit_identical(llama: Any) -> None:
    sites: list[Any] = ["embed", 0, "attn.1", "mlp.1", "head.2.1", 2, 3]
    identity = [
        Intervention("embed", lambda x: x),
        Intervention("attn.1", lambda x: x),
        Intervention("mlp.2", lambda x: x),
        Intervention(2, lambda x: x),
        Intervention("layers.3", lambda x: x, on="input"),
        Intervention("layers.0.self_attn.o_proj", lambda x: x),
    ]
    clean, same = run(llama, sites), run(llama, sites, identity)
    for p in POOLINGS:
        np.testing.assert_array_equal(same[p], clean[p])


def test_replacing_a_blocks_input_equals_replacing_the_output_before_it(llama: Any) -> None:
    """In a pre-norm decoder, block 2's input is block 1's output: the two interventions give the same later layers."""
    by_input = run(llama, [2, 3], [Intervention("layers.2", twice, on="input")])
    by_output = run(llama, [2, 3], [Intervention(1, twice)])
    for p in POOLINGS:
        np.testing.assert_array_equal(by_input[p], by_output[p])
        assert not np.allclose(by_input[p], run(llama, [2, 3])[p], atol=1e-3)


def test_embed_intervention_replaces_block_zeros_input(llama: Any) -> None:
    got = run(llama, ["embed", 0], [Intervention("embed", zeros)])
    h = llama.hidden_size
    assert not np.any(got["mean"][:, :h])  # the embeddings read are the replaced ones
    with torch.inference_mode():
        block0 = decoder_blocks(llama.model)[0]
        handle = block0.register_forward_pre_hook(
            lambda _m, args, kwargs: (
                ((torch.zeros_like(args[0]), *args[1:]), kwargs)
                if args
                else (args, {**kwargs, "hidden_states": torch.zeros_like(kwargs["hidden_states"])})
            ),
            with_kwargs=True,
        )
        try:
            want = run(llama, [0])
        finally:
            handle.remove()
    np.testing.assert_array_equal(got["mean"][:, h:], want["mean"])


def test_bad_interventions_are_refused_with_a_reason(llama: Any) -> None:
    with pytest.raises(InvalidInputError, match="has no module 'layers.9'"):
        run(llama, [1], [Intervention("layers.9", zeros)])
    with pytest.raises(InvalidInputError, match="site 'resid.1' is its module's output; got on='input'"):
        run(llama, [1], [Intervention(1, zeros, on="input")])
    with pytest.raises(InvalidInputError, match="a head is changed with HeadAblation, not Intervention"):
        run(llama, [1], [Intervention("head.1.0", zeros)])
    with pytest.raises(UnknownOptionError, match="unknown side 'inside'"):
        run(llama, [1], [Intervention("layers.1", zeros, on="inside")])
    with pytest.raises(InvalidInputError, match="must be Intervention, HeadAblation or EdgeAblation objects"):
        run(llama, [1], [zeros])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="out of range"):
        run(llama, [1], [Intervention(7, zeros)])


def test_interventions_are_refused_on_the_nnsight_backend() -> None:
    pytest.importorskip("nnsight")
    loaded = load_model(tiny_model("llama"), device="cpu", backend="nnsight")
    with pytest.raises(InvalidInputError, match="interventions and attention reads run on the local backend"):
        run(loaded, [1], [Intervention(1, zeros)])


# ---------------------------------------------------------------------------------------------- generate


def generations(loaded: Any, sites: list[Any], **kwargs: Any) -> list[Any]:
    resolved = resolve_sites(sites, loaded.n_layers, None)
    return list(generate_batches(loaded, PROMPTS, resolved, 3, False, max_new_tokens=4, do_sample=False, **kwargs))


def test_generate_captures_each_steps_last_token_as_a_plain_forward_over_the_prefix(llama: Any) -> None:
    lm = causal_lm(llama)
    layers = [1, 2]
    seen = set()
    for gen in generations(llama, layers):
        n_prompt = gen.prompt_mask.shape[1]
        assert gen.sequences.shape[1] == n_prompt + 4 and len(gen.steps) == 4
        assert torch.equal(gen.steps[0].mask, gen.prompt_mask)
        for b, i in enumerate(gen.idx.tolist()):
            seen.add(i)
            real = torch.cat([gen.prompt_mask[b], torch.ones(4, dtype=torch.bool)])
            ids = gen.sequences[b][real]  # the prompt's tokens, then the generated ones, without padding
            n_real = int(gen.prompt_mask[b].sum())
            assert ids[:n_real].tolist() == llama.tokenizer(PROMPTS[i])["input_ids"]
            for t, step in enumerate(gen.steps):
                assert step.mask.shape == ((len(gen.idx), n_prompt) if t == 0 else (len(gen.idx), 1))
                with torch.inference_mode():
                    out = lm(input_ids=ids[: n_real + t][None], output_hidden_states=True)
                # The token generated at this step is the greedy choice after the prefix.
                assert int(out.logits[0, -1].argmax()) == int(ids[n_real + t])
                for site in resolve_sites(layers, llama.n_layers):
                    want = out.hidden_states[site.layer + 1][0, -1]
                    torch.testing.assert_close(step.full(site)[b, -1], want, atol=2e-5, rtol=1e-4)
    assert seen == set(range(len(PROMPTS)))


def test_generate_first_step_equals_extraction_and_interventions_apply_each_step(llama: Any) -> None:
    layers = [1, 3]
    sites = resolve_sites(layers, llama.n_layers)
    pooled = extract_pooled(llama, PROMPTS, layers, ("last_token",), progress=False)["last_token"]
    clean = generations(llama, layers)
    h = llama.hidden_size
    for gen in clean:
        first = gen.steps[0]
        last = first.mask.shape[1] - 1  # left padding: every prompt ends in the last column
        got = torch.cat([first.full(s)[:, last] for s in sites], dim=1).numpy()
        np.testing.assert_allclose(got, pooled[gen.idx], atol=2e-5, rtol=1e-4)
    # A no-op intervention changes nothing; zeroing block 1's output changes every step's layer 3 and the tokens.
    same = generations(llama, layers, interventions=[Intervention(1, lambda x: x)])
    zeroed = generations(llama, layers, interventions=[Intervention(1, zeros)])
    for a, b, z in zip(clean, same, zeroed, strict=True):
        assert torch.equal(a.sequences, b.sequences)
        for sa, sb, sz in zip(a.steps, b.steps, z.steps, strict=True):
            assert torch.equal(sa.full(sites[1]), sb.full(sites[1]))
            assert not torch.any(sz.full(sites[0]))
            assert not torch.allclose(sz.full(sites[1]), sa.full(sites[1]), atol=1e-3)
    assert h == pooled.shape[1] // 2


def test_generate_needs_the_local_backend() -> None:
    pytest.importorskip("nnsight")
    loaded = load_model(tiny_model("llama"), device="cpu", backend="nnsight")
    with pytest.raises(InvalidInputError, match="generation runs on the local backend"):
        generations(loaded, [1])


@pytest.mark.gpu
def test_interventions_and_generate_on_cuda_match_the_cpu() -> None:
    path = tiny_model("llama")
    cpu, gpu = load_model(path, device="cpu"), load_model(path, device="cuda")
    assert next(gpu.model.parameters()).device.type == "cuda"
    intervened = [Intervention(1, twice), Intervention("layers.3", zeros, on="input")]
    want, got = run(cpu, [2, 3], intervened), run(gpu, [2, 3], intervened)
    for p in POOLINGS:
        np.testing.assert_allclose(got[p], want[p], atol=1e-4 * float(np.abs(want[p]).max()), rtol=0)
    for a, b in zip(generations(cpu, [1, 2]), generations(gpu, [1, 2]), strict=True):
        assert torch.equal(a.sequences, b.sequences.cpu())
        for sa, sb in zip(a.steps, b.steps, strict=True):
            assert sb.mask.device.type == "cuda"
            for site in resolve_sites([1, 2], cpu.n_layers):
                torch.testing.assert_close(sb.full(site).cpu(), sa.full(site), atol=1e-4, rtol=1e-4)
