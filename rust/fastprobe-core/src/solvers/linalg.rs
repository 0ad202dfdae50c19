//! Dense linear algebra the solvers share: Gram products of float32 matrices accumulated in float64, the symmetric
//! eigendecomposition, faer views of ndarray matrices, and a mixed-precision dot product.

use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::Array2;

use crate::error::{Error, Result};

/// Features (or samples) per float32 block of a Gram product; the blocks are summed in float64.
pub const GRAM_BLOCK: usize = 512;

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

/// `sum_j x_j w_j` accumulated in f64 over eight independent partial sums, so that the loop vectorizes (a single
/// running sum would wait on each addition's latency).
#[must_use]
#[allow(clippy::inline_always)] // so that the solvers' AVX copies vectorize it at their width
#[inline(always)]
pub fn dot_mixed(x: &[f32], w: &[f64]) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let (xs, ws) = (x.chunks_exact(LANES), w.chunks_exact(LANES));
    let tail: f64 = xs.remainder().iter().zip(ws.remainder()).map(|(&a, &b)| f64::from(a) * b).sum();
    for (xc, wc) in xs.zip(ws) {
        for ((a, &xv), &wv) in acc.iter_mut().zip(xc).zip(wc) {
            *a += f64::from(xv) * wv;
        }
    }
    acc.iter().sum::<f64>() + tail
}
