//! The reduced-precision issue's AMX measurements, for a machine that has AMX:
//! the batch64 workload (64 queries × 32 tokens against 1000 documents × 300
//! tokens × 128 dims, as one 2048-token query block, which the kernels tile
//! the same way) with bfloat16 and int8 documents on every supported kernel,
//! and float32 documents on AVX-512 (plain and bf16-screened). Prints the
//! median ms, the effective TFLOP/s (2 · query tokens · document tokens · dim
//! per second) and the largest score difference from the first row of each
//! dtype (every kernel of a dtype must agree: bitwise for int8, within the
//! format's rounding for bfloat16). On a CPU without AMX the AMX rows are
//! absent and the rest still runs.
//!
//! `cargo run --release -p maxsim-core --example amx_timing [threads]`
//! (`NDOCS` sets the documents, `NQ` the query tokens, `REPEAT` the runs,
//! `KERNELS` a comma-separated list of kernels; default: all supported but
//! `scalar`, which takes about 17 s per int8 call here).

#[allow(dead_code)]
mod common;

use common::{env_usize, fixed_workload, print_timings, threads_arg, Row};
use maxsim_core::float::{
    maxsim_scores_batch_screened, maxsim_scores_batch_unscreened, PreparedQueries, ScoreOptions,
};
use maxsim_core::reduced::{
    maxsim_half_batch_unscreened, maxsim_int8_batch_with, quantize_int8, Int8Docs, Int8Queries,
};
use maxsim_core::{DocSet, Kernel};

fn main() {
    let threads = threads_arg();
    maxsim_core::set_num_threads(threads).unwrap();
    let (n_docs, nq, repeat) = (
        env_usize("NDOCS", 1000),
        env_usize("NQ", 2048),
        env_usize("REPEAT", 5),
    );
    let w = fixed_workload(11, nq, n_docs);
    let (data, dim, doc_len) = (&w.data, w.dim, w.doc_len);
    let docs = DocSet::fixed(data, n_docs, doc_len, dim).unwrap();
    let prepared = PreparedQueries::new(&[&w.query], None, dim).unwrap();
    let docs_bf16 = DocSet::fixed(&w.data_bf16, n_docs, doc_len, dim).unwrap();
    let (codes, scales) = quantize_int8(data, dim).unwrap();
    let docs_int8 = Int8Docs::new(
        DocSet::fixed(&codes, n_docs, doc_len, dim).unwrap(),
        DocSet::fixed(&scales, n_docs, doc_len, 1).unwrap(),
    )
    .unwrap();
    let query_int8 = Int8Queries::quantize(&[&w.query], None, dim).unwrap();

    let wanted = std::env::var("KERNELS").ok();
    let kernels: Vec<Kernel> = Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .filter(|k| match &wanted {
            Some(list) => list.split(',').any(|name| name.trim() == k.name()),
            None => *k != Kernel::Scalar,
        })
        .collect();
    println!(
        "kernels: {:?}; threads {threads}; {nq} query tokens × {n_docs} × {doc_len} × {dim}",
        kernels.iter().map(|k| k.name()).collect::<Vec<_>>()
    );
    let flops = 2.0 * (nq * doc_len * dim * n_docs) as f64;
    let mut rows: Vec<Row> = Vec::new();
    let options = ScoreOptions::default;
    for &kernel in &kernels {
        let (prepared, docs_bf16) = (&prepared, &docs_bf16);
        rows.push(Row::new(
            "bfloat16",
            format!("bf16 docs {}", kernel.name()),
            Box::new(move || {
                maxsim_half_batch_unscreened(kernel, prepared, docs_bf16, options()).unwrap()
            }),
        ));
    }
    for &kernel in &kernels {
        let (query_int8, docs_int8) = (&query_int8, &docs_int8);
        rows.push(Row::new(
            "int8",
            format!("int8 docs {}", kernel.name()),
            Box::new(move || {
                maxsim_int8_batch_with(kernel, query_int8, docs_int8, options()).unwrap()
            }),
        ));
    }
    if Kernel::Avx512.is_supported() {
        let (prepared, docs) = (&prepared, &docs);
        rows.push(Row::new(
            "float32",
            "f32 docs avx512".into(),
            Box::new(move || {
                maxsim_scores_batch_unscreened(Kernel::Avx512, prepared, docs, options()).unwrap()
            }),
        ));
        if maxsim_core::float::screen::screen_supported() {
            rows.push(Row::new(
                "float32",
                "f32 docs avx512+screen".into(),
                Box::new(move || maxsim_scores_batch_screened(prepared, docs, options()).unwrap()),
            ));
        }
    }
    let medians = print_timings(&rows, repeat, flops, (1e12, "TFLOP/s"));
    let median_of = |name: &str| {
        rows.iter()
            .position(|row| row.name == name)
            .map(|i| medians[i])
    };
    // The reduced-precision issue's AMX targets, one line each, for
    // benches/device_check.sh to read.
    if let Some(amx) = median_of("bf16 docs amx") {
        let tflops = flops / amx / 1e12;
        let verdict = if tflops >= 1.5 { "met" } else { "missed" };
        println!("target amx_bf16_tflops {tflops:.3} (>= 1.5): {verdict}");
        if let Some(f32_avx512) = median_of("f32 docs avx512") {
            let ratio = f32_avx512 / amx;
            let verdict = if ratio >= 5.0 { "met" } else { "missed" };
            println!("target amx_bf16_vs_avx512_f32 {ratio:.2}x (>= 5): {verdict}");
        }
    }
}
