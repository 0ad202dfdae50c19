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

use faer::{Accum, Mat, Par};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, Axis};

use super::{as_faer, centered_scaled, check_design, eigh, gram_rows, sample_weights, weighted_means};
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

/// `A^T B` for row-major `a` (`n x d`, float32) and `b` (`n x t`, float64), accumulated in float64: `(t, d)`.
fn at_b(a: &Array2<f32>, b: &Array2<f64>) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((b.ncols(), a.ncols()));
    for (arow, brow) in a.rows().into_iter().zip(b.rows()) {
        for (k, &bk) in brow.iter().enumerate() {
            if bk != 0.0 {
                for (o, &v) in out.row_mut(k).iter_mut().zip(arow) {
                    *o += bk * f64::from(v);
                }
            }
        }
    }
    out
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
        for j in 0..n {
            for i in 0..n {
                k[(i, j)] += s[i] * s[j];
            }
        }
    }
    let (lambda, u) = eigh(&k)?;
    let u = to_nd(&u);
    // The intercept's eigenvector is s / |s| (centering makes it orthogonal to every feature column): find it as
    // the eigenvector closest in angle, and give it no shrinkage.
    let intercept_dim = if fit_intercept {
        let norm = s.dot(s).sqrt();
        let cos = u.t().dot(s).mapv(|c| (c / norm).abs());
        cos.iter().enumerate().fold((0, -1.0), |best, (i, &c)| if c > best.1 { (i, c) } else { best }).0.into()
    } else {
        None
    };
    let z = u.t().dot(ys); // (n, t)
    let u2 = u.mapv(|v| v * v);
    let mut coef = Array3::<f64>::zeros((alphas.len(), t, d));
    let mut loo = Array2::<f64>::zeros((alphas.len(), t));
    for (a, &alpha) in alphas.iter().enumerate() {
        let mut wk: Array1<f64> = lambda.iter().map(|l| 1.0 / (l + alpha)).collect();
        if let Some(i) = intercept_dim {
            wk[i] = 0.0;
        }
        let c = u.dot(&(&z * &wk.view().insert_axis(Axis(1)))); // (n, t) dual coefficients
        let g_diag = u2.dot(&wk); // diag of the (intercept-free) inverse
        for j in 0..t {
            loo[(a, j)] = (0..n).map(|i| (c[(i, j)] / g_diag[i]).powi(2)).sum::<f64>() / n as f64;
        }
        coef.index_axis_mut(Axis(0), a).assign(&at_b(xs, &c));
    }
    Ok((coef, loo))
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
    let g = gram_rows(as_faer(xs).transpose(), par);
    let (lambda, v) = eigh(&g)?;
    // P = X V (n x d) in float64, block by block of rows.
    let mut p = Mat::<f64>::zeros(n, d);
    let block = super::GRAM_BLOCK * 8;
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
