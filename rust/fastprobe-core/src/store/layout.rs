//! The store directory on disk: file names, the segment header and segment numbering, and the file operations the
//! rest of the store builds on (atomic replacement, directory syncs, sizes).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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

/// Maps an I/O error on `path` into [`Error::Io`].
pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// Opens a file for reading and writing, creating it if needed, without truncating it.
pub(super) fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(io_err(path))
}

/// Syncs a directory, so that files created, renamed or removed in it survive a crash.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename, directory sync).
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

/// The file of segment `segment` in the store directory `dir`.
pub(super) fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(SEGMENTS_DIR).join(format!("{segment:08}.fps"))
}

/// Writes a segment file's header into an empty file.
pub(super) fn write_segment_header(f: &mut File, path: &Path, segment: u32) -> Result<()> {
    let mut header = SEGMENT_MAGIC.to_vec();
    header.extend_from_slice(&segment.to_le_bytes());
    header.extend_from_slice(&[0u8; 4]);
    f.write_all(&header).map_err(io_err(path))
}

/// Every segment file present in the store directory `dir`, with its number.
pub(super) fn segment_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let segments = dir.join(SEGMENTS_DIR);
    let mut found = Vec::new();
    for entry in fs::read_dir(&segments).map_err(io_err(&segments))? {
        let path = entry.map_err(io_err(&segments))?.path();
        let number = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".fps"));
        if let Some(n) = number.and_then(|n| n.parse::<u32>().ok()) {
            found.push((n, path));
        }
    }
    Ok(found)
}

/// The lowest segment number above `max_used` (the highest ever used) and every segment file present: numbers are
/// never reused, even of removed segments.
pub(super) fn next_free_segment(dir: &Path, max_used: u32) -> Result<u32> {
    Ok(segment_files(dir)?.iter().fold(max_used + 1, |next, &(n, _)| next.max(n + 1)))
}

/// Total size of the regular files under `dir`.
pub(super) fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let meta = entry.metadata().map_err(io_err(&entry.path()))?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}
