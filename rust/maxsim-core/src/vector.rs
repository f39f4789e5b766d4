//! The SIMD vocabulary the portable algorithms are written in.
//!
//! Each ISA folder under `arch/` implements [`F32Vec`] for its register type;
//! the algorithms in `float/` are generic over it and are instantiated inside
//! `#[target_feature]` functions, where every method inlines to one or two
//! instructions. [`Portable8`] is the plain-Rust implementation used by the
//! scalar path (LLVM lowers it to whatever the baseline target has).

/// A vector of `LANES` f32 values.
///
/// # Safety
/// Implementations use ISA intrinsics: callers must only use a type inside a
/// function compiled with (and running on a CPU with) the matching features,
/// and pointers passed to `load`/`store` must be valid for `LANES` values.
// The methods share the trait-level contract in `# Safety` above.
#[allow(clippy::missing_safety_doc)]
pub unsafe trait F32Vec: Copy {
    /// Number of f32 lanes.
    const LANES: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: f32) -> Self;
    /// Unaligned load of `LANES` values.
    unsafe fn load(ptr: *const f32) -> Self;
    /// Unaligned store of `LANES` values.
    unsafe fn store(self, ptr: *mut f32);
    /// `self * b + acc` (fused where the ISA has FMA).
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self;
    /// Per lane `if self > other { self } else { other }`: a NaN in `self`
    /// never replaces `other`, on every ISA.
    unsafe fn max(self, other: Self) -> Self;
}

/// f32 values in a 64-byte cache line.
pub const FLOATS_PER_LINE: usize = 16;

/// Hints the CPU to bring the cache line holding `ptr` into L1. Never faults,
/// whatever `ptr` is, so it needs no safety contract.
#[inline(always)]
pub fn prefetch_read(ptr: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is SSE (x86-64 baseline) and is only a hint: it
    // does not fault on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is only a hint and does not fault on any address.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) ptr, options(nostack, readonly, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = ptr;
}

/// Prefetches every cache line of the `bytes` bytes from `start` (an
/// address formed with wrapping arithmetic: it need not be in any
/// allocation, since a prefetch never faults).
#[inline(always)]
pub fn prefetch_lines(start: *const u8, bytes: usize) {
    let mut byte = 0;
    while byte < bytes {
        prefetch_read(start.wrapping_add(byte) as *const f32);
        byte += 64;
    }
}

/// `ptr`, unchanged, passed through an empty `asm!` block that the optimiser
/// cannot see into. Called inside a loop, it stops LLVM from hoisting
/// loop-invariant loads through `ptr` out of the loop. Hoisting is wrong for
/// the Hamming kernels: 32 broadcast query words do not fit in registers
/// beside the codes, so LLVM spilled them (and the codes) to the stack and
/// reloaded them for every group, where a broadcast straight from the query
/// row in L1 is one cheap load folded into the XOR.
#[inline(always)]
pub fn opaque_ptr<T>(ptr: *const T) -> *const T {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        // Only the address passes through the block (the pointer keeps its
        // provenance via `with_addr`).
        let mut addr = ptr.addr();
        // SAFETY: the template is empty: no instruction runs, no memory or
        // flag is touched, and the register comes back holding `addr`. It
        // is not `pure`, so LLVM keeps one copy per loop iteration.
        unsafe {
            std::arch::asm!("/* {0} */", inout(reg) addr, options(nomem, nostack, preserves_flags))
        };
        ptr.with_addr(addr)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    ptr
}

/// Eight f32 lanes in plain Rust; the portable "scalar" path.
#[derive(Clone, Copy)]
pub struct Portable8([f32; 8]);

// SAFETY: plain array arithmetic; `load`/`store` read/write exactly 8 values,
// which the trait contract makes the caller guarantee.
unsafe impl F32Vec for Portable8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Portable8([0.0; 8])
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Portable8([x; 8])
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        Portable8(std::ptr::read_unaligned(ptr as *const [f32; 8]))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        std::ptr::write_unaligned(ptr as *mut [f32; 8], self.0)
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        let mut out = acc.0;
        for ((o, a), b) in out.iter_mut().zip(self.0).zip(b.0) {
            *o += a * b;
        }
        Portable8(out)
    }
    #[inline(always)]
    unsafe fn max(self, other: Self) -> Self {
        let mut out = other.0;
        for (o, a) in out.iter_mut().zip(self.0) {
            if a > *o {
                *o = a;
            }
        }
        Portable8(out)
    }
}
