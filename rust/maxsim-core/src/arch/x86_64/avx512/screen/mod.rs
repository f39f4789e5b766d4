//! AVX-512 BF16 kernel of the bf16-screened MaxSim (`float::screen`), for
//! float32, float16 and bfloat16 documents.
//!
//! Per document: (1) obtain it as bf16 pairs — float32 and float16 documents
//! are converted into a scratch buffer while the first query block screens
//! them, bfloat16 documents are read in place — and bound its token norms;
//! (2) per block of query vectors, screen every token with `vdpbf16ps` (lanes
//! are query tokens, each step multiplies one bf16 pair of the document,
//! broadcast, into the pair-interleaved query), tracking per lane the
//! largest keys (value and token packed in 32 bits, see `Tracked`); (3)
//! recompute the candidates with the float32 kernel's FMA chain over the
//! document's exact (widened) values.

use crate::dispatch::{Cpu, ScreenKernel, ScreenKind};
use crate::float::screen::{flushed_residual_bound, norm_bound, Bf16Query, Scratch, ScreenQuery};
use crate::float::PreparedQueries;
use crate::vector::prefetch_lines;
use std::arch::x86_64::*;

/// Query vectors per block: a 32-token query is one block. The screen
/// query must be laid out for it (`Bf16Query::new(q, R)`).
const R: usize = 2;
/// Document tokens per tile of `R` vectors: `R × T` accumulators plus the
/// block's running state (4 values and 3 indices per vector) fit the 32 ZMM
/// registers, and 8 independent `vdpbf16ps` chains cover its latency (6
/// cycles at one per cycle on Zen 4).
const T: usize = 4;
/// Document tokens per tile of a single vector: as many chains again.
const T1: usize = 2 * T;
/// Lanes per vector.
const LANES: usize = 16;

mod keys;
mod refine;
mod source;
#[cfg(test)]
mod tests;
mod tile;

use keys::*;
use refine::*;
use source::*;
use tile::*;

/// Writes `maxes[i] = max_j f_ij` for every query token, bitwise equal to the
/// AVX-512 float32 kernel on the document's (widened) values, and returns
/// `true`; returns `false` without a result when the document is outside the
/// screen's bound (a non-finite value, a token norm above `MAX_NORM`, or more
/// tokens than [`MAX_INDEX_BITS`] can index), for the caller to use the plain
/// kernel.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VL and AVX512_BF16; the document must be
/// a non-zero whole number of `q.dim`-wide rows; `screen` must have been built
/// from `q`; `maxes.len() >= q.stride`.
#[inline(always)]
unsafe fn doc_maxes<S: Source>(
    q: &PreparedQueries,
    screen: &Bf16Query,
    mut source: S,
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let dim = q.dim;
    let doc = source.values();
    debug_assert!(dim > 0 && doc.len().is_multiple_of(dim) && maxes.len() >= q.stride);
    let n_tok = doc.len() / dim;
    // Token indices travel in the low bits of the keys.
    if index_bits(n_tok) > MAX_INDEX_BITS {
        return false;
    }
    let n_vec = q.n_tokens.div_ceil(LANES);
    if n_vec == 0 {
        return true;
    }
    let doc_words = source.pairs(scratch, screen.n_pairs);
    // The first block visits the document as it goes, so that streaming it
    // from memory overlaps the screening arithmetic; the bound needs the
    // whole document's norms, so its vectors are resolved after it.
    let first = R.min(n_vec);
    let first_state = if first == R {
        screen_block::<R, T, S>(screen, 0, &doc_words, Some(&mut source))
    } else {
        let [state] = screen_block::<1, T1, S>(screen, 0, &doc_words, Some(&mut source));
        [state; R]
    };
    let Some(norms) = source.norms() else {
        return false;
    };
    let doc = source.values();
    resolve::<S>(
        q,
        screen,
        0,
        &first_state[..first],
        norms,
        doc,
        &doc_words,
        maxes,
    );
    let mut v = first;
    while v + R <= n_vec {
        let state = screen_block::<R, T, S>(screen, v, &doc_words, None);
        resolve::<S>(q, screen, v, &state, norms, doc, &doc_words, maxes);
        v += R;
    }
    while v < n_vec {
        let state = screen_block::<1, T1, S>(screen, v, &doc_words, None);
        resolve::<S>(q, screen, v, &state, norms, doc, &doc_words, maxes);
        v += 1;
    }
    true
}

