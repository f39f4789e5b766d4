//! Reduced-precision document storage: float16, bfloat16 and int8.
//!
//! MaxSim over stored documents becomes memory-bound once the kernel is good,
//! so storing documents in 16 or 8 bits is the largest speedup left. Scores are
//! always float32.
//!
//! - **float16 / bfloat16** ([`maxsim_half_batch`]): the query stays float32
//!   ([`PreparedQueries`](crate::float::PreparedQueries)); each document tile is widened to float32 inside
//!   the float tile loop of the same ISA (exact; the widening of the next tile
//!   is interleaved with the multiply-adds of the current one), so results are
//!   bitwise those of the float32 path on the widened documents (NaN behaves
//!   exactly as in float32). On CPUs with AMX-BF16 the
//!   `amx` kernel scores bfloat16 documents with tiles instead, splitting the
//!   float32 query into two bfloat16 halves (`hi + lo`), which keeps it within
//!   about 2⁻¹⁶ of float32 accuracy.
//! - **int8** ([`maxsim_int8_batch`]): documents carry per-token scales
//!   ([`Int8Docs`], produced by [`quantize_int8`]); the query is quantized the
//!   same way on the fly ([`Int8Queries`]). Dot products are exact in int32,
//!   then scaled in float32 in a fixed order, so every ISA returns bitwise
//!   identical scores (see `int8`).
//!
//! Files: `queries` and `docs` prepare the int8 inputs, `score_half` and
//! `score_int8` drive the kernels of the table in force, `half_blocked` and
//! `int8` are the generic algorithms the `arch` folders instantiate,
//! `quantize` produces int8 and 16-bit storage.
//!
//! Both run on the float32 driver (`float::drive`), which splits documents
//! over the rayon pool: per-document results do not depend on the thread
//! count, and a query scores the same alone or in a batch.

mod docs;
pub(crate) mod half;
pub(crate) mod half_blocked;
pub(crate) mod int8;
pub mod quantize;
mod queries;
mod score_half;
mod score_int8;

pub use self::half::{HalfFloat, HalfFormat};
pub use ::half::{bf16, f16};
pub use docs::Int8Docs;
pub use quantize::{
    quantize_int8, quantize_int8_into, quantize_row, to_half, to_half_bits, MAX_INT8_DIM,
    MIN_INT8_ABSMAX,
};
pub use queries::Int8Queries;
pub use score_half::{
    maxsim_half, maxsim_half_batch, maxsim_half_batch_screened, maxsim_half_batch_screened_with,
    maxsim_half_batch_unscreened, maxsim_half_batch_with,
};
pub(crate) use score_int8::Int8Job;
pub use score_int8::{
    maxsim_int8, maxsim_int8_batch, maxsim_int8_batch_variant, maxsim_int8_batch_with,
};

use crate::dispatch::{table, Kernel};
use crate::error::Result;

/// Which implementation each document dtype uses under `kernel`, for
/// `maxsim.info()`: the `float16`, `bfloat16` and `int8` entries of its table.
pub fn reduced_paths(kernel: Kernel) -> Result<Vec<(&'static str, String)>> {
    Ok(table(kernel)?
        .describe()
        .into_iter()
        .filter(|(what, _)| matches!(*what, "float16" | "bfloat16" | "int8"))
        .collect())
}
