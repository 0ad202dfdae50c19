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

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use super::linalg::dot_mixed;
use super::{check_design, sample_weights};
use crate::error::{Error, Result};

/// Rows per block of the sample sums.
const ROW_BLOCK: usize = 256;
/// Pairs kept by L-BFGS. scipy's default (`maxcor`, which scikit-learn keeps) is 10; on the nearly separable fits
/// of small probing sets (a few hundred examples, hundreds of features) 30 cut the iterations by about a quarter, at a
/// few percent more work per iteration.
const MEMORY: usize = 30;
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
    l2: f64,        // 1 / (C S)
    parallel: bool, // sum the row blocks in parallel (one fit alone); else sequentially (fits run side by side)
}

impl Problem<'_> {
    fn n_params(&self) -> usize {
        self.rows * (self.d + usize::from(self.fit_intercept))
    }

    /// Objective and gradient at `theta` (coefficients row by row, then the intercepts).
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (k, d) = (self.rows, self.d);
        let n = self.x.nrows();
        let block = |b: usize| {
            let mut g = vec![0.0f64; k * (d + 1)];
            let mut z = vec![0.0f64; 4 * k];
            let loss = accumulate(self, theta, b * ROW_BLOCK..((b + 1) * ROW_BLOCK).min(n), &mut g, &mut z);
            (loss, g)
        };
        let blocks: Vec<(f64, Vec<f64>)> = if self.parallel {
            (0..n.div_ceil(ROW_BLOCK)).into_par_iter().map(block).collect()
        } else {
            (0..n.div_ceil(ROW_BLOCK)).map(block).collect()
        };
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
        for (gv, &cv) in grad[..k * d].iter_mut().zip(&theta[..k * d]) {
            *gv += self.l2 * cv;
            penalty += cv * cv;
        }
        loss * self.inv_s + 0.5 * self.l2 * penalty
    }
}

