"""A stand-in for the Hugging Face Hub on 127.0.0.1, and :func:`use_hub` to point ``huggingface_hub`` at it.

:class:`HubStandIn` answers the HTTP calls ``huggingface_hub`` makes (see :mod:`fastprobe.testing.hub_handler`) for
the repositories of a :class:`~fastprobe.testing.hub_state.HubState`. :func:`use_hub` points ``huggingface_hub``
(its endpoint constants, the module-level ``HfApi`` behind functions such as ``model_info``, and the
``HF_ENDPOINT`` environment variable) at a stand-in, turns Xet off, and restores everything afterwards.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from fastprobe.testing.hub_handler import HubRequestHandler
from fastprobe.testing.hub_state import HubState

__all__ = ["HubServer", "HubStandIn", "use_hub"]


class HubServer(ThreadingHTTPServer):
    """One running stand-in: an HTTP server on 127.0.0.1 serving a :class:`HubState` from a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: HubState, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), HubRequestHandler)
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
