"""Talking to the Hub: downloads pinned to one commit, the files of a repository, and commits of local files."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastprobe.sharing._format import PARQUET_PATH, file_sha256, git_blob_sha1, hub_modules

logger = logging.getLogger("fastprobe.sharing")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def dataset_url(api: Any, repo_id: str) -> str:
    """Return the dataset's web address on the endpoint ``api`` talks to (``https://huggingface.co/datasets/...``)."""
    return f"{str(api.endpoint).rstrip('/')}/datasets/{repo_id}"


class Downloader:
    """Download files of one dataset into the Hugging Face cache, all from the commit its index came from."""

    def __init__(self, repo_id: str, token: str | None) -> None:
        self.repo_id = repo_id
        self.token = token
        self.revision: str | None = None
        self._paths: dict[str, str] = {}

    def get(self, filename: str) -> str:
        """Return the local path of ``filename`` (downloading it once)."""
        hub, _ = hub_modules()
        if filename not in self._paths:
            path = hub.hf_hub_download(
                self.repo_id, filename, repo_type="dataset", token=self.token, revision=self.revision
            )
            if self.revision is None:  # pin every later file to the commit of the first one (the index)
                snapshot = Path(path).parents[len(Path(filename).parts) - 1]
                if _COMMIT_RE.match(snapshot.name):
                    self.revision = snapshot.name
            self._paths[filename] = path
        return self._paths[filename]

    def index(self) -> str:
        """Download the parquet index."""
        return self.get(PARQUET_PATH)


@dataclass(frozen=True)
class RemoteFile:
    """A file of a repository: its size and content digests as the Hub reports them."""

    size: int | None
    sha256: str | None  # LFS files
    blob_id: str | None  # git's object id (of the content for a regular file)

    def same_as(self, local: Path, sha256: str | None = None) -> bool:
        """Whether ``local`` has this content."""
        if self.size is not None and self.size != local.stat().st_size:
            return False
        if self.sha256 is not None:
            return (sha256 or file_sha256(local)) == self.sha256
        return self.blob_id is not None and git_blob_sha1(local) == self.blob_id


def remote_files(api: Any, repo_id: str) -> dict[str, RemoteFile]:
    """Every file of the dataset repository's main branch (empty when the repository has none)."""
    out: dict[str, RemoteFile] = {}
    for entry in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True):
        if not hasattr(entry, "blob_id"):
            continue  # a folder
        lfs = getattr(entry, "lfs", None)
        out[entry.path] = RemoteFile(entry.size, lfs.sha256 if lfs is not None else None, entry.blob_id)
    return out


def commit_files(
    api: Any,
    repo_id: str,
    files: Sequence[tuple[Path, str]],
    message: str,
    *,
    deletions: Sequence[str] = (),
    num_threads: int = 5,
) -> None:
    """Commit local files (``(local path, path in repo)``) and deletions to the dataset's main branch, as one commit."""
    hub, _ = hub_modules()
    ops: list[Any] = [hub.CommitOperationAdd(path_in_repo=rp, path_or_fileobj=str(lp)) for lp, rp in files]
    ops += [hub.CommitOperationDelete(path_in_repo=rp) for rp in deletions]
    if not ops:
        return
    logger.info("committing %d file(s) and %d deletion(s) to %s", len(files), len(deletions), repo_id)
    api.create_commit(
        repo_id=repo_id, operations=ops, commit_message=message, repo_type="dataset", num_threads=num_threads
    )
