//! Measures this machine's ceilings the kernels are judged against: a core's fp32
//! FMA peak, its bf16 dot-product peak (`vdpbf16ps`, the instruction the
//! float32 screen spends most of its time in), and the memory read bandwidth
//! of one or more threads.
//!
//! The FMA peak runs independent FMA chains (enough to cover latency ×
//! throughput) on the widest supported vector for a fixed number of iterations
//! and reports the best of several runs in GFLOP/s (one FMA = 2 flops per
//! lane; one `vdpbf16ps` = 2 products and their sums per lane, 4 flops). The read bandwidth streams a buffer of the caller's size, split
//! across threads, and reports the best of several passes in GB/s: sized like
//! the data a scan reads once per call (one streamed Hamming query over a
//! database), it is that scan's ceiling, including whatever part of the buffer
//! the last-level cache keeps between passes.

use crate::dispatch::{table, Kernel};
use crate::vector::F32Vec;
use std::time::Instant;

/// Independent accumulator chains; 12 covers 4-cycle latency × 2 pipes (+ margin).
pub(crate) const CHAINS: usize = 12;

/// `CHAINS` independent FMA chains on `V`, `iterations` steps each; each
/// `arch` folder instantiates it as its table's `PeakProbe`.
///
/// # Safety
/// As [`F32Vec`]: only inside a function compiled with `V`'s features.
#[inline(always)]
pub(crate) unsafe fn fma_loop<V: F32Vec>(iterations: usize) -> f32 {
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

/// Best-of-5 single-thread fp32 FMA throughput of `kernel`'s vectors, GFLOP/s.
/// Returns `None` for the portable kernel (it has no fixed vector width).
pub fn fma_peak_gflops(kernel: Kernel) -> Option<f64> {
    let probe = table(kernel).ok()?.fma_peak?;
    // SAFETY: the table of a supported kernel holds a probe this CPU runs,
    // which is the only requirement of the target-feature function.
    Some(unsafe { best_gflops(probe.run, probe.lanes * 2) })
}

/// Best-of-5 GFLOP/s of `run`'s `CHAINS` chains over [`ITERATIONS`] steps,
/// each step of each chain doing `flops_per_step` flops.
///
/// # Safety
/// This CPU must support the target features `run` is compiled with.
unsafe fn best_gflops(run: unsafe fn(usize) -> f32, flops_per_step: usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        // SAFETY: the caller guarantees the target features.
        std::hint::black_box(unsafe { run(ITERATIONS) });
        best = best.min(start.elapsed().as_secs_f64());
    }
    (ITERATIONS * CHAINS * flops_per_step) as f64 / best / 1e9
}

/// Steps of each chain per timed run (24 M instructions: milliseconds).
const ITERATIONS: usize = 2_000_000;

/// Best-of-5 single-thread throughput of the screen's dot product, GFLOP/s
/// (a product and its sum: 2 flops): AVX512_BF16's `vdpbf16ps` on 512-bit
/// vectors (64 flops per instruction), or AVX2's `vpmaddwd` with its
/// accumulating `vpaddd` (32 per pair). Returns `None` where no kernel of this
/// CPU has a screen.
pub fn screen_dot_peak_gflops() -> Option<f64> {
    let screen = crate::dispatch::screen_table().ok()?.screen?;
    // SAFETY: a table holds a screen only where this CPU runs its kernels,
    // the only requirement of the target-feature function.
    Some(unsafe { best_gflops(screen.dot_peak, screen.dot_flops) })
}

/// Sums `words` with eight independent accumulators (vectorisable; the sum
/// only keeps the reads from being optimised away).
fn sum_words(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let chunks = words.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &w) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(w);
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(0u64, |total, &w| total.wrapping_add(w))
}

/// Best-of-`passes` memory read bandwidth in GB/s of `threads` threads that
/// each read their own contiguous share of one `bytes`-byte buffer once per
/// pass (sized like the data whose scan it bounds; several times the
/// last-level cache for a pure memory figure).
/// The buffer is written first, so every page is mapped before timing.
/// Returns `None` for `threads == 0` or a buffer of under 64 bytes per thread.
pub fn read_bandwidth_gbs(threads: usize, bytes: usize, passes: usize) -> Option<f64> {
    let n_words = bytes / 8;
    if threads == 0 || n_words / threads < 8 {
        return None;
    }
    let buffer: Vec<u64> = (0..n_words as u64).collect();
    let share = n_words.div_ceil(threads);
    let mut best = f64::MAX;
    for _ in 0..passes.max(1) {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for part in buffer.chunks(share) {
                scope.spawn(move || std::hint::black_box(sum_words(part)));
            }
        });
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some((n_words * 8) as f64 / best / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_words_is_the_wrapping_sum() {
        for n in [0usize, 1, 7, 8, 9, 100] {
            let words: Vec<u64> = (0..n as u64).map(|i| u64::MAX - i).collect();
            let expected = words.iter().fold(0u64, |t, &w| t.wrapping_add(w));
            assert_eq!(sum_words(&words), expected, "n = {n}");
        }
    }

    #[test]
    fn screen_dot_peak_is_measured_where_the_screen_runs() {
        let peak = screen_dot_peak_gflops();
        assert_eq!(peak.is_some(), crate::float::screen::screen_supported());
        if let Some(gflops) = peak {
            assert!(gflops.is_finite() && gflops > 0.0);
        }
    }

    #[test]
    fn read_bandwidth_is_positive_and_checks_its_arguments() {
        let gbs = read_bandwidth_gbs(2, 1 << 20, 2).unwrap();
        assert!(gbs.is_finite() && gbs > 0.0);
        assert_eq!(read_bandwidth_gbs(0, 1 << 20, 2), None);
        assert_eq!(read_bandwidth_gbs(4, 64, 2), None);
    }
}
