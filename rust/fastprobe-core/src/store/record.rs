//! One record: the activations of a batch of prompts at one site (layer), self-describing and checksummed.
//!
//! Layout (little-endian; see `docs/store-format.md`):
//!
//! ```text
//! 0   magic "FPRC"          4   u16 version          6  u8 dtype        7  u8 codec (1 = shuffle + zstd)
//! 8   u32 site              12  u32 n_prompts        16 u32 hidden      20 u32 flags (bit 0: pooled only,
//!                                                                                  bit 1: last token only)
//! 24  u64 total_tokens
//! 32  u64 frame_len[4]      frames: pooled last, pooled mean, pooled first, tokens
//! 64  u32 frame_crc[4]      CRC-32 (IEEE) of each frame's bytes
//! 80  u32 meta_crc          CRC-32 of bytes 0..80 followed by bytes 84..(end of counts)
//! 84  u32 reserved (0)
//! 88  n_prompts x 32 bytes  prompt keys (SHA-256 of the UTF-8 prompt)
//!     n_prompts x u32       token counts
//!     the four frames, back to back
//! ```
//!
//! A *pooled-only* record (flag bit 0) keeps the three pooled frames and the token counts but not the tokens: its
//! token frame is empty. It serves last-token, mean and first-token reads at a fraction of the bytes.
//!
//! A *last-token-only* record (flag bit 1) keeps the last-token frame and the token counts only: frames 1 to 3 are
//! empty. It holds what a pooled activation dataset gives (each prompt's last-token vector) and serves last-token
//! reads only; every other read reports the prompt as missing what it needs.

use ndarray::ArrayView2;

use super::codec::{self, StorageDtype};
use crate::error::{Error, Result};
use crate::pooling::{self, Pooling};

/// A prompt's key: the SHA-256 of its UTF-8 text.
pub type Key = [u8; 32];

/// Record magic bytes.
pub const MAGIC: &[u8; 4] = b"FPRC";
/// Record format version.
pub const VERSION: u16 = 1;
/// Codec code: byte-shuffled values, one zstd frame per block.
pub const CODEC_SHUFFLE_ZSTD: u8 = 1;
/// Bytes before the keys.
pub const HEADER_LEN: usize = 88;
/// Flag bit: the record holds the pooled vectors only (its token frame is empty).
pub const FLAG_POOLED_ONLY: u32 = 1;
/// Flag bit: the record holds the last-token vectors only (its mean, first-token and token frames are empty).
pub const FLAG_LAST_TOKEN_ONLY: u32 = 2;

/// What a record keeps, from least to most: each kind serves every read the kinds below it serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Content {
    /// The last-token vectors and the token counts (flag bit 1; index op 7; store format version 3).
    LastToken,
    /// The three pooled vectors and the token counts (flag bit 0; index op 6; store format version 2).
    Pooled,
    /// The tokens and the three pooled vectors (no flag; index op 1; store format version 1).
    Tokens,
}

impl Content {
    /// The record flags of this kind.
    #[must_use]
    pub fn flags(self) -> u32 {
        match self {
            Content::LastToken => FLAG_LAST_TOKEN_ONLY,
            Content::Pooled => FLAG_POOLED_ONLY,
            Content::Tokens => 0,
        }
    }

    /// The kind marked by record flags, or `None` for flags no kind has.
    #[must_use]
    pub fn from_flags(flags: u32) -> Option<Self> {
        match flags {
            0 => Some(Content::Tokens),
            FLAG_POOLED_ONLY => Some(Content::Pooled),
            FLAG_LAST_TOKEN_ONLY => Some(Content::LastToken),
            _ => None,
        }
    }

    /// The index operation kind that adds a record of this kind.
    #[must_use]
    pub fn op_kind(self) -> u8 {
        match self {
            Content::Tokens => 1,
            Content::Pooled => 6,
            Content::LastToken => 7,
        }
    }

