//! Linear probe solvers: ridge (with leave-one-out alpha selection), L2 logistic regression (L-BFGS), mass-mean
//! probes, and feature standardization.
//!
//! Conventions shared by every solver:
//! - the design matrix `x` is `(n_samples, n_features)` float32, any layout; it is validated (finite values, shapes)
//!   before any work, and never modified;
//! - sums and products that feed a solution accumulate in float64 (the dual ridge kernel is built from float32
//!   products over blocks of [`GRAM_BLOCK`] features, summed in float64; the primal ridge Gram and covariances use
//!   float64 products); results are float64;
//! - sample weights are non-negative and finite with a positive sum; `None` means all ones;
//! - `par` is the parallelism of the dense linear algebra (use [`faer::Par::Seq`] when the caller already runs
//!   several fits in parallel).

pub mod group_lasso;
pub mod logistic;
pub mod mass_mean;
pub mod ridge;
pub mod standardize;

use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::error::{Error, Result};

/// Features (or samples) per float32 block of a Gram product; the blocks are summed in float64.
pub const GRAM_BLOCK: usize = 512;

/// Checks that `x` is a non-empty 2-D design with only finite values; returns `(n, d)`.
///
/// # Errors
/// [`Error::InvalidInput`] naming the first non-finite entry, or an empty design.
pub fn check_design(x: ArrayView2<'_, f32>, min_samples: usize) -> Result<(usize, usize)> {
    let (n, d) = x.dim();
    if n < min_samples {
        return Err(Error::InvalidInput(format!("X has {n} sample(s); at least {min_samples} are needed to fit")));
    }
    if d == 0 {
        return Err(Error::InvalidInput("X has 0 features; at least 1 is needed".into()));
    }
    if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::InvalidInput(format!("X contains {v} at row {i}, column {j}; every value must be finite")));
    }
    Ok((n, d))
}

/// Row `i` of `x` as a slice: borrowed when the row is contiguous, copied otherwise.
#[must_use]
pub fn row_slice(x: ArrayView2<'_, f32>, i: usize) -> std::borrow::Cow<'_, [f32]> {
    let row = x.index_axis_move(ndarray::Axis(0), i);
    match row.to_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(row.to_vec()),
    }
}

/// Validated sample weights: all ones when `None`.
///
/// # Errors
/// [`Error::Shape`] for a wrong length, [`Error::InvalidInput`] for negative, non-finite or all-zero weights.
pub fn sample_weights(weights: Option<ArrayView1<'_, f64>>, n: usize) -> Result<Array1<f64>> {
    let Some(w) = weights else { return Ok(Array1::ones(n)) };
    if w.len() != n {
        return Err(Error::shape("sample_weight", format!("({n},) (one per sample)"), format!("({},)", w.len())));
    }
    if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
        return Err(Error::InvalidInput(format!("sample_weight[{i}] is {v}; weights must be finite and non-negative")));
    }
    if w.sum() <= 0.0 {
        return Err(Error::InvalidInput("sample_weight sums to 0; at least one sample must have weight".into()));
    }
    Ok(w.to_owned())
}

/// Weighted column means of `x` in float64.
#[must_use]
pub fn weighted_means(x: ArrayView2<'_, f32>, w: &Array1<f64>) -> Array1<f64> {
    let mut mean = Array1::<f64>::zeros(x.ncols());
    for (row, &wi) in x.rows().into_iter().zip(w) {
        if wi != 0.0 {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += wi * f64::from(v);
            }
        }
    }
    mean /= w.sum();
    mean
}

/// `sqrt(w_i) * (x_i - mean)` as a row-major float32 matrix.
#[must_use]
pub fn centered_scaled(x: ArrayView2<'_, f32>, mean: &Array1<f64>, w: &Array1<f64>) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros(x.dim());
    for ((mut o, row), &wi) in out.rows_mut().into_iter().zip(x.rows()).zip(w) {
        let s = wi.sqrt();
        for ((o, &v), &m) in o.iter_mut().zip(row).zip(mean) {
            *o = (s * (f64::from(v) - m)) as f32;
        }
    }
    out
}

