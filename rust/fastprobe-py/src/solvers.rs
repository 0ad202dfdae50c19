//! `#[pyfunction]` wrappers of `fastprobe_core::solvers`: arrays in, coefficient arrays out, GIL released.
//!
//! The probes a caller can name (ridge, logistic, mass-mean) are built in one place ([`parse_solver`]), fitted through
//! the core's one dispatch (`fastprobe_core::solvers::fit`) and converted back in one place ([`fit_to_py`]), for
//! single fits here and for the layer sweep (`sweep.rs`) alike.

use faer::Par;
use fastprobe_core::Error;
use fastprobe_core::solvers::logistic::LogisticOptions;
use fastprobe_core::solvers::{self, Fit, Solver, Targets, group_lasso, standardize};
use ndarray::{ArrayView1, ArrayView2};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;

use crate::convert;
use crate::detach::{Call, run_detached};
use crate::errors::to_pyerr;

/// The solver names [`parse_solver`] takes.
const SOLVERS: [&str; 3] = ["ridge", "logistic", "mass_mean"];

/// The options of the named solvers, as Python passes them (each solver reads its own).
#[derive(Debug, Clone, Copy)]
pub struct SolverArgs<'a> {
    /// Ridge and logistic: fit an intercept.
    pub fit_intercept: bool,
    /// Ridge: `auto`, `primal` or `dual`.
    pub mode: &'a str,
    /// Logistic: the iteration limit.
    pub max_iter: usize,
    /// Logistic: the gradient tolerance.
    pub tol: f64,
    /// Mass-mean: whiten by the within-class covariance.
    pub whiten: bool,
    /// Mass-mean: covariance shrinkage.
    pub shrinkage: f64,
}

impl SolverArgs<'_> {
    /// The Python signatures' defaults.
    pub const DEFAULT: SolverArgs<'static> =
        SolverArgs { fit_intercept: true, mode: "auto", max_iter: 100, tol: 1e-4, whiten: false, shrinkage: 0.0 };
}

/// The one place a solver name becomes a [`Solver`]: `ridge` over alphas `grid`, `logistic` over Cs `grid`
/// (warm-started in order), `mass_mean` (no grid).
pub fn parse_solver(py: Python<'_>, name: &str, grid: Vec<f64>, args: &SolverArgs<'_>) -> PyResult<Solver> {
    Ok(match name {
        "ridge" => {
            Solver::Ridge { alphas: grid, fit_intercept: args.fit_intercept, mode: convert::option(py, args.mode)? }
        }
        "logistic" => Solver::Logistic {
            cs: grid,
            options: LogisticOptions {
                c: 1.0,
                fit_intercept: args.fit_intercept,
                max_iter: args.max_iter,
                tol: args.tol,
            },
        },
        "mass_mean" => Solver::MassMean { whiten: args.whiten, shrinkage: args.shrinkage },
        other => {
            return Err(to_pyerr(
                py,
                Error::UnknownOption { kind: "solver", given: other.to_owned(), choices: SOLVERS.to_vec() },
            ));
        }
    })
}

/// The one place a [`Fit`] becomes Python values: ridge `(coef (n_alphas, n_targets, d), intercept (n_alphas,
/// n_targets), loo_mse (n_alphas, n_targets), dual)`; logistic a list, one `(coef, intercept, n_iter, converged)`
/// per C; mass-mean `(direction, threshold, platt_slope)`.
pub fn fit_to_py(py: Python<'_>, fit: Fit) -> PyResult<Bound<'_, PyAny>> {
    Ok(match fit {
        Fit::Ridge(p) => (p.coef.into_pyarray(py), p.intercept.into_pyarray(py), p.loo_mse.into_pyarray(py), p.dual)
            .into_pyobject(py)?
            .into_any(),
        Fit::Logistic(fits) => fits
            .into_iter()
            .map(|f| (f.coef.into_pyarray(py), f.intercept.into_pyarray(py), f.n_iter, f.converged))
            .collect::<Vec<_>>()
            .into_pyobject(py)?
            .into_any(),
        Fit::MassMean(m) => (m.direction.into_pyarray(py), m.threshold, m.platt_a).into_pyobject(py)?.into_any(),
    })
}

/// Fits `solver` once, detached on the pool, and converts the fit.
fn fit_once<'py>(
    py: Python<'py>,
    x: ArrayView2<'_, f32>,
    targets: Targets<'_>,
    sample_weight: Option<ArrayView1<'_, f64>>,
    solver: &Solver,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let fit = run_detached(py, Call::heavy(n_threads), move |_| {
        solvers::fit(x, targets, sample_weight, solver, Par::rayon(0))
    })?;
    fit_to_py(py, fit)
}

