//! Ridge regression for many alphas from one eigendecomposition, with exact leave-one-out errors.
//!
//! The problem, for each alpha: minimize `sum_i w_i (y_i - x_i . b - c)^2 + alpha |b|^2` (the intercept `c` is not
//! penalized). After weighted centering and scaling every row by `sqrt(w_i)`, either
//! - the **dual** form eigendecomposes the `n x n` kernel `K = X X^T` (plus `s s^T`, `s = sqrt(w)`, standing for the
//!   unpenalized intercept, whose eigen-direction gets no shrinkage), cheaper when `n <= d`; or
//! - the **primal** form eigendecomposes the `d x d` Gram `X^T X`, cheaper when `n > d`.
//!
//! Every alpha then costs `O(n * rank)`: coefficients, fitted values and the leave-one-out residuals
//! `e_i = r_i / (1 - H_ii)` (`H` the hat matrix, intercept included), reported as the mean of `e_i^2` in the
//! `sqrt(w)`-scaled space, which is how scikit-learn's `RidgeCV` scores alphas.

use faer::{Accum, Mat, MatRef, Par};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, Axis};

use super::linalg::{as_faer, eigh, gram_rows, gram_rows_f64};
use super::{centered_scaled, check_design, sample_weights, weighted_means};
use crate::error::{Error, Result};

/// Which eigendecomposition to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RidgeMode {
    /// Dual when `n <= d`, primal otherwise.
    Auto,
    /// The `d x d` Gram matrix.
    Primal,
    /// The `n x n` kernel matrix.
    Dual,
}

impl RidgeMode {
    /// The accepted names.
    pub const NAMES: [&'static str; 3] = ["auto", "primal", "dual"];
}

impl std::str::FromStr for RidgeMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(RidgeMode::Auto),
            "primal" => Ok(RidgeMode::Primal),
            "dual" => Ok(RidgeMode::Dual),
            _ => Err(Error::UnknownOption { kind: "ridge mode", given: s.to_owned(), choices: Self::NAMES.to_vec() }),
        }
    }
}

/// Coefficients and leave-one-out errors of every alpha.
#[derive(Debug, Clone)]
pub struct RidgePath {
    /// `(n_alphas, n_targets, n_features)`.
    pub coef: Array3<f64>,
    /// `(n_alphas, n_targets)`.
    pub intercept: Array2<f64>,
    /// Mean squared leave-one-out error, `(n_alphas, n_targets)`, in the `sqrt(w)`-scaled space.
    pub loo_mse: Array2<f64>,
    /// Whether the dual form was used.
    pub dual: bool,
}

