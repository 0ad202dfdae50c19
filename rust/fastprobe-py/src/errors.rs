//! The one place where core errors become Python exceptions.
//!
//! The exception classes themselves are defined in `fastprobe/exceptions.py`: there they can inherit from two
//! builtins at once (`FastprobeIOError` is both a `FastprobeError` and an `OSError`) and carry numpydoc docstrings.
//! This module imports them once per interpreter and maps every [`fastprobe_core::Error`] variant onto one class.

use fastprobe_core::Error;
use pyo3::PyErr;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

const EXCEPTIONS_MODULE: &str = "fastprobe.exceptions";

/// Declares a lazily imported exception class from `fastprobe.exceptions`.
macro_rules! exception {
    ($fn_name:ident, $class:literal) => {
        fn $fn_name(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
            static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            CLASS.import(py, EXCEPTIONS_MODULE, $class)
        }
    };
}

exception!(shape_error, "ShapeMismatchError");
exception!(option_error, "UnknownOptionError");
exception!(input_error, "InvalidInputError");
exception!(io_error, "FastprobeIOError");
exception!(corrupt_error, "CorruptStoreError");
exception!(missing_error, "MissingActivationsError");
exception!(base_error, "FastprobeError");

/// Converts a core error into the matching Python exception.
pub fn to_pyerr(py: Python<'_>, err: Error) -> PyErr {
    let msg = err.to_string();
    let class = match &err {
        Error::Shape { .. } => shape_error(py),
        Error::UnknownOption { .. } => option_error(py),
        Error::InvalidInput(_) => input_error(py),
        Error::Corrupt(_) => corrupt_error(py),
        Error::Missing(_) => missing_error(py),
        Error::Codec(_) => base_error(py),
        Error::Io { path, source } => {
            return match io_error(py) {
                Ok(cls) => {
                    let errno = source.raw_os_error().unwrap_or(0);
                    PyErr::from_value(
                        cls.call1((errno, msg, path.display().to_string()))
                            .unwrap_or_else(|e| e.into_value(py).into_bound(py).into_any()),
                    )
                }
                Err(e) => e,
            };
        }
    };
    match class {
        Ok(cls) => PyErr::from_type(cls.clone(), msg),
        Err(import_failure) => import_failure,
    }
}

/// Extension trait: `core_result.into_py_result(py)?`.
pub trait IntoPyResult<T> {
    /// Maps the error through [`to_pyerr`].
    fn into_py_result(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for fastprobe_core::Result<T> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_pyerr(py, e))
    }
}
