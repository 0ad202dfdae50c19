"""The activation store from Python: semantics, bad input, damage, concurrency, a full disk, and the cache API."""

from __future__ import annotations

import multiprocessing as mp
import os
import pathlib
import resource
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest
import torch

import fastprobe
from fastprobe import (
    ActivationStore,
    CorruptStoreError,
    FastprobeIOError,
    InvalidInputError,
    MissingActivationsError,
    ShapeMismatchError,
    UnknownOptionError,
)
from fastprobe.store import model_store


def make_batch(seed: int, n: int = 4, hidden: int = 16, sites: int = 2) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, size=n)
    tokens = rng.standard_normal((sites, int(counts.sum()), hidden)).astype(np.float32)
    return [f"prompt {seed}-{i}" for i in range(n)], tokens, counts


def test_round_trip_and_pooled_vectors(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path, dtype="float32")
    prompts, tokens, counts = make_batch(0)
    store.write(prompts, tokens, counts, sites=[4, 9])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    values, got_offsets = store.read_tokens(prompts[::-1], [9, 4])
    order = list(range(len(prompts)))[::-1]
    np.testing.assert_array_equal(got_offsets, np.concatenate([[0], np.cumsum(counts[order])]))
    want = np.concatenate(
        [np.hstack([tokens[1, offsets[i] : offsets[i + 1]], tokens[0, offsets[i] : offsets[i + 1]]]) for i in order]
    )
    np.testing.assert_array_equal(values, want)
    for pooling, ref in [
        ("last_token", lambda b: b[-1]),
        ("first_token", lambda b: b[0]),
        ("max", lambda b: b.max(0)),
        ("min", lambda b: b.min(0)),
    ]:
        got = store.read_pooled(prompts, [4], pooling)
        np.testing.assert_array_equal(got, np.stack([ref(tokens[0, offsets[i] : offsets[i + 1]]) for i in range(4)]))
    mean = store.read_pooled(prompts, [4, 9], "mean")
    ref = np.stack(
        [
            np.hstack([tokens[s, offsets[i] : offsets[i + 1]].astype(np.float64).mean(0) for s in (0, 1)])
            for i in range(4)
        ]
    )
    np.testing.assert_allclose(mean, ref, rtol=1e-6)
    assert store.contains([*prompts, "other"], [4, 9]).tolist() == [True] * 4 + [False]
    assert store.prompts()[0] == (prompts[0], [4, 9], int(counts[0]))
    assert store.verify() == []


def test_bfloat16_storage_matches_torch_rounding(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path)  # bfloat16 by default
    assert store.dtype == "bfloat16"
    prompts, tokens, counts = make_batch(1)
    store.write(prompts, tokens, counts, sites=[0, 1])
    values, _ = store.read_tokens(prompts, [0])
    np.testing.assert_array_equal(values, torch.from_numpy(tokens[0]).bfloat16().float().numpy())


@pytest.mark.parametrize("side", ["left", "right"])
def test_write_padded_drops_padding(tmp_path: pathlib.Path, side: str) -> None:
    store = ActivationStore(tmp_path, dtype="float32")
    lengths = [3, 1, 5]
    mask = np.zeros((3, 5), dtype=np.int64)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    if side == "left":
        mask = mask[:, ::-1].copy()
    hidden = torch.randn(3, 5, 8)
    store.write_padded(["a", "b", "c"], [hidden, hidden * 2], torch.from_numpy(mask), sites=[0, 1])
    firsts = store.read_pooled(["a", "b", "c"], [0], "first_token")
    real_first = [int(np.argmax(m)) for m in mask]
    np.testing.assert_array_equal(firsts, hidden.numpy()[np.arange(3), real_first])
    assert [p[2] for p in store.prompts()] == lengths


