//! Every supported float kernel against the f64 reference, on random shapes:
//! dims that are not multiples of any vector width, 1..64 query tokens,
//! documents of 1..2000 tokens, all three layouts, masks and zero floors.

use maxsim_core::float::{maxsim_scores_batch_with, PreparedQueries, ScoreOptions};
use maxsim_core::reference::{f32_error_bound, maxsim_f64};
use maxsim_core::{DocSet, Kernel};
use proptest::prelude::*;

mod common;
use common::values;

fn supported() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

fn check_layouts(dim: usize, nq: usize, lengths: &[usize], seed: u64) {
    let query = values(nq * dim, seed);
    let docs: Vec<Vec<f32>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, seed + 1 + i as u64))
        .collect();
    let flat: Vec<f32> = docs.concat();
    let mut offsets = vec![0i64];
    for &n in lengths {
        offsets.push(offsets.last().unwrap() + n as i64);
    }
    let expected: Vec<f64> = docs.iter().map(|d| maxsim_f64(&query, d, dim)).collect();
    let bounds: Vec<f64> = docs
        .iter()
        .map(|d| f32_error_bound(&query, d, dim))
        .collect();
    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    let packed = DocSet::packed(&flat, &offsets, dim).unwrap();
    let list = DocSet::list(docs.iter().map(|d| d.as_slice()).collect(), dim).unwrap();
    for kernel in supported() {
        for (layout, set) in [("packed", &packed), ("list", &list)] {
            let got =
                maxsim_scores_batch_with(kernel, &prepared, set, ScoreOptions::default()).unwrap();
            for (i, (&g, (&e, &b))) in got.iter().zip(expected.iter().zip(&bounds)).enumerate() {
                assert!(
                    (g as f64 - e).abs() <= b,
                    "{} {layout} dim={dim} nq={nq} doc {i} len {}: got {g}, expected {e} (bound {b})",
                    kernel.name(),
                    lengths[i]
                );
            }
        }
    }
}

#[test]
fn all_dims_and_query_sizes() {
    for dim in [1, 7, 16, 31, 64, 96, 128, 130] {
        for nq in [1, 3, 8, 9, 17, 32, 33, 64] {
            check_layouts(dim, nq, &[1, 2, 5, 13, 64, 129], (dim * 100 + nq) as u64);
        }
    }
}

#[test]
fn long_documents() {
    check_layouts(128, 32, &[2000, 1, 777], 99);
    check_layouts(31, 64, &[1999, 300], 98);
}

#[test]
fn fixed_layout_matches_reference_and_packed() {
    let (dim, nq, n_docs, len) = (96, 32, 7, 300);
    let query = values(nq * dim, 5);
    let data = values(n_docs * len * dim, 6);
    let fixed = DocSet::fixed(&data, n_docs, len, dim).unwrap();
    let offsets: Vec<i64> = (0..=n_docs as i64).map(|i| i * len as i64).collect();
    let packed = DocSet::packed(&data, &offsets, dim).unwrap();
    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    for kernel in supported() {
        let a =
            maxsim_scores_batch_with(kernel, &prepared, &fixed, ScoreOptions::default()).unwrap();
        let b =
            maxsim_scores_batch_with(kernel, &prepared, &packed, ScoreOptions::default()).unwrap();
        assert_eq!(a, b, "{}: fixed and packed layouts differ", kernel.name());
        for i in 0..n_docs {
            let doc = &data[i * len * dim..(i + 1) * len * dim];
            let e = maxsim_f64(&query, doc, dim);
            assert!((a[i] as f64 - e).abs() <= f32_error_bound(&query, doc, dim));
        }
    }
}

#[test]
fn batch_rows_equal_single_queries_bitwise() {
    let dim = 33;
    let queries: Vec<Vec<f32>> = [1usize, 5, 32, 17, 64]
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, 40 + i as u64))
        .collect();
    let lengths = [3usize, 50, 1, 200];
    let docs: Vec<Vec<f32>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, 80 + i as u64))
        .collect();
    let set = DocSet::list(docs.iter().map(|d| d.as_slice()).collect(), dim).unwrap();
    let slices: Vec<&[f32]> = queries.iter().map(|q| q.as_slice()).collect();
    let batch = PreparedQueries::new(&slices, None, dim).unwrap();
    for kernel in supported() {
        let all = maxsim_scores_batch_with(kernel, &batch, &set, ScoreOptions::default()).unwrap();
        for (s, q) in queries.iter().enumerate() {
            let single = PreparedQueries::new(&[q.as_slice()], None, dim).unwrap();
            let row =
                maxsim_scores_batch_with(kernel, &single, &set, ScoreOptions::default()).unwrap();
            assert_eq!(
                &all[s * lengths.len()..(s + 1) * lengths.len()],
                &row[..],
                "{} query {s}",
                kernel.name()
            );
        }
    }
}

