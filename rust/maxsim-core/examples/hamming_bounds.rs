//! The Hamming kernels' L1-resident rate on this CPU: every implementation
//! this CPU runs searches 64 queries over a 16 KiB tile (`k = 10`), and the
//! fastest pass is reported in GB/s of compared code bytes, per code length.
//! On a shared machine the fastest pass is the kernel's own rate (a pass is
//! tens of microseconds).
//! `cargo run --release --example hamming_bounds [seconds] [bytes,bytes,...]`

use maxsim_core::binary::{l1_scan, HammingImpl};

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("| impl | bytes per code | best pass GB/s | mean GB/s |");
    println!("|---|---:|---:|---:|");
    let sizes: Vec<usize> = std::env::args()
        .nth(2)
        .map(|s| s.split(',').filter_map(|b| b.parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 32, 64, 128]);
    for n_bytes in sizes {
        for imp in HammingImpl::ALL.into_iter().filter(|i| i.is_supported()) {
            let rates = l1_scan(imp, n_bytes, seconds).expect("a supported implementation");
            println!(
                "| {} | {n_bytes} | {:.1} | {:.1} |",
                imp.name(),
                rates.best,
                rates.mean
            );
        }
    }
}
