//! AVX2 reduced-precision kernels: float16 (F16C `vcvtph2ps`) and bfloat16
//! (zero-extend + shift) documents widened inside the float tile loop,
//! narrowing for the quantizer, and the int8 `vpmaddwd` dot product.

use super::vector::Avx2F32;
use crate::dispatch::{HalfKernel, Int8Kernel, TileShape};
use crate::reduced::half::{f32_to_bf16_bits, f32_to_f16_bits};
use crate::reduced::half_blocked::{self, HalfQuery, Widen};
use crate::reduced::int8::{self, I8Dot, PackedI8};
use crate::reduced::quantize::{quantize_rows_inline, RowsFn};
use crate::reduced::Int8Job;
use crate::vector::F32Vec;
use std::arch::x86_64::*;

/// f32 → f16 with `vcvtps2ph` (round to nearest even, overflow to ±inf).
///
/// # Safety
/// The CPU must support AVX2 and F16C; `src` valid for `n` reads, `dst` for `n` writes.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn f32_to_f16(src: *const f32, dst: *mut u16, n: usize) {
    let mut i = 0;
    while i + 8 <= n {
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.add(i)));
        _mm_storeu_si128(dst.add(i) as *mut __m128i, h);
        i += 8;
    }
    while i < n {
        *dst.add(i) = f32_to_f16_bits(*src.add(i));
        i += 1;
    }
}

/// f32 → bf16, round to nearest even, NaN kept quiet (as `f32_to_bf16_bits`).
///
/// # Safety
/// The CPU must support AVX2; `src` valid for `n` reads, `dst` for `n` writes.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn f32_to_bf16(src: *const f32, dst: *mut u16, n: usize) {
    let mut i = 0;
    let bias = _mm256_set1_epi32(0x7FFF);
    let one = _mm256_set1_epi32(1);
    let abs_mask = _mm256_set1_epi32(0x7FFF_FFFF);
    let inf = _mm256_set1_epi32(0x7F80_0000);
    let quiet = _mm256_set1_epi32(0x0040_0000);
    while i + 16 <= n {
        let mut halves = [_mm256_setzero_si256(); 2];
        for (h, slot) in halves.iter_mut().enumerate() {
            let bits = _mm256_castps_si256(_mm256_loadu_ps(src.add(i + 8 * h)));
            let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(bits), one);
            let rounded = _mm256_add_epi32(bits, _mm256_add_epi32(bias, lsb));
            let is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, abs_mask), inf);
            let nan = _mm256_or_si256(bits, quiet);
            let picked = _mm256_blendv_epi8(rounded, nan, is_nan);
            *slot = _mm256_srli_epi32::<16>(picked);
        }
        // packus works per 128-bit lane: reorder the 64-bit quarters afterwards.
        let packed = _mm256_packus_epi32(halves[0], halves[1]);
        let ordered = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
        _mm256_storeu_si256(dst.add(i) as *mut __m256i, ordered);
        i += 16;
    }
    while i < n {
        *dst.add(i) = f32_to_bf16_bits(*src.add(i));
        i += 1;
    }
}

// SAFETY: `widen_f16` is only instantiated in functions compiled with `f16c`
// (and dispatched on it); `widen_bf16` needs AVX2 only. Each reads 8 values.
unsafe impl Widen for Avx2F32 {
    #[inline(always)]
    unsafe fn widen_f16(src: *const u16) -> Self {
        Avx2F32(_mm256_cvtph_ps(_mm_loadu_si128(src as *const __m128i)))
    }
    #[inline(always)]
    unsafe fn widen_bf16(src: *const u16) -> Self {
        let h = _mm_loadu_si128(src as *const __m128i);
        Avx2F32(_mm256_castsi256_ps(_mm256_slli_epi32::<16>(
            _mm256_cvtepu16_epi32(h),
        )))
    }
}

/// The float kernel's tile: 2 query vectors × 6 document tokens.
const HALF_R: usize = super::float::R;
const HALF_T: usize = super::float::T;
/// The 16-bit kernels' tile shape.
pub(crate) const HALF_SHAPE: TileShape = TileShape {
    lanes: <Avx2F32 as F32Vec>::LANES,
    r: HALF_R,
};

/// # Safety
/// The CPU must support AVX2, FMA and F16C; otherwise the contract of [`half_blocked::doc_maxes`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_doc_maxes(q: &HalfQuery<'_>, doc: &[u16], scratch: &mut Vec<f32>, maxes: &mut [f32]) {
    half_blocked::doc_maxes::<Avx2F32, false, HALF_R, HALF_T>(q, doc, scratch, maxes)
}

