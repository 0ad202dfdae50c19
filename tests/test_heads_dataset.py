"""Position datasets: activations at one token per text, checked against a plain Hugging Face run; files and errors.

The reference for ``X`` is computed independently of fastprobe's extraction: each text run alone through the model
with ``output_hidden_states=True`` (residual sites) and a forward hook on the attention output projection (head
sites: the head's slice of the projection's input times its block of the weight).
"""

from __future__ import annotations

import copy
import json
import math
import os
import pathlib
import pickle
from typing import Any

import numpy as np
import pytest
import torch

from fastprobe.exceptions import ArgumentTypeError, FastprobeIOError, InvalidInputError, UnknownOptionError
from fastprobe.extraction import HeadAblation, Intervention, extract_at, load_model
from fastprobe.heads import DATASET_FORMAT, PositionDataset, TokenSpan, build_position_dataset, find_token_positions
from fastprobe.model import fingerprint_of
from fastprobe.sites import SiteSpec
from fastprobe.testing import tiny_model

SITES: list[SiteSpec] = ["head.1.0", 2]
HEAD_DIM = 8  # tiny llama: hidden 32, 4 heads

EXAMPLES: list[tuple[str, Any, Any]] = [
    ("The cat sat because it was tired", 5, "animal"),  # "it"
    ("A dog ran into the house.", -1, "animal"),  # the last token "."
    ("Hello there, my good friend.", (21, 27), "person"),  # "friend" as a character span
    ("The box fell off the table", slice(13, 16), "object"),  # "off"
    ("A dog ran into the house.", TokenSpan(2, 4), "animal"),  # "dog ran": its last token "ran"
    ("Hello there, my good friend.", 1, "person"),
]
WANT_POSITIONS = [5, 7, 6, 4, 3, 1]


@pytest.fixture(scope="module")
def loaded() -> Any:
    return load_model(tiny_model("llama"), device="cpu")


@pytest.fixture(scope="module")
def dataset(loaded: Any) -> PositionDataset:
    return build_position_dataset(loaded, EXAMPLES, SITES, progress=False, metadata={"experiment": "e1"})


def reference_rows(loaded: Any, texts: list[str], positions: list[int]) -> np.ndarray:
    """``head.1.0`` and ``resid.2`` of each text, run alone (no padding), by plain Hugging Face calls."""
    model = loaded.model
    proj = model.layers[1].self_attn.o_proj
    seen: dict[str, torch.Tensor] = {}
    handle = proj.register_forward_hook(lambda _m, inputs, _o: seen.__setitem__("x", inputs[0]))
    rows = []
    try:
        for text, pos in zip(texts, positions, strict=True):
            enc = loaded.tokenizer(text, return_tensors="pt")
            with torch.inference_mode():
                out = model(**enc, output_hidden_states=True)
            head = seen["x"][0, pos, 0:HEAD_DIM] @ proj.weight[:, 0:HEAD_DIM].T
            resid = out.hidden_states[3][0, pos]  # hidden_states[L + 1] is block L's output
            rows.append(torch.cat([head, resid]).float().numpy())
    finally:
        handle.remove()
    return np.stack(rows)


def test_matrix_equals_a_plain_huggingface_run(loaded: Any, dataset: PositionDataset) -> None:
    texts = [t for t, _, _ in EXAMPLES]
    assert dataset.texts == texts
    assert dataset.positions == WANT_POSITIONS
    assert dataset.sites == ["head.1.0", "resid.2"]
    assert dataset.X.dtype == np.float32 and dataset.X.shape == (6, 64) and len(dataset) == 6
    np.testing.assert_allclose(dataset.X, reference_rows(loaded, texts, WANT_POSITIONS), rtol=1e-5, atol=1e-6)
    # The same rows as extract_at at the resolved positions, and each site's columns in order.
    direct = extract_at(loaded, texts, WANT_POSITIONS, SITES, progress=False)
    np.testing.assert_array_equal(dataset.X, direct)
    np.testing.assert_array_equal(dataset.site("head.1.0"), direct[:, :32])
    np.testing.assert_array_equal(dataset.site(2), direct[:, 32:])
    np.testing.assert_array_equal(dataset.site("resid.2"), direct[:, 32:])
    assert dataset.class_names == ["animal", "object", "person"]  # sorted distinct names
    assert dataset.labels.tolist() == [0, 0, 2, 1, 0, 2] and dataset.labels.dtype == np.int64


