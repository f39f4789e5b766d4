//! Bindings for the binary kernels (`maxsim.binary` wraps them).
//!
//! Codes arrive as C-contiguous `uint8` (the Python layer views `int8`
//! "binary" codes as `uint8` and says whether their top bits are flipped);
//! float16 arrives viewed as `uint16`. Everything runs with the GIL released.
//! Functions that take `impl_name` run a named Hamming implementation
//! (`portable`, `popcnt`, `avx2-pshufb`, `avx2-nibble-tables`, `avx512-vpopcntdq`,
//! `neon-vcnt`)
//! instead of the one the selected kernel implies; tests and benches use it.

use crate::args::{self, contiguous, into_2d};
use crate::errors::to_py;
use maxsim_core::binary::{self, Codes, DbFloat, F16Bits, HammingImpl, Positive};
use maxsim_core::DocSet;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

fn resolve_impl(name: Option<&str>) -> PyResult<HammingImpl> {
    match name {
        None => HammingImpl::selected().map_err(to_py),
        Some(name) => {
            let imp = HammingImpl::ALL
                .into_iter()
                .find(|i| i.name() == name)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "impl_name: unknown Hamming implementation {name:?}; expected one of {}",
                        HammingImpl::ALL.map(|i| i.name()).join(", ")
                    ))
                })?;
            if !imp.is_supported() {
                return Err(PyRuntimeError::new_err(format!(
                    "impl_name: {name:?} is not supported by this CPU"
                )));
            }
            Ok(imp)
        }
    }
}

fn rows<'a>(name: &str, array: &'a PyReadonlyArray2<'_, u8>) -> PyResult<Codes<'a>> {
    let (data, n, n_bytes) = args::matrix(array, name)?;
    Codes::rows(name, data, n, n_bytes).map_err(to_py)
}

/// `(n, dim)` values → `(n, ceil(dim / 8))` ubinary codes, with the GIL released.
fn quantize_rows<P: Positive>(
    py: Python<'_>,
    data: &[P],
    n: usize,
    dim: usize,
) -> PyResult<Py<PyArray2<u8>>> {
    let out = py
        .detach(|| binary::quantize_ubinary(data, n, dim))
        .map_err(to_py)?;
    into_2d(py, out, n, dim.div_ceil(8))
}

/// Names of the Hamming implementations this CPU runs, and the one in force.
#[pyfunction]
fn binary_impls() -> PyResult<(Vec<&'static str>, &'static str)> {
    let supported = HammingImpl::ALL
        .into_iter()
        .filter(|i| i.is_supported())
        .map(HammingImpl::name)
        .collect();
    Ok((supported, HammingImpl::selected().map_err(to_py)?.name()))
}

/// `(n, dim)` float32 → `(n, ceil(dim / 8))` ubinary codes.
#[pyfunction]
fn binary_quantize_f32<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
) -> PyResult<Py<PyArray2<u8>>> {
    let (data, n, dim) = args::matrix(&x, "x")?;
    quantize_rows(py, data, n, dim)
}

/// `(n, dim)` float64 → ubinary codes.
#[pyfunction]
fn binary_quantize_f64<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
) -> PyResult<Py<PyArray2<u8>>> {
    let (data, n, dim) = args::matrix(&x, "x")?;
    quantize_rows(py, data, n, dim)
}

/// `(n, dim)` float16 (viewed as uint16) → ubinary codes.
#[pyfunction]
fn binary_quantize_f16<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, u16>,
) -> PyResult<Py<PyArray2<u8>>> {
    let (data, n, dim) = args::matrix(&x, "x")?;
    quantize_rows(py, F16Bits::from_bits_slice(data), n, dim)
}

/// `(n, n_bytes)` codes → the interleaved word layout (1-D uint64).
#[pyfunction]
fn binary_interleave<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray2<'py, u8>,
) -> PyResult<Py<PyArray1<u64>>> {
    let (data, n, n_bytes) = args::matrix(&codes, "codes")?;
    let out = py
        .detach(|| binary::interleave(data, n, n_bytes))
        .map_err(to_py)?;
    Ok(PyArray1::from_vec(py, out).unbind())
}

/// All pairwise Hamming distances, `(n_a, n_b)` int32.
#[pyfunction]
#[pyo3(signature = (a, b, impl_name=None))]
fn binary_hamming<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, u8>,
    b: PyReadonlyArray2<'py, u8>,
    impl_name: Option<&str>,
) -> PyResult<Py<PyArray2<i32>>> {
    let imp = resolve_impl(impl_name)?;
    let (ca, cb) = (rows("a_codes", &a)?, rows("b_codes", &b)?);
    let out = py
        .detach(|| binary::hamming_with(imp, &ca, &cb))
        .map_err(to_py)?;
    into_2d(py, out, ca.len(), cb.len())
}