/// Fits ridge for every alpha in `alphas` (each finite and > 0).
///
/// `y` is `(n_samples, n_targets)`.
///
/// # Errors
/// [`Error::Shape`] for mismatched lengths, [`Error::InvalidInput`] for non-finite values, bad weights or alphas, or
/// fewer than 2 samples.
pub fn ridge_path(
    x: ArrayView2<'_, f32>,
    y: ArrayView2<'_, f64>,
    sample_weight: Option<ArrayView1<'_, f64>>,
    alphas: &[f64],
    fit_intercept: bool,
    mode: RidgeMode,
    par: Par,
) -> Result<RidgePath> {
    let (n, d) = check_design(x, 2)?;
    if y.nrows() != n {
        return Err(Error::shape("y", format!("({n}, n_targets) (one row per sample of X)"), format!("{:?}", y.dim())));
    }
    if let Some(v) = y.iter().find(|v| !v.is_finite()) {
        return Err(Error::InvalidInput(format!("y contains {v}; every target must be finite")));
    }
    if alphas.is_empty() {
        return Err(Error::InvalidInput("alphas is empty; give at least one alpha".into()));
    }
    if let Some(a) = alphas.iter().find(|a| !a.is_finite() || **a <= 0.0) {
        return Err(Error::InvalidInput(format!("alpha {a} is not allowed; every alpha must be finite and > 0")));
    }
    let w = sample_weights(sample_weight, n)?;
    let t = y.ncols();
    let (x_mean, y_mean) = if fit_intercept {
        let mut ym = Array1::<f64>::zeros(t);
        for (row, &wi) in y.rows().into_iter().zip(&w) {
            ym.scaled_add(wi, &row);
        }
        ym /= w.sum();
        (weighted_means(x, &w), ym)
    } else {
        (Array1::zeros(d), Array1::zeros(t))
    };
    let xs = centered_scaled(x, &x_mean, &w);
    let s: Array1<f64> = w.mapv(f64::sqrt);
    let mut ys = Array2::<f64>::zeros((n, t));
    for (i, (mut row, src)) in ys.rows_mut().into_iter().zip(y.rows()).enumerate() {
        for ((o, &v), &m) in row.iter_mut().zip(src).zip(&y_mean) {
            *o = s[i] * (v - m);
        }
    }
    let dual = match mode {
        RidgeMode::Auto => n <= d,
        RidgeMode::Primal => false,
        RidgeMode::Dual => true,
    };
    let (coef, loo_mse) = if dual {
        dual_path(&xs, &ys, &s, alphas, fit_intercept, par)?
    } else {
        primal_path(&xs, &ys, &s, alphas, fit_intercept, par)?
    };
    let mut intercept = Array2::<f64>::zeros((alphas.len(), t));
    if fit_intercept {
        for a in 0..alphas.len() {
            for k in 0..t {
                intercept[(a, k)] = y_mean[k] - coef.index_axis(Axis(0), a).row(k).dot(&x_mean);
            }
        }
    }
    Ok(RidgePath { coef, intercept, loo_mse, dual })
}

