//! `F32Vec` over `__m512`.

use crate::vector::F32Vec;
use std::arch::x86_64::*;

/// Sixteen f32 lanes in a ZMM register.
#[derive(Clone, Copy)]
pub struct Avx512F32(pub(crate) __m512);

// SAFETY: only used from functions compiled with `avx512f` that run after
// dispatch has confirmed it; pointer validity is the caller's contract.
unsafe impl F32Vec for Avx512F32 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Avx512F32(_mm512_setzero_ps())
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Avx512F32(_mm512_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        Avx512F32(_mm512_loadu_ps(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        _mm512_storeu_ps(ptr, self.0)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        Avx512F32(_mm512_fmadd_ps(self.0, b.0, acc.0))
    }
    #[inline(always)]
    unsafe fn max(self, other: Self) -> Self {
        // VMAXPS returns the second operand unless the first is greater (NaN included).
        Avx512F32(_mm512_max_ps(self.0, other.0))
    }
}
