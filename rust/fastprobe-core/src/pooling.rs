//! Pooling: reduce each prompt's token activations (T x H) to one vector (H).
//!
//! Two input layouts are supported:
//! - padded batches `(B, S, H)` with a boolean attention mask `(B, S)`, as a forward pass produces them. Padding may
//!   sit on either side (or both): only positions whose mask is true take part, so `first_token` is the first real
//!   token and `last_token` the last real one under left and right padding alike;
//! - ragged blocks: the real tokens of every prompt stacked into one `(sum T_i, H)` matrix with `B + 1` offsets,
//!   as the activation store keeps them.
//!
//! Means accumulate in `f64` and are rounded to `f32` once at the end. Prompts are processed in parallel.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2, ArrayView3};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// How a prompt's token vectors are reduced to one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// The last real (unmasked) token.
    LastToken,
    /// The first real (unmasked) token.
    FirstToken,
    /// The mean over real tokens.
    Mean,
    /// The element-wise maximum over real tokens.
    Max,
    /// The element-wise minimum over real tokens.
    Min,
}

impl Pooling {
    /// Every pooling, in the order of [`Pooling::NAMES`].
    pub const ALL: [Pooling; 5] = [Pooling::LastToken, Pooling::FirstToken, Pooling::Mean, Pooling::Max, Pooling::Min];
    /// The accepted names, as Python spells them.
    pub const NAMES: [&'static str; 5] = ["last_token", "first_token", "mean", "max", "min"];

    /// The name Python uses for this pooling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Pooling::LastToken => "last_token",
            Pooling::FirstToken => "first_token",
            Pooling::Mean => "mean",
            Pooling::Max => "max",
            Pooling::Min => "min",
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Pooling::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| Error::UnknownOption {
            kind: "pooling",
            given: s.to_owned(),
            choices: Pooling::NAMES.to_vec(),
        })
    }
}

/// Reduces `count >= 1` token rows (each a contiguous slice of length H) into `out` (H).
///
/// Works on slices so that the inner loops vectorise.
#[allow(clippy::needless_bitwise_bool)] // `|` keeps the max/min selects branch-free
fn reduce_rows<'a>(tokens: impl Iterator<Item = &'a [f32]>, count: usize, method: Pooling, out: &mut [f32]) {
    match method {
        Pooling::LastToken => {
            if let Some(row) = tokens.last() {
                out.copy_from_slice(row);
            }
        }
        Pooling::FirstToken => {
            if let Some(row) = tokens.into_iter().next() {
                out.copy_from_slice(row);
            }
        }
        Pooling::Mean => {
            let mut acc = vec![0.0f64; out.len()];
            for row in tokens {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += f64::from(v);
                }
            }
            let n = count as f64;
            for (o, a) in out.iter_mut().zip(&acc) {
                *o = (a / n) as f32;
            }
        }
        Pooling::Max | Pooling::Min => {
            let take_max = method == Pooling::Max;
            let mut tokens = tokens;
            if let Some(first) = tokens.next() {
                out.copy_from_slice(first);
            }
            for row in tokens {
                // Branch-free selects (non-short-circuit `|`) so the loop vectorises; NaN propagates, as in numpy.
                if take_max {
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = if v.is_nan() | (v > *o) { v } else { *o };
                    }
                } else {
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = if v.is_nan() | (v < *o) { v } else { *o };
                    }
                }
            }
        }
    }
}

/// Below this many values of work a batch is pooled on the calling thread: splitting it costs more than it saves.
pub const PARALLEL_MIN_VALUES: usize = 1 << 16;

/// The number of input values a pooling actually reads: one row per prompt for first/last token, every value
/// otherwise. Callers use it to decide whether work is worth detaching or spreading over threads.
#[must_use]
pub fn work_values(method: Pooling, n_values: usize, n_prompts: usize, h: usize) -> usize {
    match method {
        Pooling::LastToken | Pooling::FirstToken => n_prompts * h,
        Pooling::Mean | Pooling::Max | Pooling::Min => n_values,
    }
}

