//! L2-regularized logistic regression (binary and multinomial) by L-BFGS.
//!
//! The objective is scikit-learn's `LogisticRegression(penalty="l2", solver="lbfgs")` objective, scaled the same
//! way so that `tol` means the same thing: with `S = sum(w)`,
//! `f(W, b) = (1/S) sum_i w_i loss_i + |W|^2 / (2 C S)` (the intercept `b` is not penalized), where `loss_i` is the
//! binary log-loss of `x_i . W + b` (two classes: one coefficient row, for class 1) or the softmax cross-entropy
//! (three or more classes: one row per class). It stops when the largest gradient entry is at most `tol`, when an
//! iteration no longer reduces `f` (relative change below `64 * eps`, as scipy's L-BFGS-B), or after `max_iter`.
//!
//! Sums over samples run over fixed blocks of rows (in parallel) and are added in block order, so a fit is
//! deterministic whatever the thread count.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use super::linalg::dot_mixed;
use super::{check_design, sample_weights};
use crate::error::{Error, Result};

/// Rows per block of the sample sums.
const ROW_BLOCK: usize = 256;
/// Pairs kept by L-BFGS (scipy's default `maxcor`).
const MEMORY: usize = 10;
/// Largest number of function evaluations in one line search (scipy's `maxls` for scikit-learn).
const MAX_LINE_SEARCH: usize = 50;

/// Options of a fit.
#[derive(Debug, Clone, Copy)]
pub struct LogisticOptions {
    /// Inverse regularization strength (> 0).
    pub c: f64,
    /// Whether to fit an intercept.
    pub fit_intercept: bool,
    /// Largest number of L-BFGS iterations.
    pub max_iter: usize,
    /// Stop when the largest gradient entry is at most this.
    pub tol: f64,
}

/// A fitted model.
#[derive(Debug, Clone)]
pub struct LogisticFit {
    /// `(1, d)` for two classes (the coefficients of class 1), `(n_classes, d)` otherwise.
    pub coef: Array2<f64>,
    /// One per coefficient row.
    pub intercept: Array1<f64>,
    /// Iterations run.
    pub n_iter: usize,
    /// Whether a stopping criterion other than `max_iter` was met.
    pub converged: bool,
    /// The objective at the solution.
    pub objective: f64,
}

struct Problem<'a> {
    x: ArrayView2<'a, f32>,
    y: &'a [usize],
    w: Array1<f64>,
    rows: usize, // coefficient rows: 1 (binary) or n_classes
    d: usize,
    fit_intercept: bool,
    inv_s: f64,
    l2: f64, // 1 / (C S)
}

impl Problem<'_> {
    fn n_params(&self) -> usize {
        self.rows * (self.d + usize::from(self.fit_intercept))
    }

    /// Objective and gradient at `theta` (coefficients row by row, then the intercepts).
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (k, d) = (self.rows, self.d);
        let coef = &theta[..k * d];
        let bias = if self.fit_intercept { &theta[k * d..] } else { &[][..] };
        let n = self.x.nrows();
        let blocks: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(ROW_BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut g = vec![0.0f64; k * (d + 1)];
                let mut loss = 0.0;
                let mut z = vec![0.0f64; k];
                for i in b * ROW_BLOCK..((b + 1) * ROW_BLOCK).min(n) {
                    let wi = self.w[i];
                    if wi == 0.0 {
                        continue;
                    }
                    let row = super::row_slice(self.x, i);
                    let row: &[f32] = &row;
                    for (c, zc) in z.iter_mut().enumerate() {
                        *zc = bias.get(c).copied().unwrap_or(0.0) + dot_mixed(row, &coef[c * d..(c + 1) * d]);
                    }
                    // Residuals dloss/dz, written back into z.
                    if k == 1 {
                        let zi = z[0];
                        let yi = if self.y[i] == 1 { 1.0 } else { 0.0 };
                        loss += wi * (zi.max(0.0) + (-zi.abs()).exp().ln_1p() - yi * zi);
                        z[0] = sigmoid(zi) - yi;
                    } else {
                        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
                        let lse = m + sum.ln();
                        loss += wi * (lse - z[self.y[i]]);
                        for (c, zc) in z.iter_mut().enumerate() {
                            *zc = (*zc - lse).exp() - if c == self.y[i] { 1.0 } else { 0.0 };
                        }
                    }
                    for (c, &r) in z.iter().enumerate() {
                        let r = wi * r;
                        for (gv, &xv) in g[c * d..(c + 1) * d].iter_mut().zip(row) {
                            *gv += r * f64::from(xv);
                        }
                        g[k * d + c] += r;
                    }
                }
                (loss, g)
            })
            .collect();
        grad.fill(0.0);
        let mut loss = 0.0;
        for (l, g) in &blocks {
            loss += l;
            for (o, v) in grad[..k * d].iter_mut().zip(&g[..k * d]) {
                *o += v;
            }
            if self.fit_intercept {
                for (o, v) in grad[k * d..].iter_mut().zip(&g[k * d..]) {
                    *o += v;
                }
            }
        }
        for v in grad.iter_mut() {
            *v *= self.inv_s;
        }
        let mut penalty = 0.0;
        for (gv, &cv) in grad[..k * d].iter_mut().zip(coef) {
            *gv += self.l2 * cv;
            penalty += cv * cv;
        }
        loss * self.inv_s + 0.5 * self.l2 * penalty
    }
}

