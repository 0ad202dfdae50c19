//! Group-lasso logistic regression: binary logistic loss with an L2,1 penalty over groups of features, the solver
//! behind automatic layer selection (one group per layer, so a layer's whole block of coefficients is zero or not).
//!
//! With `S = sum(w)` and class-1 indicator `y_i`, it minimizes
//! `F(beta, b) = (1/S) sum_i w_i [log(1 + exp(z_i)) - y_i z_i] + alpha sum_g c_g |beta_g|_2`, `z_i = x_i . beta + b`,
//! where `beta_g` is group `g`'s block of coefficients and `c_g` its weight (1 by default); the intercept is not
//! penalized. The solver is accelerated proximal gradient (FISTA) with a backtracking step and adaptive restart; the
//! proximal step of the penalty shrinks each group's block towards zero by `step * alpha * c_g` in norm, setting it
//! exactly to zero when its norm is below that. It stops when the optimality conditions hold to within `tol`:
//! `|dF/db| <= tol`, and for each group `| grad_g + alpha c_g beta_g / |beta_g| | <= tol` when `beta_g != 0`, or
//! `|grad_g| <= alpha c_g + tol` when `beta_g = 0`.
//!
//! Sums over samples run over fixed blocks of rows (in parallel) and are added in block order, so a fit is
//! deterministic whatever the thread count.

use ndarray::{Array1, ArrayView1, ArrayView2};
use rayon::prelude::*;

use super::linalg::dot_mixed;
use super::logistic::{check_labels, sigmoid};
use super::{check_design, sample_weights};
use crate::error::{Error, Result};

/// Rows per block of the sample sums.
const ROW_BLOCK: usize = 256;

/// Options of a fit.
#[derive(Debug, Clone, Copy)]
pub struct GroupLassoOptions {
    /// Penalty strength (>= 0).
    pub alpha: f64,
    /// Whether to fit an (unpenalized) intercept.
    pub fit_intercept: bool,
    /// Largest number of proximal-gradient iterations.
    pub max_iter: usize,
    /// Tolerance on the optimality conditions.
    pub tol: f64,
}

/// A fitted model.
#[derive(Debug, Clone)]
pub struct GroupLassoFit {
    /// Coefficients, `(d,)`.
    pub coef: Array1<f64>,
    /// Intercept (0 without one).
    pub intercept: f64,
    /// The L2 norm of each group's coefficients; exactly 0 for a group the penalty removed.
    pub group_norms: Array1<f64>,
    /// Iterations run.
    pub n_iter: usize,
    /// Whether the optimality conditions were met within `max_iter`.
    pub converged: bool,
    /// The objective `F` at the solution.
    pub objective: f64,
    /// The largest violation of the optimality conditions at the solution.
    pub violation: f64,
}

struct Problem<'a> {
    x: ArrayView2<'a, f32>,
    y: &'a [usize],
    w: Array1<f64>,
    inv_s: f64,
    d: usize,
    groups: &'a [usize],
    weights: Vec<f64>,
    alpha: f64,
    fit_intercept: bool,
}

