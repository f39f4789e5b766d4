//! Errors of the index: bad arguments, I/O, corrupt or incompatible files.

use std::fmt;
use std::path::Path;

/// What went wrong; every variant's message names the argument, or the file
/// and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A bad argument (shape, id, option): Python `ValueError`.
    InvalidArgument(String),
    /// An id that is not in the index: Python `KeyError`.
    UnknownIds(String),
    /// The operating system refused a file operation: Python `OSError`.
    Io { path: String, message: String },
    /// A file named by the manifest does not exist: Python `FileNotFoundError`.
    Missing { path: String, message: String },
    /// A file fails its checksum, is truncated or malformed: Python `ValueError`.
    Corrupt {
        path: String,
        field: String,
        message: String,
    },
    /// Written by another format version: Python `ValueError`.
    Version {
        path: String,
        found: u64,
        supported: u64,
    },
    /// Another process holds the writer lock: Python `RuntimeError`.
    Locked(String),
    /// An error of the scoring core.
    Core(maxsim_core::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) | Error::UnknownIds(m) | Error::Locked(m) => f.write_str(m),
            Error::Io { path, message } | Error::Missing { path, message } => {
                write!(f, "{path}: {message}")
            }
            Error::Corrupt {
                path,
                field,
                message,
            } => write!(f, "{path}: {field}: {message}"),
            Error::Version {
                path,
                found,
                supported,
            } => write!(
                f,
                "{path}: version: format version {found} is not supported (this build reads versions 1 to {supported}); \
                 open it with the maxsim release that wrote it"
            ),
            Error::Core(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<maxsim_core::Error> for Error {
    fn from(e: maxsim_core::Error) -> Self {
        Error::Core(e)
    }
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An `Io` (or `Missing`, for a file that does not exist) error about `path`.
pub fn io_error(path: &Path, err: std::io::Error) -> Error {
    let path = path.display().to_string();
    let message = err.to_string();
    if err.kind() == std::io::ErrorKind::NotFound {
        Error::Missing { path, message }
    } else {
        Error::Io { path, message }
    }
}

/// A `Corrupt` error about `field` of `path`.
pub fn corrupt(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.display().to_string(),
        field: field.to_string(),
        message: message.into(),
    }
}

/// Shorthand for `Err(Error::InvalidArgument(format!(...)))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        Err($crate::error::Error::InvalidArgument(format!($($arg)*)))
    };
}
pub(crate) use invalid;