/// Builds the database codes from either row-major codes or interleaved words.
fn database<'a>(
    db: &'a Option<PyReadonlyArray2<'_, u8>>,
    words: &'a Option<PyReadonlyArray1<'_, u64>>,
    n: usize,
    n_bytes: usize,
) -> PyResult<Codes<'a>> {
    match (db, words) {
        (Some(db), None) => rows("db_codes", db),
        (None, Some(words)) => {
            Codes::interleaved("db_codes", contiguous(words, "db_words")?, n, n_bytes)
                .map_err(to_py)
        }
        _ => Err(PyValueError::new_err(
            "pass exactly one of db_codes and db_words",
        )),
    }
}

type Neighbors = (Py<PyArray2<i32>>, Py<PyArray2<i64>>);

/// Exact Hamming k-NN: `(distances int32, indices int64)`, each `(n_queries, min(k, n))`.
/// The database is `db_codes` (`(n, n_bytes)` uint8) or `db_words` (interleaved, with `n`, `n_bytes`).
#[pyfunction]
#[pyo3(signature = (query_codes, k, db_codes=None, db_words=None, n=0, n_bytes=0, impl_name=None))]
#[allow(clippy::too_many_arguments)]
fn binary_search<'py>(
    py: Python<'py>,
    query_codes: PyReadonlyArray2<'py, u8>,
    k: i64,
    db_codes: Option<PyReadonlyArray2<'py, u8>>,
    db_words: Option<PyReadonlyArray1<'py, u64>>,
    n: usize,
    n_bytes: usize,
    impl_name: Option<&str>,
) -> PyResult<Neighbors> {
    let k = args::at_least_one("k", k)?;
    let imp = resolve_impl(impl_name)?;
    let q = rows("query_codes", &query_codes)?;
    let db = database(&db_codes, &db_words, n, n_bytes)?;
    let res = py
        .detach(|| binary::search_with(imp, &q, &db, k))
        .map_err(to_py)?;
    Ok((
        into_2d(py, res.distances, q.len(), res.k)?,
        into_2d(py, res.indices, q.len(), res.k)?,
    ))
}

type Scored = (Py<PyArray2<f32>>, Py<PyArray2<i64>>);

/// Hamming candidates (`k × rescore_multiplier`) rescored against the float
/// query: `(scores float32, indices int64)`, best first. `flipped`: the
/// database codes are `binary` (int8 viewed as uint8). At most one of
/// `db_f32`, `db_f16` (uint16 view) and `db_i8` gives stored vectors.
#[pyfunction]
#[pyo3(signature = (query, k, rescore_multiplier, flipped=false, db_codes=None, db_words=None, n=0, n_bytes=0,
                    db_f32=None, db_f16=None, db_i8=None, impl_name=None))]
#[allow(clippy::too_many_arguments)]
fn binary_search_rescore<'py>(
    py: Python<'py>,
    query: PyReadonlyArray2<'py, f32>,
    k: i64,
    rescore_multiplier: i64,
    flipped: bool,
    db_codes: Option<PyReadonlyArray2<'py, u8>>,
    db_words: Option<PyReadonlyArray1<'py, u64>>,
    n: usize,
    n_bytes: usize,
    db_f32: Option<PyReadonlyArray2<'py, f32>>,
    db_f16: Option<PyReadonlyArray2<'py, u16>>,
    db_i8: Option<PyReadonlyArray2<'py, i8>>,
    impl_name: Option<&str>,
) -> PyResult<Scored> {
    let k = args::at_least_one("k", k)?;
    let rescore_multiplier = args::at_least_one("rescore_multiplier", rescore_multiplier)?;
    let imp = resolve_impl(impl_name)?;
    let db = database(&db_codes, &db_words, n, n_bytes)?;
    let (q, n_queries, dim) = args::matrix(&query, "query")?;
    let f16_bits: Option<&[F16Bits]> =
        args::optional(&db_f16, "db_float")?.map(F16Bits::from_bits_slice);
    let db_float = match (&db_f32, &f16_bits, &db_i8) {
        (None, None, None) => None,
        (Some(a), None, None) => Some(DbFloat::F32(contiguous(a, "db_float")?)),
        (None, Some(bits), None) => Some(DbFloat::F16(bits)),
        (None, None, Some(a)) => Some(DbFloat::I8(contiguous(a, "db_float")?)),
        _ => {
            return Err(PyValueError::new_err(
                "db_float: pass at most one of db_f32, db_f16, db_i8",
            ))
        }
    };
    let res = py
        .detach(|| {
            binary::search_rescore_with(
                imp,
                q,
                dim,
                &db,
                flipped,
                (k, rescore_multiplier),
                db_float,
            )
        })
        .map_err(to_py)?;
    Ok((
        into_2d(py, res.scores, n_queries, res.k)?,
        into_2d(py, res.indices, n_queries, res.k)?,
    ))
}

