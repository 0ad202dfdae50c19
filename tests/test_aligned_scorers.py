"""Behavioural scorers: the checking driver, the cache by text, the Perspective client and the offline scorers."""

from __future__ import annotations

import http.server
import json
import math
import socket
import sqlite3
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from fastprobe.aligned import (
    PERSPECTIVE_KEY_ENV,
    LexiconScorer,
    PerspectiveScorer,
    ProfanityScorer,
    ScoreCache,
    VaderScorer,
    score_texts,
    scorer_identity,
)
from fastprobe.exceptions import (
    ArgumentTypeError,
    FastprobeIOError,
    InvalidInputError,
    MissingDependencyError,
    UnknownOptionError,
)

# --------------------------------------------------------------------------------------------------------------------
# a scripted Perspective stand-in on loopback


def _answer(**values: float) -> tuple[int, dict[str, str], bytes]:
    scores = {
        name.upper(): {
            "spanScores": [{"begin": 0, "end": 5, "score": {"value": value, "type": "PROBABILITY"}}],
            "summaryScore": {"value": value, "type": "PROBABILITY"},
        }
        for name, value in values.items()
    }
    return 200, {}, json.dumps({"attributeScores": scores, "languages": ["en"], "detectedLanguages": ["en"]}).encode()


_ERROR = json.dumps({"error": {"code": 500, "message": "backend error", "status": "INTERNAL"}}).encode()
_BAD_LANGUAGE = json.dumps(
    {"error": {"code": 400, "message": "Attribute TOXICITY does not support request languages: xx"}}
).encode()

# text -> the answers to its 1st, 2nd, ... request (the last one repeats)
SCRIPT: dict[str, list[tuple[int, dict[str, str], bytes]]] = {
    "ok": [_answer(toxicity=0.25, insult=0.5)],
    "ok2": [_answer(toxicity=0.125, insult=0.0)],
    "ok3": [_answer(toxicity=1.0, insult=0.75)],
    "busy": [(429, {"Retry-After": "7"}, b'{"error": {"code": 429}}'), _answer(toxicity=0.5, insult=0.25)],
    "unavailable": [
        (503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, _ERROR),
        _answer(toxicity=0.375, insult=0.125),
    ],
    "flaky": [(500, {}, _ERROR)] * 3 + [_answer(toxicity=0.75, insult=0.5)],
    "down": [(500, {}, _ERROR)],
    "bad json": [(200, {}, b"<html>not json</html>")],
    "no attributes": [(200, {}, json.dumps({"languages": ["en"]}).encode())],
    "too high": [_answer(toxicity=1.7, insult=0.5)],
    "bad language": [(400, {}, _BAD_LANGUAGE)],
    "forbidden": [(403, {}, b'{"error": {"code": 403, "message": "API key not valid"}}')],
}