/// [`doc_maxes`] for a float32 document.
///
/// # Safety
/// As [`doc_maxes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
unsafe fn f32_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[f32],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let ScreenQuery::Bf16(screen) = screen else {
        return false;
    };
    doc_maxes(q, screen, Converted::new(doc, q.dim), scratch, maxes)
}

/// [`doc_maxes`] for a float16 document (bits).
///
/// # Safety
/// As [`doc_maxes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
unsafe fn f16_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[u16],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let ScreenQuery::Bf16(screen) = screen else {
        return false;
    };
    doc_maxes(
        q,
        screen,
        Converted::new(bits_as::<F16Bits>(doc), q.dim),
        scratch,
        maxes,
    )
}

/// [`doc_maxes`] for a bfloat16 document (bits), read in place.
///
/// # Safety
/// As [`doc_maxes`]; additionally `q.dim` must be even (the pairs of a token
/// must not straddle two tokens).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
unsafe fn bf16_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[u16],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let ScreenQuery::Bf16(screen) = screen else {
        return false;
    };
    debug_assert!(q.dim.is_multiple_of(2));
    doc_maxes(q, screen, InPlace::new(bits_as(doc), q.dim), scratch, maxes)
}

/// `crate::peak::CHAINS` independent `vdpbf16ps` chains, `iterations` times.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_chains(iterations: usize) -> f32 {
    let mut acc = [_mm512_setzero_ps(); crate::peak::CHAINS];
    // bf16 pairs of 1.0 and of 1e-3: the sums grow slowly and stay finite.
    // (Opaque to the optimiser, which could otherwise fold the whole loop.)
    let a = std::hint::black_box(_mm512_cvtne2ps_pbh(
        _mm512_set1_ps(1.0),
        _mm512_set1_ps(1.0),
    ));
    let b = std::hint::black_box(_mm512_cvtne2ps_pbh(
        _mm512_set1_ps(1e-3),
        _mm512_set1_ps(1e-3),
    ));
    for _ in 0..iterations {
        for slot in acc.iter_mut() {
            *slot = _mm512_dpbf16_ps(*slot, a, b);
        }
    }
    acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
}

/// The screen's kernels for `cpu`: [`SCREEN`], except that on AMD Zen 5
/// and later float32 documents are screened from 33 query tokens. Zen 5
/// runs a 512-bit FMA at full width, twice Zen 4's rate, so the plain kernel
/// scores a 32-token query (one block of two query vectors) faster than the
/// screen converts and screens the document; past one block it pays again
/// (BENCHMARKS.md, "Design measurements").
pub(crate) fn screen_for(cpu: &Cpu) -> ScreenKernel {
    if cpu.amd && cpu.family >= ZEN5_FAMILY {
        ScreenKernel {
            min_tokens: [
                ZEN5_MIN_F32_TOKENS,
                SCREEN.min_tokens[1],
                SCREEN.min_tokens[2],
            ],
            ..SCREEN
        }
    } else {
        SCREEN
    }
}

/// AMD Zen 5's x86 display family.
const ZEN5_FAMILY: u32 = 0x1A;
/// One query token past the plain float kernel's block (its `R` vectors of
/// 16 query tokens): 33.
const ZEN5_MIN_F32_TOKENS: usize = super::float::R * LANES + 1;

/// The screen's kernels as measured on Zen 4 ([`screen_for`] adjusts them for Zen 5).
pub(crate) const SCREEN: ScreenKernel = ScreenKernel {
    kind: ScreenKind::Bf16,
    prepare: |q| Bf16Query::new(q, R).map(ScreenQuery::Bf16),
    f32: f32_doc_maxes,
    f16: f16_doc_maxes,
    bf16: bf16_doc_maxes,
    bf16_even_dim: true,
    // float32: the conversion streams the document once, ahead of the
    // screen, faster than the plain kernel's own pass over it, so even a
    // one-token query gains; bfloat16 is screened in place. float16 documents
    // are read at half the bytes by the plain kernel, which is memory-bound
    // up to one vector of query tokens (16), so the conversion pays from 24
    // tokens (BENCHMARKS.md, "Design measurements").
    min_tokens: [1, 24, 1],
    dot_peak: dot_chains,
    dot_flops: 64,
    name: "avx512: bf16 screen (vdpbf16ps)",
};
