"""A stand-in for the Hugging Face Hub on 127.0.0.1, for offline tests of code that pushes and pulls repositories.

A facade: the stand-in lives in :mod:`fastprobe.testing` (:mod:`~fastprobe.testing.hub_state`,
:mod:`~fastprobe.testing.hub_http`, :mod:`~fastprobe.testing.hub_handler`, :mod:`~fastprobe.testing.hub_server`).

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

from fastprobe.testing.hub_server import HubServer, HubStandIn, use_hub
from fastprobe.testing.hub_state import LFS_SUFFIXES as LFS_SUFFIXES
from fastprobe.testing.hub_state import LFS_THRESHOLD as LFS_THRESHOLD
from fastprobe.testing.hub_state import Commit as Commit
from fastprobe.testing.hub_state import HubState
from fastprobe.testing.hub_state import Repo as Repo
from fastprobe.testing.hub_state import StoredFile as StoredFile
from fastprobe.testing.hub_state import git_blob_sha1 as git_blob_sha1

__all__ = ["HubServer", "HubStandIn", "HubState", "use_hub"]
