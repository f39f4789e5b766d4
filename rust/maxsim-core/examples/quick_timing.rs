//! Quick timing of every supported float kernel on the fixed workload (query
//! 32 × 128, 1000 documents × 300 tokens), with the bf16 screen where it
//! applies, and of the float16 / bfloat16 document paths. Prints median ms
//! and GFLOP/s. `cargo run --release --example quick_timing [threads]`
//! (`NQ` sets the query tokens, `NDOCS` the documents, `ONLY` keeps the rows
//! whose name contains it).

#[allow(dead_code)]
mod common;

use common::{env_usize, fixed_workload, print_timings, threads_arg, Row};
use maxsim_core::float::{
    maxsim_scores_batch_screened, maxsim_scores_batch_unscreened, PreparedQueries, ScoreOptions,
};
use maxsim_core::reduced::{maxsim_half_batch_screened, maxsim_half_batch_unscreened};
use maxsim_core::{DocSet, Kernel};

fn main() {
    let threads = threads_arg();
    maxsim_core::set_num_threads(threads).unwrap();
    let (n_docs, nq) = (env_usize("NDOCS", 1000), env_usize("NQ", 32));
    let w = fixed_workload(7, nq, n_docs);
    let (data, dim, doc_len) = (&w.data, w.dim, w.doc_len);
    let docs = DocSet::fixed(data, n_docs, doc_len, dim).unwrap();
    let prepared = PreparedQueries::new(&[&w.query], None, dim).unwrap();
    let docs_bf16 = DocSet::fixed(&w.data_bf16, n_docs, doc_len, dim).unwrap();
    let docs_f16 = DocSet::fixed(&w.data_f16, n_docs, doc_len, dim).unwrap();
    println!(
        "fma peak: {:?} GFLOP/s",
        maxsim_core::peak::fma_peak_gflops(maxsim_core::dispatch::detect_best())
    );
    let flops = 2.0 * (nq * doc_len * dim * n_docs) as f64;
    let options = ScoreOptions::default;
    let screen = maxsim_core::float::screen::screen_supported();
    let mut rows: Vec<Row> = Vec::new();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let (prepared, docs) = (&prepared, &docs);
        rows.push(Row::new(
            "all",
            kernel.name().to_string(),
            Box::new(move || {
                maxsim_scores_batch_unscreened(kernel, prepared, docs, options()).unwrap()
            }),
        ));
        if kernel == Kernel::Avx512 && screen {
            rows.push(Row::new(
                "all",
                format!("{}+screen", kernel.name()),
                Box::new(move || maxsim_scores_batch_screened(prepared, docs, options()).unwrap()),
            ));
        }
    }
    let best = maxsim_core::dispatch::detect_best();
    let (prepared, docs_bf16, docs_f16) = (&prepared, &docs_bf16, &docs_f16);
    rows.push(Row::new(
        "all",
        "bf16 docs".into(),
        Box::new(move || {
            maxsim_half_batch_unscreened(best, prepared, docs_bf16, options()).unwrap()
        }),
    ));
    if screen {
        rows.push(Row::new(
            "all",
            "bf16 docs+screen".into(),
            Box::new(move || maxsim_half_batch_screened(prepared, docs_bf16, options()).unwrap()),
        ));
    }
    rows.push(Row::new(
        "all",
        "f16 docs".into(),
        Box::new(move || {
            maxsim_half_batch_unscreened(best, prepared, docs_f16, options()).unwrap()
        }),
    ));
    if screen {
        rows.push(Row::new(
            "all",
            "f16 docs+screen".into(),
            Box::new(move || maxsim_half_batch_screened(prepared, docs_f16, options()).unwrap()),
        ));
    }
    let only = std::env::var("ONLY").unwrap_or_default();
    rows.retain(|r| r.name.contains(&only));
    print_timings(&rows, 9, flops, (1e9, "GFLOP/s"));
}