/// Pools a padded batch.
///
/// `hidden` is `(B, S, H)`, `mask` is `(B, S)` with `true` on real tokens. Returns `(B, H)`.
///
/// # Errors
/// [`Error::Shape`] when the mask does not match the batch, [`Error::InvalidInput`] when a prompt has no real token.
pub fn pool_padded(hidden: ArrayView3<'_, f32>, mask: ArrayView2<'_, bool>, method: Pooling) -> Result<Array2<f32>> {
    let (b, s, h) = hidden.dim();
    if mask.dim() != (b, s) {
        return Err(Error::shape(
            "attention_mask",
            format!("({b}, {s}) to match hidden (B, S, H) = ({b}, {s}, {h})"),
            format!("{:?}", mask.dim()),
        ));
    }
    if let Some(row) = mask.outer_iter().position(|m| !m.iter().any(|&x| x)) {
        return Err(Error::InvalidInput(format!("prompt {row} has no real token: its attention mask is all zero")));
    }
    let hidden = hidden.as_standard_layout();
    let mask = mask.as_standard_layout();
    let (values, mask) = (hidden.as_slice().unwrap_or_default(), mask.as_slice().unwrap_or_default());
    let mut out = crate::buffer::zeroed_array(b, h);
    let pool_row = |(i, dst): (usize, &mut [f32])| {
        let m = &mask[i * s..(i + 1) * s];
        let count = m.iter().filter(|&&x| x).count();
        let rows =
            m.iter().enumerate().filter(|&(_, &x)| x).map(|(t, _)| &values[(i * s + t) * h..(i * s + t + 1) * h]);
        reduce_rows(rows, count, method, dst);
    };
    run_rows(out.as_slice_mut().unwrap_or_default(), h, work_values(method, values.len(), b, h), pool_row);
    Ok(out)
}

/// Pools ragged token blocks.
///
/// `values` is `(N_tokens, H)`: the real tokens of every prompt, stacked. `offsets` has `B + 1` entries: prompt `i`
/// owns rows `offsets[i]..offsets[i + 1]`. Returns `(B, H)`.
///
/// # Errors
/// [`Error::InvalidInput`] when the offsets are not non-decreasing from 0 to `N_tokens`, or a prompt is empty.
pub fn pool_ragged(values: ArrayView2<'_, f32>, offsets: &[usize], method: Pooling) -> Result<Array2<f32>> {
    let (n_tokens, h) = values.dim();
    validate_offsets(offsets, n_tokens)?;
    let b = offsets.len() - 1;
    let values = values.as_standard_layout();
    let flat = values.as_slice().unwrap_or_default();
    let mut out = crate::buffer::zeroed_array(b, h);
    let pool_row = |(i, dst): (usize, &mut [f32])| {
        let (lo, hi) = (offsets[i], offsets[i + 1]);
        reduce_rows(flat[lo * h..hi * h].chunks_exact(h.max(1)), hi - lo, method, dst);
    };
    run_rows(out.as_slice_mut().unwrap_or_default(), h, work_values(method, flat.len(), b, h), pool_row);
    Ok(out)
}

/// The score stage of token pooling: reduces per-token scores (`(N_tokens, K)` float64, such as each token's class
/// probabilities) to one row per prompt, over the same ragged `offsets` as [`pool_ragged`].
///
/// Max and min propagate NaN; mean accumulates in float64.
///
/// # Errors
/// As [`pool_ragged`].
pub fn reduce_scores(scores: ArrayView2<'_, f64>, offsets: &[usize], method: Pooling) -> Result<Array2<f64>> {
    let (n_tokens, k) = scores.dim();
    validate_offsets(offsets, n_tokens)?;
    let b = offsets.len() - 1;
    let mut out = Array2::<f64>::zeros((b, k));
    let reduce = |(i, mut dst): (usize, ndarray::ArrayViewMut1<'_, f64>)| {
        let block = scores.slice(ndarray::s![offsets[i]..offsets[i + 1], ..]);
        match method {
            Pooling::LastToken => dst.assign(&block.row(block.nrows() - 1)),
            Pooling::FirstToken => dst.assign(&block.row(0)),
            Pooling::Mean => {
                for row in block.rows() {
                    dst += &row;
                }
                dst /= block.nrows() as f64;
            }
            Pooling::Max | Pooling::Min => {
                let take_max = method == Pooling::Max;
                dst.assign(&block.row(0));
                for row in block.rows() {
                    for (o, &v) in dst.iter_mut().zip(row) {
                        let better = if take_max { v > *o } else { v < *o };
                        if v.is_nan() || better {
                            *o = v;
                        }
                    }
                }
            }
        }
    };
    if n_tokens * k >= PARALLEL_MIN_VALUES {
        out.axis_iter_mut(ndarray::Axis(0)).into_par_iter().enumerate().for_each(reduce);
    } else {
        out.axis_iter_mut(ndarray::Axis(0)).enumerate().for_each(reduce);
    }
    Ok(out)
}

