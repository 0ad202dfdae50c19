"""push_dataset: fastprobe's cached activations to a Hub dataset repository, in lmprobe's format 2.0."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fastprobe._validation import check_prompts
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, MissingActivationsError, UnknownOptionError
from fastprobe.sharing._format import (
    DEFAULT_SHARD_BYTES,
    FORMAT_VERSION,
    PARQUET_PATH,
    RESERVED_COLUMNS,
    SHARD_FILE_RE,
    TENSOR_TYPES,
    ShardPlan,
    build_index,
    file_sha256,
    hidden_descriptor,
    hidden_key,
    hub_modules,
    plain,
    pooled_plan,
    save_shard,
    shard_file,
    shuffled_order,
    split_plan,
    write_index,
)
from fastprobe.sharing._hub import RemoteFile, commit_files, dataset_url, remote_files
from fastprobe.sharing._stores import FINGERPRINT_KEY, source_store
from fastprobe.store import ActivationStore

logger = logging.getLogger("fastprobe.sharing")
_PRELOAD = ("none", "per_layer", "full")
_STATE = "_push_state.json"
_SENTINEL = "_stage_complete"
#: Shard files per commit when ``commit_batch_size`` is not given (non-streaming pushes).
DEFAULT_COMMIT_FILES = 50


def push_dataset(
    repo_id: str,
    model_name: str,
    prompts: list[str],
    *,
    labels: list[int | str | None] | None = None,
    metadata: list[dict[str, Any]] | None = None,
    tensors: list[str] | None = None,
    shard_max_bytes: int = DEFAULT_SHARD_BYTES,
    private: bool = False,
    exist_ok: bool = False,
    skip_missing: bool = True,
    description: str | None = None,
    license: str = "cc-by-4.0",
    token: str | None = None,
    num_workers: int | None = None,
    commit_batch_size: int | None = None,
    stream: bool = False,
    stream_batch_size: int = 10,
    preload: str = "none",
    preload_workers: int = 8,
    shuffle: bool = True,
) -> str:
    """Push cached activations to a Hugging Face dataset repository (lmprobe's dataset format 2.0).

    The prompts' activations are read from fastprobe's activation cache: the store a probe on ``model_name`` uses
    (or, when the model's files are not here, the cached store naming the model that holds the most of the prompts).
    Prompts cached with their tokens at every layer are pushed as a full-sequence dataset (last-token shards, then
    the other tokens); otherwise each prompt's last-token vector is pushed (a pooled dataset). Shards are float32.

    Parameters
    ----------
    repo_id : str
        The dataset repository, ``"user/name"``.
    model_name : str
        The model whose activations are cached (a Hub id or a local directory, as given to the probe).
    prompts : list of str
        The prompts to push.
    labels : list of int, str or None, optional
        One label per prompt, stored in the index's ``label`` column.
    metadata : list of dict, optional
        One dict per prompt, all with the same keys; each key becomes an index column.
    tensors : list of str, optional
        Tensor types to push (``"hidden_layers"``; ``"logits_topk"``, ``"perplexity"`` and ``"router_logits"`` are
        lmprobe's and never in fastprobe's cache). None pushes everything available.
    shard_max_bytes : int, default=1 GiB
        Largest shard file.
    private : bool, default=False
        Create the repository private.
    exist_ok : bool, default=False
        Push into an existing repository (its index, card and shard files are replaced; a rerun of an interrupted
        push with the same arguments is always allowed).
    skip_missing : bool, default=True
        Leave out prompts that are not cached (a warning counts them); False raises instead.
    description : str, optional
        A paragraph for the dataset card.
    license : str, default="cc-by-4.0"
        The card's license.
    token : str, optional
        Hugging Face token.
    num_workers : int, optional
        Parallel uploads per commit (default 5).
    commit_batch_size : int, optional
        Shard files per commit (default 50); a smaller value commits progress more often.
    stream : bool, default=False
        Write and upload ``stream_batch_size`` shards at a time, deleting each batch once committed, so the disk
        holds one batch instead of the whole dataset.
    stream_batch_size : int, default=10
        Shards per commit in streaming mode.
    preload : {"none", "per_layer", "full"}, default="none"
        Accepted for lmprobe compatibility: fastprobe reads each shard's rows from its store in one batched call.
    preload_workers : int, default=8
        Threads used to read the store.
    shuffle : bool, default=True
        Shuffle the prompts deterministically (seeded by ``repo_id``, as lmprobe does); False keeps their order.

    Returns
    -------
    str
        The dataset's address (``https://huggingface.co/datasets/<repo_id>`` on the public Hub).

    Raises
    ------
    InvalidInputError
        For bad arguments: no prompts, labels or metadata not one per prompt, metadata keys that differ between
        prompts or shadow an index column, a non-positive size, no tensor type left to push.
    MissingActivationsError
        If no prompt is cached ("No prompts have cached data"), or (``skip_missing=False``) some prompt is not ("No
        cached data for prompt index ..."). lmprobe raises ``FileNotFoundError`` for the latter.
    MissingDependencyError
        Without ``huggingface_hub`` or ``pyarrow`` (``pip install 'fastprobe[hub]'``).

    Notes
    -----
    An interrupted push loses nothing it committed: shards are committed in batches and the index last, and a
    rerun with the same arguments skips every file the repository already has with the same content. Files are
    staged under the cache directory (``_staging/``) and removed once the push completes.
    """
    hub, _ = hub_modules()
    prompts, labels, metadata = _check_args(
        repo_id, model_name, prompts, labels, metadata, tensors, shard_max_bytes, commit_batch_size,
        stream_batch_size, preload, preload_workers, num_workers,
    )  # fmt: skip
    if tensors is not None and "hidden_layers" not in tensors:
        raise InvalidInputError(
            f"No tensor types available to push after filtering: tensors={tensors!r}, and fastprobe's cache holds "
            "hidden layers only ('hidden_layers')"
        )
    store, cached = source_store(model_name, prompts)
    kept = _kept(prompts, cached, skip_missing, model_name)
    assert store is not None
    layers = sorted(set.intersection(*(cached[prompts[i]][0] for i in kept)))
    if not layers:
        raise InvalidInputError(
            "No tensor types available to push after filtering: the cached prompts share no layer (each prompt's "
            "cached layers differ); cache the same layers for every prompt"
        )
    kept_prompts = [prompts[i] for i in kept]
    full = bool(np.all(store.contains(kept_prompts, layers, tokens=True)))
    order = shuffled_order(len(kept), repo_id) if shuffle else list(range(len(kept)))
    rows = [kept[j] for j in order]
    texts = [prompts[i] for i in rows]
    counts = [int(cached[p][1]) for p in texts]
    dim = int(store.read_pooled(texts[:1], layers[:1], "last_token").shape[1])
    plan = split_plan(counts, dim, shard_max_bytes) if full else pooled_plan(len(texts), dim, shard_max_bytes)
    desc = hidden_descriptor(layers, dim, plan.shards, full_sequence=full, last_token_shards=plan.last_token)
    info = _info(model_name, store, len(texts), {"hidden_layers": desc})
    columns: dict[str, list[Any]] = {
        "text": texts,
        "label": [labels[i] if labels is not None else None for i in rows],
        "num_tokens": counts,
        **plan.columns,
    }
    extra = {k: [metadata[i][k] for i in rows] for k in metadata[0]} if metadata else {}
    job = _Job(
        store=store,
        texts=texts,
        layers=layers,
        plan=plan,
        desc=desc,
        full=full,
        threads=preload_workers,
        readme=_card(repo_id, model_name, info, description, license),
        index=build_index(columns, extra, info),
    )
    key = _staging_key(
        repo_id, model_name, store, prompts, shard_max_bytes, labels, metadata, tensors, stream,
        stream_batch_size, shuffle,
    )  # fmt: skip
    from fastprobe.store import cache_dir

    staging = cache_dir() / "_staging" / key
    state_path = staging / _STATE
    resuming = state_path.is_file()
    state: dict[str, Any] = json.loads(state_path.read_text()) if resuming else {"sha256": {}, "committed": {}}
    staging.mkdir(parents=True, exist_ok=True)
    api = hub.HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=exist_ok or resuming)
    _save_state(staging, state)  # from here on, a rerun of this call resumes (into the repository it created)
    remote = remote_files(api, repo_id)
    threads = num_workers or 5
    if stream:
        _upload_streaming(api, repo_id, job, staging, state, remote, stream_batch_size, threads)
    else:
        _upload_staged(api, repo_id, job, staging, state, remote, commit_batch_size or DEFAULT_COMMIT_FILES, threads)
    shutil.rmtree(staging, ignore_errors=True)
    url = dataset_url(api, repo_id)
    logger.info("pushed %d prompts (%d layers) to %s", len(texts), len(layers), url)
    return url


# ---------------------------------------------------------------------------------------------- arguments


def _check_args(
    repo_id: Any,
    model_name: Any,
    prompts: Any,
    labels: Any,
    metadata: Any,
    tensors: Any,
    shard_max_bytes: Any,
    commit_batch_size: Any,
    stream_batch_size: Any,
    preload: Any,
    preload_workers: Any,
    num_workers: Any,
) -> tuple[list[str], list[Any] | None, list[dict[str, Any]] | None]:
    if not isinstance(repo_id, str):
        raise ArgumentTypeError(f"repo_id must be a repository id such as 'user/name'; got {type(repo_id).__name__}")
    if not repo_id.strip("/"):
        raise InvalidInputError(f"repo_id must be a repository id such as 'user/name'; got {repo_id!r}")
    if not isinstance(model_name, str) or not model_name:
        raise ArgumentTypeError(f"model_name must name the model whose activations are cached; got {model_name!r}")
    prompts = check_prompts(prompts)
    if not prompts:
        raise InvalidInputError("No prompts provided: prompts is empty")  # lmprobe's phrase
    if labels is not None:
        labels = [plain(v) for v in labels]
        if len(labels) != len(prompts):
            raise InvalidInputError(f"labels length ({len(labels)}) != prompts length ({len(prompts)})")
    if metadata is not None:
        metadata = [dict(m) for m in metadata]
        if len(metadata) != len(prompts):
            raise InvalidInputError(f"metadata length ({len(metadata)}) != prompts length ({len(prompts)})")
        keys = set(metadata[0]) if metadata else set()
        for i, m in enumerate(metadata):
            if set(m) != keys:
                raise InvalidInputError(f"metadata[{i}] has keys {sorted(m)}, expected {sorted(keys)}")
        clash = sorted(keys & RESERVED_COLUMNS)
        if clash:
            raise InvalidInputError(f"metadata keys {clash} are index columns the push writes itself; rename them")
    if tensors is not None:
        if isinstance(tensors, str):
            raise ArgumentTypeError(f"tensors must be a list of tensor types, not the string {tensors!r}")
        unknown = [t for t in tensors if t not in TENSOR_TYPES]
        if unknown:
            warnings.warn(
                f"Unknown tensor filter key(s) {unknown} ignored; the tensor types are {list(TENSOR_TYPES)}",
                UserWarning,
                stacklevel=3,
            )
    for name, value, low in (
        ("shard_max_bytes", shard_max_bytes, 1),
        ("stream_batch_size", stream_batch_size, 1),
        ("preload_workers", preload_workers, 1),
        ("commit_batch_size", commit_batch_size, 1),
        ("num_workers", num_workers, 1),
    ):
        if value is None and name in ("commit_batch_size", "num_workers"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InvalidInputError(f"{name} must be a positive integer; got {value!r}")
    if preload not in _PRELOAD:
        raise UnknownOptionError(f"preload must be one of {_PRELOAD!r}, got {preload!r}")
    return prompts, labels, metadata


def _kept(prompts: list[str], cached: dict[str, Any], skip_missing: bool, model_name: str) -> list[int]:
    missing = [i for i, p in enumerate(prompts) if p not in cached]
    if not cached:
        raise MissingActivationsError(
            f"No prompts have cached data for model {model_name!r}: none of the {len(prompts)} prompts is in "
            "fastprobe's activation cache. Extract activations first (fit a probe or run a warmup on them)"
        )
    if missing and not skip_missing:
        i = missing[0]
        raise MissingActivationsError(
            f"No cached data for prompt index {i}: {prompts[i]!r} ({len(missing)} of {len(prompts)} prompts are not "
            f"cached for model {model_name!r}; pass skip_missing=True to push the others)"
        )
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(prompts)} prompts are not cached for model {model_name!r} and are left out",
            UserWarning,
            stacklevel=3,
        )
    return [i for i, p in enumerate(prompts) if p in cached]


def _staging_key(
    repo_id: str,
    model_name: str,
    store: ActivationStore,
    prompts: list[str],
    shard_max_bytes: int,
    labels: Any,
    metadata: Any,
    tensors: Any,
    stream: bool,
    stream_batch_size: int,
    shuffle: bool,
) -> str:
    """Name the staging folder after everything that shapes the staged files (so a rerun finds its own)."""
    stats = store.stats()
    parts = [
        repo_id,
        model_name,
        store.path.name,
        [stats.get("records"), stats.get("live_bytes")],
        prompts,
        int(shard_max_bytes),
        labels,
        metadata,
        sorted(tensors) if tensors is not None else None,
        [bool(stream), int(stream_batch_size) if stream else None, bool(shuffle)],
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


# ---------------------------------------------------------------------------------------------- metadata


def _info(model_name: str, store: ActivationStore, n: int, tensors: dict[str, Any]) -> dict[str, Any]:
    import torch
    import transformers

    import fastprobe

    try:
        import nnsight

        nnsight_version: str | None = str(nnsight.__version__)
    except Exception:
        nnsight_version = None
    fingerprint = store.fingerprint
    return {
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "revision": fingerprint.get("revision")},
        "num_prompts": n,
        "prompt_ordering": "random",
        "tensors": tensors,
        "provenance": {
            "lmprobe_version": None,
            "fastprobe_version": fastprobe.__version__,
            "extraction_backend": "local",
            "nnsight_version": nnsight_version,
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
            "python_version": platform.python_version(),
            "created_at": datetime.now(timezone.utc).isoformat(),
            "cache_dtype": store.dtype,
            FINGERPRINT_KEY: fingerprint,
        },
    }


def _card(repo_id: str, model_name: str, info: dict[str, Any], description: str | None, license: str) -> str:
    hidden = info["tensors"]["hidden_layers"]
    layers = hidden["layers"]
    span = f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])
    revision = info["model"].get("revision") or "unknown"
    storage = hidden["storage"]
    about = (
        "one last-token vector per prompt and layer"
        if storage == "pooled"
        else "every token of every prompt (last-token shards first, then the other tokens)"
    )
    slug = model_name.replace("/", "-").lower()
    lines = [
        "---",
        "tags:",
        "- lmprobe",
        "- fastprobe",
        "- activations",
        "- interpretability",
        f"- {slug}" if "/" in model_name else "- language-model",
        "task_categories:",
        "- feature-extraction",
        f"license: {license}",
        "---",
        "",
        f"# Activations of {model_name}",
        "",
        f"Residual-stream activations of `{model_name}` (revision `{revision}`): {about}, written by fastprobe in "
        f"lmprobe's activation-dataset format {info['format_version']}.",
        "",
    ]
    if description:
        lines += [description, ""]
    lines += [
        f"- prompts: {info['num_prompts']}",
        f"- layers: {span} ({len(layers)}), hidden size {hidden['dim']}, float32",
        f"- storage: {storage}, {len(hidden['shards'])} shard(s) per layer",
        "",
        "## Loading",
        "",
        "```python",
        "from fastprobe.sharing import load_activations  # or: from lmprobe import load_activations",
        "",
        f'acts, labels = load_activations("{repo_id}", layers=[{layers[0]}], return_labels=True)',
        "```",
        "",
        "`pull_dataset` puts the activations into fastprobe's activation cache, so a probe on the same model trains",
        "on these prompts without running the model.",
        "",
        "## Layout",
        "",
        f"`{PARQUET_PATH}` has one row per prompt (`text`, `label`, `num_tokens`, `shard_index`, `row_offset`, ...);",
        "its schema metadata (`lmprobe:` keys, JSON values) describes the tensors. Prompt `i`'s last-token vector at",
        "layer `L` is row `row_offset[i]` of tensor `hidden.layer_L` in",
        f"`{hidden['file_pattern']}` with `shard = shard_index[i]`.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- writing shards


class _Job:
    """What to write: the store, the ordered prompts, their plan, the index and the card."""

    def __init__(
        self,
        *,
        store: ActivationStore,
        texts: list[str],
        layers: list[int],
        plan: ShardPlan,
        desc: dict[str, Any],
        full: bool,
        threads: int,
        readme: str,
        index: Any,
    ) -> None:
        self.store = store
        self.texts = texts
        self.layers = layers
        self.plan = plan
        self.desc = desc
        self.full = full
        self.threads = threads
        self.readme = readme
        self.index = index

    def shard_files(self) -> list[tuple[str, int, int]]:
        """Every shard file in upload order: ``(path in repo, layer, shard)``, layer by layer."""
        out = []
        for layer in self.layers:
            for shard, size in enumerate(self.plan.boundaries):
                if self.full and shard >= self.plan.last_token and self.plan.shards[shard]["num_tokens"] == 0:
                    continue
                if size:
                    out.append((shard_file(self.desc, shard, layer), layer, shard))
        return out

    def write_shard(self, folder: Path, path: str, layer: int, shard: int) -> Path:
        """Read one shard's rows from the store and write its file under ``folder``."""
        bounds = self.plan.boundaries
        lt = self.plan.last_token if self.full else len(bounds)
        if shard < lt:
            start = sum(bounds[:shard])
            prompts = self.texts[start : start + bounds[shard]]
            rows = self.store.read_pooled(prompts, [layer], "last_token", n_threads=self.threads)
        else:
            start = sum(bounds[lt:shard])
            prompts = self.texts[start : start + bounds[shard]]
            values, offsets = self.store.read_tokens(prompts, [layer], n_threads=self.threads)
            keep = np.ones(len(values), dtype=bool)
            keep[offsets[1:] - 1] = False  # each prompt's last token lives in a last-token shard
            rows = values[keep]
        target = folder / path
        save_shard(target, hidden_key(self.desc, layer), rows)
        return target

    def write_meta(self, folder: Path) -> list[tuple[Path, str]]:
        """Write the index and the card."""
        write_index(folder / PARQUET_PATH, self.index)
        (folder / "README.md").write_text(self.readme)
        return [(folder / PARQUET_PATH, PARQUET_PATH), (folder / "README.md", "README.md")]


def _stale(remote: dict[str, RemoteFile], planned: set[str]) -> list[str]:
    """Shard files in the repository that the new index no longer names."""
    return sorted(p for p in remote if SHARD_FILE_RE.match(p) and p not in planned)


def _save_state(staging: Path, state: dict[str, Any]) -> None:
    tmp = staging / (_STATE + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(staging / _STATE)


def _upload_staged(
    api: Any,
    repo_id: str,
    job: _Job,
    staging: Path,
    state: dict[str, Any],
    remote: dict[str, RemoteFile],
    batch: int,
    threads: int,
) -> None:
    """Stage every file first (once: a rerun reuses a complete staging), then commit what the repository lacks."""
    files = job.shard_files()
    if not (staging / _SENTINEL).exists():
        for path, layer, shard in files:
            state["sha256"][path] = file_sha256(job.write_shard(staging, path, layer, shard))
        job.write_meta(staging)
        _save_state(staging, state)
        (staging / _SENTINEL).touch()
    todo = [
        (staging / path, path)
        for path, _, _ in files
        if path not in remote or not remote[path].same_as(staging / path, state["sha256"].get(path))
    ]
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        commit_files(api, repo_id, chunk, f"Add {len(chunk)} activation shard(s)", num_threads=threads)
        state["committed"].update({rp: state["sha256"][rp] for _, rp in chunk})
        _save_state(staging, state)
    meta = [(staging / PARQUET_PATH, PARQUET_PATH), (staging / "README.md", "README.md")]
    stale = _stale(remote, {p for p, _, _ in files})
    commit_files(api, repo_id, meta, "Add the dataset index and card", deletions=stale, num_threads=threads)


def _upload_streaming(
    api: Any,
    repo_id: str,
    job: _Job,
    staging: Path,
    state: dict[str, Any],
    remote: dict[str, RemoteFile],
    batch: int,
    threads: int,
) -> None:
    """Write, commit and delete ``batch`` shards at a time; skip those the repository already has."""
    pending: list[tuple[Path, str]] = []

    def flush() -> None:
        if not pending:
            return
        commit_files(api, repo_id, pending, f"Add {len(pending)} activation shard(s)", num_threads=threads)
        for local, rp in pending:
            state["committed"][rp] = state["sha256"][rp]
            local.unlink(missing_ok=True)
        _save_state(staging, state)
        pending.clear()

    files = job.shard_files()
    for path, layer, shard in files:
        done = state["committed"].get(path)
        if done is not None and path in remote and remote[path].sha256 == done:
            continue  # committed by an earlier run and still there
        local = job.write_shard(staging, path, layer, shard)
        state["sha256"][path] = file_sha256(local)
        if path in remote and remote[path].same_as(local, state["sha256"][path]):
            state["committed"][path] = state["sha256"][path]
            local.unlink()
            continue
        pending.append((local, path))
        if len(pending) >= batch:
            flush()
    flush()
    meta = job.write_meta(staging)
    stale = _stale(remote, {p for p, _, _ in files})
    commit_files(api, repo_id, meta, "Add the dataset index and card", deletions=stale, num_threads=threads)
