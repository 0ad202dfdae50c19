//! The online code of class labels with L2 logistic-regression probes (MDL probing, Voita and Titov 2020): every
//! block's probe fitted, and the next block coded, in one call per layer.
//!
//! The rows are coded in the order `order` gives (row `order[i]` of `x` is the `i`-th coded, with label `y[i]`). For
//! block ends `t_1 < ... < t_k = n`, block `i` (rows `[t_i, t_{i+1})`) is coded
//! by a probe fitted on rows `[0, t_i)`: standardized (optionally) with the mean and population standard deviation
//! of those rows (a constant feature gets scale 1), then L2 logistic regression ([`super::logistic`]). A row costs
//! `-log2(max(p, floor))` bits, `p` the probability the probe gives the row's class. The first block, sent without a
//! probe, is the caller's to cost.
//!
//! Warm start: block `i + 1`'s fit starts from block `i`'s solution re-expressed in block `i + 1`'s standardized
//! coordinates, so that it scores every row as before: `w'_j = w_j s'_j / s_j` and
//! `b' = b + sum_j w_j (m'_j - m_j) / s_j`. The objective is strictly convex, so the start changes how soon the
//! tolerance is met, not the optimum.

use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;

use super::check_design;
use super::linalg::dot_mixed;
use super::logistic::{LogisticOptions, minimize_unweighted, sigmoid};
use crate::error::{Error, Result};

/// Options of an online code.
#[derive(Debug, Clone, Copy)]
pub struct OnlineOptions {
    /// The probe.
    pub logistic: LogisticOptions,
    /// Standardize each feature with the statistics of the probe's training rows.
    pub standardize: bool,
    /// Start each block's fit from the previous block's solution.
    pub warm_start: bool,
    /// The smallest probability a row's class is given, in `(0, 1)`.
    pub floor: f64,
}

/// One coded block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineBlock {
    /// The block's codelength in bits.
    pub bits: f64,
    /// Rows whose class is the probe's most probable one.
    pub correct: usize,
    /// L-BFGS iterations of the block's probe.
    pub n_iter: usize,
    /// Whether the probe met a stopping criterion other than `max_iter`.
    pub converged: bool,
}

/// Codes blocks `1..` of `y` (class indices, in coding order) given the rows `order` picks from `x`; one
/// [`OnlineBlock`] per block after the first. `parallel` sums each fit's rows in parallel (one layer alone); pass
/// `false` when layers run side by side.
///
/// # Errors
/// [`Error::InvalidInput`] / [`Error::Shape`] for non-finite or mismatched inputs, block ends that are not strictly
/// increasing from at least 1 to `n`, a first block without every class, an `order` that is not a permutation of
/// `x`'s rows, or bad options.
pub fn online_code(
    x: ArrayView2<'_, f32>,
    order: &[usize],
    y: &[usize],
    n_classes: usize,
    ends: &[usize],
    options: &OnlineOptions,
    parallel: bool,
) -> Result<Vec<OnlineBlock>> {
    let (n, d) = check_design(x, 1)?;
    check_order(order, n)?;
    check_plan(n, y, n_classes, ends, options)?;
    let rows = if n_classes == 2 { 1 } else { n_classes };
    let params = rows * (d + usize::from(options.logistic.fit_intercept));
    let mut theta = vec![0.0f64; params];
    let mut previous: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut out = Vec::with_capacity(ends.len() - 1);
    for pair in ends.windows(2) {
        let (t, stop) = (pair[0], pair[1]);
        let (mean, scale) = if options.standardize { statistics(x, &order[..t]) } else { (vec![0.0; d], vec![1.0; d]) };
        if !options.warm_start {
            theta.fill(0.0);
        } else if let Some((m0, s0)) = &previous {
            restandardize(&mut theta, rows, d, options.logistic.fit_intercept, (m0, s0), (&mean, &scale));
        }
        let scaled = gathered(x, &order[..stop], &mean, &scale);
        let view = scaled.view();
        previous = Some((mean, scale));
        let (n_iter, converged, _) =
            minimize_unweighted(view.slice(s![..t, ..]), &y[..t], n_classes, options.logistic, &mut theta, parallel);
        let (bits, correct) = code(view.slice(s![t..stop, ..]), &y[t..stop], &theta, rows, d, options);
        out.push(OnlineBlock { bits, correct, n_iter, converged });
    }
    Ok(out)
}