/// Calls `f(i, row_i)` for every `h`-wide row of `out`, in parallel when `work` makes it worth it.
fn run_rows(out: &mut [f32], h: usize, work: usize, f: impl Fn((usize, &mut [f32])) + Sync + Send) {
    if h == 0 {
        return;
    }
    if work >= PARALLEL_MIN_VALUES {
        out.par_chunks_mut(h).enumerate().for_each(f);
    } else {
        out.chunks_mut(h).enumerate().for_each(f);
    }
}

/// Checks that `offsets` describe `B >= 0` non-empty blocks that tile `0..n_tokens` exactly.
fn validate_offsets(offsets: &[usize], n_tokens: usize) -> Result<()> {
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
        return Err(Error::InvalidInput("offsets must have at least one entry (B + 1 entries for B prompts)".into()));
    };
    if first != 0 || last != n_tokens {
        return Err(Error::InvalidInput(format!(
            "offsets must start at 0 and end at the number of token rows ({n_tokens}); got {first} .. {last}"
        )));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] <= w[0]) {
        return Err(Error::InvalidInput(format!(
            "offsets must be strictly increasing (every prompt needs at least one token); offsets[{i}] = {} and offsets[{}] = {}",
            offsets[i],
            i + 1,
            offsets[i + 1]
        )));
    }
    Ok(())
}

