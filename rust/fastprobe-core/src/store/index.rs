//! The index: an append-only log of checksummed transactions, replayed into an in-memory map.
//!
//! File layout (`index.fpi`, little-endian):
//!
//! ```text
//! header: "FPIDX001" (8 bytes), u64 generation
//! then transactions, back to back:
//!   "FPTX", u32 body_len, u32 crc32(body), body
//!   body: u64 seq, u32 n_ops, ops
//!   op 1 PUT     u64 record, u32 segment, u64 offset, u64 length, u32 site, u32 hidden, u8 dtype,
//!                u64 total_tokens, u32 n, then n x (32-byte key, u32 token count)
//!   op 2 DELETE  u64 record
//!   op 3 PROMPT  32-byte key, u32 byte length, UTF-8 text
//!   op 4 MOVE    u64 record, u32 segment, u64 offset
//!   op 5 SEGMENT u32 segment, u64 committed end (0: the segment number is used up, the file is gone)
//!   op 6 PUT     as op 1, for a pooled-only record (store format version 2)
//!   op 7 PUT     as op 1, for a last-token-only record (store format version 3)
//! ```
//!
//! A transaction is visible only once its whole body is on disk with a matching checksum, which makes a batch of
//! writes atomic. A damaged transaction in the middle of the log is reported and skipped (the parser resumes at the
//! next valid transaction); an incomplete one at the end is what a killed writer leaves behind, and the next writer
//! truncates it.

use std::collections::{BTreeMap, HashMap};

use super::codec::StorageDtype;
use super::record::{Content, Key};

/// Index file magic.
pub const MAGIC: &[u8; 8] = b"FPIDX001";
/// Index header length.
pub const HEADER_LEN: usize = 16;
/// Transaction magic.
pub const TX_MAGIC: &[u8; 4] = b"FPTX";
/// Upper bound on one transaction body, to reject absurd lengths from damaged bytes early.
pub const MAX_TX_BODY: usize = 1 << 30;

/// Where a record lives and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Record id (unique within a store, never reused).
    pub id: u64,
    /// Segment file number.
    pub segment: u32,
    /// Byte offset within the segment.
    pub offset: u64,
    /// Record length in bytes.
    pub length: u64,
    /// Site (layer) of every row.
    pub site: u32,
    /// Hidden size.
    pub hidden: u32,
    /// Storage dtype.
    pub dtype: StorageDtype,
    /// Total token rows.
    pub total_tokens: u64,
    /// Prompt keys, in row order.
    pub keys: Vec<Key>,
    /// Token counts, in row order.
    pub counts: Vec<u32>,
    /// What the record keeps: its tokens (op kind 1), its pooled vectors only (op kind 6) or its last-token vectors
    /// only (op kind 7).
    pub content: Content,
    /// Rows still reachable through the key map (a newer write of the same prompt and site hides a row).
    pub live_rows: u32,
}

/// One index operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A record was appended.
    Put(RecordMeta),
    /// A record was evicted.
    Delete(u64),
    /// A prompt's text, so prompts can be listed.
    Prompt(Key, String),
    /// A segment's committed end (written by index snapshots; 0 marks a removed segment's number as used).
    SegmentEnd {
        /// Segment number.
        segment: u32,
        /// Committed end in bytes.
        end: u64,
    },
    /// A record was copied elsewhere by compaction.
    Move {
        /// Record id.
        id: u64,
        /// New segment.
        segment: u32,
        /// New offset.
        offset: u64,
    },
}

/// The replayed state of an index log.
#[derive(Debug, Default, Clone)]
pub struct IndexState {
    /// Generation of the log file this state was read from.
    pub generation: u64,
    /// Live records by id.
    pub records: HashMap<u64, RecordMeta>,
    /// (prompt key, site) to (record id, row).
    pub by_key: HashMap<(Key, u32), (u64, u32)>,
    /// Prompt texts by key.
    pub prompts: HashMap<Key, String>,
    /// Committed end of each segment (bytes past it are uncommitted leftovers).
    pub segment_end: BTreeMap<u32, u64>,
    /// The highest segment number ever used (numbers are never reused).
    pub max_segment: u32,
    /// The next record id to hand out.
    pub next_id: u64,
    /// The next transaction sequence number.
    pub next_seq: u64,
    /// Bytes of the log consumed (end of the last valid transaction).
    pub consumed: u64,
    /// Damaged transactions found while replaying, described.
    pub damage: Vec<String>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|s| {
            let mut x = [0u8; 8];
            x.copy_from_slice(s);
            u64::from_le_bytes(x)
        })
    }
    fn key(&mut self) -> Option<Key> {
        self.take(32).map(|s| {
            let mut k = [0u8; 32];
            k.copy_from_slice(s);
            k
        })
    }
}

