//! AVX2 int8 dot products with AVX-VNNI `vpdpbusd` (VEX, 256-bit): four
//! byte products summed into each int32 lane and accumulated in one
//! instruction, 32 multiply-adds where `vpmaddwd` on sign-extended codes
//! does 16 and needs a `vpaddd` besides.
//!
//! AVX-VNNI is the 256-bit form of AVX512_VNNI for CPUs without AVX-512:
//! Intel from Alder Lake on (P- and E-cores), and AMD from Zen 5. As in the
//! AVX-512 kernel, `vpdpbusd` multiplies unsigned bytes by signed ones, so
//! documents are offset to unsigned (`code + 128`, a sign-bit flip) and the
//! offset is cancelled by the accumulators' start values (`-128 Σ q` per
//! query token). Every product and sum is exact in int32, −128 codes on
//! either side included, so the scores are bitwise those of every other
//! int8 path.

use super::vector::Avx2F32;
use crate::dispatch::Int8Kernel;
use crate::reduced::int8::{self, I8Dot, PackedI8};
use crate::reduced::Int8Job;
use std::arch::x86_64::*;

/// Eight int32 accumulators; one step is four dimensions of eight query tokens.
#[derive(Clone, Copy)]
pub(crate) struct Avx2Vnni(__m256i);

// SAFETY: only used from functions compiled with `avx2,fma,avxvnni`, run
// after dispatch confirmed them; pointer validity is the caller's contract.
unsafe impl I8Dot for Avx2Vnni {
    const LANES: usize = 8;
    const GROUP: usize = 4;
    const OFFSET: bool = true;
    const CONV: usize = 32;
    type QElem = i8;
    type DElem = u8;
    type Q = __m256i;
    type B = __m256i;
    type F = Avx2F32;

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
        Avx2Vnni(_mm256_setzero_si256())
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        Avx2Vnni(_mm256_loadu_si256(ptr as *const __m256i))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i8) -> __m256i {
        _mm256_loadu_si256(ptr as *const __m256i)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const u8) -> __m256i {
        _mm256_set1_epi32(std::ptr::read_unaligned(ptr as *const i32))
    }
    #[inline(always)]
    unsafe fn dot(self, q: __m256i, b: __m256i) -> Self {
        // Unsigned document bytes × signed query bytes, four per lane.
        Avx2Vnni(_mm256_dpbusd_avx_epi32(self.0, b, q))
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> Avx2F32 {
        Avx2F32(_mm256_cvtepi32_ps(self.0))
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut u8, n: usize) {
        let flip = _mm256_set1_epi8(-128);
        let mut i = 0;
        while i + 32 <= n {
            let b = _mm256_loadu_si256(src.add(i) as *const __m256i);
            _mm256_storeu_si256(dst.add(i) as *mut __m256i, _mm256_xor_si256(b, flip));
            i += 32;
        }
        while i < n {
            *dst.add(i) = Self::d_elem(*src.add(i));
            i += 1;
        }
    }
}

/// Query vectors per tile (8 query tokens each).
const R: usize = 2;
/// Document tokens per tile: 12 accumulators + 2 query vectors + 1
/// broadcast of the 16 YMM registers (`vpdpbusd` accumulates in place, so
/// no register holds a product).
const T: usize = 6;

/// # Safety
/// The CPU must support AVX2, FMA and AVX-VNNI; otherwise the contract of
/// [`int8::doc_maxes`].
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn doc_maxes(
    q: &PackedI8<i8>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<u8>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<Avx2Vnni, R, T>(q, codes, scales, scratch, maxes)
}

fn run(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<Avx2Vnni>(R, doc_maxes)
}

/// int8 documents with AVX-VNNI (the table holds it only where the CPU has it).
pub(crate) const INT8: Int8Kernel = Int8Kernel {
    id: "avx2-vnni",
    run,
    name: "avx2: avx-vnni vpdpbusd",
};