/// Convenience for callers that hold a single prompt's tokens: pools a `(T, H)` block into `(H)`.
///
/// # Errors
/// [`Error::InvalidInput`] when `tokens` has no rows.
pub fn pool_one(tokens: ArrayView2<'_, f32>, method: Pooling) -> Result<ndarray::Array1<f32>> {
    if tokens.nrows() == 0 {
        return Err(Error::InvalidInput("cannot pool a prompt with no tokens".into()));
    }
    let tokens = tokens.as_standard_layout();
    let h = tokens.ncols();
    let mut out = vec![0.0f32; h];
    reduce_rows(tokens.as_slice().unwrap_or_default().chunks_exact(h.max(1)), tokens.nrows(), method, &mut out);
    Ok(ndarray::Array1::from_vec(out))
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the kernels are exact; tests compare exactly on purpose
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    fn batch() -> (Array3<f32>, Array2<bool>) {
        // Two prompts, S = 3, H = 2; prompt 0 right-padded (2 real tokens), prompt 1 left-padded (2 real tokens).
        let hidden =
            Array3::from_shape_vec((2, 3, 2), vec![1., 2., 3., -4., 99., 99., 99., 99., 5., 6., 7., 8.]).unwrap();
        let mask = array![[true, true, false], [false, true, true]];
        (hidden, mask)
    }

    #[test]
    fn score_reduction_over_ragged_blocks() {
        let scores = array![[0.1, 0.9], [0.7, 0.3], [0.4, 0.6], [f64::NAN, 0.5], [0.2, 0.8]];
        let offsets = [0, 3, 5];
        let cases = [
            (Pooling::LastToken, array![[0.4, 0.6], [0.2, 0.8]]),
            (Pooling::FirstToken, array![[0.1, 0.9], [f64::NAN, 0.5]]),
            (Pooling::Mean, array![[0.4, 0.6], [f64::NAN, 0.65]]),
            (Pooling::Max, array![[0.7, 0.9], [f64::NAN, 0.8]]),
            (Pooling::Min, array![[0.1, 0.3], [f64::NAN, 0.5]]),
        ];
        for (method, want) in cases {
            let got = reduce_scores(scores.view(), &offsets, method).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-15, "{method}: {got} vs {want}");
            }
        }
        let err = reduce_scores(scores.view(), &[0, 3, 4], Pooling::Max).unwrap_err().to_string();
        assert!(err.contains("end at the number of token rows (5)"), "{err}");
    }

    #[test]
    fn padded_pooling_ignores_pads_on_both_sides() {
        let (h, m) = batch();
        let cases = [
            (Pooling::LastToken, array![[3., -4.], [7., 8.]]),
            (Pooling::FirstToken, array![[1., 2.], [5., 6.]]),
            (Pooling::Mean, array![[2., -1.], [6., 7.]]),
            (Pooling::Max, array![[3., 2.], [7., 8.]]),
            (Pooling::Min, array![[1., -4.], [5., 6.]]),
        ];
        for (method, want) in cases {
            assert_eq!(pool_padded(h.view(), m.view(), method).unwrap(), want, "{method}");
        }
    }

    #[test]
    fn ragged_equals_padded() {
        let (h, m) = batch();
        let values = array![[1., 2.], [3., -4.], [5., 6.], [7., 8.]];
        for method in Pooling::ALL {
            assert_eq!(
                pool_ragged(values.view(), &[0, 2, 4], method).unwrap(),
                pool_padded(h.view(), m.view(), method).unwrap()
            );
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let (h, _) = batch();
        let bad_mask = array![[true, true], [true, true]];
        let err = pool_padded(h.view(), bad_mask.view(), Pooling::Mean).unwrap_err();
        assert!(err.to_string().contains("attention_mask: expected shape (2, 3"), "{err}");
        let empty = array![[true, false, false], [false, false, false]];
        let err = pool_padded(h.view(), empty.view(), Pooling::Mean).unwrap_err();
        assert_eq!(err.to_string(), "prompt 1 has no real token: its attention mask is all zero");
        let values = Array2::<f32>::zeros((4, 2));
        assert!(
            pool_ragged(values.view(), &[0, 2, 2, 4], Pooling::Mean)
                .unwrap_err()
                .to_string()
                .contains("strictly increasing")
        );
        assert!(
            pool_ragged(values.view(), &[0, 3], Pooling::Mean)
                .unwrap_err()
                .to_string()
                .contains("end at the number of token rows (4)")
        );
        assert!(pool_ragged(values.view(), &[], Pooling::Mean).is_err());
        let err = "median".parse::<Pooling>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown pooling \"median\"; expected one of: last_token, first_token, mean, max, min"
        );
    }

    #[test]
    fn nan_propagates_through_max_and_min() {
        let values = array![[1., f32::NAN], [2., 0.]];
        for method in [Pooling::Max, Pooling::Min, Pooling::Mean] {
            let out = pool_ragged(values.view(), &[0, 2], method).unwrap();
            assert!(out[[0, 1]].is_nan(), "{method}");
        }
    }

    #[test]
    fn zero_batch_and_single_prompt() {
        let values = Array2::<f32>::zeros((0, 3));
        assert_eq!(pool_ragged(values.view(), &[0], Pooling::Mean).unwrap().dim(), (0, 3));
        let one = array![[1., 2.], [3., 5.]];
        assert_eq!(pool_one(one.view(), Pooling::Mean).unwrap(), array![2., 3.5]);
        assert!(pool_one(Array2::<f32>::zeros((0, 2)).view(), Pooling::Mean).is_err());
    }

    proptest::proptest! {
        #[test]
        fn mean_matches_f64_reference(lens in proptest::collection::vec(1usize..6, 1..5), h in 1usize..5, seed in 0u32..1000) {
            let n: usize = lens.iter().sum();
            let values = Array2::from_shape_fn((n, h), |(i, j)| ((i * 31 + j * 7 + seed as usize) % 17) as f32 - 8.5);
            let mut offsets = vec![0usize];
            for l in &lens { offsets.push(offsets.last().unwrap() + l); }
            let out = pool_ragged(values.view(), &offsets, Pooling::Mean).unwrap();
            for (b, w) in offsets.windows(2).enumerate() {
                for j in 0..h {
                    let want: f64 = (w[0]..w[1]).map(|i| f64::from(values[[i, j]])).sum::<f64>() / (w[1] - w[0]) as f64;
                    proptest::prop_assert_eq!(out[[b, j]], want as f32);
                }
            }
        }
    }
}
