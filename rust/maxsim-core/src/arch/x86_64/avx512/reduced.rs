//! AVX-512 reduced-precision kernels: float16 (`vcvtph2ps zmm`) and bfloat16
//! (zero-extend + shift) documents widened inside the float tile loop and
//! multiplied with FMA, and the int8 dot product with VNNI `vpdpbusd` or
//! AVX-512BW `vpmaddwd`.
//!
//! Tested on an AVX-512 machine (AMD Zen 4) against the scalar reference and
//! the other ISAs. With AVX512_BF16 on AMD, float16 batches and bfloat16
//! documents are screened instead (`avx512::screen`), bitwise equal to these.
//! Narrowing to 16 bits uses the AVX2 routines (F16C `vcvtps2ph`).

use super::vector::Avx512F32;
use crate::arch::x86_64::avx2;
use crate::dispatch::{HalfKernel, Int8Kernel, TileShape};
use crate::reduced::half_blocked::{self, HalfQuery, Widen};
use crate::reduced::int8::{self, I8Dot, PackedI8};
use crate::reduced::Int8Job;
use crate::vector::F32Vec;
use std::arch::x86_64::*;

// SAFETY: only used from functions compiled with `avx512f`; each reads 16 values.
unsafe impl Widen for Avx512F32 {
    #[inline(always)]
    unsafe fn widen_f16(src: *const u16) -> Self {
        Avx512F32(_mm512_cvtph_ps(_mm256_loadu_si256(src as *const __m256i)))
    }
    #[inline(always)]
    unsafe fn widen_bf16(src: *const u16) -> Self {
        let h = _mm256_loadu_si256(src as *const __m256i);
        Avx512F32(_mm512_castsi512_ps(_mm512_slli_epi32::<16>(
            _mm512_cvtepu16_epi32(h),
        )))
    }
}

/// The float kernel's tile: 2 query vectors × 8 document tokens.
const HALF_R: usize = super::float::R;
const HALF_T: usize = super::float::T;
/// The 16-bit kernels' tile shape.
pub(crate) const HALF_SHAPE: TileShape = TileShape {
    lanes: <Avx512F32 as F32Vec>::LANES,
    r: HALF_R,
};

/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of [`half_blocked::doc_maxes`].
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn f16_doc_maxes(q: &HalfQuery<'_>, doc: &[u16], scratch: &mut Vec<f32>, maxes: &mut [f32]) {
    half_blocked::doc_maxes::<Avx512F32, false, HALF_R, HALF_T>(q, doc, scratch, maxes)
}

/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of [`half_blocked::doc_maxes`].
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn bf16_doc_maxes(
    q: &HalfQuery<'_>,
    doc: &[u16],
    scratch: &mut Vec<f32>,
    maxes: &mut [f32],
) {
    half_blocked::doc_maxes::<Avx512F32, true, HALF_R, HALF_T>(q, doc, scratch, maxes)
}

/// Sixteen int32 accumulators; one step is `vpdpbusd` over groups of four
/// bytes, documents offset to unsigned (`code + 128`), cancelled by the
/// accumulators' start values.
#[derive(Clone, Copy)]
pub(crate) struct Avx512Vnni(__m512i);

// SAFETY: only used from functions compiled with `avx512f,avx512bw,avx512vnni`,
// run after dispatch confirmed them; pointer validity is the caller's contract.
unsafe impl I8Dot for Avx512Vnni {
    const LANES: usize = 16;
    const GROUP: usize = 4;
    const OFFSET: bool = true;
    const CONV: usize = 64;
    type QElem = i8;
    type DElem = u8;
    type Q = __m512i;
    type B = __m512i;
    type F = Avx512F32;

