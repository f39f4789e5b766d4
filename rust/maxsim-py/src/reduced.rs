//! Reduced-precision bindings: float16 / bfloat16 documents (passed as their
//! uint16 bits) in fixed, packed and list layouts; int8 packed documents with
//! per-token scales; the int8 quantizer and the 16-bit narrowing used by
//! `maxsim.quantize`; and the per-dtype kernel description for `maxsim.info()`.

use crate::args::{self, Queries};
use crate::errors::to_py;
use maxsim_core::reduced::{self, bf16, f16, HalfFloat, HalfFormat, Int8Docs};
use maxsim_core::{dispatch, DocSet};
use numpy::{
    PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArray3, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

/// `bits` viewed as documents of the half type `T` (same layout).
fn typed<'a, T: HalfFloat>(bits: &DocSet<'a, u16>) -> DocSet<'a, T> {
    match bits {
        DocSet::Fixed {
            data,
            n_docs,
            doc_len,
            dim,
        } => DocSet::Fixed {
            data: T::from_bits_slice(data),
            n_docs: *n_docs,
            doc_len: *doc_len,
            dim: *dim,
        },
        DocSet::Packed { data, offsets, dim } => DocSet::Packed {
            data: T::from_bits_slice(data),
            offsets,
            dim: *dim,
        },
        DocSet::List { docs, dim } => DocSet::List {
            docs: docs.iter().map(|d| T::from_bits_slice(d)).collect(),
            dim: *dim,
        },
    }
}

/// Scores half documents given as a `DocSet` over raw bits.
fn run_half(
    py: Python<'_>,
    queries: Queries<'_>,
    bits: DocSet<'_, u16>,
    bf16: bool,
    zero_floor: Option<PyReadonlyArray1<'_, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let prepared = queries.prepare(bits.dim())?;
    let (n_queries, n_docs) = (prepared.n_queries(), bits.len());
    args::score_matrix(py, n_queries, n_docs, &zero_floor, |options| {
        if bf16 {
            reduced::maxsim_half_batch(&prepared, &typed::<bf16>(&bits), options)
        } else {
            reduced::maxsim_half_batch(&prepared, &typed::<f16>(&bits), options)
        }
    })
}

/// Scores float32 queries against fixed-length 16-bit documents
/// `(n_docs, doc_len, d)` uint16 bits (`bf16` selects bfloat16, else float16).
#[pyfunction]
#[pyo3(signature = (queries, docs, bf16, queries_mask=None, zero_floor=None))]
fn maxsim_half_fixed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    docs: PyReadonlyArray3<'py, u16>,
    bf16: bool,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let set = args::fixed_docs(&docs, "docs")?;
    let queries = Queries::new(queries, queries_mask);
    run_half(py, queries, set, bf16, zero_floor)
}

/// Scores against packed 16-bit documents: `flat` `(total_tokens, d)` uint16
/// bits and `offsets` `(n_docs + 1,)` int64.
#[pyfunction]
#[pyo3(signature = (queries, flat, offsets, bf16, queries_mask=None, zero_floor=None))]
fn maxsim_half_packed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    flat: PyReadonlyArray2<'py, u16>,
    offsets: PyReadonlyArray1<'py, i64>,
    bf16: bool,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let set = args::packed_docs(&flat, &offsets, ("flat", "offsets"))?;
    let queries = Queries::new(queries, queries_mask);
    run_half(py, queries, set, bf16, zero_floor)
}

/// Scores against a list of `(len_i, d)` 16-bit documents: float16 or
/// bfloat16 arrays as they are, or their uint16 bits ([`args::half_arrays`]).
#[pyfunction]
#[pyo3(signature = (queries, docs, dim, bf16, queries_mask=None, zero_floor=None))]
fn maxsim_half_list<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    docs: args::UntypedList<'py>,
    dim: usize,
    bf16: bool,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let docs = args::half_arrays(docs, bf16, "docs")?;
    let set = args::list_docs(&docs, dim, "docs", args::doc_dim_mismatch(dim))?;
    let queries = Queries::new(queries, queries_mask);
    run_half(py, queries, set, bf16, zero_floor)
}

/// `maxsim_list_groups` for 16-bit documents (as in [`maxsim_half_list`]; `bf16` selects
/// bfloat16, else float16): query `g` against `docs[group_offsets[g]..
/// group_offsets[g + 1]]` only, every group in one call. Returns
/// `(len(docs),)` float32. `maxsim.pylate.rerank` uses it for float16
/// candidates, which it would otherwise convert to float32 one by one.
#[pyfunction]
#[pyo3(signature = (queries, docs, group_offsets, bf16, zero_floor=None))]
fn maxsim_half_list_groups<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    docs: args::UntypedList<'py>,
    group_offsets: Vec<usize>,
    bf16: bool,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray1<f32>>> {
    let docs = args::half_arrays(docs, bf16, "docs")?;
    crate::float::score_groups(
        py,
        &queries,
        &docs,
        &group_offsets,
        &zero_floor,
        |query, bits, options| {
            if bf16 {
                reduced::maxsim_half_batch(query, &typed::<bf16>(bits), options)
            } else {
                reduced::maxsim_half_batch(query, &typed::<f16>(bits), options)
            }
        },
    )
}

