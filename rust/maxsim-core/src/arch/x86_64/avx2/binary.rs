//! AVX2 Hamming kernels.
//!
//! [`Avx2Pshufb`]: the eight codes' word `k` is two YMM registers (codes 0–3,
//! 4–7, one `u64` lane each). After the XOR with the broadcast query word, a
//! `vpshufb` nibble lookup gives per-byte bit counts that are summed byte-wise
//! for up to 31 words (8 × 31 < 256), then `vpsadbw` folds each lane's eight
//! bytes into its exact count. About eight vector operations per 32 bytes.
//!
//! The scalar `POPCNT` alternative (one `popcnt` per `u64`, four per cycle on
//! Zen 3) is the portable vocabulary compiled with the `popcnt` feature; it
//! lives in `arch::portable::binary::popcnt` and is measured against this one
//! in the benches.

use crate::binary::blocked::tile_kernels;
use crate::binary::layout::GROUP;
use crate::binary::popcount::{Popcount8, ROWS_MAX_WORDS};
use std::arch::x86_64::*;

/// Eight `u32` distances in a YMM register.
#[derive(Clone, Copy)]
pub struct Avx2Pshufb(__m256i);

/// Per-byte bit counts of the nibbles 0..=15.
#[inline(always)]
unsafe fn nibble_lut() -> __m256i {
    _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, //
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    )
}

/// Per-byte popcount of `x`.
#[inline(always)]
unsafe fn popcount_bytes(x: __m256i) -> __m256i {
    let low_nibbles = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(x, low_nibbles);
    let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low_nibbles);
    let lut = nibble_lut();
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
}

// SAFETY: only used from functions compiled with `avx2` that run after
// dispatch has confirmed it; pointer validity is the caller's contract.
// Byte counters hold at most 8 per word, so 31 words stay below 256.
unsafe impl Popcount8 for Avx2Pshufb {
    type Group = (__m256i, __m256i);
    type Partial = (__m256i, __m256i);
    const PARTIAL_WORDS: usize = 31;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx2Pshufb(_mm256_setzero_si256())
    }
    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        Avx2Pshufb(_mm256_set1_epi32(x as i32))
    }
    #[inline(always)]
    unsafe fn load_group(ptr: *const u64) -> Self::Group {
        (
            _mm256_loadu_si256(ptr as *const __m256i),
            _mm256_loadu_si256(ptr.add(4) as *const __m256i),
        )
    }
    #[inline(always)]
    unsafe fn partial_zero() -> Self::Partial {
        (_mm256_setzero_si256(), _mm256_setzero_si256())
    }
    #[inline(always)]
    unsafe fn accumulate(p: Self::Partial, q: u64, g: Self::Group) -> Self::Partial {
        let qv = _mm256_set1_epi64x(q as i64);
        (
            _mm256_add_epi8(p.0, popcount_bytes(_mm256_xor_si256(qv, g.0))),
            _mm256_add_epi8(p.1, popcount_bytes(_mm256_xor_si256(qv, g.1))),
        )
    }
    #[inline(always)]
    unsafe fn add_partial(self, p: Self::Partial) -> Self {
        let zero = _mm256_setzero_si256();
        // Lane sums: codes 0..3 in the u64 lanes of `lo`, codes 4..7 in `hi`.
        let lo = _mm256_sad_epu8(p.0, zero);
        let hi = _mm256_sad_epu8(p.1, zero);
        // u32 lanes [c0, c4, c1, c5, c2, c6, c3, c7] → [c0 .. c7].
        let mixed = _mm256_or_si256(lo, _mm256_slli_epi64(hi, 32));
        let ordered = _mm256_permutevar8x32_epi32(mixed, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
        Avx2Pshufb(_mm256_add_epi32(self.0, ordered))
    }
    #[inline(always)]
    unsafe fn lt_mask(self, threshold: u32) -> u32 {
        // Distances are below 2^31 (codes are at most MAX_CODE_BYTES), so a
        // signed compare against the threshold capped at i32::MAX is exact.
        let t = _mm256_set1_epi32(threshold.min(i32::MAX as u32) as i32);
        _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(t, self.0))) as u32
    }
    #[inline(always)]
    unsafe fn min(self, other: Self) -> Self {
        Avx2Pshufb(_mm256_min_epu32(self.0, other.0))
    }
    #[inline(always)]
    unsafe fn store(self, out: *mut u32) {
        _mm256_storeu_si256(out as *mut __m256i, self.0)
    }
    #[inline(always)]
    unsafe fn load(ptr: *const u32) -> Self {
        Avx2Pshufb(_mm256_loadu_si256(ptr as *const __m256i))
    }
    /// Eight row-major codes: per code, byte counts over 32-byte chunks (the
    /// last, partial chunk through a masked load), then one `vpsadbw` per code
    /// and a transposing reduction of the eight 4-lane sums.
    #[inline(always)]
    unsafe fn rows8(q: *const u64, w: usize, rows: *const u8, stride: usize) -> Self {
        debug_assert!(w <= ROWS_MAX_WORDS);
        let mut acc = [_mm256_setzero_si256(); GROUP];
        let chunks = w / 4;
        for c in 0..chunks {
            let qv = _mm256_loadu_si256(q.add(4 * c) as *const __m256i);
            for (i, a) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_si256(rows.add(i * stride + 32 * c) as *const __m256i);
                *a = _mm256_add_epi8(*a, popcount_bytes(_mm256_xor_si256(qv, x)));
            }
        }
        let tail = w % 4;
        if tail != 0 {
            // Lanes `0..tail` of the last chunk; the others load as zero.
            let mask = _mm256_cmpgt_epi64(
                _mm256_set1_epi64x(tail as i64),
                _mm256_setr_epi64x(0, 1, 2, 3),
            );
            let qv = _mm256_maskload_epi64(q.add(4 * chunks) as *const i64, mask);
            for (i, a) in acc.iter_mut().enumerate() {
                let x =
                    _mm256_maskload_epi64(rows.add(i * stride + 32 * chunks) as *const i64, mask);
                *a = _mm256_add_epi8(*a, popcount_bytes(_mm256_xor_si256(qv, x)));
            }
        }
        let zero = _mm256_setzero_si256();
        let s: [__m256i; GROUP] = std::array::from_fn(|i| _mm256_sad_epu8(acc[i], zero));
        // [a0 a1 | a2 a3] + [b0 b1 | b2 b3] → [a01 b01 | a23 b23]
        let pair = |a: __m256i, b: __m256i| {
            _mm256_add_epi64(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b))
        };
        let quad = |ab: __m256i, cd: __m256i| {
            _mm256_add_epi64(
                _mm256_permute2x128_si256(ab, cd, 0x20),
                _mm256_permute2x128_si256(ab, cd, 0x31),
            )
        };
        let lo = quad(pair(s[0], s[1]), pair(s[2], s[3])); // u64 [c0 c1 c2 c3]
        let hi = quad(pair(s[4], s[5]), pair(s[6], s[7])); // u64 [c4 c5 c6 c7]
        let mixed = _mm256_or_si256(lo, _mm256_slli_epi64(hi, 32));
        Avx2Pshufb(_mm256_permutevar8x32_epi32(
            mixed,
            _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7),
        ))
    }
}

/// Query rows per register block. Each group word is loaded once for four
/// queries; `vpshufb` (one per cycle on Zen 3), not the loads, is the limit,
/// so more rows per block pay until the registers run out.
const R: usize = 4;

tile_kernels!(Avx2Pshufb, R, "avx2");
