//! NEON reduced-precision kernels: float16 (`fcvtl`) and bfloat16 (`shll`)
//! documents widened inside the float tile loop and multiplied with `fmla`,
//! `fcvtn` narrowing, and the int8 dot product with `sdot` (where the
//! `dotprod` feature exists) or widening `smlal` otherwise.
//!
//! Rust's f16 vector types and the dot-product intrinsics are unstable, so
//! `fcvtl`, `fcvtn` and `sdot` are written with `asm!` (pure register
//! operations, no memory access, no flags).

use super::vector::NeonF32;
use crate::dispatch::{HalfKernel, Int8Kernel, TileShape};
use crate::reduced::half::{f32_to_bf16_bits, f32_to_f16_bits};
use crate::reduced::half_blocked::{self, HalfQuery, Widen};
use crate::reduced::int8::{self, I8Dot, PackedI8};
use crate::reduced::Int8Job;
use crate::vector::F32Vec;
use std::arch::aarch64::*;
use std::arch::asm;

/// f32 → f16 with `fcvtn` (the default FPCR rounding: nearest even; overflow to ±inf).
///
/// # Safety
/// The CPU must support NEON; `src` valid for `n` reads, `dst` for `n` writes.
#[target_feature(enable = "neon")]
unsafe fn f32_to_f16(src: *const f32, dst: *mut u16, n: usize) {
    let mut i = 0;
    while i + 8 <= n {
        let lo = vld1q_f32(src.add(i));
        let hi = vld1q_f32(src.add(i + 4));
        let h: uint16x8_t;
        // SAFETY: FCVTN/FCVTN2 are base AdvSIMD register-only conversions;
        // FCVTN writes the low half, FCVTN2 the high half of the same register.
        asm!(
            "fcvtn {h:v}.4h, {lo:v}.4s",
            "fcvtn2 {h:v}.8h, {hi:v}.4s",
            lo = in(vreg) lo,
            hi = in(vreg) hi,
            h = out(vreg) h,
            options(pure, nomem, nostack, preserves_flags)
        );
        vst1q_u16(dst.add(i), h);
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
/// The CPU must support NEON; `src` valid for `n` reads, `dst` for `n` writes.
#[target_feature(enable = "neon")]
unsafe fn f32_to_bf16(src: *const f32, dst: *mut u16, n: usize) {
    let mut i = 0;
    let bias = vdupq_n_u32(0x7FFF);
    let one = vdupq_n_u32(1);
    let abs_mask = vdupq_n_u32(0x7FFF_FFFF);
    let inf = vdupq_n_u32(0x7F80_0000);
    let quiet = vdupq_n_u32(0x0040_0000);
    while i + 4 <= n {
        let bits = vreinterpretq_u32_f32(vld1q_f32(src.add(i)));
        let lsb = vandq_u32(vshrq_n_u32::<16>(bits), one);
        let rounded = vaddq_u32(bits, vaddq_u32(bias, lsb));
        let is_nan = vcgtq_u32(vandq_u32(bits, abs_mask), inf);
        let picked = vbslq_u32(is_nan, vorrq_u32(bits, quiet), rounded);
        vst1_u16(dst.add(i), vshrn_n_u32::<16>(picked));
        i += 4;
    }
    while i < n {
        *dst.add(i) = f32_to_bf16_bits(*src.add(i));
        i += 1;
    }
}

// SAFETY: only used from functions compiled with `neon`; each reads 4 values.
unsafe impl Widen for NeonF32 {
    #[inline(always)]
    unsafe fn widen_f16(src: *const u16) -> Self {
        let h = vld1_u16(src);
        let out: float32x4_t;
        // SAFETY: FCVTL is base AdvSIMD (ARMv8.0): a register-only, exact
        // widening of four binary16 lanes.
        asm!("fcvtl {o:v}.4s, {h:v}.4h", h = in(vreg) h, o = out(vreg) out, options(pure, nomem, nostack, preserves_flags));
        NeonF32(out)
    }
    #[inline(always)]
    unsafe fn widen_bf16(src: *const u16) -> Self {
        NeonF32(vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(src))))
    }
}

/// The float kernel's tile: 4 query vectors × 4 document tokens.
const HALF_R: usize = super::float::R;
const HALF_T: usize = super::float::T;
/// The 16-bit kernels' tile shape.
pub(crate) const HALF_SHAPE: TileShape = TileShape {
    lanes: <NeonF32 as F32Vec>::LANES,
    r: HALF_R,
};

/// # Safety
/// The CPU must support NEON; otherwise the contract of [`half_blocked::doc_maxes`].
#[target_feature(enable = "neon")]
unsafe fn f16_doc_maxes(q: &HalfQuery<'_>, doc: &[u16], scratch: &mut Vec<f32>, maxes: &mut [f32]) {
    half_blocked::doc_maxes::<NeonF32, false, HALF_R, HALF_T>(q, doc, scratch, maxes)
}

/// # Safety
/// The CPU must support NEON; otherwise the contract of [`half_blocked::doc_maxes`].
#[target_feature(enable = "neon")]
unsafe fn bf16_doc_maxes(
    q: &HalfQuery<'_>,
    doc: &[u16],
    scratch: &mut Vec<f32>,
    maxes: &mut [f32],
) {
    half_blocked::doc_maxes::<NeonF32, true, HALF_R, HALF_T>(q, doc, scratch, maxes)
}