fn parse_ops(body: &[u8]) -> Option<(u64, Vec<Op>)> {
    let mut r = Reader { b: body, at: 0 };
    let seq = r.u64()?;
    let n_ops = r.u32()?;
    let mut ops = Vec::new();
    for _ in 0..n_ops {
        let op = match r.u8()? {
            kind @ (1 | 6 | 7) => {
                let id = r.u64()?;
                let segment = r.u32()?;
                let offset = r.u64()?;
                let length = r.u64()?;
                let site = r.u32()?;
                let hidden = r.u32()?;
                let dtype = StorageDtype::from_code(r.u8()?)?;
                let total_tokens = r.u64()?;
                let n = r.u32()? as usize;
                if n > body.len() / 36 {
                    return None;
                }
                let mut keys = Vec::with_capacity(n);
                let mut counts = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(r.key()?);
                    counts.push(r.u32()?);
                }
                let live_rows = u32::try_from(n).ok()?;
                Op::Put(RecordMeta {
                    id,
                    segment,
                    offset,
                    length,
                    site,
                    hidden,
                    dtype,
                    total_tokens,
                    keys,
                    counts,
                    content: Content::from_op_kind(kind)?,
                    live_rows,
                })
            }
            2 => Op::Delete(r.u64()?),
            3 => {
                let key = r.key()?;
                let len = r.u32()? as usize;
                Op::Prompt(key, String::from_utf8(r.take(len)?.to_vec()).ok()?)
            }
            4 => Op::Move { id: r.u64()?, segment: r.u32()?, offset: r.u64()? },
            5 => Op::SegmentEnd { segment: r.u32()?, end: r.u64()? },
            _ => return None,
        };
        ops.push(op);
    }
    (r.at == body.len()).then_some((seq, ops))
}

/// Serialises operations into one framed transaction.
#[must_use]
pub fn encode_tx(seq: u64, ops: &[Op]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        match op {
            Op::Put(m) => {
                body.push(m.content.op_kind());
                body.extend_from_slice(&m.id.to_le_bytes());
                body.extend_from_slice(&m.segment.to_le_bytes());
                body.extend_from_slice(&m.offset.to_le_bytes());
                body.extend_from_slice(&m.length.to_le_bytes());
                body.extend_from_slice(&m.site.to_le_bytes());
                body.extend_from_slice(&m.hidden.to_le_bytes());
                body.push(m.dtype.code());
                body.extend_from_slice(&m.total_tokens.to_le_bytes());
                body.extend_from_slice(&(m.keys.len() as u32).to_le_bytes());
                for (k, c) in m.keys.iter().zip(&m.counts) {
                    body.extend_from_slice(k);
                    body.extend_from_slice(&c.to_le_bytes());
                }
            }
            Op::Delete(id) => {
                body.push(2);
                body.extend_from_slice(&id.to_le_bytes());
            }
            Op::Prompt(k, text) => {
                body.push(3);
                body.extend_from_slice(k);
                body.extend_from_slice(&(text.len() as u32).to_le_bytes());
                body.extend_from_slice(text.as_bytes());
            }
            Op::SegmentEnd { segment, end } => {
                body.push(5);
                body.extend_from_slice(&segment.to_le_bytes());
                body.extend_from_slice(&end.to_le_bytes());
            }
            Op::Move { id, segment, offset } => {
                body.push(4);
                body.extend_from_slice(&id.to_le_bytes());
                body.extend_from_slice(&segment.to_le_bytes());
                body.extend_from_slice(&offset.to_le_bytes());
            }
        }
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(TX_MAGIC);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Encodes an index file header.
#[must_use]
pub fn encode_header(generation: u64) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&generation.to_le_bytes());
    h
}

