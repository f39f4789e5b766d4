//! Argument handling shared by the bindings: borrowing numpy buffers,
//! building document layouts, float32 queries, and returning result matrices.

use crate::errors::to_py;
use maxsim_core::float::{PreparedQueries, ScoreOptions};
use maxsim_core::reduced::Int8Queries;
use maxsim_core::DocSet;
use numpy::ndarray::Dimension;
use numpy::{
    Element, PyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray,
    PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Borrows a C-contiguous, aligned array's buffer (the Python layer
/// guarantees both, copying when needed; this is the backstop for direct callers).
pub fn contiguous<'a, T: Element, D: Dimension>(
    array: &'a PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<&'a [T]> {
    let error = || PyValueError::new_err(format!("{name}: must be C-contiguous and aligned"));
    // `as_slice` also accepts Fortran order, whose buffer is the transpose.
    if !array.is_c_contiguous() {
        return Err(error());
    }
    array.as_slice().map_err(|_| error())
}

/// Borrows an optional array's buffer.
pub fn optional<'a, T: Element, D: Dimension>(
    array: &'a Option<PyReadonlyArray<'_, T, D>>,
    name: &str,
) -> PyResult<Option<&'a [T]>> {
    array.as_ref().map(|a| contiguous(a, name)).transpose()
}

/// Borrows a 2-D array's buffer with its `(rows, cols)`.
pub fn matrix<'a, T: Element>(
    array: &'a PyReadonlyArray2<'_, T>,
    name: &str,
) -> PyResult<(&'a [T], usize, usize)> {
    let (rows, cols) = (array.shape()[0], array.shape()[1]);
    Ok((contiguous(array, name)?, rows, cols))
}

/// A list argument of 2-D arrays, taken without numpy's borrow table (see [`list_slice`]).
pub type ArrayList2<'py, T> = Vec<Bound<'py, PyArray2<T>>>;
/// A list argument of 1-D arrays, taken without numpy's borrow table (see [`list_slice`]).
pub type ArrayList1<'py, T> = Vec<Bound<'py, PyArray1<T>>>;

/// A list argument of 16-bit float arrays of any of the dtypes
/// [`half_arrays`] accepts, before that check.
pub type UntypedList<'py> = Vec<Bound<'py, PyUntypedArray>>;

/// numpy's type characters of float16, of ml_dtypes' bfloat16 and of uint16.
pub const FLOAT16_CHAR: u8 = b'e';
pub const BFLOAT16_CHAR: u8 = b'E';
const UINT16_CHAR: u8 = b'H';

/// The entries of a list argument `name` of 16-bit documents as arrays of
/// their uint16 bits, without copying: each must be 2-D in native byte order
/// and hold float16 (`bf16 == false`) or ml_dtypes bfloat16 (`bf16 == true`)
/// values, or uint16 bits of them (what the Python layer passes for torch
/// tensors). Taking the float arrays as they are saves a numpy view per
/// document (about a microsecond each, thousands per rerank).
pub fn half_arrays<'py>(
    arrays: UntypedList<'py>,
    bf16: bool,
    name: &str,
) -> PyResult<ArrayList2<'py, u16>> {
    let (float_char, float_name) = if bf16 {
        (BFLOAT16_CHAR, "bfloat16")
    } else {
        (FLOAT16_CHAR, "float16")
    };
    arrays
        .into_iter()
        .enumerate()
        .map(|(i, array)| {
            let dtype = array.dtype();
            let element_ok = dtype.itemsize() == 2
                && dtype.is_native_byteorder() != Some(false)
                && (dtype.char() == float_char || dtype.char() == UINT16_CHAR);
            if array.ndim() != 2 || !element_ok {
                return Err(PyTypeError::new_err(format!(
                    "{name}[{i}]: expected a 2-D {float_name} array (or its uint16 bits) in \
                     native byte order, got shape {:?} dtype {dtype}",
                    array.shape()
                )));
            }
            // SAFETY: a `PyArray2<u16>` is a numpy array object like any other;
            // its type parameters only say how its buffer is read, and the
            // checks above make reading it as 2-D uint16 exact: two
            // dimensions, 2-byte elements in native order, each element's
            // bits read as they are stored. maxsim only reads these arrays'
            // shape, flags and buffer (through [`list_slice`]), never their
            // dtype, and never writes to them.
            Ok(unsafe { array.cast_into_unchecked::<PyArray2<u16>>() })
        })
        .collect()
}

