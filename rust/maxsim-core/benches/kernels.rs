//! Criterion benches for the float kernels: every supported path on the
//! standard fixed workload (query 32 × 128, documents of 300 tokens), one thread.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use maxsim_core::float::{maxsim_scores_batch_with, PreparedQueries, ScoreOptions};
use maxsim_core::{DocSet, Kernel};

mod common;
use common::lcg_values;

fn float_kernels(c: &mut Criterion) {
    maxsim_core::set_num_threads(1).unwrap();
    let (nq, dim, n_docs, doc_len) = (32, 128, 100, 300);
    let query = lcg_values(nq * dim, 1);
    let docs_data = lcg_values(n_docs * doc_len * dim, 2);
    let docs = DocSet::fixed(&docs_data, n_docs, doc_len, dim).unwrap();
    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    let mut group = c.benchmark_group("float_fixed_32x300x128");
    group.throughput(Throughput::Elements(
        (2 * nq * doc_len * dim * n_docs) as u64,
    ));
    for kernel in Kernel::ALL.into_iter().filter(|k| k.is_supported()) {
        group.bench_function(kernel.name(), |b| {
            b.iter(|| {
                maxsim_scores_batch_with(kernel, &prepared, &docs, ScoreOptions::default()).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, float_kernels);
criterion_main!(benches);