    /// The kind added by an index operation kind, or `None` for an operation that adds no record.
    #[must_use]
    pub fn from_op_kind(kind: u8) -> Option<Self> {
        match kind {
            1 => Some(Content::Tokens),
            6 => Some(Content::Pooled),
            7 => Some(Content::LastToken),
            _ => None,
        }
    }

    /// The lowest store format version (`store.json`) whose readers know this kind.
    #[must_use]
    pub fn store_version(self) -> u32 {
        match self {
            Content::Tokens => 1,
            Content::Pooled => 2,
            Content::LastToken => 3,
        }
    }

    /// How many frames, from frame 0, the kind stores (the rest are empty).
    #[must_use]
    pub fn frames(self) -> usize {
        match self {
            Content::LastToken => 1,
            Content::Pooled => 3,
            Content::Tokens => 4,
        }
    }

    /// The least a record must keep to serve a read with `pooling`.
    #[must_use]
    pub fn needed_for(pooling: Pooling) -> Self {
        match pooling {
            Pooling::LastToken => Content::LastToken,
            Pooling::Mean | Pooling::FirstToken => Content::Pooled,
            Pooling::Max | Pooling::Min => Content::Tokens,
        }
    }

    /// Whether a record of this kind serves a read that needs `need`.
    #[must_use]
    pub fn serves(self, need: Content) -> bool {
        self >= need
    }

    /// What a record of this kind holds, for messages ("stored ... as ...").
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Content::LastToken => "its last-token vector only (a pooled activation dataset's form)",
            Content::Pooled => "pooled vectors only (last token, mean, first token)",
            Content::Tokens => "every token with its pooled vectors",
        }
    }

    /// The name of a record of this kind, for messages about damage ("a ... record").
    fn name(self) -> &'static str {
        match self {
            Content::LastToken => "last-token-only",
            Content::Pooled => "pooled-only",
            Content::Tokens => "full",
        }
    }
}

/// The pooled vectors a record keeps beside its tokens, in frame order.
pub const POOLED: [Pooling; 3] = [Pooling::LastToken, Pooling::Mean, Pooling::FirstToken];
/// Frame index of the token block.
pub const TOKENS_FRAME: usize = 3;

/// The frame index of a stored pooling, or `None` for poolings computed from tokens at read time.
#[must_use]
pub fn pooled_frame(pooling: Pooling) -> Option<usize> {
    POOLED.iter().position(|&p| p == pooling)
}

/// Computes the SHA-256 key of a prompt.
#[must_use]
pub fn key_of(prompt: &str) -> Key {
    use sha2::{Digest, Sha256};
    Sha256::digest(prompt.as_bytes()).into()
}

/// Encodes a record from unpadded token activations.
///
/// `tokens` is `(sum of counts, hidden)`: prompt `i`'s `counts[i]` rows, prompts in `keys` order. With
/// `keep_tokens` false the record is pooled-only: the pooled vectors are computed from `tokens`, which are then
/// dropped.
///
/// # Errors
/// [`Error::InvalidInput`] / [`Error::Shape`] when the counts do not match `tokens` or a prompt has no token.
pub fn encode(
    site: u32,
    dtype: StorageDtype,
    keys: &[Key],
    counts: &[u32],
    tokens: ArrayView2<'_, f32>,
    keep_tokens: bool,
) -> Result<Vec<u8>> {
    if keys.len() != counts.len() {
        return Err(Error::shape(
            "token counts",
            format!("({},) (one per prompt)", keys.len()),
            format!("({},)", counts.len()),
        ));
    }
    let total: usize = counts.iter().map(|&c| c as usize).sum();
    let (rows, hidden) = tokens.dim();
    if rows != total {
        return Err(Error::shape(
            "tokens",
            format!("({total}, hidden) (the sum of the token counts)"),
            format!("({rows}, {hidden})"),
        ));
    }
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    offsets.push(0usize);
    for &c in counts {
        offsets.push(offsets.last().copied().unwrap_or(0) + c as usize);
    }
    let tokens = tokens.as_standard_layout();
    let n = keys.len();
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(4);
    let mut pooled_planes = Vec::with_capacity(3);
    for p in POOLED {
        let pooled = pooling::pool_ragged(tokens.view(), &offsets, p)?;
        let planes = codec::encode_shuffled(pooled.as_slice().unwrap_or_default(), dtype);
        frames.push(codec::compress(&codec::transpose_high_planes(&planes, n, hidden, dtype, true), None)?);
        pooled_planes.push(planes);
    }
    let content = if keep_tokens {
        let prefix = tokens_prefix(&pooled_planes, dtype);
        let planes = codec::encode_shuffled(tokens.as_slice().unwrap_or_default(), dtype);
        frames.push(codec::compress(&planes, Some(&prefix))?);
        Content::Tokens
    } else {
        frames.push(Vec::new());
        Content::Pooled
    };
    assemble(site, dtype, keys, counts, hidden, content, &frames)
}

