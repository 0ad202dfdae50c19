//! `online_code_logistic`: MDL probing's online code (`fastprobe_core::solvers::online`) for every layer, with
//! progress reported on the calling thread.

use fastprobe_core::solvers::logistic::LogisticOptions;
use fastprobe_core::solvers::online::{self, OnlineOptions};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::convert;
use crate::detach::{Call, run_detached};

/// One layer's blocks after the first: `(bits, correct, n_iter, converged)`, one entry per block.
type LayerOut<'py> =
    (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<bool>>);

/// Code blocks `1..` of the class indices `y` (in coding order) given each layer's rows taken in the order `order`
/// (a permutation of the rows), each block by an L2 logistic-regression probe fitted on the rows before it; layers
/// in parallel.
///
/// `progress(layer)` is called on the calling thread after each layer; an exception it raises (or Ctrl-C) stops
/// the work after the layers in flight and is re-raised.
#[pyfunction]
#[pyo3(signature = (
    layers, order, y, n_classes, ends, *, c=1.0, fit_intercept=true, max_iter=100, tol=1e-4, standardize=true,
    warm_start=true, floor=1e-12, n_threads=None, progress=None
))]
#[allow(clippy::too_many_arguments)] // mirrors the Python signature
pub fn online_code_logistic<'py>(
    py: Python<'py>,
    layers: Vec<PyReadonlyArray2<'py, f32>>,
    order: PyReadonlyArray1<'py, i64>,
    y: PyReadonlyArray1<'py, i64>,
    n_classes: usize,
    ends: Vec<usize>,
    c: f64,
    fit_intercept: bool,
    max_iter: usize,
    tol: f64,
    standardize: bool,
    warm_start: bool,
    floor: f64,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Vec<LayerOut<'py>>> {
    let labels = convert::indices(py, "class indices", &y)?;
    let order = convert::indices(py, "order", &order)?;
    let views: Vec<_> = layers.iter().map(PyReadonlyArray2::as_array).collect();
    let options =
        OnlineOptions { logistic: LogisticOptions { c, fit_intercept, max_iter, tol }, standardize, warm_start, floor };
    let results = run_detached(py, Call::heavy(n_threads).polled(progress.as_ref()), move |p| {
        online::online_code_layers(&views, &order, &labels, n_classes, &ends, &options, &|l| p.done(l))
    })?;
    Ok(results
        .into_iter()
        .map(|blocks| {
            let bits: Vec<f64> = blocks.iter().map(|b| b.bits).collect();
            let correct: Vec<u64> = blocks.iter().map(|b| b.correct as u64).collect();
            let n_iter: Vec<u64> = blocks.iter().map(|b| b.n_iter as u64).collect();
            let converged: Vec<bool> = blocks.iter().map(|b| b.converged).collect();
            (bits.into_pyarray(py), correct.into_pyarray(py), n_iter.into_pyarray(py), converged.into_pyarray(py))
        })
        .collect())
}