def test_bad_input_names_what_was_expected(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path)
    prompts, tokens, counts = make_batch(2)
    with pytest.raises(ShapeMismatchError, match=r"tokens: expected one slab per site \(3\), got shape \(2, "):
        store.write(prompts, tokens, counts, sites=[0, 1, 2])
    with pytest.raises(ShapeMismatchError, match=r"counts: expected shape \(4,\) \(one per prompt\), got \(3,\)"):
        store.write(prompts, tokens, counts[:3], sites=[0, 1])
    with pytest.raises(
        ShapeMismatchError, match=r"tokens: expected shape \(\d+, hidden\) \(the sum of the token counts\)"
    ):
        store.write(prompts, tokens[:, 1:], counts, sites=[0, 1])
    with pytest.raises(InvalidInputError, match="prompt 1 has 0 tokens"):
        store.write(prompts, tokens, np.r_[counts[0] + counts[1], 0, counts[2:]], sites=[0, 1])
    with pytest.raises(InvalidInputError, match="cannot write an empty batch"):
        store.write([], np.zeros((1, 0, 4), np.float32), [], sites=[0])
    with pytest.raises(
        UnknownOptionError, match="unknown storage dtype 'int8'; expected one of: float32, float16, bfloat16"
    ):
        ActivationStore(tmp_path / "x", dtype="int8")
    store.write(prompts, tokens, counts, sites=[0, 1])
    with pytest.raises(MissingActivationsError, match=r'prompt "nope" has no stored activations at site 0') as info:
        store.read_pooled(["nope"], [0])
    assert isinstance(info.value, KeyError)
    with pytest.raises(MissingActivationsError, match="at site 5"):
        store.read_tokens(prompts, [5])
    other, t2, c2 = make_batch(3, hidden=8)
    store.write(other, t2, c2, sites=[0, 1])
    with pytest.raises(ShapeMismatchError, match="hidden size 16 at every site.*got hidden size 8"):
        store.read_pooled([prompts[0], other[0]], [0])


