//! fastprobe's core: the numerical kernels and I/O behind the `fastprobe` Python package.
//!
//! This crate has no Python dependency. The binding crate (`fastprobe-py`) converts arrays, releases the
//! interpreter lock around calls into this crate, and maps [`Error`] onto Python exceptions.
//!
//! Modules:
//! - [`pooling`]: reduce a sequence of token activations to one vector per prompt, over padded batches (with an
//!   attention mask) or ragged (unpadded) token blocks.
//! - [`store`]: the activation store (compressed, checksummed, crash-safe segment files and index).
//! - [`solvers`]: ridge, logistic regression, mass-mean probes, group lasso and standardization; [`solvers::fit`]
//!   fits a [`solvers::Solver`] chosen at run time.
//! - [`sweep`]: one probe per layer, layers read once and fitted in parallel.
//! - [`parallel`]: the thread pools the kernels run on.
//! - [`buffer`]: large output arrays.
#![deny(missing_docs)]

pub mod buffer;
pub mod error;
pub mod parallel;
pub mod pooling;
pub mod solvers;
pub mod store;
pub mod sweep;

pub use error::{Error, Result};
pub use pooling::Pooling;
