"""Bringing old datasets up to date: last-token shards for full-sequence datasets, and format 1.x to 2.0."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError
from fastprobe.sharing._format import (
    DEFAULT_SHARD_BYTES,
    FORMAT_VERSION,
    HIDDEN_FILE_PATTERN,
    HIDDEN_KEY_PATTERN,
    INFO_FILENAME,
    LOGITS_FILE_PATTERN,
    PARQUET_PATH,
    embed_metadata,
    fixed_shards,
    hidden_key,
    hub_modules,
    model_name,
    read_metadata,
    read_rows,
    save_shard,
    shard_file,
    write_index,
)
from fastprobe.sharing._hub import Downloader, commit_files, dataset_url, remote_files
from fastprobe.sharing._read import OpenDataset

logger = logging.getLogger("fastprobe.sharing")
_V1_HIDDEN_COLUMNS = {"shard_index_hidden": "shard_index", "row_offset_hidden": "row_offset",
                      "token_offset_hidden": "token_offset"}  # fmt: skip


def migrate_dataset(
    repo_id: str,
    *,
    shard_max_bytes: int = DEFAULT_SHARD_BYTES,
    token: str | None = None,
    private: bool | None = None,
    dry_run: bool = False,
) -> str:
    """Give a full-sequence dataset of the old layout its last-token shards (format 2.0's full-sequence layout).

    In the old layout each shard holds every token of its prompts, and ``shard_index``/``row_offset`` do not address
    the last token. The migration writes, for every layer, last-token shards (one row per prompt, fixed-size shards
    of at most ``shard_max_bytes``) followed by one rest shard per old shard (its tokens less each prompt's last),
    rebuilds the index (``shard_index``/``row_offset`` now address the last token; ``token_shard_ids`` and
    ``token_shard_offsets`` address every token) and commits it all in one commit, so readers see either the old
    dataset or the new one. Other tensor types and the dataset card are left as they are.

    Parameters
    ----------
    repo_id : str
        The dataset repository.
    shard_max_bytes : int, default=1 GiB
        Largest last-token shard.
    token : str, optional
        Hugging Face token.
    private : bool, optional
        Also make the repository private (True) or public (False); None leaves it.
    dry_run : bool, default=False
        Compute the new layout and return a summary instead of writing anything.

    Returns
    -------
    str
        The dataset's address, or with ``dry_run`` a line starting ``"[DRY RUN] Would migrate"``.

    Raises
    ------
    InvalidInputError
        If the dataset is not full-sequence storage ("not full_sequence"), already has last-token shards
        ("already has last-token shard splitting"), or its index does not match its shards.
    """
    hub, _ = hub_modules()
    if isinstance(shard_max_bytes, bool) or not isinstance(shard_max_bytes, (int, np.integer)) or shard_max_bytes < 1:
        raise InvalidInputError(f"shard_max_bytes must be a positive integer; got {shard_max_bytes!r}")
    ds = OpenDataset(repo_id, token)
    hidden = ds.hidden
    if hidden.get("storage") != "full_sequence":
        raise InvalidInputError(
            f"Dataset {repo_id!r} is not full_sequence storage (storage {hidden.get('storage')!r}); migration only "
            "applies to full_sequence datasets."
        )
    if int(hidden.get("last_token_shards", 0) or 0) > 0:
        raise InvalidInputError(
            f"Dataset {repo_id!r} already has last-token shard splitting (last_token_shards="
            f"{hidden['last_token_shards']}) - nothing to migrate."
        )
    counts = [int(c) for c in ds.index["num_tokens"]]
    n, layers, dim = len(counts), ds.layers, int(hidden["dim"])
    old = [int(s["num_prompts"]) for s in hidden.get("shards", [])]
    shard_of = [int(s) for s in ds.index["shard_index"]]
    expected = [s for s, size in enumerate(old) for _ in range(size)]
    if shard_of != expected:
        raise InvalidInputError(
            f"dataset {repo_id!r}: its index rows are not in shard order with {old} prompts per shard, as the old "
            "full-sequence layout has them; cannot migrate it"
        )
    lt = fixed_shards(n, dim * 4, int(shard_max_bytes))
    lead = [max(c - 1, 0) for c in counts]
    lt_place = [(s, r) for s, size in enumerate(lt) for r in range(size)]
    ids, offs = [], []
    first = 0
    for s, size in enumerate(old):
        offset = 0
        for i in range(first, first + size):
            ids.append([len(lt) + s] * lead[i] + [lt_place[i][0]])
            offs.append([offset + t for t in range(lead[i])] + [lt_place[i][1]])
            offset += lead[i]
        first += size
    if dry_run:
        return (
            f"[DRY RUN] Would migrate {repo_id}: {n} prompts, {len(layers)} layers, {len(lt)} lt shards + "
            f"{len(old)} rest shards"
        )
    shards = [{"num_prompts": b, "num_tokens": b} for b in lt]
    first = 0
    for size in old:
        shards.append({"num_prompts": size, "num_tokens": sum(lead[first : first + size])})
        first += size
    desc = {**hidden, "shards": shards, "last_token_shards": len(lt), "layout": "per_layer"}
    desc.setdefault("file_pattern", HIDDEN_FILE_PATTERN)
    desc.setdefault("key_pattern", HIDDEN_KEY_PATTERN)
    info = {**ds.info, "format_version": FORMAT_VERSION, "tensors": {**ds.tensors, "hidden_layers": desc}}
    starts = ds._legacy_starts()
    api = hub.HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="fastprobe-migrate-") as tmp:
        folder = Path(tmp)
        files: list[tuple[Path, str]] = []
        for layer in layers:
            key = hidden_key(hidden, layer)
            last_rows: list[np.ndarray] = []
            first = 0
            for s, size in enumerate(old):
                members = range(first, first + size)
                first += size
                n_rows = sum(counts[i] for i in members)
                if not n_rows:
                    continue
                block = read_rows(ds.files.get(shard_file(hidden, s, layer)), key, np.arange(n_rows))
                ends = np.asarray([starts[i] + counts[i] - 1 for i in members], dtype=np.int64)
                last_rows.append(block[ends])
                keep = np.ones(n_rows, dtype=bool)
                keep[ends] = False
                if keep.any():
                    path = shard_file(desc, len(lt) + s, layer)
                    save_shard(folder / path, hidden_key(desc, layer), block[keep])
                    files.append((folder / path, path))
            everything = np.concatenate(last_rows) if last_rows else np.zeros((0, dim), dtype=np.float32)
            for s, size in enumerate(lt):
                path = shard_file(desc, s, layer)
                begin = sum(lt[:s])
                save_shard(folder / path, hidden_key(desc, layer), everything[begin : begin + size])
                files.append((folder / path, path))
        table = _migrated_index(ds, lt_place, ids, offs, info)
        write_index(folder / PARQUET_PATH, table)
        files.append((folder / PARQUET_PATH, PARQUET_PATH))
        written = {rp for _, rp in files}
        planned = {shard_file(desc, s, layer) for layer in layers for s in range(len(shards))}
        stale = [p for p in remote_files(api, repo_id) if p in planned and p not in written]
        if private is not None:
            api.update_repo_settings(repo_id, private=private, repo_type="dataset")
        commit_files(api, repo_id, files, "Migrate to last-token shards (format 2.0)", deletions=stale)
    url = dataset_url(api, repo_id)
    logger.info("migrated %s: %d last-token shards + %d rest shards per layer", url, len(lt), len(old))
    return url


def _migrated_index(
    ds: OpenDataset, lt_place: list[tuple[int, int]], ids: list[list[int]], offs: list[list[int]], info: dict[str, Any]
) -> Any:
    """Return the old index with its addressing columns replaced (other columns keep their types and order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(ds.files.index())
    new = {
        "shard_index": pa.array([p[0] for p in lt_place], type=pa.int32()),
        "row_offset": pa.array([p[1] for p in lt_place], type=pa.int32()),
        "token_offset": pa.array([p[1] for p in lt_place], type=pa.int64()),
        "token_shard_ids": pa.array(ids, type=pa.list_(pa.int64())),
        "token_shard_offsets": pa.array(offs, type=pa.list_(pa.int64())),
    }
    for name, array in new.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, array)
        else:
            table = table.append_column(name, array)
    return embed_metadata(table, info)


def upgrade_dataset_format(
    repo_id: str,
    *,
    token: str | None = None,
    remove_json: bool = True,
    dry_run: bool = False,
) -> str:
    """Upgrade a format 1.x dataset to 2.0: its ``lmprobe_info.json`` goes into the index's schema metadata.

    No tensor is touched. The metadata gets ``format_version`` 2.0, ``tensors`` (renamed from the oldest datasets'
    ``tensor_types``), and the ``file_pattern``/``key_pattern`` of its hidden-layer and logits shards; the index
    loses the per-type hidden columns of format 1.x (``shard_index_hidden``, ``row_offset_hidden``,
    ``token_offset_hidden``; each becomes the universal column when that one is missing). The new index and the
    removal of the JSON file are one commit.

    Parameters
    ----------
    repo_id : str
        The dataset repository.
    token : str, optional
        Hugging Face token.
    remove_json : bool, default=True
        Delete ``lmprobe_info.json`` in the same commit.
    dry_run : bool, default=False
        Check and build the new index, and return a summary instead of committing.

    Returns
    -------
    str
        The dataset's address (with ``" (already v2)"`` when a dry run finds a 2.0 index), or with ``dry_run`` a
        line starting ``"[DRY RUN] Would upgrade"``.

    Raises
    ------
    InvalidInputError
        If the dataset has neither a 2.0 index nor ``lmprobe_info.json``, or its metadata names no model.
    """
    hub, _ = hub_modules()
    files = Downloader(repo_id, token)
    parquet = files.index()
    api = hub.HfApi(token=token)
    url = dataset_url(api, repo_id)
    if read_metadata(parquet) is not None:
        logger.info("%s already has format 2.0 metadata in its index", repo_id)
        return f"{url} (already v2)" if dry_run else url
    from huggingface_hub.errors import EntryNotFoundError

    try:
        info = json.loads(Path(files.get(INFO_FILENAME)).read_text())
    except EntryNotFoundError as err:
        raise InvalidInputError(
            f"dataset {repo_id!r} has neither format 2.0 metadata in its index nor {INFO_FILENAME}; nothing to upgrade"
        ) from err
    info["format_version"] = FORMAT_VERSION
    if "tensor_types" in info and "tensors" not in info:
        info["tensors"] = info.pop("tensor_types")
    tensors = info.get("tensors") or {}
    if "hidden_layers" in tensors:
        tensors["hidden_layers"].setdefault("file_pattern", HIDDEN_FILE_PATTERN)
        tensors["hidden_layers"].setdefault("key_pattern", HIDDEN_KEY_PATTERN)
    if "logits_topk" in tensors:
        tensors["logits_topk"].setdefault("file_pattern", LOGITS_FILE_PATTERN)
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    for old, new in _V1_HIDDEN_COLUMNS.items():
        if old not in table.column_names:
            continue
        if new in table.column_names:
            table = table.drop([old])
        else:
            table = table.rename_columns([new if c == old else c for c in table.column_names])
    table = embed_metadata(table, info)
    if dry_run:
        return (
            f"[DRY RUN] Would upgrade {repo_id}: model={model_name(info)}, "
            f"{info.get('num_prompts', table.num_rows)} prompts, format {info['format_version']}"
        )
    model_name(info)
    with tempfile.TemporaryDirectory(prefix="fastprobe-upgrade-") as tmp:
        out = Path(tmp) / PARQUET_PATH
        write_index(out, table)
        commit_files(
            api,
            repo_id,
            [(out, PARQUET_PATH)],
            f"Upgrade to format v{FORMAT_VERSION}: metadata in the index's schema",
            deletions=[INFO_FILENAME] if remove_json else [],
        )
    logger.info("upgraded %s to format %s", url, FORMAT_VERSION)
    return url
