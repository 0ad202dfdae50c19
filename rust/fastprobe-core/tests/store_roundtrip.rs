//! The store through its public API: round trips, reopening, overwrites, leftovers of a killed writer.
#![allow(clippy::float_cmp)]

use std::fs::OpenOptions;
use std::io::Write;

use fastprobe_core::Pooling;
use fastprobe_core::store::{Content, INDEX_FILE, StorageDtype, Store};
use ndarray::{Array2, s};

fn batch(prompts: &[&str], h: usize, seed: f32) -> (Vec<String>, Vec<u32>, Array2<f32>) {
    let counts: Vec<u32> = prompts.iter().map(|p| p.len() as u32 % 5 + 1).collect();
    let total: u32 = counts.iter().sum();
    let tokens = Array2::from_shape_fn((total as usize, h), |(i, j)| seed + (i * h + j) as f32 * 0.37 - 11.0);
    (prompts.iter().map(|p| (*p).to_owned()).collect(), counts, tokens)
}

#[test]
fn float32_round_trip_is_bit_exact_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (prompts, counts, t0) = batch(&["alpha", "be", "gamma ray"], 6, 0.0);
    let t1 = t0.mapv(|v| v * -2.0);
    {
        let store = Store::open(dir.path(), StorageDtype::Float32, "{\"model\": \"m\"}").unwrap();
        store.write(&prompts, &counts, &[0, 5], &[t0.view(), t1.view()], None, true).unwrap();
    }
    let store = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    assert_eq!(store.dtype(), StorageDtype::Float32, "the dtype recorded at creation wins");
    let (values, offsets) = store.read_tokens(&prompts, &[0, 5]).unwrap();
    assert_eq!(offsets, vec![0, 1, 4, 9]);
    assert_eq!(values.slice(s![.., 0..6]), t0);
    assert_eq!(values.slice(s![.., 6..12]), t1);
    let last = store.read_pooled(&prompts, &[5], Pooling::LastToken).unwrap();
    for (i, end) in offsets[1..].iter().enumerate() {
        assert_eq!(last.row(i), t1.row(end - 1));
    }
    let max = store.read_pooled(&prompts[2..], &[0], Pooling::Max).unwrap();
    assert_eq!(max.row(0), t0.slice(s![4..9, ..]).fold_axis(ndarray::Axis(0), f32::MIN, |a, b| a.max(*b)));
    assert_eq!(store.contains(&prompts, &[0, 5], Content::Pooled).unwrap(), vec![true; 3]);
    assert_eq!(store.contains(&prompts, &[0, 1], Content::Pooled).unwrap(), vec![false; 3]);
    let listed = store.prompts().unwrap();
    assert_eq!(listed[0], ("alpha".to_owned(), vec![0, 5], 1));
}

#[test]
fn newer_write_of_a_prompt_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    let (p, c, t) = batch(&["x", "y"], 3, 0.0);
    store.write(&p, &c, &[1], &[t.view()], None, true).unwrap();
    let (p2, c2, t2) = batch(&["y"], 3, 100.0);
    store.write(&p2, &c2, &[1], &[t2.view()], None, true).unwrap();
    let (values, _) = store.read_tokens(&p2, &[1]).unwrap();
    assert_eq!(values, t2);
    assert_eq!(store.stats().unwrap().records, 2);
}

