//! AVX2 kernel of the int16-screened MaxSim (`float::screen_i16`), for
//! float32, float16 and bfloat16 documents; bitwise the AVX2 float kernels.
//!
//! Per document: (1) quantize it to int16 codes, token by token, with each
//! token's dequantisation factor, and bound its token norms (`convert`), as
//! the first block of query vectors screens it;
//! (2) per block of query vectors, screen every token with `vpmaddwd` (lanes
//! are query tokens, each step multiplies one code pair of the document,
//! broadcast, into the pair-interleaved query), storing every approximate
//! value and keeping each lane's largest (`tile`); (3) per lane, recompute in
//! float32, with the AVX2 kernel's FMA chain, every token whose approximate
//! value is within twice the bound of the largest, and fold them in token
//! order (`refine`).
//!
//! Why it can pay on AVX2: `vpmaddwd` and its `vpaddd` do 16 multiply-adds
//! in two integer operations that spread over all four of Zen 3's vector
//! pipes, where an FMA does 8 on one of two (AVX-VNNI's `vpdpwssd` does the
//! 16 in one: [`SCREEN_VNNI`]); the window is narrow enough
//! (about `√dim / 60000` of `‖q‖ ‖d‖`) that nearly every lane recomputes one
//! token. What it costs per document (quantization, the scan) is paid back
//! only by enough query tokens: see [`MIN_TOKENS`].

use crate::dispatch::{ScreenKernel, ScreenKind};
use crate::float::screen::{Scratch, ScreenQuery};
use crate::float::screen_i16::{Int16Query, LANES};
use crate::float::PreparedQueries;
use std::arch::x86_64::*;

mod convert;
mod refine;
mod tile;

use convert::*;
use refine::*;
use tile::*;

/// Query vectors per block: `R × T` accumulators, `R` query vectors, a
/// broadcast and a product fill the 16 YMM registers.
const R: usize = 2;
/// Document tokens per tile of `R` vectors.
const T: usize = 6;
/// Document tokens per tile of a single vector.
const T1: usize = 12;

/// Writes `maxes[i] = max_j f_ij` for every query token, bitwise equal to
/// the AVX2 float kernel on the document's (widened) values, and returns
/// `true`; returns `false` without a result when the document is outside the
/// screen's bound (`convert::quantize`), for the caller to use the plain kernel.
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C and `D`'s instructions; the document
/// must be a non-zero whole number of `q.dim`-wide rows; `sq` must have been
/// built from `q` for blocks of [`R`]; `maxes.len() >= q.stride`.
#[inline(always)]
unsafe fn doc_maxes<E: Elem, D: PairDot>(
    q: &PreparedQueries,
    sq: &Int16Query,
    doc: &[E],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let dim = q.dim;
    debug_assert!(dim > 0 && doc.len().is_multiple_of(dim) && maxes.len() >= q.stride);
    let n_vec = sq.screened.len();
    if n_vec == 0 {
        return true;
    }
    let Scratch {
        doc_pairs,
        token_scales,
        approx,
        extra,
    } = scratch;
    let mut quantizer = Quantizer::new(doc, dim, sq.n_pairs, doc_pairs, token_scales);
    let n_tok = doc.len() / dim;
    if approx.len() < R * LANES * n_tok {
        approx.resize(R * LANES * n_tok, 0.0);
    }
    let approx = approx.as_mut_ptr();
    // The first block converts the document as it screens it; the window
    // needs the whole document's bounds, so its vectors are resolved after.
    let mut bounds = None;
    let mut v = 0;
    while v < n_vec {
        let convert = v == 0;
        if v + R <= n_vec {
            let best = screen_block::<E, D, R, T>(sq, v, &mut quantizer, convert, approx);
            let bounds = *bounds.get_or_insert_with(|| quantizer.bounds());
            let Some(bounds) = bounds else { return false };
            resolve(q, sq, v, &best, bounds, doc, approx, extra, maxes);
            v += R;
        } else {
            let best = screen_block::<E, D, 1, T1>(sq, v, &mut quantizer, convert, approx);
            let bounds = *bounds.get_or_insert_with(|| quantizer.bounds());
            let Some(bounds) = bounds else { return false };
            resolve(q, sq, v, &best, bounds, doc, approx, extra, maxes);
            v += 1;
        }
    }
    true
}

/// One of the screen's entry points: [`doc_maxes`] for documents stored as
/// `$stored`, read as `$elem` through `$view`, with the pair dot product
/// `$dot`, compiled with `$features`.
macro_rules! entry_point {
    ($name:ident, $features:literal, $dot:ty, $stored:ty, $elem:ty, $view:path, $what:literal) => {
        #[doc = concat!("[`doc_maxes`] for a ", $what, " document.")]
        ///
        /// # Safety
        /// As [`doc_maxes`]; `screen` must be the int16 screen's query.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name(
            q: &PreparedQueries,
            screen: &ScreenQuery,
            doc: &[$stored],
            scratch: &mut Scratch,
            maxes: &mut [f32],
        ) -> bool {
            let ScreenQuery::Int16(sq) = screen else {
                return false;
            };
            doc_maxes::<$elem, $dot>(q, sq, $view(doc), scratch, maxes)
        }
    };
}

