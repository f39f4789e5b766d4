//! AVX2 int8 dot products with `vpmaddubsw`: 32 byte products per
//! instruction, where `vpmaddwd` on sign-extended codes does 16.
//!
//! `vpmaddubsw` multiplies unsigned bytes by signed bytes and adds adjacent
//! pairs into int16 **with saturation**. The unsigned operand is the
//! document's magnitudes `|d|` and the signed one the query with the
//! document's signs moved onto it, `sign(q, d) = q · sgn d` (`vpsignb`), so
//! each product is `|d| · q · sgn d = q · d`. With query codes in
//! `[-127, 127]` every operand is exact (`|d| ≤ 128` fits a byte unsigned,
//! `|q · sgn d| ≤ 127` signed) and a pair sums to at most
//! `2 · 128 · 127 = 32512 < 2¹⁵`: nothing saturates, and `vpmaddwd` with
//! ones widens the pairs to int32 exactly. Every document code, −128
//! included, is exact. A query code of −128 is not (`vpsignb` cannot negate
//! it): [`run`] checks the query once per call and scores such a query with
//! the `vpmaddwd` kernel instead, so every input keeps the exact int32 sums
//! (and bitwise the scores) of every other int8 path.
//!
//! Documents are converted per tile, once for all query tokens: each group
//! of four codes becomes eight bytes, `|d|` then `d`, so one step broadcasts
//! both with two loads and no arithmetic.

use super::reduced as avx2_reduced;
use super::vector::Avx2F32;
use crate::dispatch::Int8Kernel;
use crate::reduced::int8::{self, I8Dot, PackedI8};
use crate::reduced::Int8Job;
use std::arch::x86_64::*;

/// Eight int32 accumulators; one step is four dimensions of eight query tokens.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Maddubs(__m256i);

/// Two bytes of converted document per code: a group of four slots holds
/// the four magnitudes, then the four codes (see [`Avx2Maddubs::convert_doc`]).
pub(crate) type Slot = [u8; 2];

/// The converted bytes of one group of four codes.
#[inline(always)]
fn group_bytes(codes: [i8; 4]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (j, &c) in codes.iter().enumerate() {
        out[j] = c.unsigned_abs();
        out[4 + j] = c as u8;
    }
    out
}

// SAFETY: only used from functions compiled with `avx2,fma`, run after
// dispatch confirmed both; pointer validity is the caller's contract.
unsafe impl I8Dot for Avx2Maddubs {
    const LANES: usize = 8;
    const GROUP: usize = 4;
    const OFFSET: bool = false;
    const CONV: usize = 32;
    type QElem = i8;
    type DElem = Slot;
    type Q = __m256i;
    /// The group's magnitudes and its codes, each broadcast to every lane.
    type B = (__m256i, __m256i);
    type F = Avx2F32;

    #[inline(always)]
    fn q_elem(code: i8) -> i8 {
        code
    }
    /// Only zero is converted code by code (padding), and it is `[0, 0]` in
    /// either half of a group.
    #[inline(always)]
    fn d_elem(code: i8) -> Slot {
        [code.unsigned_abs(), code as u8]
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx2Maddubs(_mm256_setzero_si256())
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        Avx2Maddubs(_mm256_loadu_si256(ptr as *const __m256i))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i8) -> __m256i {
        _mm256_loadu_si256(ptr as *const __m256i)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const Slot) -> (__m256i, __m256i) {
        let bytes = ptr as *const u8;
        (
            _mm256_set1_epi32(std::ptr::read_unaligned(bytes as *const i32)),
            _mm256_set1_epi32(std::ptr::read_unaligned(bytes.add(4) as *const i32)),
        )
    }
    #[inline(always)]
    unsafe fn dot(self, q: __m256i, (magnitudes, codes): (__m256i, __m256i)) -> Self {
        let signed_q = _mm256_sign_epi8(q, codes);
        let pairs = _mm256_maddubs_epi16(magnitudes, signed_q);
        let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        Avx2Maddubs(_mm256_add_epi32(self.0, quads))
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> Avx2F32 {
        Avx2F32(_mm256_cvtepi32_ps(self.0))
    }
    /// `n` must be a multiple of four (whole groups); see [`Self::convert_row`].
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut Slot, n: usize) {
        debug_assert!(n.is_multiple_of(4));
        let mut i = 0;
        while i + 16 <= n {
            let codes = _mm_loadu_si128(src.add(i) as *const __m128i);
            let magnitudes = _mm_abs_epi8(codes);
            // 32-bit interleave: [|d0..3| d0..3 |d4..7| d4..7], then 8..15.
            let first = _mm_unpacklo_epi32(magnitudes, codes);
            let second = _mm_unpackhi_epi32(magnitudes, codes);
            _mm_storeu_si128(dst.add(i) as *mut __m128i, first);
            _mm_storeu_si128(dst.add(i + 8) as *mut __m128i, second);
            i += 16;
        }
        while i < n {
            let codes = std::ptr::read_unaligned(src.add(i) as *const [i8; 4]);
            std::ptr::write_unaligned(dst.add(i) as *mut [u8; 8], group_bytes(codes));
            i += 4;
        }
    }
    /// A row's last group may be partial: its missing codes are zeros.
    #[inline(always)]
    unsafe fn convert_row(src: *const i8, dst: *mut Slot, dim: usize, dimp: usize) {
        let whole = dim / 4 * 4;
        Self::convert_doc(src, dst, whole);
        if whole < dimp {
            let mut last = [0i8; 4];
            std::ptr::copy_nonoverlapping(src.add(whole), last.as_mut_ptr(), dim - whole);
            std::ptr::write_unaligned(dst.add(whole) as *mut [u8; 8], group_bytes(last));
        }
    }
}

/// Query vectors per tile (8 query tokens each): four, so the two
/// broadcasts of a document group feed eight dot steps.
pub(crate) const R: usize = 4;
/// Document tokens per tile: 8 accumulators + 4 query vectors + the two
/// broadcasts + the signed query + ones of the 16 YMM registers. (Of
/// 2 × 3, 2 × 4, 2 × 5, 3 × 3, 4 × 2 and 1 × 8 on Zen 3, 4 × 2 was fastest.)
const T: usize = 2;

/// # Safety
/// The CPU must support AVX2 and FMA; otherwise the contract of [`int8::doc_maxes`].
#[target_feature(enable = "avx2,fma")]
unsafe fn doc_maxes(
    q: &PackedI8<i8>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<Slot>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<Avx2Maddubs, R, T>(q, codes, scales, scratch, maxes)
}

/// Whether `vpmaddubsw` is exact for these queries: no code is −128.
pub(crate) fn exact_for(queries: &[i8]) -> bool {
    // A fold without an early exit vectorizes; queries are small.
    queries.iter().fold(true, |ok, &c| ok & (c != i8::MIN))
}

fn run(job: Int8Job<'_>) -> Vec<f32> {
    if exact_for(job.queries.codes()) {
        job.run::<Avx2Maddubs>(R, doc_maxes)
    } else {
        (avx2_reduced::INT8.run)(job)
    }
}

/// int8 documents with `vpmaddubsw` (the `vpmaddwd` kernel for a query with
/// a −128 code).
pub(crate) const INT8: Int8Kernel = Int8Kernel {
    id: "avx2-maddubs",
    run,
    name: "avx2: vpsignb + vpmaddubsw (vpmaddwd for -128 query codes)",
};