#[test]
fn pooled_only_records_serve_pooled_reads_and_are_superseded_by_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    let (p, c, t) = batch(&["north", "south wind", "e"], 5, 0.0);
    store.write(&p, &c, &[2], &[t.view()], None, true).unwrap();
    let (q, d, u) = batch(&["west", "up"], 5, 3.0);
    let before = store.stats().unwrap().live_bytes;
    store.write(&q, &d, &[9], &[u.view()], None, true).unwrap();
    let full = store.stats().unwrap().live_bytes - before;
    store.write(&q, &d, &[2], &[u.view()], None, false).unwrap();
    let pooled = store.stats().unwrap().live_bytes - before - full;
    assert!(pooled < full, "a pooled-only record ({pooled} bytes) is smaller than a full one ({full} bytes)");
    // Pooled reads mix both kinds of record; the pooled-only rows are the same vectors a full record keeps.
    let both: Vec<String> = [&p[..], &q[..]].concat();
    let last = store.read_pooled(&both, &[2], Pooling::LastToken).unwrap();
    assert_eq!(last.row(4), u.row(u.nrows() - 1));
    let mean = store.read_pooled(&q[1..], &[2], Pooling::Mean).unwrap();
    assert_eq!(mean.row(0), u.slice(s![d[0] as usize.., ..]).mean_axis(ndarray::Axis(0)).unwrap());
    assert_eq!(store.contains(&both, &[2], Content::Pooled).unwrap(), vec![true; 5]);
    assert_eq!(store.contains(&both, &[2], Content::Tokens).unwrap(), vec![true, true, true, false, false]);
    // Reads that need the tokens name the prompt and why.
    for err in [store.read_tokens(&q, &[2]).unwrap_err(), store.read_pooled(&q, &[2], Pooling::Max).unwrap_err()] {
        assert!(matches!(err, fastprobe_core::Error::Missing(_)), "{err:?}");
        assert!(err.to_string().contains("\"west\" is stored at site 2 as pooled vectors only"), "{err}");
    }
    // The store is version 2 now, survives a reopen and verifies; a full write of the same prompts supersedes.
    let desc = std::fs::read_to_string(dir.path().join("store.json")).unwrap();
    assert!(desc.contains("\"version\": 2"), "{desc}");
    let reopened = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    assert!(reopened.verify().unwrap().is_empty());
    assert!(!reopened.contains(&q, &[2], Content::Tokens).unwrap()[0]);
    reopened.write(&q, &d, &[2], &[u.view()], None, true).unwrap();
    assert_eq!(reopened.read_tokens(&q, &[2]).unwrap().0, u);
    reopened.compact().unwrap();
    assert_eq!(reopened.stats().unwrap().records, 3);
}

#[test]
fn a_version_1_store_is_read_and_upgraded_by_its_first_pooled_only_write() {
    let dir = tempfile::tempdir().unwrap();
    let (p, c, t) = batch(&["old"], 3, 0.0);
    Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap().write(&p, &c, &[0], &[t.view()], None, true).unwrap();
    let desc_path = dir.path().join("store.json");
    let v1 = std::fs::read_to_string(&desc_path).unwrap().replace("\"version\": 2", "\"version\": 1");
    std::fs::write(&desc_path, &v1).unwrap();
    let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    assert_eq!(store.read_tokens(&p, &[0]).unwrap().0, t);
    store.write(&p, &c, &[0], &[t.view()], None, true).unwrap();
    assert_eq!(std::fs::read_to_string(&desc_path).unwrap(), v1, "a full write leaves a version 1 store as it is");
    store.write(&p, &c, &[1], &[t.view()], None, false).unwrap();
    assert!(std::fs::read_to_string(&desc_path).unwrap().contains("\"version\": 2"));
    std::fs::write(&desc_path, v1.replace("\"version\": 1", "\"version\": 4")).unwrap();
    let Err(err) = Store::open(dir.path(), StorageDtype::Float32, "{}") else { panic!("version 4 opened") };
    let err = err.to_string();
    assert!(err.contains("store format version 4, this build reads versions 1 to 3"), "{err}");
}

/// Last-token vectors of `tokens` (as `batch` makes them): the last row of each prompt.
fn last_of(tokens: &Array2<f32>, counts: &[u32]) -> Array2<f32> {
    let ends: Vec<usize> = counts
        .iter()
        .scan(0usize, |end, &c| {
            *end += c as usize;
            Some(*end - 1)
        })
        .collect();
    tokens.select(ndarray::Axis(0), &ends)
}

