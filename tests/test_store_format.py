"""An independent reader of the store, written from docs/store-format.md with zstandard and numpy only.

If the document and the Rust writer ever disagree, these tests fail.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import struct
import zlib

import numpy as np
import pytest
import zstandard

from fastprobe import ActivationStore

DTYPE_SIZE = {0: 4, 1: 2, 2: 2}


def unshuffle(raw: bytes, m: int, code: int) -> np.ndarray:
    k = DTYPE_SIZE[code]
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(k, m)
    little_endian = np.ascontiguousarray(planes.T)  # value i = byte i of each plane, in plane order
    if code == 0:
        return little_endian.view("<f4").reshape(m)
    bits = little_endian.view("<u2").reshape(m)
    if code == 1:
        return bits.view("<f2").astype(np.float32)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def parse_record(b: bytes) -> dict:
    assert b[0:4] == b"FPRC"
    version, dtype, codec, site, n, hidden, flags, total = struct.unpack_from("<HBBIIIIQ", b, 4)
    assert (version, codec) == (1, 1) and flags in (0, 1, 2)
    frame_len = struct.unpack_from("<4Q", b, 32)
    frame_crc = struct.unpack_from("<4I", b, 64)
    (meta_crc,) = struct.unpack_from("<I", b, 80)
    meta_end = 88 + 36 * n
    assert zlib.crc32(b[0:80] + b[84:meta_end]) == meta_crc
    keys = [b[88 + 32 * i : 88 + 32 * (i + 1)] for i in range(n)]
    counts = list(struct.unpack_from(f"<{n}I", b, 88 + 32 * n))
    frames = []
    at = meta_end
    for length, crc in zip(frame_len, frame_crc, strict=True):
        frame = b[at : at + length]
        assert zlib.crc32(frame) == crc
        frames.append(frame)
        at += length
    assert at == len(b)
    k = DTYPE_SIZE[dtype]
    m = n * hidden
    high = range(2, 4) if dtype == 0 else range(1, 2)

    def pooled_planes(i: int) -> np.ndarray:
        planes = np.frombuffer(zstandard.ZstdDecompressor().decompress(frames[i], max_output_size=m * k), np.uint8)
        planes = planes.reshape(k, m).copy()
        for p in high:  # sign/exponent planes are stored hidden-major
            planes[p] = planes[p].reshape(hidden, n).T.reshape(m)
        return planes

    kept = 1 if flags == 2 else 3  # last token only: frame 0 alone; otherwise the three pooled frames
    assert all(length == 0 for length in frame_len[kept:3])
    pooled_p = [pooled_planes(i) for i in range(kept)]
    pooled: list[np.ndarray | None] = [unshuffle(p.tobytes(), m, dtype).reshape(n, hidden) for p in pooled_p]
    pooled += [None] * (3 - kept)
    if flags in (1, 2):  # pooled only or last token only: no token frame
        assert frame_len[3] == 0
        return {"site": site, "flags": flags, "keys": keys, "counts": counts, "pooled": pooled, "tokens": None}
    prefix = b"".join(pooled_p[f][p].tobytes() for p in range(k) for f in range(3))
    prefix_dict = zstandard.ZstdCompressionDict(prefix, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    raw = zstandard.ZstdDecompressor(dict_data=prefix_dict).decompress(frames[3], max_output_size=total * hidden * k)
    tokens = unshuffle(raw, total * hidden, dtype).reshape(total, hidden)
    return {"site": site, "flags": flags, "keys": keys, "counts": counts, "pooled": pooled, "tokens": tokens}


def _row(block: np.ndarray | None, row: int) -> np.ndarray | None:
    return None if block is None else block[row]


def read_store(path: pathlib.Path) -> dict[tuple[str, int], dict[str, np.ndarray | None]]:
    """(prompt, site) -> {"tokens", "last_token", "mean", "first_token", "count"} for every current row.

    What a record does not keep is None.
    """
    desc = json.loads((path / "store.json").read_text())
    assert desc["format"] == "fastprobe-store" and desc["version"] in (1, 2, 3)
    min_version = {1: 1, 6: 2, 7: 3}  # the store version that knows each PUT kind
    log = (path / "index.fpi").read_bytes()
    assert log[:8] == b"FPIDX001"
    records: dict[int, tuple] = {}
    records_kind: dict[int, int] = {}
    current: dict[tuple[bytes, int], tuple[int, int]] = {}
    texts: dict[bytes, str] = {}
    at = 16
    while at + 12 <= len(log):
        magic, body_len, crc = log[at : at + 4], *struct.unpack_from("<II", log, at + 4)
        body = log[at + 12 : at + 12 + body_len]
        if magic != b"FPTX" or len(body) != body_len or zlib.crc32(body) != crc:
            break  # an unfinished tail (these tests make no damaged middles)
        at += 12 + body_len
        _seq, n_ops = struct.unpack_from("<QI", body, 0)
        p = 12
        for _ in range(n_ops):
            kind = body[p]
            p += 1
            if kind in (1, 6, 7):
                assert desc["version"] >= min_version[kind], (kind, desc["version"])
                rid, seg, off, length, site, _hidden, _dtype, _total, n = struct.unpack_from("<QIQQIIBQI", body, p)
                p += struct.calcsize("<QIQQIIBQI")
                keys = []
                for _ in range(n):
                    keys.append(body[p : p + 32])
                    p += 36
                records[rid] = (seg, off, length, site, keys)
                assert records_kind.setdefault(rid, kind) == kind
                for row, key in enumerate(keys):
                    current[(key, site)] = (rid, row)
            elif kind == 2:
                (rid,) = struct.unpack_from("<Q", body, p)
                p += 8
                seg, off, length, site, keys = records.pop(rid)
                for key in keys:
                    if current.get((key, site), (None,))[0] == rid:
                        del current[(key, site)]
            elif kind == 3:
                key = body[p : p + 32]
                (length,) = struct.unpack_from("<I", body, p + 32)
                texts[key] = body[p + 36 : p + 36 + length].decode()
                p += 36 + length
            elif kind == 4:
                rid, seg, off = struct.unpack_from("<QIQ", body, p)
                p += 20
                _, _, length, site, keys = records[rid]
                records[rid] = (seg, off, length, site, keys)
            elif kind == 5:
                p += 12
            else:
                raise AssertionError(f"unknown op {kind}")
    out = {}
    for (key, site), (rid, row) in current.items():
        seg, off, length, _, _ = records[rid]
        seg_bytes = (path / "segments" / f"{seg:08d}.fps").read_bytes()
        assert seg_bytes[:8] == b"FPSEG001" and struct.unpack_from("<I", seg_bytes, 8)[0] == seg
        rec = parse_record(seg_bytes[off : off + length])
        assert rec["site"] == site and rec["keys"][row] == key
        assert rec["flags"] == {1: 0, 6: 1, 7: 2}[records_kind[rid]]  # the index and the record agree on the kind
        start = sum(rec["counts"][:row])
        prompt = texts[key]
        assert hashlib.sha256(prompt.encode()).digest() == key
        out[(prompt, site)] = {
            "tokens": None if rec["tokens"] is None else rec["tokens"][start : start + rec["counts"][row]],
            "last_token": _row(rec["pooled"][0], row),
            "mean": _row(rec["pooled"][1], row),
            "first_token": _row(rec["pooled"][2], row),
            "count": np.array(rec["counts"][row]),
        }
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_independent_reader_agrees_with_the_store(tmp_path: pathlib.Path, dtype: str) -> None:
    rng = np.random.default_rng(0)
    store = ActivationStore(tmp_path / "s", dtype=dtype, fingerprint={"model": "m"})
    batches = []
    for b in range(3):
        prompts = [f"batch {b} prompt {i} — ünïcode" for i in range(4)]
        counts = rng.integers(1, 9, size=4)
        tokens = rng.standard_normal((2, counts.sum(), 24)).astype(np.float32) * 3
        store.write(prompts, tokens, counts, sites=[b, 10])
        batches.append((prompts, counts, tokens))
    # Overwrite one prompt at site 10 and evict/compact nothing: the reader must see the newest row.
    prompts, counts, tokens = batches[0]
    store.write(prompts[:1], tokens[:, : counts[0]] + 1, counts[:1], sites=[3, 10])
    # Pooled-only records: new prompts, and one prompt of batch 1 superseded at site 10 without its tokens.
    pooled_only = [f"pooled only {i}" for i in range(3)] + [batches[1][0][0]]
    extra = rng.integers(1, 9, size=4)
    extra[3] = batches[1][1][0]
    pooled_tokens = rng.standard_normal((1, extra.sum(), 24)).astype(np.float32)
    store.write(pooled_only, pooled_tokens, extra, [10], keep_tokens=False)
    store.compact()

    ours = read_store(tmp_path / "s")
    assert len(ours) == len(
        {(p, s) for b, (ps, _, _) in enumerate(batches) for p in ps for s in (b, 10)}
        | {(prompts[0], 3)}
        | {(p, 10) for p in pooled_only}
    )
    for (prompt, site), got in ours.items():
        if (prompt, site) in {(p, 10) for p in pooled_only}:
            assert got["tokens"] is None
        else:
            values, _offsets = store.read_tokens([prompt], [site])
            np.testing.assert_array_equal(got["tokens"], values)
        for pooling in ("last_token", "mean", "first_token"):
            np.testing.assert_array_equal(got[pooling], store.read_pooled([prompt], [site], pooling)[0])
    if dtype == "float32":  # bit-exact against what was written
        ends = np.cumsum(extra)
        for i, prompt in enumerate(pooled_only):
            np.testing.assert_array_equal(ours[(prompt, 10)]["last_token"], pooled_tokens[0, ends[i] - 1])
            np.testing.assert_array_equal(ours[(prompt, 10)]["first_token"], pooled_tokens[0, ends[i] - extra[i]])
        np.testing.assert_array_equal(
            ours[(batches[1][0][2], 10)]["tokens"],
            batches[1][2][1][np.sum(batches[1][1][:2]) : np.sum(batches[1][1][:3])],
        )


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_independent_reader_reads_last_token_only_records(tmp_path: pathlib.Path, dtype: str) -> None:
    rng = np.random.default_rng(1)
    store = ActivationStore(tmp_path / "s", dtype=dtype)
    full = [f"full {i}" for i in range(3)]
    counts = rng.integers(1, 7, size=3)
    tokens = rng.standard_normal((1, counts.sum(), 16)).astype(np.float32)
    store.write(full, tokens, counts, sites=[4])
    assert json.loads((tmp_path / "s" / "store.json").read_text())["version"] == 2
    # Last-token-only records: new prompts at two sites, and one full prompt superseded at site 4.
    pulled = [f"pulled {i}" for i in range(4)] + [full[1]]
    pulled_counts = np.append(rng.integers(1, 9, size=4), counts[1])
    vectors = rng.standard_normal((2, 5, 16)).astype(np.float32) * 5
    store.write_last_token(pulled, vectors, pulled_counts, sites=[4, 7])
    assert json.loads((tmp_path / "s" / "store.json").read_text())["version"] == 3
    # A pooled-only write supersedes one last-token-only row at site 7; the record's other rows stay current.
    refill = rng.standard_normal((1, pulled_counts[0], 16)).astype(np.float32)
    store.write(pulled[:1], refill, pulled_counts[:1], [7], keep_tokens=False)
    store.compact()

    ours = read_store(tmp_path / "s")
    assert set(ours) == {(p, 4) for p in full + pulled} | {(p, 7) for p in pulled}
    listed = {p: t for p, _, t in store.prompts()}
    for (prompt, site), got in ours.items():
        assert int(got["count"]) == listed[prompt]
        np.testing.assert_array_equal(got["last_token"], store.read_pooled([prompt], [site], "last_token")[0])
        last_only = prompt in pulled and not (prompt == pulled[0] and site == 7)
        assert (got["mean"] is None) == last_only and (got["first_token"] is None) == last_only
        assert (got["tokens"] is None) == (prompt in pulled)
        if not last_only:
            np.testing.assert_array_equal(got["mean"], store.read_pooled([prompt], [site], "mean")[0])
    if dtype == "float32":  # bit-exact against what was written
        for i, prompt in enumerate(pulled):
            np.testing.assert_array_equal(ours[(prompt, 4)]["last_token"], vectors[0, i])
            if i:
                np.testing.assert_array_equal(ours[(prompt, 7)]["last_token"], vectors[1, i])
        want_mean = refill[0].astype(np.float64).mean(axis=0).astype(np.float32)  # computed in float64, rounded once
        np.testing.assert_array_equal(ours[(pulled[0], 7)]["mean"], want_mean)
