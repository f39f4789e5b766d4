//! `maxsim.Index` bindings: the native handle of `maxsim-index`'s `Index`.
//!
//! The Python wrapper (`python/maxsim/index.py`) converts documents and
//! queries to float32 arrays and ids to an int64 array or a list of str;
//! every call releases the GIL while it reads, writes or searches.

use crate::args::{self, ArrayList2};
use maxsim_core::DocSet;
use maxsim_index::manifest::CodecKind;
use maxsim_index::{Allowed, CreateOptions, DocId, Error, IdKind, Index, SearchParams, StoreKind};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyError, PyOSError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::path::PathBuf;

/// Index errors as Python exceptions.
fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::InvalidArgument(_) | Error::Corrupt { .. } | Error::Version { .. } => {
            PyValueError::new_err(msg)
        }
        Error::UnknownIds(_) => PyKeyError::new_err(msg),
        Error::Missing { .. } => PyFileNotFoundError::new_err(msg),
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::Locked(_) => PyRuntimeError::new_err(msg),
        Error::Core(e) => crate::errors::to_py(e),
    }
}

/// Ids from an int64 array or a list of str.
fn ids_from(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<DocId>> {
    if let Ok(array) = obj.extract::<PyReadonlyArray1<'_, i64>>() {
        return Ok(array.as_array().iter().map(|&v| DocId::Int(v)).collect());
    }
    if let Ok(strings) = obj.extract::<Vec<String>>() {
        return Ok(strings.into_iter().map(DocId::Str).collect());
    }
    Err(PyTypeError::new_err(format!(
        "{name}: expected a 1-D int64 array or a list of str"
    )))
}

/// Ids as Python objects: an int64 array or a list of str.
fn ids_to_py(py: Python<'_>, ids: Vec<DocId>, kind: Option<IdKind>) -> PyResult<Py<PyAny>> {
    if kind == Some(IdKind::Str) {
        let strings: Vec<String> = ids
            .into_iter()
            .map(|i| match i {
                DocId::Str(s) => s,
                DocId::Int(v) => v.to_string(),
            })
            .collect();
        return Ok(PyList::new(py, strings)?.into_any().unbind());
    }
    let ints: Vec<i64> = ids
        .into_iter()
        .map(|i| match i {
            DocId::Int(v) => v,
            DocId::Str(_) => -1,
        })
        .collect();
    Ok(PyArray1::from_vec(py, ints).into_any().unbind())
}

#[pyclass(name = "NativeIndex", module = "maxsim._native", frozen)]
struct NativeIndex {
    inner: Index,
}