#[test]
fn last_token_records_serve_last_token_reads_only_and_are_superseded_by_fuller_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    let (p, c, t) = batch(&["north", "south wind", "e"], 5, 0.0);
    store.write(&p, &c, &[2], &[t.view()], None, true).unwrap();
    let (q, d, u) = batch(&["west", "up wards"], 5, 3.0);
    let last = last_of(&u, &d);
    let before = store.stats().unwrap().live_bytes;
    store.write_last_token(&q, &d, &[2, 4], &[last.view(), last.view()], None).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.records, stats.prompts, stats.sites.clone()), (3, 5, vec![2, 4]));
    assert!(stats.live_bytes > before);
    // Last-token reads mix both kinds of record, bit-exactly; the token counts come along.
    let both: Vec<String> = [&p[..], &q[..]].concat();
    let mixed = store.read_pooled(&both, &[2], Pooling::LastToken).unwrap();
    assert_eq!(mixed.slice(s![..3, ..]), last_of(&t, &c));
    assert_eq!(mixed.slice(s![3.., ..]), last);
    let got = store.read_pooled(&q, &[2, 4], Pooling::LastToken).unwrap();
    assert_eq!(got.slice(s![.., 0..5]), last);
    assert_eq!(got.slice(s![.., 5..10]), last);
    let listed = store.prompts().unwrap();
    assert!(listed.contains(&("up wards".to_owned(), vec![2, 4], d[1])), "{listed:?}");
    // Presence depends on what the caller reads.
    assert_eq!(store.contains(&both, &[2], Content::LastToken).unwrap(), vec![true; 5]);
    assert_eq!(store.contains(&both, &[2], Content::Pooled).unwrap(), vec![true, true, true, false, false]);
    assert_eq!(store.contains(&both, &[2], Content::Tokens).unwrap(), vec![true, true, true, false, false]);
    // Every other read names the prompt and what the record lacks.
    for (err, lacks) in [
        (
            store.read_pooled(&q, &[2], Pooling::Mean).unwrap_err(),
            "its mean vector, which this read needs, was not kept",
        ),
        (store.read_pooled(&q, &[4], Pooling::FirstToken).unwrap_err(), "its first_token vector, which"),
        (store.read_pooled(&q, &[2], Pooling::Max).unwrap_err(), "its tokens, which this read needs, were not kept"),
        (store.read_tokens(&both, &[2]).unwrap_err(), "its tokens"),
    ] {
        assert!(matches!(err, fastprobe_core::Error::Missing(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("\"west\" is stored at site") && msg.contains("as its last-token vector only"), "{msg}");
        assert!(msg.contains(lacks), "{msg}");
    }
    assert!(store.verify().unwrap().is_empty());
    // A pooled-only write supersedes at site 2, a full write at site 4; the last-token vectors stay the same.
    let reopened = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    reopened.write(&q, &d, &[2], &[u.view()], None, false).unwrap();
    reopened.write(&q[..1], &d[..1], &[4], &[u.slice(s![..d[0] as usize, ..])], None, true).unwrap();
    assert_eq!(reopened.contains(&q, &[2], Content::Pooled).unwrap(), vec![true, true]);
    assert_eq!(reopened.contains(&q, &[4], Content::Tokens).unwrap(), vec![true, false]);
    assert_eq!(reopened.contains(&q, &[4], Content::LastToken).unwrap(), vec![true, true]);
    let mean = reopened.read_pooled(&q[1..], &[2], Pooling::Mean).unwrap();
    assert_eq!(mean.row(0), u.slice(s![d[0] as usize.., ..]).mean_axis(ndarray::Axis(0)).unwrap());
    assert_eq!(reopened.read_pooled(&q, &[2, 4], Pooling::LastToken).unwrap(), got);
    // A last-token write after a fuller one supersedes it in turn (the newest write wins, as for every kind).
    reopened.write_last_token(&q[..1], &d[..1], &[2], &[last.slice(s![..1, ..])], None).unwrap();
    assert_eq!(reopened.contains(&q, &[2], Content::Pooled).unwrap(), vec![false, true]);
    // Compaction keeps the kind of every live record and drops the superseded ones.
    reopened.compact().unwrap();
    let again = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    assert!(again.verify().unwrap().is_empty());
    assert_eq!(again.contains(&q, &[2], Content::Pooled).unwrap(), vec![false, true]);
    assert_eq!(again.contains(&q, &[2], Content::LastToken).unwrap(), vec![true, true]);
    assert_eq!(again.read_pooled(&q, &[2, 4], Pooling::LastToken).unwrap(), got);
    assert!(again.read_pooled(&q[..1], &[2], Pooling::Mean).is_err());
}

#[test]
fn last_token_input_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    let (p, c, t) = batch(&["a", "bb"], 3, 0.0);
    let last = last_of(&t, &c);
    let err = store.write_last_token(&p, &c, &[0], &[t.view()], None).unwrap_err();
    assert!(err.to_string().contains("(2, hidden) (one row per prompt)"), "{err}");
    let err = store.write_last_token(&p, &c[..1], &[0], &[last.view()], None).unwrap_err();
    assert!(err.to_string().contains("(2,) (one per prompt)"), "{err}");
    let err = store.write_last_token(&p, &[1, 0], &[0], &[last.view()], None).unwrap_err();
    assert_eq!(err.to_string(), "prompt 1 has 0 tokens; every stored prompt needs at least one");
    let err = store.write_last_token(&p, &c, &[0, 1], &[last.view()], None).unwrap_err();
    assert!(err.to_string().contains("one array per site (2)"), "{err}");
    let err = store.write_last_token(&[], &[], &[0], &[last.slice(s![..0, ..])], None).unwrap_err();
    assert!(err.to_string().contains("empty batch"), "{err}");
    assert_eq!(store.stats().unwrap().records, 0, "nothing of a refused batch is written");
}

