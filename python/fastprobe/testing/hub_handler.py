"""The stand-in Hub's HTTP request handler: the calls ``huggingface_hub`` makes, answered from a :class:`HubState`.

It answers creating and deleting a repository, committing files (regular files inline, large files through the plain
Git LFS "basic" transfer, never Xet), describing a repository and its files, and resolving (downloading) a file at a
branch or commit, with the headers the client checks (``X-Repo-Commit``, ``ETag``, ``Content-Length``,
``X-Error-Code``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from fastprobe.testing.hub_http import DropConnection, HttpPlumbing
from fastprobe.testing.hub_state import LFS_SUFFIXES, LFS_THRESHOLD, Commit, Repo, StoredFile, git_blob_sha1

if TYPE_CHECKING:
    from fastprobe.testing.hub_server import HubServer

__all__ = ["HubRequestHandler"]

_PREFIX = {"datasets": "dataset", "spaces": "space", "models": "model"}
_URL_PREFIX = {"dataset": "datasets/", "space": "spaces/", "model": ""}


class HubRequestHandler(HttpPlumbing):
    """Answer one connection's requests to a :class:`~fastprobe.testing.hub_server.HubServer` from its state.

    The routes, in sections (routing, repositories, uploads, downloads), over the HTTP plumbing of
    :class:`~fastprobe.testing.hub_http.HttpPlumbing`. ``http.server`` makes one handler instance per connection and
    calls its ``do_<METHOD>``, so the routes are methods of this one class.
    """

    server: HubServer

    def _dispatch(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path = unquote(url.path)
        with state.lock:
            state.requests.append((self.command, path))
        if self.server.gone:
            raise DropConnection
        try:
            self._route(path, parse_qs(url.query))
        except DropConnection:
            raise
        except Exception as err:  # a bug in the stand-in: answer 500 with the reason
            self._error(500, None, f"stand-in hub error: {type(err).__name__}: {err}")

    def do_GET(self) -> None:
        """Route a GET request."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Route a HEAD request (answered as GET, without a body)."""
        self._dispatch()

    def do_POST(self) -> None:
        """Route a POST request."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Route a PUT request."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Route a DELETE request."""
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
            if state.armed_failure_due():
                self.server.go_away()
                raise DropConnection
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
            state.count_commit()
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