/// The buffer of entry `i` of a list argument `name`, which must be
/// C-contiguous and aligned (the Python layer guarantees both, copying when
/// needed; this is the backstop for direct callers).
///
/// Entries are not borrowed through numpy's borrow table, as single arrays
/// are: it checks each new borrow against every earlier borrow of views of
/// the same base, which is quadratic in a list of views of one array (the
/// rows of a 3-D array, `np.split` of a packed matrix), so borrowing a long
/// list would cost more than scoring it.
pub fn list_slice<'a, T: Element, D: Dimension>(
    array: &'a Bound<'_, PyArray<T, D>>,
    name: &str,
    i: usize,
) -> PyResult<&'a [T]> {
    if !(array.is_c_contiguous() && array.is_aligned()) {
        return Err(PyValueError::new_err(format!(
            "{name}[{i}]: must be C-contiguous and aligned"
        )));
    }
    // SAFETY: the caller holds `array` (a strong reference) for as long as the
    // slice lives, so the buffer stays allocated; it is C-contiguous and aligned
    // (checked above) and only read. A concurrent write from another thread
    // would be a data race, and the caller must not make one, as with any numpy
    // function that releases the GIL: the shared borrow this replaces never
    // excluded such writes either (numpy itself and Python code ignore the
    // borrow table), only other Rust code's borrows, and maxsim never takes a
    // writable borrow of an array it was given.
    unsafe { array.as_slice() }.map_err(|_| {
        PyValueError::new_err(format!("{name}[{i}]: must be C-contiguous and aligned"))
    })
}

/// The buffers of a list of `(len_i, width)` arrays, in order; an array of
/// another width raises `ValueError(mismatch(i, shape))`.
pub fn row_slices<'a, T: Element>(
    arrays: &'a [Bound<'_, PyArray2<T>>],
    width: usize,
    name: &str,
    mismatch: impl Fn(usize, &[usize]) -> String,
) -> PyResult<Vec<&'a [T]>> {
    let mut slices = Vec::with_capacity(arrays.len());
    for (i, a) in arrays.iter().enumerate() {
        if a.shape()[1] != width {
            return Err(PyValueError::new_err(mismatch(i, a.shape())));
        }
        slices.push(list_slice(a, name, i)?);
    }
    Ok(slices)
}

/// Fixed-length documents from a `(n_docs, doc_len, width)` array.
pub fn fixed_docs<'a, T: Element>(
    docs: &'a PyReadonlyArray3<'_, T>,
    name: &str,
) -> PyResult<DocSet<'a, T>> {
    let shape = docs.shape().to_vec();
    let data = contiguous(docs, name)?;
    DocSet::fixed(data, shape[0], shape[1], shape[2]).map_err(to_py)
}

/// Packed documents: `flat` `(total_tokens, width)` and `offsets`
/// `(n_docs + 1,)` int64, borrowed under `names = (flat, offsets)`.
pub fn packed_docs<'a, T: Element>(
    flat: &'a PyReadonlyArray2<'_, T>,
    offsets: &'a PyReadonlyArray1<'_, i64>,
    names: (&str, &str),
) -> PyResult<DocSet<'a, T>> {
    let (data, _, width) = matrix(flat, names.0)?;
    let offs = contiguous(offsets, names.1)?;
    DocSet::packed(data, offs, width).map_err(to_py)
}