impl Problem<'_> {
    /// Smooth part (the weighted mean log-loss) and its gradient at `theta = [beta, b]`.
    fn smooth(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (d, n) = (self.d, self.x.nrows());
        let (beta, b) = (&theta[..d], theta[d]);
        let blocks: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(ROW_BLOCK))
            .into_par_iter()
            .map(|blk| {
                let mut g = vec![0.0f64; d + 1];
                let mut loss = 0.0;
                for i in blk * ROW_BLOCK..((blk + 1) * ROW_BLOCK).min(n) {
                    let wi = self.w[i];
                    if wi == 0.0 {
                        continue;
                    }
                    let row = super::row_slice(self.x, i);
                    let row: &[f32] = &row;
                    let z = b + dot_mixed(row, beta);
                    let yi = if self.y[i] == 1 { 1.0 } else { 0.0 };
                    loss += wi * (z.max(0.0) + (-z.abs()).exp().ln_1p() - yi * z);
                    let r = wi * (sigmoid(z) - yi);
                    for (gv, &xv) in g[..d].iter_mut().zip(row) {
                        *gv += r * f64::from(xv);
                    }
                    g[d] += r;
                }
                (loss, g)
            })
            .collect();
        grad.fill(0.0);
        let mut loss = 0.0;
        for (l, g) in blocks {
            loss += l;
            for (a, v) in grad.iter_mut().zip(g) {
                *a += v;
            }
        }
        for v in grad.iter_mut() {
            *v *= self.inv_s;
        }
        if !self.fit_intercept {
            grad[d] = 0.0;
        }
        loss * self.inv_s
    }

    fn group(&self, g: usize) -> std::ops::Range<usize> {
        self.groups[g]..self.groups[g + 1]
    }

    fn penalty(&self, theta: &[f64]) -> f64 {
        (0..self.weights.len()).map(|g| self.weights[g] * norm(&theta[self.group(g)])).sum::<f64>() * self.alpha
    }

    /// `prox(v)` for step `step`: each group's block shrunk towards zero by `step * alpha * c_g` in norm.
    fn prox(&self, v: &mut [f64], step: f64) {
        for g in 0..self.weights.len() {
            let block = &mut v[self.group(g)];
            let nrm = norm(block);
            let cut = step * self.alpha * self.weights[g];
            let scale = if nrm > cut { 1.0 - cut / nrm } else { 0.0 };
            for x in block.iter_mut() {
                *x *= scale;
            }
        }
    }

    /// The largest violation of the optimality conditions at `theta` with smooth gradient `grad`.
    fn violation(&self, theta: &[f64], grad: &[f64]) -> f64 {
        let mut worst = grad[self.d].abs();
        for g in 0..self.weights.len() {
            let r = self.group(g);
            let nrm = norm(&theta[r.clone()]);
            let lam = self.alpha * self.weights[g];
            let v = if nrm > 0.0 {
                grad[r.clone()].iter().zip(&theta[r]).map(|(gv, t)| (gv + lam * t / nrm).powi(2)).sum::<f64>().sqrt()
            } else {
                (norm(&grad[r]) - lam).max(0.0)
            };
            worst = worst.max(v);
        }
        worst
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Checks the group boundaries: `groups` starts at 0, ends at `d` and strictly increases.
fn check_groups(groups: &[usize], d: usize) -> Result<()> {
    if groups.len() < 2 || groups[0] != 0 || groups[groups.len() - 1] != d {
        return Err(Error::InvalidInput(format!(
            "group boundaries must start at 0 and end at the number of features ({d}); got {groups:?}"
        )));
    }
    if let Some(i) = (1..groups.len()).find(|&i| groups[i] <= groups[i - 1]) {
        return Err(Error::InvalidInput(format!(
            "group boundaries must strictly increase (every group non-empty); boundary {i} is {} after {}",
            groups[i],
            groups[i - 1]
        )));
    }
    Ok(())
}

/// Fits a group-lasso logistic regression. `y` holds class indices 0 and 1; group `g` is features
/// `groups[g]..groups[g + 1]`; `group_weights` (one per group, > 0) default to 1.
///
/// # Errors
/// [`Error::Shape`] / [`Error::InvalidInput`] for mismatched lengths, non-finite values, a single class, bad
/// weights, group boundaries or options.
pub fn group_lasso_logistic(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    sample_weight: Option<ArrayView1<'_, f64>>,
    groups: &[usize],
    group_weights: Option<&[f64]>,
    options: GroupLassoOptions,
) -> Result<GroupLassoFit> {
    let (n, d) = check_design(x, 1)?;
    let w = sample_weights(sample_weight, n)?;
    check_labels(y, n, 2, &w)?;
    check_groups(groups, d)?;
    let n_groups = groups.len() - 1;
    let weights = match group_weights {
        None => vec![1.0; n_groups],
        Some(gw) if gw.len() != n_groups => {
            return Err(Error::shape("group_weights", format!("({n_groups},) (one per group)"), gw.len()));
        }
        Some(gw) => {
            if let Some((g, v)) = gw.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
                return Err(Error::InvalidInput(format!("group_weights[{g}] is {v}; every weight must be > 0")));
            }
            gw.to_vec()
        }
    };
    if !(options.alpha.is_finite() && options.alpha >= 0.0) {
        return Err(Error::InvalidInput(format!("alpha must be finite and >= 0; got {}", options.alpha)));
    }
    if !(options.tol.is_finite() && options.tol > 0.0) {
        return Err(Error::InvalidInput(format!("tol must be finite and > 0; got {}", options.tol)));
    }
    let inv_s = 1.0 / w.sum();
    let p = Problem { x, y, w, inv_s, d, groups, weights, alpha: options.alpha, fit_intercept: options.fit_intercept };
    Ok(fista(&p, options.max_iter, options.tol))
}