def last_tokens(tokens: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The last-token vectors of ``make_batch``'s tokens: (sites, n, hidden)."""
    return tokens[:, np.cumsum(counts) - 1]


def store_version(path: pathlib.Path) -> int:
    import json

    return int(json.loads((path / "store.json").read_text())["version"])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_last_token_records_serve_last_token_reads_only(tmp_path: pathlib.Path, dtype: str) -> None:
    store = ActivationStore(tmp_path, dtype=dtype)
    full, tokens, counts = make_batch(10)
    store.write(full, tokens, counts, sites=[4, 9])
    assert store_version(tmp_path) == 2
    pulled, other, pulled_counts = make_batch(11, n=3)
    vectors = last_tokens(other, pulled_counts)
    store.write_last_token(pulled, torch.from_numpy(vectors), pulled_counts, sites=[4, 9])
    assert store_version(tmp_path) == 3  # older readers refuse the store rather than misread it
    # Bit-exact in float32; rounded as torch rounds to half otherwise. Full records and last-token ones mix.
    want = torch.from_numpy(np.hstack([vectors[0], vectors[1]]))
    want = want.numpy() if dtype == "float32" else want.half().float().numpy()
    got = store.read_pooled([full[0], *pulled], [4, 9], "last_token")
    np.testing.assert_array_equal(got[1:], want)
    np.testing.assert_array_equal(got[0], store.read_pooled(full[:1], [4, 9])[0])
    # Presence answers for what the caller reads; None keeps its meaning (the three pooled vectors).
    both = [full[0], *pulled]
    for pooling, present in [
        (None, [True, False, False, False]),
        ("last_token", [True] * 4),
        (["last_token"], [True] * 4),
        ([], [True] * 4),
        ("mean", [True, False, False, False]),
        ("first_token", [True, False, False, False]),
        (["last_token", "mean"], [True, False, False, False]),
        ("max", [True, False, False, False]),
        ("score:last_token", [True, False, False, False]),
        ("all", [True, False, False, False]),
    ]:
        assert store.contains(both, [4, 9], pooling=pooling).tolist() == present, pooling
    assert store.contains(both, [4], tokens=True, pooling="last_token").tolist() == [True, False, False, False]
    with pytest.raises(UnknownOptionError, match="Unknown pooling strategy"):
        store.contains(both, [4], pooling="median")
    # Every other read names the prompt, the site and what the record lacks.
    lacks = r'prompt "prompt 11-1" is stored at site 9 as its last-token vector only'
    for pooling, what in [
        ("mean", "its mean vector, which this read needs, was not kept"),
        ("first_token", "its first_token vector"),
        ("max", "its tokens, which this read needs, were not kept"),
        ("min", "its tokens"),
    ]:
        with pytest.raises(MissingActivationsError, match=lacks + ".*" + what):
            store.read_pooled(pulled[1:2], [9], pooling)
    with pytest.raises(MissingActivationsError, match=lacks + ".*its tokens"):
        store.read_tokens(pulled[1:2], [9])
    # Listings keep the token counts; the numbers count the new record; the store verifies.
    listed = {p: (s, t) for p, s, t in store.prompts()}
    assert listed == {
        p: ([4, 9], int(c)) for p, c in [*zip(full, counts, strict=True), *zip(pulled, pulled_counts, strict=True)]
    }
    stats = store.stats()
    assert (stats["records"], stats["prompts"], stats["sites"]) == (4, 7, [4, 9])
    assert store.verify() == []
    reopened = ActivationStore(tmp_path)
    np.testing.assert_array_equal(reopened.read_pooled(pulled, [4, 9]), got[1:])


def test_fuller_writes_supersede_last_token_records_and_compaction_keeps_them(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path, dtype="float32")
    prompts, tokens, counts = make_batch(12, n=6)
    vectors = last_tokens(tokens, counts)
    store.write_last_token(prompts, vectors, counts, sites=[0, 1])
    # A pooled-only write of two prompts and a full write of two others, at site 0; site 1 stays last-token-only.
    ends = np.concatenate([[0], np.cumsum(counts)])
    store.write(prompts[:2], tokens[:1, : ends[2]], counts[:2], sites=[0], keep_tokens=False)
    store.write(prompts[2:4], tokens[:1, ends[2] : ends[4]], counts[2:4], sites=[0])
    assert store.contains(prompts, [0], pooling="mean").tolist() == [True] * 4 + [False] * 2
    assert store.contains(prompts, [0], tokens=True).tolist() == [False, False, True, True, False, False]
    assert store.contains(prompts, [0, 1], pooling="last_token").all()
    assert not store.contains(prompts, [1], pooling="mean").any()
    mean = store.read_pooled(prompts[:4], [0], "mean")
    want = [tokens[0, ends[i] : ends[i + 1]].astype(np.float64).mean(0).astype(np.float32) for i in range(4)]
    np.testing.assert_array_equal(mean, np.stack(want))
    # The last-token vectors read the same from every kind of record.
    np.testing.assert_array_equal(store.read_pooled(prompts, [0, 1]), np.hstack([vectors[0], vectors[1]]))
    # Compaction rewrites the partly superseded record; the kinds survive, and the prompts' texts.
    before = store.stats()
    assert before["records"] == 4
    store.compact()
    after = store.stats()
    assert after["records"] == 4 and after["live_bytes"] == before["live_bytes"]
    assert store.verify() == []
    reopened = ActivationStore(tmp_path)
    assert reopened.contains(prompts, [0], pooling="mean").tolist() == [True] * 4 + [False] * 2
    assert not reopened.contains(prompts, [1], pooling="first_token").any()
    np.testing.assert_array_equal(reopened.read_pooled(prompts, [0, 1]), np.hstack([vectors[0], vectors[1]]))
    assert [p for p, _, _ in reopened.prompts()] == sorted(prompts)
    # Superseding the last rows of the last-token record at site 0 kills it: one record more, one less.
    store.write(prompts[4:], tokens[:1, ends[4] :], counts[4:], sites=[0])
    assert (
        store.stats()["records"] == 4 and store.contains(prompts, [0], tokens=True).tolist() == [False] * 2 + [True] * 4
    )
    assert store.verify() == []


def test_last_token_records_are_evicted_least_recently_used_first(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path, dtype="float32")
    batches = []
    for seed in range(6):
        prompts, tokens, counts = make_batch(20 + seed, n=32, hidden=256, sites=1)
        store.write_last_token(prompts, last_tokens(tokens, counts), counts, sites=[0])
        batches.append(prompts)
    reader = ActivationStore(tmp_path)
    reader.read_pooled(batches[0], [0])  # the oldest batch, read last: the most recently used
    full = store.stats()["disk_bytes"]
    store.evict(full // 2)
    assert store.stats()["disk_bytes"] <= full // 2
    assert store.contains(batches[0], [0], pooling="last_token").all()
    assert not store.contains(batches[1], [0], pooling="last_token").any()
    assert store.verify() == [] and reader.verify() == []


def test_write_last_token_checks_its_input(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path)
    prompts, tokens, counts = make_batch(13)
    vectors = last_tokens(tokens, counts)
    with pytest.raises(ShapeMismatchError, match="vectors"):
        store.write_last_token(prompts, vectors[0], counts, sites=[0])
    with pytest.raises(ShapeMismatchError, match=r"n_sites=3, n_prompts=4, hidden\), one slab per site; got \(2, 4"):
        store.write_last_token(prompts, vectors, counts, sites=[0, 1, 2])
    with pytest.raises(ShapeMismatchError, match=r"n_sites=2, n_prompts=3, hidden\), one row per prompt; got \(2, 4"):
        store.write_last_token(prompts[:3], vectors, counts, sites=[0, 1])
    with pytest.raises(ShapeMismatchError, match=r"counts: expected shape \(4,\), one per prompt; got \(3,\)"):
        store.write_last_token(prompts, vectors, counts[:3], sites=[0, 1])
    with pytest.raises(InvalidInputError, match=r"counts\[2\] is 0; every stored prompt needs at least 1 token"):
        store.write_last_token(prompts, vectors, np.r_[counts[:2], 0, counts[3:]], sites=[0, 1])
    with pytest.raises(InvalidInputError, match="site 0 appears twice in one write"):
        store.write_last_token(prompts, vectors, counts, sites=[0, 0])
    with pytest.raises(InvalidInputError, match="cannot write an empty batch"):
        store.write_last_token([], np.zeros((1, 0, 4), np.float32), [], sites=[0])
    assert store.stats()["records"] == 0 and store_version(tmp_path) == 2  # nothing of a refused batch


def segment_files(path: pathlib.Path) -> list[pathlib.Path]:
    return sorted((path / "segments").glob("*.fps"))


def test_flipped_bits_name_the_record_and_spare_the_rest(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path, dtype="float32")
    batches = [make_batch(s) for s in range(3)]
    for prompts, tokens, counts in batches:
        store.write(prompts, tokens, counts, sites=[0, 1])
    seg = segment_files(tmp_path)[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x04  # somewhere inside the middle batch's records
    seg.write_bytes(bytes(data))
    fresh = ActivationStore(tmp_path)
    problems = fresh.verify()
    assert len(problems) == 1, problems
    assert "corrupt store data" in problems[0] and "00000001.fps at byte" in problems[0] and "record " in problems[0]
    damaged = [b for b in batches if any("prompt " + b[0][0].split(" ")[1] in p for p in problems)]
    assert len(damaged) == 1
    with pytest.raises(CorruptStoreError, match=r"record \d+ \(site \d, 4 prompts, first \"prompt"):
        for site in (0, 1):
            fresh.read_tokens(damaged[0][0], [site])
    for prompts, tokens, _counts in batches:
        if prompts is damaged[0][0]:
            continue
        values, _ = fresh.read_tokens(prompts, [0, 1])
        np.testing.assert_array_equal(values[:, :16], tokens[0])


def test_truncated_segment_is_reported(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path)
    for s in range(2):
        prompts, tokens, counts = make_batch(s, sites=1)
        store.write(prompts, tokens, counts, sites=[0])
    seg = segment_files(tmp_path)[0]
    size = seg.stat().st_size
    os.truncate(seg, size - 100)
    fresh = ActivationStore(tmp_path)
    problems = fresh.verify()
    assert len(problems) == 1 and "truncated segment" in problems[0]
    first, _, _ = make_batch(0)
    assert fresh.read_pooled(first, [0]).shape == (4, 16)  # the first batch is intact


def test_damaged_index_transaction_is_skipped_and_reported(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path)
    batches = [make_batch(s, sites=1) for s in range(3)]
    for prompts, tokens, counts in batches:
        store.write(prompts, tokens, counts, sites=[0])
    index = tmp_path / "index.fpi"
    log = bytearray(index.read_bytes())
    second_tx = log.index(b"FPTX", log.index(b"FPTX") + 4)
    log[second_tx + 30] ^= 0xFF
    index.write_bytes(bytes(log))
    fresh = ActivationStore(tmp_path)
    assert any("index transaction at byte" in p for p in fresh.verify())
    assert fresh.contains(batches[0][0], [0]).all() and fresh.contains(batches[2][0], [0]).all()
    assert not fresh.contains(batches[1][0], [0]).any()


def _writer(path: str, worker: int, n: int, go: Any, readers_saw: list[Any]) -> None:
    store = ActivationStore(path, dtype="float32")
    go.wait(timeout=120)
    for b in range(n):
        prompts, tokens, counts = make_batch(1000 * worker + b)
        store.write(prompts, tokens, counts, sites=[0, 1])
        if b == 0:
            # Hold on after the first commit until every reader has read a writer's records (or give up after a
            # while, which the test then reports): readers are sure to read while this writer is still writing.
            for saw in readers_saw:
                saw.wait(timeout=120)


def _check_record(store: ActivationStore, prompt: str, sites: list[int]) -> int:
    """Check one record against the batch it came from; return the batch's seed."""
    values, _ = store.read_tokens([prompt], sites)
    seed = int(prompt.split(" ")[1].split("-")[0])
    prompts, tokens, counts = make_batch(seed)
    i = prompts.index(prompt)
    lo, hi = int(counts[:i].sum()), int(counts[: i + 1].sum())
    np.testing.assert_array_equal(values, np.hstack([tokens[0, lo:hi], tokens[1, lo:hi]]))
    return seed


def _reader(path: str, ready: Any, saw: Any, writers_done: Any, queue: mp.Queue) -> None:
    """Read and check every listed record, pass after pass, until the writers are done; report how many writers'
    records were read in passes that ended before the writers were done, and how many records a last pass found."""
    store = ActivationStore(path)
    ready.set()
    read_while_writing = 0
    deadline = time.monotonic() + 240
    try:
        while not writers_done.is_set() and time.monotonic() < deadline:
            seeds = [_check_record(store, prompt, sites) for prompt, sites, _ in store.prompts()]
            from_writers = sum(seed >= 1000 for seed in seeds)
            if from_writers and not writers_done.is_set():  # the whole pass ran before the writers were done
                read_while_writing += from_writers
                saw.set()
    finally:
        saw.set()  # a reader that failed does not keep the writers waiting
    final = store.prompts()
    for prompt, sites, _ in final:
        _check_record(store, prompt, sites)
    queue.put((read_while_writing, len(final)))


def test_two_writers_and_two_readers_at_once(tmp_path: pathlib.Path) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    ActivationStore(tmp_path, dtype="float32")
    go, writers_done = ctx.Event(), ctx.Event()
    ready, saw = [ctx.Event(), ctx.Event()], [ctx.Event(), ctx.Event()]
    readers = [ctx.Process(target=_reader, args=(str(tmp_path), ready[r], saw[r], writers_done, queue)) for r in (0, 1)]
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), w, 15, go, saw)) for w in (1, 2)]
    for p in readers + writers:
        p.start()
    try:
        assert all(r.wait(timeout=120) for r in ready), "a reader did not start"
        go.set()  # the writers commit only once both readers are reading
        for p in writers:
            p.join(timeout=240)
            assert p.exitcode == 0, f"a writer failed or hung (exit code {p.exitcode})"
    finally:
        go.set()
        writers_done.set()
    for p in readers:
        p.join(timeout=240)
        assert p.exitcode == 0, f"a reader failed or hung (exit code {p.exitcode})"
    results = [queue.get(timeout=5) for _ in readers]
    for read_while_writing, final in results:
        assert read_while_writing > 0, "a reader never read a writer's records while the writers were writing"
        assert final == 2 * 15 * 4, "a reader's open store did not see every commit"
    store = ActivationStore(tmp_path)
    assert store.stats()["prompts"] == 2 * 15 * 4
    assert store.verify() == []


