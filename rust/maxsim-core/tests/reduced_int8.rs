//! int8 MaxSim against float64 references computed on the dequantized
//! values, for every int8 implementation this CPU runs (bitwise equal to one
//! another), over odd shapes, masks, zero floors, batches and thread counts;
//! the quantizer's bounds and bad input.

use half::f16;
use maxsim_core::float::{PreparedQueries, ScoreOptions};
use maxsim_core::reduced::{
    maxsim_half_batch_with, maxsim_int8_batch_variant, maxsim_int8_batch_with, quantize_int8,
    quantize_int8_into, quantize_row, Int8Docs, Int8Queries,
};
use maxsim_core::{DocSet, Kernel};
use proptest::prelude::*;

mod reduced_support;
use reduced_support::*;

// ---------------------------------------------------------------------------
// int8
// ---------------------------------------------------------------------------

struct Int8Case {
    dim: usize,
    q_codes: Vec<Vec<i8>>,
    q_scales: Vec<Vec<f32>>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<i64>,
}

fn int8_case(dim: usize, query_tokens: &[usize], doc_tokens: &[usize], seed: u64) -> Int8Case {
    let c = case(dim, query_tokens, doc_tokens, seed);
    let mut q_codes = Vec::new();
    let mut q_scales = Vec::new();
    for q in &c.queries {
        let (codes, scales) = quantize_int8(q, dim).unwrap();
        q_codes.push(codes);
        q_scales.push(scales);
    }
    let flat = c.docs.concat();
    let (codes, scales) = quantize_int8(&flat, dim).unwrap();
    let mut offsets = vec![0i64];
    for &n in doc_tokens {
        offsets.push(offsets.last().unwrap() + n as i64);
    }
    Int8Case {
        dim,
        q_codes,
        q_scales,
        codes,
        scales,
        offsets,
    }
}

/// Every kernel, then every int8 implementation the kernel tables hold
/// (including those no kernel picks on this CPU, such as AVX-512BW where
/// VNNI exists).
fn int8_variants() -> Vec<String> {
    let mut v: Vec<String> = kernels().iter().map(|k| k.name().to_string()).collect();
    for kernel in kernels() {
        let table = maxsim_core::dispatch::table(kernel).unwrap();
        for imp in std::iter::once(&table.int8).chain(table.int8_alternatives) {
            let name = format!("variant:{}", imp.id);
            if !v.contains(&name) {
                v.push(name);
            }
        }
    }
    assert!(v.contains(&"variant:scalar".to_string()));
    v
}

fn run_int8(
    variant: &str,
    q: &Int8Queries,
    docs: &Int8Docs<'_>,
    options: ScoreOptions<'_>,
) -> Vec<f32> {
    match variant.strip_prefix("variant:") {
        Some(name) => maxsim_int8_batch_variant(name, q, docs, options).unwrap(),
        None => maxsim_int8_batch_with(Kernel::parse(variant).unwrap(), q, docs, options).unwrap(),
    }
}

