//! Quick single-thread timing of every supported float kernel on the fixed
//! workload (query 32 × 128, 1000 documents × 300 tokens). Prints median ms
//! and GFLOP/s. `cargo run --release --example quick_timing`.

use maxsim_core::float::{
    maxsim_scores_batch_unscreened, maxsim_scores_batch_with, PreparedQueries, ScoreOptions,
};
use maxsim_core::{DocSet, Kernel};
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    maxsim_core::set_num_threads(threads).unwrap();
    let n_docs: usize = std::env::var("NDOCS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let (nq, dim, doc_len) = (32, 128, 300);
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let query: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
    let data: Vec<f32> = (0..n_docs * doc_len * dim).map(|_| next()).collect();
    let docs = DocSet::fixed(&data, n_docs, doc_len, dim).unwrap();
    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    println!(
        "fma peak: {:?} GFLOP/s",
        maxsim_core::peak::fma_peak_gflops(maxsim_core::dispatch::detect_best())
    );
    let flops = 2.0 * (nq * doc_len * dim * n_docs) as f64;
    type Run<'a> = Box<dyn Fn() -> Vec<f32> + 'a>;
    let mut runs: Vec<(String, Run)> = Vec::new();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let (prepared, docs) = (&prepared, &docs);
        runs.push((
            kernel.name().to_string(),
            Box::new(move || {
                maxsim_scores_batch_unscreened(kernel, prepared, docs, ScoreOptions::default())
                    .unwrap()
            }),
        ));
        if maxsim_core::float::screen::screen_enabled(kernel) {
            runs.push((
                format!("{}+screen", kernel.name()),
                Box::new(move || {
                    maxsim_scores_batch_with(kernel, prepared, docs, ScoreOptions::default())
                        .unwrap()
                }),
            ));
        }
    }
    let mut reference: Option<Vec<f32>> = None;
    for (name, run) in &runs {
        let mut times = Vec::new();
        let mut scores = Vec::new();
        for _ in 0..9 {
            let start = Instant::now();
            scores = run();
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = times[times.len() / 2];
        let same = match &reference {
            None => {
                reference = Some(scores.clone());
                "ref".to_string()
            }
            Some(r) => {
                let max_diff = r
                    .iter()
                    .zip(&scores)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                format!("max |diff| vs first {max_diff:e}")
            }
        };
        println!(
            "{:14} {:8.2} ms  {:6.1} GFLOP/s  {same}",
            name,
            median * 1e3,
            flops / median / 1e9
        );
    }
}
