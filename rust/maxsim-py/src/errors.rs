//! Maps core errors to Python exceptions.

use maxsim_core::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;

/// `InvalidArgument` → `ValueError`; `Unsupported` → `RuntimeError`.
pub fn to_py(err: Error) -> PyErr {
    match err {
        Error::InvalidArgument(msg) => PyValueError::new_err(msg),
        Error::Unsupported(msg) => PyRuntimeError::new_err(msg),
    }
}
