//! Linear probe solvers: ridge (with leave-one-out alpha selection), L2 logistic regression (L-BFGS), mass-mean
//! probes, group-lasso logistic regression, feature standardization, and the online code of MDL probing
//! ([`online`]).
//!
//! [`Solver`] names one of the probes a caller can fit by name (ridge, logistic, mass-mean) with its options,
//! [`Targets`] what it is fitted to, and [`fit`] fits it, returning a [`Fit`]; the layer sweep
//! ([`crate::sweep`]) fits one per layer through it.
//!
//! Conventions shared by every solver:
//! - the design matrix `x` is `(n_samples, n_features)` float32, any layout; it is validated (finite values, shapes)
//!   before any work, and never modified;
//! - sums and products that feed a solution accumulate in float64 (the dual ridge kernel is built from float32
//!   products over blocks of [`linalg::GRAM_BLOCK`] features, summed in float64; the primal ridge Gram and
//!   covariances use float64 products); results are float64;
//! - sample weights are non-negative and finite with a positive sum; `None` means all ones;
//! - `par` is the parallelism of the dense linear algebra (use [`faer::Par::Seq`] when the caller already runs
//!   several fits in parallel).

pub mod group_lasso;
pub mod linalg;
pub mod logistic;
pub mod mass_mean;
pub mod online;
pub mod ridge;
pub mod standardize;

use faer::Par;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::error::{Error, Result};
use logistic::{LogisticFit, LogisticOptions, logistic_path};
use mass_mean::{MassMeanFit, mass_mean_fit};
use ridge::{RidgeMode, RidgePath, ridge_path};

/// A probe to fit, with its options.
#[derive(Debug, Clone)]
pub enum Solver {
    /// [`ridge_path`] over `alphas`.
    Ridge {
        /// Regularization strengths.
        alphas: Vec<f64>,
        /// Fit an unpenalized intercept.
        fit_intercept: bool,
        /// Primal or dual form.
        mode: RidgeMode,
    },
    /// [`logistic_path`] over `cs` (warm-started in order).
    Logistic {
        /// Inverse regularization strengths.
        cs: Vec<f64>,
        /// Intercept, iterations and tolerance (`c` is ignored: `cs` gives it).
        options: LogisticOptions,
    },
    /// [`mass_mean_fit`].
    MassMean {
        /// Whiten by the within-class covariance.
        whiten: bool,
        /// Covariance shrinkage in `[0, 1]`.
        shrinkage: f64,
    },
}

/// What a probe is fitted to.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// Regression targets `(n_samples, n_targets)`, for ridge.
    Values(ArrayView2<'a, f64>),
    /// Class indices in `0..n_classes`, for logistic regression and mass-mean.
    Classes {
        /// One per sample.
        labels: &'a [usize],
        /// The number of classes.
        n_classes: usize,
    },
}

/// A fitted [`Solver`].
#[derive(Debug, Clone)]
pub enum Fit {
    /// Every alpha's coefficients and leave-one-out errors.
    Ridge(RidgePath),
    /// One fit per C.
    Logistic(Vec<LogisticFit>),
    /// The direction, threshold and Platt slope.
    MassMean(MassMeanFit),
}

impl Solver {
    /// Checks that `targets` suit this solver: numeric targets for ridge, class indices for the classifiers.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when they do not.
    pub fn check_targets(&self, targets: Targets<'_>) -> Result<()> {
        match (self, targets) {
            (Self::Ridge { .. }, Targets::Values(_))
            | (Self::Logistic { .. } | Self::MassMean { .. }, Targets::Classes { .. }) => Ok(()),
            (Self::Ridge { .. }, Targets::Classes { .. }) => {
                Err(Error::InvalidInput("ridge sweeps need numeric targets, not class indices".into()))
            }
            (_, Targets::Values(_)) => {
                Err(Error::InvalidInput("classifier sweeps need class indices, not numeric targets".into()))
            }
        }
    }
}

/// Fits `solver` on `x`.
///
/// # Errors
/// As [`Solver::check_targets`], then the solver's own errors (see [`ridge_path`], [`logistic_path`],
/// [`mass_mean_fit`]).
pub fn fit(
    x: ArrayView2<'_, f32>,
    targets: Targets<'_>,
    sample_weight: Option<ArrayView1<'_, f64>>,
    solver: &Solver,
    par: Par,
) -> Result<Fit> {
    solver.check_targets(targets)?;
    Ok(match (solver, targets) {
        (Solver::Ridge { alphas, fit_intercept, mode }, Targets::Values(y)) => {
            Fit::Ridge(ridge_path(x, y, sample_weight, alphas, *fit_intercept, *mode, par)?)
        }
        (Solver::Logistic { cs, options }, Targets::Classes { labels, n_classes }) => {
            Fit::Logistic(logistic_path(x, labels, n_classes, sample_weight, cs, *options)?)
        }
        (Solver::MassMean { whiten, shrinkage }, Targets::Classes { labels, .. }) => {
            Fit::MassMean(mass_mean_fit(x, labels, sample_weight, *whiten, *shrinkage, par)?)
        }
        _ => unreachable!("checked by check_targets"),
    })
}

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