#[test]
fn older_stores_are_read_and_raised_to_version_3_by_their_first_last_token_write() {
    let dir = tempfile::tempdir().unwrap();
    let (p, c, t) = batch(&["old", "older"], 3, 0.0);
    let desc_path = dir.path().join("store.json");
    {
        let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
        store.write(&p[..1], &c[..1], &[0], &[t.slice(s![..c[0] as usize, ..])], None, false).unwrap();
    }
    let v2 = std::fs::read_to_string(&desc_path).unwrap();
    assert!(v2.contains("\"version\": 2"), "a new store with pooled-only records is version 2: {v2}");
    for start in ["\"version\": 1", "\"version\": 2"] {
        let sub = tempfile::tempdir().unwrap();
        let dir = sub.path();
        let store = Store::open(dir, StorageDtype::Float32, "{}").unwrap();
        store.write(&p, &c, &[0], &[t.view()], None, true).unwrap();
        let desc_path = dir.join("store.json");
        let old = std::fs::read_to_string(&desc_path).unwrap().replace("\"version\": 2", start);
        std::fs::write(&desc_path, &old).unwrap();
        let store = Store::open(dir, StorageDtype::Float32, "{}").unwrap();
        assert_eq!(store.read_tokens(&p, &[0]).unwrap().0, t, "an older store reads as it is");
        store.write(&p, &c, &[1], &[t.view()], None, true).unwrap();
        assert_eq!(std::fs::read_to_string(&desc_path).unwrap(), old, "a full write leaves it as it is");
        let last = last_of(&t, &c);
        store.write_last_token(&p, &c, &[2], &[last.view()], None).unwrap();
        let now = std::fs::read_to_string(&desc_path).unwrap();
        assert_eq!(now, old.replace(start, "\"version\": 3"), "only the version changes");
        // A later pooled-only write does not lower it.
        store.write(&p, &c, &[3], &[t.view()], None, false).unwrap();
        assert!(std::fs::read_to_string(&desc_path).unwrap().contains("\"version\": 3"));
        let reopened = Store::open(dir, StorageDtype::Float32, "{}").unwrap();
        assert_eq!(reopened.read_pooled(&p, &[2], Pooling::LastToken).unwrap(), last);
        assert!(reopened.verify().unwrap().is_empty());
    }
}

