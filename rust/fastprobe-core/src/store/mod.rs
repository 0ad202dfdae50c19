//! The activation store: append-only segment files of compressed records plus a transaction-log index.
//!
//! A store is one directory (see `docs/store-format.md` for the byte layout):
//!
//! - `store.json`: format name and version, the default storage dtype and the caller's fingerprint (free JSON);
//! - `index.fpi`: the index log ([`index`]);
//! - `segments/NNNNNNNN.fps`: segment files, each a 16-byte header and records ([`record`]) back to back;
//! - `lock`: writers hold an exclusive lock on it for the duration of one operation.
//!
//! Writes encode their records in parallel, then, under the lock, append them to the newest segment, sync it,
//! append one index transaction and sync that: a batch becomes visible atomically, or (after a crash) not at all.
//! Readers take no lock: they replay new index transactions and memory-map segments. Any number of reader
//! processes and one writer at a time (others wait on the lock) can share a store.

pub mod codec;
pub mod index;
pub mod record;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use memmap2::Mmap;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

pub use codec::StorageDtype;
pub use index::{IndexState, Op, RecordMeta};
pub use record::{Content, Key, RecordView, key_of};

use crate::error::{Error, Result};
use crate::pooling::{self, Pooling};

/// Name of the store description file.
pub const STORE_FILE: &str = "store.json";
/// Name of the index log.
pub const INDEX_FILE: &str = "index.fpi";
/// Name of the writer lock file.
pub const LOCK_FILE: &str = "lock";
/// Directory of segment files.
pub const SEGMENTS_DIR: &str = "segments";
/// Segment file magic (8 bytes) followed by a u32 segment number and 4 reserved bytes.
pub const SEGMENT_MAGIC: &[u8; 8] = b"FPSEG001";
/// Segment header length.
pub const SEGMENT_HEADER_LEN: u64 = 16;
/// A segment stops taking new records once it reaches this size.
pub const SEGMENT_TARGET_BYTES: u64 = 256 << 20;
/// The highest format version this build reads (`store.json`). Version 2 added pooled-only records, version 3
/// last-token-only records; each version's stores are the next version's stores without the newer kind, so every
/// older store is read as it is. A store records a version that knows every kind of record it holds: it is created
/// as [`NEW_STORE_VERSION`], and the first write of a newer kind raises it (rewriting `store.json`), so that an older
/// build refuses a store it would misread and keeps reading the stores it can.
pub const FORMAT_VERSION: u32 = 3;
/// The format version a new store is created with (it may take pooled-only records without an upgrade).
pub const NEW_STORE_VERSION: u32 = 2;
/// Name of the access-time file: one little-endian u64 (nanoseconds since the Unix epoch) per record id, written
/// by readers and writers alike; eviction drops the records with the oldest stamps first.
pub const ACCESS_FILE: &str = "access.bin";
/// Compaction rewrites a segment once at most this fraction of it is live.
pub const COMPACT_LIVE_FRACTION: f64 = 0.5;
/// A reader re-stamps a record at most this often.
const STAMP_INTERVAL_NS: u64 = 1_000_000_000;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// The generation number in an index log's header, if the header is intact.
fn log_generation(log: &[u8]) -> Option<u64> {
    (log.len() >= index::HEADER_LEN && &log[..8] == index::MAGIC).then(|| {
        let mut g = [0u8; 8];
        g.copy_from_slice(&log[8..16]);
        u64::from_le_bytes(g)
    })
}

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

/// An open store.
pub struct Store {
    dir: PathBuf,
    dtype: StorageDtype,
    state: RwLock<IndexState>,
    maps: RwLock<HashMap<u32, Arc<Mmap>>>,
    stamped: std::sync::Mutex<HashMap<u64, u64>>,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Opens a file for reading and writing, creating it if needed, without truncating it.
fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io_err(path))
}

