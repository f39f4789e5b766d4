//! Measures this core's fp32 FMA peak, the ceiling the kernels are judged against.
//!
//! Runs independent FMA chains (enough to cover latency × throughput) on the
//! widest supported vector for a fixed number of iterations and reports the
//! best of several runs in GFLOP/s (one FMA = 2 flops per lane).

use crate::dispatch::Kernel;
use crate::vector::F32Vec;
use std::time::Instant;

/// Independent accumulator chains; 12 covers 4-cycle latency × 2 pipes (+ margin).
const CHAINS: usize = 12;

#[inline(always)]
unsafe fn fma_loop<V: F32Vec>(iterations: usize) -> f32 {
    let mut acc = [V::splat(0.0); CHAINS];
    let a = V::splat(0.999_999);
    let b = V::splat(1e-7);
    for _ in 0..iterations {
        for slot in acc.iter_mut() {
            *slot = slot.mul_add(a, b);
        }
    }
    let mut out = [0.0f32; 16];
    let mut total = 0.0;
    for v in acc {
        v.store(out.as_mut_ptr());
        total += out[0];
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(iterations: usize) -> f32 {
    fma_loop::<crate::arch::x86_64::avx2::vector::Avx2F32>(iterations)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(iterations: usize) -> f32 {
    fma_loop::<crate::arch::x86_64::avx512::vector::Avx512F32>(iterations)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn fma_neon(iterations: usize) -> f32 {
    fma_loop::<crate::arch::aarch64::neon::vector::NeonF32>(iterations)
}

/// Best-of-5 single-thread fp32 FMA throughput of `kernel`'s vectors, GFLOP/s.
/// Returns `None` for the portable kernel (it has no fixed vector width).
pub fn fma_peak_gflops(kernel: Kernel) -> Option<f64> {
    if !kernel.is_supported() {
        return None;
    }
    let (run, lanes): (unsafe fn(usize) -> f32, usize) = match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => (fma_avx2, 8),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 | Kernel::Amx => (fma_avx512, 16),
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon => (fma_neon, 4),
        _ => return None,
    };
    let iterations = 2_000_000;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        // SAFETY: `kernel` is supported by this CPU (checked above), which is the
        // only requirement of the target-feature functions.
        std::hint::black_box(unsafe { run(iterations) });
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some((iterations * CHAINS * lanes * 2) as f64 / best / 1e9)
}