def test_full_disk_gives_a_clear_error_and_a_consistent_store(tmp_path: pathlib.Path) -> None:
    store = ActivationStore(tmp_path, dtype="float32")
    first, tokens, counts = make_batch(0)
    store.write(first, tokens, counts, sites=[0, 1])
    script = textwrap.dedent(
        f"""
        import signal, numpy as np
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from fastprobe import ActivationStore, FastprobeIOError
        store = ActivationStore({str(tmp_path)!r})
        rng = np.random.default_rng(0)
        try:
            for b in range(1000):
                tokens = rng.standard_normal((2, 400, 256)).astype(np.float32)
                store.write([f"big {{b}}-{{i}}" for i in range(4)], tokens, [100] * 4, sites=[0, 1])
        except FastprobeIOError as e:
            print("IOERROR", e.errno if e.errno is not None else "", e)
        else:
            print("NO ERROR")
        """
    )
    limit = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) + 3_000_000

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, preexec_fn=cap, timeout=120)
    assert "IOERROR" in out.stdout, out.stdout + out.stderr
    assert "File too large" in out.stdout
    fresh = ActivationStore(tmp_path)
    assert fresh.verify() == []
    values, _ = fresh.read_tokens(first, [0])
    np.testing.assert_array_equal(values, tokens[0])
    # Every batch the child saw committed is whole; writing works again once space is back.
    for prompt, sites, _ in fresh.prompts():
        assert sites == [0, 1], prompt
    fresh.write(*make_batch(5)[:1], make_batch(5)[1], make_batch(5)[2], sites=[0, 1])
    assert fresh.verify() == []


