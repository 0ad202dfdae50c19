//! `#[pyfunction]` wrappers of `fastprobe_core::pooling`.

use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;

use fastprobe_core::pooling;

use crate::convert;
use crate::detach::{Call, run_detached};

const F32_BYTES: usize = std::mem::size_of::<f32>();
const PARALLEL_MIN_BYTES: usize = pooling::PARALLEL_MIN_VALUES * F32_BYTES;

/// Pool a padded batch `hidden` (B, S, H) float32 under `attention_mask` (B, S) bool into (B, H) float32.
///
/// Only positions whose mask is true take part, whichever side the padding is on. `method` is one of
/// `last_token`, `first_token`, `mean`, `max`, `min`. Runs in parallel with the GIL released.
#[pyfunction]
#[pyo3(signature = (hidden, attention_mask, method, n_threads=None))]
pub fn pool_padded<'py>(
    py: Python<'py>,
    hidden: PyReadonlyArray3<'py, f32>,
    attention_mask: PyReadonlyArray2<'py, bool>,
    method: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let method = convert::option(py, method)?;
    convert::require_contiguous(py, "hidden", &hidden)?;
    let (h, m) = (hidden.as_array(), attention_mask.as_array());
    let (b, _, width) = h.dim();
    let work = pooling::work_values(method, h.len(), b, width) * F32_BYTES;
    let out = run_detached(py, Call::sized(work, PARALLEL_MIN_BYTES, n_threads), move |_| {
        pooling::pool_padded(h, m, method)
    })?;
    Ok(out.into_pyarray(py))
}

/// Pool ragged token blocks: `values` (`N_tokens`, H) float32 holds every prompt's real tokens stacked, and prompt
/// `i` owns rows `offsets[i]:offsets[i + 1]` (`offsets`: int64, B + 1 entries). Returns (B, H) float32.
#[pyfunction]
#[pyo3(signature = (values, offsets, method, n_threads=None))]
pub fn pool_ragged<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f32>,
    offsets: PyReadonlyArray1<'py, i64>,
    method: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let method = convert::option(py, method)?;
    convert::require_contiguous(py, "values", &values)?;
    let offsets = convert::offsets(py, &offsets)?;
    let v = values.as_array();
    let work = pooling::work_values(method, v.len(), offsets.len().saturating_sub(1), v.ncols()) * F32_BYTES;
    let out = run_detached(py, Call::sized(work, PARALLEL_MIN_BYTES, n_threads), move |_| {
        pooling::pool_ragged(v, &offsets, method)
    })?;
    Ok(out.into_pyarray(py))
}

/// Reduce per-token scores `scores` (`N_tokens`, K) float64 to one row per prompt over ragged `offsets` (int64,
/// B + 1 entries) with `method` (`last_token`, `first_token`, `mean`, `max`, `min`). Returns (B, K) float64.
#[pyfunction]
#[pyo3(signature = (scores, offsets, method, n_threads=None))]
pub fn reduce_scores<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f64>,
    offsets: PyReadonlyArray1<'py, i64>,
    method: &str,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let method = convert::option(py, method)?;
    let offsets = convert::offsets(py, &offsets)?;
    let s = scores.as_array();
    let work = s.len() * std::mem::size_of::<f64>();
    let out = run_detached(py, Call::sized(work, PARALLEL_MIN_BYTES * 2, n_threads), move |_| {
        pooling::reduce_scores(s, &offsets, method)
    })?;
    Ok(out.into_pyarray(py))
}
