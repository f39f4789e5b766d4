//! Criterion benches for the binary kernels: every Hamming implementation this
//! CPU runs, one thread, on
//! - exact top-10 search, 100 queries × 200,000 codes of 512 bits, with the
//!   database row-major (transposed tile by tile) and pre-interleaved;
//! - a single query against the same database;
//! - binary MaxSim, a 32-token query against 1,000 documents of 300 tokens of 128 bits.
//!
//! Throughput is reported in compared bytes (queries × codes × bytes per code).
//! The full-size comparison with faiss, usearch and numpy is `benches/bench_binary.py`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maxsim_core::binary::{interleave, maxsim_scores_batch_with, search_with, Codes, HammingImpl};
use maxsim_core::DocSet;

mod common;

fn lcg_bytes(n: usize, seed: u64) -> Vec<u8> {
    common::lcg(n, seed, |state| (state >> 56) as u8)
}

fn impls() -> impl Iterator<Item = HammingImpl> {
    HammingImpl::ALL.into_iter().filter(|i| i.is_supported())
}

fn search(c: &mut Criterion) {
    maxsim_core::set_num_threads(1).unwrap();
    let (n, n_bytes, n_q, k) = (200_000, 64, 100, 10);
    let db = lcg_bytes(n * n_bytes, 1);
    let q = lcg_bytes(n_q * n_bytes, 2);
    let words = interleave(&db, n, n_bytes).unwrap();
    let rows = Codes::rows("db", &db, n, n_bytes).unwrap();
    let inter = Codes::interleaved("db", &words, n, n_bytes).unwrap();
    let queries = Codes::rows("q", &q, n_q, n_bytes).unwrap();
    let one = Codes::rows("q", &q[..n_bytes], 1, n_bytes).unwrap();

    let mut group = c.benchmark_group("search_100q_200k_512bit_k10");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((n_q * n * n_bytes) as u64));
    for imp in impls() {
        group.bench_function(format!("{}/rows", imp.name()), |b| {
            b.iter(|| search_with(imp, &queries, &rows, k).unwrap())
        });
        group.bench_function(format!("{}/interleaved", imp.name()), |b| {
            b.iter(|| search_with(imp, &queries, &inter, k).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("search_1q_200k_512bit_k10");
    group.throughput(Throughput::Bytes((n * n_bytes) as u64));
    for imp in impls() {
        group.bench_function(format!("{}/rows", imp.name()), |b| {
            b.iter(|| search_with(imp, &one, &rows, k).unwrap())
        });
        group.bench_function(format!("{}/interleaved", imp.name()), |b| {
            b.iter(|| search_with(imp, &one, &inter, k).unwrap())
        });
    }
    group.finish();
}

fn binary_maxsim(c: &mut Criterion) {
    maxsim_core::set_num_threads(1).unwrap();
    let (nq, n_docs, doc_len, n_bytes) = (32, 1000, 300, 16);
    let q = lcg_bytes(nq * n_bytes, 3);
    let docs_data = lcg_bytes(n_docs * doc_len * n_bytes, 4);
    let docs = DocSet::fixed(&docs_data, n_docs, doc_len, n_bytes).unwrap();
    let mut group = c.benchmark_group("binary_maxsim_32x300x128bit_1000docs");
    group.sample_size(20);
    group.throughput(Throughput::Bytes((nq * n_docs * doc_len * n_bytes) as u64));
    for imp in impls() {
        group.bench_function(imp.name(), |b| {
            b.iter(|| maxsim_scores_batch_with(imp, &[&q], &docs, None).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, search, binary_maxsim);
criterion_main!(benches);