fn check_int8(c: &Int8Case, floor: Option<&[bool]>) {
    let dim = c.dim;
    let qc: Vec<&[i8]> = c.q_codes.iter().map(|v| &v[..]).collect();
    let qs: Vec<&[f32]> = c.q_scales.iter().map(|v| &v[..]).collect();
    let queries = Int8Queries::from_codes(&qc, &qs, None, dim).unwrap();
    let docs = Int8Docs::packed(&c.codes, &c.scales, &c.offsets, dim).unwrap();
    let n_docs = docs.len();
    // The same documents as a list.
    let list_codes: Vec<&[i8]> = (0..n_docs)
        .map(|i| &c.codes[c.offsets[i] as usize * dim..c.offsets[i + 1] as usize * dim])
        .collect();
    let list_scales: Vec<&[f32]> = (0..n_docs)
        .map(|i| &c.scales[c.offsets[i] as usize..c.offsets[i + 1] as usize])
        .collect();
    let list = Int8Docs::list(list_codes, list_scales, dim).unwrap();
    let options = ScoreOptions { zero_floor: floor };
    let variants = int8_variants();
    let first = run_int8(&variants[0], &queries, &docs, options);
    for variant in &variants {
        let got = run_int8(variant, &queries, &docs, options);
        assert_eq!(
            got, first,
            "int8 {variant} differs bitwise from {}",
            variants[0]
        );
        assert_eq!(
            got,
            run_int8(variant, &queries, &list, options),
            "int8 {variant}: list layout differs"
        );
    }
    for (s, (codes, scales)) in c.q_codes.iter().zip(&c.q_scales).enumerate() {
        let q = dequantize(codes, scales, dim);
        for j in 0..n_docs {
            let (lo, hi) = (c.offsets[j] as usize, c.offsets[j + 1] as usize);
            let d = dequantize(&c.codes[lo * dim..hi * dim], &c.scales[lo..hi], dim);
            let (want, bound) = int8_reference(&q, &d, dim, floor.is_some_and(|f| f[j]));
            let v = first[s * n_docs + j] as f64;
            assert!(
                (v - want).abs() <= bound + EPS * want.abs(),
                "int8 dim {dim} query {s} doc {j}: {v} vs {want} (bound {bound})"
            );
        }
    }
}

#[test]
fn int8_odd_shapes_all_paths_bitwise_equal() {
    let shapes: &[(usize, &[usize], &[usize])] = &[
        (1, &[1], &[1, 2, 3]),
        (2, &[3], &[5, 1]),
        (3, &[5, 1], &[1, 7, 30]),
        (5, &[17], &[1, 24, 25, 49]),
        (17, &[1, 33], &[3, 47, 300]),
        (33, &[64], &[1, 100]),
        (64, &[8, 9], &[24, 23, 77]),
        (96, &[31], &[5, 200]),
        (128, &[32, 1, 64], &[1, 300, 48, 49]),
        (130, &[13], &[26, 51]),
        (1000, &[3], &[2, 9]),
    ];
    for (i, &(dim, q, d)) in shapes.iter().enumerate() {
        let c = int8_case(dim, q, d, 300 + i as u64);
        check_int8(&c, None);
        let floor: Vec<bool> = (0..d.len()).map(|j| j % 3 != 1).collect();
        check_int8(&c, Some(&floor));
    }
}

/// Non-finite values anywhere in a token (in the eight-lane body of its
/// maximum search or in the tail) are reported at their position; the
/// buffer-filling entry point checks its output sizes.
#[test]
fn int8_large_batches_take_the_chunked_walk() {
    // 1200 query tokens × 101 dims exceed the pipelined walk's query budget
    // (128 KiB), so documents are scored chunk by chunk.
    let q_tokens: Vec<usize> = (0..24).map(|i| 40 + (i * 7) % 21).collect();
    let c8 = int8_case(101, &q_tokens, &[1, 300, 29, 64, 5], 78);
    check_int8(&c8, None);
}

#[test]
fn int8_quantization_finds_every_non_finite_position() {
    let dim = 21; // two chunks of eight lanes and a tail of five
    for k in 0..dim {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = values(3 * dim, 7);
            x[dim + k] = bad;
            let err = quantize_int8(&x, dim).unwrap_err().to_string();
            assert!(
                err.contains("token 1") && err.contains(&format!("dimension {k}")),
                "{bad} at {k}: {err}"
            );
        }
    }
    let x = values(2 * dim, 8);
    let (codes, scales) = quantize_int8(&x, dim).unwrap();
    let (mut codes_into, mut scales_into) = (vec![1i8; 2 * dim], vec![-1.0f32; 2]);
    quantize_int8_into(&x, dim, &mut codes_into, &mut scales_into).unwrap();
    assert_eq!((codes_into, scales_into), (codes, scales));
    let err = quantize_int8_into(&x, dim, &mut [0i8; 5], &mut [0.0f32; 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("5 codes and 2 scales"), "{err}");
}

