//! `maxsim-index`: a compressed, memory-mapped, updatable multi-vector index
//! (PLAID / WARP family) with exact rerank on maxsim's kernels.
//!
//! - [`Index`]: create / open a folder, `train`, `add`, `delete`, `compact`;
//!   one writer (lock file), many readers, atomic commits;
//! - [`Snapshot::search`]: the pipeline of [`search`], with subsets,
//!   exact rerank and the certificate of [`certify`]; without exact rerank,
//!   candidates are scored on the residual codes of [`codec`] (product
//!   quantization: from per-query lookup tables);
//! - on disk: a versioned manifest ([`manifest`]) naming immutable
//!   sectioned files with checksums ([`mod@file`]): training, segments
//!   ([`segment`], [`reader`]), stores, tombstones.
//!
//! All scoring is `maxsim-core`'s; this crate adds the files and the pipeline.

mod candidates;
pub mod certify;
pub mod codec;
pub mod error;
pub mod file;
pub mod ids;
pub mod index;
pub mod kmeans;
mod lut;
pub mod manifest;
pub mod reader;
mod rescore;
pub mod rng;
pub mod search;
pub mod segment;
pub mod snapshot;

pub use error::{Error, Result};
pub use ids::{DocId, IdKind};
pub use index::{CreateOptions, Index, Stats};
pub use manifest::StoreKind;
pub use search::{Allowed, Hits, SearchParams};
pub use snapshot::Snapshot;

/// A fresh, empty folder under the system temp dir, for tests.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "maxsim-index-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
