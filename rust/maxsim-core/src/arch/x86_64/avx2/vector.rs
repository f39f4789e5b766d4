//! `F32Vec` over `__m256`.

use crate::vector::F32Vec;
use std::arch::x86_64::*;

/// Eight f32 lanes in a YMM register.
#[derive(Clone, Copy)]
pub struct Avx2F32(pub(crate) __m256);

// SAFETY: only used from functions compiled with `avx2,fma` that run after
// dispatch has confirmed both; pointer validity is the caller's contract.
unsafe impl F32Vec for Avx2F32 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx2F32(_mm256_setzero_ps())
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Avx2F32(_mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        Avx2F32(_mm256_loadu_ps(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        _mm256_storeu_ps(ptr, self.0)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        Avx2F32(_mm256_fmadd_ps(self.0, b.0, acc.0))
    }
    #[inline(always)]
    unsafe fn max(self, other: Self) -> Self {
        // VMAXPS returns the second operand unless the first is greater (NaN included).
        Avx2F32(_mm256_max_ps(self.0, other.0))
    }
}