#[test]
fn int8_quantization_error_bound() {
    for (dim, seed) in [(1, 1u64), (7, 2), (128, 3), (300, 4)] {
        let mut x = values(50 * dim, seed);
        for (t, row) in x.chunks_exact_mut(dim).enumerate() {
            for v in row.iter_mut() {
                *v *= 10f32.powi(t as i32 % 7 - 3); // magnitudes 1e-3 .. 1e3
            }
        }
        x[0] = 0.0;
        let (codes, scales) = quantize_int8(&x, dim).unwrap();
        for (t, ((row, c), &s)) in x
            .chunks_exact(dim)
            .zip(codes.chunks_exact(dim))
            .zip(&scales)
            .enumerate()
        {
            let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(s, amax / 127.0, "token {t}: scale is max|x| / 127");
            assert!(c.iter().all(|&v| (-127..=127).contains(&v)));
            assert!(
                amax == 0.0 || c.iter().any(|&v| v.abs() == 127),
                "token {t}: the largest value maps to ±127"
            );
            for (&xv, &cv) in row.iter().zip(c) {
                let err = (xv as f64 - s as f64 * cv as f64).abs();
                assert!(
                    err <= s as f64 * 0.5 * (1.0 + 1e-6),
                    "token {t}: |{xv} - {s}·{cv}| = {err}"
                );
            }
        }
    }
    // All-zero and tiny tokens: scale 0, codes 0.
    let (codes, scales) = quantize_int8(&[0.0, 0.0, 1e-35, -1e-36], 2).unwrap();
    assert_eq!(scales, vec![0.0, 0.0]);
    assert!(codes.iter().all(|&c| c == 0));
    // Non-finite values are rejected with their position.
    let err = quantize_int8(&[0.0, 1.0, f32::NAN, 2.0], 2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token 1") && err.contains("dimension 0"),
        "{err}"
    );
}

#[test]
fn int8_on_the_fly_query_within_quantization_bound() {
    // The float32 query is quantized per token inside maxsim_int8; compare with
    // the float32 query against the dequantized documents: the extra error is
    // at most Σ_i (sq_i / 2) · max_j Σ_k |d_jk| (plus rounding).
    let dim = 48;
    let c = case(dim, &[12], &[1, 40, 7], 21);
    let flat = c.docs.concat();
    let (codes, scales) = quantize_int8(&flat, dim).unwrap();
    let offsets = [0i64, 1, 41, 48];
    let docs = Int8Docs::packed(&codes, &scales, &offsets, dim).unwrap();
    let q = &c.queries[0];
    let got = maxsim_core::reduced::maxsim_int8(q, None, &docs, ScoreOptions::default()).unwrap();
    let mut q_codes = vec![0i8; dim];
    for j in 0..3 {
        let (lo, hi) = (offsets[j] as usize, offsets[j + 1] as usize);
        let d = dequantize(&codes[lo * dim..hi * dim], &scales[lo..hi], dim);
        let (want, _) = reference(&to_f64(q), &d, dim, false);
        let mut bound = 1e-5;
        for row in q.chunks_exact(dim) {
            let sq = quantize_row(row, &mut q_codes).unwrap() as f64;
            let l1 = d
                .chunks_exact(dim)
                .map(|t| t.iter().map(|v| v.abs()).sum::<f64>())
                .fold(0.0, f64::max);
            bound += sq * 0.5 * (1.0 + 1e-6) * l1;
        }
        assert!(
            (got[j] as f64 - want).abs() <= bound,
            "doc {j}: {} vs {want} (bound {bound})",
            got[j]
        );
    }
}

