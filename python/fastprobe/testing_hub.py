"""A stand-in for the Hugging Face Hub on 127.0.0.1, for offline tests of code that pushes and pulls repositories.

:class:`HubStandIn` answers the HTTP calls ``huggingface_hub`` makes to create a repository, commit files (regular
files inline, large files through the plain Git LFS "basic" transfer, never Xet), describe a repository and its
files, and resolve (download) a file at a branch or commit, with the headers the client checks (``X-Repo-Commit``,
``ETag``, ``Content-Length``, ``X-Error-Code``). Repositories live in a :class:`HubState`, which outlives a server:
stopping a server and starting another on the same state is a Hub that went away and came back with everything it
had committed.

:func:`use_hub` points ``huggingface_hub`` (its endpoint constants, the module-level ``HfApi`` behind functions such
as ``model_info``, and the ``HF_ENDPOINT`` environment variable) at a stand-in, turns Xet off, and restores
everything afterwards. This module is a test helper, not part of fastprobe's API.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "HubStandIn", "HubState", "use_hub"]

#: Paths committed through Git LFS (as the Hub's default ``.gitattributes`` does); other files are regular files.
LFS_SUFFIXES: tuple[str, ...] = (".safetensors", ".parquet", ".bin", ".pt", ".pth", ".npy", ".npz", ".h5", ".arrow")
#: Regular files larger than this are committed through LFS too (the Hub's limit is 10 MB).
LFS_THRESHOLD = 10 * 1024 * 1024
_PREFIX = {"datasets": "dataset", "spaces": "space", "models": "model"}
_URL_PREFIX = {"dataset": "datasets/", "space": "spaces/", "model": ""}


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


class _Drop(Exception):
    """Raised inside a handler to close the connection without answering."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # ------------------------------------------------------------------ plumbing

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value).encode(), headers)

    def _error(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        h = {"X-Error-Message": message, **(headers or {})}
        if code:
            h["X-Error-Code"] = code
        self._json(status, {"error": message}, h)

    def _dispatch(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path = unquote(url.path)
        with state.lock:
            state.requests.append((self.command, path))
        if self.server.gone:
            raise _Drop
        try:
            self._route(path, parse_qs(url.query))
        except _Drop:
            raise
        except Exception as err:  # a bug in the stand-in: answer 500 with the reason
            self._error(500, None, f"stand-in hub error: {type(err).__name__}: {err}")

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------ routing

    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        parts = [p for p in path.split("/") if p]
        m = self.command
        if parts[:2] == ["api", "repos"] and len(parts) == 3:
            return self._repo_create() if parts[2] == "create" else self._repo_delete()
        if parts == ["api", "validate-yaml"]:
            self._body()
            return self._json(200, {})
        if parts and parts[0] == "_lfs" and m == "PUT":
            return self._lfs_put(parts[1])
        if parts and parts[0] == "api" and len(parts) >= 4 and parts[1] in _PREFIX:
            return self._api(_PREFIX[parts[1]], f"{parts[2]}/{parts[3]}", parts[4:], query)
        # /{prefix}{org}/{name}.git/info/lfs/objects/batch
        repo_type, rest = ("model", parts)
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, rest = _PREFIX[parts[0]], parts[1:]
        if len(rest) >= 2 and rest[1].endswith(".git") and rest[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(repo_type, f"{rest[0]}/{rest[1][:-4]}")
        if len(rest) >= 5 and rest[2] == "resolve":
            return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:]))
        self._error(404, None, f"stand-in hub: no route for {m} {path}")

    def _api(self, repo_type: str, repo_id: str, rest: list[str], query: dict[str, list[str]]) -> None:
        state = self.server.state
        m = self.command
        with state.lock:
            repo = state.repo(repo_type, repo_id)
        if repo is None:
            self._body()
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if not rest and m == "GET":
            return self._info(repo, "main", query)
        if rest[:1] == ["revision"] and m == "GET":
            return self._info(repo, "/".join(rest[1:]), query)
        if rest[:1] == ["tree"] and m == "GET":
            return self._tree(repo, rest[1], "/".join(rest[2:]), query)
        if rest[:1] == ["paths-info"] and m == "POST":
            return self._paths_info(repo, rest[1])
        if rest[:1] == ["preupload"] and m == "POST":
            return self._preupload(repo, rest[1])
        if rest[:1] == ["commit"] and m == "POST":
            return self._commit(repo, "/".join(rest[1:]))
        if rest == ["settings"] and m == "PUT":
            settings = json.loads(self._body() or b"{}")
            with state.lock:
                if "private" in settings:
                    repo.private = bool(settings["private"])
                if "visibility" in settings:
                    repo.private = settings["visibility"] != "public"
            return self._json(200, {})
        self._body()
        self._error(404, None, f"stand-in hub: no route for {m} api/{repo_type}s/{repo_id}/{'/'.join(rest)}")

    # ------------------------------------------------------------------ repositories

    def _repo_create(self) -> None:
        state = self.server.state
        payload = json.loads(self._body() or b"{}")
        name, org = payload["name"], payload.get("organization")
        repo_id = f"{org}/{name}" if org else name
        repo_type = payload.get("type") or "model"
        url = f"{self.server.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        with state.lock:
            if state.repo(repo_type, repo_id) is not None:
                return self._json(409, {"error": "You already created this repo", "url": url})
            repo = Repo(repo_type, repo_id, bool(payload.get("private") or payload.get("visibility") == "private"))
            repo.created = _now()
            first = Commit(_oid(repo_id, "initial", repo.created), "initial commit", None, {}, repo.created)
            repo.commits[first.oid] = first
            repo.branches["main"] = first.oid
            state.repos[(repo_type, repo_id)] = repo
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _repo_delete(self) -> None:
        state = self.server.state
        payload = json.loads(self._body() or b"{}")
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        with state.lock:
            if state.repos.pop((payload.get("type") or "model", repo_id), None) is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        self._json(200, {})

    def _commit_or_404(self, repo: Repo, revision: str) -> Commit | None:
        commit = self.server.state.head(repo.repo_type, repo.repo_id, unquote(revision))
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _entry(self, path: str, f: StoredFile, commit: Commit) -> dict[str, Any]:
        content = self.server.state.blobs[f.sha256]
        entry: dict[str, Any] = {"type": "file", "path": path, "oid": f.oid(content), "size": f.size}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
        entry["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        return entry

    def _info(self, repo: Repo, revision: str, query: dict[str, list[str]]) -> None:
        with self.server.state.lock:
            commit = self._commit_or_404(repo, revision)
            if commit is None:
                return
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            siblings = []
            for path, f in sorted(commit.files.items()):
                sib: dict[str, Any] = {"rfilename": path}
                if blobs:
                    e = self._entry(path, f, commit)
                    sib.update(size=f.size, blobId=e["oid"])
                    if f.lfs:
                        sib["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": len(f.pointer)}
                siblings.append(sib)
        self._json(
            200,
            {
                "id": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.oid,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "createdAt": repo.created,
                "lastModified": commit.date,
                "tags": [],
                "siblings": siblings,
            },
        )

    def _tree(self, repo: Repo, revision: str, folder: str, query: dict[str, list[str]]) -> None:
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        with self.server.state.lock:
            commit = self._commit_or_404(repo, revision)
            if commit is None:
                return
            prefix = folder.strip("/") + "/" if folder.strip("/") else ""
            entries: dict[str, dict[str, Any]] = {}
            for path, f in sorted(commit.files.items()):
                if not path.startswith(prefix):
                    continue
                rest = path[len(prefix) :].split("/")
                if len(rest) > 1 and not recursive:
                    sub = prefix + rest[0]
                    entries.setdefault(sub, {"type": "directory", "path": sub, "oid": git_blob_sha1(sub.encode())})
                    continue
                if recursive:
                    for depth in range(1, len(rest)):
                        sub = prefix + "/".join(rest[:depth])
                        entries.setdefault(sub, {"type": "directory", "path": sub, "oid": git_blob_sha1(sub.encode())})
                entries[path] = self._entry(path, f, commit)
        if folder.strip("/") and not entries:
            return self._error(404, "EntryNotFound", f"{folder} does not exist")
        self._json(200, list(entries.values()))

    def _paths_info(self, repo: Repo, revision: str) -> None:
        form = parse_qs(self._body().decode())
        with self.server.state.lock:
            commit = self._commit_or_404(repo, revision)
            if commit is None:
                return
            out = []
            for path in form.get("paths", []):
                if path in commit.files:
                    out.append(self._entry(path, commit.files[path], commit))
                elif any(p.startswith(path.rstrip("/") + "/") for p in commit.files):
                    out.append({"type": "directory", "path": path, "oid": git_blob_sha1(path.encode())})
        self._json(200, out)

    # ------------------------------------------------------------------ uploads

    def _preupload(self, repo: Repo, revision: str) -> None:
        payload = json.loads(self._body() or b"{}")
        with self.server.state.lock:
            commit = self._commit_or_404(repo, revision)
            if commit is None:
                return
            files = []
            for item in payload.get("files", []):
                path, size = item["path"], int(item["size"])
                lfs = path.endswith(LFS_SUFFIXES) or size > LFS_THRESHOLD
                existing = commit.files.get(path)
                oid = None
                if existing is not None:
                    # What the client compares with its local oid: the SHA-256 for LFS, git's blob id otherwise.
                    content = self.server.state.blobs[existing.sha256]
                    oid = existing.sha256 if lfs else git_blob_sha1(content)
                files.append(
                    {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
                )
        self._json(200, {"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        state = self.server.state
        payload = json.loads(self._body() or b"{}")
        with state.lock:
            if state.repo(repo_type, repo_id) is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            objects = []
            for obj in payload.get("objects", []):
                entry: dict[str, Any] = {"oid": obj["oid"], "size": int(obj["size"]), "authenticated": True}
                if obj["oid"] not in state.blobs:
                    entry["actions"] = {"upload": {"href": f"{self.server.url}/_lfs/{obj['oid']}", "header": {}}}
                objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, oid: str) -> None:
        content = self._body()
        if hashlib.sha256(content).hexdigest() != oid:
            return self._error(400, None, f"content does not match its oid {oid}")
        with self.server.state.lock:
            self.server.state.blobs[oid] = content
            self.server.state.lfs_uploads.append(oid)
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, repo: Repo, revision: str) -> None:
        state = self.server.state
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        with state.lock:
            if state.fail_after_commits is not None and state._commits_since_armed >= state.fail_after_commits:
                self.server.go_away()
                raise _Drop
            commit = self._commit_or_404(repo, revision)
            if commit is None:
                return
            header: dict[str, Any] = next((x["value"] for x in lines if x["key"] == "header"), {})
            parent = header.get("parentCommit")
            if parent is not None and not commit.oid.startswith(parent):
                return self._error(412, None, "A commit has happened since. Please refresh and try again.")
            files = dict(commit.files)
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "file":
                    content = base64.b64decode(value["content"])
                    sha = hashlib.sha256(content).hexdigest()
                    state.blobs[sha] = content
                    files[value["path"]] = StoredFile(len(content), sha, False)
                elif key == "lfsFile":
                    if value["oid"] not in state.blobs:
                        return self._error(422, None, f"LFS object {value['oid']} was never uploaded")
                    size = len(state.blobs[value["oid"]])
                    files[value["path"]] = StoredFile(size, value["oid"], True)
                elif key == "deletedFile":
                    if value["path"] not in files:
                        return self._error(404, "EntryNotFound", "A file with this name doesn't exist")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    for p in [p for p in files if p.startswith(prefix)]:
                        del files[p]
            date = _now()
            new = Commit(
                _oid(commit.oid, json.dumps(lines, sort_keys=True), date),
                header.get("summary", ""),
                commit.oid,
                files,
                date,
            )
            repo.commits[new.oid] = new
            repo.branches[unquote(revision) if unquote(revision) in repo.branches else "main"] = new.oid
            state.commits_made += 1
            state._commits_since_armed += 1
        prefix = _URL_PREFIX[repo.repo_type]
        self._json(
            200,
            {
                "success": True,
                "commitOid": new.oid,
                "commitUrl": f"{self.server.url}/{prefix}{repo.repo_id}/commit/{new.oid}",
                "pullRequestUrl": None,
            },
        )

    # ------------------------------------------------------------------ downloads

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        state = self.server.state
        with state.lock:
            repo = state.repo(repo_type, repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if repo.private and not self.headers.get("Authorization"):
                return self._error(401, "RepoNotFound", f"Repository {repo_id} not found")
            commit = self._commit_or_404(repo, revision)
            if commit is None:
                return
            f = commit.files.get(path)
            if f is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist", {"X-Repo-Commit": commit.oid})
            content = state.blobs[f.sha256]
        etag = f.sha256 if f.lfs else git_blob_sha1(content)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if f.lfs:
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(f.size)
        status = 200
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and self.command == "GET":
            start_s, _, end_s = ranged[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content = content[start : end + 1]
            status = 206
        self._send(status, content, headers, content_type="application/octet-stream")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _oid(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode() + os.urandom(8)).hexdigest()


class HubServer(ThreadingHTTPServer):
    """One running stand-in: an HTTP server on 127.0.0.1 serving a :class:`HubState` from a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: HubState, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = state
        self.gone = False
        self._thread = threading.Thread(target=self.serve_forever, name="hub-stand-in", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The endpoint, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def go_away(self) -> None:
        """Stop answering: every open connection is dropped and no new one is accepted."""
        self.gone = True
        threading.Thread(target=self.stop, daemon=True).start()

    def stop(self) -> None:
        """Shut the server down and close its socket."""
        self.gone = True
        self.shutdown()
        self.server_close()


class HubStandIn:
    """A stand-in Hub: a :class:`HubState` and the server currently answering for it.

    Parameters
    ----------
    state : HubState, optional
        The repositories to serve; a new, empty state by default.

    Examples
    --------
    >>> hub = HubStandIn()
    >>> hub.url.startswith("http://127.0.0.1:")
    True
    >>> hub.stop()
    """

    def __init__(self, state: HubState | None = None) -> None:
        self.state = state or HubState()
        self.server = HubServer(self.state)

    @property
    def url(self) -> str:
        """The endpoint of the running server."""
        return self.server.url

    def stop(self) -> None:
        """Stop the server (the state is kept)."""
        with contextlib.suppress(OSError):
            self.server.stop()

    def restart(self) -> str:
        """Start a new server on the same state (and port when it is free); returns its endpoint."""
        port = self.server.server_address[1]
        self.stop()
        self.state.fail_after(None)
        try:
            self.server = HubServer(self.state, port)
        except OSError:
            self.server = HubServer(self.state)
        return self.url


@contextlib.contextmanager
def use_hub(endpoint: str, hub_cache: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """Point ``huggingface_hub`` at ``endpoint`` inside the ``with`` block, with Xet off and the Hub online.

    Sets ``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_OFFLINE=0`` (and ``HF_HUB_CACHE`` when ``hub_cache`` is
    given) in the environment and the matching values in ``huggingface_hub.constants`` (read at import), repoints the
    module-level ``HfApi`` (behind ``huggingface_hub.model_info`` and friends), closes the shared HTTP client (so no
    connection to an old server is reused), and restores everything afterwards.

    Parameters
    ----------
    endpoint : str
        The stand-in's URL.
    hub_cache : str or path-like, optional
        A Hugging Face hub cache directory to use instead of the configured one.

    Yields
    ------
    str
        ``endpoint``.
    """
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import close_session

    host = urlsplit(endpoint).hostname or "127.0.0.1"
    names = ("ENDPOINT", "HUGGINGFACE_CO_URL_TEMPLATE", "HF_URL_HOSTS", "HF_HUB_DISABLE_XET", "HF_HUB_OFFLINE")
    saved = {n: getattr(constants, n) for n in names}
    saved_cache = constants.HF_HUB_CACHE
    saved_api = hf_api.api.endpoint
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}
    if hub_cache is not None:
        env["HF_HUB_CACHE"] = os.fspath(hub_cache)
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    constants.ENDPOINT = endpoint
    constants.HUGGINGFACE_CO_URL_TEMPLATE = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    constants.HF_URL_HOSTS = frozenset(saved["HF_URL_HOSTS"] | {host})
    constants.HF_HUB_DISABLE_XET = True
    constants.HF_HUB_OFFLINE = False
    if hub_cache is not None:
        constants.HF_HUB_CACHE = os.fspath(hub_cache)
    hf_api.api.endpoint = endpoint
    close_session()
    try:
        yield endpoint
    finally:
        close_session()
        for n, v in saved.items():
            setattr(constants, n, v)
        constants.HF_HUB_CACHE = saved_cache
        hf_api.api.endpoint = saved_api
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