/// Fit ridge regression for every alpha, with exact leave-one-out mean squared errors.
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, alphas, fit_intercept=true, mode="auto", n_threads=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python signature
pub fn ridge_path<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray2<'py, f64>,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    alphas: Vec<f64>,
    fit_intercept: bool,
    mode: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let solver = parse_solver(py, "ridge", alphas, &SolverArgs { fit_intercept, mode, ..SolverArgs::DEFAULT })?;
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    fit_once(py, x.as_array(), Targets::Values(y.as_array()), w, &solver, n_threads)
}

/// Fit L2 logistic regression for each C in `cs` (in order, warm-starting each from the previous).
#[pyfunction]
#[pyo3(signature = (x, y, n_classes, sample_weight, cs, fit_intercept=true, max_iter=100, tol=1e-4, n_threads=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python signature
pub fn logistic_path<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    cs: Vec<f64>,
    fit_intercept: bool,
    max_iter: usize,
    tol: f64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let labels = convert::indices(py, "class indices", &y)?;
    let solver = parse_solver(py, "logistic", cs, &SolverArgs { fit_intercept, max_iter, tol, ..SolverArgs::DEFAULT })?;
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    fit_once(py, x.as_array(), Targets::Classes { labels: &labels, n_classes }, w, &solver, n_threads)
}

/// A group-lasso fit: `(coef, intercept, group_norms, n_iter, converged, objective)`.
type GroupLassoOut<'py> = (Bound<'py, PyArray1<f64>>, f64, Bound<'py, PyArray1<f64>>, usize, bool, f64);

/// Fit group-lasso logistic regression on labels 0/1; group g is features `groups[g]..groups[g + 1]`.
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, groups, alpha, group_weights=None, fit_intercept=true, max_iter=1000, tol=1e-4, n_threads=None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python signature
pub fn group_lasso_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray1<'py, i64>,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    groups: Vec<usize>,
    alpha: f64,
    group_weights: Option<Vec<f64>>,
    fit_intercept: bool,
    max_iter: usize,
    tol: f64,
    n_threads: Option<usize>,
) -> PyResult<GroupLassoOut<'py>> {
    let labels = convert::indices(py, "class indices", &y)?;
    let x = x.as_array();
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    let options = group_lasso::GroupLassoOptions { alpha, fit_intercept, max_iter, tol };
    let fit = run_detached(py, Call::heavy(n_threads), move |_| {
        group_lasso::group_lasso_logistic(x, &labels, w, &groups, group_weights.as_deref(), options)
    })?;
    Ok((
        fit.coef.into_pyarray(py),
        fit.intercept,
        fit.group_norms.into_pyarray(py),
        fit.n_iter,
        fit.converged,
        fit.objective,
    ))
}

/// Fit a mass-mean probe on labels 0/1: `(direction, threshold, platt_slope)`.
#[pyfunction]
#[pyo3(signature = (x, y, sample_weight, whiten=false, shrinkage=0.0, n_threads=None))]
pub fn mass_mean_fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    y: PyReadonlyArray1<'py, i64>,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    whiten: bool,
    shrinkage: f64,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let labels = convert::indices(py, "class indices", &y)?;
    let solver = parse_solver(py, "mass_mean", Vec::new(), &SolverArgs { whiten, shrinkage, ..SolverArgs::DEFAULT })?;
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    // Mass-mean probes are binary; the class count is not read.
    fit_once(py, x.as_array(), Targets::Classes { labels: &labels, n_classes: 2 }, w, &solver, n_threads)
}

/// Two float64 vectors.
type Pair<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// Per-feature `(mean, scale)` of `x` (`(n, n_layers * hidden)`), per neuron or per layer block.
#[pyfunction]
#[pyo3(signature = (x, n_layers, mode, n_threads=None))]
pub fn fit_scaler<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    n_layers: usize,
    mode: &str,
    n_threads: Option<usize>,
) -> PyResult<Pair<'py>> {
    let mode: standardize::ScaleMode = convert::option(py, mode)?;
    let x = x.as_array();
    let (mean, scale) = run_detached(py, Call::heavy(n_threads), move |_| standardize::fit_scaler(x, n_layers, mode))?;
    Ok((mean.into_pyarray(py), scale.into_pyarray(py)))
}

/// `x = (x - mean) / scale` in place (`x` float32, C-contiguous, writeable).
#[pyfunction]
#[pyo3(signature = (x, mean, scale, n_threads=None))]
pub fn scale_in_place(
    py: Python<'_>,
    mut x: PyReadwriteArray2<'_, f32>,
    mean: PyReadonlyArray1<'_, f64>,
    scale: PyReadonlyArray1<'_, f64>,
    n_threads: Option<usize>,
) -> PyResult<()> {
    let (mean, scale) = (mean.as_array().to_owned(), scale.as_array().to_owned());
    let x = x.as_array_mut();
    run_detached(py, Call::heavy(n_threads), move |_| standardize::transform_in_place(x, &mean, &scale))
}
