"""lmprobe's activation-dataset format 2.0: constants, schema metadata, the parquet index and the shard plan.

Everything here is pure data handling (pyarrow, numpy, safetensors); nothing talks to the Hub.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError, MissingDependencyError

#: The dataset format version fastprobe reads and writes.
FORMAT_VERSION = "2.0"
#: Default largest shard, in bytes (1 GiB).
DEFAULT_SHARD_BYTES = 1_073_741_824
#: The JSON sidecar of format 1.x datasets.
INFO_FILENAME = "lmprobe_info.json"
#: Where the parquet index lives in a dataset repository.
PARQUET_PATH = "index/train-00000-of-00001.parquet"
#: Shard file name and tensor key of hidden-layer shards.
HIDDEN_FILE_PATTERN = "tensors/hidden_layer{layer:03d}_shard{shard:03d}.safetensors"
HIDDEN_KEY_PATTERN = "hidden.layer_{layer}"
LOGITS_FILE_PATTERN = "tensors/logits_topk_{shard:03d}.safetensors"
#: Schema-metadata key prefix.
META_PREFIX = "lmprobe:"
#: Tensor types a push can be asked for (``tensors=``); fastprobe's cache holds hidden layers only.
TENSOR_TYPES = ("hidden_layers", "logits_topk", "perplexity", "router_logits")
#: Index columns a push writes itself; per-prompt metadata may not use these names.
RESERVED_COLUMNS = frozenset(
    {
        "text",
        "label",
        "num_tokens",
        "shard_index",
        "row_offset",
        "token_offset",
        "token_shard_ids",
        "token_shard_offsets",
        "shard_index_logits",
        "row_offset_logits",
    }
)
#: Shard files a push writes (and may delete when a new push to the same repository no longer has them).
SHARD_FILE_RE = re.compile(r"^tensors/(hidden_layer\d+_shard\d+|logits_topk_\d+|router_logits_\d+)\.safetensors$")

HUB_INSTALL = "pip install 'fastprobe[hub]'"


def hub_modules() -> tuple[Any, Any]:
    """Import ``huggingface_hub`` and ``pyarrow.parquet``, or raise :class:`MissingDependencyError`.

    Returns
    -------
    tuple
        The ``huggingface_hub`` and ``pyarrow`` modules.
    """
    try:
        import huggingface_hub
    except ImportError as err:
        raise MissingDependencyError(
            f"activation datasets need the huggingface_hub package (>= 0.25); install it with: {HUB_INSTALL}"
        ) from err
    version = tuple(int(p) for p in re.findall(r"\d+", huggingface_hub.__version__)[:2])
    if version < (0, 25):
        raise MissingDependencyError(
            f"activation datasets need huggingface_hub >= 0.25, found {huggingface_hub.__version__}; upgrade it "
            f"with: {HUB_INSTALL}"
        )
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as err:
        raise MissingDependencyError(
            f"activation datasets need the pyarrow package (the index is a parquet file); install it with: "
            f"{HUB_INSTALL}"
        ) from err
    return huggingface_hub, pyarrow


# ---------------------------------------------------------------------------------------------- schema metadata


def embed_metadata(table: Any, info: dict[str, Any]) -> Any:
    """Return ``table`` with ``info`` in its schema metadata: one JSON value per key, under ``lmprobe:`` keys."""
    meta = dict(table.schema.metadata or {})
    for key, value in info.items():
        meta[f"{META_PREFIX}{key}".encode()] = json.dumps(value).encode()
    return table.replace_schema_metadata(meta)


def read_metadata(parquet: str | Path) -> dict[str, Any] | None:
    """Read the ``lmprobe:`` schema metadata of a parquet index (None when it has none: a format 1.x index)."""
    import pyarrow.parquet as pq

    raw = pq.read_schema(str(parquet)).metadata or {}
    info: dict[str, Any] = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        if not key.startswith(META_PREFIX):
            continue
        text = v.decode() if isinstance(v, bytes) else str(v)
        try:
            info[key[len(META_PREFIX) :]] = json.loads(text)
        except ValueError:
            info[key[len(META_PREFIX) :]] = text
    if not info:
        return None
    if "format_version" in info:
        info["format_version"] = str(info["format_version"])
    return info


def check_version(info: dict[str, Any], *, warn_minor: bool = True) -> None:
    """Refuse a dataset of a newer major format; warn about a newer minor one."""
    import warnings

    version = str(info.get("format_version", "1.0"))
    try:
        major, minor = (int(x) for x in [*version.split("."), "0"][:2])
    except ValueError:
        raise InvalidInputError(f"the dataset's format_version {version!r} is not a version number") from None
    ours = tuple(int(x) for x in FORMAT_VERSION.split("."))
    if major > ours[0]:
        raise InvalidInputError(
            f"Incompatible format version: the dataset has {version}, fastprobe reads {FORMAT_VERSION}; upgrade "
            "fastprobe"
        )
    if warn_minor and major == ours[0] and minor > ours[1]:
        warnings.warn(
            f"the dataset's format {version} is newer than {FORMAT_VERSION}; tensor types fastprobe does not know are "
            "skipped",
            UserWarning,
            stacklevel=3,
        )


def model_name(info: dict[str, Any]) -> str:
    """Return the dataset's model name (``model.name``)."""
    model = info.get("model")
    if isinstance(model, dict) and model.get("name"):
        return str(model["name"])
    raise InvalidInputError("the dataset's metadata has no model name (expected 'model.name')")


