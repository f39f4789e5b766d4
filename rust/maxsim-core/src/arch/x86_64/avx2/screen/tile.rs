//! The screening tiles: `vpmaddwd` over blocks of query vectors, every
//! approximate value stored for the window scan, each lane's largest kept.

use super::*;
use crate::vector::prefetch_read;

/// Screens query vectors `v0..v0 + RR` against every token of the
/// quantizer's codes: writes the approximate value of vector `r`, token `j`
/// to the eight floats at `approx + (r * n_tok + j) * 8` and returns each
/// vector's lane maxima. With `convert`, the first block converts the
/// document as it goes (each tile's tokens just before the tile).
#[inline(always)]
pub(super) unsafe fn screen_block<E: Elem, const RR: usize, const TT: usize>(
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
        tile::<RR, TT>(q_block, stride, codes, t, prefetch, approx, &mut best);
        t += TT;
    }
    while t < n_tok {
        if convert {
            quantizer.convert_until(t + 1);
        }
        let codes = quantizer.codes();
        tile::<RR, 1>(
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

/// Tiles ahead of the first block's conversion whose rows are prefetched.
const PREFETCH_TILES: usize = 2;

/// Tokens `t..t + TT` against the `RR` query vectors of the block at
/// `q_block` (pair `p` of vector `r` at `q_block + p * stride + 8 r`): int32
/// dot products (exact), scaled by each token's `û`. Pair step `p` also
/// prefetches line `p` of the `prefetch.1` bytes at `prefetch.0` (if any).
// Index loops over the const-size register tile: they unroll fully and keep
// `acc` in registers.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn tile<const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    codes: &Codes,
    t: usize,
    (prefetch, prefetch_bytes): (*const u8, usize),
    approx: *mut f32,
    best: &mut [__m256; RR],
) {
    let mut acc = [[_mm256_setzero_si256(); TT]; RR];
    for p in 0..codes.n_pairs {
        if p * 64 < prefetch_bytes {
            prefetch_read(prefetch.wrapping_add(p * 64) as *const f32);
        }
        let q_row = q_block.add(p * stride);
        let mut qv = [_mm256_setzero_si256(); RR];
        for r in 0..RR {
            qv[r] = _mm256_loadu_si256(q_row.add(r * LANES) as *const __m256i);
        }
        for tt in 0..TT {
            let pair = _mm256_set1_epi32(codes.word(t + tt, p) as i32);
            for r in 0..RR {
                acc[r][tt] = _mm256_add_epi32(acc[r][tt], _mm256_madd_epi16(qv[r], pair));
            }
        }
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
