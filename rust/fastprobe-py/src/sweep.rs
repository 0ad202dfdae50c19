//! `sweep_layers`: the layer sweep of `fastprobe_core::sweep`, over arrays in memory or the store, with progress
//! reported on the calling thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use fastprobe_core::solvers::logistic::LogisticOptions;
use fastprobe_core::sweep::{self, Fit, LayerResult, Solver, SweepOptions, Targets};
use fastprobe_core::{Error, Pooling};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert;
use crate::errors::{IntoPyResult, to_pyerr};
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

/// How often the calling thread wakes to check for Ctrl-C while layers are being fitted.
const POLL: Duration = Duration::from_millis(100);

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
#[allow(clippy::too_many_arguments, clippy::too_many_lines)] // mirrors the Python signature
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
    let solver = match solver {
        "ridge" => Solver::Ridge { alphas: grid, fit_intercept, mode: mode.parse().map_err(|e| to_pyerr(py, e))? },
        "logistic" => Solver::Logistic { cs: grid, options: LogisticOptions { c: 1.0, fit_intercept, max_iter, tol } },
        "mass_mean" => Solver::MassMean { whiten, shrinkage },
        other => {
            return Err(to_pyerr(
                py,
                Error::UnknownOption {
                    kind: "solver",
                    given: other.to_owned(),
                    choices: vec!["ridge", "logistic", "mass_mean"],
                },
            ));
        }
    };
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
            let pooling: Pooling = convert::pooling(py, pooling)?;
            (Vec::new(), Some((&*s.inner, prompts.as_slice(), sites.as_slice(), pooling)))
        }
    };
    let n_layers = store.as_ref().map_or(arrays.len(), |(_, _, sites, _)| sites.len());
    let load = |l: usize| match &store {
        Some((s, prompts, sites, pooling)) => s.read_pooled(prompts, &sites[l..=l], *pooling),
        None => Ok(arrays[l].to_owned()),
    };

    let (tx, mut rx) = channel::<usize>();
    let cancel = AtomicBool::new(false);
    let mut py_err: Option<PyErr> = None;
    let outcome = std::thread::scope(|scope| {
        let (load, cancel) = (&load, &cancel);
        let worker = scope.spawn(move || {
            let done = move |l: usize| {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::InvalidInput("the sweep was interrupted".into()));
                }
                let _ = tx.send(l);
                Ok(())
            };
            sweep::sweep(n_layers, load, targets, w, &solver, options, &done)
        });
        loop {
            let receiver = &mut rx;
            let failure = match py.detach(move || receiver.recv_timeout(POLL)) {
                Ok(l) => match (&py_err, &progress) {
                    (None, Some(cb)) => cb.call1((l,)).err(),
                    _ => None,
                },
                Err(RecvTimeoutError::Timeout) if py_err.is_none() => py.check_signals().err(),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(e) = failure {
                py_err = Some(e);
                cancel.store(true, Ordering::Relaxed);
            }
        }
        py.detach(|| worker.join()).unwrap_or_else(|_| Err(Error::InvalidInput("a sweep worker panicked".into())))
    });
    if let Some(e) = py_err {
        return Err(e);
    }
    outcome.into_py_result(py)?.into_iter().map(|r| layer_tuple(py, r)).collect()
}

fn layer_tuple(py: Python<'_>, r: LayerResult) -> PyResult<Bound<'_, PyTuple>> {
    let scaler = r.scaler.map(|(m, s)| (m.into_pyarray(py), s.into_pyarray(py))).into_pyobject(py)?.into_any();
    let fit = match r.fit {
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
    };
    PyTuple::new(py, [scaler, fit])
}