#[test]
fn eviction_drops_last_token_records_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    let mut batches = Vec::new();
    for b in 0..6 {
        let names: Vec<String> = (0..16).map(|i| format!("pulled {b} {i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (p, c, t) = batch(&refs, 256, b as f32);
        let last = last_of(&t, &c);
        store.write_last_token(&p, &c, &[0], &[last.view()], None).unwrap();
        batches.push((p, last));
    }
    // The last batch is read last: the most recently used.
    let reader = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    assert_eq!(reader.read_pooled(&batches[5].0, &[0], Pooling::LastToken).unwrap(), batches[5].1);
    let full = store.stats().unwrap().disk_bytes;
    store.evict(full / 2).unwrap();
    assert!(store.stats().unwrap().disk_bytes <= full / 2);
    assert!(!store.contains(&batches[0].0, &[0], Content::LastToken).unwrap()[0], "the oldest batch is evicted");
    assert!(store.contains(&batches[5].0, &[0], Content::LastToken).unwrap().iter().all(|&x| x));
    assert_eq!(reader.read_pooled(&batches[5].0, &[0], Pooling::LastToken).unwrap(), batches[5].1);
    assert!(store.verify().unwrap().is_empty());
}

#[test]
fn leftovers_of_a_killed_writer_are_ignored_then_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    let (p, c, t) = batch(&["one", "two"], 4, 0.0);
    store.write(&p, &c, &[0], &[t.view()], None, true).unwrap();
    // A half-written transaction and segment bytes, as a writer killed mid-commit leaves them.
    let mut f = OpenOptions::new().append(true).open(dir.path().join(INDEX_FILE)).unwrap();
    f.write_all(b"FPTX\x40\x00\x00\x00junk").unwrap();
    let mut seg = OpenOptions::new().append(true).open(dir.path().join("segments/00000001.fps")).unwrap();
    seg.write_all(&[7u8; 1000]).unwrap();
    drop((f, seg));
    let reopened = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    assert!(reopened.verify().unwrap().is_empty());
    let (p2, c2, t2) = batch(&["three"], 4, 1.0);
    reopened.write(&p2, &c2, &[0], &[t2.view()], None, true).unwrap();
    let fresh = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    assert_eq!(fresh.contains(&["one".into(), "three".into()], &[0], Content::Pooled).unwrap(), vec![true, true]);
    assert!(fresh.verify().unwrap().is_empty(), "{:?}", fresh.verify());
}

#[test]
fn missing_prompt_and_bad_input_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    let err = store.read_pooled(&["nope".into()], &[0], Pooling::Mean).unwrap_err();
    assert_eq!(err.to_string(), "prompt \"nope\" has no stored activations at site 0");
    let (p, c, t) = batch(&["a"], 2, 0.0);
    let err = store.write(&p, &[c[0] + 1], &[0], &[t.view()], None, true).unwrap_err();
    assert!(err.to_string().contains("the sum of the token counts"), "{err}");
    let err = store.write(&p, &c, &[0, 0], &[t.view(), t.view()], None, true).unwrap_err();
    assert_eq!(err.to_string(), "site 0 appears twice in one write");
}

