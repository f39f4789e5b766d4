//! Float32 MaxSim bindings: fixed, packed and list document layouts, and top-k.

use crate::args::{self, Queries};
use crate::errors::to_py;
use maxsim_core::float::{maxsim_scores_batch, PreparedQueries, ScoreOptions};
use maxsim_core::{topk_desc, DocSet};
use numpy::{
    Element, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArray2, PyReadonlyArray3, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rayon::prelude::*;

fn run_batch(
    py: Python<'_>,
    queries: Queries<'_>,
    docs: DocSet<'_, f32>,
    zero_floor: Option<PyReadonlyArray1<'_, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let prepared = queries.prepare(docs.dim())?;
    let (n_queries, n_docs) = (prepared.n_queries(), docs.len());
    args::score_matrix(py, n_queries, n_docs, &zero_floor, |options| {
        maxsim_scores_batch(&prepared, &docs, options)
    })
}

/// Scores `queries` (list of `(nq_i, d)` float32) against fixed-length documents
/// `(n_docs, doc_len, d)` float32. Returns `(n_queries, n_docs)` float32.
#[pyfunction]
#[pyo3(signature = (queries, docs, queries_mask=None, zero_floor=None))]
fn maxsim_fixed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    docs: PyReadonlyArray3<'py, f32>,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let set = args::fixed_docs(&docs, "docs")?;
    run_batch(py, Queries::new(queries, queries_mask), set, zero_floor)
}

/// Scores against packed documents: `flat` `(total_tokens, d)` float32 and
/// `offsets` `(n_docs + 1,)` int64.
#[pyfunction]
#[pyo3(signature = (queries, flat, offsets, queries_mask=None, zero_floor=None))]
fn maxsim_packed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    flat: PyReadonlyArray2<'py, f32>,
    offsets: PyReadonlyArray1<'py, i64>,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let set = args::packed_docs(&flat, &offsets, ("flat", "offsets"))?;
    run_batch(py, Queries::new(queries, queries_mask), set, zero_floor)
}

/// Scores against a list of `(len_i, d)` float32 documents.
#[pyfunction]
#[pyo3(signature = (queries, docs, dim, queries_mask=None, zero_floor=None))]
fn maxsim_list<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    docs: args::ArrayList2<'py, f32>,
    dim: usize,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let set = args::list_docs(&docs, dim, "docs", args::doc_dim_mismatch(dim))?;
    run_batch(py, Queries::new(queries, queries_mask), set, zero_floor)
}

/// Scores query `g` (`(nq_g, d_g)` float32) against its own candidates only,
/// for every group, in one call: `docs` holds the groups' `(len_i, d_g)`
/// float32 documents back to back, group `g` being
/// `docs[group_offsets[g]..group_offsets[g + 1]]`, and `zero_floor`
/// (optional, `(len(docs),)` bool) follows `docs`. Returns `(len(docs),)`
/// float32, in the order of `docs`.
///
/// This is `maxsim.pylate.rerank`'s call (each query has its own candidates)
/// and `colbert_scores_pairwise`'s (one document per query): one GIL release
/// for all queries keeps the thread pool busy from one group to the next.
/// Separate calls with Python work between them leave the pool asleep, and
/// its threads may wake late, which on a small rerank costs as much as a
/// query's scoring.
#[pyfunction]
#[pyo3(signature = (queries, docs, group_offsets, zero_floor=None))]
fn maxsim_list_groups<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    docs: args::ArrayList2<'py, f32>,
    group_offsets: Vec<usize>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray1<f32>>> {
    score_groups(
        py,
        &queries,
        &docs,
        &group_offsets,
        &zero_floor,
        maxsim_scores_batch,
    )
}

/// The grouped scoring of [`maxsim_list_groups`] for documents of any element
/// type: checks the arguments, builds one query and one document list per
/// group, and runs `score` on every group in parallel with the GIL released.
pub(crate) fn score_groups<'py, T: Element + Sync>(
    py: Python<'py>,
    queries: &args::ArrayList2<'py, f32>,
    docs: &args::ArrayList2<'py, T>,
    group_offsets: &[usize],
    zero_floor: &Option<PyReadonlyArray1<'py, bool>>,
    score: impl Fn(&PreparedQueries, &DocSet<'_, T>, ScoreOptions<'_>) -> maxsim_core::Result<Vec<f32>>
        + Sync,
) -> PyResult<Py<PyArray1<f32>>> {
    let n_docs = docs.len();
    let valid_offsets = group_offsets.len() == queries.len() + 1
        && group_offsets.first() == Some(&0)
        && group_offsets.last() == Some(&n_docs)
        && group_offsets.windows(2).all(|w| w[0] <= w[1]);
    if !valid_offsets {
        return Err(PyValueError::new_err(format!(
            "group_offsets: expected {} non-decreasing offsets from 0 to {n_docs} (one group per query), got {group_offsets:?}",
            queries.len() + 1
        )));
    }
    let floor = args::optional(zero_floor, "zero_floor")?;
    if let Some(f) = floor {
        if f.len() != n_docs {
            return Err(PyValueError::new_err(format!(
                "zero_floor: has {} entries for {n_docs} documents",
                f.len()
            )));
        }
    }
    let mut groups = Vec::with_capacity(queries.len());
    for (g, (query, bounds)) in queries.iter().zip(group_offsets.windows(2)).enumerate() {
        let (lo, hi, dim) = (bounds[0], bounds[1], query.shape()[1]);
        let mut doc_slices = Vec::with_capacity(hi - lo);
        for (j, doc) in docs.iter().enumerate().take(hi).skip(lo) {
            if doc.shape()[1] != dim {
                return Err(PyValueError::new_err(format!(
                    "docs[{j}]: dimension {} (shape {:?}) does not match queries[{g}]'s {dim}",
                    doc.shape()[1],
                    doc.shape()
                )));
            }
            doc_slices.push(args::list_slice(doc, "docs", j)?);
        }
        let set = DocSet::list(doc_slices, dim).map_err(to_py)?;
        let query_slice = args::list_slice(query, "queries", g)?;
        let prepared = PreparedQueries::new(&[query_slice], None, dim).map_err(to_py)?;
        groups.push((prepared, set, floor.map(|f| &f[lo..hi])));
    }
    // Groups run in parallel as well as the documents inside each (rayon
    // nests them): a rerank has a few large groups, `colbert_scores_pairwise`
    // many groups of one document. Each document's score is computed the same
    // way on any thread, so the result does not depend on the thread count.
    let per_group = py.detach(|| {
        maxsim_core::threads::install(|| {
            groups
                .par_iter()
                .map(|(query, set, zero_floor)| {
                    if set.is_empty() {
                        return Ok(Vec::new());
                    }
                    let options = ScoreOptions {
                        zero_floor: *zero_floor,
                    };
                    score(query, set, options)
                })
                .collect::<Vec<_>>()
        })
    });
    let mut scores = Vec::with_capacity(n_docs);
    for group_scores in per_group {
        scores.extend(group_scores.map_err(to_py)?);
    }
    Ok(PyArray1::from_vec(py, scores).unbind())
}