def test_metadata_records_the_model_and_the_run(loaded: Any, dataset: PositionDataset) -> None:
    meta = dataset.metadata
    assert meta["model"] == loaded.name
    assert meta["fingerprint"] == fingerprint_of(loaded)
    assert meta["sites"] == ["head.1.0", "resid.2"] and meta["hidden_size"] == 32
    assert meta["class_names"] == ["animal", "object", "person"]
    assert meta["interventions"] == [] and meta["user"] == {"experiment": "e1"}
    assert isinstance(meta["fastprobe_version"], str) and meta["fastprobe_version"]
    created = meta["created"]
    assert len(created) == 20 and created[4] == "-" and created[10] == "T" and created.endswith("Z")


def test_site_names_an_unknown_site(dataset: PositionDataset) -> None:
    with pytest.raises(
        UnknownOptionError, match=r"unknown site 'attn\.1'; this dataset has the sites: head\.1\.0, resid\.2"
    ):
        dataset.site("attn.1")
    with pytest.raises(UnknownOptionError, match="unknown site 3"):
        dataset.site(3)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_character_spans_and_token_spans_pick_the_last_token(arch: str) -> None:
    loaded = load_model(tiny_model(arch), device="cpu")
    text = "The cat sat because it was tired"
    ids = loaded.tokenizer(text)["input_ids"]
    n = len(ids)
    it, cat, span = (find_token_positions(loaded, text, needle) for needle in ("it", "cat", "because it"))
    assert isinstance(it, TokenSpan) and isinstance(cat, TokenSpan) and isinstance(span, TokenSpan)
    tokens = loaded.tokenizer.convert_ids_to_tokens(ids)
    unknown = tokens.index(loaded.tokenizer.unk_token)  # "tired" (the tiny vocabulary lacks it)
    examples = [
        (text, (20, 22), 0),  # "it"
        (text, slice(20, 22), 0),
        (text, (4, 6), 0),  # "ca": part of a token gives that token
        (text, (4, 8), 0),  # "cat ": the space after it is no token's character
        (text, slice(None, 7), 0),  # "The cat"
        (text, span, 0),
        (text, -2, 0),
        (text, (27, 32), 0),  # "tired": bert's [SEP] after it has no characters
    ]
    ds = build_position_dataset(loaded, examples, [1], class_names=["x"], progress=False)
    assert ds.positions == [it.last, it.last, cat.last, cat.last, cat.last, span.last, n - 2, unknown]
    assert span.last == it.last and tokens[it.last] == "it" and tokens[cat.last] == "cat"


def test_class_names_default_and_given(loaded: Any) -> None:
    base = [("The cat sat", -1, 2), ("A dog ran", -1, 0)]
    assert build_position_dataset(loaded, base, [0], progress=False).class_names == ["0", "1", "2"]
    ds = build_position_dataset(loaded, base, [0], class_names=["a", "b", "c"], progress=False)
    assert ds.class_names == ["a", "b", "c"] and ds.labels.tolist() == [2, 0]
    named = [("The cat sat", -1, "b"), ("A dog ran", -1, "a")]
    ds = build_position_dataset(loaded, named, [0], class_names=["b", "a", "z"], progress=False)
    assert ds.class_names == ["b", "a", "z"] and ds.labels.tolist() == [0, 1]


def test_a_model_name_is_loaded() -> None:
    ds = build_position_dataset(tiny_model("llama"), [("The cat sat", -1, "a")], ["embed"], progress=False)
    assert ds.sites == ["embed"] and ds.X.shape == (1, 32)


