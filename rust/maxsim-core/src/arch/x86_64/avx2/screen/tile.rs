//! The screening tiles: int16 pair dot products over blocks of query
//! vectors, every approximate value stored for the window scan, each lane's
//! largest kept.

use super::*;
use crate::vector::prefetch_read;

/// One accumulating step of the tiles: `acc + Σ` of the two int16 products
/// in each 32-bit lane of `q` and `pair` (exact in int32 for the screen's
/// codes, so every implementation gives the same sums).
pub(super) trait PairDot {
    /// # Safety
    /// The CPU must support the implementation's instructions (the callers
    /// are compiled with them).
    unsafe fn dot(acc: __m256i, q: __m256i, pair: __m256i) -> __m256i;
}

/// AVX2 `vpmaddwd`, then `vpaddd`: two operations per 16 multiply-adds.
pub(super) struct Madd;

impl PairDot for Madd {
    #[inline(always)]
    unsafe fn dot(acc: __m256i, q: __m256i, pair: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(q, pair))
    }
}

/// AVX-VNNI `vpdpwssd`: the same sums in one operation, with no register
/// for the product.
pub(super) struct Vnni;

impl PairDot for Vnni {
    #[inline(always)]
    unsafe fn dot(acc: __m256i, q: __m256i, pair: __m256i) -> __m256i {
        _mm256_dpwssd_avx_epi32(acc, q, pair)
    }
}

/// Screens query vectors `v0..v0 + RR` against every token of the
/// quantizer's codes: writes the approximate value of vector `r`, token `j`
/// to the eight floats at `approx + (r * n_tok + j) * 8` and returns each
/// vector's lane maxima. With `convert`, the first block converts the
/// document as it goes (each tile's tokens just before the tile).
#[inline(always)]
pub(super) unsafe fn screen_block<E: Elem, D: PairDot, const RR: usize, const TT: usize>(
    sq: &Int16Query,
    v0: usize,
    quantizer: &mut Quantizer<'_, E>,
    convert: bool,
    approx: *mut f32,
) -> [__m256; RR] {
    let (base, stride) = sq.vector_pairs(v0);
    debug_assert_eq!(stride, RR * LANES);
    let q_block = sq.pairs.as_ptr().add(base);
    let mut best = [_mm256_set1_ps(f32::NEG_INFINITY); RR];
    let n_tok = quantizer.codes().n_tok;
    let mut t = 0;
    while t + TT <= n_tok {
        let mut prefetch = (std::ptr::null(), 0);
        if convert {
            quantizer.convert_until(t + TT);
            // The rows the conversion reads two tiles on, one line per pair
            // step of this tile, so that it reads them from L1: in a burst
            // ahead of each conversion, the prefetches filled the core's
            // miss buffers and stalled (a sixth of the screen's time).
            let (ahead, row) = quantizer.row_bytes_at(t + PREFETCH_TILES * TT);
            prefetch = (ahead, TT * row);
        }
        let codes = quantizer.codes();
        tile::<D, RR, TT>(q_block, stride, codes, t, prefetch, approx, &mut best);
        t += TT;
    }
    while t < n_tok {
        if convert {
            quantizer.convert_until(t + 1);
        }
        let codes = quantizer.codes();
        tile::<D, RR, 1>(
            q_block,
            stride,
            codes,
            t,
            (std::ptr::null(), 0),
            approx,
            &mut best,
        );
        t += 1;
    }
    best
}

/// Tiles ahead of the first block's conversion whose rows are prefetched:
/// 24 tokens (12 KB of float32 at 128 dimensions). Two tiles left the
/// conversion waiting on memory (a fifth of the screen's time at 32 query
/// tokens on Zen 5, in the sum of squares that first reads a row); three to
/// eight measured alike, within noise (`examples/screen_ab.rs`).
const PREFETCH_TILES: usize = 4;

/// Tokens `t..t + TT` against the `RR` query vectors of the block at
/// `q_block` (pair `p` of vector `r` at `q_block + p * stride + 8 r`): int32
/// dot products (exact), scaled by each token's `û`. The first pair steps
/// also prefetch the `prefetch.1` bytes at `prefetch.0` (if any), a line each.
// Index loops over the const-size register tile: they unroll fully and keep
// `acc` in registers.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn tile<D: PairDot, const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    codes: &Codes,
    t: usize,
    (prefetch, prefetch_bytes): (*const u8, usize),
    approx: *mut f32,
    best: &mut [__m256; RR],
) {
    let mut acc = [[_mm256_setzero_si256(); TT]; RR];
    // Two loops, not a test per step: the blocks that do not convert (every
    // one but the first) then run a step with no scalar work to spare; the
    // test made a 32-token query 7 % slower
    // (17.1 against 15.8 ms, 1 thread, Zen 5 with `KERNEL=avx2`).
    let prefetch_steps = prefetch_bytes.div_ceil(64).min(codes.n_pairs);
    for p in 0..prefetch_steps {
        prefetch_read(prefetch.wrapping_add(p * 64) as *const f32);
        step::<D, RR, TT>(q_block, stride, codes, t, p, &mut acc);
    }
    for p in prefetch_steps..codes.n_pairs {
        step::<D, RR, TT>(q_block, stride, codes, t, p, &mut acc);
    }
    for tt in 0..TT {
        let scale = _mm256_set1_ps(*codes.scales.add(t + tt));
        for r in 0..RR {
            let value = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][tt]), scale);
            _mm256_storeu_ps(approx.add((r * codes.n_tok + t + tt) * LANES), value);
            best[r] = _mm256_max_ps(best[r], value);
        }
    }
}

/// Pair step `p` of [`tile()`].
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn step<D: PairDot, const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    codes: &Codes,
    t: usize,
    p: usize,
    acc: &mut [[__m256i; TT]; RR],
) {
    let q_row = q_block.add(p * stride);
    let mut qv = [_mm256_setzero_si256(); RR];
    for r in 0..RR {
        qv[r] = _mm256_loadu_si256(q_row.add(r * LANES) as *const __m256i);
    }
    for tt in 0..TT {
        let pair = _mm256_set1_epi32(codes.word(t + tt, p) as i32);
        for r in 0..RR {
            acc[r][tt] = D::dot(acc[r][tt], qv[r], pair);
        }
    }
}
