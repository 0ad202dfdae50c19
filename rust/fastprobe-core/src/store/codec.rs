//! Value encoding: storage dtypes, byte shuffling and zstd frames.
//!
//! A block of `n` values of `k` bytes each is stored as `k` byte planes (plane `j` holds byte `j` of every value,
//! little-endian), compressed as one zstd frame. Shuffling puts the slowly varying sign/exponent bytes of
//! neighbouring activations next to each other, which zstd compresses far better than interleaved bytes.

use std::fmt;
use std::str::FromStr;

use half::{bf16, f16};

use crate::error::{Error, Result};

/// zstd level used for activation frames: level 1 is within a few percent of higher levels on shuffled
/// activations and several times faster to write.
pub const ZSTD_LEVEL: i32 = 1;
/// zstd window (log2 bytes) of every frame: decoders need this much memory per frame being decoded.
pub const WINDOW_LOG: u32 = 22;

/// How values are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageDtype {
    /// IEEE float32; round-trips bit-exactly.
    Float32,
    /// IEEE float16 (round to nearest even; out-of-range values become infinities).
    Float16,
    /// bfloat16 (round to nearest even), the default: float32's range at half the bytes.
    Bfloat16,
}

impl StorageDtype {
    /// The accepted names.
    pub const NAMES: [&'static str; 3] = ["float32", "float16", "bfloat16"];

    /// The on-disk code (record header byte).
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            StorageDtype::Float32 => 0,
            StorageDtype::Float16 => 1,
            StorageDtype::Bfloat16 => 2,
        }
    }

    /// The dtype of an on-disk code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(StorageDtype::Float32),
            1 => Some(StorageDtype::Float16),
            2 => Some(StorageDtype::Bfloat16),
            _ => None,
        }
    }

    /// Bytes per stored value.
    #[must_use]
    pub fn size(self) -> usize {
        match self {
            StorageDtype::Float32 => 4,
            StorageDtype::Float16 | StorageDtype::Bfloat16 => 2,
        }
    }

    /// The name Python uses.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self.code() as usize]
    }
}

impl fmt::Display for StorageDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StorageDtype {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "float32" => Ok(StorageDtype::Float32),
            "float16" => Ok(StorageDtype::Float16),
            "bfloat16" => Ok(StorageDtype::Bfloat16),
            _ => {
                Err(Error::UnknownOption { kind: "storage dtype", given: s.to_owned(), choices: Self::NAMES.to_vec() })
            }
        }
    }
}

/// Converts float32 values to `dtype`'s little-endian bytes, already shuffled into byte planes.
#[must_use]
pub fn encode_shuffled(values: &[f32], dtype: StorageDtype) -> Vec<u8> {
    let n = values.len();
    let k = dtype.size();
    let mut out = vec![0u8; n * k];
    match dtype {
        StorageDtype::Float32 => {
            let (p0, rest) = out.split_at_mut(n);
            let (p1, rest) = rest.split_at_mut(n);
            let (p2, p3) = rest.split_at_mut(n);
            for (i, v) in values.iter().enumerate() {
                let b = v.to_le_bytes();
                p0[i] = b[0];
                p1[i] = b[1];
                p2[i] = b[2];
                p3[i] = b[3];
            }
        }
        StorageDtype::Float16 | StorageDtype::Bfloat16 => {
            let (lo, hi) = out.split_at_mut(n);
            for (i, v) in values.iter().enumerate() {
                let bits = if dtype == StorageDtype::Float16 {
                    f16::from_f32(*v).to_bits()
                } else {
                    bf16::from_f32(*v).to_bits()
                };
                let b = bits.to_le_bytes();
                lo[i] = b[0];
                hi[i] = b[1];
            }
        }
    }
    out
}

