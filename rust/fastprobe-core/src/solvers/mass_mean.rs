//! Mass-mean probes: the direction from one class mean to the other, optionally whitened by the within-class
//! covariance, with Platt scaling for probabilities.
//!
//! For labels 0/1 with weighted class means `m0`, `m1`:
//! - plain: `theta = m1 - m0`;
//! - whitened (the "iid" variant, what linear discriminant analysis computes): `theta = S^-1 (m1 - m0)` with `S`
//!   the weighted within-class covariance, shrunk towards `(trace(S) / d) I` by `shrinkage` in `[0, 1]`.
//!
//! The direction is `theta / |theta|` and the threshold the projection of the midpoint `(m0 + m1) / 2`, so the
//! decision value of `x` is `x . direction - threshold` (positive: class 1). Probabilities are
//! `sigmoid(a * decision)` with the slope `a` fitted on the training decisions by Platt's method (targets
//! `(N1 + 1) / (N1 + 2)` and `1 / (N0 + 2)` against over-confidence; no offset, so that probability 1/2 stays at
//! the threshold).

use faer::Par;
use faer::linalg::solvers::Solve;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::linalg::{as_faer, gram_rows_f64};
use super::{check_design, sample_weights};
use crate::error::{Error, Result};

/// A fitted mass-mean probe.
#[derive(Debug, Clone)]
pub struct MassMeanFit {
    /// Unit direction, `(d,)`.
    pub direction: Array1<f64>,
    /// Decision threshold along the direction.
    pub threshold: f64,
    /// Platt slope: the probability of class 1 is `sigmoid(platt_a * decision)`.
    pub platt_a: f64,
}

/// Fits a mass-mean probe on labels 0/1.
///
/// # Errors
/// [`Error::InvalidInput`] when a class is missing, the class means coincide, `shrinkage` is outside `[0, 1]`, or
/// the within-class covariance is singular without shrinkage; [`Error::Shape`] for mismatched lengths.
pub fn mass_mean_fit(
    x: ArrayView2<'_, f32>,
    y: &[usize],
    sample_weight: Option<ArrayView1<'_, f64>>,
    whiten: bool,
    shrinkage: f64,
    par: Par,
) -> Result<MassMeanFit> {
    let (n, d) = check_design(x, 2)?;
    let w = sample_weights(sample_weight, n)?;
    if y.len() != n {
        return Err(Error::shape("y", format!("({n},) (one label per sample of X)"), format!("({},)", y.len())));
    }
    if let Some(c) = y.iter().find(|&&c| c > 1) {
        return Err(Error::InvalidInput(format!("mass-mean probes are binary: label {c} is not 0 or 1")));
    }
    if !(0.0..=1.0).contains(&shrinkage) {
        return Err(Error::InvalidInput(format!("shrinkage must be in [0, 1]; got {shrinkage}")));
    }
    let mut means = Array2::<f64>::zeros((2, d));
    let mut totals = [0.0f64; 2];
    for ((row, &c), &wi) in x.rows().into_iter().zip(y).zip(&w) {
        totals[c] += wi;
        for (m, &v) in means.row_mut(c).iter_mut().zip(row) {
            *m += wi * f64::from(v);
        }
    }
    if let Some(c) = totals.iter().position(|&t| t <= 0.0) {
        return Err(Error::InvalidInput(format!(
            "class {c} has no sample (with positive weight); both classes are needed"
        )));
    }
    for (c, &t) in totals.iter().enumerate() {
        means.row_mut(c).mapv_inplace(|m| m / t);
    }
    let diff = &means.row(1) - &means.row(0);
    let mut theta = diff.clone();
    if whiten {
        // Rows sqrt(w_i / S) (x_i - m_{y_i}); their Gram is the within-class covariance.
        let scale_total = w.sum();
        let centred = Array2::from_shape_fn((n, d), |(i, j)| {
            ((w[i] / scale_total).sqrt() * (f64::from(x[(i, j)]) - means[(y[i], j)])) as f32
        });
        let mut cov = gram_rows_f64(as_faer(&centred).transpose(), par);
        let mu = (0..d).map(|j| cov[(j, j)]).sum::<f64>() / d as f64;
        for j in 0..d {
            for i in 0..d {
                cov[(i, j)] *= 1.0 - shrinkage;
            }
            cov[(j, j)] += shrinkage * mu;
        }
        let llt = cov.llt(faer::Side::Lower).map_err(|_| {
            Error::InvalidInput(format!(
                "the within-class covariance ({d} x {d}, from {n} samples) is singular; set shrinkage > 0"
            ))
        })?;
        let rhs = faer::Mat::<f64>::from_fn(d, 1, |i, _| diff[i]);
        let sol = llt.solve(&rhs);
        theta = Array1::from_shape_fn(d, |i| sol[(i, 0)]);
    }
    let norm = theta.dot(&theta).sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return Err(Error::InvalidInput("the two class means are identical; there is no direction to find".into()));
    }
    let direction = theta / norm;
    let threshold = direction.dot(&((&means.row(0) + &means.row(1)) * 0.5));
    let decision: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|row| row.iter().zip(&direction).map(|(&v, &u)| f64::from(v) * u).sum::<f64>() - threshold)
        .collect();
    let platt_a = platt(&decision, y, &w);
    Ok(MassMeanFit { direction, threshold, platt_a })
}