pub(super) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks labels: class indices below `n_classes`, one per sample, every class present (with weight).
pub(super) fn check_labels(y: &[usize], n: usize, n_classes: usize, w: &Array1<f64>) -> Result<()> {
    if y.len() != n {
        return Err(Error::shape("y", format!("({n},) (one label per sample of X)"), format!("({},)", y.len())));
    }
    if n_classes < 2 {
        return Err(Error::InvalidInput(format!(
            "the labels hold {n_classes} class; a classifier needs at least 2 classes"
        )));
    }
    let mut seen = vec![false; n_classes];
    for (&c, &wi) in y.iter().zip(w) {
        if c >= n_classes {
            return Err(Error::InvalidInput(format!("label {c} is not below n_classes = {n_classes}")));
        }
        seen[c] |= wi > 0.0;
    }
    if let Some(c) = seen.iter().position(|s| !s) {
        return Err(Error::InvalidInput(format!(
            "class {c} has no sample (with positive weight); every class needs at least one"
        )));
    }
    Ok(())
}

/// Fits one model. `y` holds class indices `0..n_classes`. `init` warm-starts from earlier coefficients.
///
/// # Errors
/// [`Error::Shape`] / [`Error::InvalidInput`] for mismatched lengths, non-finite values, a single class, bad
/// weights or options.
pub fn logistic_fit(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    n_classes: usize,
    sample_weight: Option<ArrayView1<'_, f64>>,
    options: LogisticOptions,
    init: Option<(&Array2<f64>, &Array1<f64>)>,
) -> Result<LogisticFit> {
    let (n, d) = check_design(x, 1)?;
    let w = sample_weights(sample_weight, n)?;
    check_labels(y, n, n_classes, &w)?;
    if !(options.c.is_finite() && options.c > 0.0) {
        return Err(Error::InvalidInput(format!("C must be finite and > 0; got {}", options.c)));
    }
    if !(options.tol.is_finite() && options.tol >= 0.0) {
        return Err(Error::InvalidInput(format!("tol must be finite and >= 0; got {}", options.tol)));
    }
    let rows = if n_classes == 2 { 1 } else { n_classes };
    let s = w.sum();
    let problem =
        Problem { x, y, w, rows, d, fit_intercept: options.fit_intercept, inv_s: 1.0 / s, l2: 1.0 / (options.c * s) };
    let mut theta = vec![0.0f64; problem.n_params()];
    if let Some((coef, intercept)) = init {
        if coef.dim() != (rows, d) {
            return Err(Error::shape("initial coefficients", format!("({rows}, {d})"), format!("{:?}", coef.dim())));
        }
        theta[..rows * d].copy_from_slice(coef.as_standard_layout().as_slice().unwrap_or_default());
        if options.fit_intercept {
            theta[rows * d..].copy_from_slice(intercept.as_slice().unwrap_or_default());
        }
    }
    let (objective, n_iter, converged) = lbfgs(&problem, &mut theta, options.max_iter, options.tol);
    let coef = Array2::from_shape_vec((rows, d), theta[..rows * d].to_vec()).expect("sizes match");
    let intercept = if options.fit_intercept { Array1::from(theta[rows * d..].to_vec()) } else { Array1::zeros(rows) };
    Ok(LogisticFit { coef, intercept, n_iter, converged, objective })
}

/// Fits one model per value of `cs`, in the order given, each warm-started from the previous solution (give the
/// strongest regularization, the smallest C, first).
///
/// # Errors
/// As [`logistic_fit`].
pub fn logistic_path(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    n_classes: usize,
    sample_weight: Option<ArrayView1<'_, f64>>,
    cs: &[f64],
    options: LogisticOptions,
) -> Result<Vec<LogisticFit>> {
    let mut fits: Vec<LogisticFit> = Vec::with_capacity(cs.len());
    for &c in cs {
        let init = fits.last().map(|f| (&f.coef, &f.intercept));
        let fit = logistic_fit(x, y, n_classes, sample_weight, LogisticOptions { c, ..options }, init)?;
        fits.push(fit);
    }
    Ok(fits)
}

