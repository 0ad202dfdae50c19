"""Reading activation datasets: metadata, raw tensors, activation arrays, and pulling them into fastprobe's cache."""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastprobe._validation import check_prompts
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, MissingActivationsError, UnknownOptionError
from fastprobe.sharing._format import (
    check_version,
    hidden_key,
    hub_modules,
    model_name,
    read_index,
    read_metadata,
    read_rows,
    shard_file,
)
from fastprobe.sharing._hub import Downloader

logger = logging.getLogger("fastprobe.sharing")
_POOLINGS = ("last_token", "first_token", "mean", "max", "min")


@dataclass
class DatasetMetadata:
    """What an activation dataset holds, from its index alone (no tensor is downloaded).

    Returned by :func:`fetch_dataset_metadata`.

    Attributes
    ----------
    model_name : str
        The model the activations came from.
    available_layers : list of int
        The hidden layers stored.
    num_prompts : int
        Rows of the index.
    format_version : str
        The dataset format (``"2.0"``).
    tensor_descriptors : dict
        The ``lmprobe:tensors`` schema metadata: one descriptor per tensor type.
    prompts : list of str
        The prompts, in index order.
    """

    model_name: str
    available_layers: list[int]
    num_prompts: int
    format_version: str
    tensor_descriptors: dict[str, Any]
    prompts: list[str] = field(default_factory=list)