# -- save / load -------------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip_bit_exact(
    dataset: PositionDataset, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ds.safetensors"
    dataset.save(path)
    data = path.read_bytes()
    assert data[:1] != b"\x80"  # a pickle (protocol 2+) starts with PROTO
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert sorted(k for k in header if k != "__metadata__") == ["X", "labels", "positions"]
    assert header["__metadata__"]["format"] == DATASET_FORMAT
    assert list(tmp_path.iterdir()) == [path]  # no temporary file, no sidecar

    import safetensors

    opened: list[str] = []
    real_open = safetensors.safe_open

    def spy(name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(name))
        return real_open(name, *args, **kwargs)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("loading a position dataset must not unpickle")

    monkeypatch.setattr(safetensors, "safe_open", spy)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    back = PositionDataset.load(str(path))
    assert opened == [str(path)]
    assert back.X.dtype == np.float32 and back.X.tobytes() == dataset.X.tobytes()
    np.testing.assert_array_equal(back.labels, dataset.labels)
    assert back.labels.dtype == np.int64
    assert back.positions == dataset.positions
    assert back.texts == dataset.texts and back.class_names == dataset.class_names and back.sites == dataset.sites
    assert back.metadata == dataset.metadata


def test_an_interrupted_save_leaves_the_old_file(
    dataset: PositionDataset, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ds.safetensors"
    path.write_bytes(b"old contents")

    def fail(*_args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(FastprobeIOError, match="disk full"):
        dataset.save(path)
    assert path.read_bytes() == b"old contents"
    assert list(tmp_path.iterdir()) == [path]


def _rewrite(src: pathlib.Path, dst: pathlib.Path, drop: str | None = None, **header: str) -> None:
    """Copy a saved dataset with a tensor dropped or header entries replaced (tensors unchanged)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(src), framework="numpy") as f:
        meta = dict(f.metadata())
        arrays = {k: f.get_tensor(k) for k in f.keys() if k != drop}
    meta.update(header)
    save_file(arrays, str(dst), metadata=meta)


def test_corrupt_files_are_refused_with_the_fault(dataset: PositionDataset, tmp_path: pathlib.Path) -> None:
    good = tmp_path / "good.safetensors"
    dataset.save(good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 7])
    with pytest.raises(InvalidInputError, match=r"truncated\.safetensors.*truncated or corrupt"):
        PositionDataset.load(truncated)

    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    with pytest.raises(InvalidInputError, match=r"flipped\.safetensors.*corrupt.*SHA-256"):
        PositionDataset.load(flipped)

    lacking = tmp_path / "lacking.safetensors"
    _rewrite(good, lacking, drop="positions")
    with pytest.raises(InvalidInputError, match=r"lacking\.safetensors.*lacks the tensor\(s\) \['positions'\]"):
        PositionDataset.load(lacking)

    short = tmp_path / "short.safetensors"
    _rewrite(good, short, texts=json.dumps(["only one"]))
    with pytest.raises(InvalidInputError, match=r"short\.safetensors.*texts has 1 entries; X has 6 rows"):
        PositionDataset.load(short)

    no_entry = tmp_path / "no_entry.safetensors"
    _rewrite(good, no_entry, class_names="not json [")
    with pytest.raises(InvalidInputError, match=r"no_entry\.safetensors.*'class_names' is not valid JSON"):
        PositionDataset.load(no_entry)

    other = tmp_path / "other.safetensors"
    _rewrite(good, other, format="something.else")
    with pytest.raises(InvalidInputError, match=r"not a position dataset.*'something\.else'"):
        PositionDataset.load(other)

    with pytest.raises(FastprobeIOError, match="could not read"):
        PositionDataset.load(tmp_path / "missing.safetensors")
    with pytest.raises(ArgumentTypeError, match="path must be a str or os.PathLike; got int"):
        PositionDataset.load(3)  # type: ignore[arg-type]


# -- JSON Lines --------------------------------------------------------------------------------------------------------


def _lines(path: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_round_trip_is_exact(loaded: Any, tmp_path: pathlib.Path) -> None:
    ds = build_position_dataset(
        loaded,
        EXAMPLES,
        SITES,
        progress=False,
        metadata={"experiment": "e1", "llm": "my name for it"},  # the user's keys win
    )
    path = tmp_path / "all.jsonl"
    ds.to_jsonl(path)
    first, *rows = _lines(path)
    assert first["layer"] is None and first["head"] is None  # two sites
    assert first["class_labels"] == ["animal", "object", "person"]
    assert first["llm"] == "my name for it" and first["experiment"] == "e1"
    assert first["timestamp"] == ds.metadata["created"]
    assert [r["label"] for r in rows] == ds.labels.tolist()
    assert all(sorted(r) == ["activation", "label"] and len(r["activation"]) == 64 for r in rows)
    back = PositionDataset.from_jsonl(path)
    assert back.X.dtype == np.float32 and back.X.tobytes() == ds.X.tobytes()
    np.testing.assert_array_equal(back.labels, ds.labels)
    assert back.class_names == ds.class_names and back.sites == ["head.1.0", "resid.2"]
    assert back.texts == [""] * 6 and back.positions == [-1] * 6
    assert back.metadata["user"] == {"experiment": "e1"} and back.metadata["model"] == "my name for it"

    ds.to_jsonl(tmp_path / "head.jsonl", site="head.1.0")
    first, *rows = _lines(tmp_path / "head.jsonl")
    assert (first["layer"], first["head"]) == (1, 0) and len(rows[0]["activation"]) == 32
    head = PositionDataset.from_jsonl(tmp_path / "head.jsonl")
    assert head.sites == ["head.1.0"] and head.X.tobytes() == ds.site("head.1.0").tobytes()

    ds.to_jsonl(tmp_path / "resid.jsonl", site=2)
    first = _lines(tmp_path / "resid.jsonl")[0]
    assert (first["layer"], first["head"]) == (2, None)


def test_jsonl_floats_round_trip_float32_exactly(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((5, 7)) * np.logspace(-30, 30, 7)).astype(np.float32)
    X[0, 0] = np.float32(0.1)
    X[1, 1] = np.finfo(np.float32).tiny
    X[2, 2] = np.finfo(np.float32).max
    ds = PositionDataset(X, np.array([0, 1, 0, 1, 1]), ["a", "b"], [""] * 5, [-1] * 5, ["unknown"])
    ds.to_jsonl(tmp_path / "x.jsonl")
    assert PositionDataset.from_jsonl(tmp_path / "x.jsonl").X.tobytes() == X.tobytes()


def test_a_handwritten_workflow_file_imports(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "workflow.jsonl"
    first = {
        "layer": 5,
        "head": 3,
        "class_labels": ["sun", "moon", "star"],
        "llm": "pythia-2.8b-deduped-v0",
        "timestamp": "2024-01-02T03:04:05Z",
        "experiment": "it-noun",
    }
    path.write_text(
        json.dumps(first)
        + "\n"
        + '{"activation": [0.5, -1.25, 3.0], "label": 2}\n'
        + '{"activation": [1e-3, 2, -0.0], "label": 0}\n'
    )
    ds = PositionDataset.from_jsonl(path)
    np.testing.assert_array_equal(ds.X, np.array([[0.5, -1.25, 3.0], [1e-3, 2, -0.0]], dtype=np.float32))
    assert ds.labels.tolist() == [2, 0] and ds.class_names == ["sun", "moon", "star"]
    assert ds.sites == ["head.5.3"] and ds.metadata["model"] == "pythia-2.8b-deduped-v0"
    assert ds.metadata["created"] == "2024-01-02T03:04:05Z" and ds.metadata["user"] == {"experiment": "it-noun"}

    first.update(head=None)
    path.write_text(json.dumps(first) + '\n{"activation": [1, 2], "label": 1}\n')
    assert PositionDataset.from_jsonl(path).sites == ["resid.5"]
    path.write_text('{"class_labels": ["a"]}\n{"activation": [1, 2], "label": 0}\n')
    assert PositionDataset.from_jsonl(path).sites == ["unknown"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"activation": [1, 2, 3], "label": 0}\n{"activation": [1, 2, 3]}\n',
            r"line 3: expected an example with the keys 'activation' and 'label'; it lacks \['label'\]",
        ),
        (
            '{"activation": [1, 2, 3], "label": 0}\n{"activation": [1, 2], "label": 1}\n',
            r"line 3: expected an activation of 3 values \(as on the first example line\); got 2",
        ),
        (
            '{"activation": [1, 2, 3], "label": 7}\n',
            r"line 2: expected 'label' to index class_labels \(0 to 2, 3 classes\); got 7",
        ),
        ('{"activation": [1, 2, 3], "label": 0}\n{"activation": [1, 2, 3], "label": 0\n', r"line 3: .*not JSON"),
        (
            '{"activation": ["a", "b"], "label": 0}\n',
            r"line 2: expected 'activation' to be a non-empty list of numbers",
        ),
        ('{"activation": [1.0], "label": 1.0}\n', r"line 2: expected 'label' to be an int class index; got 1\.0"),
    ],
)
def test_bad_jsonl_lines_are_named(tmp_path: pathlib.Path, body: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"class_labels": ["a", "b", "c"]}\n' + body)
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl'?, " + message):
        PositionDataset.from_jsonl(path)


def test_a_jsonl_file_needs_class_labels_and_examples(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"labels": ["a"]}\n{"activation": [1], "label": 0}\n')
    with pytest.raises(InvalidInputError, match=r"line 1: expected the metadata object with 'class_labels'; got"):
        PositionDataset.from_jsonl(path)
    path.write_text('{"class_labels": ["a"]}\n')
    with pytest.raises(InvalidInputError, match="no example lines"):
        PositionDataset.from_jsonl(path)


# -- split -------------------------------------------------------------------------------------------------------------


def _synthetic(counts: list[int]) -> PositionDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(1)
    rng.shuffle(labels)
    n = len(labels)
    X = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    names = [f"c{k}" for k in range(len(counts))]
    return PositionDataset(X, labels, names, [f"t{i}" for i in range(n)], list(range(n)), ["resid.0"])


def test_split_is_seeded_and_stratified() -> None:
    ds = _synthetic([10, 6, 4])
    train, test = ds.split(0.25, random_state=3)
    again_train, again_test = ds.split(0.25, random_state=3)
    assert test.texts == again_test.texts and train.texts == again_train.texts
    assert len(test) == 5 and len(train) == 15
    assert sorted(train.texts + test.texts) == sorted(ds.texts)  # a partition
    counts = np.bincount(test.labels, minlength=3)
    for k, c in enumerate([10, 6, 4]):
        assert math.floor(c * 5 / 20) <= counts[k] <= math.ceil(c * 5 / 20)
    assert test.metadata["split"] == {
        "part": "test",
        "of": 20,
        "test_size": 0.25,
        "random_state": 3,
        "stratified": True,
    }
    # Rows travel with their texts and labels.
    for part in (train, test):
        idx = [int(t[1:]) for t in part.texts]
        np.testing.assert_array_equal(part.X, ds.X[idx])
        np.testing.assert_array_equal(part.labels, ds.labels[idx])
        assert part.positions == idx
    others = {tuple(ds.split(0.25, random_state=s)[1].texts) for s in range(5)}
    assert len(others) > 1


def test_split_falls_back_to_a_plain_shuffle() -> None:
    ds = _synthetic([8, 1])  # one class has a single example
    _, test = ds.split(3, random_state=0)
    assert len(test) == 3 and test.metadata["split"]["stratified"] is False
    assert ds.split(3, random_state=0)[1].texts == test.texts
    assert _synthetic([8, 4]).split(3, stratify=False)[1].metadata["split"]["stratified"] is False
    with pytest.raises(InvalidInputError, match="both parts need at least one example"):
        ds.split(9)
    with pytest.raises(InvalidInputError, match=r"a fractional test_size must be in \(0, 1\); got 1\.5"):
        ds.split(1.5)


# -- interventions and metadata ----------------------------------------------------------------------------------------


def test_head_ablation_zeroes_the_head_and_is_recorded(loaded: Any, dataset: PositionDataset) -> None:
    ablation = HeadAblation("1.0")
    ds = build_position_dataset(loaded, EXAMPLES, SITES, progress=False, interventions=[ablation])
    assert np.all(ds.site("head.1.0") == 0.0)
    assert not np.allclose(ds.site("resid.2"), dataset.site("resid.2"))
    assert ds.metadata["interventions"] == [ablation.identity()]
    assert ds.metadata["interventions"][0]["kind"] == "head_ablation"

    double = Intervention(0, lambda x: x * 2)
    ds = build_position_dataset(loaded, EXAMPLES[:2], ["resid.0"], progress=False, interventions=[double])
    np.testing.assert_allclose(ds.X, 2 * _resid0(loaded), rtol=1e-6)
    assert ds.metadata["interventions"] == [{"kind": "function", "target": "0"}]


def _resid0(loaded: Any) -> np.ndarray:
    texts = [t for t, _, _ in EXAMPLES[:2]]
    return extract_at(loaded, texts, WANT_POSITIONS[:2], ["resid.0"], progress=False)


def test_user_metadata_is_copied_not_mutated(loaded: Any) -> None:
    mine = {"experiment": {"runs": [1, 2]}, "note": "x"}
    before = copy.deepcopy(mine)
    ds = build_position_dataset(loaded, EXAMPLES[:2], [1], progress=False, metadata=mine)
    assert mine == before and ds.metadata["user"] == mine
    ds.metadata["user"]["experiment"]["runs"].append(3)
    assert mine == before


# -- bad input, refused before the model runs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("examples", "kwargs", "error", "message"),
    [
        ([], {}, InvalidInputError, "examples is empty"),
        ([("The cat sat", 0)], {}, ArgumentTypeError, r"examples\[0\] must be a \(text, where, label\) triple"),
        (
            [("The cat sat", 0, 0), ("A dog ran", 0, 5)],
            {"class_names": ["a", "b", "c"]},
            InvalidInputError,
            r"examples\[1\]: label index 5 is outside class_names, which has 3 classes \(valid: 0 to 2\)",
        ),
        (
            [("The cat sat", 0, "dog")],
            {"class_names": ["cat", "bird"]},
            InvalidInputError,
            r"examples\[0\]: the label 'dog' is not a class name; class_names are \['cat', 'bird'\]",
        ),
        (
            [("The cat sat", (4, 40), "a")],
            {},
            InvalidInputError,
            r"examples\[0\]: the character span \(4, 40\) is outside the text or empty; expected 0 <= start < end "
            r"<= 11",
        ),
        (
            [("The cat sat", 9, "a")],
            {},
            InvalidInputError,
            r"examples\[0\]: token position 9 is outside the text 'The cat sat', which has 4 tokens",
        ),
        ([("The cat sat", [4, 7], "a")], {}, ArgumentTypeError, r"examples\[0\]: where must be a token position"),
        (
            [("The cat sat", 0, "a"), ("A dog", 0, 1)],
            {},
            ArgumentTypeError,
            "labels must be all class names",
        ),
        ([("", 0, "a")], {}, InvalidInputError, r"examples\[0\]: the text is empty"),
        ([("The cat sat", 0, "a")], {"metadata": {"f": object()}}, ArgumentTypeError, "metadata must be JSON-able"),
        ([("The cat sat", 0, "a")], {"interventions": ["1.0"]}, ArgumentTypeError, r"interventions\[0\] must be"),
    ],
)
def test_bad_input_raises_before_the_model_runs(
    loaded: Any, monkeypatch: pytest.MonkeyPatch, examples: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    import fastprobe.extraction.runner

    def never(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the model ran on bad input")

    monkeypatch.setattr(fastprobe.extraction.runner, "forward_batches", never)
    with pytest.raises(error, match=message):
        build_position_dataset(loaded, examples, SITES, progress=False, **kwargs)