@dataclass
class FakeTime:
    """A monotonic clock that only moves when slept on (or when the server says a request took time)."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Server:
    url: str
    requests: list[dict[str, Any]]
    time: FakeTime

    def count(self, text: str) -> int:
        return sum(1 for r in self.requests if r["body"]["comment"]["text"] == text)


@pytest.fixture
def server() -> Iterator[Server]:
    requests: list[dict[str, Any]] = []
    fake_time = FakeTime()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = body["comment"]["text"]
            with lock:
                n = sum(1 for r in requests if r["body"]["comment"]["text"] == text)
                requests.append({"path": self.path, "content_type": self.headers["Content-Type"], "body": body})
            if text.startswith("slow "):  # the request takes 0.3 s of the fake clock
                fake_time.now += 0.3
                status, headers, payload = _answer(toxicity=0.5, insult=0.5)
            else:
                answers = SCRIPT[text]
                status, headers, payload = answers[min(n, len(answers) - 1)]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}/v1alpha1/comments:analyze", requests, fake_time)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _scorer(server: Server, **kwargs: Any) -> PerspectiveScorer:
    options: dict[str, Any] = {
        "attributes": ("TOXICITY", "INSULT"),
        "api_key": "test-key",
        "url": server.url,
        "rate_limit": None,
        "session": urllib.request.build_opener(urllib.request.ProxyHandler({})),  # no proxy for loopback
        "clock": server.time.clock,
        "sleep": server.time.sleep,
    }
    options.update(kwargs)
    return PerspectiveScorer(**options)


def _no_sentinel(values: Any) -> None:
    flat = [v for column in values.values() for v in column]
    assert all(v is None or 0.0 <= v <= 1.0 for v in flat), flat


# --------------------------------------------------------------------------------------------------------------------
# PerspectiveScorer


def test_perspective_success_and_request_body(server: Server) -> None:
    scorer = _scorer(server, languages=("en", "de"))
    scores = scorer(["ok", "ok2"])
    assert scores == {"toxicity": [0.25, 0.125], "insult": [0.5, 0.0]}
    assert len(server.requests) == 2 and scorer.n_requests == 2
    first = server.requests[0]
    assert first["body"] == {
        "comment": {"text": "ok"},
        "requestedAttributes": {"TOXICITY": {}, "INSULT": {}},
        "languages": ["en", "de"],
        "doNotStore": True,
    }
    path = urllib.parse.urlsplit(first["path"])
    assert path.path == "/v1alpha1/comments:analyze"
    assert urllib.parse.parse_qs(path.query) == {"key": ["test-key"]}
    assert first["content_type"] == "application/json"
    assert server.time.sleeps == []
    assert scorer.name == "perspective[TOXICITY,INSULT;en,de]"
    assert "test-key" not in repr(scorer)


def test_perspective_429_honours_retry_after(server: Server) -> None:
    scores = _scorer(server, backoff=1.0)(["busy"])
    assert scores == {"toxicity": [0.5], "insult": [0.25]}
    assert server.count("busy") == 2
    assert server.time.sleeps == [7.0]


def test_perspective_retry_after_date_in_the_past_waits_zero(server: Server) -> None:
    assert _scorer(server)(["unavailable"]) == {"toxicity": [0.375], "insult": [0.125]}
    assert server.time.sleeps == [0.0]


def test_perspective_500_three_times_then_success_backs_off_exponentially(server: Server) -> None:
    scores = _scorer(server, backoff=0.5, max_retries=5)(["flaky"])
    assert scores == {"toxicity": [0.75], "insult": [0.5]}
    assert server.count("flaky") == 4
    assert server.time.sleeps == [0.5, 1.0, 2.0]


def test_perspective_permanent_500_records_missing_after_max_retries(server: Server) -> None:
    scorer = _scorer(server, backoff=1.0, max_retries=3)
    with pytest.warns(
        RuntimeWarning, match=r"1 of 2 texts have missing scores \(None\): 1 with HTTP 500 after 3 retries"
    ):
        scores = scorer(["down", "ok"])
    assert scores == {"toxicity": [None, 0.25], "insult": [None, 0.5]}
    assert server.count("down") == 4
    assert server.time.sleeps == [1.0, 2.0, 4.0]
    _no_sentinel(scores)


def test_perspective_malformed_answers_and_400_are_missing_without_retry(server: Server) -> None:
    texts = ["bad json", "no attributes", "too high", "bad language", "ok"]
    with pytest.warns(RuntimeWarning, match=r"4 of 5 texts .*1 with HTTP 400; 3 with a malformed answer"):
        scores = _scorer(server)(texts)
    # 1.7 is outside [0, 1]: that attribute is missing, the other one of the same answer is kept
    assert scores == {"toxicity": [None, None, None, None, 0.25], "insult": [None, None, 0.5, None, 0.5]}
    assert [server.count(t) for t in texts] == [1, 1, 1, 1, 1]
    assert server.time.sleeps == []
    _no_sentinel(scores)


def test_perspective_rate_limit_spaces_requests_on_the_monotonic_clock(server: Server) -> None:
    scorer = _scorer(server, rate_limit=2.0)
    assert scorer(["ok", "ok2", "ok3"])["toxicity"] == [0.25, 0.125, 1.0]
    assert server.time.sleeps == [0.5, 0.5]
    server.time.sleeps.clear()
    scorer(["slow a", "slow b"])  # each request takes 0.3 s: the limiter waits only the rest
    assert server.time.sleeps == [0.5, pytest.approx(0.2)]


def test_perspective_forbidden_raises_without_leaking_the_key(server: Server) -> None:
    with pytest.raises(FastprobeIOError, match=r"HTTP 403 .*API key not valid.*PERSPECTIVE_API_KEY") as info:
        _scorer(server, api_key="secret-123")(["forbidden"])
    assert "secret-123" not in str(info.value)
    assert isinstance(info.value, OSError)


def test_perspective_network_error_is_retried_then_missing(server: Server) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    scorer = _scorer(server, url=f"http://127.0.0.1:{port}/analyze", max_retries=2, backoff=0.25, timeout=5)
    with pytest.warns(RuntimeWarning, match=r"1 of 1 texts .*network error.* after 2 retries"):
        scores = scorer(["ok"])
    assert scores == {"toxicity": [None], "insult": [None]}
    assert scorer.n_requests == 3
    assert server.time.sleeps == [0.25, 0.5]


def test_perspective_api_key_from_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PERSPECTIVE_KEY_ENV, raising=False)
    scorer = _scorer(server, api_key=None)  # no error before the call
    with pytest.raises(InvalidInputError, match=r"needs an API key: set the PERSPECTIVE_API_KEY environment variable"):
        scorer(["ok"])
    assert server.requests == []
    monkeypatch.setenv(PERSPECTIVE_KEY_ENV, "from-env")
    assert scorer(["ok"]) == {"toxicity": [0.25], "insult": [0.5]}
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(server.requests[0]["path"]).query) == {"key": ["from-env"]}


def test_perspective_through_score_texts_and_cache(server: Server, tmp_path: Any) -> None:
    scorer = _scorer(server, max_retries=1)
    path = tmp_path / "scores.sqlite"
    with pytest.warns(RuntimeWarning, match="1 of 2 texts"):
        scores = score_texts(scorer, ["ok", "down", "ok"], cache=path)
    np.testing.assert_array_equal(scores["toxicity"], [0.25, np.nan, 0.25])
    np.testing.assert_array_equal(scores["insult"], [0.5, np.nan, 0.5])
    assert not np.any(scores["toxicity"] == -999)
    assert server.count("ok") == 1 and server.count("down") == 2
    # a rerun sends only the text with a missing score
    with pytest.warns(RuntimeWarning, match="1 of 1 texts"):
        score_texts(scorer, ["ok", "down"], cache=str(path))
    assert server.count("ok") == 1 and server.count("down") == 4


def test_perspective_argument_checks() -> None:
    with pytest.raises(InvalidInputError, match="attributes must be a non-empty sequence"):
        PerspectiveScorer(())
    with pytest.raises(InvalidInputError, match="duplicates"):
        PerspectiveScorer(("TOXICITY", "toxicity"))
    with pytest.raises(InvalidInputError, match="rate_limit must be a positive number"):
        PerspectiveScorer(rate_limit=0)
    with pytest.raises(InvalidInputError, match="max_retries must be an int >= 0; got -1"):
        PerspectiveScorer(max_retries=-1)
    with pytest.raises(InvalidInputError, match="url must be an http"):
        PerspectiveScorer(url="ftp://example")
    assert PerspectiveScorer("toxicity").score_names == ["toxicity"]


# --------------------------------------------------------------------------------------------------------------------
# score_texts: checks of a scorer's answer


def _fixed(result: Any, name: str = "fixed") -> Any:
    def scorer(texts: Sequence[str]) -> Any:
        return result

    scorer.name = name  # type: ignore[attr-defined]
    return scorer


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ([0.1, 0.2, 0.3], r"scorer 'fixed' returned list; expected a mapping from score names to one value per text"),
        ({}, r"scorer 'fixed' returned no scores"),
        ({"tox": [0.1, 0.2]}, r"scorer 'fixed' returned 2 values for score 'tox'; expected 3 \(one per text\)"),
        ({"tox": [0.1, "high", 0.3]}, r"non-number for score 'tox' at text 1: .*got str 'high'"),
        ({"tox": [0.1, True, 0.3]}, r"non-number for score 'tox' at text 1: .*got bool True"),
        ({"tox": [0.1, float("nan"), 0.3]}, r"returned NaN for score 'tox' at text 1: .*None for a missing score"),
        ({"tox": np.array([0.1, np.inf, 0.3])}, r"returned inf for score 'tox' at text 1"),
        ({"tox": np.zeros((3, 1))}, r"array of shape \(3, 1\) for score 'tox'; expected .* shape \(3,\)"),
        ({"tox": 0.5}, r"returned float for score 'tox'; expected a sequence of 3 values"),
        ({"tox": "abc"}, r"returned str for score 'tox'"),
        ({1: [0.1, 0.2, 0.3]}, r"returned a score named 1; expected non-empty str score names"),
    ],
)
def test_score_texts_rejects_bad_answers(result: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        score_texts(_fixed(result), ["a", "b", "c"])


def test_score_texts_returns_float64_with_nan_for_missing() -> None:
    calls: list[list[str]] = []

    def scorer(texts: Sequence[str]) -> dict[str, Any]:
        calls.append(list(texts))
        return {
            "z_len": np.array([len(t) for t in texts], dtype=np.int64),
            "a_half": [None if t == "missing" else len(t) / 2 for t in texts],
        }

    scores = score_texts(scorer, ["ab", "missing", "ab", "abcd", "x"], batch_size=2)
    assert list(scores) == ["a_half", "z_len"]
    assert all(v.dtype == np.float64 and v.shape == (5,) for v in scores.values())
    np.testing.assert_array_equal(scores["a_half"], [1.0, np.nan, 1.0, 2.0, 0.5])
    np.testing.assert_array_equal(scores["z_len"], [2, 7, 2, 4, 1])
    assert calls == [["ab", "missing"], ["abcd", "x"]]  # each distinct text once, in batches of 2


def test_score_texts_rejects_names_changing_between_batches() -> None:
    def scorer(texts: Sequence[str]) -> dict[str, list[float]]:
        return {("a" if texts[0] == "x" else "b"): [0.0] * len(texts)}

    with pytest.raises(InvalidInputError, match=r"returned the scores \['b'\]; an earlier batch returned \['a'\]"):
        score_texts(scorer, ["x", "y"], batch_size=1)


def test_score_texts_argument_checks() -> None:
    scorer = LexiconScorer({"a": 1.0})
    with pytest.raises(InvalidInputError, match="texts is empty"):
        score_texts(scorer, [])
    with pytest.raises(ArgumentTypeError, match="texts must be a sequence of str; got str"):
        score_texts(scorer, "text")
    with pytest.raises(ArgumentTypeError, match=r"texts\[1\] is int"):
        score_texts(scorer, ["a", 3])  # type: ignore[list-item]
    with pytest.raises(ArgumentTypeError, match="batch_size must be an int >= 1; got 0"):
        score_texts(scorer, ["a"], batch_size=0)
    with pytest.raises(ArgumentTypeError, match="scorer must be callable"):
        score_texts("not a scorer", ["a"])  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="cache must be a ScoreCache, a path or None; got int"):
        score_texts(scorer, ["a"], cache=3)  # type: ignore[arg-type]


def _plain_function(texts: Sequence[str]) -> dict[str, list[float]]:
    return {"n": [float(len(t)) for t in texts]}


class _CallableScorer:
    def __call__(self, texts: Sequence[str]) -> dict[str, list[float]]:
        return {"n": [1.0] * len(texts)}


def test_scorer_identity() -> None:
    assert scorer_identity(_plain_function) == f"{__name__}._plain_function"
    assert scorer_identity(_CallableScorer()) == f"{__name__}._CallableScorer"
    assert scorer_identity(_fixed({}, name="mine-v2")) == "mine-v2"


# --------------------------------------------------------------------------------------------------------------------
# ScoreCache


class _Counting:
    def __init__(self, name: str = "counting") -> None:
        self.name = name
        self.sent: list[str] = []

    def __call__(self, texts: Sequence[str]) -> dict[str, list[float | None]]:
        self.sent.extend(texts)
        if "boom" in texts:
            raise RuntimeError("killed")
        return {"len": [None if t.startswith("?") else float(len(t)) for t in texts], "one": [1.0] * len(texts)}


def test_cache_sends_only_new_texts_and_resends_missing(tmp_path: Any) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    scorer = _Counting()
    with ScoreCache(path) as cache:
        first = score_texts(scorer, ["aa", "bbb", "?q"], cache=cache)
        np.testing.assert_array_equal(first["len"], [2.0, 3.0, np.nan])
        assert cache.names("counting") == ["len", "one"]
        assert cache.lookup("counting", ["bbb", "?q", "zz"]) == {
            "bbb": {"len": 3.0, "one": 1.0},
            "?q": {"len": None, "one": 1.0},
        }
    scorer.sent.clear()
    with ScoreCache(path) as cache:  # reopened: the scores were committed
        second = score_texts(scorer, ["bbb", "cccc", "?q", "aa"], cache=cache)
    assert scorer.sent == ["cccc", "?q"]
    np.testing.assert_array_equal(second["len"], [3.0, 4.0, np.nan, 2.0])
    np.testing.assert_array_equal(second["one"], [1.0, 1.0, 1.0, 1.0])


def test_cache_keeps_batches_scored_before_a_crash(tmp_path: Any) -> None:
    path = tmp_path / "cache.sqlite"
    scorer = _Counting()
    with pytest.raises(RuntimeError, match="killed"):
        score_texts(scorer, ["a", "bb", "cc", "boom"], cache=path, batch_size=2)
    with ScoreCache(path) as cache:
        assert cache.lookup("counting", ["a", "bb", "cc", "boom"]) == {
            "a": {"len": 1.0, "one": 1.0},
            "bb": {"len": 2.0, "one": 1.0},
        }
    # and the file is plain SQLite, keyed by (scorer, SHA-256 of the text, name)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT scorer, text_sha256, name, value FROM scores ORDER BY value, name").fetchall()
    assert rows[0] == ("counting", "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", "len", 1.0)
    conn.close()


def test_cache_separates_scorer_identities(tmp_path: Any) -> None:
    path = tmp_path / "cache.sqlite"
    one = LexiconScorer({"bad": 1.0}, name="tox")
    two = LexiconScorer({"bad": 0.5}, name="tox")
    assert one.name != two.name
    assert score_texts(one, ["bad"], cache=path)["tox"].tolist() == [1.0]
    assert score_texts(two, ["bad"], cache=path)["tox"].tolist() == [0.5]
    assert score_texts(one, ["bad"], cache=path)["tox"].tolist() == [1.0]


def test_cache_rejects_a_scorer_whose_names_changed(tmp_path: Any) -> None:
    path = tmp_path / "cache.sqlite"
    score_texts(_fixed({"a": [0.5]}, name="same"), ["x"], cache=path)
    assert {k: v.tolist() for k, v in score_texts(_fixed({"b": [0.5]}, name="same"), ["x"], cache=path).items()} == {
        "a": [0.5]
    }
    with pytest.raises(InvalidInputError, match=r"returned the scores \['b'\]; the cache holds \['a'\].*clear"):
        score_texts(_fixed({"b": [0.5]}, name="same"), ["y"], cache=path)
    with ScoreCache(path) as cache:
        assert cache.clear("same") == 1
        assert cache.names("same") == []


def test_cache_errors(tmp_path: Any) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database file, just some bytes" * 20)
    with pytest.raises(FastprobeIOError, match="is not a fastprobe score cache"):
        ScoreCache(junk)
    cache = ScoreCache(tmp_path / "ok.sqlite")
    cache.close()
    cache.close()
    with pytest.raises(InvalidInputError, match="is closed"):
        cache.names("x")
    with pytest.raises(ArgumentTypeError, match="path must be a str or os.PathLike; got int"):
        ScoreCache(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------------
# offline scorers


def test_lexicon_scorer_mean_and_max() -> None:
    lexicon = {"Awful": 0.9, "bad": 0.5, "don't": 0.25, "good": -0.5}
    mean = LexiconScorer(lexicon, name="neg")
    top = LexiconScorer(lexicon, name="neg", reduce="max")
    texts = ["An AWFUL, bad day.", "I don't know", "good good", "", "?!", "badly_named awful_thing"]
    assert LexiconScorer.tokens("An AWFUL, bad day.") == ["an", "awful", "bad", "day"]
    assert LexiconScorer.tokens("badly_named awful_thing") == ["badly", "named", "awful", "thing"]
    assert mean(texts) == {"neg": [(0.9 + 0.5) / 4, 0.25 / 3, -0.5, 0.0, 0.0, 0.9 / 4]}
    assert top(texts) == {"neg": [0.9, 0.25, -0.5, 0.0, 0.0, 0.9]}
    assert score_texts(mean, texts)["neg"].tolist() == pytest.approx(mean(texts)["neg"])


def test_lexicon_scorer_argument_checks() -> None:
    with pytest.raises(UnknownOptionError, match=r"reduce must be one of \['mean', 'max'\]; got 'sum'"):
        LexiconScorer({"a": 1.0}, reduce="sum")
    with pytest.raises(InvalidInputError, match="lexicon value of 'a' must be a finite number; got nan"):
        LexiconScorer({"a": math.nan})
    with pytest.raises(InvalidInputError, match="different values"):
        LexiconScorer({"Bad": 1.0, "bad": 0.5})
    with pytest.raises(ArgumentTypeError, match="lexicon must be a mapping"):
        LexiconScorer([("a", 1.0)])  # type: ignore[arg-type]


def test_vader_scorer_matches_the_package() -> None:
    vader = pytest.importorskip("vaderSentiment.vaderSentiment")
    texts = ["I love this, it is wonderful!", "This is terrible and I hate it.", "The table is brown."]
    scores = score_texts(VaderScorer(), texts)
    reference = vader.SentimentIntensityAnalyzer()
    for i, text in enumerate(texts):
        expected = reference.polarity_scores(text)
        for name in ("compound", "pos", "neg", "neu"):
            assert scores[name][i] == expected[name]
    assert scores["compound"][0] > 0.5 > -0.5 > scores["compound"][1]
    assert VaderScorer().name.startswith("vader[")


def test_profanity_scorer_matches_the_package() -> None:
    profanity_check = pytest.importorskip("profanity_check")
    texts = ["have a nice day", "you are a fucking idiot"]
    scores = score_texts(ProfanityScorer(), texts)
    np.testing.assert_array_equal(scores["profanity"], profanity_check.predict_prob(texts))
    assert scores["profanity"][1] > 0.5 > scores["profanity"][0]


def test_missing_optional_packages_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)
    with pytest.raises(MissingDependencyError, match=r"VaderScorer needs the vaderSentiment package.*pip install "):
        VaderScorer()
    monkeypatch.setitem(sys.modules, "profanity_check", None)
    with pytest.raises(ImportError, match=r"ProfanityScorer .*'profanity_check'.*pip install alt-profanity-check"):
        ProfanityScorer()
