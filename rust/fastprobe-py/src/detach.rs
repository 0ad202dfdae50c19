//! The one helper every heavy call goes through: run detached from the interpreter, then map errors.

use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

/// Below this many bytes of work the call is so short that releasing and re-taking the interpreter costs more
/// than it frees; such calls run attached, on the calling thread.
pub const DETACH_MIN_BYTES: usize = 64 * 1024;

/// Runs `f` and maps its error into a Python exception, choosing by `work_bytes` (what the kernel will read):
/// - below [`DETACH_MIN_BYTES`]: attached, on the calling thread;
/// - below `parallel_min_bytes` (the kernel's own threshold for splitting work): detached, on the calling thread,
///   so no thread pool is woken;
/// - otherwise: detached, on the fastprobe pool of `n_threads` threads (see `fastprobe_core::parallel`).
pub fn run_detached<T, F>(
    py: Python<'_>,
    work_bytes: usize,
    parallel_min_bytes: usize,
    n_threads: Option<usize>,
    f: F,
) -> PyResult<T>
where
    T: Ungil + Send,
    F: Ungil + Send + FnOnce() -> fastprobe_core::Result<T>,
{
    fastprobe_core::parallel::check_threads(n_threads).into_py_result(py)?;
    if work_bytes < DETACH_MIN_BYTES {
        return f().into_py_result(py);
    }
    if work_bytes < parallel_min_bytes {
        return py.detach(f).into_py_result(py);
    }
    py.detach(move || fastprobe_core::parallel::install(n_threads, f).and_then(|r| r)).into_py_result(py)
}
