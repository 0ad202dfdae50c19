//! Thread pools for the kernels.
//!
//! Kernels use rayon. By default they run on rayon's global pool, whose size honours `FASTPROBE_NUM_THREADS`
//! (then `RAYON_NUM_THREADS`, then the number of CPUs). A caller that wants a fixed count (to avoid
//! oversubscription when it runs several kernels at once from its own threads) passes `Some(n)`: the work then
//! runs on a dedicated pool of `n` threads, built once per distinct `n` and reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// The environment variable that sizes the default pool.
pub const THREADS_ENV: &str = "FASTPROBE_NUM_THREADS";

fn default_threads() -> usize {
    [THREADS_ENV, "RAYON_NUM_THREADS"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find_map(|v| v.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

fn pool_for(n: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut pools = pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = pools.get(&n) {
        return Ok(Arc::clone(p));
    }
    let pool = ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("fastprobe-{i}"))
        .build()
        .map_err(|e| Error::InvalidInput(format!("could not start a pool of {n} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(n, Arc::clone(&pool));
    Ok(pool)
}

/// The number of threads a call with `n_threads` would use.
#[must_use]
pub fn effective_threads(n_threads: Option<usize>) -> usize {
    n_threads.unwrap_or_else(default_threads)
}

/// Runs `f` on a pool of `n_threads` threads (`None`: the default size described in the module docs).
///
/// # Errors
/// [`Error::InvalidInput`] when `n_threads` is `Some(0)` or the pool cannot be started.
pub fn install<R: Send>(n_threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    check_threads(n_threads)?;
    Ok(pool_for(effective_threads(n_threads))?.install(f))
}

/// Checks an `n_threads` argument without starting anything.
///
/// # Errors
/// [`Error::InvalidInput`] when `n_threads` is `Some(0)`.
pub fn check_threads(n_threads: Option<usize>) -> Result<()> {
    if n_threads == Some(0) {
        return Err(Error::InvalidInput("n_threads must be a positive integer or None; got 0".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_pool_of_the_requested_size() {
        assert_eq!(install(Some(3), rayon::current_num_threads).unwrap(), 3);
        assert_eq!(install(Some(1), rayon::current_num_threads).unwrap(), 1);
        assert!(install(Some(0), || ()).unwrap_err().to_string().contains("got 0"));
        assert_eq!(effective_threads(Some(5)), 5);
    }
}