/// Minimizes `problem` from `theta` in place; returns (objective, iterations, converged).
fn lbfgs(problem: &Problem<'_>, theta: &mut [f64], max_iter: usize, tol: f64) -> (f64, usize, bool) {
    let p = theta.len();
    let mut grad = vec![0.0; p];
    let mut f = problem.eval(theta, &mut grad);
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(MEMORY);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(MEMORY);
    let mut rho: Vec<f64> = Vec::with_capacity(MEMORY);
    let mut dir = vec![0.0; p];
    let mut trial = vec![0.0; p];
    let mut trial_grad = vec![0.0; p];
    let inf_norm = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for iter in 0..max_iter {
        if inf_norm(&grad) <= tol {
            return (f, iter, true);
        }
        // Two-loop recursion: dir = -H grad.
        dir.iter_mut().zip(&grad).for_each(|(d, g)| *d = -g);
        let mut alpha = vec![0.0; s_hist.len()];
        for j in (0..s_hist.len()).rev() {
            alpha[j] = rho[j] * dot(&s_hist[j], &dir);
            dir.iter_mut().zip(&y_hist[j]).for_each(|(d, y)| *d -= alpha[j] * y);
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            for d in &mut dir {
                *d *= gamma;
            }
        }
        for j in 0..s_hist.len() {
            let beta = rho[j] * dot(&y_hist[j], &dir);
            dir.iter_mut().zip(&s_hist[j]).for_each(|(d, s)| *d += (alpha[j] - beta) * s);
        }
        let mut slope = dot(&grad, &dir);
        if slope >= 0.0 {
            // Not a descent direction (can only follow rounding): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            dir.iter_mut().zip(&grad).for_each(|(d, g)| *d = -g);
            slope = dot(&grad, &dir);
        }
        // Weak Wolfe line search by bracketing (Armijo c1 = 1e-4, curvature c2 = 0.9).
        let mut step = if s_hist.is_empty() { 1.0 / dot(&dir, &dir).sqrt().max(1.0) } else { 1.0 };
        let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
        let mut accepted = None;
        for _ in 0..MAX_LINE_SEARCH {
            trial.iter_mut().zip(theta.iter()).zip(&dir).for_each(|((t, x), d)| *t = x + step * d);
            let ft = problem.eval(&trial, &mut trial_grad);
            if !ft.is_finite() || ft > f + 1e-4 * step * slope {
                hi = step;
            } else if dot(&trial_grad, &dir) < 0.9 * slope {
                lo = step;
            } else {
                accepted = Some(ft);
                break;
            }
            step = if hi.is_finite() { 0.5 * (lo + hi) } else { 2.0 * lo };
        }
        let Some(f_new) = accepted else {
            // No acceptable step: the objective cannot be reduced further at this precision.
            return (f, iter, true);
        };
        let s: Vec<f64> = trial.iter().zip(theta.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = trial_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        theta.copy_from_slice(&trial);
        grad.copy_from_slice(&trial_grad);
        let f_old = f;
        f = f_new;
        if sy > 1e-12 * dot(&y, &y) {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            rho.push(1.0 / sy);
            s_hist.push(s);
            y_hist.push(y);
        }
        if (f_old - f) / f_old.abs().max(f.abs()).max(1.0) <= 64.0 * f64::EPSILON {
            return (f, iter + 1, true);
        }
    }
    let converged = inf_norm(&grad) <= tol;
    (f, max_iter, converged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(c: f64) -> LogisticOptions {
        LogisticOptions { c, fit_intercept: true, max_iter: 1000, tol: 1e-10 }
    }

    #[test]
    fn gradient_is_zero_at_the_solution_and_matches_finite_differences() {
        let x = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.0 - 1.0);
        let y: Vec<usize> = (0..40).map(|i| usize::from((i * 7) % 11 > 5) + usize::from(i % 3 == 0)).collect();
        for n_classes in [2usize, 3] {
            let y: Vec<usize> = y.iter().map(|&c| c.min(n_classes - 1)).collect();
            let fit = logistic_fit(x.view(), &y, n_classes, None, options(0.7), None).unwrap();
            assert!(fit.converged);
            let rows = fit.coef.nrows();
            let problem = Problem {
                x: x.view(),
                y: &y,
                w: Array1::ones(40),
                rows,
                d: 3,
                fit_intercept: true,
                inv_s: 1.0 / 40.0,
                l2: 1.0 / (0.7 * 40.0),
            };
            let theta: Vec<f64> = fit.coef.iter().chain(fit.intercept.iter()).copied().collect();
            let mut g = vec![0.0; theta.len()];
            let f0 = problem.eval(&theta, &mut g);
            assert!(g.iter().all(|v| v.abs() < 1e-8), "{g:?}");
            // Finite differences at a point away from the optimum.
            let moved: Vec<f64> = theta.iter().enumerate().map(|(i, v)| v + 0.1 * (i as f64 - 1.0)).collect();
            let mut gm = vec![0.0; theta.len()];
            let fm = problem.eval(&moved, &mut gm);
            assert!(fm > f0);
            for i in 0..theta.len() {
                let mut up = moved.clone();
                up[i] += 1e-6;
                let mut down = moved.clone();
                down[i] -= 1e-6;
                let mut scratch = vec![0.0; theta.len()];
                let fd = (problem.eval(&up, &mut scratch) - problem.eval(&down, &mut scratch)) / 2e-6;
                assert!((fd - gm[i]).abs() < 1e-6, "param {i}: {fd} vs {}", gm[i]);
            }
        }
    }

    #[test]
    fn one_class_is_an_error() {
        let x = Array2::<f32>::zeros((4, 2));
        let err = logistic_fit(x.view(), &[0, 0, 0, 0], 2, None, options(1.0), None).unwrap_err();
        assert!(err.to_string().contains("class 1 has no sample"), "{err}");
    }
}
