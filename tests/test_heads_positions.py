"""Token positions of a substring: as the model sees the text, by characters or by whole tokens, with clear errors."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, UnknownOptionError
from fastprobe.heads import TokenSpan, find_token_positions
from fastprobe.model import load_model, tokenize
from fastprobe.testing import tiny_model

TEXT = "The cat sat because it was tired, its fur was wet and it slept"


@pytest.fixture(scope="module")
def bpe():
    from fastprobe.models import smollm2

    return AutoTokenizer.from_pretrained(str(smollm2()))


def _minimal_covering(tokenizer, text: str, needle: str, span: TokenSpan) -> bool:
    """Whether the span's tokens decode to text holding the needle, and neither end token can be dropped."""
    ids = tokenizer(text)["input_ids"]
    decode = tokenizer.decode
    return (
        needle in decode(ids[span.start : span.stop])
        and needle not in decode(ids[span.start + 1 : span.stop])
        and needle not in decode(ids[span.start : span.stop - 1])
    )


@pytest.mark.parametrize("arch", ["llama", "gpt2", "bert", "opt"])
def test_positions_count_the_special_tokens_extraction_adds(arch: str) -> None:
    path = tiny_model(arch)
    loaded = load_model(path, device="cpu")
    ids = tokenize(loaded, ["The cat sat because it was tired"])[0]["input_ids"]
    tokens = loaded.tokenizer.convert_ids_to_tokens(ids)
    got = find_token_positions(loaded, "The cat sat because it was tired", "it")  # a LoadedModel is accepted
    assert got == TokenSpan(tokens.index("it"), tokens.index("it") + 1)
    assert tokens[got.last] == "it"
    assert find_token_positions(
        AutoTokenizer.from_pretrained(path), "The cat sat because it was tired", "cat"
    ).start == (tokens.index("cat"))


def test_character_matches_in_a_byte_level_tokenizer(bpe) -> None:
    every = find_token_positions(bpe, TEXT, "it", occurrence="all")
    assert len(every) == TEXT.count("it") == 3  # "it", the "it" of "its", "it"
    tokens = bpe.convert_ids_to_tokens(bpe(TEXT)["input_ids"])
    assert [tokens[s.start] for s in every] == ["Ġit", "Ġits", "Ġit"]
    for span in every:
        assert _minimal_covering(bpe, TEXT, "it", span)
    assert find_token_positions(bpe, TEXT, "it") == every[0]
    assert find_token_positions(bpe, TEXT, "it", occurrence="last") == every[-1]
    # A needle across tokens gives their range.
    many = find_token_positions(bpe, TEXT, "because it was")
    assert many.stop - many.start == 3 and _minimal_covering(bpe, TEXT, "because it was", many)


def test_whole_tokens_never_match_inside_a_word(bpe) -> None:
    tokens = bpe.convert_ids_to_tokens(bpe(TEXT)["input_ids"])
    whole = find_token_positions(bpe, TEXT, "it", occurrence="all", whole_token=True)
    assert [s.start for s in whole] == [i for i, t in enumerate(tokens) if t == "Ġit"]
    assert all(tokens[s.start] != "Ġits" for s in whole)
    with pytest.raises(InvalidInputError, match="'it' not found as a whole token; the text's tokens are \\[0:'The'"):
        find_token_positions(bpe, TEXT, "it", whole_token=True, space_marker=False)
    assert find_token_positions(bpe, TEXT, "The", whole_token=True, space_marker=False) == TokenSpan(0, 1)


def test_scopes_limit_the_search(bpe) -> None:
    every = find_token_positions(bpe, TEXT, "it", occurrence="all", whole_token=True)
    later = find_token_positions(bpe, TEXT, "it", whole_token=True, scope=(every[0].stop, len(bpe(TEXT)["input_ids"])))
    assert later == every[1]
    with pytest.raises(InvalidInputError, match="'it' not found as a whole token within token positions 0..3"):
        find_token_positions(bpe, TEXT, "it", whole_token=True, scope=(0, 4))


def test_bad_input_names_what_was_expected(bpe) -> None:
    with pytest.raises(
        InvalidInputError, match="'dog' not found in the text; the text's tokens are \\[0:'The', 1:'Ġcat'"
    ):
        find_token_positions(bpe, TEXT, "dog")
    with pytest.raises(UnknownOptionError, match="unknown occurrence 'second'; expected one of: first, last, all"):
        find_token_positions(bpe, TEXT, "it", occurrence="second")
    with pytest.raises(InvalidInputError, match=r"scope must satisfy 0 <= start < stop <= 15 .*; got \(3, 40\)"):
        find_token_positions(bpe, TEXT, "it", scope=(3, 40))
    with pytest.raises(ArgumentTypeError, match="scope must be a \\(start, stop\\) pair of token positions; got 3"):
        find_token_positions(bpe, TEXT, "it", scope=3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="needle must be a string; got int 3"):
        find_token_positions(bpe, TEXT, 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="needle must be a non-empty string"):
        find_token_positions(bpe, TEXT, "")
    slow = type("Slow", (), {"is_fast": False})()
    with pytest.raises(InvalidInputError, match="token positions need a fast tokenizer .*; got Slow"):
        find_token_positions(slow, TEXT, "it")