/// A faer view of a standard-layout (row-major) ndarray matrix.
///
/// # Panics
/// If `a` is not in standard layout (every caller builds its own row-major matrix).
#[must_use]
pub fn as_faer<T: faer::traits::ComplexField>(a: &Array2<T>) -> MatRef<'_, T> {
    let (r, c) = a.dim();
    MatRef::from_row_major_slice(a.as_slice().expect("row-major matrix"), r, c)
}

/// `dst (+)= alpha * part * part^T` on the lower triangle of `dst` only.
fn lower_gram<T: faer::traits::ComplexField>(
    dst: MatMut<'_, T>,
    accum: Accum,
    part: MatRef<'_, T>,
    alpha: T,
    par: Par,
) {
    use faer::linalg::matmul::triangular::{BlockStructure, matmul};
    let rect = BlockStructure::Rectangular;
    matmul(dst, BlockStructure::TriangularLower, accum, part, rect, part.transpose(), rect, alpha, par);
}

/// `A A^T` for a float32 matrix `a` (`r x c`), accumulated in float64 over blocks of [`GRAM_BLOCK`] columns.
///
/// Only the lower triangle (diagonal included) is computed; the strict upper triangle is zero. Every consumer
/// (eigendecomposition, tridiagonalization, Cholesky) reads the lower triangle.
#[must_use]
pub fn gram_rows(a: MatRef<'_, f32>, par: Par) -> Mat<f64> {
    let (r, c) = (a.nrows(), a.ncols());
    let mut acc = Mat::<f64>::zeros(r, r);
    let mut block = Mat::<f32>::zeros(r, r);
    let mut start = 0;
    while start < c {
        let len = GRAM_BLOCK.min(c - start);
        let part = a.subcols(start, len);
        lower_gram(block.as_mut(), Accum::Replace, part, 1.0f32, par);
        for j in 0..r {
            let src = &block.col(j).try_as_col_major().expect("column-major").as_slice()[j..];
            let dst = &mut acc.col_mut(j).try_as_col_major_mut().expect("column-major").as_slice_mut()[j..];
            for (o, &v) in dst.iter_mut().zip(src) {
                *o += f64::from(v);
            }
        }
        start += len;
    }
    acc
}

/// `A A^T` for a float32 matrix `a` (`r x c`) with float64 products: each block of [`GRAM_BLOCK`] columns is
/// widened to float64 before its product. Twice the cost of [`gram_rows`]; for the Gram matrices whose rounding
/// the result is sensitive to (the primal ridge Gram, where leverages near 1 amplify it, and covariances).
///
/// Only the lower triangle (diagonal included) is computed.
#[must_use]
pub fn gram_rows_f64(a: MatRef<'_, f32>, par: Par) -> Mat<f64> {
    let (r, c) = (a.nrows(), a.ncols());
    let mut acc = Mat::<f64>::zeros(r, r);
    let mut start = 0;
    while start < c {
        let len = GRAM_BLOCK.min(c - start);
        let part = a.subcols(start, len);
        let wide = Mat::<f64>::from_fn(r, len, |i, j| f64::from(part[(i, j)]));
        lower_gram(acc.as_mut(), Accum::Add, wide.as_ref(), 1.0f64, par);
        start += len;
    }
    acc
}

/// The symmetric eigendecomposition of `m`: eigenvalues (ascending) and eigenvectors as columns.
///
/// # Errors
/// [`Error::InvalidInput`] if the decomposition does not converge (it does for any finite symmetric matrix).
pub fn eigh(m: &Mat<f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let e = m
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::InvalidInput(format!("eigendecomposition failed: {e:?}")))?;
    let s = e.S().column_vector();
    Ok(((0..s.nrows()).map(|i| s[i]).collect(), e.U().to_owned()))
}
