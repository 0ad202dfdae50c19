//! The one helper every heavy call goes through: run detached from the interpreter, then map errors.

use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

/// Below this many input bytes the work is so short that releasing and re-taking the interpreter costs more than
/// it frees; such calls run attached.
pub const DETACH_MIN_BYTES: usize = 64 * 1024;

/// Runs `f` on the fastprobe thread pool (`n_threads`, see `fastprobe_core::parallel`), detached from the Python
/// interpreter when `input_bytes` is at least [`DETACH_MIN_BYTES`], and maps its error into a Python exception.
pub fn run_detached<T, F>(py: Python<'_>, input_bytes: usize, n_threads: Option<usize>, f: F) -> PyResult<T>
where
    T: Ungil + Send,
    F: Ungil + Send + FnOnce() -> fastprobe_core::Result<T>,
{
    let work = move || fastprobe_core::parallel::install(n_threads, f).and_then(|r| r);
    let result = if input_bytes >= DETACH_MIN_BYTES { py.detach(work) } else { work() };
    result.into_py_result(py)
}
