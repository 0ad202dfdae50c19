"""Tiny models in a Hugging Face hub cache under Hub ids, as a download would have left them, used offline."""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator

from fastprobe.testing.architectures import MAX_POSITIONS
from fastprobe.testing.models import build_tiny_model

__all__ = ["hub_model", "offline_hub", "place_in_hub_cache"]


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