/// Accelerated proximal gradient with backtracking (the step only shrinks within a search and grows back by 10%
/// after each iteration) and a restart of the momentum whenever the objective goes up.
fn fista(p: &Problem<'_>, max_iter: usize, tol: f64) -> GroupLassoFit {
    let m = p.d + 1;
    let mut theta = vec![0.0f64; m];
    if p.fit_intercept {
        // Start from the intercept-only solution: the weighted log-odds of class 1.
        let pos: f64 = p.y.iter().zip(&p.w).filter(|(c, _)| **c == 1).map(|(_, w)| w).sum::<f64>() * p.inv_s;
        theta[p.d] = (pos / (1.0 - pos)).ln();
    }
    let mut grad = vec![0.0f64; m];
    let mut f = p.smooth(&theta, &mut grad);
    let mut objective = f + p.penalty(&theta);
    let mut violation = p.violation(&theta, &grad);
    let mut prev = theta.clone();
    let mut t = 1.0f64;
    // A first step size from the curvature bound of the log-loss: 1/L with L = max row norm^2 / 4 (+ intercept).
    let max_row: f64 =
        p.x.rows().into_iter().map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>()).fold(0.0, f64::max);
    let mut lip = ((max_row + 1.0) / 4.0).max(1e-12);
    let (mut ygrad, mut cand, mut cgrad) = (vec![0.0; m], vec![0.0; m], vec![0.0; m]);
    let mut n_iter = 0;
    while violation > tol && n_iter < max_iter {
        n_iter += 1;
        let t_next = f64::midpoint(1.0, (1.0 + 4.0 * t * t).sqrt());
        let momentum = (t - 1.0) / t_next;
        let y: Vec<f64> = theta.iter().zip(&prev).map(|(a, b)| a + momentum * (a - b)).collect();
        let fy = p.smooth(&y, &mut ygrad);
        let fc = loop {
            cand.iter_mut().zip(&y).zip(&ygrad).for_each(|((c, yv), g)| *c = yv - g / lip);
            if !p.fit_intercept {
                cand[p.d] = 0.0;
            }
            p.prox(&mut cand[..p.d], 1.0 / lip);
            let fc = p.smooth(&cand, &mut cgrad);
            let step: f64 = cand.iter().zip(&y).zip(&ygrad).map(|((c, yv), g)| (c - yv) * g).sum();
            let dist: f64 = cand.iter().zip(&y).map(|(c, yv)| (c - yv).powi(2)).sum();
            if fc <= fy + step + 0.5 * lip * dist + 1e-12 * fy.abs().max(1.0) || lip > 1e30 {
                break fc;
            }
            lip *= 2.0;
        };
        let obj = fc + p.penalty(&cand);
        if obj > objective && momentum > 0.0 {
            // Momentum overshot: restart from the current point without it. (Without momentum the step is a plain
            // proximal-gradient step, which the backtracking makes monotone up to rounding, so it is taken.)
            t = 1.0;
            prev.clone_from(&theta);
            continue;
        }
        prev.clone_from(&theta);
        theta.clone_from(&cand);
        grad.clone_from(&cgrad);
        f = fc;
        objective = obj;
        violation = p.violation(&theta, &grad);
        t = t_next;
        lip *= 0.9;
    }
    let _ = f;
    let coef = Array1::from(theta[..p.d].to_vec());
    let group_norms = (0..p.weights.len()).map(|g| norm(&theta[p.group(g)])).collect();
    GroupLassoFit {
        coef,
        intercept: theta[p.d],
        group_norms,
        n_iter,
        converged: violation <= tol,
        objective,
        violation,
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact zeros are the point of the group lasso
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Three groups of 4 features; only group 1 carries the label.
    fn data(n: usize) -> (Array2<f32>, Vec<usize>) {
        let mut state = 12_345u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as f64 / f64::from(1u32 << 31)) * 2.0 - 1.0
        };
        let x = Array2::from_shape_fn((n, 12), |_| next() as f32);
        let y = (0..n).map(|i| usize::from(x[[i, 4]] + 0.5 * x[[i, 5]] + 0.3 * next() as f32 > 0.0)).collect();
        (x, y)
    }

    fn opts(alpha: f64) -> GroupLassoOptions {
        GroupLassoOptions { alpha, fit_intercept: true, max_iter: 5000, tol: 1e-8 }
    }

    #[test]
    fn zeroes_the_uninformative_groups_and_meets_the_optimality_conditions() {
        let (x, y) = data(400);
        let fit = group_lasso_logistic(x.view(), &y, None, &[0, 4, 8, 12], None, opts(0.02)).unwrap();
        assert!(fit.converged, "violation {}", fit.violation);
        assert_eq!(fit.group_norms[0], 0.0);
        assert_eq!(fit.group_norms[2], 0.0);
        assert!(fit.group_norms[1] > 0.5, "{:?}", fit.group_norms);
    }

    #[test]
    fn a_large_alpha_removes_every_group_and_leaves_the_log_odds() {
        let (x, y) = data(200);
        let fit = group_lasso_logistic(x.view(), &y, None, &[0, 4, 8, 12], None, opts(10.0)).unwrap();
        assert!(fit.group_norms.iter().all(|&v| v == 0.0));
        let pos = y.iter().filter(|&&c| c == 1).count() as f64 / 200.0;
        assert!((fit.intercept - (pos / (1.0 - pos)).ln()).abs() < 1e-9);
    }

    #[test]
    fn bad_groups_and_options_are_clear_errors() {
        let (x, y) = data(20);
        let err = |g: &[usize], o: GroupLassoOptions| {
            group_lasso_logistic(x.view(), &y, None, g, None, o).unwrap_err().to_string()
        };
        assert!(err(&[0, 4, 11], opts(0.1)).contains("end at the number of features (12)"));
        assert!(err(&[0, 4, 4, 12], opts(0.1)).contains("strictly increase"));
        assert!(err(&[0, 12], opts(-1.0)).contains("alpha must be finite and >= 0"));
        let gw = group_lasso_logistic(x.view(), &y, None, &[0, 6, 12], Some(&[1.0]), opts(0.1)).unwrap_err();
        assert!(gw.to_string().contains("group_weights"), "{gw}");
    }
}