class OpenDataset:
    """An opened dataset: its metadata and index, and readers for rows of its shards (downloaded on demand)."""

    def __init__(self, repo_id: str, token: str | None) -> None:
        if not isinstance(repo_id, str) or not repo_id.strip("/"):
            raise (InvalidInputError if isinstance(repo_id, str) else ArgumentTypeError)(
                f"the dataset must be a repository id such as 'user/name'; got {repo_id!r}"
            )
        hub_modules()
        self.repo_id = repo_id
        self.files = Downloader(repo_id, token)
        parquet = self.files.index()
        info = read_metadata(parquet)
        if info is None:
            raise InvalidInputError(
                f"Dataset {repo_id!r} uses v1 format (separate lmprobe_info.json): its index has no 'lmprobe:' "
                f"schema metadata. Upgrade it with: fastprobe.sharing.upgrade_dataset_format({repo_id!r})"
            )
        self.info = info
        self.index = read_index(parquet)
        self.texts: list[str] = list(self.index.get("text", []))
        self.tensors: dict[str, Any] = dict(info.get("tensors") or {})
        self.hidden: dict[str, Any] = dict(self.tensors.get("hidden_layers") or {})
        self._row: dict[str, int] | None = None

    @property
    def model(self) -> str:
        return model_name(self.info)

    @property
    def layers(self) -> list[int]:
        return [int(x) for x in self.hidden.get("layers", [])]

    @property
    def full_sequence(self) -> bool:
        return self.hidden.get("storage") == "full_sequence"

    @property
    def split(self) -> bool:
        """Full-sequence with last-token shards (format 2.0); False for a legacy full-sequence layout."""
        return self.full_sequence and int(self.hidden.get("last_token_shards", 0) or 0) > 0

    def rows(self, prompts: Sequence[str]) -> list[int]:
        """Index rows of the prompts (the last row of a prompt listed twice); raises for prompts not in the index."""
        if self._row is None:
            self._row = {t: i for i, t in enumerate(self.texts)}
        missing = [p for p in prompts if p not in self._row]
        if missing:
            more = f" ... and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise MissingActivationsError(
                f"No cached activations for {len(missing)} prompt(s): {missing[:3]!r}{more} are not in dataset "
                f"{self.repo_id!r}"
            )
        return [self._row[p] for p in prompts]

    def check_layers(self, layers: Sequence[int] | None) -> list[int]:
        if not self.hidden:
            raise InvalidInputError(f"dataset {self.repo_id!r} has no hidden-layer activations (no 'hidden_layers')")
        if layers is None:
            return self.layers
        if isinstance(layers, (int, np.integer)):
            layers = [int(layers)]
        wanted = [int(x) for x in layers]
        if not wanted:
            raise InvalidInputError("layers is empty; pass None for every layer of the dataset")
        missing = sorted(set(wanted) - set(self.layers))
        if missing:
            raise InvalidInputError(f"Layers {missing} not in dataset. Available: {self.layers}")
        return sorted(set(wanted))

    # ------------------------------------------------------------------ addressing

    def _legacy_starts(self) -> list[int]:
        """Shard-local first-token row of every prompt of a legacy full-sequence dataset."""
        counts = self.index["num_tokens"]
        if "token_offset" in self.index:
            base = np.concatenate([[0], np.cumsum([int(s.get("num_tokens", 0)) for s in self.hidden["shards"]])])
            return [
                int(t) - int(base[int(s)])
                for t, s in zip(self.index["token_offset"], self.index["shard_index"], strict=True)
            ]
        used: dict[int, int] = defaultdict(int)
        starts = []
        for s, n in zip(self.index["shard_index"], counts, strict=True):
            starts.append(used[int(s)])
            used[int(s)] += int(n)
        return starts

    def last_token_addresses(self, rows: Sequence[int]) -> list[tuple[int, int]]:
        """``(shard, row)`` of each row's last-token vector."""
        si, ro = self.index["shard_index"], self.index["row_offset"]
        if self.full_sequence and not self.split:
            starts = self._legacy_starts()
            counts = self.index["num_tokens"]
            return [(int(si[r]), starts[r] + int(counts[r]) - 1) for r in rows]
        return [(int(si[r]), int(ro[r])) for r in rows]

    def token_addresses(self, rows: Sequence[int]) -> tuple[list[tuple[int, int]], np.ndarray]:
        """``(shard, row)`` of every token of each row, in order, and the offsets of each row's tokens."""
        if not self.full_sequence:
            raise InvalidInputError(
                f"dataset {self.repo_id!r} stores one last-token vector per prompt (storage 'pooled'), not tokens"
            )
        out: list[tuple[int, int]] = []
        offsets = [0]
        if self.split:
            ids, offs = self.index["token_shard_ids"], self.index["token_shard_offsets"]
            for r in rows:
                out += [(int(s), int(o)) for s, o in zip(ids[r], offs[r], strict=True)]
                offsets.append(len(out))
        else:
            starts, counts, si = self._legacy_starts(), self.index["num_tokens"], self.index["shard_index"]
            for r in rows:
                out += [(int(si[r]), starts[r] + t) for t in range(int(counts[r]))]
                offsets.append(len(out))
        return out, np.asarray(offsets, dtype=np.int64)

    def gather(self, layer: int, addresses: Sequence[tuple[int, int]]) -> np.ndarray:
        """Return the vectors at ``(shard, row)`` addresses of one layer, float32, in order (shards fetched once)."""
        dim = int(self.hidden.get("dim") or 0)
        out = np.empty((len(addresses), dim), dtype=np.float32) if dim else None
        by_shard: dict[int, list[int]] = defaultdict(list)
        for i, (s, _) in enumerate(addresses):
            by_shard[s].append(i)
        key = hidden_key(self.hidden, layer)
        for s, positions in sorted(by_shard.items()):
            path = self.files.get(shard_file(self.hidden, s, layer))
            block = read_rows(path, key, np.asarray([addresses[i][1] for i in positions]))
            if out is None:
                out = np.empty((len(addresses), block.shape[1]), dtype=np.float32)
            out[positions] = block
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def pooled(self, rows: Sequence[int], layer: int, pooling: str) -> np.ndarray:
        """One vector per row at one layer."""
        if pooling == "last_token":
            return self.gather(layer, self.last_token_addresses(rows))
        if not self.full_sequence:
            raise InvalidInputError(
                f"pooling={pooling!r} needs every token, but dataset {self.repo_id!r} stores only the last-token "
                "vector of each prompt (storage 'pooled', pooling 'last_token'); use pooling='last_token'"
            )
        from fastprobe.store.pooling import pool_ragged

        addresses, offsets = self.token_addresses(rows)
        return pool_ragged(self.gather(layer, addresses), offsets, pooling)


# ---------------------------------------------------------------------------------------------- public functions


def fetch_dataset_metadata(repo_id: str, *, token: str | None = None) -> DatasetMetadata:
    """Describe an activation dataset from its parquet index (no tensor is downloaded).

    Parameters
    ----------
    repo_id : str
        The dataset repository, ``"user/name"``.
    token : str, optional
        Hugging Face token.

    Returns
    -------
    DatasetMetadata

    Raises
    ------
    InvalidInputError
        If the index has no embedded metadata (a format 1.x dataset: see :func:`upgrade_dataset_format`) or names
        no model.
    MissingDependencyError
        Without ``huggingface_hub`` or ``pyarrow``.
    huggingface_hub.errors.RepositoryNotFoundError
        If the repository does not exist (or is private and the token cannot read it).
    """
    ds = OpenDataset(repo_id, token)
    return DatasetMetadata(
        model_name=ds.model,
        available_layers=ds.layers,
        num_prompts=len(ds.texts),
        format_version=str(ds.info.get("format_version", "1.0")),
        tensor_descriptors=ds.tensors,
        prompts=list(ds.texts),
    )