/// [`online_code`] for every layer (the same `y` and blocks), layers in parallel on the current pool; `done(l)` is
/// called after layer `l` and may return an error to stop. The error returned is the lowest failing layer's.
///
/// # Errors
/// As [`online_code`]; [`Error::Shape`] when the layers' row counts differ from `y`'s.
pub fn online_code_layers(
    layers: &[ArrayView2<'_, f32>],
    order: &[usize],
    y: &[usize],
    n_classes: usize,
    ends: &[usize],
    options: &OnlineOptions,
    done: &(dyn Fn(usize) -> Result<()> + Sync),
) -> Result<Vec<Vec<OnlineBlock>>> {
    if layers.is_empty() {
        return Err(Error::InvalidInput("no layers given; the online code needs at least one".into()));
    }
    for (l, x) in layers.iter().enumerate() {
        if x.nrows() != y.len() {
            return Err(Error::shape(
                format!("layer {l}"),
                format!("({}, d) (one row per label)", y.len()),
                format!("{:?}", x.dim()),
            ));
        }
    }
    let parallel = layers.len() == 1;
    check_order(order, y.len())?;
    let results: Vec<Result<Vec<OnlineBlock>>> = layers
        .par_iter()
        .enumerate()
        .map(|(l, x)| {
            let blocks = online_code(*x, order, y, n_classes, ends, options, parallel)?;
            done(l)?;
            Ok(blocks)
        })
        .collect();
    results.into_iter().collect()
}

fn check_plan(n: usize, y: &[usize], n_classes: usize, ends: &[usize], options: &OnlineOptions) -> Result<()> {
    if y.len() != n {
        return Err(Error::shape("y", format!("({n},) (one label per row of X)"), format!("({},)", y.len())));
    }
    if n_classes < 2 {
        return Err(Error::InvalidInput(format!("n_classes is {n_classes}; the online code needs at least 2")));
    }
    if let Some((i, &c)) = y.iter().enumerate().find(|&(_, &c)| c >= n_classes) {
        return Err(Error::InvalidInput(format!("y[{i}] is {c}; class indices must be below n_classes = {n_classes}")));
    }
    let increasing = ends.windows(2).all(|p| p[0] < p[1]);
    if ends.len() < 2 || ends[0] == 0 || !increasing || ends[ends.len() - 1] != n {
        return Err(Error::InvalidInput(format!(
            "block ends must be at least two strictly increasing row counts from at least 1 to n = {n}; got {ends:?}"
        )));
    }
    let mut seen = vec![false; n_classes];
    for &c in &y[..ends[0]] {
        seen[c] = true;
    }
    if let Some(c) = seen.iter().position(|s| !s) {
        return Err(Error::InvalidInput(format!(
            "the first block (rows 0..{}) has no row of class {c}; every block's probe must see every class",
            ends[0]
        )));
    }
    let l = &options.logistic;
    if !(l.c.is_finite() && l.c > 0.0) {
        return Err(Error::InvalidInput(format!("C must be finite and > 0; got {}", l.c)));
    }
    if !(l.tol.is_finite() && l.tol >= 0.0) {
        return Err(Error::InvalidInput(format!("tol must be finite and >= 0; got {}", l.tol)));
    }
    if l.max_iter == 0 {
        return Err(Error::InvalidInput("max_iter must be at least 1; got 0".into()));
    }
    if !(options.floor > 0.0 && options.floor < 1.0) {
        return Err(Error::InvalidInput(format!("floor must lie in (0, 1); got {}", options.floor)));
    }
    Ok(())
}

fn check_order(order: &[usize], n: usize) -> Result<()> {
    let mut seen = vec![false; n];
    for (i, &r) in order.iter().enumerate() {
        if r >= n || std::mem::replace(&mut seen[r], true) {
            return Err(Error::InvalidInput(format!(
                "order[{i}] = {r} repeats a row or is not below the {n} rows; order must be a permutation of 0..{n}"
            )));
        }
    }
    if order.len() != n {
        return Err(Error::shape(
            "order",
            format!("({n},) (a permutation of the rows)"),
            format!("({},)", order.len()),
        ));
    }
    Ok(())
}

/// Per-feature mean and population standard deviation (1 for a constant feature) of the rows `rows` of `x`, summed
/// in the order given, as [`super::standardize::fit_scaler`] sums a matrix's rows.
fn statistics(x: ArrayView2<'_, f32>, rows: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let d = x.ncols();
    let nf = rows.len() as f64;
    let mut mean = vec![0.0f64; d];
    for &i in rows {
        for (m, &v) in mean.iter_mut().zip(x.row(i)) {
            *m += f64::from(v);
        }
    }
    for m in &mut mean {
        *m /= nf;
    }
    let mut var = vec![0.0f64; d];
    for &i in rows {
        for ((acc, &v), &m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *acc += (f64::from(v) - m).powi(2);
        }
    }
    let scale = var.into_iter().map(|v| if v / nf > 0.0 { (v / nf).sqrt() } else { 1.0 }).collect();
    (mean, scale)
}

/// The rows `rows` of `x`, standardized as `(x - mean) / scale`, as a new row-major float32 matrix.
fn gathered(x: ArrayView2<'_, f32>, rows: &[usize], mean: &[f64], scale: &[f64]) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((rows.len(), x.ncols()));
    for (mut o, &i) in out.rows_mut().into_iter().zip(rows) {
        for (((o, &v), &m), &sd) in o.iter_mut().zip(x.row(i)).zip(mean).zip(scale) {
            *o = ((f64::from(v) - m) / sd) as f32;
        }
    }
    out
}

/// Re-expresses `theta` (fitted on features standardized with `from`) for features standardized with `to`.
fn restandardize(
    theta: &mut [f64],
    rows: usize,
    d: usize,
    fit_intercept: bool,
    from: (&[f64], &[f64]),
    to: (&[f64], &[f64]),
) {
    let ((m0, s0), (m1, s1)) = (from, to);
    for c in 0..rows {
        let mut shift = 0.0;
        for j in 0..d {
            let w = theta[c * d + j];
            shift += w * (m1[j] - m0[j]) / s0[j];
            theta[c * d + j] = w * s1[j] / s0[j];
        }
        if fit_intercept {
            theta[rows * d + c] += shift;
        }
    }
}

/// The codelength in bits of `y` under the probe `theta`, and how many rows it classifies correctly.
fn code(x: ArrayView2<'_, f32>, y: &[usize], theta: &[f64], rows: usize, d: usize, o: &OnlineOptions) -> (f64, usize) {
    let intercept = |c: usize| if o.logistic.fit_intercept { theta[rows * d + c] } else { 0.0 };
    let mut z = vec![0.0f64; rows];
    let (mut bits, mut n_right) = (0.0f64, 0usize);
    for (i, row) in x.rows().into_iter().enumerate() {
        let row = row.to_slice().expect("row-major rows");
        for (c, zc) in z.iter_mut().enumerate() {
            *zc = intercept(c) + dot_mixed(row, &theta[c * d..(c + 1) * d]);
        }
        let (p, predicted) = if rows == 1 {
            let own = if y[i] == 1 { sigmoid(z[0]) } else { sigmoid(-z[0]) };
            (own, usize::from(z[0] > 0.0))
        } else {
            let (best, m) =
                z.iter().enumerate().fold((0, f64::NEG_INFINITY), |a, (c, &v)| if v > a.1 { (c, v) } else { a });
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            ((z[y[i]] - lse).exp(), best)
        };
        bits -= p.max(o.floor).log2();
        n_right += usize::from(predicted == y[i]);
    }
    (bits, n_right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solvers::logistic::logistic_fit;
    use crate::solvers::standardize::{ScaleMode, fit_scaler, transform_in_place};

    fn data(n: usize, d: usize, n_classes: usize) -> (Array2<f32>, Vec<usize>) {
        let y: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % n_classes).collect();
        let x = Array2::from_shape_fn((n, d), |(i, j)| {
            let noise = ((i * 31 + j * 17) % 23) as f32 / 11.5 - 1.0;
            noise + if j % n_classes == y[i] { 0.8 } else { 0.0 } + 3.0 * (j as f32)
        });
        (x, y)
    }

    fn options(warm_start: bool) -> OnlineOptions {
        let logistic = LogisticOptions { c: 0.5, fit_intercept: true, max_iter: 5000, tol: 1e-10 };
        OnlineOptions { logistic, standardize: true, warm_start, floor: 1e-12 }
    }

    /// Each block by hand: the scaler and fit of the public functions, then `-log2 p` row by row.
    fn by_hand(x: &Array2<f32>, y: &[usize], k: usize, ends: &[usize], o: &OnlineOptions) -> Vec<(f64, usize)> {
        ends.windows(2)
            .map(|p| {
                let (t, stop) = (p[0], p[1]);
                let (mean, scale) = fit_scaler(x.slice(s![..t, ..]), 1, ScaleMode::PerNeuron).unwrap();
                let mut xs = x.slice(s![..stop, ..]).to_owned();
                transform_in_place(xs.view_mut(), &mean, &scale).unwrap();
                let fit = logistic_fit(xs.slice(s![..t, ..]), &y[..t], k, None, o.logistic, None).unwrap();
                let (mut bits, mut correct) = (0.0, 0);
                for i in t..stop {
                    let z: Vec<f64> = (0..fit.coef.nrows())
                        .map(|c| {
                            fit.intercept[c]
                                + xs.row(i).iter().zip(fit.coef.row(c)).map(|(&a, &b)| f64::from(a) * b).sum::<f64>()
                        })
                        .collect();
                    let probs: Vec<f64> = if z.len() == 1 {
                        let p1 = 1.0 / (1.0 + (-z[0]).exp());
                        vec![1.0 - p1, p1]
                    } else {
                        let e: Vec<f64> = z.iter().map(|v| v.exp()).collect();
                        let sum: f64 = e.iter().sum();
                        e.iter().map(|v| v / sum).collect()
                    };
                    bits -= probs[y[i]].max(1e-12).log2();
                    let best = (0..k).fold(0, |b, c| if probs[c] > probs[b] { c } else { b });
                    correct += usize::from(best == y[i]);
                }
                (bits, correct)
            })
            .collect()
    }

    #[test]
    fn blocks_equal_a_fit_per_block_by_hand_cold_or_warm() {
        for k in [2usize, 3] {
            let (x, y) = data(120, 5, k);
            let ends = [12, 30, 60, 120];
            let expected = by_hand(&x, &y, k, &ends, &options(false));
            for warm in [false, true] {
                let got = online_code(x.view(), &identity(120), &y, k, &ends, &options(warm), false).unwrap();
                assert_eq!(got.len(), 3);
                for (g, (bits, correct)) in got.iter().zip(&expected) {
                    assert!((g.bits - bits).abs() < 1e-6 * bits.max(1.0), "k={k} warm={warm}: {} vs {bits}", g.bits);
                    assert_eq!(g.correct, *correct);
                    assert!(g.converged);
                }
            }
        }
    }

    #[test]
    fn layers_in_parallel_equal_each_layer_alone() {
        let (x, y) = data(90, 4, 2);
        let x2 = x.mapv(|v| v * 0.5 + 1.0);
        let ends = [10, 40, 90];
        let o = options(true);
        let order = identity(90);
        let both = online_code_layers(&[x.view(), x2.view()], &order, &y, 2, &ends, &o, &|_| Ok(())).unwrap();
        assert_eq!(both[0], online_code(x.view(), &order, &y, 2, &ends, &o, true).unwrap());
        assert_eq!(both[1], online_code(x2.view(), &order, &y, 2, &ends, &o, true).unwrap());
    }

    #[test]
    fn bad_plans_are_errors() {
        let (x, y) = data(20, 3, 2);
        let o = options(true);
        let err = |ends: &[usize], y: &[usize]| {
            online_code(x.view(), &identity(20), y, 2, ends, &o, false).unwrap_err().to_string()
        };
        assert!(err(&[5, 5, 20], &y).contains("strictly increasing"));
        assert!(err(&[5, 19], &y).contains("to n = 20"));
        let ones = vec![1usize; 20];
        assert!(err(&[5, 20], &ones).contains("has no row of class 0"));
        assert!(err(&[5, 20], &y[..19]).contains("one label per row"));
        let mut twice = identity(20);
        twice[3] = 4;
        let e = online_code(x.view(), &twice, &y, 2, &[5, 20], &o, false).unwrap_err().to_string();
        assert!(e.contains("order[4] = 4 repeats a row"), "{e}");
    }

    #[test]
    fn an_order_codes_the_rows_it_picks() {
        let (x, y) = data(60, 3, 2);
        let order: Vec<usize> = (0..60).map(|i| (i * 7) % 60).collect();
        let shuffled = Array2::from_shape_fn((60, 3), |(i, j)| x[(order[i], j)]);
        let y_coded: Vec<usize> = order.iter().map(|&r| y[r]).collect();
        let o = options(true);
        let direct = online_code(shuffled.view(), &identity(60), &y_coded, 2, &[10, 30, 60], &o, false).unwrap();
        assert_eq!(online_code(x.view(), &order, &y_coded, 2, &[10, 30, 60], &o, false).unwrap(), direct);
    }

    fn identity(n: usize) -> Vec<usize> {
        (0..n).collect()
    }
}
