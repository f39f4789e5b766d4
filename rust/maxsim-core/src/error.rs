//! Error type shared by every entry point of the core crate.

use std::fmt;

/// What went wrong, with a message that names the offending argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A shape, length, offset or value is not acceptable (maps to Python `ValueError`).
    InvalidArgument(String),
    /// The request is well formed but this CPU or build cannot serve it
    /// (for example `MAXSIM_KERNEL=avx512` on a CPU without AVX-512).
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(msg) | Error::Unsupported(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for `Err(Error::InvalidArgument(format!(...)))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        Err($crate::error::Error::InvalidArgument(format!($($arg)*)))
    };
}
pub(crate) use invalid;