#[test]
fn eviction_drops_least_recently_used_and_compaction_reclaims_space() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    let mut all = Vec::new();
    for b in 0..10 {
        let names: Vec<String> = (0..4).map(|i| format!("batch {b} prompt {i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (p, c, t) = batch(&refs, 64, b as f32);
        writer.write(&p, &c, &[0, 1], &[t.view(), t.view()], None, true).unwrap();
        all.push((p, t));
    }
    // Another process-like handle reads batch 0 last: it becomes the most recently used.
    let reader = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
    let (v0, _) = reader.read_tokens(&all[0].0, &[1]).unwrap();
    let full = writer.stats().unwrap().disk_bytes;
    let budget = full / 2;
    let freed = writer.evict(budget).unwrap();
    let after = writer.stats().unwrap();
    assert!(after.disk_bytes <= budget, "{} > {budget}", after.disk_bytes);
    assert!(freed >= full - budget);
    assert!(
        writer.contains(&all[0].0, &[1], Content::Pooled).unwrap().iter().all(|&x| x),
        "the most recently read record is kept"
    );
    assert!(!writer.contains(&all[1].0, &[0], Content::Pooled).unwrap()[0], "the oldest unread batch is evicted first");
    // The stale reader still reads what survived (its segment was rewritten under it), bit-exactly.
    let (again, _) = reader.read_tokens(&all[0].0, &[1]).unwrap();
    assert_eq!(again, v0);
    assert_eq!(again, all[0].1);
    assert!(writer.verify().unwrap().is_empty());
    assert!(Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap().verify().unwrap().is_empty());
    // Writing after compaction continues in fresh segment numbers and stays readable.
    let (p, c, t) = batch(&["late"], 64, 5.0);
    writer.write(&p, &c, &[0], &[t.view()], None, true).unwrap();
    assert_eq!(reader.read_tokens(&p, &[0]).unwrap().0, t);
}

#[test]
fn compaction_removes_segments_no_commit_ever_used() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StorageDtype::Bfloat16, "{}").unwrap();
    let (p, c, t) = batch(&["kept"], 8, 0.0);
    store.write(&p, &c, &[0], &[t.view()], None, true).unwrap();
    // A segment created by a writer that was killed before committing anything to it.
    std::fs::write(dir.path().join("segments/00000007.fps"), b"FPSEG001\x07\x00\x00\x00\x00\x00\x00\x00junk").unwrap();
    store.compact().unwrap();
    assert!(!dir.path().join("segments/00000007.fps").exists());
    assert_eq!(store.read_tokens(&p, &[0]).unwrap().0.dim(), (t.nrows(), 8));
    assert!(store.verify().unwrap().is_empty());
}

/// Layer sweeps read from pool workers, one read per layer, while another thread may write. Reads inside a worker
/// used to hold the index lock across a parallel loop: the waiting worker stole another layer's read, whose refresh
/// asked for the write lock on the same thread, and the sweep hung. Many reads from inside a pool, with commits
/// landing meanwhile, must all finish.
#[test]
fn reads_inside_a_thread_pool_never_deadlock_with_concurrent_writes() {
    use rayon::prelude::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StorageDtype::Float16, "{}").unwrap());
    let names: Vec<String> = (0..512).map(|i| format!("prompt number {i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let sites: Vec<u32> = (0..8).collect();
    for chunk in refs.chunks(2) {
        let (p, c, t) = batch(chunk, 64, 1.0);
        let views: Vec<_> = sites.iter().map(|_| t.view()).collect();
        store.write(&p, &c, &sites, &views, None, true).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                let (p, c, t) = batch(&[&format!("extra {i}")], 64, 2.0);
                store.write(&p, &c, &[100], &[t.view()], None, true).unwrap();
                i += 1;
            }
        })
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| {
                (0..200u32).into_par_iter().for_each(|k| {
                    let pooled = store.read_pooled(&names, &[k % 8], Pooling::LastToken).unwrap();
                    assert_eq!(pooled.nrows(), 512);
                });
            });
            tx.send(()).unwrap();
        })
    };
    let finished = rx.recv_timeout(std::time::Duration::from_secs(120)).is_ok();
    done.store(true, Ordering::Relaxed);
    assert!(finished, "reads from inside a thread pool deadlocked");
    reader.join().unwrap();
    writer.join().unwrap();
}