/// Tries to read one valid transaction at `at`; returns its ops and end offset.
fn tx_at(log: &[u8], at: usize) -> Option<(u64, Vec<Op>, usize)> {
    let head = log.get(at..at.checked_add(12)?)?;
    if &head[0..4] != TX_MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if len > MAX_TX_BODY {
        return None;
    }
    let body = log.get(at + 12..at + 12 + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let (seq, ops) = parse_ops(body)?;
    Some((seq, ops, at + 12 + len))
}

impl IndexState {
    /// Parses a whole index file.
    ///
    /// Returns `None` when the header itself is not an index header.
    #[must_use]
    pub fn from_log(log: &[u8]) -> Option<Self> {
        if log.len() < HEADER_LEN || &log[..8] != MAGIC {
            return None;
        }
        let mut g = [0u8; 8];
        g.copy_from_slice(&log[8..16]);
        let mut state =
            IndexState { generation: u64::from_le_bytes(g), consumed: HEADER_LEN as u64, ..Default::default() };
        state.replay(log);
        Some(state)
    }

    /// Replays the transactions of `log` after `self.consumed`.
    ///
    /// Stops before an incomplete or damaged transaction that no valid transaction follows (a writer's unfinished
    /// tail); skips and reports a damaged one that valid transactions follow.
    pub fn replay(&mut self, log: &[u8]) {
        let mut at = usize::try_from(self.consumed).unwrap_or(usize::MAX);
        while at < log.len() {
            if let Some((seq, ops, end)) = tx_at(log, at) {
                for op in ops {
                    self.apply(op);
                }
                self.next_seq = self.next_seq.max(seq + 1);
                at = end;
                self.consumed = at as u64;
                continue;
            }
            // Look for the next valid transaction; if there is none, this is an unfinished tail.
            let next =
                (at + 1..log.len().saturating_sub(11)).find(|&p| &log[p..p + 4] == TX_MAGIC && tx_at(log, p).is_some());
            match next {
                Some(p) => {
                    self.damage.push(format!(
                        "index transaction at byte {at} is damaged ({} bytes skipped); the records it added are lost",
                        p - at
                    ));
                    at = p;
                    self.consumed = at as u64;
                }
                None => break,
            }
        }
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Put(meta) => {
                self.next_id = self.next_id.max(meta.id + 1);
                self.max_segment = self.max_segment.max(meta.segment);
                let end = self.segment_end.entry(meta.segment).or_insert(0);
                *end = (*end).max(meta.offset + meta.length);
                for (row, key) in meta.keys.iter().enumerate() {
                    if let Some((old, _)) = self.by_key.insert((*key, meta.site), (meta.id, row as u32)) {
                        self.hide_row(old);
                    }
                }
                self.records.insert(meta.id, meta);
            }
            Op::Delete(id) => {
                if let Some(meta) = self.records.remove(&id) {
                    for key in &meta.keys {
                        if self.by_key.get(&(*key, meta.site)).is_some_and(|&(r, _)| r == id) {
                            self.by_key.remove(&(*key, meta.site));
                        }
                    }
                }
            }
            Op::Prompt(key, text) => {
                self.prompts.insert(key, text);
            }
            Op::SegmentEnd { segment, end } => {
                self.max_segment = self.max_segment.max(segment);
                if end > 0 {
                    let e = self.segment_end.entry(segment).or_insert(0);
                    *e = (*e).max(end);
                }
            }
            Op::Move { id, segment, offset } => {
                self.max_segment = self.max_segment.max(segment);
                if let Some(meta) = self.records.get_mut(&id) {
                    meta.segment = segment;
                    meta.offset = offset;
                    let end = self.segment_end.entry(segment).or_insert(0);
                    *end = (*end).max(offset + meta.length);
                }
            }
        }
    }

    /// One row of record `id` was superseded; drops the record when none is left.
    fn hide_row(&mut self, id: u64) {
        if let Some(meta) = self.records.get_mut(&id) {
            meta.live_rows = meta.live_rows.saturating_sub(1);
            if meta.live_rows == 0 {
                self.records.remove(&id);
            }
        }
    }

    /// Bytes held by live records, per segment.
    #[must_use]
    pub fn live_bytes(&self) -> BTreeMap<u32, u64> {
        let mut out = BTreeMap::new();
        for m in self.records.values() {
            *out.entry(m.segment).or_insert(0) += m.length;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::key_of;

    fn put(id: u64, site: u32, prompts: &[&str]) -> Op {
        Op::Put(RecordMeta {
            id,
            segment: 1,
            offset: 16 + id * 100,
            length: 100,
            site,
            hidden: 4,
            dtype: StorageDtype::Bfloat16,
            total_tokens: prompts.len() as u64,
            keys: prompts.iter().map(|p| key_of(p)).collect(),
            counts: vec![1; prompts.len()],
            content: [Content::Tokens, Content::Pooled, Content::LastToken][(id % 3) as usize],
            live_rows: prompts.len() as u32,
        })
    }

    fn log(txs: &[Vec<Op>]) -> Vec<u8> {
        let mut out = encode_header(42);
        for (i, ops) in txs.iter().enumerate() {
            out.extend(encode_tx(i as u64, ops));
        }
        out
    }

    #[test]
    fn replay_puts_overwrites_and_deletes() {
        let l = log(&[
            vec![put(0, 3, &["a", "b"]), Op::Prompt(key_of("a"), "a".into())],
            vec![put(1, 3, &["b"])],
            vec![Op::Delete(0)],
        ]);
        let s = IndexState::from_log(&l).unwrap();
        assert_eq!(s.generation, 42);
        assert_eq!(s.by_key.get(&(key_of("b"), 3)), Some(&(1, 0)));
        assert_eq!(s.by_key.get(&(key_of("a"), 3)), None);
        assert_eq!(s.records.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.records[&1].content, Content::Pooled, "record 1 was written as pooled-only (op 6)");
        assert_eq!(s.prompts[&key_of("a")], "a");
        assert_eq!(s.next_id, 2);
        assert!(s.damage.is_empty());
    }

    #[test]
    fn every_record_kind_survives_encoding_and_supersedes_any_other() {
        // Records 0, 1, 2 are full, pooled-only and last-token-only (op kinds 1, 6, 7); each replaces the last.
        let l = log(&[vec![put(0, 2, &["p"])], vec![put(1, 2, &["p"]), put(2, 3, &["p"])], vec![put(3, 3, &["q"])]]);
        let s = IndexState::from_log(&l).unwrap();
        assert!(s.damage.is_empty());
        assert_eq!(s.records[&1].content, Content::Pooled);
        assert_eq!(s.records[&2].content, Content::LastToken);
        assert_eq!(s.records[&3].content, Content::Tokens);
        assert_eq!(s.by_key.get(&(key_of("p"), 2)), Some(&(1, 0)), "record 0's only row was superseded");
        assert!(!s.records.contains_key(&0));
        let l = log(&[vec![put(2, 3, &["p"])], vec![put(3, 3, &["p"])]]);
        let s = IndexState::from_log(&l).unwrap();
        assert_eq!(s.by_key.get(&(key_of("p"), 3)), Some(&(3, 0)), "a full record supersedes a last-token one");
        assert_eq!(s.records.keys().copied().collect::<Vec<_>>(), vec![3]);
        let op7 = encode_tx(0, &[put(2, 3, &["p"])]);
        assert_eq!(op7[12 + 12], 7, "a last-token-only record is put by op kind 7");
    }

    #[test]
    fn unfinished_tail_is_ignored_and_middle_damage_is_skipped() {
        let full = log(&[vec![put(0, 1, &["a"])], vec![put(1, 1, &["b"])], vec![put(2, 1, &["c"])]]);
        let one = log(&[vec![put(0, 1, &["a"])]]).len();
        let two = log(&[vec![put(0, 1, &["a"])], vec![put(1, 1, &["b"])]]).len();
        // A writer killed while appending the third transaction.
        for cut in two..full.len() {
            let s = IndexState::from_log(&full[..cut]).unwrap();
            assert_eq!(s.records.len(), 2);
            assert_eq!(s.consumed as usize, two);
            assert!(s.damage.is_empty());
        }
        // A bit flipped inside the second transaction: it is reported and skipped, the third survives.
        let mut bad = full.clone();
        bad[one + 20] ^= 0x10;
        let s = IndexState::from_log(&bad).unwrap();
        assert_eq!(s.records.keys().copied().collect::<std::collections::BTreeSet<_>>(), [0, 2].into());
        assert_eq!(s.damage.len(), 1);
        assert!(s.damage[0].contains(&format!("at byte {one}")));
    }

    proptest::proptest! {
        #[test]
        fn replaying_arbitrary_bytes_never_panics(tail in proptest::collection::vec(0u8..=255, 0..300)) {
            let mut l = encode_header(1);
            l.extend_from_slice(&tail);
            let _ = IndexState::from_log(&l);
        }

        #[test]
        fn replaying_mutated_logs_never_panics(pos in 0usize..400, val in 0u8..=255) {
            let mut l = log(&[vec![put(0, 1, &["a", "b"]), Op::Prompt(key_of("a"), "a".into())], vec![Op::Delete(0)]]);
            let p = pos % l.len();
            l[p] = val;
            let _ = IndexState::from_log(&l);
        }
    }
}
