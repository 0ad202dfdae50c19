"""The Perspective API as a scorer: toxicity and related attributes of texts, from Google's ``comments:analyze``.

One request per text with a rate limit; 429 and 5xx answers (and network errors) are retried with exponential
backoff (``Retry-After`` honoured); a text that still fails, or whose answer is malformed, is recorded as missing
(``None``), never as a sentinel number. 401, 403 and 404 stop the run: no text can succeed with a bad key, a disabled
API or a wrong address. Standard library only (``urllib.request``).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import numbers
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from fastprobe.exceptions import (
    ArgumentTypeError,
    FastprobeIOError,
    InvalidInputError,
)

__all__ = ["PERSPECTIVE_ATTRIBUTES", "PERSPECTIVE_KEY_ENV", "PERSPECTIVE_URL", "PerspectiveScorer"]

#: The public Perspective API endpoint.
PERSPECTIVE_URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
#: The environment variable :class:`PerspectiveScorer` reads its API key from.
PERSPECTIVE_KEY_ENV = "PERSPECTIVE_API_KEY"
#: The production attributes of the Perspective API (others, such as experimental ones, are accepted too).
PERSPECTIVE_ATTRIBUTES = (
    "TOXICITY",
    "SEVERE_TOXICITY",
    "IDENTITY_ATTACK",
    "INSULT",
    "PROFANITY",
    "THREAT",
    "SEXUALLY_EXPLICIT",
    "FLIRTATION",
)


# --------------------------------------------------------------------------------------------------------------------
# Perspective API


def _retry_after(headers: Any) -> float | None:
    """Return the delay a ``Retry-After`` header asks for, in seconds (None when absent or unreadable)."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class PerspectiveScorer:
    """Scores from Google's Perspective API, one ``comments:analyze`` request per text.

    Each text is sent as ``{"comment": {"text": ...}, "requestedAttributes": {A: {}, ...}, "languages": [...],
    "doNotStore": true}``; the score of attribute ``A`` is ``attributeScores[A]["summaryScore"]["value"]``, returned
    under the lower-case name (``"TOXICITY"`` -> ``"toxicity"``).

    Failures never produce a number:

    - HTTP 429 and 5xx, and network errors, are retried after ``backoff * 2**k`` seconds (``k`` = retries so far),
      or after the delay a ``Retry-After`` header asks for; after ``max_retries`` retries the text is missing.
    - Other 4xx answers (400 for an unsupported language or an empty text, 413, ...) make the text missing at once.
      401, 403 and 404 mean no text can succeed (a bad key, the API not enabled, a wrong URL) and raise.
    - A malformed answer (not JSON, no ``attributeScores``, a value that is not a number in [0, 1]) makes the
      affected attributes missing, without retry.

    A call that leaves any text with a missing score warns once (a :class:`RuntimeWarning`), with the counts.

    Parameters
    ----------
    attributes : sequence of str
        Perspective attributes (upper case, as the API names them; see :data:`PERSPECTIVE_ATTRIBUTES`).
    api_key : str or None
        The API key; None reads the ``PERSPECTIVE_API_KEY`` environment variable at call time.
    url : str
        The ``comments:analyze`` endpoint.
    languages : sequence of str
        The languages sent with each request (ISO 639-1 codes); empty lets the API detect the language.
    rate_limit : float or None
        Requests per second at most (retries included), timed with ``clock``; None for no limit.
    max_retries : int
        Retries of a text after a 429, a 5xx or a network error.
    backoff : float
        The first retry delay in seconds; it doubles with each retry.
    timeout : float
        Seconds to wait for one answer.
    session : urllib.request.OpenerDirector or None
        What opens the requests (anything with ``open(request, timeout=...)``); None builds a default opener.
    clock, sleep : callable
        The monotonic clock and the sleep function (injectable for tests).

    Attributes
    ----------
    name : str
        The scorer's identity in a :class:`ScoreCache`: ``"perspective[TOXICITY,INSULT;en]"``.
    n_requests : int
        HTTP requests sent by this scorer so far.
    """

    def __init__(
        self,
        attributes: Sequence[str] = ("TOXICITY",),
        *,
        api_key: str | None = None,
        url: str = PERSPECTIVE_URL,
        languages: Sequence[str] = ("en",),
        rate_limit: float | None = 1.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 30.0,
        session: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(attributes, str):
            attributes = (attributes,)
        attrs = tuple(attributes)
        if not attrs or not all(isinstance(a, str) and re.fullmatch(r"[A-Za-z0-9_]+", a) for a in attrs):
            raise InvalidInputError(
                f"attributes must be a non-empty sequence of Perspective attribute names such as 'TOXICITY'; "
                f"got {attributes!r}"
            )
        attrs = tuple(a.upper() for a in attrs)
        if len(set(attrs)) != len(attrs):
            raise InvalidInputError(f"attributes has duplicates: {list(attrs)}")
        if isinstance(languages, str):
            languages = (languages,)
        langs = tuple(languages)
        if not all(isinstance(lang, str) and lang for lang in langs):
            raise InvalidInputError(f"languages must be a sequence of language codes such as 'en'; got {languages!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise ArgumentTypeError(f"api_key must be a non-empty str or None; got {type(api_key).__name__}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"url must be an http(s) URL; got {url!r}")
        if rate_limit is not None and (
            isinstance(rate_limit, bool) or not isinstance(rate_limit, numbers.Real) or not rate_limit > 0
        ):
            raise InvalidInputError(
                f"rate_limit must be a positive number of requests per second or None; got {rate_limit!r}"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, numbers.Integral) or max_retries < 0:
            raise InvalidInputError(f"max_retries must be an int >= 0; got {max_retries!r}")
        for what, number in (("backoff", backoff), ("timeout", timeout)):
            if isinstance(number, bool) or not isinstance(number, numbers.Real) or not number >= 0:
                raise InvalidInputError(f"{what} must be a number >= 0; got {number!r}")
        self.attributes: tuple[str, ...] = attrs
        self.api_key: str | None = api_key
        self.url: str = url
        self.languages: tuple[str, ...] = langs
        self.rate_limit: float | None = None if rate_limit is None else float(rate_limit)
        self.max_retries: int = int(max_retries)
        self.backoff: float = float(backoff)
        self.timeout: float = float(timeout)
        self.session: Any = session
        self.clock: Callable[[], float] = clock
        self.sleep: Callable[[float], None] = sleep
        self.name: str = f"perspective[{','.join(attrs)};{','.join(langs)}]"
        self.n_requests: int = 0
        self._last_request: float | None = None

    def __repr__(self) -> str:  # never shows the key
        return (
            f"PerspectiveScorer(attributes={list(self.attributes)}, languages={list(self.languages)}, "
            f"rate_limit={self.rate_limit}, max_retries={self.max_retries})"
        )

    @property
    def score_names(self) -> list[str]:
        """The names of the scores returned: the attributes in lower case."""
        return [a.lower() for a in self.attributes]

    def _key(self) -> str:
        key = self.api_key if self.api_key is not None else os.environ.get(PERSPECTIVE_KEY_ENV, "")
        if not key:
            raise InvalidInputError(
                f"PerspectiveScorer needs an API key: set the {PERSPECTIVE_KEY_ENV} environment variable or pass "
                "api_key=..."
            )
        return key

    def _endpoint(self, key: str) -> str:
        separator = "&" if urllib.parse.urlsplit(self.url).query else "?"
        return f"{self.url}{separator}{urllib.parse.urlencode({'key': key})}"

    def _wait_for_rate_limit(self) -> None:
        if self.rate_limit is not None and self._last_request is not None:
            delay = self._last_request + 1.0 / float(self.rate_limit) - self.clock()
            if delay > 0:
                self.sleep(delay)
        self._last_request = self.clock()

    def _post(self, opener: Any, endpoint: str, body: bytes) -> tuple[int, Any, bytes]:
        """Send one request; return (HTTP status or 0 for a network error, headers, body)."""
        self._wait_for_rate_limit()
        self.n_requests += 1
        request = urllib.request.Request(
            endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return int(response.status), response.headers, response.read()
        except urllib.error.HTTPError as err:
            try:
                payload = err.read()
            except (OSError, http.client.HTTPException):
                payload = b""
            finally:
                err.close()
            return int(err.code), err.headers, payload
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            return 0, None, str(reason).encode("utf-8", "replace")

    def _parse(self, payload: bytes) -> list[float | None]:
        try:
            answer = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return [None] * len(self.attributes)
        scores = answer.get("attributeScores") if isinstance(answer, dict) else None
        out: list[float | None] = []
        for attribute in self.attributes:
            try:
                value = scores[attribute]["summaryScore"]["value"]  # type: ignore[index]
            except (KeyError, TypeError, IndexError):
                value = None
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
            out.append(float(value) if ok else None)
        return out

    def _score_one(self, opener: Any, endpoint: str, text: str) -> tuple[list[float | None], str | None]:
        body = json.dumps(
            {
                "comment": {"text": text},
                "requestedAttributes": {attribute: {} for attribute in self.attributes},
                "languages": list(self.languages),
                "doNotStore": True,
            }
        ).encode("utf-8")
        retries = 0
        while True:
            status, headers, payload = self._post(opener, endpoint, body)
            if status == 200:
                values = self._parse(payload)
                return values, None if all(v is not None for v in values) else "a malformed answer"
            if status in (401, 403, 404):
                raise FastprobeIOError(
                    f"the Perspective API at {self.url} answered HTTP {status} ({_excerpt(payload)}); no text can be "
                    f"scored: check the API key ({PERSPECTIVE_KEY_ENV}), that the API is enabled, and the URL"
                )
            if status != 0 and status != 429 and status < 500:
                return [None] * len(self.attributes), f"HTTP {status}"
            if retries >= self.max_retries:
                last = f"HTTP {status}" if status else f"network error: {_excerpt(payload)}"
                return [None] * len(self.attributes), f"{last} after {retries} retries"
            delay = _retry_after(headers) if status == 429 or status >= 500 else None
            self.sleep(self.backoff * 2.0**retries if delay is None else delay)
            retries += 1

    def __call__(self, texts: Sequence[str]) -> dict[str, list[float | None]]:
        """Score ``texts``; return ``{attribute in lower case: one value or None per text}``."""
        texts = list(texts)
        key = self._key()
        opener = self.session if self.session is not None else urllib.request.build_opener()
        endpoint = self._endpoint(key)
        columns: list[list[float | None]] = [[] for _ in self.attributes]
        failures: dict[str, int] = {}
        for text in texts:
            values, failure = self._score_one(opener, endpoint, text)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            if failure is not None:
                failures[failure] = failures.get(failure, 0) + 1
        if failures:
            detail = "; ".join(f"{count} with {reason}" for reason, count in sorted(failures.items()))
            warnings.warn(
                f"PerspectiveScorer: {sum(failures.values())} of {len(texts)} texts have missing scores (None): "
                f"{detail}",
                RuntimeWarning,
                stacklevel=2,
            )
        return dict(zip(self.score_names, columns, strict=True))


def _excerpt(payload: bytes, limit: int = 200) -> str:
    text = payload.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
