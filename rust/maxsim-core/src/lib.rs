//! `maxsim-core`: fused SIMD MaxSim (late-interaction) scoring.
//!
//! For a query `Q` (`nq × d`) and a document `D` (`nd × d`) the score is
//! `Σ_i max_j ⟨q_i, d_j⟩` — plain dot products, no normalisation (callers
//! normalise, as PyLate, ColBERT and maxsim-cpu expect).
//!
//! Layout of the crate (modelled on `memchr`):
//! - [`vector`]: the small SIMD vocabulary (`F32Vec`) that portable algorithms are written in;
//! - [`float`]: the portable register-blocked MaxSim algorithm and the parallel drivers;
//! - `arch::{portable, x86_64::{avx2, avx512, amx}, aarch64::neon}`: one folder
//!   per ISA, each implementing the vocabulary, instantiating the algorithms
//!   under `#[target_feature]` and returning its kernel table;
//! - [`dispatch`]: CPU features and environment (`dispatch::cpu`), probed once,
//!   and one table of function pointers per kernel family, built once;
//! - [`threads`]: the rayon pool and its size;
//! - [`topk`]: best-first selection with ties going to the lower index.
//!
//! Nothing here depends on Python; the `maxsim-py` crate wraps it.

pub mod arch;
pub mod binary;
pub mod dispatch;
pub mod docs;
pub mod error;
pub mod float;
pub mod peak;
pub mod reduced;
pub mod reference;
pub mod threads;
pub mod topk;
pub mod vector;

pub use dispatch::{cpu_features, selected_kernel, set_kernel, Kernel, KernelTable};
pub use docs::DocSet;
pub use error::{Error, Result};
pub use float::{maxsim_scores, maxsim_scores_batch, PreparedQueries, ScoreOptions};
pub use threads::{num_threads, set_num_threads};
pub use topk::{topk_desc, TopK};