/// Writes a segment file's header into an empty file.
fn write_segment_header(f: &mut File, path: &Path, segment: u32) -> Result<()> {
    let mut header = SEGMENT_MAGIC.to_vec();
    header.extend_from_slice(&segment.to_le_bytes());
    header.extend_from_slice(&[0u8; 4]);
    f.write_all(&header).map_err(io_err(path))
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(SEGMENTS_DIR).join(format!("{segment:08}.fps"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename, directory sync).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

impl Store {
    /// Opens the store in `dir`, creating it (with `dtype` as its default storage dtype and `fingerprint` as its
    /// description) when the directory holds none.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created or read; [`Error::Corrupt`] when `store.json` or the
    /// index header is not a fastprobe store's.
    pub fn open(dir: impl AsRef<Path>, dtype: StorageDtype, fingerprint: &str) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        fs::create_dir_all(dir.join(SEGMENTS_DIR)).map_err(io_err(&dir))?;
        let desc_path = dir.join(STORE_FILE);
        if !desc_path.exists() {
            let fp: serde_json::Value = serde_json::from_str(fingerprint)
                .map_err(|e| Error::InvalidInput(format!("the store fingerprint must be JSON: {e}")))?;
            let desc = serde_json::json!({
                "format": "fastprobe-store",
                "version": NEW_STORE_VERSION,
                "dtype": dtype.name(),
                "fingerprint": fp,
            });
            let lock = Self::lock_dir(&dir)?;
            if !desc_path.exists() {
                write_atomic(&desc_path, serde_json::to_string_pretty(&desc).unwrap_or_default().as_bytes())?;
            }
            drop(lock);
        }
        let desc: serde_json::Value = serde_json::from_slice(&fs::read(&desc_path).map_err(io_err(&desc_path))?)
            .map_err(|e| Error::Corrupt(format!("{}: not valid JSON: {e}", desc_path.display())))?;
        if desc.get("format").and_then(|v| v.as_str()) != Some("fastprobe-store") {
            return Err(Error::Corrupt(format!("{} does not describe a fastprobe store", desc_path.display())));
        }
        let version = desc.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if !(1..=u64::from(FORMAT_VERSION)).contains(&version) {
            return Err(Error::Corrupt(format!(
                "{}: store format version {version}, this build reads versions 1 to {FORMAT_VERSION}",
                desc_path.display()
            )));
        }
        let dtype = desc.get("dtype").and_then(|v| v.as_str()).unwrap_or("bfloat16").parse()?;
        let store = Self {
            dir,
            dtype,
            state: RwLock::new(IndexState::default()),
            maps: RwLock::new(HashMap::new()),
            stamped: std::sync::Mutex::new(HashMap::new()),
        };
        store.refresh()?;
        Ok(store)
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's default storage dtype.
    #[must_use]
    pub fn dtype(&self) -> StorageDtype {
        self.dtype
    }

    /// The store description (`store.json`) as JSON text.
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be read.
    pub fn description(&self) -> Result<String> {
        let p = self.dir.join(STORE_FILE);
        fs::read_to_string(&p).map_err(io_err(&p))
    }

    /// Raises the version in `store.json` to at least the one that knows records of kind `content` (call with the
    /// writer lock held), so that builds that predate the kind refuse the store instead of skipping its index
    /// entries as damage. A store at that version or above is left as it is.
    fn upgrade_description(&self, content: Content) -> Result<()> {
        let path = self.dir.join(STORE_FILE);
        let mut desc: serde_json::Value = serde_json::from_slice(&fs::read(&path).map_err(io_err(&path))?)
            .map_err(|e| Error::Corrupt(format!("{}: not valid JSON: {e}", path.display())))?;
        let needed = u64::from(content.store_version());
        if desc.get("version").and_then(serde_json::Value::as_u64).is_some_and(|v| v >= needed) {
            return Ok(());
        }
        desc["version"] = serde_json::json!(needed);
        write_atomic(&path, serde_json::to_string_pretty(&desc).unwrap_or_default().as_bytes())
    }

    fn lock_dir(dir: &Path) -> Result<File> {
        let path = dir.join(LOCK_FILE);
        let f = open_rw(&path)?;
        f.lock().map_err(io_err(&path))?;
        Ok(f)
    }

    fn read_index_file(&self) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(INDEX_FILE);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// Replays index transactions written since the last refresh (by this or another process).
    ///
    /// # Errors
    /// [`Error::Io`] when the index cannot be read; [`Error::Corrupt`] when its header is damaged.
    pub fn refresh(&self) -> Result<()> {
        let Some(log) = self.read_index_file()? else {
            return Ok(());
        };
        {
            // Nothing new (the common case): no write lock, so readers never queue behind one another.
            let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.consumed > 0
                && log.len() as u64 == state.consumed
                && log_generation(&log) == Some(state.generation)
            {
                return Ok(());
            }
        }
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match log_generation(&log) {
            None => {
                return Err(Error::Corrupt(format!(
                    "{}: the index header is damaged; run verify() and rebuild the store",
                    self.dir.join(INDEX_FILE).display()
                )));
            }
            Some(g) if g == state.generation && state.consumed > 0 => state.replay(&log),
            Some(_) => *state = IndexState::from_log(&log).unwrap_or_default(),
        }
        Ok(())
    }

    /// Opens (or creates) the index log for appending, truncating an unfinished tail. Caller holds the lock.
    fn open_index_for_append(&self, state: &mut IndexState) -> Result<File> {
        let path = self.dir.join(INDEX_FILE);
        let mut f = open_rw(&path)?;
        let len = f.metadata().map_err(io_err(&path))?.len();
        if len < index::HEADER_LEN as u64 {
            let generation = now_ns().max(1);
            f.set_len(0).map_err(io_err(&path))?;
            f.write_all(&index::encode_header(generation)).and_then(|()| f.sync_all()).map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            *state = IndexState { generation, consumed: index::HEADER_LEN as u64, ..Default::default() };
        } else if len > state.consumed {
            // Bytes past the last valid transaction: an unfinished write of a killed writer.
            f.set_len(state.consumed).map_err(io_err(&path))?;
        }
        f.seek(SeekFrom::Start(state.consumed)).map_err(io_err(&path))?;
        Ok(f)
    }

    /// Appends an index transaction and applies it. Caller holds the lock.
    fn commit(&self, state: &mut IndexState, ops: Vec<Op>) -> Result<()> {
        let path = self.dir.join(INDEX_FILE);
        let mut f = self.open_index_for_append(state)?;
        let tx = index::encode_tx(state.next_seq, &ops);
        f.write_all(&tx).and_then(|()| f.sync_data()).map_err(io_err(&path))?;
        state.next_seq += 1;
        state.consumed += tx.len() as u64;
        for op in ops {
            state.apply(op);
        }
        Ok(())
    }

    /// Opens the segment that takes the next records, positioned at its committed end. Caller holds the lock.
    fn open_segment_for_append(&self, state: &IndexState) -> Result<(u32, File, u64)> {
        let (segment, end) = match state.segment_end.iter().next_back() {
            Some((&s, &e)) if e < SEGMENT_TARGET_BYTES => (s, e),
            _ => (self.next_free_segment(state)?, 0), // numbers are never reused, even of removed segments
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

    /// The lowest segment number above every number ever used and every segment file present.
    fn next_free_segment(&self, state: &IndexState) -> Result<u32> {
        let dir = self.dir.join(SEGMENTS_DIR);
        let mut next = state.max_segment + 1;
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let name = entry.map_err(io_err(&dir))?.file_name();
            if let Some(n) = name.to_str().and_then(|n| n.strip_suffix(".fps")).and_then(|n| n.parse::<u32>().ok()) {
                next = next.max(n + 1);
            }
        }
        Ok(next)
    }

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
        let mut seen = std::collections::HashSet::new();
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
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
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

    fn map(&self, segment: u32, need_end: u64) -> Result<Arc<Mmap>> {
        if let Some(m) = self.maps.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&segment)
            && m.len() as u64 >= need_end
        {
            return Ok(Arc::clone(m));
        }
        let path = segment_path(&self.dir, segment);
        let file = File::open(&path).map_err(io_err(&path))?;
        // SAFETY: segments are append-only; committed bytes (all a reader looks at) are never modified in place,
        // and truncation only ever removes uncommitted bytes past every committed record. Compaction unlinks a
        // segment instead of shrinking it, which leaves existing mappings valid.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(io_err(&path))?);
        if (map.len() as u64) < need_end {
            return Err(Error::Corrupt(format!(
                "{}: segment is {} bytes, but the index has a record ending at byte {need_end} (truncated segment)",
                path.display(),
                map.len()
            )));
        }
        self.maps.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(segment, Arc::clone(&map));
        Ok(map)
    }

    /// Runs `f` over the checked view of a record, adding the record's identity to any error.
    fn with_record<T>(
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
                    segment_path(&self.dir, meta.segment).display(),
                    meta.offset,
                    meta.id,
                    meta.site,
                    meta.keys.len(),
                    first.unwrap_or_default()
                ))
            }
            other => other,
        };
        let map = self.map(meta.segment, meta.offset + meta.length).map_err(describe)?;
        let bytes = &map[meta.offset as usize..(meta.offset + meta.length) as usize];
        let view = RecordView::parse(bytes).map_err(describe)?;
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
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
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
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner).consumed = 0;
                self.maps.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                read()
            }
            other => other,
        }
    }

    /// Records that `records` were just used (best effort: a failure to stamp never fails a read).
    fn stamp(&self, records: impl Iterator<Item = u64>) {
        let now = now_ns();
        let due: Vec<u64> = {
            let mut stamped = self.stamped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.compact_locked(&mut state)?;
        drop(state);
        Ok(before.saturating_sub(dir_size(&self.dir)?))
    }

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
                let target = self.next_free_segment(state)?;
                let path = segment_path(&self.dir, target);
                let mut f = File::create(&path).map_err(io_err(&path))?;
                write_segment_header(&mut f, &path, target)?;
                let mut offset = SEGMENT_HEADER_LEN;
                let mut ops = Vec::with_capacity(moving.len());
                for m in &moving {
                    let map = self.map(m.segment, m.offset + m.length)?;
                    f.write_all(&map[m.offset as usize..(m.offset + m.length) as usize]).map_err(io_err(&path))?;
                    ops.push(Op::Move { id: m.id, segment: target, offset });
                    offset += m.length;
                }
                f.sync_all().map_err(io_err(&path))?;
                sync_dir(&self.dir.join(SEGMENTS_DIR))?;
                self.commit(state, ops)?;
            }
            for s in &victims {
                state.segment_end.remove(s);
                self.maps.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(s);
                let p = segment_path(&self.dir, *s);
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
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
        let dir = self.dir.join(SEGMENTS_DIR);
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            let number = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".fps"));
            if let Some(n) = number.and_then(|n| n.parse::<u32>().ok())
                && !state.segment_end.contains_key(&n)
            {
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
        let mut named = std::collections::HashSet::new();
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

    /// For each prompt, whether it is stored at every one of `sites` in a record that keeps at least `need`:
    /// [`Content::Tokens`] for reads of tokens (or of max, min), [`Content::Pooled`] for the three pooled vectors,
    /// [`Content::LastToken`] for the last-token vector alone (see [`Content::needed_for`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the index cannot be read.
    pub fn contains(&self, prompts: &[String], sites: &[u32], need: Content) -> Result<Vec<bool>> {
        self.refresh()?;
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
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

    /// Summary numbers.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    pub fn stats(&self) -> Result<Stats> {
        self.refresh()?;
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut sites: Vec<u32> = state.records.values().map(|m| m.site).collect();
        sites.sort_unstable();
        sites.dedup();
        let prompts: std::collections::HashSet<&Key> = state.by_key.keys().map(|(k, _)| k).collect();
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
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
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

/// Total size of the regular files under `dir`.
fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let meta = entry.metadata().map_err(io_err(&entry.path()))?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
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
