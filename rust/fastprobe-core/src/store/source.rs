//! Where reads find segment bytes: the seam between the store and its segment files.
//!
//! Every read of a record asks the store's [`SegmentSource`] for that record's bytes, a range of one segment. The
//! one source today is [`LocalSegments`], which memory-maps the segment files of the store directory; a source over
//! object storage implements the same trait. Writes, compaction and eviction work on the local directory.

use std::collections::HashMap;
use std::fs::File;
use std::ops::{Deref, Range};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use memmap2::Mmap;

use super::layout::{io_err, segment_path};
use crate::error::{Error, Result};

/// What a store reads its segments through.
pub trait SegmentSource: Send + Sync {
    /// The bytes `range` of segment `segment`.
    ///
    /// # Errors
    /// [`Error::Io`] when the segment cannot be read (of kind [`std::io::ErrorKind::NotFound`] when it is gone,
    /// which readers take as a sign that a compaction moved its records); [`Error::Corrupt`] when the segment ends
    /// before `range.end`.
    fn read(&self, segment: u32, range: Range<u64>) -> Result<SegmentBytes>;

    /// Lets go of whatever is held of `segment` (compaction removed it).
    fn forget(&self, segment: u32);

    /// Lets go of whatever is held of every segment (the index is being reloaded).
    fn forget_all(&self);

    /// The segment's name in messages (a path, an address).
    fn describe(&self, segment: u32) -> String;
}

/// Storage that segment bytes are borrowed from.
type Backing = Arc<dyn Deref<Target = [u8]> + Send + Sync>;

/// A range of a segment's bytes, which keeps what holds them alive (a memory map, a buffer) while it lives.
pub struct SegmentBytes {
    backing: Backing,
    range: Range<usize>,
}

impl SegmentBytes {
    /// The bytes `range` of `backing`.
    ///
    /// # Panics
    /// If `range` does not lie inside `backing`.
    #[must_use]
    pub fn new(backing: Backing, range: Range<usize>) -> Self {
        assert!(range.start <= range.end && range.end <= backing.len(), "segment range out of bounds");
        Self { backing, range }
    }
}

impl Deref for SegmentBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.backing[self.range.clone()]
    }
}

/// The segment files of a local store directory, memory-mapped, each map kept for later reads.
pub struct LocalSegments {
    dir: PathBuf,
    maps: RwLock<HashMap<u32, Arc<Mmap>>>,
}

impl LocalSegments {
    /// The segments of the store in `dir`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), maps: RwLock::new(HashMap::new()) }
    }

    /// A map of `segment` that covers at least `need_end` bytes: the one kept, or a new one when the kept one is
    /// shorter (the segment has grown since).
    fn map(&self, segment: u32, need_end: u64) -> Result<Arc<Mmap>> {
        if let Some(m) = self.maps.read().unwrap_or_else(PoisonError::into_inner).get(&segment)
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
        self.maps.write().unwrap_or_else(PoisonError::into_inner).insert(segment, Arc::clone(&map));
        Ok(map)
    }
}

impl SegmentSource for LocalSegments {
    fn read(&self, segment: u32, range: Range<u64>) -> Result<SegmentBytes> {
        let map = self.map(segment, range.end)?;
        Ok(SegmentBytes::new(map, range.start as usize..range.end as usize))
    }

    fn forget(&self, segment: u32) {
        self.maps.write().unwrap_or_else(PoisonError::into_inner).remove(&segment);
    }

    fn forget_all(&self) {
        self.maps.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn describe(&self, segment: u32) -> String {
        segment_path(&self.dir, segment).display().to_string()
    }
}
