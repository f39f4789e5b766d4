//! The portable ("scalar") reduced-precision kernels: float16 / bfloat16
//! documents widened in plain Rust inside the blocked float kernel, the
//! narrowing loops, and the int8 dot product on eight i32 lanes.

use crate::dispatch::{HalfKernel, Int8Kernel, TileShape};
use crate::reduced::half::{f32_to_bf16_bits, f32_to_f16_bits};
use crate::reduced::half_blocked::{doc_maxes, HalfQuery, Widen};
use crate::reduced::int8::{self, I8Dot, PackedI8};
use crate::reduced::Int8Job;
use crate::vector::{F32Vec, Portable8};

/// Query vectors per tile of the 16-bit kernels.
const HALF_R: usize = 2;
/// Document tokens per tile of the 16-bit kernels.
const HALF_T: usize = 4;
/// The 16-bit kernels' tile shape.
pub(crate) const HALF_SHAPE: TileShape = TileShape {
    lanes: <Portable8 as F32Vec>::LANES,
    r: HALF_R,
};

/// # Safety
/// `src` valid for `n` reads, `dst` for `n` writes.
pub(crate) unsafe fn f32_to_f16(src: *const f32, dst: *mut u16, n: usize) {
    for i in 0..n {
        *dst.add(i) = f32_to_f16_bits(*src.add(i));
    }
}

/// # Safety
/// `src` valid for `n` reads, `dst` for `n` writes.
pub(crate) unsafe fn f32_to_bf16(src: *const f32, dst: *mut u16, n: usize) {
    for i in 0..n {
        *dst.add(i) = f32_to_bf16_bits(*src.add(i));
    }
}

// SAFETY: plain array arithmetic over `Portable8`; loads read exactly `LANES`
// values, which the trait contract makes the caller guarantee.
unsafe impl Widen for Portable8 {
    #[inline(always)]
    unsafe fn widen_f16(src: *const u16) -> Self {
        let mut out = [0.0f32; 8];
        for (i, o) in out.iter_mut().enumerate() {
            *o = crate::reduced::half::f16_bits_to_f32(*src.add(i));
        }
        Self::load(out.as_ptr())
    }
    #[inline(always)]
    unsafe fn widen_bf16(src: *const u16) -> Self {
        let mut out = [0.0f32; 8];
        for (i, o) in out.iter_mut().enumerate() {
            *o = crate::reduced::half::bf16_bits_to_f32(*src.add(i));
        }
        Self::load(out.as_ptr())
    }
}

/// # Safety
/// Contract of [`doc_maxes`]; needs no CPU feature.
unsafe fn f16_doc_maxes(q: &HalfQuery<'_>, doc: &[u16], s: &mut Vec<f32>, m: &mut [f32]) {
    doc_maxes::<Portable8, false, HALF_R, HALF_T>(q, doc, s, m)
}

/// # Safety
/// Contract of [`doc_maxes`]; needs no CPU feature.
unsafe fn bf16_doc_maxes(q: &HalfQuery<'_>, doc: &[u16], s: &mut Vec<f32>, m: &mut [f32]) {
    doc_maxes::<Portable8, true, HALF_R, HALF_T>(q, doc, s, m)
}

/// float16 documents.
pub(crate) const F16: HalfKernel = HalfKernel {
    doc_maxes: f16_doc_maxes,
    shape: HALF_SHAPE,
    narrow: f32_to_f16,
    name: "scalar",
};

/// bfloat16 documents.
pub(crate) const BF16: HalfKernel = HalfKernel {
    doc_maxes: bf16_doc_maxes,
    shape: HALF_SHAPE,
    narrow: f32_to_bf16,
    name: "scalar",
};

/// The portable ("scalar") implementation: eight int32 lanes, pairs of i16.
#[derive(Clone, Copy)]
pub(crate) struct PortableI8([i32; 8]);

// SAFETY: plain array arithmetic; loads read exactly the documented number of
// elements, which the trait contract makes the caller guarantee.
unsafe impl I8Dot for PortableI8 {
    const LANES: usize = 8;
    const GROUP: usize = 2;
    const OFFSET: bool = false;
    const CONV: usize = 8;
    type QElem = i16;
    type DElem = i16;
    type Q = [i16; 16];
    type B = [i16; 2];
    type F = Portable8;

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
        PortableI8([0; 8])
    }
    #[inline(always)]
    unsafe fn load_i32(ptr: *const i32) -> Self {
        PortableI8(std::ptr::read_unaligned(ptr as *const [i32; 8]))
    }
    #[inline(always)]
    unsafe fn load_q(ptr: *const i16) -> [i16; 16] {
        std::ptr::read_unaligned(ptr as *const [i16; 16])
    }
    #[inline(always)]
    unsafe fn load_b(ptr: *const i16) -> [i16; 2] {
        std::ptr::read_unaligned(ptr as *const [i16; 2])
    }
    #[inline(always)]
    unsafe fn dot(self, q: [i16; 16], b: [i16; 2]) -> Self {
        let mut out = self.0;
        for (lane, o) in out.iter_mut().enumerate() {
            *o += q[2 * lane] as i32 * b[0] as i32 + q[2 * lane + 1] as i32 * b[1] as i32;
        }
        PortableI8(out)
    }
    #[inline(always)]
    unsafe fn to_f32(self) -> Portable8 {
        let mut out = [0.0f32; 8];
        for (o, &a) in out.iter_mut().zip(&self.0) {
            *o = a as f32;
        }
        <Portable8 as F32Vec>::load(out.as_ptr())
    }
    #[inline(always)]
    unsafe fn convert_doc(src: *const i8, dst: *mut i16, n: usize) {
        for i in 0..n {
            *dst.add(i) = *src.add(i) as i16;
        }
    }
}

/// Query vectors per tile of the int8 kernel.
const INT8_R: usize = 2;

/// # Safety
/// Contract of [`int8::doc_maxes`]; needs no CPU feature.
unsafe fn int8_doc_maxes(
    q: &PackedI8<i16>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<i16>,
    maxes: &mut [f32],
) {
    int8::doc_maxes::<PortableI8, INT8_R, 4>(q, codes, scales, scratch, maxes)
}

fn int8_run(job: Int8Job<'_>) -> Vec<f32> {
    job.run::<PortableI8>(INT8_R, int8_doc_maxes)
}

/// int8 documents.
pub(crate) const INT8: Int8Kernel = Int8Kernel {
    id: "scalar",
    run: int8_run,
    name: "scalar",
};