/// The common width of `docs` (a list or tuple) when every entry is an
/// aligned, C-contiguous float32 numpy array of shape `(len_i, width)` with `len_i >= 1`
/// and one `width >= 1`; `None` otherwise, and for an empty sequence.
///
/// The Python layer asks this first so that a list of ready arrays (thousands
/// of candidates per call in reranking) skips its per-document conversion and
/// checks, about 0.9 µs each; on `None` it converts and checks every entry,
/// naming the first bad one.
#[pyfunction]
fn ready_f32_list(docs: &Bound<'_, PyAny>) -> Option<usize> {
    common_kind(docs, |item| {
        let array = item.cast::<PyArray2<f32>>().ok()?;
        let shape = array.shape();
        // A view at an odd byte offset cannot be borrowed as `&[f32]`.
        let aligned = array.data().is_aligned();
        (aligned && array.is_c_contiguous() && shape[0] >= 1 && shape[1] >= 1).then_some(shape[1])
    })
}

/// `(dtype, width)` when every entry of `docs` (a list or tuple) is an
/// aligned, C-contiguous 2-D numpy array of one 16-bit float dtype, float16
/// or ml_dtypes bfloat16 (`dtype` is its name), in native byte order, of shape
/// `(len_i, width)` with `len_i >= 1` and one `width >= 1`; `None`
/// otherwise, and for an empty sequence: [`ready_f32_list`]'s question for
/// half documents, which `maxsim_half_list` then takes as they are.
#[pyfunction]
fn ready_half_list(docs: &Bound<'_, PyAny>) -> Option<(&'static str, usize)> {
    let (char, width) = common_kind(docs, |item| {
        let array = item.cast::<PyUntypedArray>().ok()?;
        let dtype = array.dtype();
        let half = dtype.itemsize() == 2
            && dtype.is_native_byteorder() != Some(false)
            && matches!(dtype.char(), args::FLOAT16_CHAR | args::BFLOAT16_CHAR);
        let ready = half && array.is_aligned() && array.is_c_contiguous();
        match array.shape() {
            &[n_tokens, width] if ready && n_tokens >= 1 && width >= 1 => {
                Some((dtype.char(), width))
            }
            _ => None,
        }
    })?;
    let name = if char == args::BFLOAT16_CHAR {
        "bfloat16"
    } else {
        "float16"
    };
    Some((name, width))
}

/// `kind_of` of every entry of `docs` (a list or tuple) when they all have
/// one and the same, else `None` (also for an empty sequence or another type).
fn common_kind<K: PartialEq>(
    docs: &Bound<'_, PyAny>,
    kind_of: impl Fn(&Bound<'_, PyAny>) -> Option<K>,
) -> Option<K> {
    fn common<'py, K: PartialEq>(
        mut items: impl Iterator<Item = Bound<'py, PyAny>>,
        kind_of: &impl Fn(&Bound<'_, PyAny>) -> Option<K>,
    ) -> Option<K> {
        let first = kind_of(&items.next()?)?;
        items
            .all(|item| kind_of(&item).as_ref() == Some(&first))
            .then_some(first)
    }
    if let Ok(list) = docs.cast::<PyList>() {
        common(list.iter(), &kind_of)
    } else if let Ok(tuple) = docs.cast::<PyTuple>() {
        common(tuple.iter(), &kind_of)
    } else {
        None
    }
}

/// Row-wise top-k of a `(n_rows, n)` float32 score matrix: `(scores, indices)`,
/// each `(n_rows, min(k, n))`, best first, ties to the lower index.
#[pyfunction]
fn topk_rows<'py>(
    py: Python<'py>,
    scores: PyReadonlyArray2<'py, f32>,
    k: i64,
) -> PyResult<(Py<PyArray2<f32>>, Py<PyArray2<i64>>)> {
    let k = args::at_least_one("k", k)?;
    let (data, rows, n) = args::matrix(&scores, "scores")?;
    let kept = k.min(n);
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
    Ok((
        args::into_2d(py, out_scores, rows, kept)?,
        args::into_2d(py, out_indices, rows, kept)?,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(maxsim_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_packed, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_list, m)?)?;
    m.add_function(wrap_pyfunction!(topk_rows, m)?)?;
    m.add_function(wrap_pyfunction!(ready_f32_list, m)?)?;
    m.add_function(wrap_pyfunction!(ready_half_list, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_list_groups, m)?)?;
    Ok(())
}