/// Copies a faer matrix into ndarray.
fn to_nd(m: &Mat<f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// `A^T B` for row-major `a` (`n x d`, float32) and `b` (`n x t`, float64), in float64: `(t, d)`.
///
/// Rows of `a` are widened to float64 a block at a time and multiplied in one GEMM per block.
fn at_b(a: &Array2<f32>, b: MatRef<'_, f64>, par: Par) -> Array2<f64> {
    let (n, d) = a.dim();
    let mut out = Mat::<f64>::zeros(d, b.ncols());
    let block = super::linalg::GRAM_BLOCK;
    let mut start = 0;
    while start < n {
        let len = block.min(n - start);
        let rows = a.slice(ndarray::s![start..start + len, ..]);
        let wide = Mat::<f64>::from_fn(len, d, |i, j| f64::from(rows[(i, j)]));
        faer::linalg::matmul::matmul(&mut out, Accum::Add, wide.transpose(), b.subrows(start, len), 1.0, par);
        start += len;
    }
    Array2::from_shape_fn((b.ncols(), d), |(k, j)| out[(j, k)])
}

type PathParts = (Array3<f64>, Array2<f64>);

fn dual_path(
    xs: &Array2<f32>,
    ys: &Array2<f64>,
    s: &Array1<f64>,
    alphas: &[f64],
    fit_intercept: bool,
    par: Par,
) -> Result<PathParts> {
    let (n, d) = xs.dim();
    let t = ys.ncols();
    let mut k = gram_rows(as_faer(xs), par);
    if fit_intercept {
        project_out(&mut k, s);
    }
    let tri = Tridiagonal::of(k, par);
    let h0 = intercept_leverage(s, fit_intercept);
    // Q^T y for every target, then (T + alpha I)^{-1} of it for every alpha, back through Q in one product.
    let qty = tri.q.transpose() * MatRef::from_row_major_slice(ys.as_slice().expect("row-major"), n, t);
    let factors: Vec<Ldl> = alphas.iter().map(|&a| tri.ldl(a)).collect::<Result<_>>()?;
    let mut v = Mat::<f64>::zeros(n, alphas.len() * t);
    for (a, f) in factors.iter().enumerate() {
        for k in 0..t {
            let col = f.solve(qty.col(k).iter().copied());
            v.col_mut(a * t + k).iter_mut().zip(col).for_each(|(o, x)| *o = x);
        }
    }
    let c = &tri.q * &v; // (n, alphas * t) dual coefficients G^{-1} y
    let g_diag = tri.inverse_diagonals(&factors, par);
    let mut loo = Array2::<f64>::zeros((alphas.len(), t));
    for (a, &alpha) in alphas.iter().enumerate() {
        for k in 0..t {
            let col = c.col(a * t + k);
            loo[(a, k)] =
                (0..n).map(|i| (alpha * col[i] / (alpha * g_diag[(a, i)] - h0[i])).powi(2)).sum::<f64>() / n as f64;
        }
    }
    let coef_all = at_b(xs, c.as_ref(), par);
    let coef = coef_all.into_shape_with_order((alphas.len(), t, d)).expect("alphas x targets rows");
    Ok((coef, loo))
}

/// Replaces the lower triangle of the symmetric `k` by that of `P k P`, `P = I - s s^T / |s|^2`.
///
/// Centering makes the exact kernel annihilate `s`, but the float32 products leave it an eigenvalue near
/// `eps * |K|` along `s`. With an intercept, `1 - H_ii = alpha G^{-1}_ii - s_i^2 / |s|^2` cancels almost
/// everything when `n < d`, so that stray eigenvalue would dominate the leave-one-out error at small alphas.
fn project_out(k: &mut Mat<f64>, s: &Array1<f64>) {
    let n = s.len();
    let ss = s.dot(s);
    // v = K s / |s|^2 from the lower triangle.
    let mut v = vec![0.0f64; n];
    for j in 0..n {
        v[j] += k[(j, j)] * s[j];
        for i in j + 1..n {
            v[i] += k[(i, j)] * s[j];
            v[j] += k[(i, j)] * s[i];
        }
    }
    for x in &mut v {
        *x /= ss;
    }
    let svs: f64 = s.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() / ss;
    for j in 0..n {
        for i in j..n {
            k[(i, j)] += -s[i] * v[j] - v[i] * s[j] + svs * s[i] * s[j];
        }
    }
}

/// `s_i^2 / sum(w)`: the leverage of the unpenalized intercept (zero without one).
fn intercept_leverage(s: &Array1<f64>, fit_intercept: bool) -> Array1<f64> {
    if fit_intercept {
        let sw: f64 = s.dot(s);
        s.mapv(|q| q * q / sw)
    } else {
        Array1::zeros(s.len())
    }
}

/// A symmetric matrix as `Q T Q^T`, `T` tridiagonal (the first half of an eigendecomposition): enough to apply
/// `(K + alpha I)^{-1}` and find its diagonal for any alpha in `O(n^2)`.
struct Tridiagonal {
    diag: Vec<f64>,
    /// `off[j]` is `T[j + 1, j]`.
    off: Vec<f64>,
    /// The orthogonal factor, explicit, column-major.
    q: Mat<f64>,
}

/// `T + alpha I = L D L^T`, `L` unit lower bidiagonal with `l[j]` at `(j, j - 1)` (`l[0]` unused).
struct Ldl {
    l: Vec<f64>,
    d: Vec<f64>,
}

impl Ldl {
    /// `(T + alpha I)^{-1} u`.
    fn solve(&self, u: impl Iterator<Item = f64>) -> Vec<f64> {
        let mut w: Vec<f64> = Vec::with_capacity(self.d.len());
        for (j, uj) in u.enumerate() {
            let prev = if j == 0 { 0.0 } else { self.l[j] * w[j - 1] };
            w.push(uj - prev);
        }
        for (wj, dj) in w.iter_mut().zip(&self.d) {
            *wj /= dj;
        }
        for j in (0..w.len().saturating_sub(1)).rev() {
            w[j] -= self.l[j + 1] * w[j + 1];
        }
        w
    }
}

impl Tridiagonal {
    /// Tridiagonalizes the lower triangle of `a`.
    fn of(mut a: Mat<f64>, par: Par) -> Self {
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::{evd::tridiag, householder, qr::no_pivoting::factor::recommended_block_size};
        let n = a.nrows();
        if n < 2 {
            return Tridiagonal { diag: (0..n).map(|i| a[(i, i)]).collect(), off: Vec::new(), q: Mat::identity(n, n) };
        }
        let bs = recommended_block_size::<f64>(n, n);
        let mut h = Mat::<f64>::zeros(bs, n - 1);
        let req = tridiag::tridiag_in_place_scratch::<f64>(n, par, faer::Spec::default())
            .or(householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(n - 1, bs, n));
        let mut buf = MemBuffer::new(req);
        tridiag::tridiag_in_place(a.as_mut(), h.as_mut(), par, MemStack::new(&mut buf), faer::Spec::default());
        let mut q = Mat::<f64>::identity(n, n);
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            a.submatrix(1, 0, n - 1, n - 1),
            h.as_ref(),
            faer::Conj::No,
            q.as_mut().subrows_mut(1, n - 1),
            par,
            MemStack::new(&mut buf),
        );
        Tridiagonal { diag: (0..n).map(|i| a[(i, i)]).collect(), off: (0..n - 1).map(|i| a[(i + 1, i)]).collect(), q }
    }

    /// The factorization of `T + alpha I` (positive definite for a Gram matrix and alpha > 0).
    fn ldl(&self, alpha: f64) -> Result<Ldl> {
        let n = self.diag.len();
        let (mut l, mut d) = (vec![0.0; n], vec![0.0; n]);
        for j in 0..n {
            d[j] = self.diag[j] + alpha;
            if j > 0 {
                l[j] = self.off[j - 1] / d[j - 1];
                d[j] -= l[j] * self.off[j - 1];
            }
            if d[j].is_nan() || d[j] <= 0.0 {
                return Err(Error::InvalidInput(format!(
                    "the kernel plus alpha={alpha} is not positive definite (pivot {j} is {}); the data are too \
                     ill-conditioned for this alpha",
                    d[j]
                )));
            }
        }
        Ok(Ldl { l, d })
    }

    /// `diag((K + alpha I)^{-1})` for every factorization: `(n_alphas, n)`.
    ///
    /// With `Z = L^{-1} Q^T`, the diagonal is `sum_j Z[j, i]^2 / D[j]`; rows of `Z` follow from one recurrence
    /// down the columns of `Q`, so one pass over `Q` serves every alpha. Columns of the result are independent and
    /// run in parallel blocks.
    fn inverse_diagonals(&self, factors: &[Ldl], par: Par) -> Array2<f64> {
        use rayon::prelude::*;
        const CHUNK: usize = 256;
        let n = self.q.nrows();
        let na = factors.len();
        let chunk = |start: usize| {
            let len = CHUNK.min(n - start);
            let mut z = vec![0.0f64; na * len];
            let mut acc = vec![0.0f64; na * len];
            for j in 0..n {
                let qj = &self.q.col(j).try_as_col_major().expect("column-major").as_slice()[start..start + len];
                for (a, f) in factors.iter().enumerate() {
                    let (lj, inv_d) = (if j == 0 { 0.0 } else { f.l[j] }, 1.0 / f.d[j]);
                    let z = &mut z[a * len..(a + 1) * len];
                    let acc = &mut acc[a * len..(a + 1) * len];
                    for ((zi, ai), &qi) in z.iter_mut().zip(acc.iter_mut()).zip(qj) {
                        *zi = qi - lj * *zi;
                        *ai += *zi * *zi * inv_d;
                    }
                }
            }
            (start, acc)
        };
        let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
        let parts: Vec<(usize, Vec<f64>)> = match par {
            Par::Seq => starts.into_iter().map(chunk).collect(),
            Par::Rayon(_) => starts.into_par_iter().map(chunk).collect(),
        };
        let mut out = Array2::<f64>::zeros((na, n));
        for (start, acc) in parts {
            let len = acc.len() / na.max(1);
            for a in 0..na {
                out.slice_mut(ndarray::s![a, start..start + len])
                    .assign(&ArrayView1::from(&acc[a * len..(a + 1) * len]));
            }
        }
        out
    }
}

