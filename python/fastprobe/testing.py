"""Tiny random-weight Hugging Face models for tests and benchmarks.

Everything here is built locally from code: the tokenizer vocabulary is a fixed list of common English words, place
names, digits and punctuation, and the model weights are drawn from a seeded random generator. Nothing is downloaded,
so the helpers work offline and are deterministic.

Examples
--------
>>> from transformers import AutoModelForCausalLM, AutoTokenizer
>>> path = tiny_model("llama")  # doctest: +SKIP
>>> model = AutoModelForCausalLM.from_pretrained(path)  # doctest: +SKIP
>>> tokenizer = AutoTokenizer.from_pretrained(path)  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

__all__ = [
    "ARCHITECTURES",
    "AUTO_CLASSES",
    "build_tiny_model",
    "build_tokenizer",
    "hub_model",
    "offline_hub",
    "place_in_hub_cache",
    "tiny_model",
]

ARCHITECTURES: tuple[str, ...] = ("llama", "gpt2", "gpt_neox", "bert", "opt", "qwen2", "gemma2", "llava")
"""Architectures supported by :func:`build_tiny_model` and :func:`tiny_model`: Llama, GPT-2, GPT-NeoX (Pythia),
BERT, OPT, Qwen2 (biased query/key/value projections), Gemma 2 (scaled embeddings, norms after attention and MLP)
and LLaVA (a multimodal model whose language model is a Llama, sized by ``text_config``)."""

#: The ``transformers`` auto class that loads each architecture with its head.
AUTO_CLASSES: dict[str, str] = {
    "llama": "AutoModelForCausalLM",
    "gpt2": "AutoModelForCausalLM",
    "gpt_neox": "AutoModelForCausalLM",
    "bert": "AutoModel",
    "opt": "AutoModelForCausalLM",
    "qwen2": "AutoModelForCausalLM",
    "gemma2": "AutoModelForCausalLM",
    "llava": "AutoModelForImageTextToText",
}

MAX_POSITIONS: int = 128
"""Maximum sequence length of the tiny models (and ``model_max_length`` of their tokenizers)."""

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
    _check_arch(arch)
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


def _check_arch(arch: str) -> None:
    """Raise ``ValueError`` naming the valid choices if ``arch`` is not a supported architecture.

    Parameters
    ----------
    arch : str
        Architecture name to validate.

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`ARCHITECTURES`.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; valid choices are: {', '.join(ARCHITECTURES)}")


def _build_model(
    arch: str,
    tokenizer: PreTrainedTokenizerFast,
    *,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    max_positions: int = MAX_POSITIONS,
) -> PreTrainedModel:
    """Instantiate a randomly initialised model of ``arch`` sized to ``tokenizer``.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    tokenizer : transformers.PreTrainedTokenizerFast
        Tokenizer from :func:`build_tokenizer`; provides the vocabulary size and special-token ids.
    num_layers : int
        Number of transformer blocks.
    hidden_size : int
        Width of the residual stream.
    num_heads : int
        Number of attention heads; must divide ``hidden_size``.
    max_positions : int, default :data:`MAX_POSITIONS`
        Maximum sequence length.

    Returns
    -------
    transformers.PreTrainedModel
        The model in evaluation mode, with weights drawn from the current torch random state.
    """
    import transformers

    vocab_size = len(tokenizer)
    intermediate = 4 * hidden_size
    if arch == "llama":
        llama_config = transformers.LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
        return transformers.LlamaForCausalLM(llama_config).eval()
    if arch == "gpt2":
        gpt2_config = transformers.GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_inner=intermediate,
            n_layer=num_layers,
            n_head=num_heads,
            n_positions=max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return transformers.GPT2LMHeadModel(gpt2_config).eval()
    if arch == "gpt_neox":
        neox_config = transformers.GPTNeoXConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            max_position_embeddings=max_positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
        return transformers.GPTNeoXForCausalLM(neox_config).eval()
    common = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_attention_heads": num_heads,
        "max_position_embeddings": max_positions,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "opt":
        opt_config = transformers.OPTConfig(
            **common, ffn_dim=intermediate, num_hidden_layers=num_layers, word_embed_proj_dim=hidden_size
        )
        return transformers.OPTForCausalLM(opt_config).eval()
    if arch == "qwen2":
        qwen_config = transformers.Qwen2Config(
            **common,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_key_value_heads=max(1, num_heads // 2),
            tie_word_embeddings=False,
        )
        return transformers.Qwen2ForCausalLM(qwen_config).eval()
    if arch == "gemma2":
        gemma_config = transformers.Gemma2Config(
            **common,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_key_value_heads=num_heads,
            head_dim=hidden_size // num_heads,
            sliding_window=max_positions,
        )
        return transformers.Gemma2ForCausalLM(gemma_config).eval()
    if arch == "llava":
        text = transformers.LlamaConfig(
            **common,
            intermediate_size=intermediate,
            num_hidden_layers=num_layers,
            num_key_value_heads=num_heads,
            tie_word_embeddings=False,
        )
        vision = transformers.CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=8, patch_size=4
        )
        llava_config = transformers.LlavaConfig(
            vision_config=vision, text_config=text, image_token_index=tokenizer.unk_token_id
        )
        return transformers.LlavaForConditionalGeneration(llava_config).eval()
    # arch == "bert" (validated by the caller)
    bert_config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    return transformers.BertModel(bert_config).eval()


