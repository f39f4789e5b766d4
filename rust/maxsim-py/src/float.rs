//! Float32 MaxSim bindings: fixed, packed and list document layouts, and top-k.

use crate::errors::to_py;
use maxsim_core::float::{maxsim_scores_batch, PreparedQueries, ScoreOptions};
use maxsim_core::{topk_desc, DocSet};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;

/// Borrows a C-contiguous array's buffer (the Python layer guarantees contiguity;
/// this is the backstop for direct callers).
fn contiguous<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    array: &'a numpy::PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|_| PyValueError::new_err(format!("{name}: must be C-contiguous")))
}

/// Borrowed queries plus optional masks, as slices.
struct QueryInputs<'py> {
    arrays: Vec<PyReadonlyArray2<'py, f32>>,
    masks: Option<Vec<PyReadonlyArray1<'py, bool>>>,
}

impl QueryInputs<'_> {
    fn prepare(&self, dim: usize) -> PyResult<PreparedQueries> {
        let mut slices = Vec::with_capacity(self.arrays.len());
        for (i, q) in self.arrays.iter().enumerate() {
            let qdim = q.shape()[1];
            if qdim != dim {
                return Err(PyValueError::new_err(format!(
                    "queries[{i}]: dimension {qdim} (shape {:?}) does not match the documents' dimension {dim}",
                    q.shape()
                )));
            }
            slices.push(contiguous(q, "queries")?);
        }
        let mask_slices: Option<Vec<&[bool]>> = match &self.masks {
            None => None,
            Some(masks) => Some(
                masks
                    .iter()
                    .map(|m| contiguous(m, "queries_mask"))
                    .collect::<PyResult<_>>()?,
            ),
        };
        PreparedQueries::new(&slices, mask_slices.as_deref(), dim).map_err(to_py)
    }
}

fn run_batch(
    py: Python<'_>,
    queries: QueryInputs<'_>,
    docs: DocSet<'_, f32>,
    zero_floor: Option<PyReadonlyArray1<'_, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let prepared = queries.prepare(docs.dim())?;
    let floor = match &zero_floor {
        Some(f) => Some(contiguous(f, "zero_floor")?),
        None => None,
    };
    let n_queries = prepared.n_queries();
    let n_docs = docs.len();
    let out = py
        .detach(|| maxsim_scores_batch(&prepared, &docs, ScoreOptions { zero_floor: floor }))
        .map_err(to_py)?;
    let array = PyArray1::from_vec(py, out).reshape([n_queries, n_docs])?;
    Ok(array.unbind())
}

/// Scores `queries` (list of `(nq_i, d)` float32) against fixed-length documents
/// `(n_docs, doc_len, d)` float32. Returns `(n_queries, n_docs)` float32.
#[pyfunction]
#[pyo3(signature = (queries, docs, queries_mask=None, zero_floor=None))]
fn maxsim_fixed<'py>(
    py: Python<'py>,
    queries: Vec<PyReadonlyArray2<'py, f32>>,
    docs: PyReadonlyArray3<'py, f32>,
    queries_mask: Option<Vec<PyReadonlyArray1<'py, bool>>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let shape = docs.shape().to_vec();
    let data = contiguous(&docs, "docs")?;
    let set = DocSet::fixed(data, shape[0], shape[1], shape[2]).map_err(to_py)?;
    run_batch(
        py,
        QueryInputs {
            arrays: queries,
            masks: queries_mask,
        },
        set,
        zero_floor,
    )
}

/// Scores against packed documents: `flat` `(total_tokens, d)` float32 and
/// `offsets` `(n_docs + 1,)` int64.
#[pyfunction]
#[pyo3(signature = (queries, flat, offsets, queries_mask=None, zero_floor=None))]
fn maxsim_packed<'py>(
    py: Python<'py>,
    queries: Vec<PyReadonlyArray2<'py, f32>>,
    flat: PyReadonlyArray2<'py, f32>,
    offsets: PyReadonlyArray1<'py, i64>,
    queries_mask: Option<Vec<PyReadonlyArray1<'py, bool>>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let dim = flat.shape()[1];
    let data = contiguous(&flat, "flat")?;
    let offs = contiguous(&offsets, "offsets")?;
    let set = DocSet::packed(data, offs, dim).map_err(to_py)?;
    run_batch(
        py,
        QueryInputs {
            arrays: queries,
            masks: queries_mask,
        },
        set,
        zero_floor,
    )
}

/// Scores against a list of `(len_i, d)` float32 documents.
#[pyfunction]
#[pyo3(signature = (queries, docs, dim, queries_mask=None, zero_floor=None))]
fn maxsim_list<'py>(
    py: Python<'py>,
    queries: Vec<PyReadonlyArray2<'py, f32>>,
    docs: Vec<PyReadonlyArray2<'py, f32>>,
    dim: usize,
    queries_mask: Option<Vec<PyReadonlyArray1<'py, bool>>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let mut slices = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        if d.shape()[1] != dim {
            return Err(PyValueError::new_err(format!(
                "docs[{i}]: dimension {} (shape {:?}) does not match {dim}",
                d.shape()[1],
                d.shape()
            )));
        }
        slices.push(contiguous(d, "docs")?);
    }
    let set = DocSet::list(slices, dim).map_err(to_py)?;
    run_batch(
        py,
        QueryInputs {
            arrays: queries,
            masks: queries_mask,
        },
        set,
        zero_floor,
    )
}

/// Row-wise top-k of a `(n_rows, n)` float32 score matrix: `(scores, indices)`,
/// each `(n_rows, min(k, n))`, best first, ties to the lower index.
#[pyfunction]
fn topk_rows<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f32>,
    k: i64,
) -> PyResult<(Py<PyArray2<f32>>, Py<PyArray2<i64>>)> {
    if k < 1 {
        return Err(PyValueError::new_err(format!(
            "k: must be at least 1, got {k}"
        )));
    }
    let shape = scores.shape().to_vec();
    let (rows, n) = (shape[0], shape[1]);
    let data = contiguous(&scores, "scores")?;
    let kept = (k as usize).min(n);
    let results = py.detach(|| {
        maxsim_core::threads::install(|| {
            (0..rows)
                .into_par_iter()
                .map(|r| topk_desc(&data[r * n..(r + 1) * n], kept))
                .collect::<Vec<_>>()
        })
    });
    let mut out_scores = Vec::with_capacity(rows * kept);
    let mut out_indices = Vec::with_capacity(rows * kept);
    for t in results {
        out_scores.extend_from_slice(&t.scores);
        out_indices.extend_from_slice(&t.indices);
    }
    let s = PyArray1::from_vec(py, out_scores).reshape([rows, kept])?;
    let i = PyArray1::from_vec(py, out_indices).reshape([rows, kept])?;
    Ok((s.unbind(), i.unbind()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(maxsim_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_packed, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_list, m)?)?;
    m.add_function(wrap_pyfunction!(topk_rows, m)?)?;
    Ok(())
}