/// # Safety
/// The CPU must support AVX2 and FMA; otherwise the contract of [`half_blocked::doc_maxes`].
#[target_feature(enable = "avx2,fma")]
unsafe fn bf16_doc_maxes(
    q: &HalfQuery<'_>,
    doc: &[u16],
    scratch: &mut Vec<f32>,
    maxes: &mut [f32],
) {
    half_blocked::doc_maxes::<Avx2F32, true, HALF_R, HALF_T>(q, doc, scratch, maxes)
}

/// Eight int32 accumulators; one step multiplies pairs of i16 (`vpmaddwd`).
#[derive(Clone, Copy)]
pub(crate) struct Avx2I8(__m256i);

// SAFETY: only used from functions compiled with `avx2,fma`, run after dispatch
// confirmed both; pointer validity is the caller's contract.
unsafe impl I8Dot for Avx2I8 {
    const LANES: usize = 8;
    const GROUP: usize = 2;
    const OFFSET: bool = false;
    const CONV: usize = 16;
    type QElem = i16;
    type DElem = i16;
    type Q = __m256i;
    type B = __m256i;
    type F = Avx2F32;

    #[inline(always)]
    fn q_elem(code: i8) -> i16 {
        code as i16
    }
    #[inline(always)]
    fn d_elem(code: i8) -> i16 {
        code as i16
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx2I8(_mm256_setzero_si256())
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        Avx2I8(_mm256_loadu_si256(ptr as *const __m256i))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i16) -> __m256i {
        _mm256_loadu_si256(ptr as *const __m256i)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const i16) -> __m256i {
        _mm256_set1_epi32(std::ptr::read_unaligned(ptr as *const i32))
    }
    #[inline(always)]
    unsafe fn dot(self, q: __m256i, b: __m256i) -> Self {
        Avx2I8(_mm256_add_epi32(self.0, _mm256_madd_epi16(q, b)))
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> Avx2F32 {
        Avx2F32(_mm256_cvtepi32_ps(self.0))
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut i16, n: usize) {
        let mut i = 0;
        while i + 16 <= n {
            let b = _mm_loadu_si128(src.add(i) as *const __m128i);
            _mm256_storeu_si256(dst.add(i) as *mut __m256i, _mm256_cvtepi8_epi16(b));
            i += 16;
        }
        while i < n {
            *dst.add(i) = *src.add(i) as i16;
            i += 1;
        }
    }
}

/// Query vectors per int8 tile (8 query tokens each).
const R: usize = 2;
/// Document tokens per tile: 12 accumulators + 2 query vectors + 1 broadcast
/// + 1 product of the 16 YMM registers.
const T: usize = 6;

/// # Safety
/// The CPU must support AVX2 and FMA; otherwise the contract of [`int8::doc_maxes`].
#[target_feature(enable = "avx2,fma")]
unsafe fn int8_doc_maxes(
    q: &PackedI8<i16>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<i16>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<Avx2I8, R, T>(q, codes, scales, scratch, maxes)
}

fn int8_run(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<Avx2I8>(R, int8_doc_maxes)
}

/// int8 documents.
pub(crate) const INT8: Int8Kernel = Int8Kernel {
    id: "avx2",
    run: int8_run,
    name: "avx2: vpmaddwd",
};

/// float16 documents (needs F16C besides AVX2).
pub(crate) const F16: HalfKernel = HalfKernel {
    doc_maxes: f16_doc_maxes,
    shape: HALF_SHAPE,
    narrow: f32_to_f16,
    name: "avx2: f16c vcvtph2ps + fma",
};

/// bfloat16 documents.
pub(crate) const BF16: HalfKernel = HalfKernel {
    doc_maxes: bf16_doc_maxes,
    shape: HALF_SHAPE,
    narrow: f32_to_bf16,
    name: "avx2: shift widening + fma",
};

/// The int8 quantizer's row loop compiled for AVX2: IEEE operations only, so
/// its results are those of the portable build, eight lanes wide.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize_rows(
    values: &[f32],
    dim: usize,
    codes: &mut [i8],
    scales: &mut [f32],
) -> Option<(usize, usize)> {
    quantize_rows_inline(values, dim, codes, scales)
}

/// [`quantize_rows`] as the table holds it.
pub(crate) const QUANTIZE_ROWS: RowsFn = quantize_rows;
