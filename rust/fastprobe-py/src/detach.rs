//! The one helper every call into the core goes through ([`run_detached`]): run the work detached from the
//! interpreter, where its size says it is worth it; for long calls, report progress and honour Ctrl-C while it runs;
//! then map errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::time::Duration;

use fastprobe_core::{Error, parallel};
use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;

/// Below this many bytes of work the call is so short that releasing and re-taking the interpreter costs more
/// than it frees; such calls run attached, on the calling thread.
pub const DETACH_MIN_BYTES: usize = 64 * 1024;

/// How often the calling thread wakes to check for Ctrl-C while a polled call runs.
const POLL: Duration = Duration::from_millis(100);

/// Where the work of a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Attached, on the calling thread.
    Attached,
    /// Detached, outside the thread pool (no pool is woken).
    Detached,
    /// Detached, on the fastprobe pool (see `fastprobe_core::parallel`).
    Pool,
}

/// What the calling thread does while the work runs.
#[derive(Clone, Copy)]
enum Follow<'a, 'py> {
    /// Waits for the result.
    Wait,
    /// Polls, relaying progress to the callback when there is one (see [`Call::polled`]).
    Poll(Option<&'a Bound<'py, PyAny>>),
}

/// How a call runs: where its work goes, and whether the calling thread follows it while it runs.
#[derive(Clone, Copy)]
pub struct Call<'a, 'py> {
    place: Place,
    n_threads: Option<usize>,
    follow: Follow<'a, 'py>,
}

impl<'a, 'py> Call<'a, 'py> {
    /// Work that is always worth releasing the interpreter for, even when small (solvers, the store): detached, on
    /// the pool of `n_threads` threads.
    pub const fn heavy(n_threads: Option<usize>) -> Self {
        Self { place: Place::Pool, n_threads, follow: Follow::Wait }
    }

    /// A kernel reading `work_bytes`, which splits its work over the pool from `parallel_min_bytes` on:
    /// - below [`DETACH_MIN_BYTES`]: attached, on the calling thread;
    /// - below `parallel_min_bytes`: detached, on the calling thread, so no thread pool is woken;
    /// - otherwise: detached, on the pool of `n_threads` threads.
    pub const fn sized(work_bytes: usize, parallel_min_bytes: usize, n_threads: Option<usize>) -> Self {
        let place = if work_bytes < DETACH_MIN_BYTES {
            Place::Attached
        } else if work_bytes < parallel_min_bytes {
            Place::Detached
        } else {
            Place::Pool
        };
        Self { place, n_threads, follow: Follow::Wait }
    }

    /// Work that starts and sizes threads of its own (the layer sweep): detached, outside the pool (a pool thread
    /// waiting on threads that use the same pool could starve it).
    pub const fn own_threads() -> Self {
        Self { place: Place::Detached, n_threads: None, follow: Follow::Wait }
    }

    /// Follows the call from the calling thread while it runs: the work runs on a thread of its own, and the
    /// calling thread calls `progress(unit)` (when given) for each unit the work reports done ([`Progress::done`])
    /// and checks for Ctrl-C every [`POLL`]. An exception from `progress`, or Ctrl-C, cancels the work (at its next
    /// report) and is raised once the work has stopped.
    pub const fn polled(self, progress: Option<&'a Bound<'py, PyAny>>) -> Self {
        Self { follow: Follow::Poll(progress), ..self }
    }
}

/// What the work of a polled call reports, and how it learns that the caller has cancelled.
pub struct Progress<'a> {
    tx: Option<Sender<usize>>,
    cancel: Option<&'a AtomicBool>,
}

impl Progress<'_> {
    /// Reports `unit` done.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the caller has cancelled: the work should stop and return it (the caller's
    /// own exception is what is raised).
    pub fn done(&self, unit: usize) -> fastprobe_core::Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::InvalidInput("interrupted by the caller".into()));
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(unit);
        }
        Ok(())
    }
}

/// Runs `f` as `call` says (see [`Call`]) and maps its error into a Python exception.
pub fn run_detached<T, F>(py: Python<'_>, call: Call<'_, '_>, f: F) -> PyResult<T>
where
    T: Ungil + Send,
    F: Ungil + Send + FnOnce(&Progress<'_>) -> fastprobe_core::Result<T>,
{
    let n_threads = call.n_threads;
    parallel::check_threads(n_threads).into_py_result(py)?;
    let run = move |progress: &Progress<'_>| match call.place {
        Place::Pool => parallel::install(n_threads, || f(progress)).and_then(|r| r),
        Place::Attached | Place::Detached => f(progress),
    };
    let quiet = Progress { tx: None, cancel: None };
    match (call.follow, call.place) {
        (Follow::Poll(progress), _) => run_polled(py, progress, run),
        (Follow::Wait, Place::Attached) => run(&quiet).into_py_result(py),
        (Follow::Wait, Place::Detached | Place::Pool) => py.detach(move || run(&quiet)).into_py_result(py),
    }
}

/// Runs `run` on a thread of its own while the calling thread relays its progress and watches for Ctrl-C.
fn run_polled<T, R>(py: Python<'_>, progress: Option<&Bound<'_, PyAny>>, run: R) -> PyResult<T>
where
    T: Send,
    R: Send + FnOnce(&Progress<'_>) -> fastprobe_core::Result<T>,
{
    let (tx, mut rx) = channel::<usize>();
    let cancel = AtomicBool::new(false);
    let mut py_err: Option<PyErr> = None;
    let outcome = std::thread::scope(|scope| {
        let cancel = &cancel;
        // The sender lives in the worker's `Progress`: the channel disconnects when the work returns.
        let worker = scope.spawn(move || run(&Progress { tx: Some(tx), cancel: Some(cancel) }));
        loop {
            let receiver = &mut rx;
            // Ctrl-C is checked after every report as well as on every timeout: reports can come faster than POLL.
            let failure = match py.detach(move || receiver.recv_timeout(POLL)) {
                Err(RecvTimeoutError::Disconnected) => break,
                _ if py_err.is_some() => None,
                Ok(unit) => progress
                    .map_or(Ok(()), |callback| callback.call1((unit,)).map(drop))
                    .and_then(|()| py.check_signals())
                    .err(),
                Err(RecvTimeoutError::Timeout) => py.check_signals().err(),
            };
            if let Some(e) = failure {
                py_err = Some(e);
                cancel.store(true, Ordering::Relaxed);
            }
        }
        py.detach(|| worker.join()).unwrap_or_else(|_| Err(Error::InvalidInput("a worker thread panicked".into())))
    });
    if let Some(e) = py_err {
        return Err(e);
    }
    outcome.into_py_result(py)
}