/// Platt scaling with the offset held at 0: the slope `a` minimizing the weighted log-loss of `sigmoid(a f)`
/// against Platt's targets, by Newton's method with backtracking. Holding the offset at 0 keeps probability 1/2
/// exactly at the decision threshold, so probabilities and decisions never disagree.
#[must_use]
pub fn platt(f: &[f64], y: &[usize], w: &Array1<f64>) -> f64 {
    let n1: f64 = y.iter().zip(w).filter(|(c, _)| **c == 1).map(|(_, w)| w).sum();
    let n0: f64 = w.sum() - n1;
    let (t1, t0) = ((n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0));
    let target = |c: usize| if c == 1 { t1 } else { t0 };
    // -t log s(z) - (1 - t) log(1 - s(z)) = log(1 + e^z) - t z
    let loss = |a: f64| -> f64 {
        f.iter()
            .zip(y)
            .zip(w)
            .map(|((&fi, &c), &wi)| {
                let z = a * fi;
                wi * (z.max(0.0) + (-z.abs()).exp().ln_1p() - target(c) * z)
            })
            .sum()
    };
    let mut a = 1.0;
    let mut current = loss(a);
    for _ in 0..100 {
        let (mut g, mut h) = (0.0, 1e-12);
        for ((&fi, &c), &wi) in f.iter().zip(y).zip(w) {
            let p = 1.0 / (1.0 + (-(a * fi)).exp());
            g += wi * (p - target(c)) * fi;
            h += wi * p * (1.0 - p) * fi * fi;
        }
        if g.abs() < 1e-12 * w.sum() {
            break;
        }
        let mut step = 1.0;
        let mut improved = false;
        while step > 1e-12 {
            let next = a - step * g / h;
            let l = loss(next);
            if l < current {
                (a, current) = (next, l);
                improved = true;
                break;
            }
            step *= 0.5;
        }
        if !improved {
            break;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_shifted_classes_and_calibrates() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let x = Array2::from_shape_fn((400, 4), |(i, j)| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0;
            noise + if i % 2 == 1 && j == 2 { 1.5 } else { 0.0 }
        });
        let y: Vec<usize> = (0..400).map(|i| i % 2).collect();
        for whiten in [false, true] {
            let fit = mass_mean_fit(x.view(), &y, None, whiten, 0.0, Par::Seq).unwrap();
            assert!((fit.direction.dot(&fit.direction) - 1.0).abs() < 1e-12);
            assert!(fit.direction[2] > 0.9, "{:?}", fit.direction);
            assert!(fit.platt_a > 0.0);
        }
    }

    #[test]
    fn singular_covariance_needs_shrinkage() {
        let x = Array2::from_shape_fn((4, 6), |(i, j)| (i * j) as f32 + if i % 2 == 1 { 1.0 } else { 0.0 });
        let y = [0, 1, 0, 1];
        let err = mass_mean_fit(x.view(), &y, None, true, 0.0, Par::Seq).unwrap_err();
        assert!(err.to_string().contains("set shrinkage > 0"), "{err}");
        assert!(mass_mean_fit(x.view(), &y, None, true, 0.1, Par::Seq).is_ok());
    }
}
