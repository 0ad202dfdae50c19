"""The tiny models' tokenizer: a deterministic word-level (or byte-level) fast tokenizer built from code.

Nothing is downloaded: the vocabulary is a fixed list of common English words, place names, digits and
punctuation, so the same arguments always give the same token ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastprobe.testing.architectures import MAX_POSITIONS, check_arch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["build_tokenizer"]

# Special tokens. Causal LMs use Llama-style markers; BERT uses its own bracketed markers.
_CAUSAL_SPECIALS: dict[str, str] = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
_BERT_SPECIALS: dict[str, str] = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}

_PUNCTUATION: str = ". , ! ? ; : ' \" ( ) [ ] { } - _ / \\ & % $ # @ * + = < > | ~ ` ^"

# The words below are the whole vocabulary (besides the special tokens). Order matters: ids are assigned in order of
# first appearance, so editing this text changes the token ids of every tiny model.
_WORDS: str = """
the a an and or but if then else of in on at to from by with for about as into onto over under between through
after before during without within against among across behind beyond near up down out off again further once
here there when where why how what which who whom whose this that these those all any both each few more most
other some such no nor not only own same so than too very can will just should would could may might must shall
is are was were be been being have has had having do does did doing say says said get gets got make makes made
go goes went gone know knows knew known think thinks thought take takes took taken see sees saw seen come comes
came want wants wanted look looks looked use uses used find finds found give gives gave given tell tells told
work works worked call calls called try tries tried ask asks asked need needs needed feel feels felt become
becomes became leave leaves left put puts mean means meant keep keeps kept let lets begin begins began seem
seems seemed help helps helped show shows showed hear hears heard play plays played run runs ran move moves
moved live lives lived believe believes believed bring brings brought happen happens happened write writes
wrote written sit sits sat stand stands stood lose loses lost pay pays paid meet meets met include includes
included continue continues continued set sets learn learns learned change changes changed lead leads led
understand understands understood watch watches watched follow follows followed stop stops stopped create
creates created speak speaks spoke spoken read reads spend spends spent grow grows grew grown open opens opened
walk walks walked win wins won offer offers offered remember remembers remembered love loves loved consider
considers considered appear appears appeared buy buys bought wait waits waited serve serves served die dies
died send sends sent expect expects expected build builds built stay stays stayed fall falls fell cut cuts
reach reaches reached kill kills killed remain remains remained
i you he she it we they me him her us them my your his its our their mine yours hers ours theirs myself
yourself himself herself itself ourselves themselves one two three four five six seven eight nine ten hundred
thousand million first second third last next new old good bad great little big small large long short high
low young early late important public private real best better true false right wrong sure free full hot cold
warm cool dark light happy sad easy hard strong weak rich poor black white red green blue yellow brown
time year years people way day days man men woman women child children world life hand part place case week
company system program question government number night point home water room mother father area money story
fact month lot study book eye job word business issue side kind head house service friend power hour game
line end member law car city community name president team minute idea kid body information back parent face
others level office door health person art war history party result morning reason research girl guy moment air
teacher force education food country capital river mountain sea ocean island lake language languages currency
population north south east west king queen animal animals dog dogs cat cats bird birds fish tree trees flower
sun moon star stars sky rain snow wind fire earth music song songs film movie picture color colour school
university student students doctor hospital street road town village state states nation nations border
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
September October November December
also always never often sometimes usually now today yesterday tomorrow still yet already even well much many
really quite almost perhaps maybe because since while until although though however therefore yes
The A An And Or But If Then Of In On At To From By With For As This That These Those It He She We They You I
My Your His Her Our Their What Which Who Where When Why How There Here Is Are Was Were Do Does Did Not No Yes
Paris France Tokyo Japan Berlin Germany Rome Italy Madrid Spain Cairo Egypt Lima Peru Ottawa Canada London
England Britain Dublin Ireland Lisbon Portugal Athens Greece Vienna Austria Warsaw Poland Prague Czechia Oslo
Norway Stockholm Sweden Helsinki Finland Copenhagen Denmark Amsterdam Netherlands Brussels Belgium Bern
Switzerland Budapest Hungary Moscow Russia Kyiv Ukraine Ankara Turkey Beijing China Seoul Korea Delhi India
Bangkok Thailand Hanoi Vietnam Jakarta Indonesia Manila Philippines Canberra Australia Wellington Zealand
Washington America American Mexico Havana Cuba Brasilia Brazil Santiago Chile Bogota Colombia Caracas
Venezuela Quito Ecuador Nairobi Kenya Lagos Abuja Nigeria Accra Ghana Pretoria Africa Rabat Morocco Tunis
Tunisia Tehran Iran Baghdad Iraq Riyadh Arabia Dubai Sydney Toronto Chicago Boston York New Europe Asia
English French German Italian Spanish Japanese Chinese Russian Portuguese Arabic Greek Dutch Swedish Korean
0 1 2 3 4 5 6 7 8 9
"""


def _vocabulary(arch: str) -> dict[str, int]:
    """Return the deterministic token-to-id mapping used by the tokenizer for ``arch``.

    Parameters
    ----------
    arch : str
        Architecture name; ``"bert"`` selects BERT-style special tokens, anything else Llama-style ones.

    Returns
    -------
    dict of str to int
        Special tokens first (ids ``0..n_special-1``), then punctuation, then the built-in words, without duplicates.
    """
    vocab: dict[str, int] = {}
    for token in [*_special_order(arch), *_PUNCTUATION.split(), *_WORDS.split()]:
        if token not in vocab:
            vocab[token] = len(vocab)
    return vocab


def _special_order(arch: str) -> list[str]:
    """Return the special tokens in their fixed order (ids ``0..n-1``), so that e.g. the pad id is 0 everywhere."""
    if arch == "bert":
        return [_BERT_SPECIALS[k] for k in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")]
    return [_CAUSAL_SPECIALS[k] for k in ("pad_token", "unk_token", "bos_token", "eos_token")]


def build_tokenizer(
    padding_side: str = "right", *, arch: str = "llama", vocabulary: str = "words", max_positions: int = MAX_POSITIONS
) -> PreTrainedTokenizerFast:
    """Build a small deterministic word-level fast tokenizer.

    The tokenizer is a :mod:`tokenizers` ``WordLevel`` model over a fixed built-in vocabulary of a few hundred common
    English words, capitalised city/country names, digits and punctuation. Text is split on whitespace, punctuation
    and individual digits (as Llama tokenizers do); words outside the vocabulary map to the unknown token. For causal
    architectures a post-processor prepends the BOS token (like Llama tokenizers); for ``"bert"`` it wraps inputs in
    ``[CLS] ... [SEP]``.

    Parameters
    ----------
    padding_side : {"right", "left"}, default "right"
        Side on which the tokenizer pads batches. It is stored in the tokenizer config, so it survives
        ``save_pretrained`` / ``AutoTokenizer.from_pretrained``.
    arch : str, default "llama"
        Architecture the tokenizer is meant for, one of :data:`ARCHITECTURES`. Only ``"bert"`` differs (BERT special
        tokens, CLS/SEP post-processor and ``token_type_ids`` outputs).
    vocabulary : {"words", "bytes"}, default "words"
        ``"words"``: the built-in word list, other words becoming the unknown token. ``"bytes"``: one token per UTF-8
        byte (a byte-level BPE without merges, as GPT-2's alphabet), so that any two different texts get different
        token ids, as a real subword tokenizer gives them.
    max_positions : int, default :data:`MAX_POSITIONS`
        The tokenizer's ``model_max_length``.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        The wrapped tokenizer, with pad/unk (and bos/eos or cls/sep/mask) tokens set.

    Raises
    ------
    ValueError
        If ``padding_side`` is not ``"left"`` or ``"right"``, ``arch`` is not in :data:`ARCHITECTURES`, or
        ``vocabulary`` is unknown.
    """
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE, WordLevel
    from transformers import PreTrainedTokenizerFast

    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    check_arch(arch)
    if vocabulary not in ("words", "bytes"):
        raise ValueError(f"vocabulary must be 'words' or 'bytes', got {vocabulary!r}")

    specials = _BERT_SPECIALS if arch == "bert" else _CAUSAL_SPECIALS
    if vocabulary == "words":
        vocab = _vocabulary(arch)
        backend = Tokenizer(WordLevel(vocab=vocab, unk_token=specials["unk_token"]))
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Punctuation(behavior="isolated"),
                pre_tokenizers.Digits(individual_digits=True),
            ]
        )
    else:
        vocab = {tok: i for i, tok in enumerate(_special_order(arch))}
        for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
            vocab[symbol] = len(vocab)
        backend = Tokenizer(BPE(vocab=vocab, merges=[], unk_token=specials["unk_token"]))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.decoder = decoders.ByteLevel()
    if arch == "bert":
        cls, sep = specials["cls_token"], specials["sep_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
        )
        model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    else:
        bos = specials["bos_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A",
            pair=f"{bos} $A {bos}:1 $B:1",
            special_tokens=[(bos, vocab[bos])],
        )
        model_input_names = ["input_ids", "attention_mask"]

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        padding_side=padding_side,
        truncation_side="right",
        model_max_length=max_positions,
        model_input_names=model_input_names,
        clean_up_tokenization_spaces=False,
        **specials,
    )
