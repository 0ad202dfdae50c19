//! `#[pyfunction]` wrappers of `fastprobe_core::solvers`: arrays in, coefficient arrays out, GIL released.

use faer::Par;
use fastprobe_core::solvers::{group_lasso, logistic, mass_mean, ridge, standardize};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;

use crate::convert;
use crate::detach::run_detached;
use crate::errors::to_pyerr;

/// Solvers always go through the thread pool: even small fits are worth releasing the interpreter for.
const ALWAYS: usize = usize::MAX;

/// Ridge coefficients of every alpha: `(coef (n_alphas, n_targets, d), intercept (n_alphas, n_targets),
/// loo_mse (n_alphas, n_targets), dual)`.
type RidgeOut<'py> = (Bound<'py, PyArray3<f64>>, Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>, bool);

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
) -> PyResult<RidgeOut<'py>> {
    let mode: ridge::RidgeMode = mode.parse().map_err(|e| to_pyerr(py, e))?;
    let (x, y) = (x.as_array(), y.as_array());
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    let path = run_detached(py, ALWAYS, ALWAYS, n_threads, move || {
        ridge::ridge_path(x, y, w, &alphas, fit_intercept, mode, Par::rayon(0))
    })?;
    Ok((path.coef.into_pyarray(py), path.intercept.into_pyarray(py), path.loo_mse.into_pyarray(py), path.dual))
}

/// One logistic fit: `(coef, intercept, n_iter, converged)`.
type LogisticOut<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>, usize, bool);

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
) -> PyResult<Vec<LogisticOut<'py>>> {
    let labels = convert::indices(py, "class indices", &y)?;
    let x = x.as_array();
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    let options = logistic::LogisticOptions { c: 1.0, fit_intercept, max_iter, tol };
    let fits = run_detached(py, ALWAYS, ALWAYS, n_threads, move || {
        logistic::logistic_path(x, &labels, n_classes, w, &cs, options)
    })?;
    Ok(fits
        .into_iter()
        .map(|f| (f.coef.into_pyarray(py), f.intercept.into_pyarray(py), f.n_iter, f.converged))
        .collect())
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
    let fit = run_detached(py, ALWAYS, ALWAYS, n_threads, move || {
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
) -> PyResult<(Bound<'py, PyArray1<f64>>, f64, f64)> {
    let labels = convert::indices(py, "class indices", &y)?;
    let x = x.as_array();
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    let fit = run_detached(py, ALWAYS, ALWAYS, n_threads, move || {
        mass_mean::mass_mean_fit(x, &labels, w, whiten, shrinkage, Par::rayon(0))
    })?;
    Ok((fit.direction.into_pyarray(py), fit.threshold, fit.platt_a))
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
    let mode: standardize::ScaleMode = mode.parse().map_err(|e| to_pyerr(py, e))?;
    let x = x.as_array();
    let (mean, scale) =
        run_detached(py, ALWAYS, ALWAYS, n_threads, move || standardize::fit_scaler(x, n_layers, mode))?;
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
    run_detached(py, ALWAYS, ALWAYS, n_threads, move || standardize::transform_in_place(x, &mean, &scale))
}
