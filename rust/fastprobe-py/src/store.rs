//! `ActivationStore`: the Python handle of `fastprobe_core::store::Store`.
//!
//! Store work always touches files: every call releases the interpreter and spreads decoding over the pool
//! ([`Call::heavy`]).

use std::path::PathBuf;
use std::sync::Arc;

use fastprobe_core::store::{Content, StorageDtype, Store};
use ndarray::Axis;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert;
use crate::detach::{Call, run_detached};
use crate::errors::to_pyerr;

/// Token-level values and their prompt offsets.
type Ragged<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<i64>>);

fn dtype(py: Python<'_>, name: Option<&str>) -> PyResult<Option<StorageDtype>> {
    name.map(|n| convert::option(py, n)).transpose()
}

/// A directory of compressed, checksummed activations (see `docs/store-format.md`).
///
/// `ActivationStore(path, dtype="bfloat16", fingerprint="{}")` opens the store in `path`, creating it with
/// `dtype` as its default storage dtype and `fingerprint` (JSON text) as its description if it does not exist.
#[pyclass(name = "ActivationStore", module = "fastprobe._core", frozen)]
pub struct PyStore {
    pub(crate) inner: Arc<Store>,
}

#[pymethods]
impl PyStore {
    #[new]
    #[pyo3(signature = (path, dtype="bfloat16", fingerprint="{}"))]
    fn new(py: Python<'_>, path: PathBuf, dtype: &str, fingerprint: &str) -> PyResult<Self> {
        let dtype: StorageDtype = convert::option(py, dtype)?;
        let fingerprint = fingerprint.to_owned();
        let store = run_detached(py, Call::heavy(None), move |_| Store::open(path, dtype, &fingerprint))?;
        Ok(Self { inner: Arc::new(store) })
    }