/// Encodes a last-token-only record from each prompt's last-token vector and its token count.
///
/// `last` is `(n prompts, hidden)`, prompts in `keys` order; `counts[i]` is prompt `i`'s token count (each >= 1).
///
/// # Errors
/// [`Error::Shape`] when `last` or `counts` does not hold one entry per key, [`Error::InvalidInput`] when a count
/// is 0.
pub fn encode_last_token(
    site: u32,
    dtype: StorageDtype,
    keys: &[Key],
    counts: &[u32],
    last: ArrayView2<'_, f32>,
) -> Result<Vec<u8>> {
    let n = keys.len();
    if counts.len() != n {
        return Err(Error::shape("token counts", format!("({n},) (one per prompt)"), format!("({},)", counts.len())));
    }
    let (rows, hidden) = last.dim();
    if rows != n {
        return Err(Error::shape(
            "last-token vectors",
            format!("({n}, hidden) (one row per prompt)"),
            format!("({rows}, {hidden})"),
        ));
    }
    if let Some(i) = counts.iter().position(|&c| c == 0) {
        return Err(Error::InvalidInput(format!("prompt {i} has 0 tokens; every stored prompt needs at least one")));
    }
    let last = last.as_standard_layout();
    let planes = codec::encode_shuffled(last.as_slice().unwrap_or_default(), dtype);
    let frame = codec::compress(&codec::transpose_high_planes(&planes, n, hidden, dtype, true), None)?;
    assemble(site, dtype, keys, counts, hidden, Content::LastToken, &[frame, Vec::new(), Vec::new(), Vec::new()])
}

/// Lays out a record: header, keys, counts and the four frames (empty ones included).
fn assemble(
    site: u32,
    dtype: StorageDtype,
    keys: &[Key],
    counts: &[u32],
    hidden: usize,
    content: Content,
    frames: &[Vec<u8>],
) -> Result<Vec<u8>> {
    let n = keys.len();
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let body_len: usize = frames.iter().map(Vec::len).sum::<usize>() + n * 36;
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(dtype.code());
    out.push(CODEC_SHUFFLE_ZSTD);
    out.extend_from_slice(&site.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(n).map_err(|_| Error::InvalidInput("too many prompts in one batch".into()))?.to_le_bytes(),
    );
    out.extend_from_slice(
        &u32::try_from(hidden).map_err(|_| Error::InvalidInput("hidden size too large".into()))?.to_le_bytes(),
    );
    out.extend_from_slice(&content.flags().to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    for f in frames {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
    }
    for f in frames {
        out.extend_from_slice(&crc32fast::hash(f).to_le_bytes());
    }
    let meta_crc_at = out.len();
    out.extend_from_slice(&[0u8; 8]);
    for k in keys {
        out.extend_from_slice(k);
    }
    for c in counts {
        out.extend_from_slice(&c.to_le_bytes());
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..meta_crc_at]);
    h.update(&out[meta_crc_at + 4..]);
    out[meta_crc_at..meta_crc_at + 4].copy_from_slice(&h.finalize().to_le_bytes());
    for f in frames {
        out.extend_from_slice(f);
    }
    Ok(out)
}

