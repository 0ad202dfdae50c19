//! Python values to core types: option strings to enums, index arrays to `usize`, contiguity checks.

use std::str::FromStr;

use fastprobe_core::Error;
use numpy::{Element, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// Parses an option name (a pooling, a storage dtype, a ridge or scaling mode), with the core's error, which lists
/// the valid names.
pub fn option<T: FromStr<Err = Error>>(py: Python<'_>, name: &str) -> PyResult<T> {
    name.parse().map_err(|e| to_pyerr(py, e))
}

/// Requires a C-contiguous array: copies belong in Python, where they are visible.
pub fn require_contiguous<T: Element, D: ndarray::Dimension>(
    py: Python<'_>,
    what: &str,
    array: &numpy::PyReadonlyArray<'_, T, D>,
) -> PyResult<()> {
    if array.is_c_contiguous() {
        Ok(())
    } else {
        Err(to_pyerr(
            py,
            Error::InvalidInput(format!("{what} must be C-contiguous; pass numpy.ascontiguousarray({what})")),
        ))
    }
}

/// Converts an int64 offsets array into `usize`, rejecting negative entries.
pub fn offsets(py: Python<'_>, offsets: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
    indices(py, "offsets", offsets)
}

/// Converts an int64 array named `what` (offsets, class indices) into `usize`, rejecting negative entries.
pub fn indices(py: Python<'_>, what: &str, values: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
    values
        .as_array()
        .iter()
        .map(|&o| {
            usize::try_from(o)
                .map_err(|_| to_pyerr(py, Error::InvalidInput(format!("{what} must be non-negative; got {o}"))))
        })
        .collect()
}