fn query_slices<'a>(
    queries: &'a [Bound<'_, PyArray2<u8>>],
    n_bytes: usize,
) -> PyResult<Vec<&'a [u8]>> {
    args::row_slices(queries, n_bytes, "query_codes", |i, shape| {
        format!(
            "query_codes[{i}]: codes of {} bytes (shape {shape:?}) do not match the documents' {n_bytes} bytes",
            shape[1]
        )
    })
}

fn run_maxsim(
    py: Python<'_>,
    queries: &[Bound<'_, PyArray2<u8>>],
    docs: DocSet<'_, u8>,
    dim: Option<usize>,
    impl_name: Option<&str>,
) -> PyResult<Py<PyArray2<i32>>> {
    let imp = resolve_impl(impl_name)?;
    let slices = query_slices(queries, docs.dim())?;
    let n_docs = docs.len();
    let out = py
        .detach(|| binary::maxsim_scores_batch_with(imp, &slices, &docs, dim))
        .map_err(to_py)?;
    into_2d(py, out, slices.len(), n_docs)
}

/// Binary MaxSim against fixed-length documents `(n_docs, doc_len, n_bytes)`:
/// `(n_queries, n_docs)` int32.
#[pyfunction]
#[pyo3(signature = (queries, docs, dim=None, impl_name=None))]
fn binary_maxsim_fixed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, u8>,
    docs: PyReadonlyArray3<'py, u8>,
    dim: Option<usize>,
    impl_name: Option<&str>,
) -> PyResult<Py<PyArray2<i32>>> {
    let set = args::fixed_docs(&docs, "docs_codes")?;
    run_maxsim(py, &queries, set, dim, impl_name)
}

/// Binary MaxSim against packed documents: `flat` `(total_tokens, n_bytes)`, `offsets` int64.
#[pyfunction]
#[pyo3(signature = (queries, flat, offsets, dim=None, impl_name=None))]
fn binary_maxsim_packed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, u8>,
    flat: PyReadonlyArray2<'py, u8>,
    offsets: PyReadonlyArray1<'py, i64>,
    dim: Option<usize>,
    impl_name: Option<&str>,
) -> PyResult<Py<PyArray2<i32>>> {
    let set = args::packed_docs(&flat, &offsets, ("docs_codes.flat", "docs_codes.offsets"))?;
    run_maxsim(py, &queries, set, dim, impl_name)
}

/// Binary MaxSim against a list of `(len_i, n_bytes)` documents.
#[pyfunction]
#[pyo3(signature = (queries, docs, n_bytes, dim=None, impl_name=None))]
fn binary_maxsim_list<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, u8>,
    docs: args::ArrayList2<'py, u8>,
    n_bytes: usize,
    dim: Option<usize>,
    impl_name: Option<&str>,
) -> PyResult<Py<PyArray2<i32>>> {
    let set = args::list_docs(&docs, n_bytes, "docs_codes", |i, shape| {
        format!(
            "docs_codes[{i}]: codes of {} bytes (shape {shape:?}) do not match {n_bytes} bytes",
            shape[1]
        )
    })?;
    run_maxsim(py, &queries, set, dim, impl_name)
}

/// Single-thread Hamming throughput (GB/s of compared code bytes) of an
/// implementation on an L1-resident tile: the kernel's ceiling on this CPU.
/// Runs about `seconds` with the GIL released.
#[pyfunction]
#[pyo3(signature = (impl_name=None, n_bytes=64, seconds=0.5))]
fn binary_l1_peak_gbps(
    py: Python<'_>,
    impl_name: Option<&str>,
    n_bytes: usize,
    seconds: f64,
) -> PyResult<f64> {
    let imp = resolve_impl(impl_name)?;
    py.detach(|| binary::l1_scan_gbps(imp, n_bytes, seconds))
        .map_err(to_py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(binary_impls, m)?)?;
    m.add_function(wrap_pyfunction!(binary_quantize_f32, m)?)?;
    m.add_function(wrap_pyfunction!(binary_quantize_f64, m)?)?;
    m.add_function(wrap_pyfunction!(binary_quantize_f16, m)?)?;
    m.add_function(wrap_pyfunction!(binary_interleave, m)?)?;
    m.add_function(wrap_pyfunction!(binary_hamming, m)?)?;
    m.add_function(wrap_pyfunction!(binary_search, m)?)?;
    m.add_function(wrap_pyfunction!(binary_search_rescore, m)?)?;
    m.add_function(wrap_pyfunction!(binary_maxsim_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(binary_maxsim_packed, m)?)?;
    m.add_function(wrap_pyfunction!(binary_maxsim_list, m)?)?;
    m.add_function(wrap_pyfunction!(binary_l1_peak_gbps, m)?)?;
    Ok(())
}