/// Inverse of [`encode_shuffled`]: decodes `out.len()` values from byte planes into float32.
///
/// # Errors
/// [`Error::Corrupt`] when `planes` does not hold exactly `out.len()` values.
pub fn decode_shuffled(planes: &[u8], dtype: StorageDtype, out: &mut [f32]) -> Result<()> {
    let n = out.len();
    if planes.len() != n * dtype.size() {
        return Err(Error::Corrupt(format!(
            "a block decodes to {} bytes, but {n} {dtype} values need {}",
            planes.len(),
            n * dtype.size()
        )));
    }
    widen_range(planes, n, dtype, 0, out);
    Ok(())
}

/// Decodes values `start..start + out.len()` of a block of `m` values stored as byte planes straight into `out`
/// (the fast path of [`decode_shuffled`] for a slice of rows).
///
/// # Panics
/// If the range is outside the block; callers check sizes when they parse a record.
pub fn widen_range(planes: &[u8], m: usize, dtype: StorageDtype, start: usize, out: &mut [f32]) {
    let n = out.len();
    let plane = |p: usize| &planes[p * m + start..p * m + start + n];
    match dtype {
        StorageDtype::Bfloat16 => {
            let (lo, hi) = (plane(0), plane(1));
            for ((o, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
                *o = f32::from_bits((u32::from(h) << 24) | (u32::from(l) << 16));
            }
        }
        StorageDtype::Float16 => {
            let (lo, hi) = (plane(0), plane(1));
            for ((o, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
                *o = f16::from_bits(u16::from_le_bytes([l, h])).to_f32();
            }
        }
        StorageDtype::Float32 => {
            let (p0, p1, p2, p3) = (plane(0), plane(1), plane(2), plane(3));
            for (i, o) in out.iter_mut().enumerate() {
                *o = f32::from_le_bytes([p0[i], p1[i], p2[i], p3[i]]);
            }
        }
    }
}

/// Compresses bytes into one zstd frame (its content size recorded), optionally against a raw-content prefix that
/// decompression must be given too.
///
/// # Errors
/// [`Error::Codec`] if zstd fails (it does not on valid input).
pub fn compress(bytes: &[u8], prefix: Option<&[u8]>) -> Result<Vec<u8>> {
    use zstd::zstd_safe::{CCtx, CParameter};
    let fail =
        |code: usize| Error::Codec(format!("zstd compression failed: {}", zstd::zstd_safe::get_error_name(code)));
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(ZSTD_LEVEL)).map_err(fail)?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true)).map_err(fail)?;
    // A record of many prompts exceeds level 1's default 512 KiB window; repeats (shared prompt prefixes) can be
    // that far apart. 4 MiB of window and a larger match table cost little speed.
    cctx.set_parameter(CParameter::WindowLog(WINDOW_LOG)).map_err(fail)?;
    cctx.set_parameter(CParameter::HashLog(17)).map_err(fail)?;
    if let Some(p) = prefix {
        cctx.ref_prefix(p).map_err(fail)?;
    }
    let mut out: Vec<u8> = Vec::with_capacity(zstd::zstd_safe::compress_bound(bytes.len()));
    cctx.compress2(&mut out, bytes).map_err(fail)?;
    Ok(out)
}