def load_activation_dataset(
    repo_id: str,
    *,
    tensors: list[str] | None = None,
    layers: list[int] | None = None,
    token: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Download a dataset's shards and return each tensor key's shards concatenated, with the dataset's metadata.

    Rows come in shard order (which is index order for last-token shards); fastprobe's cache is not touched.

    Parameters
    ----------
    repo_id : str
        The dataset repository.
    tensors : list of str, optional
        Tensor types to load (``"hidden_layers"``, ``"logits_topk"``, ``"router_logits"``); None loads all.
    layers : list of int, optional
        Hidden layers to load; None loads all. Ignored, with a warning, for a format 1.0 dataset whose shards hold
        every layer.
    token : str, optional
        Hugging Face token.

    Returns
    -------
    tensors : dict of str to torch.Tensor
        Keys as in the shards (``"hidden.layer_16"``: ``(rows, hidden)``; ``"logits_topk.values"``, ...).
    info : dict
        The dataset's metadata (the ``lmprobe:`` keys of its index).

    Raises
    ------
    InvalidInputError
        For layers not in the dataset or a dataset of a newer major format.
    """
    import torch
    from safetensors import safe_open

    ds = OpenDataset(repo_id, token)
    check_version(ds.info, warn_minor=False)
    if isinstance(tensors, str):
        raise ArgumentTypeError(f"tensors must be a list of tensor types, not the string {tensors!r}")
    types = [t for t in ds.tensors if tensors is None or t in tensors]
    if layers is not None and ds.hidden and (tensors is None or "hidden_layers" in tensors):
        ds.check_layers(layers)
    parts: dict[str, list[Any]] = defaultdict(list)
    for t in types:
        desc = ds.tensors[t]
        shards = desc.get("shards", [])
        per_layer = desc.get("layout") == "per_layer"
        wanted = [int(x) for x in desc.get("layers", [])] if per_layer else [None]
        if per_layer and layers is not None:
            wanted = [x for x in wanted if x in set(int(y) for y in layers)]
        if not per_layer and layers is not None and t == "hidden_layers":
            warnings.warn(
                "layers is ignored for a format 1.0 dataset: its shards hold every layer in one file",
                UserWarning,
                stacklevel=2,
            )
        for layer in wanted:
            for s, entry in enumerate(shards):
                if not entry.get("num_prompts", 1) or entry.get("num_tokens", 1) == 0:
                    continue  # an empty shard has no file
                path = ds.files.get(shard_file(desc, s, layer))
                with safe_open(path, framework="pt") as f:
                    for key in f.keys():
                        parts[key].append(f.get_tensor(key))
    return {k: torch.cat(v, dim=0) for k, v in parts.items()}, ds.info


def load_activations(
    dataset: str,
    *,
    prompts: list[str] | None = None,
    layers: list[int] | None = None,
    pooling: str = "last_token",
    token: str | None = None,
    as_dict: bool = True,
    return_labels: bool = False,
    show_progress: bool = True,
) -> dict[int, np.ndarray] | np.ndarray | tuple[Any, np.ndarray | None]:
    """Load one activation vector per prompt and layer from an activation dataset.

    Only the shards holding the requested prompts and layers are downloaded (into the Hugging Face cache).

    Parameters
    ----------
    dataset : str
        The dataset repository.
    prompts : list of str, optional
        Prompts to load, in the order wanted; None loads every prompt in index order.
    layers : list of int, optional
        Layers to load (returned sorted); None loads every layer.
    pooling : {"last_token", "first_token", "mean", "max", "min"}, default="last_token"
        How each prompt's tokens become one vector. Pooled datasets hold the last token only; the other poolings
        need a full-sequence dataset.
    token : str, optional
        Hugging Face token.
    as_dict : bool, default=True
        Return ``{layer: ndarray (n_prompts, hidden)}``; False returns one ``ndarray (n_prompts, n_layers, hidden)``.
    return_labels : bool, default=False
        Also return the prompts' labels from the index: an array, or None when the dataset has no label for some
        prompt.
    show_progress : bool, default=True
        Show a progress bar over the layers.

    Returns
    -------
    dict of int to numpy.ndarray, or numpy.ndarray, or (activations, labels)
        float32 activations.

    Raises
    ------
    InvalidInputError
        For layers not in the dataset, or a pooling other than ``"last_token"`` on a pooled dataset.
    UnknownOptionError
        For an unknown pooling.
    MissingActivationsError
        For prompts that are not in the dataset ("No cached activations for ..."; lmprobe raises
        ``FileNotFoundError``).
    """
    from tqdm import tqdm

    if pooling not in _POOLINGS:
        raise UnknownOptionError(f"unknown pooling {pooling!r}; expected one of: {', '.join(_POOLINGS)}")
    ds = OpenDataset(dataset, token)
    check_version(ds.info)
    wanted = ds.check_layers(layers)
    names = list(ds.texts) if prompts is None else check_prompts(prompts)
    rows = ds.rows(names)
    blocks = [
        ds.pooled(rows, layer, pooling) for layer in tqdm(wanted, desc="Loading layers", disable=not show_progress)
    ]
    activations: dict[int, np.ndarray] | np.ndarray
    if as_dict:
        activations = dict(zip(wanted, blocks, strict=True))
    else:
        dim = int(ds.hidden.get("dim") or (blocks[0].shape[1] if blocks else 0))
        activations = np.stack(blocks, axis=1) if blocks else np.zeros((len(rows), 0, dim), dtype=np.float32)
    if not return_labels:
        return activations
    return activations, _labels(ds, names)


def _labels(ds: OpenDataset, prompts: list[str]) -> np.ndarray | None:
    if "label" not in ds.index:
        return None
    by_text = dict(zip(ds.texts, ds.index["label"], strict=True))
    values = [by_text.get(p) for p in prompts]
    if any(v is None for v in values):
        return None
    return np.array(values)


# ---------------------------------------------------------------------------------------------- pull


def pull_dataset(
    repo_id: str,
    *,
    tensors: list[str] | None = None,
    layers: list[int] | None = None,
    target_prompts: list[str] | None = None,
    overwrite: bool = False,
    token: str | None = None,
    materialize: bool = False,
    num_workers: int = 0,
    show_progress: bool = False,
) -> int:
    """Download an activation dataset into the Hugging Face cache and its activations into fastprobe's cache.

    The activations go into the store a :class:`~fastprobe.Probe` on the dataset's model reads, so that fitting or
    scoring a probe on these prompts runs no forward pass. For a dataset pushed by fastprobe that is the store its
    activations came from (its fingerprint is in the dataset); for one pushed by lmprobe, the store of the dataset's
    model at its revision, which needs the model's files on this machine (otherwise only the download happens, with
    a warning).

    A full-sequence dataset gives every token, so every pooling works from the cache. A pooled dataset gives each
    prompt's last-token vector only: it is stored with the prompt's token count as a last-token-only record
    (:meth:`~fastprobe.store.ActivationStore.write_last_token`), which serves ``pooling="last_token"`` (the
    default) and nothing else. A probe with another pooling (mean, first token, max, min, ``"all"``) finds those
    prompts not cached, runs the model for them once and stores the fuller records in their place, exactly as after
    a cache that kept pooled vectors only.

    Parameters
    ----------
    repo_id : str
        The dataset repository.
    tensors : list of str, optional
        Tensor types to download (None: all). Only ``"hidden_layers"`` goes into fastprobe's cache.
    layers : list of int, optional
        Hidden layers to pull (None: all).
    target_prompts : list of str, optional
        Pull only these prompts (None: all); prompts not in the dataset are ignored.
    overwrite : bool, default=False
        Replace what the cache already has for these prompts; by default prompts already cached at a layer (with
        their tokens, for a full-sequence dataset; in any form, for a pooled one) are left as they are there.
    token : str, optional
        Hugging Face token.
    materialize : bool, default=False
        Accepted for lmprobe compatibility (fastprobe always writes into its cache); it only changes what is counted.
    num_workers : int, default=0
        Threads compressing into the cache (0: the default pool).
    show_progress : bool, default=False
        Show a progress bar over the layers.

    Returns
    -------
    int
        With ``materialize=False``, the number of prompts pulled (all usable from the cache); with ``True``, the
        number of prompts newly written into the cache.
    """
    from tqdm import tqdm

    ds = OpenDataset(repo_id, token)
    check_version(ds.info)
    if isinstance(tensors, str):
        raise ArgumentTypeError(f"tensors must be a list of tensor types, not the string {tensors!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise InvalidInputError(f"num_workers must be a non-negative integer; got {num_workers!r}")
    wanted_set = None if target_prompts is None else set(target_prompts)
    rows = [i for i, t in enumerate(ds.texts) if wanted_set is None or t in wanted_set]
    types = [t for t in ds.tensors if tensors is None or t in tensors]
    for t in types:  # other tensor types: into the Hugging Face cache, for load_activation_dataset
        if t != "hidden_layers":
            desc = ds.tensors[t]
            for s, _entry in enumerate(desc.get("shards", [])):
                ds.files.get(shard_file(desc, s))
    if "hidden_layers" not in types or not ds.hidden or not rows:
        return len(rows) if not materialize else 0
    pull_layers = ds.check_layers(layers)
    from fastprobe.sharing._stores import target_store, warn_no_store

    store, reason, counter = target_store(ds.info)
    if store is None:
        for layer in pull_layers:  # still download what a later load needs
            ds.gather(layer, ds.last_token_addresses(rows))
        warn_no_store(reason)
        return len(rows) if not materialize else 0
    texts = [ds.texts[r] for r in rows]
    counts = _token_counts(ds, rows, counter)
    threads = int(num_workers) or None
    written: set[str] = set()
    for layer in tqdm(pull_layers, desc="Pulling layers", disable=not show_progress):
        todo = list(range(len(rows)))
        if not overwrite:
            have = store.contains(texts, [layer], tokens=ds.full_sequence, pooling="last_token")
            todo = [j for j in todo if not have[j]]
        rows_per_prompt = [counts[j] if ds.full_sequence else 1 for j in todo]
        for batch in _batches(rows_per_prompt, int(ds.hidden["dim"])):
            chosen = [todo[b] for b in batch]
            picked = ([rows[j] for j in chosen], [texts[j] for j in chosen], [counts[j] for j in chosen])
            _write_layer(ds, store, *picked, layer, threads)
            written.update(texts[j] for j in chosen)
    logger.info("pulled %d prompts of %s into %s", len(rows), repo_id, store.path)
    return len(written) if materialize else len(rows)


def _token_counts(ds: OpenDataset, rows: list[int], counter: Any) -> list[int]:
    """Return each row's token count.

    That is the index's ``num_tokens``, else (lmprobe's pooled caches leave it empty) the model's tokenizer's count
    when the model is here, else 1.
    """
    counts = [ds.index["num_tokens"][r] if "num_tokens" in ds.index else None for r in rows]
    unknown = [j for j, c in enumerate(counts) if c is None]
    if unknown and ds.full_sequence:
        raise InvalidInputError(f"dataset {ds.repo_id!r} is full-sequence but its index lacks num_tokens")
    if unknown and counter is not None:
        for j, c in zip(unknown, counter([ds.texts[rows[j]] for j in unknown]), strict=True):
            counts[j] = c
    return [max(int(c), 1) if c is not None else 1 for c in counts]


def _batches(counts: Sequence[int], dim: int, budget: int = 64 << 20) -> list[list[int]]:
    """Group positions so that each group's tokens take about ``budget`` bytes as float32."""
    out: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, c in enumerate(counts):
        size = int(c) * dim * 4
        if cur and used + size > budget:
            out.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += size
    if cur:
        out.append(cur)
    return out


def _write_layer(
    ds: OpenDataset, store: Any, rows: list[int], texts: list[str], sizes: list[int], layer: int, threads: int | None
) -> None:
    """Write some prompts of one layer into the store: every token, or (a pooled dataset) the last token alone."""
    if ds.full_sequence:
        addresses, offsets = ds.token_addresses(rows)
        values = ds.gather(layer, addresses)
    else:
        values = ds.gather(layer, ds.last_token_addresses(rows))
    finite = values[np.isfinite(values)]
    dtype = store.dtype
    if dtype == "float16" and finite.size and float(np.abs(finite).max()) > 65504.0:
        dtype = "float32"
    if ds.full_sequence:
        store.write(texts, values[None], np.diff(offsets), [layer], dtype=dtype, n_threads=threads)
    else:
        counts = np.asarray(sizes, dtype=np.int64)
        store.write_last_token(texts, values[None], counts, [layer], dtype=dtype, n_threads=threads)
