//! `sweep_layers`: the layer sweep of `fastprobe_core::sweep`, over arrays in memory or the store, with progress
//! reported on the calling thread.

use fastprobe_core::Pooling;
use fastprobe_core::solvers::Targets;
use fastprobe_core::sweep::{self, LayerResult, SweepOptions};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert;
use crate::detach::{Call, run_detached};
use crate::solvers::{SolverArgs, fit_to_py, parse_solver};
use crate::store::PyStore;

/// Where the layers come from.
#[derive(FromPyObject)]
pub enum Source<'py> {
    /// One `(n_samples, hidden)` float32 array per layer.
    Arrays(Vec<PyReadonlyArray2<'py, f32>>),
    /// `(store, prompts, sites, pooling)`: layer `l` is `store.read_pooled(prompts, [sites[l]], pooling)`.
    Store((PyRef<'py, PyStore>, Vec<String>, Vec<u32>, String)),
}

/// Numeric targets (ridge) or class indices (classifiers).
#[derive(FromPyObject)]
pub enum PyTargets<'py> {
    /// `(n_samples, n_targets)` float64.
    Values(PyReadonlyArray2<'py, f64>),
    /// `(n_samples,)` int64 class indices.
    Classes(PyReadonlyArray1<'py, i64>),
}

/// Fit one probe per layer; returns, per layer, `(scaler, fit)` with `scaler` `(mean, scale)` or None and `fit`
/// shaped as the single-layer function's result (`ridge_path`, `logistic_path`, `mass_mean_fit`).
///
/// `progress(layer)` is called on the calling thread after each layer; an exception it raises (or Ctrl-C) stops
/// the sweep after the layers in flight and is re-raised.
#[pyfunction]
#[pyo3(signature = (
    source, targets, n_classes, sample_weight, solver, grid, *, fit_intercept=true, mode="auto", max_iter=100,
    tol=1e-4, whiten=false, shrinkage=0.0, standardize=true, n_threads=None, workers=None, progress=None
))]
#[allow(clippy::too_many_arguments)] // mirrors the Python signature
pub fn sweep_layers<'py>(
    py: Python<'py>,
    source: Source<'py>,
    targets: PyTargets<'py>,
    n_classes: usize,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    solver: &str,
    grid: Vec<f64>,
    fit_intercept: bool,
    mode: &str,
    max_iter: usize,
    tol: f64,
    whiten: bool,
    shrinkage: f64,
    standardize: bool,
    n_threads: Option<usize>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let solver = parse_solver(py, solver, grid, &SolverArgs { fit_intercept, mode, max_iter, tol, whiten, shrinkage })?;
    let labels = match &targets {
        PyTargets::Classes(c) => convert::indices(py, "class indices", c)?,
        PyTargets::Values(_) => Vec::new(),
    };
    let targets = match &targets {
        PyTargets::Values(v) => Targets::Values(v.as_array()),
        PyTargets::Classes(_) => Targets::Classes { labels: &labels, n_classes },
    };
    let w = sample_weight.as_ref().map(PyReadonlyArray1::as_array);
    let options = SweepOptions { standardize, n_threads, workers };
    // The loader: views of the caller's arrays, or reads of one site each from the store.
    let (arrays, store) = match &source {
        Source::Arrays(a) => (a.iter().map(PyReadonlyArray2::as_array).collect::<Vec<_>>(), None),
        Source::Store((s, prompts, sites, pooling)) => {
            let pooling: Pooling = convert::option(py, pooling)?;
            (Vec::new(), Some((&*s.inner, prompts.as_slice(), sites.as_slice(), pooling)))
        }
    };
    let n_layers = store.as_ref().map_or(arrays.len(), |(_, _, sites, _)| sites.len());
    let load = |l: usize| match &store {
        Some((s, prompts, sites, pooling)) => s.read_pooled(prompts, &sites[l..=l], *pooling),
        None => Ok(arrays[l].to_owned()),
    };

    // The sweep starts its own worker threads; each reports its layers done, which `progress` hears of here.
    let layers = run_detached(py, Call::own_threads().polled(progress.as_ref()), move |p| {
        sweep::sweep(n_layers, &load, targets, w, &solver, options, &|l| p.done(l))
    })?;
    layers.into_iter().map(|r| layer_tuple(py, r)).collect()
}

fn layer_tuple(py: Python<'_>, r: LayerResult) -> PyResult<Bound<'_, PyTuple>> {
    let scaler = r.scaler.map(|(m, s)| (m.into_pyarray(py), s.into_pyarray(py))).into_pyobject(py)?.into_any();
    let fit = fit_to_py(py, r.fit)?;
    PyTuple::new(py, [scaler, fit])
}
