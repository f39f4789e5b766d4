//! `F32Vec` over `float32x4_t`.

use crate::vector::F32Vec;
use std::arch::aarch64::*;

/// Four f32 lanes in a NEON register.
#[derive(Clone, Copy)]
pub struct NeonF32(pub(crate) float32x4_t);

// SAFETY: NEON is part of the aarch64 baseline and dispatch confirms it;
// pointer validity is the caller's contract.
unsafe impl F32Vec for NeonF32 {
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn zero() -> Self {
        NeonF32(vdupq_n_f32(0.0))
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        NeonF32(vdupq_n_f32(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        NeonF32(vld1q_f32(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        vst1q_f32(ptr, self.0)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        NeonF32(vfmaq_f32(acc.0, self.0, b.0))
    }
    #[inline(always)]
    unsafe fn max(self, other: Self) -> Self {
        // Compare-and-select rather than FMAX so a NaN in `self` never wins,
        // matching the x86 kernels lane for lane.
        NeonF32(vbslq_f32(vcgtq_f32(self.0, other.0), self.0, other.0))
    }
}
