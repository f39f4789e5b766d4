//! Binary codes: sign quantization, Hamming distances, exact top-k search,
//! rescoring and binary MaxSim.
//!
//! Codes are sentence-transformers' `ubinary` bytes (`np.packbits(x > 0,
//! axis=-1)`); any whole number of bytes per code. Distances are Hamming
//! distances (`popcount(a ^ b)`), as faiss `IndexBinaryFlat` computes them.
//!
//! Layout of the module (the same split as the float kernels):
//! - [`layout`]: row-major and interleaved code layouts ([`Codes`]);
//! - `popcount`: the vocabulary ([`Popcount8`]: eight distances of one
//!   interleaved group) and its portable implementation;
//! - `blocked`: the tile algorithms (search with a bounded heap and a vector
//!   threshold test, distance matrix, running minimum), written once;
//! - `arch::*::binary`: one implementation per ISA (AVX-512 VPOPCNTDQ, AVX2
//!   `vpshufb`, NEON `vcnt`, the portable one and its `POPCNT` build); the
//!   kernel table says which one runs ([`HammingImpl`]);
//! - the drivers: [`search()`] (exact top-k, and [`search_rescore`]),
//!   [`hamming`] (the distance matrix), [`maxsim_scores_batch`] (binary
//!   MaxSim), and `probe` (the L1 throughput ceiling).
//!
//! **Determinism.** A search splits the database into chunks (and a batch of
//! queries into blocks); each chunk keeps its own `k` best per query, and the
//! chunks are merged by `(distance, index)`, a total order. The result is the
//! `k` smallest `(distance, index)` pairs whatever the split, so it is the
//! same for any thread count and equals faiss `IndexBinaryFlat`'s: ascending
//! distance, ties to the lower index.

pub(crate) mod blocked;
pub(crate) mod heap;
pub mod layout;
mod matrix;
mod maxsim;
pub(crate) mod popcount;
mod probe;
pub mod quantize;
pub mod rescore;
mod search;

pub use layout::{interleave, interleaved_len, words_per_code, Codes, GROUP, MAX_CODE_BYTES};
pub use popcount::{Popcount8, PortableU64};
pub use quantize::{flip_top_bits, quantize_ubinary, unpack, F16Bits, Positive};
pub use rescore::{rescore, DbFloat, RescoreTarget, Rescored};

pub use crate::dispatch::HammingImpl;
pub use matrix::{hamming, hamming_with};
pub use maxsim::{maxsim_scores_batch, maxsim_scores_batch_with};
pub use probe::l1_scan_gbps;
pub use search::{search, search_rescore, search_rescore_with, search_with, Neighbors};
