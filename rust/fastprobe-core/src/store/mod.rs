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
//! Readers take no lock: they replay new index transactions and read segments through a [`SegmentSource`] (today
//! memory maps of the local files). Any number of reader processes and one writer at a time (others wait on the
//! lock) can share a store.
//!
//! This file holds [`Store`] itself: opening, the index (refresh and commit) and the writer lock. The rest of its
//! methods live by concern: `write.rs` (appending batches), `read.rs` (lookups and reads), `maintenance.rs` (access
//! stamps, eviction, compaction, verification, stats); `layout.rs` names the files and holds the file operations,
//! [`source`] the segment-source seam, and [`codec`], [`index`] and [`record`] the byte formats.

pub mod codec;
pub mod index;
mod layout;
mod maintenance;
mod read;
pub mod record;
pub mod source;
mod write;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use codec::StorageDtype;
pub use index::{IndexState, Op, RecordMeta};
pub use layout::{
    ACCESS_FILE, FORMAT_VERSION, INDEX_FILE, LOCK_FILE, NEW_STORE_VERSION, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
    SEGMENTS_DIR, STORE_FILE,
};
pub use maintenance::{COMPACT_LIVE_FRACTION, Stats};
pub use read::key_hex;
pub use record::{Content, Key, RecordView, key_of};
pub use source::{LocalSegments, SegmentBytes, SegmentSource};
pub use write::SEGMENT_TARGET_BYTES;

use crate::error::{Error, Result};
use layout::{io_err, open_rw, write_atomic};

/// An open store.
pub struct Store {
    dir: PathBuf,
    dtype: StorageDtype,
    state: RwLock<IndexState>,
    segments: Box<dyn SegmentSource>,
    /// When this process last stamped each record (see `maintenance.rs`).
    stamped: Mutex<HashMap<u64, u64>>,
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The generation number in an index log's header, if the header is intact.
fn log_generation(log: &[u8]) -> Option<u64> {
    (log.len() >= index::HEADER_LEN && &log[..8] == index::MAGIC).then(|| {
        let mut g = [0u8; 8];
        g.copy_from_slice(&log[8..16]);
        u64::from_le_bytes(g)
    })
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
            segments: Box::new(LocalSegments::new(&dir)),
            dir,
            dtype,
            state: RwLock::new(IndexState::default()),
            stamped: Mutex::new(HashMap::new()),
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

    /// Takes the writer lock of the store in `dir`, waiting for another writer to finish.
    fn lock_dir(dir: &Path) -> Result<File> {
        let path = dir.join(LOCK_FILE);
        let f = open_rw(&path)?;
        f.lock().map_err(io_err(&path))?;
        Ok(f)
    }

    /// The index as last replayed, for reading.
    fn state(&self) -> RwLockReadGuard<'_, IndexState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index as last replayed, for changing.
    fn state_mut(&self) -> RwLockWriteGuard<'_, IndexState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
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
            let state = self.state();
            if state.consumed > 0
                && log.len() as u64 == state.consumed
                && log_generation(&log) == Some(state.generation)
            {
                return Ok(());
            }
        }
        let mut state = self.state_mut();
        match log_generation(&log) {
            // Not taken for "no index yet", even when it is shorter than a header and so holds no transaction: the
            // bytes cannot tell a log being created from one cut short after its commits (records lost), so that
            // would hide real damage. Writers create the log whole instead (`open_index_for_append`), so a log
            // without its header is damage. (A build before that change, writing the same store, can still show
            // one for an instant while its first commit runs.)
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
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        if len < index::HEADER_LEN as u64 {
            // A new index appears whole, header included (written beside it, then renamed into place): readers take
            // no lock, and one that read the file between its creation and its header's write would see a log
            // without a header, which is what a damaged index looks like, and report the store corrupt.
            let generation = now_ns().max(1);
            write_atomic(&path, &index::encode_header(generation))?;
            *state = IndexState { generation, consumed: index::HEADER_LEN as u64, ..Default::default() };
        }
        let mut f = open_rw(&path)?;
        if len > state.consumed {
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
}