/// Decompresses one zstd frame that must hold exactly `expected_len` bytes (with the prefix it was compressed
/// against, if any).
///
/// # Errors
/// [`Error::Corrupt`] when the frame is damaged or decodes to another length.
pub fn decompress(frame: &[u8], expected_len: usize, prefix: Option<&[u8]>) -> Result<Vec<u8>> {
    use zstd::zstd_safe::{DCtx, ResetDirective};
    thread_local! {
        /// One decompression context per thread, reused: creating one costs about as much as decoding a small frame.
        static DCTX: std::cell::Cell<Option<DCtx<'static>>> = const { std::cell::Cell::new(None) };
    }
    let bad = |what: String| Error::Corrupt(format!("zstd frame of {} bytes {what}", frame.len()));
    // A context taken from the cache is shortened to the prefix's lifetime for this one frame.
    let mut dctx: DCtx<'_> = DCTX.take().unwrap_or_else(DCtx::create);
    let mut out: Vec<u8> = Vec::with_capacity(expected_len);
    let result = match prefix {
        Some(p) => dctx
            .ref_prefix(p)
            .map_err(|c| bad(format!("rejects its prefix: {}", zstd::zstd_safe::get_error_name(c))))
            .and_then(|_| {
                dctx.decompress(&mut out, frame)
                    .map_err(|c| bad(format!("does not decode: {}", zstd::zstd_safe::get_error_name(c))))
            }),
        None => dctx
            .decompress(&mut out, frame)
            .map_err(|c| bad(format!("does not decode: {}", zstd::zstd_safe::get_error_name(c)))),
    };
    if dctx.reset(ResetDirective::SessionAndParameters).is_ok() {
        // SAFETY: resetting parameters drops the context's reference to `prefix` (ZSTD_clearDict), so the context
        // no longer borrows anything and may outlive it; a context whose reset failed is dropped instead.
        let clean: DCtx<'static> = unsafe { std::mem::transmute::<DCtx<'_>, DCtx<'static>>(dctx) };
        DCTX.set(Some(clean));
    }
    result?;
    if out.len() != expected_len {
        return Err(bad(format!("decodes to {} bytes, expected {expected_len}", out.len())));
    }
    Ok(out)
}

/// Transposes the planes that carry sign and exponent bits (the top plane of half types, the top two of float32)
/// between row-major (`rows x hidden`) and column-major (`hidden x rows`) order, in place of a copy.
///
/// Pooled vectors share little across rows but a lot down each hidden unit (a unit's magnitude is stable), so
/// their exponent planes compress about 10% better column-major.
#[must_use]
pub fn transpose_high_planes(
    planes: &[u8],
    rows: usize,
    hidden: usize,
    dtype: StorageDtype,
    to_columns: bool,
) -> Vec<u8> {
    let mut out = vec![0u8; planes.len()];
    transpose_high_planes_into(planes, rows, hidden, dtype, to_columns, &mut out, rows * hidden);
    out
}

/// [`transpose_high_planes`] into `out`, plane `p` at `out[p * stride..p * stride + rows * hidden]` (a `stride`
/// above the plane size interleaves the planes of several blocks, as the token frame's prefix does).
///
/// # Panics
/// If `out` is too short for the last plane.
pub fn transpose_high_planes_into(
    planes: &[u8],
    rows: usize,
    hidden: usize,
    dtype: StorageDtype,
    to_columns: bool,
    out: &mut [u8],
    stride: usize,
) {
    let n = rows * hidden;
    let first_high = if dtype == StorageDtype::Float32 { 2 } else { 1 };
    // Source shape (rows of the source, columns of the source).
    let (src_rows, src_cols) = if to_columns { (rows, hidden) } else { (hidden, rows) };
    for p in 0..dtype.size() {
        let src = &planes[p * n..(p + 1) * n];
        let dst = &mut out[p * stride..p * stride + n];
        if p < first_high {
            dst.copy_from_slice(src);
        } else {
            transpose_bytes(src, src_rows, src_cols, dst);
        }
    }
}

