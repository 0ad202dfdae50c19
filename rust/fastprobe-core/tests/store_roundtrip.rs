//! The store through its public API: round trips, reopening, overwrites, leftovers of a killed writer.
#![allow(clippy::float_cmp)]

use std::fs::OpenOptions;
use std::io::Write;

use fastprobe_core::Pooling;
use fastprobe_core::store::{INDEX_FILE, StorageDtype, Store};
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
    assert_eq!(store.contains(&prompts, &[0, 5], false).unwrap(), vec![true; 3]);
    assert_eq!(store.contains(&prompts, &[0, 1], false).unwrap(), vec![false; 3]);
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
    assert_eq!(store.contains(&both, &[2], false).unwrap(), vec![true; 5]);
    assert_eq!(store.contains(&both, &[2], true).unwrap(), vec![true, true, true, false, false]);
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
    assert!(!reopened.contains(&q, &[2], true).unwrap()[0]);
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
    std::fs::write(&desc_path, v1.replace("\"version\": 1", "\"version\": 3")).unwrap();
    let Err(err) = Store::open(dir.path(), StorageDtype::Float32, "{}") else { panic!("version 3 opened") };
    let err = err.to_string();
    assert!(err.contains("store format version 3, this build reads versions 1 to 2"), "{err}");
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
    assert_eq!(fresh.contains(&["one".into(), "three".into()], &[0], false).unwrap(), vec![true, true]);
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
        writer.contains(&all[0].0, &[1], false).unwrap().iter().all(|&x| x),
        "the most recently read record is kept"
    );
    assert!(!writer.contains(&all[1].0, &[0], false).unwrap()[0], "the oldest unread batch is evicted first");
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
