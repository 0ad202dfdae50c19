"""Activation datasets on the Hugging Face Hub, in lmprobe's dataset format 2.0 (lmprobe's ``lmprobe.sharing``).

A dataset is a Hub dataset repository holding a parquet index (one row per prompt: text, label, token count and
where its vectors are) whose schema metadata describes everything (model, layers, shard layout), and safetensors
shards of float32 activations, one set of shards per layer. See ``docs/activation-datasets.md``.

- :func:`push_dataset` writes the prompts' activations from fastprobe's activation cache into a repository;
- :func:`pull_dataset` downloads a dataset and puts its activations into fastprobe's cache, so a
  :class:`~fastprobe.Probe` on the dataset's model trains on those prompts without running the model;
- :func:`load_activations` returns arrays (one vector per prompt and layer), :func:`load_activation_dataset` the raw
  shard tensors, :func:`fetch_dataset_metadata` a :class:`DatasetMetadata` from the index alone;
- :func:`migrate_dataset` and :func:`upgrade_dataset_format` bring datasets of older layouts up to 2.0.

Datasets pushed by lmprobe load in fastprobe and the reverse. These functions need ``huggingface_hub`` and
``pyarrow`` (``pip install 'fastprobe[hub]'``).

Differences from lmprobe (each deliberate):

- :func:`load_activations` reads the dataset's vectors (lmprobe prefers a local cache entry of the same prompt),
  computes ``pooling="mean"`` and the others from the tokens of a full-sequence dataset, and refuses them on a
  pooled dataset (lmprobe returns the last-token vector whatever the pooling).
- Layers not in the dataset raise in :func:`pull_dataset` and :func:`load_activation_dataset` too (lmprobe ignores
  them there).
- :func:`push_dataset` checks every prompt against the cache (lmprobe spot-checks a few, so ``skip_missing=False``
  misses some), refuses metadata keys that would overwrite index columns, and uploads with ``create_commit`` in
  batches, the index last, resuming from what the repository already has (lmprobe's non-streaming mode calls
  ``HfApi.upload_large_folder``, which the installed huggingface_hub (2.4) no longer has).
- :func:`upgrade_dataset_format` of a dataset that is already 2.0 returns without needing ``lmprobe_info.json``;
  :func:`migrate_dataset` commits the new shards and index in one commit and leaves the dataset card as it is.
- Prompts missing from the cache (push) or from the dataset (load) raise
  :class:`~fastprobe.exceptions.MissingActivationsError` (lmprobe: ``FileNotFoundError``), with lmprobe's phrases.
- The address returned is on the endpoint in use (lmprobe always answers ``https://huggingface.co/...``).
"""

from __future__ import annotations

from fastprobe.sharing._format import (
    DEFAULT_SHARD_BYTES,
    FORMAT_VERSION,
    INFO_FILENAME,
    PARQUET_PATH,
    embed_metadata,
    read_index,
)
from fastprobe.sharing._maintain import migrate_dataset, upgrade_dataset_format
from fastprobe.sharing._push import push_dataset
from fastprobe.sharing._read import (
    DatasetMetadata,
    fetch_dataset_metadata,
    load_activation_dataset,
    load_activations,
    pull_dataset,
)

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "FORMAT_VERSION",
    "INFO_FILENAME",
    "PARQUET_PATH",
    "DatasetMetadata",
    "embed_metadata",
    "fetch_dataset_metadata",
    "load_activation_dataset",
    "load_activations",
    "migrate_dataset",
    "pull_dataset",
    "push_dataset",
    "read_index",
    "upgrade_dataset_format",
]