# ---------------------------------------------------------------------------------------------- tensor descriptors


def shard_file(desc: dict[str, Any], shard: int, layer: int | None = None) -> str:
    """Return a shard's path in the repository: the descriptor's ``file_pattern``, or its ``file`` (format 1.0)."""
    if desc.get("layout") == "per_layer":
        pattern = str(desc.get("file_pattern") or HIDDEN_FILE_PATTERN)
        return pattern.format(layer=layer, shard=shard)
    shards = desc.get("shards", [])
    if shard < len(shards) and shards[shard].get("file"):
        return str(shards[shard]["file"])
    pattern = str(desc.get("file_pattern") or LOGITS_FILE_PATTERN)
    return pattern.format(layer=layer, shard=shard)


def hidden_key(desc: dict[str, Any], layer: int) -> str:
    """Return the tensor key of a layer inside a hidden-layer shard."""
    return str(desc.get("key_pattern") or HIDDEN_KEY_PATTERN).format(layer=layer)


def hidden_descriptor(
    layers: Sequence[int], dim: int, shards: list[dict[str, int]], *, full_sequence: bool, last_token_shards: int
) -> dict[str, Any]:
    """Build the ``hidden_layers`` tensor descriptor of format 2.0."""
    desc: dict[str, Any] = {
        "type": "hidden",
        "layers": [int(x) for x in layers],
        "dim": int(dim),
        "dtype": "float32",
        "layout": "per_layer",
        "file_pattern": HIDDEN_FILE_PATTERN,
        "key_pattern": HIDDEN_KEY_PATTERN,
        "shards": shards,
    }
    if full_sequence:
        desc["storage"] = "full_sequence"
        if last_token_shards:
            desc["last_token_shards"] = int(last_token_shards)
    else:
        desc["storage"] = "pooled"
        desc["pooling"] = "last_token"
        desc["row_bytes"] = int(dim) * 4
    return desc


# ---------------------------------------------------------------------------------------------- the shard plan


def shuffle_seed(repo_id: str) -> int:
    """Return the seed of the deterministic prompt shuffle: the first 8 bytes of SHA-256(repo_id) mod 2**31."""
    return int.from_bytes(hashlib.sha256(repo_id.encode("utf-8")).digest()[:8], "big") % (2**31)


def shuffled_order(n: int, repo_id: str) -> list[int]:
    """Return the permutation of ``range(n)`` a push to ``repo_id`` uses (Python's ``random.Random(seed).shuffle``)."""
    order = list(range(n))
    random.Random(shuffle_seed(repo_id)).shuffle(order)
    return order


