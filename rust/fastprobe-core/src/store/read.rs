//! Reading: lookups in the index, and reads of pooled vectors and token-level activations, each record decoded
//! once and in parallel.

use std::collections::HashMap;
use std::io::ErrorKind;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::record::{self, Content, Key, RecordView, key_of};
use super::{IndexState, RecordMeta, Store, codec};
use crate::error::{Error, Result};
use crate::pooling::{self, Pooling};

/// Runs `f` on every group: in parallel from outside the thread pool, in order from inside it.
///
/// A read holds the index's read lock while it decodes. Inside a pool worker (a layer sweep reading its layer), a
/// parallel loop would let the waiting worker steal another task, which could ask for the index's write lock on the
/// same thread and deadlock; decoding in order there keeps each worker's lock scope free of foreign tasks (the
/// sweep's own layers already keep every thread busy).
fn for_each_group<G: Sync>(groups: &[G], f: impl Fn(&G) -> Result<()> + Sync + Send) -> Result<()> {
    if rayon::current_thread_index().is_some() {
        groups.iter().try_for_each(f)
    } else {
        groups.par_iter().try_for_each(f)
    }
}

/// Hex form of a key, for messages.
#[must_use]
pub fn key_hex(key: &Key) -> String {
    use std::fmt::Write as _;
    key.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Store {
    /// Runs `f` over the checked view of a record, adding the record's identity to any error.
    pub(super) fn with_record<T>(
        &self,
        meta: &RecordMeta,
        prompts: &HashMap<Key, String>,
        f: impl FnOnce(&RecordView<'_>) -> Result<T>,
    ) -> Result<T> {
        let describe = |e: Error| match e {
            Error::Corrupt(msg) => {
                let first = meta.keys.first().map(|k| prompts.get(k).cloned().unwrap_or_else(|| key_hex(k)));
                Error::Corrupt(format!(
                    "{} at byte {}: record {} (site {}, {} prompts, first {:?}): {msg}",
                    self.segments.describe(meta.segment),
                    meta.offset,
                    meta.id,
                    meta.site,
                    meta.keys.len(),
                    first.unwrap_or_default()
                ))
            }
            other => other,
        };
        let bytes = self.segments.read(meta.segment, meta.offset..meta.offset + meta.length).map_err(describe)?;
        let view = RecordView::parse(&bytes).map_err(describe)?;
        if view.site != meta.site
            || view.n_prompts != meta.keys.len()
            || view.hidden != meta.hidden as usize
            || view.content != meta.content
        {
            return Err(describe(Error::Corrupt("record header disagrees with the index".into())));
        }
        f(&view).map_err(describe)
    }

    /// Looks up every (prompt, site) cell: `cells[i * sites.len() + j] = (record id, row)`. A cell held by a record
    /// that keeps less than `need` counts as missing `needed` (what the read needs, for the message).
    fn locate(
        state: &IndexState,
        prompts: &[String],
        sites: &[u32],
        need: Content,
        needed: &str,
    ) -> Result<Vec<(u64, u32)>> {
        let mut cells = Vec::with_capacity(prompts.len() * sites.len());
        for (i, p) in prompts.iter().enumerate() {
            let k = key_of(p);
            for &s in sites {
                let cell = state.by_key.get(&(k, s)).ok_or_else(|| {
                    Error::Missing(format!("prompt {:?} has no stored activations at site {s}", prompts[i]))
                })?;
                let kept = state.records.get(&cell.0).map_or(Content::LastToken, |m| m.content);
                if !kept.serves(need) {
                    return Err(Error::Missing(format!(
                        "prompt {:?} is stored at site {s} as {}; {needed}, which this read needs, {} not kept",
                        prompts[i],
                        kept.describe(),
                        if needed.ends_with('s') { "were" } else { "was" }
                    )));
                }
                cells.push(*cell);
            }
        }
        Ok(cells)
    }

    /// The cells each record serves, so every record is decoded once: `(record id, [(row, cell index), ...])`.
    fn group_by_record(cells: &[(u64, u32)]) -> Vec<(u64, Vec<(u32, usize)>)> {
        let mut groups: HashMap<u64, Vec<(u32, usize)>> = HashMap::new();
        for (c, &(rid, row)) in cells.iter().enumerate() {
            groups.entry(rid).or_default().push((row, c));
        }
        groups.into_iter().collect()
    }

    fn hidden_of(state: &IndexState, cells: &[(u64, u32)]) -> Result<usize> {
        let mut hidden = None;
        for (rid, _) in cells {
            let h = state.records.get(rid).map_or(0, |m| m.hidden as usize);
            match hidden {
                None => hidden = Some(h),
                Some(prev) if prev != h => {
                    return Err(Error::shape(
                        "stored activations",
                        format!("hidden size {prev} at every site"),
                        format!("hidden size {h}"),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(hidden.unwrap_or(0))
    }

    /// Reads one pooled vector per (prompt, site): returns `(len(prompts), len(sites) * hidden)` float32, sites
    /// concatenated in the order given.
    ///
    /// Last token, mean and first token come from the pooled frames written beside the tokens; max and min are
    /// computed from the tokens.
    ///
    /// # Errors
    /// [`Error::Missing`] when a prompt is not stored at a site, or only in a record that lacks what the pooling
    /// reads (tokens for max and min; a last-token-only record for mean and first token); [`Error::Corrupt`]
    /// naming the damaged record.
    pub fn read_pooled(&self, prompts: &[String], sites: &[u32], pooling: Pooling) -> Result<Array2<f32>> {
        self.retry_moved(|| self.read_pooled_once(prompts, sites, pooling))
    }

    fn read_pooled_once(&self, prompts: &[String], sites: &[u32], pooling: Pooling) -> Result<Array2<f32>> {
        self.refresh()?;
        let state = self.state();
        let need = Content::needed_for(pooling);
        let needed = if need == Content::Tokens { "its tokens".to_owned() } else { format!("its {pooling} vector") };
        let cells = Self::locate(&state, prompts, sites, need, &needed)?;
        let h = Self::hidden_of(&state, &cells)?;
        let (n, l) = (prompts.len(), sites.len());
        let mut out = crate::buffer::zeroed_array(n, l * h);
        let dst = SharedOut(out.as_mut_ptr());
        let groups = Self::group_by_record(&cells);
        for_each_group(&groups, |(rid, wanted)| {
            let meta = &state.records[rid];
            self.with_record(meta, &state.prompts, |view| {
                let rows_of = |decoded: &[f32], offsets: Option<&[usize]>| -> Result<()> {
                    for &(row, c) in wanted {
                        let (i, j) = (c / l, c % l);
                        let src: Vec<f32>;
                        let vector: &[f32] = match offsets {
                            None => &decoded[row as usize * h..(row as usize + 1) * h],
                            Some(o) => {
                                let block = ArrayView2::from_shape(
                                    (o[row as usize + 1] - o[row as usize], h),
                                    &decoded[o[row as usize] * h..o[row as usize + 1] * h],
                                )
                                .map_err(|e| Error::Corrupt(e.to_string()))?;
                                src = pooling::pool_one(block, pooling)?.to_vec();
                                &src
                            }
                        };
                        // SAFETY: each (i, j) cell appears in exactly one group, once, so writes are disjoint, and
                        // i < n, j < l keep them inside `out`, which outlives this parallel loop.
                        unsafe { dst.write(i * l * h + j * h, vector) };
                    }
                    Ok(())
                };
                match record::pooled_frame(pooling) {
                    Some(frame) => rows_of(&view.decode_pooled(frame)?, None),
                    None => rows_of(&view.decode_tokens()?, Some(&view.token_offsets())),
                }
            })
        })?;
        self.stamp(groups.iter().map(|(rid, _)| *rid));
        Ok(out)
    }

    /// Reads token-level activations: returns `(values, offsets)` where `values` is `(sum of token counts,
    /// len(sites) * hidden)` float32 and prompt `i` owns rows `offsets[i]..offsets[i + 1]`.
    ///
    /// # Errors
    /// As [`Store::read_pooled`]; [`Error::Corrupt`] also when a prompt's token count differs between sites.
    pub fn read_tokens(&self, prompts: &[String], sites: &[u32]) -> Result<(Array2<f32>, Vec<usize>)> {
        self.retry_moved(|| self.read_tokens_once(prompts, sites))
    }

    fn read_tokens_once(&self, prompts: &[String], sites: &[u32]) -> Result<(Array2<f32>, Vec<usize>)> {
        self.refresh()?;
        let state = self.state();
        let cells = Self::locate(&state, prompts, sites, Content::Tokens, "its tokens")?;
        let h = Self::hidden_of(&state, &cells)?;
        let (n, l) = (prompts.len(), sites.len());
        let mut offsets = vec![0usize; n + 1];
        for i in 0..n {
            let count = |j: usize| {
                let (rid, row) = cells[i * l + j];
                state.records[&rid].counts[row as usize] as usize
            };
            let t = if l == 0 { 0 } else { count(0) };
            if let Some(j) = (1..l).find(|&j| count(j) != t) {
                return Err(Error::Corrupt(format!(
                    "prompt {:?} has {t} tokens at site {} but {} at site {}",
                    prompts[i],
                    sites[0],
                    count(j),
                    sites[j]
                )));
            }
            offsets[i + 1] = offsets[i] + t;
        }
        let width = l * h;
        let mut out = crate::buffer::zeroed_array(offsets[n], width);
        let dst = SharedOut(out.as_mut_ptr());
        let groups = Self::group_by_record(&cells);
        for_each_group(&groups, |(rid, wanted)| {
            self.with_record(&state.records[rid], &state.prompts, |view| {
                let planes = view.token_planes()?;
                let m = view.total_tokens * h;
                let o = view.token_offsets();
                for &(row, c) in wanted {
                    let (i, j) = (c / l, c % l);
                    for t in 0..(o[row as usize + 1] - o[row as usize]) {
                        // SAFETY: cell (i, j) is written by this group only; token row offsets[i] + t < offsets[i+1]
                        // and column block j are inside `out` and disjoint from every other cell's.
                        let dst_row = unsafe { dst.slice((offsets[i] + t) * width + j * h, h) };
                        codec::widen_range(&planes, m, view.dtype, (o[row as usize] + t) * h, dst_row);
                    }
                }
                Ok(())
            })
        })?;
        self.stamp(groups.iter().map(|(rid, _)| *rid));
        Ok((out, offsets))
    }

    /// Runs a read; if a segment it needed was removed by a concurrent compaction, reloads the index and retries.
    fn retry_moved<T>(&self, read: impl Fn() -> Result<T>) -> Result<T> {
        match read() {
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                self.state_mut().consumed = 0;
                self.segments.forget_all();
                read()
            }
            other => other,
        }
    }

    /// For each prompt, whether it is stored at every one of `sites` in a record that keeps at least `need`:
    /// [`Content::Tokens`] for reads of tokens (or of max, min), [`Content::Pooled`] for the three pooled vectors,
    /// [`Content::LastToken`] for the last-token vector alone (see [`Content::needed_for`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the index cannot be read.
    pub fn contains(&self, prompts: &[String], sites: &[u32], need: Content) -> Result<Vec<bool>> {
        self.refresh()?;
        let state = self.state();
        let stored = |k: Key, s: u32| {
            state
                .by_key
                .get(&(k, s))
                .is_some_and(|(rid, _)| state.records.get(rid).is_some_and(|m| m.content.serves(need)))
        };
        Ok(prompts
            .iter()
            .map(|p| {
                let k = key_of(p);
                sites.iter().all(|&s| stored(k, s))
            })
            .collect())
    }

    /// Every stored prompt with the sites it has and its token count, sorted by prompt text.
    ///
    /// # Errors
    /// [`Error::Io`] when the index cannot be read.
    pub fn prompts(&self) -> Result<Vec<(String, Vec<u32>, u32)>> {
        self.refresh()?;
        let state = self.state();
        let mut found: HashMap<Key, (Vec<u32>, u32)> = HashMap::new();
        for ((k, s), (rid, row)) in &state.by_key {
            let entry = found.entry(*k).or_default();
            entry.0.push(*s);
            entry.1 = state.records.get(rid).map_or(0, |m| m.counts[*row as usize]);
        }
        let mut out: Vec<(String, Vec<u32>, u32)> = found
            .into_iter()
            .map(|(k, (mut sites, tokens))| {
                sites.sort_unstable();
                (state.prompts.get(&k).cloned().unwrap_or_else(|| key_hex(&k)), sites, tokens)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// A raw pointer to an output buffer that parallel tasks write disjoint ranges of.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: the pointer is only used for writes to ranges that no other task touches (see each call site).
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The `len` values at `self + at`, as a slice to write.
    ///
    /// # Safety
    /// `at..at + len` must lie inside the buffer and be accessed by no other task while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice<'a>(self, at: usize, len: usize) -> &'a mut [f32] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(at), len) }
    }

    /// Copies `src` to `self + at`.
    ///
    /// # Safety
    /// `at..at + src.len()` must lie inside the buffer and be written by no other task concurrently.
    unsafe fn write(self, at: usize, src: &[f32]) {
        // SAFETY: guaranteed by the caller.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.0.add(at), src.len()) };
    }
}