/// The prefix the token frame is compressed against: the row-major byte planes of the `3n x hidden` block
/// `[last; mean; first]`, i.e. plane by plane, frame 0's plane, then frame 1's, then frame 2's. It lets the token
/// frame refer to the last and first token rows (exact copies) instead of storing them twice.
fn tokens_prefix(pooled_planes: &[Vec<u8>], dtype: StorageDtype) -> Vec<u8> {
    let k = dtype.size();
    let m = pooled_planes.first().map_or(0, |p| p.len() / k);
    let mut prefix = Vec::with_capacity(3 * m * k);
    for plane in 0..k {
        for frame in pooled_planes {
            prefix.extend_from_slice(&frame[plane * m..(plane + 1) * m]);
        }
    }
    prefix
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// A parsed, checked view of a record's bytes.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    bytes: &'a [u8],
    /// Storage dtype of the values.
    pub dtype: StorageDtype,
    /// The site (layer) the record belongs to.
    pub site: u32,
    /// Number of prompts.
    pub n_prompts: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Total token rows (also in pooled-only and last-token-only records, which keep the counts but not the rows).
    pub total_tokens: usize,
    /// What the record keeps (its flags).
    pub content: Content,
    frame_start: [usize; 4],
    frame_len: [usize; 4],
    frame_crc: [u32; 4],
}

