//! float16 / bfloat16 MaxSim against float64 references computed on the
//! widened values, for every kernel this CPU supports, over odd shapes, every
//! document layout, masks, zero floors, batches and thread counts.

use half::{bf16, f16};
use maxsim_core::float::{maxsim_scores_batch_with, PreparedQueries, ScoreOptions};
use maxsim_core::reduced::{maxsim_half_batch_with, to_half, HalfFloat};
use maxsim_core::{DocSet, Kernel};
use proptest::prelude::*;

mod reduced_support;
use reduced_support::*;

// ---------------------------------------------------------------------------
// float16 / bfloat16
// ---------------------------------------------------------------------------

fn check_half<T: HalfFloat + Default + Into<f64>>(c: &Case, floor: Option<&[bool]>) {
    let dim = c.dim;
    let half_docs: Vec<Vec<T>> = c.docs.iter().map(|d| to_half_vec::<T>(d)).collect();
    let widened: Vec<Vec<f32>> = half_docs
        .iter()
        .map(|d| widen(d).into_iter().map(|v| v as f32).collect())
        .collect();
    let q_slices: Vec<&[f32]> = c.queries.iter().map(|q| &q[..]).collect();
    let prepared = PreparedQueries::new(&q_slices, None, dim).unwrap();
    let list = DocSet::list(half_docs.iter().map(|d| &d[..]).collect(), dim).unwrap();
    let flat: Vec<T> = half_docs.concat();
    let mut offsets = vec![0i64];
    for d in &half_docs {
        offsets.push(offsets.last().unwrap() + (d.len() / dim) as i64);
    }
    let packed = DocSet::packed(&flat, &offsets, dim).unwrap();
    let wide_list = DocSet::list(widened.iter().map(|d| &d[..]).collect(), dim).unwrap();
    let options = ScoreOptions { zero_floor: floor };
    for kernel in kernels() {
        let got = maxsim_half_batch_with(kernel, &prepared, &list, options).unwrap();
        let got_packed = maxsim_half_batch_with(kernel, &prepared, &packed, options).unwrap();
        assert_eq!(
            got, got_packed,
            "{kernel:?}: list and packed layouts differ"
        );
        // Bitwise the float32 kernel on the widened documents.
        let f32_scores = maxsim_scores_batch_with(kernel, &prepared, &wide_list, options).unwrap();
        assert_eq!(
            got,
            f32_scores,
            "{kernel:?} {}: differs from float32 on widened docs",
            T::FORMAT.name()
        );
        let n_docs = c.docs.len();
        for (s, q) in c.queries.iter().enumerate() {
            for (j, d) in half_docs.iter().enumerate() {
                let fl = floor.is_some_and(|f| f[j]);
                let (want, bound) = reference(&to_f64(q), &widen(d), dim, fl);
                let v = got[s * n_docs + j] as f64;
                assert!(
                    (v - want).abs() <= bound + EPS * want.abs(),
                    "{kernel:?} {} dim {dim} query {s} doc {j}: {v} vs {want} (bound {bound})",
                    T::FORMAT.name()
                );
            }
        }
    }
}

