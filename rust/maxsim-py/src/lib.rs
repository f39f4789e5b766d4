//! `maxsim._native`: the pyo3 extension over `maxsim-core`.
//!
//! Functions here take already-validated numpy arrays (the Python layer in
//! `python/maxsim/` converts torch tensors, dtypes and layouts first), borrow
//! their buffers without copying, release the GIL and run on the core's rayon
//! pool. The core re-checks every shape and offset, so a bad call from Python
//! code that skips the wrapper still gets a `ValueError`, never a crash.

// pyo3 signatures spell out tuples of numpy arrays; naming each one would
// hide what Python receives.
#![allow(clippy::type_complexity)]

use pyo3::prelude::*;

mod args;
mod binary;
mod errors;
mod float;
mod index;
mod reduced;
mod runtime;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    runtime::register(m)?;
    float::register(m)?;
    binary::register(m)?;
    reduced::register(m)?;
    index::register(m)?;
    Ok(())
}