impl<'a> RecordView<'a> {
    /// Parses and checks a record's header, keys and counts (not the frames: see [`RecordView::frame`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on any inconsistency; never panics on arbitrary bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let bad = |what: &str| Error::Corrupt(format!("record: {what}"));
        if bytes.len() < HEADER_LEN {
            return Err(bad(&format!("{} bytes is shorter than a record header ({HEADER_LEN})", bytes.len())));
        }
        if &bytes[0..4] != MAGIC {
            return Err(bad("bad magic (not a record)"));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(bad(&format!("unsupported record version {version} (this build reads {VERSION})")));
        }
        let dtype =
            StorageDtype::from_code(bytes[6]).ok_or_else(|| bad(&format!("unknown dtype code {}", bytes[6])))?;
        if bytes[7] != CODEC_SHUFFLE_ZSTD {
            return Err(bad(&format!("unknown codec {}", bytes[7])));
        }
        let site = u32_at(bytes, 8);
        let n_prompts = u32_at(bytes, 12) as usize;
        let hidden = u32_at(bytes, 16) as usize;
        let flags = u32_at(bytes, 20);
        let content = Content::from_flags(flags).ok_or_else(|| bad(&format!("unknown flags {flags:#x}")))?;
        let total_tokens = usize::try_from(u64_at(bytes, 24)).map_err(|_| bad("token count overflows"))?;
        let meta_end = n_prompts
            .checked_mul(36)
            .and_then(|m| m.checked_add(HEADER_LEN))
            .ok_or_else(|| bad("prompt count overflows"))?;
        if meta_end > bytes.len() {
            return Err(bad(&format!(
                "{n_prompts} prompts need {meta_end} bytes of header, the record has {}",
                bytes.len()
            )));
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[..80]);
        h.update(&bytes[84..meta_end]);
        if h.finalize() != u32_at(bytes, 80) {
            return Err(bad("header checksum mismatch"));
        }
        let mut frame_start = [0usize; 4];
        let mut frame_len = [0usize; 4];
        let mut frame_crc = [0u32; 4];
        let mut at = meta_end;
        for i in 0..4 {
            let len = usize::try_from(u64_at(bytes, 32 + 8 * i)).map_err(|_| bad("frame length overflows"))?;
            frame_start[i] = at;
            frame_len[i] = len;
            frame_crc[i] = u32_at(bytes, 64 + 4 * i);
            at = at.checked_add(len).ok_or_else(|| bad("frame length overflows"))?;
        }
        if at != bytes.len() {
            return Err(bad(&format!("frames end at byte {at}, the record has {} bytes", bytes.len())));
        }
        if let Some(f) = (content.frames()..4).find(|&f| frame_len[f] != 0) {
            let what = if f == TOKENS_FRAME { "token".to_owned() } else { format!("pooled {}", POOLED[f]) };
            return Err(bad(&format!("a {} record has a {what} frame", content.name())));
        }
        let counts_total: u64 =
            (0..n_prompts).map(|i| u64::from(u32_at(bytes, HEADER_LEN + 32 * n_prompts + 4 * i))).sum();
        if counts_total != total_tokens as u64 {
            return Err(bad("token counts do not add up to the token total"));
        }
        Ok(Self { bytes, dtype, site, n_prompts, hidden, total_tokens, content, frame_start, frame_len, frame_crc })
    }

    /// The total record length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the record holds no prompt.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n_prompts == 0
    }

    /// The key of prompt `i`.
    #[must_use]
    pub fn key(&self, i: usize) -> Key {
        let mut k = [0u8; 32];
        k.copy_from_slice(&self.bytes[HEADER_LEN + 32 * i..HEADER_LEN + 32 * (i + 1)]);
        k
    }

    /// The token count of prompt `i`.
    #[must_use]
    pub fn count(&self, i: usize) -> u32 {
        u32_at(self.bytes, HEADER_LEN + 32 * self.n_prompts + 4 * i)
    }

    /// The checked bytes of frame `i` (0..3 pooled, 3 tokens).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on a checksum mismatch.
    pub fn frame(&self, i: usize) -> Result<&'a [u8]> {
        let f = &self.bytes[self.frame_start[i]..self.frame_start[i] + self.frame_len[i]];
        if crc32fast::hash(f) != self.frame_crc[i] {
            let what = if i == TOKENS_FRAME { "tokens".to_owned() } else { format!("pooled {}", POOLED[i]) };
            return Err(Error::Corrupt(format!("record: {what} frame checksum mismatch")));
        }
        Ok(f)
    }

    /// The row-major byte planes of pooled frame `frame` (0 last token, 1 mean, 2 first token).
    fn pooled_planes(&self, frame: usize) -> Result<Vec<u8>> {
        let m = self.n_prompts * self.hidden;
        let mut out = vec![0u8; m * self.dtype.size()];
        self.pooled_planes_into(frame, &mut out, m)?;
        Ok(out)
    }

    /// Decodes pooled frame `frame` into row-major byte planes, plane `p` at `out[p * stride..]`.
    fn pooled_planes_into(&self, frame: usize, out: &mut [u8], stride: usize) -> Result<()> {
        if frame >= self.content.frames() {
            return Err(Error::Missing(format!(
                "this record holds {}; its pooled {} vectors were not kept",
                self.content.describe(),
                POOLED[frame]
            )));
        }
        let m = self.n_prompts * self.hidden;
        let columns = codec::decompress(self.frame(frame)?, m * self.dtype.size(), None)?;
        codec::transpose_high_planes_into(&columns, self.n_prompts, self.hidden, self.dtype, false, out, stride);
        Ok(())
    }

    /// Decodes a pooled frame: `(n_prompts * hidden)` values, prompt-major.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the frame is damaged; [`Error::Missing`] when the record does not keep it.
    pub fn decode_pooled(&self, frame: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.n_prompts * self.hidden];
        codec::decode_shuffled(&self.pooled_planes(frame)?, self.dtype, &mut out)?;
        Ok(out)
    }

    /// Decompresses the token frame into its byte planes (`total_tokens * hidden` values; see
    /// [`codec::widen_range`] to decode rows from them).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the frame (or a pooled frame it refers to) is damaged; [`Error::Missing`] for a
    /// record that does not keep its tokens.
    pub fn token_planes(&self) -> Result<Vec<u8>> {
        if self.content != Content::Tokens {
            return Err(Error::Missing(format!(
                "this record holds {}; its tokens were not kept",
                self.content.describe()
            )));
        }
        // The prefix (see `tokens_prefix`), assembled straight from the pooled frames.
        let m = self.n_prompts * self.hidden;
        let mut prefix = vec![0u8; 3 * m * self.dtype.size()];
        for f in 0..3 {
            self.pooled_planes_into(f, &mut prefix[f * m..], 3 * m)?;
        }
        codec::decompress(self.frame(TOKENS_FRAME)?, self.total_tokens * self.hidden * self.dtype.size(), Some(&prefix))
    }

    /// Decodes the token frame: `(total_tokens * hidden)` values, prompts in order.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the frame (or a pooled frame it refers to) is damaged.
    pub fn decode_tokens(&self) -> Result<Vec<f32>> {
        let m = self.total_tokens * self.hidden;
        let mut out = vec![0.0f32; m];
        codec::widen_range(&self.token_planes()?, m, self.dtype, 0, &mut out);
        Ok(out)
    }

    /// Row offsets of each prompt within the token block (`n_prompts + 1` entries).
    #[must_use]
    pub fn token_offsets(&self) -> Vec<usize> {
        let mut o = Vec::with_capacity(self.n_prompts + 1);
        o.push(0);
        for i in 0..self.n_prompts {
            o.push(o[i] + self.count(i) as usize);
        }
        o
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn sample() -> (Vec<Key>, Vec<u32>, Array2<f32>) {
        let keys = vec![key_of("a"), key_of("b")];
        let counts = vec![2, 3];
        let tokens = Array2::from_shape_fn((5, 4), |(i, j)| (i * 4 + j) as f32 * 0.5 - 3.0);
        (keys, counts, tokens)
    }

    #[test]
    fn roundtrip_float32() {
        let (keys, counts, tokens) = sample();
        let bytes = encode(7, StorageDtype::Float32, &keys, &counts, tokens.view(), true).unwrap();
        let r = RecordView::parse(&bytes).unwrap();
        assert_eq!((r.site, r.n_prompts, r.hidden, r.total_tokens), (7, 2, 4, 5));
        assert_eq!(r.key(1), key_of("b"));
        assert_eq!(r.token_offsets(), vec![0, 2, 5]);
        assert_eq!(r.decode_tokens().unwrap(), tokens.as_slice().unwrap());
        let last = r.decode_pooled(0).unwrap();
        assert_eq!(&last[..4], tokens.row(1).as_slice().unwrap());
        assert_eq!(&last[4..], tokens.row(4).as_slice().unwrap());
        let first = r.decode_pooled(2).unwrap();
        assert_eq!(&first[4..], tokens.row(2).as_slice().unwrap());
    }

    #[test]
    fn pooled_only_record_keeps_pooled_vectors_and_counts_but_no_tokens() {
        let (keys, counts, tokens) = sample();
        let full = encode(7, StorageDtype::Float32, &keys, &counts, tokens.view(), true).unwrap();
        let bytes = encode(7, StorageDtype::Float32, &keys, &counts, tokens.view(), false).unwrap();
        assert!(bytes.len() < full.len());
        let (r, f) = (RecordView::parse(&bytes).unwrap(), RecordView::parse(&full).unwrap());
        assert!(r.content == Content::Pooled && f.content == Content::Tokens);
        assert_eq!((r.total_tokens, r.token_offsets()), (5, vec![0, 2, 5]));
        for frame in 0..3 {
            assert_eq!(r.decode_pooled(frame).unwrap(), f.decode_pooled(frame).unwrap());
        }
        assert!(matches!(r.decode_tokens(), Err(Error::Missing(_))));
        // A pooled-only flag on a record that carries a token frame is damage, not a pooled-only record.
        let forged = with_flags(&full, 1);
        assert!(matches!(RecordView::parse(&forged), Err(Error::Corrupt(m)) if m.contains("pooled-only")));
    }

    /// A copy of `record` with other flags and a recomputed header checksum (a forgery, not a bit flip).
    fn with_flags(record: &[u8], flags: u32) -> Vec<u8> {
        let mut forged = record.to_vec();
        forged[20..24].copy_from_slice(&flags.to_le_bytes());
        let n = u32_at(&forged, 12) as usize;
        let mut h = crc32fast::Hasher::new();
        h.update(&forged[..80]);
        h.update(&forged[84..HEADER_LEN + 36 * n]);
        forged[80..84].copy_from_slice(&h.finalize().to_le_bytes());
        forged
    }

    fn last_rows(tokens: &Array2<f32>, counts: &[u32]) -> Array2<f32> {
        let mut end = 0;
        let rows: Vec<usize> = counts
            .iter()
            .map(|&c| {
                end += c as usize;
                end - 1
            })
            .collect();
        tokens.select(ndarray::Axis(0), &rows)
    }

    #[test]
    fn last_token_record_keeps_the_last_token_vectors_and_counts_only() {
        let (keys, counts, tokens) = sample();
        let last = last_rows(&tokens, &counts);
        let pooled = encode(7, StorageDtype::Float32, &keys, &counts, tokens.view(), false).unwrap();
        let bytes = encode_last_token(7, StorageDtype::Float32, &keys, &counts, last.view()).unwrap();
        assert!(bytes.len() < pooled.len());
        let r = RecordView::parse(&bytes).unwrap();
        assert_eq!(r.content, Content::LastToken);
        assert_eq!((r.site, r.n_prompts, r.hidden, r.total_tokens), (7, 2, 4, 5));
        assert_eq!((r.key(1), r.token_offsets()), (key_of("b"), vec![0, 2, 5]));
        // Bit-exact, and the same bytes of frame 0 as the record pooled from the tokens.
        assert_eq!(r.decode_pooled(0).unwrap(), last.as_slice().unwrap());
        assert_eq!(r.frame(0).unwrap(), RecordView::parse(&pooled).unwrap().frame(0).unwrap());
        for frame in [1, 2] {
            let err = r.decode_pooled(frame).unwrap_err();
            assert!(matches!(&err, Error::Missing(m) if m.contains("last-token vector only")), "{err}");
        }
        assert!(matches!(r.decode_tokens(), Err(Error::Missing(m)) if m.contains("tokens were not kept")));
        // Half types round the vectors as every other record does.
        let half = encode_last_token(7, StorageDtype::Bfloat16, &keys, &counts, last.view()).unwrap();
        let full = encode(7, StorageDtype::Bfloat16, &keys, &counts, tokens.view(), true).unwrap();
        let (h, f) = (RecordView::parse(&half).unwrap(), RecordView::parse(&full).unwrap());
        assert_eq!(h.decode_pooled(0).unwrap(), f.decode_pooled(0).unwrap());
    }

    #[test]
    fn flags_that_disagree_with_the_frames_are_damage() {
        let (keys, counts, tokens) = sample();
        let last = last_rows(&tokens, &counts);
        let pooled = encode(7, StorageDtype::Float16, &keys, &counts, tokens.view(), false).unwrap();
        let only_last = encode_last_token(7, StorageDtype::Float16, &keys, &counts, last.view()).unwrap();
        let err = RecordView::parse(&with_flags(&pooled, FLAG_LAST_TOKEN_ONLY)).unwrap_err().to_string();
        assert!(err.contains("a last-token-only record has a pooled mean frame"), "{err}");
        // Both bits, or an unknown one, are no kind at all.
        for flags in [FLAG_POOLED_ONLY | FLAG_LAST_TOKEN_ONLY, 4] {
            let err = RecordView::parse(&with_flags(&only_last, flags)).unwrap_err().to_string();
            assert!(err.contains(&format!("unknown flags {flags:#x}")), "{err}");
        }
        // A last-token record read as pooled-only or full is short of frames: parsing succeeds only where the
        // empty frames are allowed, and the missing frame then fails its decoding, never silently.
        for flags in [FLAG_POOLED_ONLY, 0] {
            let forged = with_flags(&only_last, flags);
            let r = RecordView::parse(&forged).unwrap();
            assert!(r.decode_pooled(1).is_err());
        }
    }

    #[test]
    fn last_token_input_is_checked() {
        let (keys, counts, tokens) = sample();
        let last = last_rows(&tokens, &counts);
        let err = encode_last_token(0, StorageDtype::Float32, &keys, &counts, tokens.view()).unwrap_err();
        assert!(err.to_string().contains("(2, hidden) (one row per prompt)"), "{err}");
        let err = encode_last_token(0, StorageDtype::Float32, &keys, &counts[..1], last.view()).unwrap_err();
        assert!(err.to_string().contains("(2,) (one per prompt)"), "{err}");
        let err = encode_last_token(0, StorageDtype::Float32, &keys, &[2, 0], last.view()).unwrap_err();
        assert!(err.to_string().contains("prompt 1 has 0 tokens"), "{err}");
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let (keys, counts, tokens) = sample();
        for keep_tokens in [true, false] {
            let bytes = encode(1, StorageDtype::Bfloat16, &keys, &counts, tokens.view(), keep_tokens).unwrap();
            flips_are_detected(&bytes);
        }
        let last = last_rows(&tokens, &counts);
        flips_are_detected(&encode_last_token(1, StorageDtype::Float32, &keys, &counts, last.view()).unwrap());
    }

    fn flips_are_detected(bytes: &[u8]) {
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.to_vec();
            b[bit / 8] ^= 1 << (bit % 8);
            let detected = match RecordView::parse(&b) {
                Err(_) => true,
                Ok(r) => (0..4).any(|f| r.frame(f).is_err()),
            };
            assert!(detected, "bit {bit} (byte {}) flipped undetected", bit / 8);
        }
    }

    #[test]
    fn truncation_is_detected() {
        let (keys, counts, tokens) = sample();
        let last = last_rows(&tokens, &counts);
        for bytes in [
            encode(1, StorageDtype::Float16, &keys, &counts, tokens.view(), true).unwrap(),
            encode_last_token(1, StorageDtype::Float16, &keys, &counts, last.view()).unwrap(),
        ] {
            for cut in 0..bytes.len() {
                assert!(RecordView::parse(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(0u8..=255, 0..400)) {
            if let Ok(r) = RecordView::parse(&bytes) {
                for f in 0..4 { let _ = r.frame(f); }
                let _ = r.decode_tokens();
                let _ = r.decode_pooled(0);
            }
        }

        #[test]
        fn parsing_mutated_records_never_panics(pos in 0usize..300, val in 0u8..=255, last_only: bool) {
            let (keys, counts, tokens) = sample();
            let mut bytes = if last_only {
                let last = last_rows(&tokens, &counts);
                encode_last_token(1, StorageDtype::Bfloat16, &keys, &counts, last.view()).unwrap()
            } else {
                encode(1, StorageDtype::Bfloat16, &keys, &counts, tokens.view(), true).unwrap()
            };
            let p = pos % bytes.len();
            bytes[p] = val;
            if let Ok(r) = RecordView::parse(&bytes) {
                let _ = r.decode_tokens();
                for f in 0..3 { let _ = r.decode_pooled(f); }
            }
        }
    }
}
