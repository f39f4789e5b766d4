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
//! pipes, where an FMA does 8 on one of two; the window is narrow enough
//! (about `√dim / 60000` of `‖q‖ ‖d‖`) that nearly every lane recomputes one
//! token. What it costs per document (quantization, the scan) is paid back
//! only by enough query tokens: see `SCREEN.min_tokens`.

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
/// The CPU must support AVX2, FMA and F16C; the document must be a non-zero
/// whole number of `q.dim`-wide rows; `sq` must have been built from `q` for
/// blocks of [`R`]; `maxes.len() >= q.stride`.
#[inline(always)]
unsafe fn doc_maxes<E: Elem>(
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
            let best = screen_block::<E, R, T>(sq, v, &mut quantizer, convert, approx);
            let bounds = *bounds.get_or_insert_with(|| quantizer.bounds());
            let Some(bounds) = bounds else { return false };
            resolve(q, sq, v, &best, bounds, doc, approx, extra, maxes);
            v += R;
        } else {
            let best = screen_block::<E, 1, T1>(sq, v, &mut quantizer, convert, approx);
            let bounds = *bounds.get_or_insert_with(|| quantizer.bounds());
            let Some(bounds) = bounds else { return false };
            resolve(q, sq, v, &best, bounds, doc, approx, extra, maxes);
            v += 1;
        }
    }
    true
}

/// [`doc_maxes`] for a float32 document.
///
/// # Safety
/// As [`doc_maxes`]; `screen` must be the int16 screen's query.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f32_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[f32],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let ScreenQuery::Int16(sq) = screen else {
        return false;
    };
    doc_maxes(q, sq, doc, scratch, maxes)
}

/// [`doc_maxes`] for a float16 document (bits).
///
/// # Safety
/// As [`f32_doc_maxes`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[u16],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let ScreenQuery::Int16(sq) = screen else {
        return false;
    };
    doc_maxes(q, sq, bits_as::<F16Bits>(doc), scratch, maxes)
}

/// [`doc_maxes`] for a bfloat16 document (bits).
///
/// # Safety
/// As [`f32_doc_maxes`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[u16],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let ScreenQuery::Int16(sq) = screen else {
        return false;
    };
    doc_maxes(q, sq, bits_as::<Bf16Bits>(doc), scratch, maxes)
}

/// `crate::peak::CHAINS` independent `vpmaddwd` + `vpaddd` chains, as the
/// screening tile runs them, `iterations` times.
#[target_feature(enable = "avx2")]
unsafe fn dot_chains(iterations: usize) -> f32 {
    let mut acc = [_mm256_setzero_si256(); crate::peak::CHAINS];
    // (Opaque to the optimiser, which could otherwise fold the whole loop.)
    let a = std::hint::black_box(_mm256_set1_epi16(3));
    let b = std::hint::black_box(_mm256_set1_epi16(-2));
    for _ in 0..iterations {
        for slot in acc.iter_mut() {
            *slot = _mm256_add_epi32(*slot, _mm256_madd_epi16(a, b));
        }
    }
    let mut lanes = [0i32; LANES];
    let total = acc
        .iter()
        .fold(_mm256_setzero_si256(), |s, &v| _mm256_add_epi32(s, v));
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, total);
    lanes.iter().sum::<i32>() as f32
}

/// The int16 screen's kernels, as the AVX2 table holds them (with F16C).
pub(crate) const SCREEN: ScreenKernel = ScreenKernel {
    kind: ScreenKind::Int16,
    prepare: |q| Int16Query::new(q, R).map(ScreenQuery::Int16),
    f32: f32_doc_maxes,
    f16: f16_doc_maxes,
    bf16: bf16_doc_maxes,
    bf16_even_dim: false,
    // Every document is quantized per call (a pass of about seven vector
    // operations per 16 values, and a scan of the stored approximations),
    // while the screen saves in proportion to the query vectors, and its
    // tile issues fewer than Zen 3's two `vpmaddwd` per cycle (the
    // accumulating adds and broadcasts share the other two pipes). So
    // float32 documents gain only from about a hundred query tokens, and
    // 16-bit documents, whose plain kernel already reads half the bytes,
    // from several hundred (`examples/screen_ab.rs`; BENCHMARKS.md, "AVX2
    // (AMD Zen 3)").
    min_tokens: [96, 512, 512],
    dot_peak: dot_chains,
    dot_flops: 32,
    name: "avx2: int16 screen (vpmaddwd)",
};
