//! The layer sweep: one probe per layer, every layer read once, layers fitted in parallel.
//!
//! A sweep is given a way to load one layer's design matrix (`(n_samples, hidden)` float32: pooled activations read
//! from the store, or a slice of an array in memory), one set of targets shared by every layer, and a solver. It
//! runs `workers` threads (at most the pool size, at most the number of layers). Each worker takes the next layer,
//! loads it, optionally standardizes it per neuron, fits, reports the layer done, drops the matrix and takes the
//! next one: at most `workers` layer matrices exist at any time. With more than one worker each fit's dense linear
//! algebra runs sequentially (the layers are the parallelism); with one worker it uses the whole pool.
//!
//! An error (a failed load, a solver error, or the progress callback asking to stop) stops every worker before its
//! next layer. Layers are taken in order and a taken layer is always finished, so every layer before a failing one
//! has run: the error returned is that of the lowest failing layer, whatever the timing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use faer::Par;
use ndarray::{Array1, Array2, ArrayView1};

use crate::error::{Error, Result};
use crate::parallel;
use crate::solvers::standardize::{ScaleMode, fit_scaler, transform_in_place};
use crate::solvers::{self, Fit, Solver, Targets};

/// One layer's result.
#[derive(Debug, Clone)]
pub struct LayerResult {
    /// The per-neuron `(mean, scale)` applied before fitting, when standardizing.
    pub scaler: Option<(Array1<f64>, Array1<f64>)>,
    /// The fit.
    pub fit: Fit,
}

/// Options of a sweep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepOptions {
    /// Standardize each layer per neuron (mean 0, standard deviation 1, fitted on the layer) before fitting.
    pub standardize: bool,
    /// Pool size (`None`: the default pool, see [`crate::parallel`]).
    pub n_threads: Option<usize>,
    /// Layers in flight at once (`None`: as many as threads). Each holds one layer matrix.
    pub workers: Option<usize>,
}