def fixed_shards(n: int, row_bytes: int, max_bytes: int) -> list[int]:
    """Split ``n`` equal rows into shards of ``max(1, max_bytes // row_bytes)`` rows (the last may be shorter)."""
    if row_bytes <= 0:
        return [n] if n else []
    per = max(1, max_bytes // row_bytes)
    return [min(per, n - start) for start in range(0, n, per)]


def greedy_shards(sizes: Sequence[int], max_bytes: int) -> list[int]:
    """Split items of the given byte sizes into consecutive shards, starting a new one before overflowing."""
    counts: list[int] = []
    used = count = 0
    for size in sizes:
        if count and used + size > max_bytes:
            counts.append(count)
            used = count = 0
        used += size
        count += 1
    if count:
        counts.append(count)
    return counts


@dataclass
class ShardPlan:
    """Where each prompt's rows go: per prompt (in index order) its index columns, and the shard descriptors.

    ``columns`` maps an index column to its values; ``shards`` are the descriptor's shard entries; ``last_token``
    is the number of last-token shards (0 for pooled storage); ``rest`` holds, for full-sequence storage, each
    prompt's ``(shard, first row)`` in its rest shard (shard -1 when the prompt has a single token).
    """

    columns: dict[str, list[Any]]
    shards: list[dict[str, int]]
    last_token: int
    boundaries: list[int]
    rest: list[tuple[int, int]] = field(default_factory=list)


def pooled_plan(n: int, dim: int, max_bytes: int) -> ShardPlan:
    """Plan a pooled dataset: one row per prompt, fixed-size shards."""
    bounds = fixed_shards(n, dim * 4, max_bytes)
    shard_index, row_offset = [], []
    for s, size in enumerate(bounds):
        shard_index += [s] * size
        row_offset += list(range(size))
    return ShardPlan(
        {"shard_index": shard_index, "row_offset": row_offset}, [{"num_prompts": b} for b in bounds], 0, bounds
    )


def split_plan(tokens: Sequence[int], dim: int, max_bytes: int) -> ShardPlan:
    """Plan a full-sequence dataset: last-token shards first, then the other tokens packed into rest shards.

    Last-token shards hold ``max(1, max_bytes // (4 dim))`` prompts each; rest shards are filled greedily with each
    prompt's ``num_tokens - 1`` leading tokens (a prompt of one token takes a place with no rows). Prompt ``i``'s
    token ``t`` is at ``(token_shard_ids[i][t], token_shard_offsets[i][t])``; its last token, also addressed by
    ``shard_index``/``row_offset``, is in a last-token shard.
    """
    n = len(tokens)
    lt = fixed_shards(n, dim * 4, max_bytes)
    lead = [max(int(t) - 1, 0) for t in tokens]
    rest = greedy_shards([x * dim * 4 for x in lead], max_bytes) if any(lead) else []
    lt_place = [(s, r) for s, size in enumerate(lt) for r in range(size)]
    rest_place: list[tuple[int, int]] = []
    for s, size in enumerate(rest):
        start = len(rest_place)
        offset = 0
        for i in range(start, start + size):
            rest_place.append((len(lt) + s, offset))
            offset += lead[i]
    ids: list[list[int]] = []
    offs: list[list[int]] = []
    rest_first: list[tuple[int, int]] = []
    for i in range(n):
        lt_s, lt_r = lt_place[i]
        if lead[i] and rest_place:
            rs, ro = rest_place[i]
            ids.append([rs] * lead[i] + [lt_s])
            offs.append([ro + t for t in range(lead[i])] + [lt_r])
            rest_first.append((rs, ro))
        else:
            ids.append([lt_s])
            offs.append([lt_r])
            rest_first.append((-1, 0))
    shards = [{"num_prompts": b, "num_tokens": b} for b in lt]
    start = 0
    for size in rest:
        shards.append({"num_prompts": size, "num_tokens": sum(lead[start : start + size])})
        start += size
    columns: dict[str, list[Any]] = {
        "shard_index": [p[0] for p in lt_place],
        "row_offset": [p[1] for p in lt_place],
        "token_offset": [p[1] for p in lt_place],
        "token_shard_ids": ids,
        "token_shard_offsets": offs,
    }
    return ShardPlan(columns, shards, len(lt), lt + rest, rest_first)


# ---------------------------------------------------------------------------------------------- the parquet index


def plain(value: Any) -> Any:
    """Turn numpy scalars (and arrays) into plain Python values, for JSON and parquet."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _extra_column(values: list[Any]) -> Any:
    """Build the pyarrow array of a metadata column, typed from its first non-null value."""
    import pyarrow as pa

    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return pa.array(values, type=pa.bool_())
    if isinstance(sample, int):
        ints = [v for v in values if v is not None]
        wide = any(not -(2**31) <= v < 2**31 for v in ints)
        return pa.array(values, type=pa.int64() if wide else pa.int32())
    if isinstance(sample, float):
        return pa.array(values, type=pa.float64())
    if isinstance(sample, (list, tuple)):
        first = next((x for v in values if v for x in v), None)
        if isinstance(first, bool):
            return pa.array(values, type=pa.list_(pa.bool_()))
        if isinstance(first, int):
            return pa.array(values, type=pa.list_(pa.int64()))
        if isinstance(first, float):
            return pa.array(values, type=pa.list_(pa.float64()))
        return pa.array([None if v is None else [str(x) for x in v] for v in values], type=pa.list_(pa.string()))
    if sample is None or isinstance(sample, str):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def label_column(labels: Sequence[Any]) -> Any:
    """Build the ``label`` column: int32 when every label is an integer (or missing), else strings."""
    import pyarrow as pa

    values = [plain(v) for v in labels]
    values = [int(v) if isinstance(v, bool) else v for v in values]
    if all(v is None or isinstance(v, int) for v in values):
        return pa.array(values, type=pa.int32())
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def build_index(columns: dict[str, list[Any]], extra: dict[str, list[Any]], info: dict[str, Any] | None) -> Any:
    """Build the index table: the fixed columns with their format types, then the extra columns sorted by name."""
    import pyarrow as pa

    types = {
        "text": pa.string(),
        "num_tokens": pa.int32(),
        "shard_index": pa.int32(),
        "row_offset": pa.int32(),
        "token_offset": pa.int64(),
        "shard_index_logits": pa.int32(),
        "row_offset_logits": pa.int32(),
        "token_shard_ids": pa.list_(pa.int64()),
        "token_shard_offsets": pa.list_(pa.int64()),
    }
    arrays: dict[str, Any] = {}
    for name in ("text", "label", "num_tokens", "shard_index", "row_offset", "token_offset"):
        if name not in columns:
            continue
        arrays[name] = label_column(columns[name]) if name == "label" else pa.array(columns[name], type=types[name])
    for name in ("shard_index_logits", "row_offset_logits"):
        if name in columns:
            arrays[name] = pa.array(columns[name], type=types[name])
    rest = {**{k: v for k, v in columns.items() if k not in arrays}, **extra}
    for name in sorted(rest):
        values = [plain(v) for v in rest[name]]
        arrays[name] = pa.array(values, type=types[name]) if name in types else _extra_column(values)
    table = pa.table(arrays)
    return embed_metadata(table, info) if info is not None else table


def write_index(path: Path, table: Any) -> None:
    """Write an index table to ``path`` (creating its folder)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))


