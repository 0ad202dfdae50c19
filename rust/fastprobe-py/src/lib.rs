//! `fastprobe._core`: the compiled half of the `fastprobe` Python package.
//!
//! This crate only converts Python values to core types, releases the interpreter around heavy work
//! ([`detach::run_detached`]) and maps core errors onto fastprobe's exceptions ([`errors`]). All algorithms live in
//! `fastprobe-core`.

mod convert;
mod detach;
mod errors;
mod online;
mod pooling;
mod solvers;
mod store;
mod sweep;

use pyo3::prelude::*;

/// The private extension module; import `fastprobe` instead.
#[pymodule(gil_used = false)]
mod _core {
    #[pymodule_export]
    use super::online::online_code_logistic;
    #[pymodule_export]
    use super::pooling::{pool_padded, pool_ragged, reduce_scores};
    #[pymodule_export]
    use super::solvers::{fit_scaler, group_lasso_fit, logistic_path, mass_mean_fit, ridge_path, scale_in_place};
    #[pymodule_export]
    use super::store::PyStore;
    #[pymodule_export]
    use super::sweep::sweep_layers;

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("POOLING_METHODS", fastprobe_core::Pooling::NAMES.to_vec())?;
        m.add("THREADS_ENV", fastprobe_core::parallel::THREADS_ENV)?;
        m.add("DETACH_MIN_BYTES", super::detach::DETACH_MIN_BYTES)?;
        m.add("STORAGE_DTYPES", fastprobe_core::store::StorageDtype::NAMES.to_vec())?;
        Ok(())
    }

    /// The number of threads a kernel call with `n_threads` would use (None: the default pool's size, which
    /// honours the `FASTPROBE_NUM_THREADS` environment variable).
    #[pyfunction]
    #[pyo3(signature = (n_threads=None))]
    fn effective_threads(n_threads: Option<usize>) -> usize {
        fastprobe_core::parallel::effective_threads(n_threads)
    }
}
