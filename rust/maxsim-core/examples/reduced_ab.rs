//! The 16-bit kernels and every int8 implementation of one kernel family against that
//! family's float32 kernel, alternating rounds in one process, on the fixed
//! workload (one query of `NQ` tokens against `NDOCS` documents × 300 tokens
//! × 128 dims): float32, bfloat16, float16 (each unscreened), and every
//! int8 implementation of the family.
//! Prints per row the minimum and median ms over the rounds and the ratios
//! of float32's to each (minima: on a shared machine the quietest round),
//! and checks that the implementations of one dtype agree bitwise.
//!
//! `cargo run --release -p maxsim-core --example reduced_ab [threads]`
//! (`KERNEL`, default the selected one; `NQ` query tokens, default 32;
//! `NDOCS`, default 1000; `ROUNDS`, default 9).

#[allow(dead_code)]
mod common;

use common::{alternating_rounds, bitwise_eq, env_usize, fixed_workload, threads_arg, Row};
use maxsim_core::dispatch::table;
use maxsim_core::float::{maxsim_scores_batch_unscreened, PreparedQueries, ScoreOptions};
use maxsim_core::reduced::{
    maxsim_half_batch_unscreened, maxsim_int8_batch_variant, quantize_int8, Int8Docs, Int8Queries,
};
use maxsim_core::{DocSet, Kernel};

fn main() {
    let threads = threads_arg();
    maxsim_core::set_num_threads(threads).unwrap();
    let kernel = match std::env::var("KERNEL") {
        Ok(name) => Kernel::parse(&name).expect("a kernel name"),
        Err(_) => maxsim_core::selected_kernel().unwrap(),
    };
    let kernels = table(kernel).unwrap();
    let (n_docs, nq) = (env_usize("NDOCS", 1000), env_usize("NQ", 32));
    let rounds = env_usize("ROUNDS", 9);
    let w = fixed_workload(7, nq, n_docs);
    let (data, dim, doc_len) = (&w.data, w.dim, w.doc_len);
    let docs = DocSet::fixed(data, n_docs, doc_len, dim).unwrap();
    let prepared = PreparedQueries::new(&[&w.query], None, dim).unwrap();
    let docs_bf16 = DocSet::fixed(&w.data_bf16, n_docs, doc_len, dim).unwrap();
    let docs_f16 = DocSet::fixed(&w.data_f16, n_docs, doc_len, dim).unwrap();
    let (codes, scales) = quantize_int8(data, dim).unwrap();
    let int8_docs = Int8Docs::fixed(&codes, &scales, n_docs, doc_len, dim).unwrap();
    let int8_query = Int8Queries::quantize(&[&w.query], None, dim).unwrap();
    let none = ScoreOptions::default;
    let (p, d, db, dh, q8, d8) = (
        &prepared,
        &docs,
        &docs_bf16,
        &docs_f16,
        &int8_query,
        &int8_docs,
    );
    let mut rows = vec![
        Row::new(
            "float32",
            format!("float32 {}", kernels.float.name),
            Box::new(move || maxsim_scores_batch_unscreened(kernel, p, d, none()).unwrap()),
        ),
        Row::new(
            "bfloat16",
            format!("bfloat16 {}", kernels.bf16.name),
            Box::new(move || maxsim_half_batch_unscreened(kernel, p, db, none()).unwrap()),
        ),
        Row::new(
            "float16",
            format!("float16 {}", kernels.f16.name),
            Box::new(move || maxsim_half_batch_unscreened(kernel, p, dh, none()).unwrap()),
        ),
    ];
    for imp in std::iter::once(&kernels.int8).chain(kernels.int8_alternatives) {
        let id = imp.id;
        rows.push(Row::new(
            "int8",
            format!("int8 {}", imp.name),
            Box::new(move || maxsim_int8_batch_variant(id, q8, d8, none()).unwrap()),
        ));
    }
    let runs: Vec<_> = rows.iter().map(|row| &*row.run).collect();
    let (stats, outputs) = alternating_rounds(&runs, rounds);
    println!(
        "{kernel:?}, {threads} threads, {nq} query tokens, {n_docs} documents, {rounds} rounds"
    );
    println!("| row | min ms | median ms | float32 / row (min) | (median) | check |");
    println!("|---|---:|---:|---:|---:|---|");
    for (i, row) in rows.iter().enumerate() {
        let first = rows.iter().position(|r| r.group == row.group).unwrap();
        let check = if first == i {
            ""
        } else if bitwise_eq(&outputs[first], &outputs[i]) {
            "bitwise = first of its dtype"
        } else {
            "DIFFERS from the first of its dtype"
        };
        println!(
            "| {} | {:.2} | {:.2} | {:.2}x | {:.2}x | {check} |",
            row.name,
            stats[i].0,
            stats[i].1,
            stats[0].0 / stats[i].0,
            stats[0].1 / stats[i].1
        );
    }
}