#[test]
fn int8_masks_batches_and_threads() {
    let dim = 37;
    let c = case(
        dim,
        &[9, 4, 20],
        &[3, 50, 1, 26, 99, 2, 7, 64, 65, 5, 11, 300],
        31,
    );
    let q_slices: Vec<&[f32]> = c.queries.iter().map(|q| &q[..]).collect();
    let flat = c.docs.concat();
    let (codes, scales) = quantize_int8(&flat, dim).unwrap();
    let mut offsets = vec![0i64];
    for d in &c.docs {
        offsets.push(offsets.last().unwrap() + (d.len() / dim) as i64);
    }
    let docs = Int8Docs::packed(&codes, &scales, &offsets, dim).unwrap();
    let n_docs = docs.len();
    let m0 = [true, false, true, true, true, false, true, true, true];
    let m1 = [false; 4];
    let m2 = [true; 20];
    let masks: [&[bool]; 3] = [&m0, &m1, &m2];
    let batch = Int8Queries::quantize(&q_slices, Some(&masks), dim).unwrap();
    maxsim_core::set_num_threads(1).unwrap();
    let base =
        maxsim_core::reduced::maxsim_int8_batch(&batch, &docs, ScoreOptions::default()).unwrap();
    for threads in [2, 3, 5] {
        maxsim_core::set_num_threads(threads).unwrap();
        let again = maxsim_core::reduced::maxsim_int8_batch(&batch, &docs, ScoreOptions::default())
            .unwrap();
        assert_eq!(base, again, "{threads} threads");
    }
    // Each row equals the query alone; an all-masked query scores 0.
    for (s, q) in q_slices.iter().enumerate() {
        let single =
            maxsim_core::reduced::maxsim_int8(q, Some(masks[s]), &docs, ScoreOptions::default())
                .unwrap();
        assert_eq!(
            &base[s * n_docs..(s + 1) * n_docs],
            &single[..],
            "query {s}"
        );
    }
    assert!(base[n_docs..2 * n_docs].iter().all(|&v| v == 0.0));

    // float16 too: thread counts do not change a bit.
    let half: Vec<f16> = to_half_vec(&flat);
    let set = DocSet::packed(&half, &offsets, dim).unwrap();
    let prepared = PreparedQueries::new(&q_slices, Some(&masks), dim).unwrap();
    let kernel = maxsim_core::selected_kernel().unwrap();
    maxsim_core::set_num_threads(1).unwrap();
    let base = maxsim_half_batch_with(kernel, &prepared, &set, ScoreOptions::default()).unwrap();
    for threads in [2, 4] {
        maxsim_core::set_num_threads(threads).unwrap();
        assert_eq!(
            base,
            maxsim_half_batch_with(kernel, &prepared, &set, ScoreOptions::default()).unwrap()
        );
    }
}

/// The scale check runs in blocks without an early exit and searches only a
/// failing block: it must still name the first invalid scale wherever it is
/// (inside a block, at either edge of one, in a short last block) and accept
/// -0.0 and the largest finite scale.
#[test]
fn int8_scale_check_names_the_first_invalid_token() {
    let (dim, n_tok) = (2, 600);
    let codes = vec![1i8; dim * n_tok];
    let offsets = [0i64, n_tok as i64];
    let mut edge = vec![0.5f32; n_tok];
    edge[7] = -0.0;
    edge[300] = f32::MAX;
    edge[599] = 0.0;
    assert!(Int8Docs::packed(&codes, &edge, &offsets, dim).is_ok());
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1e-30, -1.0] {
        for t in [0, 1, 254, 255, 256, 257, 511, 512, 513, 598, 599] {
            let mut scales = vec![0.5f32; n_tok];
            scales[t] = bad;
            // A later invalid scale must not be the one reported.
            if t + 3 < n_tok {
                scales[t + 3] = f32::NAN;
            }
            let message = Int8Docs::packed(&codes, &scales, &offsets, dim)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(&format!("document 0 token {t} has scale")),
                "{bad} at {t}: {message}"
            );
            let q_message = Int8Queries::from_codes(&[&codes], &[&scales], None, dim)
                .unwrap_err()
                .to_string();
            assert!(
                q_message.contains(&format!("token {t} has scale")),
                "{q_message}"
            );
        }
    }
}