/// A float32 document as the screen reads it: unchanged.
fn as_f32(doc: &[f32]) -> &[f32] {
    doc
}

/// The screen's entry points for float32, float16 and bfloat16 documents
/// with the pair dot product `$dot`, compiled with `$features`, and the
/// throughput probe of that product.
macro_rules! entry_points {
    ($features:literal, $dot:ty) => {
        entry_point!(f32_doc_maxes, $features, $dot, f32, f32, as_f32, "float32");
        entry_point!(
            f16_doc_maxes,
            $features,
            $dot,
            u16,
            F16Bits,
            bits_as,
            "float16 (bits)"
        );
        entry_point!(
            bf16_doc_maxes,
            $features,
            $dot,
            u16,
            Bf16Bits,
            bits_as,
            "bfloat16 (bits)"
        );

        /// `crate::peak::CHAINS` independent accumulating chains of the
        /// pair dot product, as the screening tile runs them, `iterations`
        /// times.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn dot_chains(iterations: usize) -> f32 {
            let mut acc = [_mm256_setzero_si256(); crate::peak::CHAINS];
            // (Opaque to the optimiser, which could otherwise fold the loop.)
            let a = std::hint::black_box(_mm256_set1_epi16(3));
            let b = std::hint::black_box(_mm256_set1_epi16(-2));
            for _ in 0..iterations {
                for slot in acc.iter_mut() {
                    *slot = <$dot>::dot(*slot, a, b);
                }
            }
            let mut lanes = [0i32; LANES];
            let total = acc
                .iter()
                .fold(_mm256_setzero_si256(), |s, &v| _mm256_add_epi32(s, v));
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, total);
            lanes.iter().sum::<i32>() as f32
        }
    };
}

/// With `vpmaddwd` + `vpaddd`.
mod madd {
    use super::*;
    entry_points!("avx2,fma,f16c", Madd);
}

/// With AVX-VNNI `vpdpwssd`.
mod vnni {
    use super::*;
    entry_points!("avx2,fma,f16c,avxvnni", Vnni);
}

/// When a query has enough tokens for the int16 screen to pay, per document
/// type (float32, float16, bfloat16).
///
/// Every document is quantized per call (a pass of about seven vector
/// operations per 16 values, and a scan of the stored approximations), while
/// the screen saves in proportion to the query vectors. A query of up to 16
/// tokens is one block of the plain kernel, which it runs at its best; from
/// 17 tokens the screen is faster for every document type, with either pair
/// dot product (1000 × 300 documents, 1 and 2 threads, `vpmaddwd`: 1.2x
/// from 17 to 24 tokens, 1.17x at 32, 1.3x at 64; at 16, 0.9-1.0x)
/// (`examples/screen_ab.rs` with `KERNEL=avx2` on AMD Zen 5; BENCHMARKS.md,
/// "AVX2 kernel on AMD Zen 5, forced"). Zen 3, where the tile issues fewer
/// than two `vpmaddwd` per cycle, measured level at 32 tokens before the
/// prefetch distance changed, under load: to confirm there.
const MIN_TOKENS: [usize; 3] = [17, 17, 17];

/// The int16 screen with `vpmaddwd` (AVX2 with F16C).
pub(crate) const SCREEN: ScreenKernel = ScreenKernel {
    kind: ScreenKind::Int16,
    prepare: |q| Int16Query::new(q, R).map(ScreenQuery::Int16),
    f32: madd::f32_doc_maxes,
    f16: madd::f16_doc_maxes,
    bf16: madd::bf16_doc_maxes,
    bf16_even_dim: false,
    min_tokens: MIN_TOKENS,
    dot_peak: madd::dot_chains,
    dot_flops: 32,
    name: "avx2: int16 screen (vpmaddwd)",
};

/// The int16 screen with AVX-VNNI `vpdpwssd`, where the CPU has it: one
/// operation per 16 multiply-adds instead of two, so the tile's vector
/// operations fall from 32 to 20 per step of 12 products, and the front end
/// stops competing with the multiplies. On Zen 5 (`KERNEL=avx2`, 1 thread,
/// 1000 × 300 documents) a 32-token float32 query ran in 15.1 ms against
/// `vpmaddwd`'s 16.2 and the plain kernel's 19.2; 64 tokens in 26.0 against
/// 29.0 and 37.9-40.7 (BENCHMARKS.md, "AVX2 kernel on AMD Zen 5, forced").
pub(crate) const SCREEN_VNNI: ScreenKernel = ScreenKernel {
    f32: vnni::f32_doc_maxes,
    f16: vnni::f16_doc_maxes,
    bf16: vnni::bf16_doc_maxes,
    dot_peak: vnni::dot_chains,
    name: "avx2: int16 screen (avx-vnni vpdpwssd)",
    ..SCREEN
};