    #[inline(always)]
    fn q_elem(code: i8) -> i8 {
        code
    }
    #[inline(always)]
    fn d_elem(code: i8) -> u8 {
        (code as u8) ^ 0x80
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx512Vnni(_mm512_setzero_si512())
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        Avx512Vnni(_mm512_loadu_si512(ptr as *const __m512i))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i8) -> __m512i {
        _mm512_loadu_si512(ptr as *const __m512i)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const u8) -> __m512i {
        _mm512_set1_epi32(std::ptr::read_unaligned(ptr as *const i32))
    }
    #[inline(always)]
    unsafe fn dot(self, q: __m512i, b: __m512i) -> Self {
        // Unsigned document bytes × signed query bytes, four per lane.
        Avx512Vnni(_mm512_dpbusd_epi32(self.0, b, q))
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> Avx512F32 {
        Avx512F32(_mm512_cvtepi32_ps(self.0))
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut u8, n: usize) {
        let flip = _mm512_set1_epi8(-128);
        let mut i = 0;
        while i + 64 <= n {
            let b = _mm512_loadu_si512(src.add(i) as *const __m512i);
            _mm512_storeu_si512(dst.add(i) as *mut __m512i, _mm512_xor_si512(b, flip));
            i += 64;
        }
        while i < n {
            *dst.add(i) = Self::d_elem(*src.add(i));
            i += 1;
        }
    }
}

/// Sixteen int32 accumulators; one step multiplies pairs of i16 (`vpmaddwd zmm`).
#[derive(Clone, Copy)]
pub(crate) struct Avx512Bw(__m512i);

// SAFETY: only used from functions compiled with `avx512f,avx512bw`, run after
// dispatch confirmed them; pointer validity is the caller's contract.
unsafe impl I8Dot for Avx512Bw {
    const LANES: usize = 16;
    const GROUP: usize = 2;
    const OFFSET: bool = false;
    const CONV: usize = 32;
    type QElem = i16;
    type DElem = i16;
    type Q = __m512i;
    type B = __m512i;
    type F = Avx512F32;

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
        Avx512Bw(_mm512_setzero_si512())
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        Avx512Bw(_mm512_loadu_si512(ptr as *const __m512i))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i16) -> __m512i {
        _mm512_loadu_si512(ptr as *const __m512i)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const i16) -> __m512i {
        _mm512_set1_epi32(std::ptr::read_unaligned(ptr as *const i32))
    }
    #[inline(always)]
    unsafe fn dot(self, q: __m512i, b: __m512i) -> Self {
        Avx512Bw(_mm512_add_epi32(self.0, _mm512_madd_epi16(q, b)))
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> Avx512F32 {
        Avx512F32(_mm512_cvtepi32_ps(self.0))
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut i16, n: usize) {
        let mut i = 0;
        while i + 32 <= n {
            let b = _mm256_loadu_si256(src.add(i) as *const __m256i);
            _mm512_storeu_si512(dst.add(i) as *mut __m512i, _mm512_cvtepi8_epi16(b));
            i += 32;
        }
        while i < n {
            *dst.add(i) = *src.add(i) as i16;
            i += 1;
        }
    }
}

/// Query vectors per int8 tile (16 query tokens each).
pub(crate) const INT8_R: usize = 2;
const R: usize = INT8_R;
/// Document tokens per tile: 16 accumulators + 2 query vectors + broadcast
/// + product of the 32 ZMM registers.
const T: usize = 8;

/// # Safety
/// The CPU must support AVX-512F/BW and AVX512-VNNI; otherwise the contract of [`int8::doc_maxes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn int8_doc_maxes_vnni(
    q: &PackedI8<i8>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<u8>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<Avx512Vnni, R, T>(q, codes, scales, scratch, maxes)
}

/// # Safety
/// The CPU must support AVX-512F/BW; otherwise the contract of [`int8::doc_maxes`].
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn int8_doc_maxes_bw(
    q: &PackedI8<i16>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<i16>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<Avx512Bw, R, T>(q, codes, scales, scratch, maxes)
}

fn int8_run_vnni(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<Avx512Vnni>(R, int8_doc_maxes_vnni)
}

fn int8_run_bw(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<Avx512Bw>(R, int8_doc_maxes_bw)
}

/// int8 documents with AVX512_VNNI.
pub(crate) const INT8_VNNI: Int8Kernel = Int8Kernel {
    id: "avx512-vnni",
    run: int8_run_vnni,
    name: "avx512: vnni vpdpbusd",
};

/// int8 documents with AVX-512BW only.
pub(crate) const INT8_BW: Int8Kernel = Int8Kernel {
    id: "avx512bw",
    run: int8_run_bw,
    name: "avx512: vpmaddwd",
};

/// float16 documents.
pub(crate) const F16: HalfKernel = HalfKernel {
    doc_maxes: f16_doc_maxes,
    shape: HALF_SHAPE,
    name: "avx512: vcvtph2ps zmm + fma",
    ..avx2::reduced::F16
};

/// float16 documents on a CPU without F16C, which `vcvtps2ph` needs for narrowing.
pub(crate) const F16_WITHOUT_F16C: HalfKernel = HalfKernel {
    narrow: crate::arch::portable::reduced::F16.narrow,
    ..F16
};

/// bfloat16 documents.
pub(crate) const BF16: HalfKernel = HalfKernel {
    doc_maxes: bf16_doc_maxes,
    shape: HALF_SHAPE,
    name: "avx512: shift widening + fma",
    ..avx2::reduced::BF16
};