def read_index(parquet: str | Path) -> dict[str, list[Any]]:
    """Read a parquet index into ``{column: values}``."""
    import pyarrow.parquet as pq

    return dict(pq.read_table(str(parquet)).to_pydict())


# ---------------------------------------------------------------------------------------------- shards


def read_rows(path: str | Path, key: str, rows: np.ndarray) -> np.ndarray:
    """Read some rows of a 2-D tensor in a safetensors file as float32 (only the span they cover is loaded)."""
    from safetensors import safe_open

    rows = np.asarray(rows, dtype=np.int64)
    with safe_open(str(path), framework="pt") as f:
        if key not in f.keys():
            raise InvalidInputError(f"shard {Path(path).name} has no tensor {key!r}; it holds {sorted(f.keys())}")
        if rows.size == 0:
            shape = f.get_slice(key).get_shape()
            return np.zeros((0, int(shape[-1])), dtype=np.float32)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        block = f.get_slice(key)[lo:hi]
    out: np.ndarray = block.float().numpy()[rows - lo]
    return np.ascontiguousarray(out, dtype=np.float32)


def save_shard(path: Path, key: str, rows: np.ndarray) -> None:
    """Write one float32 2-D tensor as a safetensors shard."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: np.ascontiguousarray(rows, dtype=np.float32)}, str(path))


def file_sha256(path: Path) -> str:
    """Return the SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """Return git's blob id of a file (what the Hub reports for a file not stored through LFS)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
