//! Criterion benches for the reduced-precision kernels: float32 vs float16,
//! bfloat16 and int8 documents for every supported kernel on the standard
//! fixed workload (query 32 × 128, documents of 300 tokens), one thread, plus
//! the quantizer and the narrowing used by `maxsim.quantize`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maxsim_core::float::{maxsim_scores_batch_with, PreparedQueries, ScoreOptions};
use maxsim_core::reduced::{
    bf16, f16, maxsim_half_batch_with, maxsim_int8_batch_with, quantize_int8, to_half, Int8Docs,
    Int8Queries,
};
use maxsim_core::{DocSet, Kernel};

mod common;
use common::lcg_values;

fn reduced_kernels(c: &mut Criterion) {
    maxsim_core::set_num_threads(1).unwrap();
    let (nq, dim, n_docs, doc_len) = (32, 128, 100, 300);
    let query = lcg_values(nq * dim, 1);
    let data = lcg_values(n_docs * doc_len * dim, 2);
    let mut h16 = vec![f16::ZERO; data.len()];
    to_half(&data, &mut h16).unwrap();
    let mut hb16 = vec![bf16::ZERO; data.len()];
    to_half(&data, &mut hb16).unwrap();
    let (codes, scales) = quantize_int8(&data, dim).unwrap();

    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    let int8_query = Int8Queries::quantize(&[&query], None, dim).unwrap();
    let f32_docs = DocSet::fixed(&data, n_docs, doc_len, dim).unwrap();
    let f16_docs = DocSet::fixed(&h16, n_docs, doc_len, dim).unwrap();
    let bf16_docs = DocSet::fixed(&hb16, n_docs, doc_len, dim).unwrap();
    let int8_docs = Int8Docs::fixed(&codes, &scales, n_docs, doc_len, dim).unwrap();
    let options = ScoreOptions::default();

    let mut group = c.benchmark_group("reduced_fixed_32x300x128");
    group.throughput(Throughput::Elements(
        (2 * nq * doc_len * dim * n_docs) as u64,
    ));
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let name = kernel.name();
        group.bench_function(format!("{name}/float32"), |b| {
            b.iter(|| maxsim_scores_batch_with(kernel, &prepared, &f32_docs, options).unwrap())
        });
        group.bench_function(format!("{name}/float16"), |b| {
            b.iter(|| maxsim_half_batch_with(kernel, &prepared, &f16_docs, options).unwrap())
        });
        group.bench_function(format!("{name}/bfloat16"), |b| {
            b.iter(|| maxsim_half_batch_with(kernel, &prepared, &bf16_docs, options).unwrap())
        });
        group.bench_function(format!("{name}/int8"), |b| {
            b.iter(|| maxsim_int8_batch_with(kernel, &int8_query, &int8_docs, options).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("quantize_30000x128");
    group.throughput(Throughput::Bytes((data.len() * 4) as u64));
    group.bench_function("int8", |b| b.iter(|| quantize_int8(&data, dim).unwrap()));
    group.bench_function("float16", |b| b.iter(|| to_half(&data, &mut h16).unwrap()));
    group.bench_function("bfloat16", |b| {
        b.iter(|| to_half(&data, &mut hb16).unwrap())
    });
    group.finish();
}

criterion_group!(benches, reduced_kernels);
criterion_main!(benches);