/// `dst = src^T` for a row-major `rows x cols` byte matrix, in cache-sized tiles.
fn transpose_bytes(src: &[u8], rows: usize, cols: usize, dst: &mut [u8]) {
    const TILE: usize = 64;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for c in c0..c1 {
                let column = &mut dst[c * rows + r0..c * rows + r1];
                // Source column c from row r0 on: every cols-th byte (step_by keeps the loop free of bounds checks).
                for (d, &v) in column.iter_mut().zip(src[r0 * cols + c..].iter().step_by(cols)) {
                    *d = v;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn float32_roundtrips_bit_exactly() {
        let values = [0.0f32, -0.0, 1.5, f32::MIN_POSITIVE / 2.0, f32::INFINITY, f32::NAN, -3.25e30, 1e-40];
        let mut out = [0.0f32; 8];
        decode_shuffled(
            &decompress(&compress(&encode_shuffled(&values, StorageDtype::Float32), None).unwrap(), 32, None).unwrap(),
            StorageDtype::Float32,
            &mut out,
        )
        .unwrap();
        for (a, b) in values.iter().zip(&out) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn half_types_round_to_nearest_even() {
        let values = [1.0f32, 1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -2.5, 65504.0, 1e6];
        for dtype in [StorageDtype::Float16, StorageDtype::Bfloat16] {
            let mut out = [0.0f32; 6];
            decode_shuffled(&encode_shuffled(&values, dtype), dtype, &mut out).unwrap();
            for (v, o) in values.iter().zip(&out) {
                let want = if dtype == StorageDtype::Float16 {
                    f16::from_f32(*v).to_f32()
                } else {
                    bf16::from_f32(*v).to_f32()
                };
                assert_eq!(o.to_bits(), want.to_bits(), "{dtype} {v}");
            }
        }
        // bf16 of 1 + 1/256 is a tie between 1 and 1 + 1/128: ties go to the even mantissa (1.0).
        let mut out = [0.0f32; 1];
        decode_shuffled(
            &encode_shuffled(&[1.0 + 1.0 / 256.0], StorageDtype::Bfloat16),
            StorageDtype::Bfloat16,
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0], 1.0);
    }

    #[test]
    fn damaged_frames_are_errors_not_panics() {
        let planes = encode_shuffled(&[1.0f32; 100], StorageDtype::Bfloat16);
        let frame = compress(&planes, None).unwrap();
        assert!(decompress(&frame[..frame.len() / 2], 200, None).is_err());
        assert!(decompress(&frame, 198, None).is_err());
        assert!("float64".parse::<StorageDtype>().unwrap_err().to_string().contains("float32, float16, bfloat16"));
    }

    #[test]
    fn prefix_is_required_and_helps() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        let prefix = data.clone(); // a separate buffer: zstd ignores a prefix that overlaps its input
        let with = compress(&data, Some(&prefix)).unwrap();
        let without = compress(&data, None).unwrap();
        assert!(with.len() * 10 < without.len(), "{} vs {}", with.len(), without.len());
        assert_eq!(decompress(&with, data.len(), Some(&prefix)).unwrap(), data);
        // The per-thread context is reused: a prefix applies to one frame only, and a failed frame leaves the next
        // one unaffected.
        assert!(decompress(&with, data.len(), None).is_err());
        assert!(decompress(&with[..with.len() / 2], data.len(), Some(&prefix)).is_err());
        assert_eq!(decompress(&without, data.len(), None).unwrap(), data);
        assert_eq!(decompress(&with, data.len(), Some(&prefix)).unwrap(), data);
    }

    #[test]
    fn transposing_high_planes_round_trips() {
        let values: Vec<f32> = (0..3 * 5).map(|i| i as f32 * 1.5 - 7.0).collect();
        for dtype in [StorageDtype::Float32, StorageDtype::Bfloat16] {
            let planes = encode_shuffled(&values, dtype);
            let cols = transpose_high_planes(&planes, 3, 5, dtype, true);
            assert_ne!(cols, planes);
            assert_eq!(transpose_high_planes(&cols, 3, 5, dtype, false), planes);
            // The top plane, column-major: byte (h, r) at h * rows + r.
            let top = (dtype.size() - 1) * 15;
            for r in 0..3 {
                for h in 0..5 {
                    assert_eq!(cols[top + h * 3 + r], planes[top + r * 5 + h]);
                }
            }
        }
        // Tiles: a shape larger than one tile in both directions, not a multiple of it.
        let (rows, hidden) = (130, 70);
        let values: Vec<f32> = (0..rows * hidden).map(|i| (i as f32).sin() * 1e3).collect();
        let planes = encode_shuffled(&values, StorageDtype::Bfloat16);
        let cols = transpose_high_planes(&planes, rows, hidden, StorageDtype::Bfloat16, true);
        assert_eq!(transpose_high_planes(&cols, rows, hidden, StorageDtype::Bfloat16, false), planes);
        for (r, h) in [(0, 0), (129, 69), (64, 3), (7, 64)] {
            assert_eq!(cols[rows * hidden + h * rows + r], planes[rows * hidden + r * hidden + h]);
        }
    }
}
