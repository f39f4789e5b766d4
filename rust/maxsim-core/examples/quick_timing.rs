//! Quick timing of every supported float kernel on the fixed workload (query
//! 32 × 128, 1000 documents × 300 tokens), with the bf16 screen where it
//! applies, and of the float16 / bfloat16 document paths. Prints median ms
//! and GFLOP/s. `cargo run --release --example quick_timing [threads]`
//! (`NQ` sets the query tokens, `NDOCS` the documents, `ONLY` keeps the rows
//! whose name contains it).

use maxsim_core::float::{
    maxsim_scores_batch_screened, maxsim_scores_batch_unscreened, PreparedQueries, ScoreOptions,
};
use maxsim_core::reduced::{
    bf16, f16, maxsim_half_batch_screened, maxsim_half_batch_unscreened, to_half,
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
    let nq: usize = std::env::var("NQ")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let (dim, doc_len) = (128, 300);
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
    let mut data_bf16 = vec![bf16::ZERO; data.len()];
    to_half(&data, &mut data_bf16).unwrap();
    let mut data_f16 = vec![f16::ZERO; data.len()];
    to_half(&data, &mut data_f16).unwrap();
    let docs_bf16 = DocSet::fixed(&data_bf16, n_docs, doc_len, dim).unwrap();
    let docs_f16 = DocSet::fixed(&data_f16, n_docs, doc_len, dim).unwrap();
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
        if kernel == Kernel::Avx512 && maxsim_core::float::screen::screen_supported() {
            runs.push((
                format!("{}+screen", kernel.name()),
                Box::new(move || {
                    maxsim_scores_batch_screened(prepared, docs, ScoreOptions::default()).unwrap()
                }),
            ));
        }
    }
    let best = maxsim_core::dispatch::detect_best();
    {
        let (prepared, docs_bf16, docs_f16) = (&prepared, &docs_bf16, &docs_f16);
        let options = ScoreOptions::default;
        runs.push((
            "bf16 docs".into(),
            Box::new(move || {
                maxsim_half_batch_unscreened(best, prepared, docs_bf16, options()).unwrap()
            }),
        ));
        if maxsim_core::float::screen::screen_supported() {
            runs.push((
                "bf16 docs+screen".into(),
                Box::new(move || {
                    maxsim_half_batch_screened(prepared, docs_bf16, options()).unwrap()
                }),
            ));
        }
        runs.push((
            "f16 docs".into(),
            Box::new(move || {
                maxsim_half_batch_unscreened(best, prepared, docs_f16, options()).unwrap()
            }),
        ));
        if maxsim_core::float::screen::screen_supported() {
            runs.push((
                "f16 docs+screen".into(),
                Box::new(move || {
                    maxsim_half_batch_screened(prepared, docs_f16, options()).unwrap()
                }),
            ));
        }
    }
    let only = std::env::var("ONLY").unwrap_or_default();
    runs.retain(|(name, _)| name.contains(&only));
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
            "{:20} {:8.2} ms  {:6.1} GFLOP/s  {same}",
            name,
            median * 1e3,
            flops / median / 1e9
        );
    }
}
