"""What a stand-in Hub holds: repositories, their commits and files, content by SHA-256, and counters for tests.

A :class:`HubState` outlives the server answering for it (see :mod:`fastprobe.testing.hub_server`): stopping a
server and starting another on the same state is a Hub that went away and came back with everything it had
committed.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

__all__ = ["LFS_SUFFIXES", "LFS_THRESHOLD", "Commit", "HubState", "Repo", "StoredFile", "git_blob_sha1"]

#: Paths committed through Git LFS (as the Hub's default ``.gitattributes`` does); other files are regular files.
LFS_SUFFIXES: tuple[str, ...] = (".safetensors", ".parquet", ".bin", ".pt", ".pth", ".npy", ".npz", ".h5", ".arrow")
#: Regular files larger than this are committed through LFS too (the Hub's limit is 10 MB).
LFS_THRESHOLD = 10 * 1024 * 1024


def git_blob_sha1(content: bytes) -> str:
    """Return git's object id of a blob with this content (what the Hub reports for a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """One file of a commit: its content's digest and where its bytes are."""

    size: int
    sha256: str
    lfs: bool

    @property
    def pointer(self) -> bytes:
        """The Git LFS pointer file committed in place of an LFS file's content."""
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n").encode()

    def oid(self, content: bytes) -> str:
        """Return the git object id: of the pointer for an LFS file, of the content for a regular file."""
        return git_blob_sha1(self.pointer if self.lfs else content)


@dataclass
class Commit:
    """A commit: its id, message, parent and the whole tree (path -> file)."""

    oid: str
    title: str
    parent: str | None
    files: dict[str, StoredFile]
    date: str


@dataclass
class Repo:
    """A repository: its commits and branches."""

    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    created: str = ""


class HubState:
    """Everything a stand-in Hub holds: repositories, content by SHA-256, and counters for tests to inspect.

    Attributes
    ----------
    repos : dict
        ``(repo_type, repo_id) -> Repo``.
    blobs : dict
        SHA-256 hex digest -> content (LFS objects and regular files alike).
    requests : list of (str, str)
        Every request served, as ``(method, path)``.
    lfs_uploads : list of str
        The SHA-256 of every LFS object uploaded (a re-upload of a known object is counted again).
    commits_made : int
        Commits applied since the state was created.
    fail_after_commits : int or None
        When set, the server answering the commit request that would be number ``fail_after_commits + 1`` (counted
        from when this was set) drops the connection without applying it and from then on drops every connection:
        the Hub went away in the middle of a push.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.lfs_uploads: list[str] = []
        self.commits_made = 0
        self.fail_after_commits: int | None = None
        self._commits_since_armed = 0

    def fail_after(self, n: int | None) -> None:
        """Arm (or, with None, disarm) the failure: allow ``n`` more commits, then go away."""
        with self.lock:
            self.fail_after_commits = n
            self._commits_since_armed = 0

    def armed_failure_due(self) -> bool:
        """Return whether the armed failure (see :meth:`fail_after`) is due: the next commit must not be applied."""
        with self.lock:
            return self.fail_after_commits is not None and self._commits_since_armed >= self.fail_after_commits

    def count_commit(self) -> None:
        """Count one applied commit (in :attr:`commits_made` and towards the armed failure)."""
        with self.lock:
            self.commits_made += 1
            self._commits_since_armed += 1

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        """Return the repository, or None."""
        return self.repos.get((repo_type, repo_id))

    def head(self, repo_type: str, repo_id: str, revision: str = "main") -> Commit | None:
        """Return the commit a branch or commit id names (None if there is none)."""
        repo = self.repo(repo_type, repo_id)
        if repo is None:
            return None
        oid = repo.branches.get(revision, revision)
        return repo.commits.get(oid)

    def files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Return every file's content at a revision (for tests)."""
        commit = self.head(repo_type, repo_id, revision)
        if commit is None:
            return {}
        return {path: self.blobs[f.sha256] for path, f in commit.files.items()}