/// The weighted loss of rows `range` at `theta`, with its gradient added into `g` (`k * (d + 1)`: coefficients, then
/// intercepts); `z` is `4 * k` values of scratch.
///
/// Dispatches to a copy of the same code compiled for the widest vector unit the CPU has (AVX-512 or AVX2 on
/// x86-64): the sums keep their order (eight partial sums per dot product, see [`dot_mixed`]), so every copy gives
/// bit-identical results; only the width the loops run at differs.
fn accumulate(p: &Problem<'_>, theta: &[f64], range: Range<usize>, g: &mut [f64], z: &mut [f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { accumulate_avx512(p, theta, range, g, z) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { accumulate_avx2(p, theta, range, g, z) };
        }
    }
    accumulate_rows(p, theta, range, g, z)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn accumulate_avx512(p: &Problem<'_>, theta: &[f64], range: Range<usize>, g: &mut [f64], z: &mut [f64]) -> f64 {
    accumulate_rows(p, theta, range, g, z)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(p: &Problem<'_>, theta: &[f64], range: Range<usize>, g: &mut [f64], z: &mut [f64]) -> f64 {
    accumulate_rows(p, theta, range, g, z)
}

#[allow(clippy::inline_always)] // inlined into each vector width's copy of `accumulate`, to vectorize at that width
#[inline(always)]
fn accumulate_rows(p: &Problem<'_>, theta: &[f64], range: Range<usize>, g: &mut [f64], z: &mut [f64]) -> f64 {
    let (k, d) = (p.rows, p.d);
    let coef = &theta[..k * d];
    let bias = |c: usize| if p.fit_intercept { theta[k * d + c] } else { 0.0 };
    let mut loss = 0.0;
    let mut i = range.start;
    // Groups of four rows: each coefficient row is read once per group and each gradient entry written once. The
    // arithmetic is that of one row at a time (each dot product's partial sums, and each gradient entry's updates in
    // row order), so the result does not depend on the grouping.
    while i + 4 <= range.end {
        let cows: [_; 4] = std::array::from_fn(|r| super::row_slice(p.x, i + r));
        let rows: [&[f32]; 4] = std::array::from_fn(|r| &*cows[r]);
        for c in 0..k {
            let dots = dot4(rows, &coef[c * d..(c + 1) * d]);
            for (r, v) in dots.into_iter().enumerate() {
                z[r * k + c] = bias(c) + v;
            }
        }
        for r in 0..4 {
            loss += residuals(p, i + r, &mut z[r * k..(r + 1) * k]);
        }
        for c in 0..k {
            let res: [f64; 4] = std::array::from_fn(|r| z[r * k + c]);
            axpy4(&mut g[c * d..(c + 1) * d], rows, res);
            for v in res {
                g[k * d + c] += v;
            }
        }
        i += 4;
    }
    for i in i..range.end {
        let row = super::row_slice(p.x, i);
        let row: &[f32] = &row;
        for (c, zc) in z[..k].iter_mut().enumerate() {
            *zc = bias(c) + dot_mixed(row, &coef[c * d..(c + 1) * d]);
        }
        loss += residuals(p, i, &mut z[..k]);
        for (c, &r) in z[..k].iter().enumerate() {
            for (gv, &xv) in g[c * d..(c + 1) * d].iter_mut().zip(row) {
                *gv += r * f64::from(xv);
            }
            g[k * d + c] += r;
        }
    }
    loss
}

/// Row `i`'s weighted loss, given its scores `z` (`k` values), which are replaced by the weighted residuals
/// `w_i * dloss/dz` (zeros for a row of weight 0).
#[allow(clippy::inline_always)] // inlined into each vector width's copy of `accumulate`, to vectorize at that width
#[inline(always)]
fn residuals(p: &Problem<'_>, i: usize, z: &mut [f64]) -> f64 {
    let wi = p.w[i];
    if wi == 0.0 {
        z.fill(0.0);
        return 0.0;
    }
    let loss;
    if z.len() == 1 {
        let zi = z[0];
        let yi = if p.y[i] == 1 { 1.0 } else { 0.0 };
        loss = zi.max(0.0) + (-zi.abs()).exp().ln_1p() - yi * zi;
        z[0] = wi * (sigmoid(zi) - yi);
    } else {
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
        let lse = m + sum.ln();
        loss = lse - z[p.y[i]];
        for (c, zc) in z.iter_mut().enumerate() {
            *zc = wi * ((*zc - lse).exp() - if c == p.y[i] { 1.0 } else { 0.0 });
        }
    }
    wi * loss
}

/// [`dot_mixed`] of four rows with one vector (the same partial sums per row, so the same values).
#[allow(clippy::inline_always)] // inlined into each vector width's copy of `accumulate`, to vectorize at that width
#[inline(always)]
fn dot4(rows: [&[f32]; 4], w: &[f64]) -> [f64; 4] {
    const LANES: usize = 8;
    let (mut a0, mut a1, mut a2, mut a3) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    let ws = w.chunks_exact(LANES);
    let [c0, c1, c2, c3] = rows.map(|r| r.chunks_exact(LANES));
    let tails = [c0.remainder(), c1.remainder(), c2.remainder(), c3.remainder()];
    let w_tail = ws.remainder();
    for ((((wc, x0), x1), x2), x3) in ws.zip(c0).zip(c1).zip(c2).zip(c3) {
        for l in 0..LANES {
            let wv = wc[l];
            a0[l] += f64::from(x0[l]) * wv;
            a1[l] += f64::from(x1[l]) * wv;
            a2[l] += f64::from(x2[l]) * wv;
            a3[l] += f64::from(x3[l]) * wv;
        }
    }
    let acc = [a0, a1, a2, a3];
    std::array::from_fn(|r| {
        let tail: f64 = tails[r].iter().zip(w_tail).map(|(&a, &b)| f64::from(a) * b).sum();
        acc[r].iter().sum::<f64>() + tail
    })
}

/// `g += res[0] * rows[0] + ... + res[3] * rows[3]`, each entry updated in row order.
#[allow(clippy::inline_always)] // inlined into each vector width's copy of `accumulate`, to vectorize at that width
#[inline(always)]
fn axpy4(g: &mut [f64], rows: [&[f32]; 4], res: [f64; 4]) {
    let [r0, r1, r2, r3] = res;
    let [x0, x1, x2, x3] = rows;
    for ((((gv, &a), &b), &c), &e) in g.iter_mut().zip(x0).zip(x1).zip(x2).zip(x3) {
        let mut v = *gv;
        v += r0 * f64::from(a);
        v += r1 * f64::from(b);
        v += r2 * f64::from(c);
        v += r3 * f64::from(e);
        *gv = v;
    }
}

#[allow(clippy::inline_always)] // inlined into each vector width's copy of `accumulate`, to vectorize at that width
#[inline(always)]
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
    let problem = Problem {
        x,
        y,
        w,
        rows,
        d,
        fit_intercept: options.fit_intercept,
        inv_s: 1.0 / s,
        l2: 1.0 / (options.c * s),
        parallel: true,
    };
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

/// Minimizes the unweighted objective of `options` from `theta` (`rows * d` coefficients row by row, then the
/// intercepts; zeros for a cold start), in place; returns `(iterations, converged, objective)`. `parallel` sums the
/// row blocks in parallel; pass `false` when fits already run side by side. The caller has checked `x` and `y`.
pub(super) fn minimize_unweighted(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    n_classes: usize,
    options: LogisticOptions,
    theta: &mut [f64],
    parallel: bool,
) -> (usize, bool, f64) {
    let (n, d) = x.dim();
    let rows = if n_classes == 2 { 1 } else { n_classes };
    let s = n as f64;
    let problem = Problem {
        x,
        y,
        w: Array1::ones(n),
        rows,
        d,
        fit_intercept: options.fit_intercept,
        inv_s: 1.0 / s,
        l2: 1.0 / (options.c * s),
        parallel,
    };
    debug_assert_eq!(theta.len(), problem.n_params());
    let (objective, n_iter, converged) = lbfgs(&problem, theta, options.max_iter, options.tol);
    (n_iter, converged, objective)
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
                parallel: false,
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
