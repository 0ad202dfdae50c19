//! The index log's creation by a store's first commit, as readers see it: a reader that refreshes while the first
//! commit creates `index.fpi` sees either no index or a whole one, never a file without its header yet; and an index
//! cut short after it was written is still reported as damage, not taken for a store without one.

use std::fs::OpenOptions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use fastprobe_core::Error;
use fastprobe_core::store::{INDEX_FILE, StorageDtype, Store};
use ndarray::Array2;

/// Fresh stores, each written once while a reader refreshes it in a tight loop.
const FRESH_STORES: usize = 300;

fn write_one_batch(store: &Store) {
    let prompts = vec!["the first prompt".to_owned(), "the second".to_owned()];
    let counts = [3u32, 2];
    let tokens = Array2::from_shape_fn((5, 8), |(t, h)| (t * 8 + h) as f32);
    store.write(&prompts, &counts, &[0], &[tokens.view()], None, true).unwrap();
}

#[test]
fn a_reader_never_sees_the_first_commit_half_way_through_creating_the_index() {
    for round in 0..FRESH_STORES {
        let dir = tempfile::tempdir().unwrap();
        let writer = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
        let reader = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let started = Arc::new(Barrier::new(2));
        let spinning = {
            let (done, started) = (Arc::clone(&done), Arc::clone(&started));
            std::thread::spawn(move || {
                started.wait();
                let mut refreshes = 0u64;
                // Refresh until the commit is over, then once more: the last refresh must see the batch.
                while !done.load(Ordering::Acquire) {
                    reader.refresh().map_err(|e| format!("round {round}, refresh {refreshes}: {e}"))?;
                    refreshes += 1;
                }
                reader.refresh().map_err(|e| format!("round {round}, last refresh: {e}"))?;
                let prompts = reader.prompts().map_err(|e| e.to_string())?;
                Ok::<_, String>(prompts.len())
            })
        };
        started.wait();
        write_one_batch(&writer);
        done.store(true, Ordering::Release);
        let seen = spinning.join().unwrap().unwrap_or_else(|e| panic!("a reader failed: {e}"));
        assert_eq!(seen, 2, "round {round}: the reader did not see the first batch after it was committed");
    }
}

#[test]
fn an_index_cut_short_after_commits_is_damage() {
    for keep in [0u64, 5, 15] {
        let dir = tempfile::tempdir().unwrap();
        write_one_batch(&Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap());
        OpenOptions::new().write(true).open(dir.path().join(INDEX_FILE)).unwrap().set_len(keep).unwrap();
        match Store::open(dir.path(), StorageDtype::Float32, "{}") {
            Err(Error::Corrupt(msg)) => assert!(msg.contains("index header is damaged"), "{keep} bytes kept: {msg}"),
            Err(e) => panic!("{keep} bytes kept: expected a corrupt-store error, got {e}"),
            Ok(_) => panic!("{keep} bytes kept: a store whose index lost its header opened as if it had none"),
        }
    }
}