#[test]
fn int8_bad_input() {
    let dim = 4;
    let codes = [1i8, 2, 3, 4, 5, 6, 7, 8];
    let scales = [0.1f32, 0.2];
    let offsets = [0i64, 2];
    assert!(Int8Docs::packed(&codes, &scales[..1], &offsets, dim)
        .unwrap_err()
        .to_string()
        .contains("scales"));
    let bad_scales = [0.1f32, -1.0];
    assert!(Int8Docs::packed(&codes, &bad_scales, &offsets, dim)
        .unwrap_err()
        .to_string()
        .contains("finite and >= 0"));
    let nan_scales = [0.1f32, f32::NAN];
    assert!(Int8Docs::packed(&codes, &nan_scales, &offsets, dim).is_err());
    // -128 is never produced by the quantizer but is accepted and exact.
    let min_codes = [1i8, 2, 3, 4, -128, -128, -128, -128];
    let extreme = Int8Docs::packed(&min_codes, &scales, &offsets, dim).unwrap();
    let q_codes = [-128i8, -128, -128, -128];
    let q = Int8Queries::from_codes(&[&q_codes], &[&[1.0]], None, dim).unwrap();
    for variant in int8_variants() {
        let got = run_int8(&variant, &q, &extreme, ScoreOptions::default());
        assert_eq!(got, vec![(4.0 * 128.0 * 128.0 * 0.2) as f32], "{variant}");
    }
    let docs = Int8Docs::packed(&codes, &scales, &offsets, dim).unwrap();
    let q = [1.0f32, 2.0, 3.0];
    let wrong_dim = Int8Queries::quantize(&[&q], None, 3).unwrap();
    assert!(
        maxsim_core::reduced::maxsim_int8_batch(&wrong_dim, &docs, ScoreOptions::default())
            .unwrap_err()
            .to_string()
            .contains("dimension")
    );
    let nan_q = [1.0f32, f32::NAN, 0.0, 0.0];
    assert!(Int8Queries::quantize(&[&nan_q], None, dim)
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
    let floor = [true, false];
    let err = maxsim_core::reduced::maxsim_int8(
        &[1.0, 0.0, 0.0, 0.0],
        None,
        &docs,
        ScoreOptions {
            zero_floor: Some(&floor),
        },
    );
    assert!(err.unwrap_err().to_string().contains("zero_floor"));
    assert!(Int8Docs::fixed(&codes, &scales[..1], 1, 2, dim).is_err());
    assert!(Int8Queries::quantize(&[&[]], None, dim).is_err());
}

#[test]
fn empty_collections() {
    let dim = 8;
    let q = values(3 * dim, 1);
    let prepared = PreparedQueries::new(&[&q], None, dim).unwrap();
    let empty: Vec<f16> = Vec::new();
    let set = DocSet::fixed(&empty, 0, 5, dim).unwrap();
    assert!(
        maxsim_core::reduced::maxsim_half_batch(&prepared, &set, ScoreOptions::default())
            .unwrap()
            .is_empty()
    );
    let docs = Int8Docs::list(Vec::new(), Vec::new(), dim).unwrap();
    assert!(
        maxsim_core::reduced::maxsim_int8(&q, None, &docs, ScoreOptions::default())
            .unwrap()
            .is_empty()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prop_int8_matches_reference(
        dim in 1usize..140,
        nq in 1usize..65,
        lens in proptest::collection::vec(1usize..90, 1..6),
        seed in 0u64..1_000_000,
        floor in any::<bool>(),
    ) {
        let c = int8_case(dim, &[nq], &lens, seed);
        let f: Vec<bool> = vec![floor; lens.len()];
        check_int8(&c, Some(&f));
    }
}