def test_kill_during_python_write_keeps_the_store_consistent(tmp_path: pathlib.Path) -> None:
    ActivationStore(tmp_path, dtype="float32")
    reported = 3  # the child says when each of its first batches has committed, then writes on silently
    script = textwrap.dedent(
        f"""
        import numpy as np
        from fastprobe import ActivationStore
        store = ActivationStore({str(tmp_path)!r})
        rng = np.random.default_rng(0)
        for b in range(100000):
            tokens = rng.standard_normal((3, 200, 128)).astype(np.float32)
            store.write([f"k {{b}}-{{i}}" for i in range(4)], tokens, [50] * 4, sites=[0, 1, 2])
            if b < {reported}:
                print("committed", b + 1, flush=True)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for b in range(reported):
            assert proc.stdout.readline().split() == ["committed", str(b + 1)], "the child failed before committing"
        time.sleep(0.2)  # let it go on writing, so that the kill lands in the middle of a later batch
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = ActivationStore(tmp_path)
    assert store.verify() == []
    present = store.prompts()
    assert len(present) >= 4 * reported, "the batches the child reported committed are gone"
    assert all(sites == [0, 1, 2] for _, sites, _ in present)
    rng = np.random.default_rng(0)  # the child's first batches, as it drew them
    for b in range(reported):
        tokens = rng.standard_normal((3, 200, 128)).astype(np.float32)
        values, offsets = store.read_tokens([f"k {b}-{i}" for i in range(4)], [0, 1, 2])
        np.testing.assert_array_equal(offsets, [0, 50, 100, 150, 200])
        np.testing.assert_array_equal(values, np.hstack([tokens[0], tokens[1], tokens[2]]))


def test_cache_functions_and_environment(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMPROBE_CACHE_DIR", str(tmp_path / "lm"))
    monkeypatch.delenv("FASTPROBE_CACHE_DIR", raising=False)
    fastprobe.set_cache_backend(None)
    assert fastprobe.store.cache_dir() == tmp_path / "lm"  # falls back to the LMPROBE_ name
    monkeypatch.setenv("FASTPROBE_CACHE_DIR", str(tmp_path / "fp"))
    assert fastprobe.store.cache_dir() == tmp_path / "fp"
    fastprobe.set_cache_backend(tmp_path / "explicit")
    try:
        assert fastprobe.store.cache_dir() == tmp_path / "explicit"
        fastprobe.set_cache_dtype("float16")
        fp = {"model": "tiny-model", "revision": "abc", "dtype": "float32", "site": "residual"}
        store = model_store(fp)
        assert store.dtype == "float16" and store.fingerprint == fp
        assert model_store({**fp, "dtype": "bfloat16"}).path != store.path, "dtype is part of the key"
        for seed in range(6):
            prompts, tokens, counts = make_batch(seed, hidden=256)
            store.write(prompts, tokens, counts, sites=[0, 1])
        info = fastprobe.cache_info()
        assert info.cache_dir == tmp_path / "explicit"
        mine = next(m for m in info.models if m.model_hash == store.path.name)
        assert (mine.model_name, mine.num_prompts, mine.num_layers) == ("tiny-model", 24, 2)
        assert mine.size_bytes == store.stats()["disk_bytes"] > 0
        entries = fastprobe.list_cached_prompts("tiny-model")
        assert len(entries) == 24 and entries[0].prompt == "prompt 0-0" and entries[0].num_tokens is not None
        found = fastprobe.discover_cached("tiny-model", "prompt 1-2")
        assert found is not None and found.raw_layers == [0, 1] and found.pooled["mean"] == [0, 1]
        assert fastprobe.discover_cached("tiny-model", "never seen") is None
        fastprobe.set_cache_limit(info.total_size_bytes / 2 / 1024**3)
        fastprobe.evict()
        after = fastprobe.cache_info()
        assert after.total_size_bytes <= info.total_size_bytes / 2
        assert after.cache_limit_bytes == int(info.total_size_bytes / 2)
        assert 0 < fastprobe.clear_cache() < 24
        assert fastprobe.cache_info().models == []
        with pytest.raises(UnknownOptionError, match="Unknown dtype .fp8. for the cache"):
            fastprobe.set_cache_dtype("fp8")
        with pytest.raises(InvalidInputError, match="non-negative number of gigabytes"):
            fastprobe.set_cache_limit(-1)
    finally:
        fastprobe.set_cache_backend(None)
        fastprobe.set_cache_dtype(None)
        fastprobe.set_cache_limit(None)


def test_io_errors_are_oserrors(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(FastprobeIOError) as info:
        ActivationStore(blocker / "store")
    assert isinstance(info.value, OSError) and "file" in str(info.value)