fn primal_path(
    xs: &Array2<f32>,
    ys: &Array2<f64>,
    s: &Array1<f64>,
    alphas: &[f64],
    fit_intercept: bool,
    par: Par,
) -> Result<PathParts> {
    let (n, d) = xs.dim();
    let t = ys.ncols();
    let g = gram_rows_f64(as_faer(xs).transpose(), par);
    let (lambda, v) = eigh(&g)?;
    // P = X V (n x d) in float64, block by block of rows.
    let mut p = Mat::<f64>::zeros(n, d);
    let block = super::linalg::GRAM_BLOCK * 8;
    let mut start = 0;
    while start < n {
        let len = block.min(n - start);
        let xb = Mat::<f64>::from_fn(len, d, |i, j| f64::from(xs[(start + i, j)]));
        faer::linalg::matmul::matmul(p.subrows_mut(start, len), Accum::Replace, &xb, &v, 1.0, par);
        start += len;
    }
    let p = to_nd(&p);
    let v = to_nd(&v);
    let z = p.t().dot(ys); // (d, t) = V^T X^T y
    let p2 = p.mapv(|q| q * q);
    let sw: f64 = s.dot(s);
    let h0: Array1<f64> = if fit_intercept { s.mapv(|q| q * q / sw) } else { Array1::zeros(n) };
    let mut coef = Array3::<f64>::zeros((alphas.len(), t, d));
    let mut loo = Array2::<f64>::zeros((alphas.len(), t));
    for (a, &alpha) in alphas.iter().enumerate() {
        let wk: Array1<f64> = lambda.iter().map(|l| 1.0 / (l + alpha)).collect();
        let zw = &z * &wk.view().insert_axis(Axis(1)); // (d, t)
        let fitted = p.dot(&zw); // (n, t)
        let h = p2.dot(&wk) + &h0;
        for j in 0..t {
            loo[(a, j)] =
                (0..n).map(|i| ((ys[(i, j)] - fitted[(i, j)]) / (1.0 - h[i])).powi(2)).sum::<f64>() / n as f64;
        }
        coef.index_axis_mut(Axis(0), a).assign(&v.dot(&zw).t());
    }
    Ok((coef, loo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, d: usize, t: usize) -> (Array2<f32>, Array2<f64>) {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let x = Array2::from_shape_fn((n, d), |_| next() as f32);
        let y = Array2::from_shape_fn((n, t), |(i, j)| f64::from(x[(i, j % d)]) * 2.0 + 0.1 * next() + 3.0);
        (x, y)
    }

    /// Brute-force leave-one-out by refitting without each sample, against the closed form.
    #[test]
    fn loo_matches_refits_in_both_forms() {
        for (n, d) in [(12, 5), (6, 9)] {
            let (x, y) = data(n, d, 2);
            let alphas = [0.3, 2.0];
            for mode in [RidgeMode::Primal, RidgeMode::Dual] {
                let path = ridge_path(x.view(), y.view(), None, &alphas, true, mode, Par::Seq).unwrap();
                for (a, &alpha) in alphas.iter().enumerate() {
                    let mut sq = [0.0f64; 2];
                    for i in 0..n {
                        let keep: Vec<usize> = (0..n).filter(|&r| r != i).collect();
                        let xk = x.select(Axis(0), &keep);
                        let yk = y.select(Axis(0), &keep);
                        let fit = ridge_path(xk.view(), yk.view(), None, &[alpha], true, mode, Par::Seq).unwrap();
                        for j in 0..2 {
                            let pred = fit
                                .coef
                                .slice(ndarray::s![0, j, ..])
                                .iter()
                                .zip(x.row(i))
                                .fold(fit.intercept[(0, j)], |acc, (c, &v)| acc + c * f64::from(v));
                            sq[j] += (y[(i, j)] - pred).powi(2) / n as f64;
                        }
                    }
                    for (j, &want) in sq.iter().enumerate() {
                        let rel = (path.loo_mse[(a, j)] - want).abs() / want;
                        assert!(rel < 1e-5, "n={n} d={d} {mode:?} alpha={alpha}: {} vs {}", path.loo_mse[(a, j)], want);
                    }
                }
            }
        }
    }

    /// The tridiagonal factorization reproduces the kernel, and its inverse diagonals (computed in column blocks,
    /// so more samples than one block) match a Cholesky inverse.
    #[test]
    fn tridiagonal_inverse_diagonals_match_cholesky() {
        use faer::linalg::solvers::Solve;
        let (n, d) = (300, 40);
        let (x, _) = data(n, d, 1);
        let k = gram_rows(as_faer(&x), Par::Seq);
        let tri = Tridiagonal::of(k.clone(), Par::rayon(2));
        let t = Mat::<f64>::from_fn(n, n, |i, j| match i.abs_diff(j) {
            0 => tri.diag[i],
            1 => tri.off[i.min(j)],
            _ => 0.0,
        });
        let rec = &tri.q * &t * tri.q.transpose();
        for j in 0..n {
            for i in j..n {
                assert!((rec[(i, j)] - k[(i, j)]).abs() < 1e-10, "K[{i}, {j}]: {} vs {}", rec[(i, j)], k[(i, j)]);
            }
        }
        let alphas = [1e-3, 0.5, 40.0];
        let factors: Vec<Ldl> = alphas.iter().map(|&a| tri.ldl(a).unwrap()).collect();
        let diags = tri.inverse_diagonals(&factors, Par::rayon(2));
        for (a, &alpha) in alphas.iter().enumerate() {
            let g = Mat::<f64>::from_fn(n, n, |i, j| k[(i.max(j), i.min(j))] + if i == j { alpha } else { 0.0 });
            let inv = g.llt(faer::Side::Lower).unwrap().solve(Mat::<f64>::identity(n, n));
            for i in 0..n {
                let rel = (diags[(a, i)] - inv[(i, i)]).abs() / inv[(i, i)];
                assert!(rel < 1e-9, "alpha={alpha} i={i}: {} vs {}", diags[(a, i)], inv[(i, i)]);
            }
            let u: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
            let qtu = tri.q.transpose() * Mat::<f64>::from_fn(n, 1, |i, _| u[i]);
            let v = factors[a].solve(qtu.col(0).iter().copied());
            let sol = &tri.q * Mat::<f64>::from_fn(n, 1, |i, _| v[i]);
            let want = &inv * Mat::<f64>::from_fn(n, 1, |i, _| u[i]);
            for i in 0..n {
                assert!((sol[(i, 0)] - want[(i, 0)]).abs() < 1e-9 * want.norm_max(), "solve at {i}");
            }
        }
    }

    #[test]
    fn primal_and_dual_agree() {
        let (x, y) = data(10, 10, 1);
        let p = ridge_path(x.view(), y.view(), None, &[0.5], true, RidgeMode::Primal, Par::Seq).unwrap();
        let q = ridge_path(x.view(), y.view(), None, &[0.5], true, RidgeMode::Dual, Par::Seq).unwrap();
        for (a, b) in p.coef.iter().zip(&q.coef) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!((p.intercept[(0, 0)] - q.intercept[(0, 0)]).abs() < 1e-6);
    }

    #[test]
    fn bad_input_is_named() {
        let (x, y) = data(5, 3, 1);
        let err = |r: Result<RidgePath>| r.unwrap_err().to_string();
        assert!(err(ridge_path(x.view(), y.view(), None, &[0.0], true, RidgeMode::Auto, Par::Seq)).contains("> 0"));
        let y4 = y.slice(ndarray::s![..4, ..]);
        assert!(
            err(ridge_path(x.view(), y4, None, &[1.0], true, RidgeMode::Auto, Par::Seq)).contains("(5, n_targets)")
        );
        let mut xn = x.clone();
        xn[(2, 1)] = f32::NAN;
        assert!(
            err(ridge_path(xn.view(), y.view(), None, &[1.0], true, RidgeMode::Auto, Par::Seq))
                .contains("row 2, column 1")
        );
    }
}
