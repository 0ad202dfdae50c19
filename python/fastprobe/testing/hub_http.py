"""HTTP plumbing of the stand-in Hub's request handler: read a request's body, answer, or drop the connection."""

from __future__ import annotations

import contextlib
import json
import socket
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["DropConnection", "HttpPlumbing"]


class DropConnection(Exception):
    """Raised inside a handler to close the connection without answering."""


class HttpPlumbing(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 request handler with helpers to read a body (plain or chunked) and to answer JSON or errors.

    Raising :class:`DropConnection` while handling a request closes the connection without an answer.
    """

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing (the stand-in is quiet)."""
        return

    def handle_one_request(self) -> None:
        """Handle one request; a request the stand-in drops closes the connection without an answer."""
        try:
            super().handle_one_request()
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _body(self) -> bytes:
        """Read the request's body: ``Content-Length`` bytes, or every chunk of a chunked one."""
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
        """Answer ``status`` with ``body`` (left out for HEAD) and its headers."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``value`` as JSON."""
        self._send(status, json.dumps(value).encode(), headers)

    def _error(self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None) -> None:
        """Answer an error as the Hub does: the message in ``X-Error-Message``, the code in ``X-Error-Code``."""
        h = {"X-Error-Message": message, **(headers or {})}
        if code:
            h["X-Error-Code"] = code
        self._json(status, {"error": message}, h)