/// Four int32 accumulators; one step is `sdot` over groups of four signed bytes.
#[derive(Clone, Copy)]
pub(crate) struct NeonSdot(int32x4_t);

// SAFETY: only used from functions compiled with `neon,dotprod`, run after
// dispatch confirmed both; pointer validity is the caller's contract.
unsafe impl I8Dot for NeonSdot {
    const LANES: usize = 4;
    const GROUP: usize = 4;
    const OFFSET: bool = false;
    const CONV: usize = 16;
    type QElem = i8;
    type DElem = i8;
    type Q = int8x16_t;
    type B = int8x16_t;
    type F = NeonF32;

    #[inline(always)]
    fn q_elem(code: i8) -> i8 {
        code
    }
    #[inline(always)]
    fn d_elem(code: i8) -> i8 {
        code
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        NeonSdot(vdupq_n_s32(0))
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        NeonSdot(vld1q_s32(ptr))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i8) -> int8x16_t {
        vld1q_s8(ptr)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const i8) -> int8x16_t {
        vreinterpretq_s8_s32(vdupq_n_s32(std::ptr::read_unaligned(ptr as *const i32)))
    }
    #[inline(always)]
    unsafe fn dot(self, q: int8x16_t, b: int8x16_t) -> Self {
        let mut acc = self.0;
        // SAFETY: SDOT (ARMv8.2 dotprod; callers are compiled with and
        // dispatched on it) is a register-only multiply-accumulate.
        asm!(
            "sdot {acc:v}.4s, {q:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            q = in(vreg) q,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
        NeonSdot(acc)
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> NeonF32 {
        NeonF32(vcvtq_f32_s32(self.0))
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut i8, n: usize) {
        std::ptr::copy_nonoverlapping(src, dst, n);
    }
}

/// Four int32 accumulators; one step is a widening `smlal` of one dimension
/// (i16 query lanes × one broadcast i16 document value).
#[derive(Clone, Copy)]
pub(crate) struct NeonSmlal(int32x4_t);

// SAFETY: only used from functions compiled with `neon`; pointer validity is
// the caller's contract.
unsafe impl I8Dot for NeonSmlal {
    const LANES: usize = 4;
    const GROUP: usize = 1;
    const OFFSET: bool = false;
    const CONV: usize = 8;
    type QElem = i16;
    type DElem = i16;
    type Q = int16x4_t;
    type B = int16x4_t;
    type F = NeonF32;

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
        NeonSmlal(vdupq_n_s32(0))
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        NeonSmlal(vld1q_s32(ptr))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i16) -> int16x4_t {
        vld1_s16(ptr)
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const i16) -> int16x4_t {
        vld1_dup_s16(ptr)
    }
    #[inline(always)]
    unsafe fn dot(self, q: int16x4_t, b: int16x4_t) -> Self {
        NeonSmlal(vmlal_s16(self.0, q, b))
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> NeonF32 {
        NeonF32(vcvtq_f32_s32(self.0))
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut i16, n: usize) {
        let mut i = 0;
        while i + 8 <= n {
            vst1q_s16(dst.add(i), vmovl_s8(vld1_s8(src.add(i))));
            i += 8;
        }
        while i < n {
            *dst.add(i) = *src.add(i) as i16;
            i += 1;
        }
    }
}

/// Query vectors per tile (4 query tokens each) and document tokens per tile:
/// 16 accumulators + 4 query operands + broadcasts of the 32 V registers.
const R: usize = 4;
const T: usize = 4;

/// # Safety
/// The CPU must support NEON and dotprod; otherwise the contract of [`int8::doc_maxes`].
#[target_feature(enable = "neon,dotprod")]
unsafe fn int8_doc_maxes_sdot(
    q: &PackedI8<i8>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<i8>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<NeonSdot, R, T>(q, codes, scales, scratch, maxes)
}

/// # Safety
/// The CPU must support NEON; otherwise the contract of [`int8::doc_maxes`].
#[target_feature(enable = "neon")]
unsafe fn int8_doc_maxes_smlal(
    q: &PackedI8<i16>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<i16>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<NeonSmlal, R, T>(q, codes, scales, scratch, maxes)
}

fn int8_run_sdot(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<NeonSdot>(R, int8_doc_maxes_sdot)
}

fn int8_run_smlal(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<NeonSmlal>(R, int8_doc_maxes_smlal)
}

/// int8 documents with the `dotprod` feature.
pub(crate) const INT8_SDOT: Int8Kernel = Int8Kernel {
    id: "neon-sdot",
    run: int8_run_sdot,
    name: "neon: sdot",
};

/// int8 documents on base NEON.
pub(crate) const INT8_SMLAL: Int8Kernel = Int8Kernel {
    id: "neon-smlal",
    run: int8_run_smlal,
    name: "neon: smlal",
};

/// float16 documents.
pub(crate) const F16: HalfKernel = HalfKernel {
    doc_maxes: f16_doc_maxes,
    shape: HALF_SHAPE,
    narrow: f32_to_f16,
    name: "neon: fcvtl + fmla",
};

/// bfloat16 documents.
pub(crate) const BF16: HalfKernel = HalfKernel {
    doc_maxes: bf16_doc_maxes,
    shape: HALF_SHAPE,
    narrow: f32_to_bf16,
    name: "neon: shll widening + fmla",
};