/// Fits `solver` on each of `n_layers` layers; see the module documentation.
///
/// `load(l)` returns layer `l`'s `(n_samples, hidden)` matrix; `done(l)` is called after layer `l` is fitted (from
/// the worker thread) and may return an error to stop the sweep.
///
/// # Errors
/// The first error of a load, a fit, or `done`; [`Error::InvalidInput`] when the targets do not suit the solver or
/// `workers` is 0.
pub fn sweep(
    n_layers: usize,
    load: &(dyn Fn(usize) -> Result<Array2<f32>> + Sync),
    targets: Targets<'_>,
    sample_weight: Option<ArrayView1<'_, f64>>,
    solver: &Solver,
    options: SweepOptions,
    done: &(dyn Fn(usize) -> Result<()> + Sync),
) -> Result<Vec<LayerResult>> {
    solver.check_targets(targets)?;
    parallel::check_threads(options.n_threads)?;
    if options.workers == Some(0) {
        return Err(Error::InvalidInput("workers must be a positive integer or None; got 0".into()));
    }
    let threads = parallel::effective_threads(options.n_threads);
    let workers = options.workers.unwrap_or(threads).min(n_layers).max(1);
    let par = if workers > 1 { Par::Seq } else { Par::rayon(0) };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let results: Mutex<Vec<Option<LayerResult>>> = Mutex::new(vec![None; n_layers]);
    let one_layer = |l: usize| -> Result<LayerResult> {
        let mut x = load(l)?;
        let scaler = if options.standardize {
            let (mean, scale) = fit_scaler(x.view(), 1, ScaleMode::PerNeuron)?;
            transform_in_place(x.view_mut(), &mean, &scale)?;
            Some((mean, scale))
        } else {
            None
        };
        let fit = solvers::fit(x.view(), targets, sample_weight, solver, par)?;
        Ok(LayerResult { scaler, fit })
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let l = next.fetch_add(1, Ordering::Relaxed);
                    if l >= n_layers {
                        break;
                    }
                    let outcome = parallel::install(options.n_threads, || one_layer(l))
                        .and_then(|r| r)
                        .map_err(|e| layer_error(l, e))
                        .and_then(|r| done(l).map(|()| r));
                    match outcome {
                        Ok(r) => results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[l] = Some(r),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            let mut first = first_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            if first.as_ref().is_none_or(|(at, _)| l < *at) {
                                *first = Some((l, e));
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = first_error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every layer ran"))
        .collect())
}

/// Names the layer in a solver's input error; other errors (I/O, corruption) already name their source.
fn layer_error(layer: usize, e: Error) -> Error {
    match e {
        Error::InvalidInput(m) => Error::InvalidInput(format!("layer {layer}: {m}")),
        Error::Shape { what, expected, got } => Error::Shape { what: format!("layer {layer}: {what}"), expected, got },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solvers::logistic::{LogisticOptions, logistic_path};
    use crate::solvers::mass_mean::mass_mean_fit;
    use crate::solvers::ridge::{RidgeMode, ridge_path};

    fn layers(n_layers: usize, n: usize, d: usize) -> (Vec<Array2<f32>>, Vec<usize>) {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let xs = (0..n_layers)
            .map(|l| {
                Array2::from_shape_fn((n, d), |(i, j)| next() + if j == l % d { labels[i] as f32 * 0.3 } else { 0.0 })
            })
            .collect();
        (xs, labels)
    }

    /// Every layer's sweep result equals a fit of that layer alone, and no more layers are loaded at once than
    /// there are workers.
    #[test]
    fn sweep_equals_one_fit_per_layer_with_bounded_memory() {
        let (xs, labels) = layers(7, 40, 6);
        let in_flight = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let load = |l: usize| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            Ok(xs[l].clone())
        };
        let done = |_l: usize| {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        };
        let options = LogisticOptions { c: 1.0, fit_intercept: true, max_iter: 200, tol: 1e-8 };
        let solver = Solver::Logistic { cs: vec![0.5], options };
        let targets = Targets::Classes { labels: &labels, n_classes: 2 };
        let opts = SweepOptions { standardize: true, n_threads: Some(3), workers: Some(2) };
        let out = sweep(xs.len(), &load, targets, None, &solver, opts, &done).unwrap();
        assert!(peak.load(Ordering::SeqCst) <= 2, "peak {}", peak.load(Ordering::SeqCst));
        for (l, r) in out.iter().enumerate() {
            let (mean, scale) = r.scaler.clone().unwrap();
            let mut x = xs[l].clone();
            transform_in_place(x.view_mut(), &mean, &scale).unwrap();
            let want = logistic_path(x.view(), &labels, 2, None, &[0.5], options).unwrap();
            let Fit::Logistic(got) = &r.fit else { panic!("logistic") };
            assert_eq!(got[0].coef, want[0].coef, "layer {l}");
            let m = xs[l].column(l % 6).mean().unwrap();
            assert!((mean[l % 6] - f64::from(m)).abs() < 1e-6);
        }
    }

    #[test]
    fn ridge_and_mass_mean_sweeps_match_single_fits() {
        let (xs, labels) = layers(3, 30, 5);
        let y = Array2::from_shape_fn((30, 1), |(i, _)| labels[i] as f64 * 2.0 - 1.0);
        let load = |l: usize| Ok(xs[l].clone());
        let done = |_| Ok(());
        let solver = Solver::Ridge { alphas: vec![0.1, 1.0], fit_intercept: true, mode: RidgeMode::Auto };
        let out = sweep(3, &load, Targets::Values(y.view()), None, &solver, SweepOptions::default(), &done).unwrap();
        for (l, r) in out.iter().enumerate() {
            let want = ridge_path(xs[l].view(), y.view(), None, &[0.1, 1.0], true, RidgeMode::Auto, Par::Seq).unwrap();
            let Fit::Ridge(got) = &r.fit else { panic!("ridge") };
            assert!(r.scaler.is_none());
            for (a, b) in got.coef.iter().zip(&want.coef) {
                assert!((a - b).abs() < 1e-12);
            }
        }
        let solver = Solver::MassMean { whiten: false, shrinkage: 0.0 };
        let targets = Targets::Classes { labels: &labels, n_classes: 2 };
        let out = sweep(3, &load, targets, None, &solver, SweepOptions::default(), &done).unwrap();
        let Fit::MassMean(got) = &out[2].fit else { panic!("mass mean") };
        let want = mass_mean_fit(xs[2].view(), &labels, None, false, 0.0, Par::Seq).unwrap();
        assert_eq!(got.direction, want.direction);
    }

    #[test]
    fn errors_stop_the_sweep_and_name_the_layer() {
        let (mut xs, labels) = layers(4, 20, 3);
        xs[2][(5, 1)] = f32::NAN;
        let load = |l: usize| Ok(xs[l].clone());
        let done = |_| Ok(());
        let solver = Solver::MassMean { whiten: false, shrinkage: 0.0 };
        let targets = Targets::Classes { labels: &labels, n_classes: 2 };
        let opts = SweepOptions { workers: Some(1), ..SweepOptions::default() };
        let err = sweep(4, &load, targets, None, &solver, opts, &done).unwrap_err().to_string();
        assert!(err.starts_with("layer 2: X contains NaN at row 5, column 1"), "{err}");
        let err = sweep(4, &load, Targets::Values(ndarray::Array2::zeros((20, 1)).view()), None, &solver, opts, &done)
            .unwrap_err()
            .to_string();
        assert!(err.contains("need class indices"), "{err}");
        let calls = AtomicUsize::new(0);
        let stop = |_l: usize| {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::InvalidInput("stopped by the caller".into()))
        };
        let (xs, _) = layers(4, 20, 3);
        let load = |l: usize| Ok(xs[l].clone());
        let err = sweep(4, &load, targets, None, &solver, opts, &stop).unwrap_err().to_string();
        assert_eq!(err, "stopped by the caller");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