#[test]
fn masks_skip_tokens_and_zero_floor_adds_a_zero_token() {
    let (dim, nq) = (20, 10);
    let query = values(nq * dim, 1);
    let doc: Vec<f32> = values(4 * dim, 2);
    let mask: Vec<bool> = (0..nq).map(|i| i % 3 != 0).collect();
    let kept: Vec<f32> = query
        .chunks(dim)
        .zip(&mask)
        .filter(|(_, &m)| m)
        .flat_map(|(r, _)| r.to_vec())
        .collect();
    let with_zero_token: Vec<f32> = doc
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0.0, dim))
        .collect();
    let set = DocSet::list(vec![&doc[..]], dim).unwrap();
    for kernel in supported() {
        let masked = PreparedQueries::new(&[&query], Some(&[&mask[..]]), dim).unwrap();
        let got =
            maxsim_scores_batch_with(kernel, &masked, &set, ScoreOptions::default()).unwrap()[0];
        let e = maxsim_f64(&kept, &doc, dim);
        assert!(
            (got as f64 - e).abs() <= f32_error_bound(&kept, &doc, dim),
            "{} mask",
            kernel.name()
        );

        let plain = PreparedQueries::new(&[&query], None, dim).unwrap();
        let floored = maxsim_scores_batch_with(
            kernel,
            &plain,
            &set,
            ScoreOptions {
                zero_floor: Some(&[true]),
            },
        )
        .unwrap()[0];
        let e = maxsim_f64(&query, &with_zero_token, dim);
        assert!(
            (floored as f64 - e).abs() <= f32_error_bound(&query, &with_zero_token, dim),
            "{} floor",
            kernel.name()
        );

        let none = vec![false; nq];
        let all_masked = PreparedQueries::new(&[&query], Some(&[&none[..]]), dim).unwrap();
        assert_eq!(
            maxsim_scores_batch_with(kernel, &all_masked, &set, ScoreOptions::default()).unwrap(),
            vec![0.0]
        );
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let dim = 64;
    let query = values(32 * dim, 3);
    let lengths: Vec<usize> = (0..300).map(|i| 1 + (i * 37) % 400).collect();
    let docs: Vec<Vec<f32>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, 1000 + i as u64))
        .collect();
    let set = DocSet::list(docs.iter().map(|d| d.as_slice()).collect(), dim).unwrap();
    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    for kernel in supported() {
        let mut results = Vec::new();
        for threads in [1, 2, 3, 7] {
            maxsim_core::set_num_threads(threads).unwrap();
            results.push(
                maxsim_scores_batch_with(kernel, &prepared, &set, ScoreOptions::default()).unwrap(),
            );
        }
        for r in &results[1..] {
            assert_eq!(r, &results[0], "{}", kernel.name());
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let data = vec![0.0f32; 12];
    assert!(DocSet::packed(&data, &[0, 2, 1], 4).is_err()); // not monotonic
    assert!(DocSet::packed(&data, &[0, 1, 1], 4).is_err()); // zero-token doc
    assert!(DocSet::packed(&data, &[0, 4], 4).is_err()); // past the end
    assert!(DocSet::packed(&data, &[-1, 1], 4).is_err());
    assert!(DocSet::fixed(&data, 1, 3, 5).is_err());
    assert!(DocSet::list(vec![&data[..5]], 4).is_err());
    assert!(DocSet::<f32>::list(vec![&[]], 4).is_err());
    assert!(PreparedQueries::new(&[&data[..0]], None, 4).is_err());
    let q = PreparedQueries::new(&[&data[..8]], None, 4).unwrap();
    let other_dim = DocSet::fixed(&data, 1, 4, 3).unwrap();
    assert!(maxsim_core::maxsim_scores_batch(&q, &other_dim, ScoreOptions::default()).is_err());
    let ok = DocSet::fixed(&data, 1, 3, 4).unwrap();
    assert!(maxsim_core::maxsim_scores_batch(
        &q,
        &ok,
        ScoreOptions {
            zero_floor: Some(&[true, false])
        }
    )
    .is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_shapes_match_reference(
        dim in 1usize..140,
        nq in 1usize..65,
        lengths in proptest::collection::vec(1usize..300, 1..6),
        seed in any::<u64>(),
    ) {
        check_layouts(dim, nq, &lengths, seed);
    }
}
