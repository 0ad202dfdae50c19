//! A writer killed with SIGKILL at random points never loses a committed batch nor exposes a half-written one.
//!
//! The test re-runs its own binary, this test alone, as the writer: with `FASTPROBE_CRASH_DIR` set the test function
//! is the child and runs [`write_until_killed`] instead. The parent kills the child a random delay after the child
//! reports its first committed batch (so process start and store opening, whose length depends on the machine, are
//! outside the kill window), then reopens the store: every batch is either entirely present and bit-exact, or
//! entirely absent, and every batch the writer reported as committed is present.
#![allow(clippy::float_cmp)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fastprobe_core::Pooling;
use fastprobe_core::store::{Content, StorageDtype, Store};
use ndarray::Array2;

/// Set in the child: the store directory it writes to.
const DIR_ENV: &str = "FASTPROBE_CRASH_DIR";
/// Set in the child: the number of its first batch.
const START_ENV: &str = "FASTPROBE_CRASH_START";
/// How long the parent waits for a child's first commit before it calls the child broken.
const FIRST_COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
const SITES: [u32; 3] = [0, 7, 29];
const PROMPTS_PER_BATCH: usize = 3;
const HIDDEN: usize = 48;

fn prompts(batch: usize) -> Vec<String> {
    (0..PROMPTS_PER_BATCH).map(|i| format!("batch {batch} prompt {i}")).collect()
}

fn counts(batch: usize) -> Vec<u32> {
    (0..PROMPTS_PER_BATCH).map(|i| ((batch * 7 + i * 3) % 9 + 1) as u32).collect()
}

fn tokens(batch: usize, site: u32) -> Array2<f32> {
    let total: u32 = counts(batch).iter().sum();
    Array2::from_shape_fn((total as usize, HIDDEN), |(t, h)| {
        ((batch * 1_000_003 + site as usize * 7_919 + t * 131 + h) % 100_003) as f32 * 1e-3 - 50.0
    })
}

/// The child's body: writes batches from `start` on until it is killed, printing each batch number once its write
/// has returned.
fn write_until_killed(dir: &str, start: usize) -> ! {
    let store = Store::open(dir, StorageDtype::Float32, "{}").unwrap();
    for batch in start.. {
        let t: Vec<Array2<f32>> = SITES.iter().map(|&s| tokens(batch, s)).collect();
        let views: Vec<_> = t.iter().map(|a| a.view()).collect();
        store.write(&prompts(batch), &counts(batch), &SITES, &views, None, true).unwrap();
        println!("committed {batch}");
    }
    unreachable!("the writer ran out of batch numbers")
}

/// The batch a line of the child's output reports committed. The test harness may print the test's name before the
/// first report on the same line; stdout is line-buffered, so each report arrives whole.
fn committed_batch(line: &str) -> Option<usize> {
    line.split_once("committed ").and_then(|(_, b)| b.trim().parse().ok())
}

#[test]
fn sigkill_at_random_points_loses_nothing_committed() {
    if let Ok(dir) = std::env::var(DIR_ENV) {
        write_until_killed(&dir, std::env::var(START_ENV).unwrap().parse().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut committed: Vec<usize> = Vec::new();
    let mut next_batch = 0usize;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _trial in 0..60 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Command::new(&exe)
            .args(["--exact", "sigkill_at_random_points_loses_nothing_committed", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .env(START_ENV, next_batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(b) = committed_batch(&line)
                    && tx.send(b).is_err()
                {
                    break;
                }
            }
        });
        // The kill window opens once the writer is writing: after its first commit.
        match rx.recv_timeout(FIRST_COMMIT_TIMEOUT) {
            Ok(b) => committed.push(b),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!("the writer committed nothing ({e}; it exited with {status})");
            }
        }
        // Kill it somewhere inside a later write.
        std::thread::sleep(Duration::from_micros(rng % 25_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        committed.extend(rx.try_iter());
        // The next child starts above anything this one may have begun.
        next_batch += 10_000;

        let store = Store::open(dir.path(), StorageDtype::Float32, "{}").unwrap();
        assert!(store.verify().unwrap().is_empty(), "{:?}", store.verify().unwrap());
        let listed = store.prompts().unwrap();
        let mut present: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
        for (p, sites, _) in &listed {
            assert_eq!(sites, &SITES.to_vec(), "{p} is stored at only some sites: a half-visible batch");
            present.insert(p.split(' ').nth(1).unwrap().parse().unwrap());
        }
        for b in &committed {
            assert!(present.contains(b), "batch {b} was reported committed but is missing");
        }
        for &b in &present {
            let p = prompts(b);
            assert!(
                store.contains(&p, &SITES, Content::Pooled).unwrap().iter().all(|&x| x),
                "batch {b} is partly present"
            );
            let (values, offsets) = store.read_tokens(&p, &[SITES[1]]).unwrap();
            assert_eq!(values, tokens(b, SITES[1]), "batch {b} does not read back bit-exactly");
            let last = store.read_pooled(&p, &[SITES[2]], Pooling::LastToken).unwrap();
            assert_eq!(last.row(0), tokens(b, SITES[2]).row(offsets[1] - 1));
        }
    }
    assert!(
        committed.len() >= 20,
        "the writer committed too few batches ({}) for the test to mean much",
        committed.len()
    );
}