def build_tiny_model(
    arch: str,
    directory: str | os.PathLike[str],
    *,
    seed: int = 0,
    padding_side: str = "right",
    num_layers: int = 4,
    hidden_size: int = 32,
    num_heads: int = 4,
    vocabulary: str = "words",
    max_positions: int = MAX_POSITIONS,
) -> pathlib.Path:
    """Build a tiny random-weight model and its tokenizer, and save both to ``directory``.

    The saved directory loads back offline with the auto class named in :data:`AUTO_CLASSES` (``"llama"``, ``"gpt2"``,
    ...), and with ``AutoTokenizer.from_pretrained``.
    Weights are drawn after ``torch.manual_seed(seed)`` inside a forked RNG, so the caller's global torch random
    state is left untouched and the same arguments always give bit-identical weights.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    directory : str or os.PathLike
        Target directory; created if missing. Existing model/tokenizer files in it are overwritten.
    seed : int, default 0
        Seed for the weight initialisation.
    padding_side : {"right", "left"}, default "right"
        Padding side stored with the tokenizer.
    num_layers : int, default 4
        Number of transformer blocks (the model returns ``num_layers + 1`` hidden states).
    hidden_size : int, default 32
        Width of the residual stream. Intermediate (MLP) size is ``4 * hidden_size``.
    num_heads : int, default 4
        Number of attention heads; must divide ``hidden_size``.
    vocabulary : {"words", "bytes"}, default "words"
        The tokenizer's vocabulary (see :func:`build_tokenizer`).
    max_positions : int, default :data:`MAX_POSITIONS`
        Maximum sequence length of the model and its tokenizer.

    Returns
    -------
    pathlib.Path
        The directory the model and tokenizer were saved to.

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`ARCHITECTURES`, ``padding_side`` is invalid, or the sizes are inconsistent.
    """
    import torch

    _check_arch(arch)
    if num_layers < 1 or hidden_size < 1 or num_heads < 1:
        raise ValueError(
            f"num_layers, hidden_size and num_heads must be positive, got {num_layers}, {hidden_size}, {num_heads}"
        )
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")

    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(padding_side, arch=arch, vocabulary=vocabulary, max_positions=max_positions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_model(
            arch,
            tokenizer,
            num_layers=num_layers,
            hidden_size=hidden_size,
            num_heads=num_heads,
            max_positions=max_positions,
        )
    with _no_progress_bars():
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Temporarily disable transformers' tqdm progress bars (e.g. "Writing model shards"), restoring the setting after.

    Yields
    ------
    None
        Control returns to the ``with`` block while progress bars are off.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


_CACHE_ROOT: pathlib.Path | None = None


def _cache_root() -> pathlib.Path:
    """Return the per-process temporary directory holding cached models, creating it on first use.

    Returns
    -------
    pathlib.Path
        A directory from :func:`tempfile.mkdtemp` that is removed at interpreter exit.
    """
    global _CACHE_ROOT
    if _CACHE_ROOT is None:
        _CACHE_ROOT = pathlib.Path(tempfile.mkdtemp(prefix="fastprobe-tiny-models-"))
        atexit.register(shutil.rmtree, _CACHE_ROOT, ignore_errors=True)
    return _CACHE_ROOT


@functools.cache
def _cached_tiny_model(arch: str, seed: int, padding_side: str) -> pathlib.Path:
    """Build the default-sized model for one ``(arch, seed, padding_side)`` key into the cache directory.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    seed : int
        Seed for the weight initialisation.
    padding_side : str
        Padding side stored with the tokenizer.

    Returns
    -------
    pathlib.Path
        The directory holding the saved model and tokenizer.
    """
    directory = _cache_root() / f"{arch}-seed{seed}-{padding_side}"
    return build_tiny_model(arch, directory, seed=seed, padding_side=padding_side)


def tiny_model(arch: str, *, seed: int = 0, padding_side: str = "right") -> pathlib.Path:
    """Return the directory of a default-sized tiny model, building it at most once per process.

    Models are saved under a temporary directory created with :func:`tempfile.mkdtemp` and removed at interpreter
    exit. Callers must treat the returned directory as read-only, since it is shared by every caller asking for the
    same ``(arch, seed, padding_side)``.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    seed : int, default 0
        Seed for the weight initialisation.
    padding_side : {"right", "left"}, default "right"
        Padding side stored with the tokenizer.

    Returns
    -------
    pathlib.Path
        Directory loadable with ``from_pretrained`` (see :func:`build_tiny_model`).

    Raises
    ------
    ValueError
        If ``arch`` is not in :data:`ARCHITECTURES` or ``padding_side`` is invalid.
    """
    _check_arch(arch)
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    return _cached_tiny_model(arch, int(seed), padding_side)


def place_in_hub_cache(
    directory: str | os.PathLike[str], repo_id: str, cache_dir: str | os.PathLike[str], *, revision: str = "main"
) -> pathlib.Path:
    """Put a local model directory into a Hugging Face hub cache under a Hub id, as a download would have left it.

    The files go where ``huggingface_hub`` puts them: content-addressed blobs under
    ``<cache_dir>/models--<org>--<name>/blobs/`` (links to the original files, so nothing large is copied), a
    snapshot folder named by a commit hash (a digest of the files) whose entries link to the blobs, and
    ``refs/<revision>`` naming that commit. With ``HF_HUB_OFFLINE=1`` and this cache (see :func:`offline_hub`),
    transformers then loads ``repo_id`` (and ``revision=revision``) without a network. Placing another directory
    under another ``revision`` adds a second commit beside the first.

    Parameters
    ----------
    directory : str or path-like
        A model directory (``config.json``, weights, tokenizer files).
    repo_id : str
        The Hub id, ``"org/name"``.
    cache_dir : str or path-like
        The hub cache directory (what ``HF_HUB_CACHE`` names; ``$HF_HOME/hub`` by default).
    revision : str, default="main"
        The branch or tag that names the new commit.

    Returns
    -------
    pathlib.Path
        The snapshot folder (its name is the commit hash).
    """
    import hashlib

    source = pathlib.Path(directory).resolve()
    files = sorted(f for f in source.iterdir() if f.is_file())
    digests = {}
    for file in files:
        h = hashlib.sha256()
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digests[file.name] = h.hexdigest()
    commit = hashlib.sha1("".join(f"{k}:{v};" for k, v in digests.items()).encode()).hexdigest()
    repo = pathlib.Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in files:
        blob = repo / "blobs" / digests[file.name]
        if not blob.exists():
            blob.symlink_to(file)
        link = snapshot / file.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snapshot


def hub_model(
    repo_id: str,
    cache_dir: str | os.PathLike[str],
    arch: str = "llama",
    *,
    revision: str = "main",
    seed: int = 0,
    padding_side: str = "right",
    num_layers: int = 4,
    hidden_size: int = 32,
    num_heads: int = 4,
    vocabulary: str = "words",
    max_positions: int = MAX_POSITIONS,
) -> pathlib.Path:
    """Build a tiny model and place it in a Hugging Face hub cache under a Hub id (see :func:`place_in_hub_cache`).

    Parameters
    ----------
    repo_id : str
        The Hub id, ``"org/name"``.
    cache_dir : str or path-like
        The hub cache directory.
    arch : str, default="llama"
        One of :data:`ARCHITECTURES`.
    revision : str, default="main"
        The branch or tag that names the new commit; another seed under another revision gives a second commit with
        other weights.
    seed, padding_side, num_layers, hidden_size, num_heads, vocabulary, max_positions
        As for :func:`build_tiny_model`.

    Returns
    -------
    pathlib.Path
        The snapshot folder (its name is the commit hash).
    """
    built = build_tiny_model(
        arch,
        pathlib.Path(cache_dir) / ".built" / f"{repo_id.replace('/', '--')}-{revision}",
        seed=seed,
        padding_side=padding_side,
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        vocabulary=vocabulary,
        max_positions=max_positions,
    )
    return place_in_hub_cache(built, repo_id, cache_dir, revision=revision)


@contextlib.contextmanager
def offline_hub(cache_dir: str | os.PathLike[str]) -> Iterator[pathlib.Path]:
    """Use ``cache_dir`` as the Hugging Face hub cache, offline, inside the ``with`` block.

    Sets ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE=1`` in the environment (for child processes) and the same settings
    in ``huggingface_hub.constants`` (which this process read at import), and restores both afterwards.

    Parameters
    ----------
    cache_dir : str or path-like
        The hub cache directory, as filled by :func:`hub_model`.

    Yields
    ------
    pathlib.Path
        ``cache_dir``.
    """
    from huggingface_hub import constants

    path = pathlib.Path(cache_dir)
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    saved = (constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE)
    os.environ["HF_HUB_CACHE"] = str(path)
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = str(path), True
    try:
        yield path
    finally:
        constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