#[pymethods]
impl NativeIndex {
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (path, dim, nbits, codec, n_centroids, store, seed, kmeans_iters, max_points_per_centroid))]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        dim: usize,
        nbits: usize,
        codec: &str,
        n_centroids: Option<usize>,
        store: Option<&str>,
        seed: u64,
        kmeans_iters: usize,
        max_points_per_centroid: usize,
    ) -> PyResult<Self> {
        let store = store.map(StoreKind::parse).transpose().map_err(to_py)?;
        let codec = CodecKind::parse(codec).map_err(to_py)?;
        let options = CreateOptions {
            dim,
            nbits,
            codec,
            n_centroids,
            store,
            seed,
            kmeans_iters,
            max_points_per_centroid,
        };
        let inner = py
            .detach(|| Index::create(&path, &options))
            .map_err(to_py)?;
        Ok(NativeIndex { inner })
    }

    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf, mmap: bool, verify: bool) -> PyResult<Self> {
        let inner = py
            .detach(|| Index::open(&path, mmap, verify))
            .map_err(to_py)?;
        Ok(NativeIndex { inner })
    }

    fn train(
        &self,
        py: Python<'_>,
        docs: ArrayList2<'_, f32>,
        dim: usize,
        expected_tokens: Option<usize>,
    ) -> PyResult<()> {
        let set = args::list_docs(&docs, dim, "docs", args::doc_dim_mismatch(dim))?;
        py.detach(|| self.inner.train(&set, expected_tokens))
            .map_err(to_py)
    }

    fn train_with(
        &self,
        py: Python<'_>,
        centroids: numpy::PyReadonlyArray2<'_, f32>,
        cutoffs: Vec<f32>,
        weights: Vec<f32>,
    ) -> PyResult<()> {
        let (data, _, _) = args::matrix(&centroids, "centroids")?;
        let data = data.to_vec();
        py.detach(|| self.inner.train_with(data, cutoffs, weights))
            .map_err(to_py)
    }

    fn add(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        docs: ArrayList2<'_, f32>,
        dim: usize,
        replace: bool,
    ) -> PyResult<()> {
        let ids = ids_from(ids, "ids")?;
        let set: DocSet<'_, f32> =
            args::list_docs(&docs, dim, "docs", args::doc_dim_mismatch(dim))?;
        py.detach(|| self.inner.add(ids, &set, replace))
            .map_err(to_py)
    }

    fn delete(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = ids_from(ids, "ids")?;
        py.detach(|| self.inner.delete(&ids)).map_err(to_py)
    }

    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.compact()).map_err(to_py)
    }

    fn reload(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| self.inner.reload()).map_err(to_py)
    }

    /// Per id, its document's vectors `(n_tokens, dim)` float32 (stored full
    /// vectors, or decompressed residuals without a store).
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let ids = ids_from(ids, "ids")?;
        let snap = self.inner.snapshot();
        let dim = snap.manifest.dim;
        let missing: Vec<&DocId> = ids.iter().filter(|i| !snap.ids.contains_key(*i)).collect();
        if !missing.is_empty() {
            return Err(PyKeyError::new_err(format!(
                "ids: not in the index: {}",
                maxsim_index::ids::list_some(&missing)
            )));
        }
        let vectors = py
            .detach(|| {
                ids.iter()
                    .map(|i| snap.vectors(snap.ids[i]))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(to_py)?;
        vectors
            .into_iter()
            .map(|v| {
                let rows = v.len() / dim;
                PyArray1::from_vec(py, v).reshape([rows, dim])
            })
            .collect()
    }

    fn __len__(&self) -> usize {
        self.inner.snapshot().n_live
    }

    fn ids(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let snap = self.inner.snapshot();
        let ids = py.detach(|| snap.live_ids()).map_err(to_py)?;
        ids_to_py(py, ids, snap.manifest.id_kind)
    }

    /// `(scores (nq, k) float32, ids, certified (nq,) bool)`; ids an int64
    /// `(nq, k)` array (padding -1) or, for str ids, a list of lists.
    /// `rerank`: `True` exact, `False` residuals, `None` exact when the
    /// index has a store.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (queries, k, nprobe, n_candidates, rerank, certify, exact, subsets))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: ArrayList2<'py, f32>,
        k: usize,
        nprobe: Option<usize>,
        n_candidates: Option<usize>,
        rerank: Option<bool>,
        certify: bool,
        exact: bool,
        subsets: Option<Vec<Bound<'py, PyAny>>>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>, Py<PyAny>)> {
        let snap = self.inner.snapshot();
        let dim = snap.manifest.dim;
        let slices = args::row_slices(&queries, dim, "queries", |i, shape| {
            format!(
                "queries[{i}]: dimension {} (shape {shape:?}) does not match the index's {dim}",
                shape[1]
            )
        })?;
        let allowed: Option<Vec<Allowed>> = match &subsets {
            None => None,
            Some(lists) => {
                if lists.len() != slices.len() {
                    return Err(PyValueError::new_err(format!(
                        "subset: {} lists for {} queries",
                        lists.len(),
                        slices.len()
                    )));
                }
                let mut out = Vec::with_capacity(lists.len());
                for list in lists {
                    let ids = ids_from(list, "subset")?;
                    let ords = ids
                        .iter()
                        .filter_map(|i| snap.ids.get(i).copied())
                        .collect();
                    out.push(Allowed::new(ords, snap.total_docs()));
                }
                Some(out)
            }
        };
        let refs: Vec<Option<&Allowed>> = match &allowed {
            None => vec![None; slices.len()],
            Some(a) => a.iter().map(Some).collect(),
        };
        let params = SearchParams {
            k,
            nprobe,
            n_candidates,
            rerank,
            certify,
            exact,
        };
        let hits = py
            .detach(|| snap.search(&slices, &params, &refs))
            .map_err(to_py)?;
        let nq = hits.len();
        let mut scores = vec![f32::NEG_INFINITY; nq * k];
        let mut certified = Vec::with_capacity(nq);
        let mut id_rows: Vec<Vec<DocId>> = Vec::with_capacity(nq);
        for (r, h) in hits.into_iter().enumerate() {
            scores[r * k..r * k + h.scores.len()].copy_from_slice(&h.scores);
            certified.push(h.certified);
            id_rows.push(
                h.ordinals
                    .iter()
                    .map(|&o| snap.doc_id(o))
                    .collect::<Result<_, _>>()
                    .map_err(to_py)?,
            );
        }
        let scores = args::into_2d(py, scores, nq, k)?.into_any();
        let certified = PyArray1::from_vec(py, certified).into_any().unbind();
        let ids = if snap.manifest.id_kind == Some(IdKind::Str) {
            let rows = PyList::empty(py);
            for row in id_rows {
                rows.append(ids_to_py(py, row, Some(IdKind::Str))?)?;
            }
            rows.into_any().unbind()
        } else {
            let mut flat = vec![-1i64; nq * k];
            for (r, row) in id_rows.into_iter().enumerate() {
                for (j, id) in row.into_iter().enumerate() {
                    if let DocId::Int(v) = id {
                        flat[r * k + j] = v;
                    }
                }
            }
            PyArray1::from_vec(py, flat)
                .reshape([nq, k])?
                .into_any()
                .unbind()
        };
        Ok((scores, ids, certified))
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("n_docs", s.n_docs)?;
        d.set_item("n_tombstones", s.n_tombstones)?;
        d.set_item("n_tokens", s.n_tokens)?;
        d.set_item("n_segments", s.n_segments)?;
        d.set_item("n_centroids", s.n_centroids)?;
        d.set_item("dim", s.dim)?;
        d.set_item("nbits", s.nbits)?;
        d.set_item("codec", s.codec.name())?;
        d.set_item("store", s.store.map(StoreKind::name))?;
        d.set_item("index_bytes", s.index_bytes)?;
        d.set_item("store_bytes", s.store_bytes)?;
        d.set_item("bytes_per_token", s.bytes_per_token())?;
        d.set_item("generation", s.generation)?;
        Ok(d)
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.snapshot().manifest.dim
    }

    #[getter]
    fn id_kind(&self) -> Option<&'static str> {
        self.inner.snapshot().manifest.id_kind.map(IdKind::name)
    }

    #[getter]
    fn store(&self) -> Option<&'static str> {
        self.inner.snapshot().manifest.store.map(StoreKind::name)
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeIndex>()?;
    Ok(())
}
