//! AVX-512 VPOPCNTDQ Hamming kernel.
//!
//! Word `k` of the eight codes of a group is one ZMM register (one `u64`
//! lane per code). Per query word: one `vpxorq` with the broadcast word, one
//! `vpopcntq`, one `vpaddq` — 64 bytes compared in three instructions, with
//! exact 64-bit lane counts, so no horizontal sum and no widening step until
//! the eight counts are narrowed to `u32` once per code group.
//!
//! Dispatch uses this kernel only when the CPU reports AVX512F, BW, VL and
//! VPOPCNTDQ; on an AVX-512 CPU without VPOPCNTDQ the AVX2 kernel runs.

use crate::binary::blocked::tile_kernels;
use crate::binary::layout::GROUP;
use crate::binary::popcount::{Popcount8, ROWS_MAX_WORDS};
use std::arch::asm;
use std::arch::x86_64::*;

/// One unaligned 64-byte load, through `asm!` so that LLVM keeps a group's
/// loads in program order, i.e. ascending addresses. Its scheduler otherwise
/// issued them from the last word down, and a descending line order within
/// each 512-byte group defeats the hardware prefetcher, and a streamed scan
/// then runs at a third of its speed (BENCHMARKS.md, "Design measurements").
///
/// # Safety
/// AVX512F must be available and `ptr` valid for 64 bytes.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_in_order(ptr: *const u64) -> __m512i {
    let words: __m512i;
    // SAFETY: reads the 64 bytes at `ptr`, which the caller guarantees; it
    // writes no memory and no flags. Not `pure`, so LLVM does not reorder
    // these loads among themselves.
    asm!(
        "vmovdqu64 {words}, [{ptr}]",
        ptr = in(reg) ptr,
        words = out(zmm_reg) words,
        options(readonly, nostack, preserves_flags)
    );
    words
}

/// Eight `u32` distances in a YMM register (AVX-512VL compares on it).
#[derive(Clone, Copy)]
pub struct Avx512Vpopcnt(__m256i);

// SAFETY: only used from functions compiled with `avx512f,avx512bw,avx512vl,
// avx512vpopcntdq` that run after dispatch has confirmed all four; pointer
// validity is the caller's contract. 64-bit lane counts cannot overflow.
unsafe impl Popcount8 for Avx512Vpopcnt {
    type Group = __m512i;
    type Partial = __m512i;
    const PARTIAL_WORDS: usize = usize::MAX;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx512Vpopcnt(_mm256_setzero_si256())
    }
    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        Avx512Vpopcnt(_mm256_set1_epi32(x as i32))
    }
    #[inline(always)]
    unsafe fn load_group(ptr: *const u64) -> Self::Group {
        load_in_order(ptr)
    }
    #[inline(always)]
    unsafe fn partial_zero() -> Self::Partial {
        _mm512_setzero_si512()
    }
    #[inline(always)]
    unsafe fn accumulate(p: Self::Partial, q: u64, g: Self::Group) -> Self::Partial {
        let x = _mm512_xor_si512(_mm512_set1_epi64(q as i64), g);
        _mm512_add_epi64(p, _mm512_popcnt_epi64(x))
    }
    #[inline(always)]
    unsafe fn add_partial(self, p: Self::Partial) -> Self {
        Avx512Vpopcnt(_mm256_add_epi32(self.0, _mm512_cvtepi64_epi32(p)))
    }
    #[inline(always)]
    unsafe fn lt_mask(self, threshold: u32) -> u32 {
        _mm256_cmplt_epu32_mask(self.0, _mm256_set1_epi32(threshold as i32)) as u32
    }
    #[inline(always)]
    unsafe fn min(self, other: Self) -> Self {
        Avx512Vpopcnt(_mm256_min_epu32(self.0, other.0))
    }
    #[inline(always)]
    unsafe fn store(self, out: *mut u32) {
        _mm256_storeu_si256(out as *mut __m256i, self.0)
    }
    #[inline(always)]
    unsafe fn load(ptr: *const u32) -> Self {
        Avx512Vpopcnt(_mm256_loadu_si256(ptr as *const __m256i))
    }
    /// One ZMM of eight words per code and step: `vpxorq` + `vpopcntq` +
    /// `vpaddq`, exact `u64` lanes, then one horizontal sum per code. The
    /// default (`count_ones` per word) is several times slower: this path
    /// serves one or two queries, where it is bound by memory bandwidth only
    /// if the count itself is vectorised.
    #[inline(always)]
    unsafe fn rows8(q: *const u64, w: usize, rows: *const u8, stride: usize) -> Self {
        debug_assert!(w <= ROWS_MAX_WORDS);
        let mut acc = [_mm512_setzero_si512(); GROUP];
        let chunks = w / 8;
        for c in 0..chunks {
            let qv = _mm512_loadu_si512(q.add(8 * c) as *const _);
            for (i, a) in acc.iter_mut().enumerate() {
                let x = load_in_order(rows.add(i * stride + 64 * c) as *const u64);
                *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(qv, x)));
            }
        }
        let tail = w % 8;
        if tail != 0 {
            // Words `0..tail` of the last chunk. Masked-off lanes are neither
            // read nor able to fault, and load as zero (popcount 0).
            let mask: __mmask8 = (1u8 << tail) - 1;
            let qv = _mm512_maskz_loadu_epi64(mask, q.add(8 * chunks) as *const i64);
            for (i, a) in acc.iter_mut().enumerate() {
                let x = _mm512_maskz_loadu_epi64(
                    mask,
                    rows.add(i * stride + 64 * chunks) as *const i64,
                );
                *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(qv, x)));
            }
        }
        // A code has at most 124 words (7936 bits): its count fits in u32.
        let counts: [u32; GROUP] = std::array::from_fn(|i| _mm512_reduce_add_epi64(acc[i]) as u32);
        Avx512Vpopcnt(_mm256_loadu_si256(counts.as_ptr() as *const __m256i))
    }
}

/// Query rows per register block: each word of the group is loaded once and
/// used by four queries; 4 accumulators + the group + XOR scratch are few of
/// the 32 ZMM registers, and four independent add chains hide the latency.
const R: usize = 4;

tile_kernels!(
    Avx512Vpopcnt,
    R,
    "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,popcnt"
);