#[test]
fn bf16_nan_and_extremes_match_float32() {
    // Odd and even widths, NaN, infinities, the largest finite and
    // subnormal bfloat16 values, several query blocks: bitwise float32 on
    // the widened documents.
    for dim in [15usize, 16, 33] {
        let mut docs32 = values(3 * 10 * dim, 8 + dim as u64);
        docs32[5] = f32::NAN; // doc 0, token 0
        docs32[dim - 1] = f32::INFINITY; // doc 0, token 0, the last dimension
        for v in &mut docs32[10 * dim..11 * dim] {
            *v = f32::NAN; // doc 1, token 0: every similarity NaN
        }
        docs32[21 * dim - 1] = 3.0e38; // doc 2, token 0, the last dimension
        docs32[22 * dim] = -3.0e38;
        docs32[23 * dim + 1] = 1.0e-39;
        let docs: Vec<bf16> = to_half_vec(&docs32);
        let wide: Vec<f32> = docs.iter().map(|v| v.to_f32()).collect();
        let q = values(20 * dim, 9);
        let prepared = PreparedQueries::new(&[&q], None, dim).unwrap();
        let set = DocSet::fixed(&docs, 3, 10, dim).unwrap();
        let wide_set = DocSet::fixed(&wide, 3, 10, dim).unwrap();
        let options = ScoreOptions::default();
        for kernel in kernels() {
            let got = maxsim_half_batch_with(kernel, &prepared, &set, options).unwrap();
            let want = maxsim_scores_batch_with(kernel, &prepared, &wide_set, options).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{kernel:?} dim {dim}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn half_odd_shapes_all_kernels() {
    let shapes: &[(usize, &[usize], &[usize])] = &[
        (1, &[1], &[1, 2, 3]),
        (3, &[5, 1], &[1, 7, 30]),
        (7, &[17], &[1, 24, 25, 49]),
        (17, &[1, 33], &[3, 47, 300]),
        (33, &[64], &[1, 100]),
        (64, &[8, 9], &[24, 23, 77]),
        (96, &[31], &[5, 200]),
        (128, &[32, 1, 64], &[1, 300, 48, 49]),
        (130, &[13], &[26, 51]),
    ];
    for (i, &(dim, q, d)) in shapes.iter().enumerate() {
        let c = case(dim, q, d, 100 + i as u64);
        check_half::<f16>(&c, None);
        check_half::<bf16>(&c, None);
        let floor: Vec<bool> = (0..d.len()).map(|j| j % 2 == 0).collect();
        check_half::<f16>(&c, Some(&floor));
    }
}

#[test]
fn large_batches_take_the_chunked_walk() {
    // 1200 query tokens × 101 dims exceed the pipelined walk's query budget
    // (128 KiB) for float16, so documents are scored chunk by chunk.
    let q_tokens: Vec<usize> = (0..24).map(|i| 40 + (i * 7) % 21).collect();
    let c = case(101, &q_tokens, &[1, 300, 29, 64, 5], 77);
    check_half::<f16>(&c, None);
    check_half::<bf16>(&c, Some(&[true, false, true, false, true]));
}

#[test]
fn half_fixed_layout_and_masks() {
    let (dim, n_docs, len) = (40, 9, 31);
    let docs32 = values(n_docs * len * dim, 5);
    let docs: Vec<f16> = to_half_vec(&docs32);
    let set = DocSet::fixed(&docs, n_docs, len, dim).unwrap();
    let q = values(6 * dim, 6);
    let mask = [true, false, true, true, false, true];
    let masks: [&[bool]; 1] = [&mask];
    let prepared = PreparedQueries::new(&[&q], Some(&masks), dim).unwrap();
    let kept: Vec<f32> = q
        .chunks_exact(dim)
        .zip(mask)
        .filter(|(_, m)| *m)
        .flat_map(|(r, _)| r.to_vec())
        .collect();
    for kernel in kernels() {
        let got = maxsim_half_batch_with(kernel, &prepared, &set, ScoreOptions::default()).unwrap();
        for (j, &got_j) in got.iter().enumerate().take(n_docs) {
            let (want, bound) = reference(&to_f64(&kept), &widen(set.doc(j)), dim, false);
            assert!(
                (got_j as f64 - want).abs() <= bound + EPS * want.abs(),
                "{kernel:?} doc {j}"
            );
        }
    }
    // Every token masked: scores 0.
    let none = [false; 6];
    let masks: [&[bool]; 1] = [&none];
    let prepared = PreparedQueries::new(&[&q], Some(&masks), dim).unwrap();
    for kernel in kernels() {
        let got = maxsim_half_batch_with(kernel, &prepared, &set, ScoreOptions::default()).unwrap();
        assert!(got.iter().all(|&v| v == 0.0));
    }
}

#[test]
fn half_nan_matches_float32_semantics() {
    let dim = 16;
    let mut docs32 = values(3 * 10 * dim, 8);
    docs32[5] = f32::NAN; // doc 0, token 0
    for v in &mut docs32[10 * dim..11 * dim] {
        *v = f32::NAN; // doc 1, token 0: every similarity NaN
    }
    let docs: Vec<f16> = to_half_vec(&docs32);
    let wide: Vec<f32> = docs.iter().map(|v| v.to_f32()).collect();
    let q = values(4 * dim, 9);
    let prepared = PreparedQueries::new(&[&q], None, dim).unwrap();
    let set = DocSet::fixed(&docs, 3, 10, dim).unwrap();
    let wide_set = DocSet::fixed(&wide, 3, 10, dim).unwrap();
    for kernel in kernels() {
        let got = maxsim_half_batch_with(kernel, &prepared, &set, ScoreOptions::default()).unwrap();
        let want = maxsim_scores_batch_with(kernel, &prepared, &wide_set, ScoreOptions::default())
            .unwrap();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{kernel:?}: {a} vs {b}"
            );
        }
        assert!(
            got.iter().all(|v| v.is_finite()),
            "NaN similarities are skipped by the max"
        );
    }
}

#[test]
fn half_to_half_rounding_is_nearest_even() {
    let mut x = values(1001, 11);
    x.extend([
        65504.0,
        65519.0,
        -65519.0,
        f32::NAN,
        f32::INFINITY,
        1e-8,
        6e-8,
        2.9e-8,
        -0.0,
        3.0e38,
    ]);
    let h: Vec<f16> = to_half_vec(&x[..x.len() - 1]);
    let b: Vec<bf16> = to_half_vec(&x);
    for (i, &v) in x.iter().enumerate() {
        let (want_h, want_b) = (f16::from_f32(v), bf16::from_f32(v));
        if v.is_nan() {
            assert!(h[i].is_nan() && b[i].is_nan());
        } else {
            if i < h.len() {
                assert_eq!(h[i].to_bits(), want_h.to_bits(), "f16 of {v:e}");
            }
            assert_eq!(b[i].to_bits(), want_b.to_bits(), "bf16 of {v:e}");
        }
    }
}

#[test]
fn half_overflow_is_an_error() {
    let mut out = vec![f16::ZERO; 20];
    let mut x = values(20, 3);
    x[13] = 65520.0; // rounds to inf in float16
    let err = to_half(&x, &mut out).unwrap_err().to_string();
    assert!(
        err.contains("flat index 13") && err.contains("float16"),
        "{err}"
    );
    x[13] = f32::INFINITY; // an infinite input is not an overflow
    to_half(&x, &mut out).unwrap();
    assert!(out[13].is_infinite());
    let mut outb = vec![bf16::ZERO; 20];
    x[13] = f32::MAX;
    assert!(to_half(&x, &mut outb)
        .unwrap_err()
        .to_string()
        .contains("bfloat16"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prop_half_matches_reference(
        dim in 1usize..80,
        nq in 1usize..65,
        lens in proptest::collection::vec(1usize..90, 1..6),
        seed in 0u64..1_000_000,
        bf in any::<bool>(),
    ) {
        let c = case(dim, &[nq], &lens, seed);
        if bf { check_half::<bf16>(&c, None) } else { check_half::<f16>(&c, None) }
    }
}

#[test]
fn reduced_paths_cover_every_kernel() {
    eprintln!("cpu features: {:?}", maxsim_core::cpu_features());
    for kernel in kernels() {
        let paths = maxsim_core::reduced::reduced_paths(kernel).unwrap();
        eprintln!("{}: {paths:?}", kernel.name());
        assert_eq!(
            paths.iter().map(|p| p.0).collect::<Vec<_>>(),
            ["float16", "bfloat16", "int8"]
        );
        // The AMX table runs the AVX-512 kernels where it has no tiles.
        let families: &[&str] = match kernel {
            Kernel::Amx => &["amx", "avx512"],
            _ => &[kernel.name()],
        };
        assert!(
            paths
                .iter()
                .all(|p| families.iter().any(|f| p.1.starts_with(f))),
            "{paths:?}"
        );
    }
}