    /// The store's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.dir().to_owned()
    }

    /// The default storage dtype, recorded when the store was created.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.dtype().name()
    }

    /// The store description (`store.json`) as JSON text.
    fn description(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.description().map_err(|e| to_pyerr(py, e))
    }

    /// Write one batch atomically: `tokens` is (`n_sites`, sum(counts), hidden) float32, the unpadded tokens of the
    /// prompts one after another; `counts[i]` is prompt i's token count. Pooled vectors are computed and stored too;
    /// with `keep_tokens=False` only they are (pooled-only records).
    #[pyo3(signature = (prompts, counts, sites, tokens, dtype=None, n_threads=None, keep_tokens=true))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature
    fn write(
        &self,
        py: Python<'_>,
        prompts: Vec<String>,
        counts: PyReadonlyArray1<'_, i64>,
        sites: Vec<u32>,
        tokens: PyReadonlyArray3<'_, f32>,
        dtype: Option<&str>,
        n_threads: Option<usize>,
        keep_tokens: bool,
    ) -> PyResult<()> {
        let dtype = self::dtype(py, dtype)?;
        convert::require_contiguous(py, "tokens", &tokens)?;
        let counts: Vec<u32> =
            convert::offsets(py, &counts)?.into_iter().map(|c| u32::try_from(c).unwrap_or(u32::MAX)).collect();
        if counts.len() != prompts.len() {
            return Err(to_pyerr(
                py,
                fastprobe_core::Error::shape(
                    "counts",
                    format!("({},) (one per prompt)", prompts.len()),
                    format!("({},)", counts.len()),
                ),
            ));
        }
        let t = tokens.as_array();
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(n_threads), move |_| {
            let views: Vec<_> = t.axis_iter(Axis(0)).collect();
            store.write(&prompts, &counts, &sites, &views, dtype, keep_tokens)
        })
    }

    /// Write last-token-only records atomically: `vectors` is (`n_sites`, len(prompts), hidden) float32, each
    /// prompt's last-token vector per site; `counts[i]` is prompt i's token count. Such records serve last-token
    /// reads only.
    #[pyo3(signature = (prompts, counts, sites, vectors, dtype=None, n_threads=None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python signature
    fn write_last_token(
        &self,
        py: Python<'_>,
        prompts: Vec<String>,
        counts: PyReadonlyArray1<'_, i64>,
        sites: Vec<u32>,
        vectors: PyReadonlyArray3<'_, f32>,
        dtype: Option<&str>,
        n_threads: Option<usize>,
    ) -> PyResult<()> {
        let dtype = self::dtype(py, dtype)?;
        convert::require_contiguous(py, "vectors", &vectors)?;
        let counts: Vec<u32> = convert::indices(py, "counts", &counts)?
            .into_iter()
            .map(|c| u32::try_from(c).unwrap_or(u32::MAX))
            .collect();
        let shape = vectors.shape().to_vec();
        if shape[1] != prompts.len() {
            return Err(to_pyerr(
                py,
                fastprobe_core::Error::shape(
                    "vectors",
                    format!("(n_sites, {}, hidden) (one row per prompt)", prompts.len()),
                    format!("{shape:?}"),
                ),
            ));
        }
        let v = vectors.as_array();
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(n_threads), move |_| {
            let views: Vec<_> = v.axis_iter(Axis(0)).collect();
            store.write_last_token(&prompts, &counts, &sites, &views, dtype)
        })
    }

    /// Pooled vectors of every (prompt, site): (len(prompts), len(sites) * hidden) float32, sites in the given order.
    #[pyo3(signature = (prompts, sites, pooling="last_token", n_threads=None))]
    fn read_pooled<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        sites: Vec<u32>,
        pooling: &str,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let pooling = convert::option(py, pooling)?;
        let store = Arc::clone(&self.inner);
        let out = run_detached(py, Call::heavy(n_threads), move |_| store.read_pooled(&prompts, &sites, pooling))?;
        Ok(out.into_pyarray(py))
    }

    /// Token-level activations, ragged: `(values, offsets)` with values (total tokens, len(sites) * hidden) float32
    /// and prompt i owning rows offsets[i]:offsets[i + 1].
    #[pyo3(signature = (prompts, sites, n_threads=None))]
    fn read_tokens<'py>(
        &self,
        py: Python<'py>,
        prompts: Vec<String>,
        sites: Vec<u32>,
        n_threads: Option<usize>,
    ) -> PyResult<Ragged<'py>> {
        let store = Arc::clone(&self.inner);
        let (values, offsets) = run_detached(py, Call::heavy(n_threads), move |_| store.read_tokens(&prompts, &sites))?;
        let offsets: Vec<i64> = offsets.into_iter().map(|o| o as i64).collect();
        Ok((values.into_pyarray(py), offsets.into_pyarray(py)))
    }

    /// For each prompt, whether it is stored at every one of `sites` in a record that serves what the caller reads:
    /// its tokens when `tokens` is true; else the vectors of `pooling` (a pooling name) when given; else all three
    /// pooled vectors (last token, mean, first token).
    #[pyo3(signature = (prompts, sites, tokens=false, pooling=None))]
    fn contains(
        &self,
        py: Python<'_>,
        prompts: Vec<String>,
        sites: Vec<u32>,
        tokens: bool,
        pooling: Option<&str>,
    ) -> PyResult<Vec<bool>> {
        let need = match (tokens, pooling) {
            (true, _) => Content::Tokens,
            (false, Some(name)) => Content::needed_for(convert::option(py, name)?),
            (false, None) => Content::Pooled,
        };
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(None), move |_| store.contains(&prompts, &sites, need))
    }

    /// Every stored prompt, sorted by prompt text: a list of (prompt, [site, ...], token count).
    fn prompts(&self, py: Python<'_>) -> PyResult<Vec<(String, Vec<u32>, u32)>> {
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(None), move |_| store.prompts())
    }

    /// Summary numbers: `records`, `prompts`, `sites`, `live_bytes`, `disk_bytes`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let store = Arc::clone(&self.inner);
        let s = run_detached(py, Call::heavy(None), move |_| store.stats())?;
        let d = PyDict::new(py);
        d.set_item("records", s.records)?;
        d.set_item("prompts", s.prompts)?;
        d.set_item("sites", s.sites)?;
        d.set_item("live_bytes", s.live_bytes)?;
        d.set_item("disk_bytes", s.disk_bytes)?;
        Ok(d)
    }

    /// Check every record and the index; returns one line per problem (empty: the store is sound).
    #[pyo3(signature = (n_threads=None))]
    fn verify(&self, py: Python<'_>, n_threads: Option<usize>) -> PyResult<Vec<String>> {
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(n_threads), move |_| store.verify())
    }

    /// Evict least-recently-used records until the store's files take at most `budget_bytes`, then compact;
    /// returns the bytes freed.
    fn evict(&self, py: Python<'_>, budget_bytes: u64) -> PyResult<u64> {
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(None), move |_| store.evict(budget_bytes))
    }

    /// Rewrite mostly-dead segments and the index, reclaiming space; returns the bytes freed.
    fn compact(&self, py: Python<'_>) -> PyResult<u64> {
        let store = Arc::clone(&self.inner);
        run_detached(py, Call::heavy(None), move |_| store.compact())
    }
}
