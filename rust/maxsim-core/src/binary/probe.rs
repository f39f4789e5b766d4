//! The Hamming kernels' ceiling on this CPU.

use super::blocked::Tile;
use super::heap::Heap;
use super::layout::{words_per_code, GROUP};
use super::search::tile_groups;
use super::HammingImpl;
use crate::error::{invalid, Result};

/// Measured single-thread Hamming throughput of `imp`, in GB/s of compared
/// code bytes (queries × codes × bytes per code), on a 16 KiB tile that stays
/// in L1 while 64 queries with `k = 10` heaps pass over it: the ceiling of the
/// search kernel on this CPU, which the scan rate of a full search is compared
/// to. Runs for about `seconds`.
pub fn l1_scan_gbps(imp: HammingImpl, n_bytes: usize, seconds: f64) -> Result<f64> {
    let rates = l1_scan(imp, n_bytes, seconds)?;
    Ok(rates.mean)
}

/// [`l1_scan_gbps`]'s passes: their mean rate, and the rate of the fastest
/// pass, which on a machine shared with other work is the kernel's own
/// (a pass is a few tens of microseconds, so most run undisturbed).
#[derive(Clone, Copy, Debug)]
pub struct ScanRates {
    /// GB/s over all passes.
    pub mean: f64,
    /// GB/s of the fastest pass.
    pub best: f64,
}

/// As [`l1_scan_gbps`], both rates.
pub fn l1_scan(imp: HammingImpl, n_bytes: usize, seconds: f64) -> Result<ScanRates> {
    if n_bytes == 0 || n_bytes > 4096 {
        return invalid!("n_bytes: must be in 1..=4096, got {n_bytes}");
    }
    let w = words_per_code(n_bytes);
    let n_codes = tile_groups(w) * GROUP;
    let n_queries = 64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let q_words: Vec<u64> = (0..n_queries * w).map(|_| next()).collect();
    let tile_words: Vec<u64> = (0..n_codes.div_ceil(GROUP) * w * GROUP)
        .map(|_| next())
        .collect();
    let tile = Tile {
        words: &tile_words,
        n_codes,
        base: 0,
    };
    let kernels = imp.tiles()?;
    let mut heaps: Vec<Heap> = (0..n_queries).map(|_| Heap::new(10)).collect();
    let start = std::time::Instant::now();
    let mut passes = 0u64;
    let mut fastest = f64::INFINITY;
    while passes < 4 || start.elapsed().as_secs_f64() < seconds {
        let pass = std::time::Instant::now();
        // SAFETY: `imp` is supported; `q_words` holds 64 rows of `w` words,
        // one heap per row; the tile is whole groups of `w × GROUP` words.
        unsafe { (kernels.search)(&q_words, w, tile, &mut heaps) };
        fastest = fastest.min(pass.elapsed().as_secs_f64());
        passes += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bytes = (n_queries * n_codes * n_bytes) as f64;
    Ok(ScanRates {
        mean: passes as f64 * bytes / elapsed / 1e9,
        best: bytes / fastest.max(1e-9) / 1e9,
    })
}
