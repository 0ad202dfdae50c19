//! Writing: a batch's records are encoded in parallel, then appended to the newest segment and committed in one
//! index transaction under the writer lock.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::layout::{
    SEGMENT_HEADER_LEN, SEGMENTS_DIR, io_err, next_free_segment, open_rw, segment_path, sync_dir, write_segment_header,
};
use super::record::{self, Content, Key, key_of};
use super::{IndexState, Op, RecordMeta, StorageDtype, Store};
use crate::error::{Error, Result};

/// A segment stops taking new records once it reaches this size.
pub const SEGMENT_TARGET_BYTES: u64 = 256 << 20;

impl Store {
    /// Writes the activations of a batch of prompts at several sites, atomically.
    ///
    /// `tokens[j]` holds site `sites[j]`'s activations: `(sum of counts, hidden)` rows, prompt after prompt, without
    /// padding. The pooled vectors (last token, mean, first token) are computed from them and stored beside them;
    /// with `keep_tokens` false only the pooled vectors are stored (pooled-only records, a fraction of the bytes,
    /// which serve last-token, mean and first-token reads and nothing else).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] / [`Error::Shape`] on inconsistent input, [`Error::Io`] when the disk fails (the
    /// store stays consistent: nothing of this batch becomes visible).
    pub fn write(
        &self,
        prompts: &[String],
        counts: &[u32],
        sites: &[u32],
        tokens: &[ArrayView2<'_, f32>],
        dtype: Option<StorageDtype>,
        keep_tokens: bool,
    ) -> Result<()> {
        let dtype = dtype.unwrap_or(self.dtype);
        Self::check_batch(prompts, counts, sites, tokens.len(), "tokens")?;
        let keys: Vec<Key> = prompts.iter().map(|p| key_of(p)).collect();
        let encoded: Vec<Vec<u8>> = sites
            .par_iter()
            .zip(tokens.par_iter())
            .map(|(&site, t)| record::encode(site, dtype, &keys, counts, t.view(), keep_tokens))
            .collect::<Result<_>>()?;
        let hidden: Vec<u32> = tokens.iter().map(|t| t.ncols() as u32).collect();
        let content = if keep_tokens { Content::Tokens } else { Content::Pooled };
        self.append(prompts, &keys, counts, sites, &hidden, &encoded, dtype, content)
    }

    /// Writes last-token-only records: each prompt's last-token vector and token count at several sites, atomically.
    ///
    /// `last[j]` holds site `sites[j]`'s vectors, `(len(prompts), hidden)`, one row per prompt. Such records keep no
    /// mean, first-token or token values: they serve last-token reads only, every other read (and [`Store::contains`]
    /// asked for more) reports the prompt as missing, and a later write of the prompt in any form supersedes them.
    /// The first such write raises the store's format version to 3.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] / [`Error::Shape`] on inconsistent input, [`Error::Io`] when the disk fails (the
    /// store stays consistent: nothing of this batch becomes visible).
    pub fn write_last_token(
        &self,
        prompts: &[String],
        counts: &[u32],
        sites: &[u32],
        last: &[ArrayView2<'_, f32>],
        dtype: Option<StorageDtype>,
    ) -> Result<()> {
        let dtype = dtype.unwrap_or(self.dtype);
        Self::check_batch(prompts, counts, sites, last.len(), "last-token vectors")?;
        let keys: Vec<Key> = prompts.iter().map(|p| key_of(p)).collect();
        let encoded: Vec<Vec<u8>> = sites
            .par_iter()
            .zip(last.par_iter())
            .map(|(&site, v)| record::encode_last_token(site, dtype, &keys, counts, v.view()))
            .collect::<Result<_>>()?;
        let hidden: Vec<u32> = last.iter().map(|v| v.ncols() as u32).collect();
        self.append(prompts, &keys, counts, sites, &hidden, &encoded, dtype, Content::LastToken)
    }

    /// Checks what every write checks: a non-empty batch, one array per site, distinct sites, no prompt without a
    /// token, one count per prompt.
    fn check_batch(prompts: &[String], counts: &[u32], sites: &[u32], arrays: usize, what: &str) -> Result<()> {
        if prompts.is_empty() {
            return Err(Error::InvalidInput("cannot write an empty batch: give at least one prompt".into()));
        }
        if sites.len() != arrays {
            return Err(Error::shape(what, format!("one array per site ({})", sites.len()), arrays));
        }
        if counts.len() != prompts.len() {
            return Err(Error::shape(
                "token counts",
                format!("({},) (one per prompt)", prompts.len()),
                format!("({},)", counts.len()),
            ));
        }
        if let Some(i) = counts.iter().position(|&c| c == 0) {
            return Err(Error::InvalidInput(format!(
                "prompt {i} has 0 tokens; every stored prompt needs at least one"
            )));
        }
        let mut seen = HashSet::new();
        if let Some(s) = sites.iter().find(|s| !seen.insert(**s)) {
            return Err(Error::InvalidInput(format!("site {s} appears twice in one write")));
        }
        Ok(())
    }

    /// Appends encoded records (one per site) and commits them in one transaction, under the lock.
    #[allow(clippy::too_many_arguments)] // the parts of one batch, shared by both kinds of write
    fn append(
        &self,
        prompts: &[String],
        keys: &[Key],
        counts: &[u32],
        sites: &[u32],
        hidden: &[u32],
        encoded: &[Vec<u8>],
        dtype: StorageDtype,
        content: Content,
    ) -> Result<()> {
        let _lock = Self::lock_dir(&self.dir)?;
        if content != Content::Tokens {
            self.upgrade_description(content)?;
        }
        self.refresh()?;
        let mut state = self.state_mut();
        let (segment, mut file, mut offset) = self.open_segment_for_append(&state)?;
        let seg_path = segment_path(&self.dir, segment);
        let mut ops = Vec::new();
        for (k, p) in keys.iter().zip(prompts) {
            if !state.prompts.contains_key(k) && !ops.iter().any(|op| matches!(op, Op::Prompt(k2, _) if k2 == k)) {
                ops.push(Op::Prompt(*k, p.clone()));
            }
        }
        for (j, (bytes, id)) in encoded.iter().zip(state.next_id..).enumerate() {
            file.write_all(bytes).map_err(io_err(&seg_path))?;
            ops.push(Op::Put(RecordMeta {
                id,
                segment,
                offset,
                length: bytes.len() as u64,
                site: sites[j],
                hidden: hidden[j],
                dtype,
                total_tokens: counts.iter().map(|&c| u64::from(c)).sum(),
                keys: keys.to_vec(),
                counts: counts.to_vec(),
                content,
                live_rows: keys.len() as u32,
            }));
            offset += bytes.len() as u64;
        }
        file.sync_data().map_err(io_err(&seg_path))?;
        let first_id = state.next_id;
        self.commit(&mut state, ops)?;
        let last_id = state.next_id;
        drop(state);
        self.stamp(first_id..last_id);
        Ok(())
    }

    /// Opens the segment that takes the next records, positioned at its committed end. Caller holds the lock.
    fn open_segment_for_append(&self, state: &IndexState) -> Result<(u32, File, u64)> {
        let (segment, end) = match state.segment_end.iter().next_back() {
            Some((&s, &e)) if e < SEGMENT_TARGET_BYTES => (s, e),
            _ => (next_free_segment(&self.dir, state.max_segment)?, 0),
        };
        let path = segment_path(&self.dir, segment);
        let mut f = open_rw(&path)?;
        let end = if end == 0 {
            f.set_len(0).map_err(io_err(&path))?;
            write_segment_header(&mut f, &path, segment)?;
            sync_dir(&self.dir.join(SEGMENTS_DIR))?;
            SEGMENT_HEADER_LEN
        } else {
            // Drop uncommitted bytes a killed writer may have left.
            if f.metadata().map_err(io_err(&path))?.len() > end {
                f.set_len(end).map_err(io_err(&path))?;
            }
            end
        };
        f.seek(SeekFrom::Start(end)).map_err(io_err(&path))?;
        Ok((segment, f, end))
    }
}
