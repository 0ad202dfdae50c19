//! Upkeep: access stamps, eviction of the least recently used records, compaction, verification and stats.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::sync::PoisonError;

use rayon::prelude::*;

use super::layout::{
    ACCESS_FILE, INDEX_FILE, SEGMENT_HEADER_LEN, SEGMENTS_DIR, dir_size, io_err, next_free_segment, segment_files,
    segment_path, sync_dir, write_atomic, write_segment_header,
};
use super::record::{Content, Key};
use super::{IndexState, Op, RecordMeta, Store, index, now_ns};
use crate::error::{Error, Result};

/// Compaction rewrites a segment once at most this fraction of it is live.
pub const COMPACT_LIVE_FRACTION: f64 = 0.5;
/// A reader re-stamps a record at most this often.
const STAMP_INTERVAL_NS: u64 = 1_000_000_000;

/// Summary numbers of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live records.
    pub records: usize,
    /// Distinct prompts with at least one live site.
    pub prompts: usize,
    /// Distinct sites with at least one live record.
    pub sites: Vec<u32>,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// Bytes of all files of the store on disk.
    pub disk_bytes: u64,
}

impl Store {
    /// Records that `records` were just used (best effort: a failure to stamp never fails a read).
    pub(super) fn stamp(&self, records: impl Iterator<Item = u64>) {
        let now = now_ns();
        let due: Vec<u64> = {
            let mut stamped = self.stamped.lock().unwrap_or_else(PoisonError::into_inner);
            records
                .filter(|rid| {
                    let fresh = stamped.get(rid).is_some_and(|&t| now.saturating_sub(t) < STAMP_INTERVAL_NS);
                    if !fresh {
                        stamped.insert(*rid, now);
                    }
                    !fresh
                })
                .collect()
        };
        if due.is_empty() {
            return;
        }
        if let Ok(f) = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join(ACCESS_FILE)) {
            use std::os::unix::fs::FileExt;
            for rid in due {
                let _ = f.write_all_at(&now.to_le_bytes(), rid * 8);
            }
        }
    }

    /// Access stamps of every record id below `n` (0 where none was written).
    fn stamps(&self, n: u64) -> Vec<u64> {
        let bytes = fs::read(self.dir.join(ACCESS_FILE)).unwrap_or_default();
        (0..n)
            .map(|rid| {
                let at = (rid * 8) as usize;
                bytes.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            })
            .collect()
    }

    /// Evicts least-recently-used records until the store's files take at most `budget_bytes`, then compacts.
    /// Returns the number of bytes freed on disk.
    ///
    /// # Errors
    /// [`Error::Io`] when the disk fails; the store stays consistent.
    pub fn evict(&self, budget_bytes: u64) -> Result<u64> {
        let _lock = Self::lock_dir(&self.dir)?;
        self.refresh()?;
        let before = dir_size(&self.dir)?;
        if before <= budget_bytes {
            return Ok(0);
        }
        let mut state = self.state_mut();
        let stamps = self.stamps(state.next_id);
        let mut order: Vec<(u64, u64, u64)> =
            state.records.values().map(|m| (stamps.get(m.id as usize).copied().unwrap_or(0), m.id, m.length)).collect();
        order.sort_unstable();
        // Space that is not record data (index, headers) stays after compaction; aim below the budget by it.
        let live: u64 = order.iter().map(|o| o.2).sum();
        let overhead = fs::metadata(self.dir.join(INDEX_FILE)).map_or(0, |m| m.len()) + 4096;
        let mut keep = live;
        let mut ops = Vec::new();
        for (_, rid, len) in order {
            if keep + overhead <= budget_bytes {
                break;
            }
            keep -= len;
            ops.push(Op::Delete(rid));
        }
        if !ops.is_empty() {
            self.commit(&mut state, ops)?;
        }
        self.compact_locked(&mut state)?;
        drop(state);
        Ok(before.saturating_sub(dir_size(&self.dir)?))
    }

    /// Rewrites segments that are mostly dead (evicted or superseded records) and the index log, reclaiming space.
    /// Readers keep working throughout: moved records are committed before old segments are removed.
    ///
    /// # Errors
    /// [`Error::Io`] when the disk fails; the store stays consistent.
    pub fn compact(&self) -> Result<u64> {
        let _lock = Self::lock_dir(&self.dir)?;
        self.refresh()?;
        let before = dir_size(&self.dir)?;
        let mut state = self.state_mut();
        self.compact_locked(&mut state)?;
        drop(state);
        Ok(before.saturating_sub(dir_size(&self.dir)?))
    }

    /// Compacts with the writer lock held and the index locked for writing.
    fn compact_locked(&self, state: &mut IndexState) -> Result<()> {
        let live = state.live_bytes();
        let victims: Vec<u32> = state
            .segment_end
            .iter()
            .filter(|&(s, &end)| {
                let l = live.get(s).copied().unwrap_or(0);
                (l as f64) <= COMPACT_LIVE_FRACTION * (end.saturating_sub(SEGMENT_HEADER_LEN) as f64)
            })
            .map(|(&s, _)| s)
            .collect();
        if !victims.is_empty() {
            let mut moving: Vec<RecordMeta> =
                state.records.values().filter(|m| victims.contains(&m.segment)).cloned().collect();
            moving.sort_by_key(|m| (m.segment, m.offset));
            if !moving.is_empty() {
                let target = next_free_segment(&self.dir, state.max_segment)?;
                let path = segment_path(&self.dir, target);
                let mut f = File::create(&path).map_err(io_err(&path))?;
                write_segment_header(&mut f, &path, target)?;
                let mut offset = SEGMENT_HEADER_LEN;
                let mut ops = Vec::with_capacity(moving.len());
                for m in &moving {
                    let bytes = self.segments.read(m.segment, m.offset..m.offset + m.length)?;
                    f.write_all(&bytes).map_err(io_err(&path))?;
                    ops.push(Op::Move { id: m.id, segment: target, offset });
                    offset += m.length;
                }
                f.sync_all().map_err(io_err(&path))?;
                sync_dir(&self.dir.join(SEGMENTS_DIR))?;
                self.commit(state, ops)?;
            }
            for s in &victims {
                state.segment_end.remove(s);
                self.segments.forget(*s);
                let p = segment_path(&self.dir, *s);
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Io { path: p, source: e }),
                }
            }
            sync_dir(&self.dir.join(SEGMENTS_DIR))?;
        }
        self.remove_orphan_segments(state)?;
        self.rewrite_index(state)
    }

    /// Removes segment files that no committed record ever used (left by a writer killed before its commit).
    /// Caller holds the lock, so no writer is between creating a segment and committing to it.
    fn remove_orphan_segments(&self, state: &IndexState) -> Result<()> {
        for (n, path) in segment_files(&self.dir)? {
            if !state.segment_end.contains_key(&n) {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        Ok(())
    }

    /// Replaces the index log with a snapshot of the live state (new generation), atomically.
    fn rewrite_index(&self, state: &mut IndexState) -> Result<()> {
        let generation = now_ns().max(state.generation + 1);
        let mut metas: Vec<&RecordMeta> = state.records.values().collect();
        metas.sort_by_key(|m| m.id);
        let mut ops = Vec::new();
        let mut named = HashSet::new();
        for m in &metas {
            for k in &m.keys {
                if named.insert(*k)
                    && let Some(text) = state.prompts.get(k)
                {
                    ops.push(Op::Prompt(*k, text.clone()));
                }
            }
        }
        for m in metas {
            // Re-put with every row: replaying in id order hides superseded rows again, as the original log did.
            let mut m = m.clone();
            m.live_rows = m.keys.len() as u32;
            ops.push(Op::Put(m));
        }
        // Committed ends never shrink (a reader may still map dead records there), and used numbers stay used.
        for (&segment, &end) in &state.segment_end {
            ops.push(Op::SegmentEnd { segment, end });
        }
        ops.push(Op::SegmentEnd { segment: state.max_segment, end: 0 });
        let mut bytes = index::encode_header(generation);
        bytes.extend(index::encode_tx(0, &ops));
        write_atomic(&self.dir.join(INDEX_FILE), &bytes)?;
        *state = IndexState::from_log(&bytes).unwrap_or_default();
        Ok(())
    }

    /// Summary numbers.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    pub fn stats(&self) -> Result<Stats> {
        self.refresh()?;
        let state = self.state();
        let mut sites: Vec<u32> = state.records.values().map(|m| m.site).collect();
        sites.sort_unstable();
        sites.dedup();
        let prompts: HashSet<&Key> = state.by_key.keys().map(|(k, _)| k).collect();
        Ok(Stats {
            records: state.records.len(),
            prompts: prompts.len(),
            sites,
            live_bytes: state.records.values().map(|m| m.length).sum(),
            disk_bytes: dir_size(&self.dir)?,
        })
    }

    /// Checks every live record (header, keys, every frame's checksum and decoding) and the index, returning one
    /// line per problem found; an empty list means the store is sound.
    ///
    /// # Errors
    /// [`Error::Io`] when the index cannot be read at all.
    pub fn verify(&self) -> Result<Vec<String>> {
        self.refresh()?;
        let state = self.state();
        let mut problems = state.damage.clone();
        let mut metas: Vec<&RecordMeta> = state.records.values().collect();
        metas.sort_by_key(|m| (m.segment, m.offset));
        let mut found: Vec<String> = metas
            .par_iter()
            .filter_map(|meta| {
                self.with_record(meta, &state.prompts, |view| {
                    for i in 0..view.n_prompts {
                        if view.key(i) != meta.keys[i] || view.count(i) != meta.counts[i] {
                            return Err(Error::Corrupt(format!("row {i} disagrees with the index")));
                        }
                    }
                    for f in 0..view.content.frames().min(3) {
                        view.decode_pooled(f)?;
                    }
                    if view.content == Content::Tokens { view.decode_tokens().map(|_| ()) } else { Ok(()) }
                })
                .err()
                .map(|e| e.to_string())
            })
            .collect();
        problems.append(&mut found);
        Ok(problems)
    }
}
