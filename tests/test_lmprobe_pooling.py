"""lmprobe's padded-batch pooling API in fastprobe.pooling, side by side with lmprobe 0.10.3's own functions.

Where fastprobe deliberately differs (the first token under left padding), the test checks fastprobe's documented
behaviour against an independent reference instead.
"""

from __future__ import annotations

import itertools
import pickle

import lmprobe.pooling as lm
import numpy as np
import pytest
import torch

import fastprobe.pooling as fp
from fastprobe import InvalidInputError, ShapeMismatchError, UnknownOptionError

LENGTHS = [5, 1, 9, 3]
POOL_FNS = ["pool_last_token", "pool_first_token", "pool_mean", "pool_max", "pool_min"]
BASES = ["last_token", "first_token", "mean", "max", "min"]
NAMES = [*BASES, "all"] + [f"{stage}:{b}" for stage in ("activation", "score") for b in BASES]
BAD_NAMES = ["median", "foo:mean", "post:max", "score:nonexistent", "activation:all", "score:", "", "Mean"]


def padded(
    side: str, trailing: tuple[int, ...], dtype: torch.dtype, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch (len(LENGTHS), max(LENGTHS), *trailing) whose pads hold large garbage, and its int mask."""
    g = torch.Generator().manual_seed(seed)
    s = max(LENGTHS)
    x = torch.randn((len(LENGTHS), s, *trailing), generator=g, dtype=torch.float64)
    mask = torch.zeros((len(LENGTHS), s), dtype=torch.int64)
    for i, n in enumerate(LENGTHS):
        if side == "right":
            mask[i, :n] = 1
        else:
            mask[i, s - n :] = 1
    x[mask == 0] = 1e6
    return x.to(dtype), mask


def first_real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The first position where the mask is nonzero, row by row."""
    return torch.stack([row[m.nonzero()[0, 0]] for row, m in zip(x, mask, strict=True)])


def assert_same(got: torch.Tensor, want: torch.Tensor, exact: bool) -> None:
    assert isinstance(got, torch.Tensor)
    assert got.dtype == want.dtype and got.shape == want.shape and got.device == want.device
    if exact:
        assert torch.equal(got, want)
    else:
        rtol = 1e-12 if want.dtype == torch.float64 else 1e-6
        torch.testing.assert_close(got, want, rtol=rtol, atol=rtol)


# ---------------------------------------------------------------------------------------------- pool_* functions


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name", POOL_FNS)
def test_pool_functions_match_lmprobe(name: str, side: str, dtype: torch.dtype) -> None:
    x, mask = padded(side, (7,), dtype)
    ours, theirs = getattr(fp, name), getattr(lm, name)
    exact = name != "pool_mean"
    assert_same(ours(x), theirs(x), exact)  # no mask: every position counts
    if name == "pool_first_token" and side == "left":
        # Deliberate difference: lmprobe returns position 0 (a pad here); fastprobe the first real token.
        got = ours(x, mask)
        assert_same(got, first_real(x, mask), exact=True)
        assert not torch.equal(got, theirs(x, mask))
    else:
        assert_same(ours(x, mask), theirs(x, mask), exact)
        assert_same(ours(x, attention_mask=mask.bool()), theirs(x, mask), exact)


@pytest.mark.parametrize("name", POOL_FNS)
def test_pool_functions_keep_the_input_kind_and_dtype(name: str) -> None:
    x, mask = padded("left", (4,), torch.float32, seed=1)
    fn = getattr(fp, name)
    for dtype in (torch.float16, torch.bfloat16):  # computed in float32, which holds them exactly
        got = fn(x.to(dtype), mask)
        assert got.dtype == dtype
        if name != "pool_mean":
            assert torch.equal(got, fn(x, mask).to(dtype))
    got_np = fn(x.numpy(), mask.numpy())
    assert isinstance(got_np, np.ndarray) and got_np.dtype == np.float32
    np.testing.assert_array_equal(got_np, fn(x, mask).numpy())
    got64 = fn(x.double().numpy(), mask.numpy().astype(bool))
    assert got64.dtype == np.float64
    assert fn(x.tolist(), mask.tolist()).dtype == np.float64  # Python floats are float64 to numpy
    assert not fn(x.requires_grad_(), mask).requires_grad  # detached


def test_pool_all_returns_its_input() -> None:
    x, mask = padded("right", (3,), torch.float32)
    assert fp.pool_all(x) is x
    assert fp.pool_all(x, mask) is x
    assert torch.equal(fp.pool_all(x, mask), lm.pool_all(x, mask))


def test_pool_function_errors() -> None:
    x, mask = padded("right", (3,), torch.float32)
    with pytest.raises(ShapeMismatchError, match=r"attention_mask: expected shape \(4, 9\) \(batch, seq_len\), got"):
        fp.pool_mean(x, mask[:, :5])
    with pytest.raises(ShapeMismatchError, match=r"activations: expected a 3-D array .*got shape \(4, 9\)"):
        fp.pool_mean(x[:, :, 0], mask)
    empty = mask.clone()
    empty[2] = 0
    for dtype in (torch.float32, torch.float64):
        with pytest.raises(InvalidInputError, match="prompt 2 has no real token: its attention mask is all zero"):
            fp.pool_last_token(x.to(dtype), empty)


@pytest.mark.gpu
def test_pool_functions_return_to_the_input_device() -> None:
    x, mask = padded("left", (5,), torch.float32)
    for name in POOL_FNS:
        got = getattr(fp, name)(x.cuda(), mask.cuda())
        assert got.device == x.cuda().device
        assert torch.equal(got.cpu(), getattr(fp, name)(x, mask))
    scores = x[..., 0].cuda()
    assert fp.reduce_scores(scores, "max", mask.cuda()).device == scores.device


# --------------------------------------------------------------------------------------------------- reduce_scores


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trailing", [(), (3,)], ids=["2d", "3d"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("strategy", [n for n in NAMES if n != "all"])
def test_reduce_scores_matches_lmprobe(strategy: str, side: str, trailing: tuple[int, ...], dtype: torch.dtype) -> None:
    scores, mask = padded(side, trailing, dtype, seed=2)
    exact = not strategy.endswith("mean")
    assert_same(fp.reduce_scores(scores, strategy), lm.reduce_scores(scores, strategy), exact)
    got = fp.reduce_scores(scores, strategy, attention_mask=mask)
    if strategy.endswith("first_token") and side == "left":
        # Deliberate difference, as for pool_first_token: lmprobe reads position 0 whatever the mask.
        assert_same(got, first_real(scores, mask), exact=True)
        assert not torch.equal(got, lm.reduce_scores(scores, strategy, attention_mask=mask))
    else:
        assert_same(got, lm.reduce_scores(scores, strategy, attention_mask=mask), exact)


def test_reduce_scores_numpy_and_ragged_forms_agree() -> None:
    scores, mask = padded("left", (2,), torch.float64, seed=3)
    m = mask.numpy().astype(bool)
    offsets = np.concatenate([[0], np.cumsum(m.sum(axis=1))])
    for base in BASES:
        padded_form = fp.reduce_scores(scores.numpy(), base, m)
        assert isinstance(padded_form, np.ndarray) and padded_form.dtype == np.float64
        ragged_form = fp.reduce_scores(scores.numpy()[m], offsets, base)
        np.testing.assert_array_equal(padded_form, ragged_form)
        np.testing.assert_array_equal(fp.reduce_scores(scores.numpy()[..., 0], base, m), ragged_form[:, 0])
    assert fp.reduce_scores(scores.float().numpy(), "max", m).dtype == np.float32
    np.testing.assert_array_equal(fp.reduce_scores(np.array([0.2, 0.9, 0.1]), [0, 2, 3]), [0.9, 0.1])  # default max


def test_reduce_scores_errors() -> None:
    scores, mask = padded("right", (), torch.float32)
    assert lm_key_phrase(lm.reduce_scores, scores, "all") == "reduce_scores does not support strategy"
    with pytest.raises(UnknownOptionError, match=r"^reduce_scores does not support strategy 'all', which keeps"):
        fp.reduce_scores(scores, "all")
    assert lm_key_phrase(lm.reduce_scores, scores, "activation:all") == "Unknown base pooling strategy"
    with pytest.raises(UnknownOptionError, match="^Unknown base pooling strategy 'all' in 'activation:all'"):
        fp.reduce_scores(scores, "activation:all")
    with pytest.raises(UnknownOptionError, match="^Unknown pooling strategy 'median'"):
        fp.reduce_scores(scores, "median", mask)
    with pytest.raises(ShapeMismatchError, match=r"scores: expected a 2 or 3-D array"):
        fp.reduce_scores(scores[0], "max")
    with pytest.raises(ShapeMismatchError, match="attention_mask: expected shape"):
        fp.reduce_scores(scores, "max", mask.T)
    empty = mask.clone()
    empty[0] = 0
    with pytest.raises(InvalidInputError, match="prompt 0 has no real token"):
        fp.reduce_scores(scores, "mean", empty)


# --------------------------------------------------------------------------------------- names, parsing, resolving


def test_parse_pooling_strategy_matches_lmprobe() -> None:
    for name in NAMES:
        got = fp.parse_pooling_strategy(name)
        want = lm.parse_pooling_strategy(name)
        assert tuple(got) == tuple(want)
        assert got._fields == want._fields == ("base_strategy", "is_score_pooling", "raw")
    assert pickle.loads(pickle.dumps(fp.parse_pooling_strategy("score:mean"))).is_score_pooling is True


def lm_key_phrase(call: object, *args: object) -> str:
    """The words before the first quote or colon of lmprobe's error message."""
    with pytest.raises(ValueError) as info:
        call(*args)  # type: ignore[operator]
    return str(info.value).split(":")[0].split(" '")[0]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_parse_errors_carry_lmprobe_key_phrases(name: str) -> None:
    phrase = lm_key_phrase(lm.parse_pooling_strategy, name)
    assert phrase in ("Unknown pooling prefix", "Unknown base pooling strategy", "Unknown pooling strategy")
    with pytest.raises(UnknownOptionError, match=f"^{phrase} '") as info:
        fp.parse_pooling_strategy(name)
    assert "expected" in str(info.value)
    with pytest.raises(UnknownOptionError, match=f"^{phrase} '"):
        fp.get_pooling_fn(name)


def test_parse_error_details() -> None:
    with pytest.raises(UnknownOptionError, match=r"^Unknown pooling prefix 'post' in 'post:mean'; expected 'act"):
        fp.parse_pooling("post:mean")
    with pytest.raises(UnknownOptionError, match=r"one of: last_token, first_token, mean, max, min after 'score:'$"):
        fp.parse_pooling("score:banana")
    with pytest.raises(UnknownOptionError, match=r"^Unknown pooling strategy 3; expected one of: last_token"):
        fp.parse_pooling(3)


def test_get_pooling_fn_matches_lmprobe() -> None:
    for name in NAMES:
        got, want = fp.get_pooling_fn(name), lm.get_pooling_fn(name)
        assert got.__name__ == want.__name__
        assert got is getattr(fp, want.__name__)


def test_resolve_pooling_matches_lmprobe() -> None:
    options = [None, *NAMES, "median", "post:mean"]
    for pooling, train, inference in itertools.product(options, [None, "mean", "all", "max", "score:mean"], options):
        try:
            want: object = lm.resolve_pooling(pooling, train, inference)
        except ValueError as err:
            phrase = str(err).split(":")[0]
            assert phrase in ("Invalid train_pooling", "Invalid inference_pooling")
            with pytest.raises(UnknownOptionError, match=f"^{phrase} ") as info:
                fp.resolve_pooling(pooling, train, inference)
            assert "one of: " in str(info.value)
        else:
            assert fp.resolve_pooling(pooling, train, inference) == want
            spec = fp.resolve_pooling_spec(pooling, train, inference)
            assert spec == (want[0], fp.parse_pooling(want[1]))  # type: ignore[index]


def test_resolve_pooling_messages_name_the_argument() -> None:
    with pytest.raises(UnknownOptionError, match=r"from pooling='max'\): .*pass inference_pooling='max' and one of"):
        fp.resolve_pooling("max", None, None)
    with pytest.raises(UnknownOptionError, match=r"^Invalid train_pooling 'min' \(from train_pooling='min'\)"):
        fp.resolve_pooling("max", "min", None)
    with pytest.raises(
        UnknownOptionError,
        match=r"^Invalid inference_pooling 'post:x' \(from inference_pooling=.*Unknown pooling pre",
    ):
        fp.resolve_pooling(None, None, "post:x")


def test_constants_match_lmprobe() -> None:
    assert fp.TRAIN_POOLING_STRATEGIES == lm.TRAIN_POOLING_STRATEGIES
    assert fp.INFERENCE_POOLING_STRATEGIES == lm.INFERENCE_POOLING_STRATEGIES
    assert fp.SCORE_POOLING_STRATEGIES == lm.SCORE_POOLING_STRATEGIES