/// Scores float32 queries (quantized per token on the fly) against packed
/// int8 documents: `codes` `(total_tokens, d)` int8, `scales` `(total_tokens,)`
/// float32, `offsets` `(n_docs + 1,)` int64.
#[pyfunction]
#[pyo3(signature = (queries, codes, scales, offsets, queries_mask=None, zero_floor=None))]
fn maxsim_int8_packed<'py>(
    py: Python<'py>,
    queries: args::ArrayList2<'py, f32>,
    codes: PyReadonlyArray2<'py, i8>,
    scales: PyReadonlyArray1<'py, f32>,
    offsets: PyReadonlyArray1<'py, i64>,
    queries_mask: Option<args::ArrayList1<'py, bool>>,
    zero_floor: Option<PyReadonlyArray1<'py, bool>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let (code_slice, _, dim) = args::matrix(&codes, "codes")?;
    let scale_slice = args::contiguous(&scales, "scales")?;
    let offs = args::contiguous(&offsets, "offsets")?;
    let docs = Int8Docs::packed(code_slice, scale_slice, offs, dim).map_err(to_py)?;
    let q = Queries::new(queries, queries_mask).quantize(dim)?;
    let (n_queries, n_docs) = (q.n_queries(), docs.len());
    args::score_matrix(py, n_queries, n_docs, &zero_floor, |options| {
        reduced::maxsim_int8_batch(&q, &docs, options)
    })
}

/// Per-token symmetric int8 quantization of `(n, d)` float32 rows:
/// returns `(codes (n, d) int8, scales (n,) float32)`.
#[pyfunction]
fn quantize_int8<'py>(
    py: Python<'py>,
    flat: PyReadonlyArray2<'py, f32>,
) -> PyResult<(Py<PyArray2<i8>>, Py<PyArray1<f32>>)> {
    let (data, n, dim) = args::matrix(&flat, "docs")?;
    // numpy allocates the outputs (zeroed, with huge pages for large arrays),
    // not a Vec: a fresh Vec of tens of MB spent a third of the call in page faults.
    let codes = PyArray2::<i8>::zeros(py, [n, dim], false);
    let scales = PyArray1::<f32>::zeros(py, [n], false);
    // SAFETY: the arrays are new, C-contiguous and not yet shared with Python
    // or any other Rust reference: these are the only views of the buffers.
    let (codes_out, scales_out) = unsafe { (codes.as_slice_mut()?, scales.as_slice_mut()?) };
    py.detach(|| reduced::quantize_int8_into(data, dim, codes_out, scales_out))
        .map_err(to_py)?;
    Ok((codes.unbind(), scales.unbind()))
}

/// float32 → float16 (`bf16 = False`) or bfloat16 bits, same shape, round to
/// nearest even. Raises ValueError if a finite value overflows the format.
#[pyfunction]
fn to_half_bits<'py>(
    py: Python<'py>,
    values: PyReadonlyArrayDyn<'py, f32>,
    bf16: bool,
) -> PyResult<Py<PyArrayDyn<u16>>> {
    let shape = values.shape().to_vec();
    let data = args::contiguous(&values, "docs")?;
    let format = if bf16 {
        HalfFormat::Bf16
    } else {
        HalfFormat::F16
    };
    // numpy allocates the output (zeroed, with huge pages for large arrays),
    // not a Vec: a fresh Vec of tens of MB spent a third of the call in page faults.
    let bits = PyArrayDyn::<u16>::zeros(py, shape, false);
    // SAFETY: the array is new, C-contiguous and not yet shared with Python
    // or any other Rust reference: this is the only view of the buffer.
    let out = unsafe { bits.as_slice_mut()? };
    py.detach(|| reduced::to_half_bits(data, out, format))
        .map_err(to_py)?;
    Ok(bits.unbind())
}

/// `[(dtype, implementation)]` for the kernel in force.
#[pyfunction]
fn reduced_paths() -> PyResult<Vec<(&'static str, String)>> {
    reduced::reduced_paths(dispatch::selected_kernel().map_err(to_py)?).map_err(to_py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(maxsim_half_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_half_packed, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_half_list, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_half_list_groups, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_int8_packed, m)?)?;
    m.add_function(wrap_pyfunction!(quantize_int8, m)?)?;
    m.add_function(wrap_pyfunction!(to_half_bits, m)?)?;
    m.add_function(wrap_pyfunction!(reduced_paths, m)?)?;
    Ok(())
}
