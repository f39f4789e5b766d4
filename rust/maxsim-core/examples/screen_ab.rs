//! The screen against the plain kernels of the same family, alternating
//! rounds in one process: float32, float16 and bfloat16 documents, plain and
//! screened, and int8, on the fixed workload (one query of `NQ` tokens
//! against `NDOCS` documents × `DOC_LEN` tokens × 128 dims). Prints per row the
//! minimum and median ms over the rounds and the ratio of plain float32's
//! to each (minima: on a shared machine the quietest round), and checks that
//! each screened row is bitwise its plain row.
//!
//! `cargo run --release -p maxsim-core --example screen_ab [threads]`
//! (`NQ` query tokens, default 32; `NDOCS`, default 1000; `DOC_LEN`, default
//! 300; `ROUNDS`, default 9; `ONLY` keeps the rows whose name contains it;
//! `KERNEL` picks the family, default the first with a screen: `KERNEL=avx2`
//! times the int16 screen on an AVX-512 CPU; `SCREEN_ALT=n` times the
//! family's n-th alternative screen instead of its own, e.g. the `vpmaddwd`
//! int16 screen on a CPU with AVX-VNNI).

#[allow(dead_code)]
mod common;

use common::{alternating_rounds, bitwise_eq, env_usize, fixed_workload, threads_arg};
use maxsim_core::dispatch::{screen_kernel, Screen};
use maxsim_core::float::{
    maxsim_scores_batch_screened_with, maxsim_scores_batch_unscreened, PreparedQueries,
    ScoreOptions,
};
use maxsim_core::reduced::{
    maxsim_half_batch_screened_with, maxsim_half_batch_unscreened, maxsim_int8_batch_with,
    quantize_int8, Int8Docs, Int8Queries,
};
use maxsim_core::{DocSet, Kernel};

type Run<'a> = Box<dyn Fn() -> Vec<f32> + 'a>;

fn main() {
    let threads = threads_arg();
    maxsim_core::set_num_threads(threads).unwrap();
    let (n_docs, nq) = (env_usize("NDOCS", 1000), env_usize("NQ", 32));
    let rounds = env_usize("ROUNDS", 9);
    let w = fixed_workload(7, nq, n_docs);
    let (data, dim, doc_len) = (&w.data, w.dim, w.doc_len);
    let kernel = match std::env::var("KERNEL") {
        Ok(name) => Kernel::parse(&name).expect("a kernel name"),
        Err(_) => screen_kernel().expect("a CPU with a screen"),
    };
    let screen = Screen {
        kernel,
        alternative: env_usize("SCREEN_ALT", 0),
    };
    let screen_name = screen.name().expect("a screen this CPU runs");
    let docs = DocSet::fixed(data, n_docs, doc_len, dim).unwrap();
    let prepared = PreparedQueries::new(&[&w.query], None, dim).unwrap();
    let docs_bf16 = DocSet::fixed(&w.data_bf16, n_docs, doc_len, dim).unwrap();
    let docs_f16 = DocSet::fixed(&w.data_f16, n_docs, doc_len, dim).unwrap();
    let (codes, scales) = quantize_int8(data, dim).unwrap();
    let int8_docs = Int8Docs::fixed(&codes, &scales, n_docs, doc_len, dim).unwrap();
    let int8_query = Int8Queries::quantize(&[&w.query], None, dim).unwrap();
    let none = ScoreOptions::default;
    let (p, d, db, dh) = (&prepared, &docs, &docs_bf16, &docs_f16);
    let rows: Vec<(&str, Run)> = vec![
        (
            "float32 plain",
            Box::new(move || maxsim_scores_batch_unscreened(kernel, p, d, none()).unwrap()),
        ),
        (
            "float32 screened",
            Box::new(move || maxsim_scores_batch_screened_with(screen, p, d, none()).unwrap()),
        ),
        (
            "bfloat16 plain",
            Box::new(move || maxsim_half_batch_unscreened(kernel, p, db, none()).unwrap()),
        ),
        (
            "bfloat16 screened",
            Box::new(move || maxsim_half_batch_screened_with(screen, p, db, none()).unwrap()),
        ),
        (
            "float16 plain",
            Box::new(move || maxsim_half_batch_unscreened(kernel, p, dh, none()).unwrap()),
        ),
        (
            "float16 screened",
            Box::new(move || maxsim_half_batch_screened_with(screen, p, dh, none()).unwrap()),
        ),
        (
            "int8",
            Box::new(|| maxsim_int8_batch_with(kernel, &int8_query, &int8_docs, none()).unwrap()),
        ),
    ];
    // `ONLY` keeps the rows whose name contains it (for profiling one).
    let only = std::env::var("ONLY").unwrap_or_default();
    let rows: Vec<(&str, Run)> = rows
        .into_iter()
        .filter(|(name, _)| name.contains(&only))
        .collect();
    let runs: Vec<_> = rows.iter().map(|(_, run)| &**run).collect();
    let (stats, outputs) = alternating_rounds(&runs, rounds);
    println!(
        "{threads} threads, {nq} query tokens, {n_docs} documents × {doc_len} tokens, \
         {rounds} rounds; screen: {screen_name}"
    );
    for (i, (name, _)) in rows.iter().enumerate() {
        let same = match i {
            1 | 3 | 5 if only.is_empty() => {
                if bitwise_eq(&outputs[i - 1], &outputs[i]) {
                    "bitwise = plain"
                } else {
                    "DIFFERS from plain"
                }
            }
            _ => "",
        };
        println!(
            "{name:18} min {:8.2} ms  median {:8.2} ms  x{:.2} (min) x{:.2} (median) vs float32 plain  {same}",
            stats[i].0,
            stats[i].1,
            stats[0].0 / stats[i].0,
            stats[0].1 / stats[i].1
        );
    }
}