/// A list of `(len_i, width)` documents (see [`row_slices`]).
pub fn list_docs<'a, T: Element>(
    docs: &'a [Bound<'_, PyArray2<T>>],
    width: usize,
    name: &str,
    mismatch: impl Fn(usize, &[usize]) -> String,
) -> PyResult<DocSet<'a, T>> {
    DocSet::list(row_slices(docs, width, name, mismatch)?, width).map_err(to_py)
}

/// The message for a `docs[i]` list entry whose dimension is not `dim`.
pub fn doc_dim_mismatch(dim: usize) -> impl Fn(usize, &[usize]) -> String {
    move |i, shape| {
        format!(
            "docs[{i}]: dimension {} (shape {shape:?}) does not match {dim}",
            shape[1]
        )
    }
}

/// Float32 queries (`(nq_i, d)` each) and optional masks, borrowed.
pub struct Queries<'py> {
    arrays: ArrayList2<'py, f32>,
    masks: Option<ArrayList1<'py, bool>>,
}

impl<'py> Queries<'py> {
    pub fn new(arrays: ArrayList2<'py, f32>, masks: Option<ArrayList1<'py, bool>>) -> Self {
        Queries { arrays, masks }
    }

    /// The queries' and masks' buffers, checking each query is `dim` wide.
    fn slices(&self, dim: usize) -> PyResult<(Vec<&[f32]>, Option<Vec<&[bool]>>)> {
        let slices = row_slices(&self.arrays, dim, "queries", |i, shape| {
            format!(
                "queries[{i}]: dimension {} (shape {shape:?}) does not match the documents' dimension {dim}",
                shape[1]
            )
        })?;
        let masks = match &self.masks {
            None => None,
            Some(m) => Some(
                m.iter()
                    .enumerate()
                    .map(|(i, m)| list_slice(m, "queries_mask", i))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
        };
        Ok((slices, masks))
    }

    /// Prepares the queries for float scoring against `dim`-wide documents.
    pub fn prepare(&self, dim: usize) -> PyResult<PreparedQueries> {
        let (slices, masks) = self.slices(dim)?;
        PreparedQueries::new(&slices, masks.as_deref(), dim).map_err(to_py)
    }

    /// Quantizes the queries for int8 scoring against `dim`-wide documents.
    pub fn quantize(&self, dim: usize) -> PyResult<Int8Queries> {
        let (slices, masks) = self.slices(dim)?;
        Int8Queries::quantize(&slices, masks.as_deref(), dim).map_err(to_py)
    }
}

/// Runs `score` with the GIL released, with `zero_floor` (borrowed) as its
/// options, and returns its `n_queries × n_docs` scores as a 2-D array.
pub fn score_matrix(
    py: Python<'_>,
    n_queries: usize,
    n_docs: usize,
    zero_floor: &Option<PyReadonlyArray1<'_, bool>>,
    score: impl Send + FnOnce(ScoreOptions<'_>) -> maxsim_core::Result<Vec<f32>>,
) -> PyResult<Py<PyArray2<f32>>> {
    let options = ScoreOptions {
        zero_floor: optional(zero_floor, "zero_floor")?,
    };
    let out = py.detach(|| score(options)).map_err(to_py)?;
    into_2d(py, out, n_queries, n_docs)
}

/// `data` (row-major) as a `(rows, cols)` array.
pub fn into_2d<T: Element>(
    py: Python<'_>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Py<PyArray2<T>>> {
    Ok(PyArray1::from_vec(py, data).reshape([rows, cols])?.unbind())
}

/// A count argument (`k`, `rescore_multiplier`) that must be at least 1.
pub fn at_least_one(name: &str, value: i64) -> PyResult<usize> {
    if value < 1 {
        return Err(PyValueError::new_err(format!(
            "{name}: must be at least 1, got {value}"
        )));
    }
    Ok(value as usize)
}
