//! NEON Hamming kernel.
//!
//! Word `k` of the eight codes of a group is four Q registers (two codes
//! each). After the XOR with the broadcast query word, `vcntq_u8` gives
//! per-byte bit counts, summed byte-wise for up to 31 words (8 × 31 < 256);
//! pairwise widening adds (`vpaddlq_u8`, `vpaddq_u16`) then fold each code's
//! eight bytes into its exact count, in code order.

use crate::binary::blocked::tile_kernels;
use crate::binary::popcount::Popcount8;
use std::arch::aarch64::*;

/// Eight `u32` distances in two Q registers (codes 0–3, 4–7).
#[derive(Clone, Copy)]
pub struct NeonCnt(uint32x4_t, uint32x4_t);

// SAFETY: NEON is part of the aarch64 baseline and dispatch confirms it;
// pointer validity is the caller's contract. Byte counters hold at most 8
// per word, so 31 words stay below 256.
unsafe impl Popcount8 for NeonCnt {
    type Group = uint8x16x4_t;
    type Partial = uint8x16x4_t;
    const PARTIAL_WORDS: usize = 31;
    #[inline(always)]
    unsafe fn zero() -> Self {
        NeonCnt(vdupq_n_u32(0), vdupq_n_u32(0))
    }
    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        NeonCnt(vdupq_n_u32(x), vdupq_n_u32(x))
    }
    #[inline(always)]
    unsafe fn load_group(ptr: *const u64) -> Self::Group {
        vld1q_u8_x4(ptr as *const u8)
    }
    #[inline(always)]
    unsafe fn partial_zero() -> Self::Partial {
        let z = vdupq_n_u8(0);
        uint8x16x4_t(z, z, z, z)
    }
    #[inline(always)]
    unsafe fn accumulate(p: Self::Partial, q: u64, g: Self::Group) -> Self::Partial {
        let qv = vreinterpretq_u8_u64(vdupq_n_u64(q));
        uint8x16x4_t(
            vaddq_u8(p.0, vcntq_u8(veorq_u8(qv, g.0))),
            vaddq_u8(p.1, vcntq_u8(veorq_u8(qv, g.1))),
            vaddq_u8(p.2, vcntq_u8(veorq_u8(qv, g.2))),
            vaddq_u8(p.3, vcntq_u8(veorq_u8(qv, g.3))),
        )
    }
    #[inline(always)]
    unsafe fn add_partial(self, p: Self::Partial) -> Self {
        // Each register: two codes × 8 byte counts → two codes × 4 u16.
        let a = vpaddlq_u8(p.0);
        let b = vpaddlq_u8(p.1);
        let c = vpaddlq_u8(p.2);
        let d = vpaddlq_u8(p.3);
        // Pairwise adds keep code order: [c0 c0 c1 c1 c2 c2 c3 c3] then [c0 .. c7].
        let ab = vpaddq_u16(a, b);
        let cd = vpaddq_u16(c, d);
        let all = vpaddq_u16(ab, cd);
        NeonCnt(
            vaddq_u32(self.0, vmovl_u16(vget_low_u16(all))),
            vaddq_u32(self.1, vmovl_u16(vget_high_u16(all))),
        )
    }
    #[inline(always)]
    unsafe fn lt_mask(self, threshold: u32) -> u32 {
        let t = vdupq_n_u32(threshold);
        let bits: uint32x4_t = vld1q_u32([1u32, 2, 4, 8].as_ptr());
        let lo = vaddvq_u32(vandq_u32(vcltq_u32(self.0, t), bits));
        let hi = vaddvq_u32(vandq_u32(vcltq_u32(self.1, t), bits));
        lo | (hi << 4)
    }
    #[inline(always)]
    unsafe fn min(self, other: Self) -> Self {
        NeonCnt(vminq_u32(self.0, other.0), vminq_u32(self.1, other.1))
    }
    #[inline(always)]
    unsafe fn store(self, out: *mut u32) {
        vst1q_u32(out, self.0);
        vst1q_u32(out.add(4), self.1);
    }
    #[inline(always)]
    unsafe fn load(ptr: *const u32) -> Self {
        NeonCnt(vld1q_u32(ptr), vld1q_u32(ptr.add(4)))
    }
}

/// Query rows per register block: 2 × 4 partial registers, the group's four
/// and scratch fit easily in the 32 V registers.
const R: usize = 2;

tile_kernels!(NeonCnt, R, "neon");
