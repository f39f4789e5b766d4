//! int8 scoring of raw codes — any int8 value, −128 included, as a user can
//! pass them (`Int8Docs`, `Int8Queries::from_codes`) — for every int8
//! implementation this CPU runs, against the exact value derived from first
//! principles: integer dot products in i64, converted to f32 and scaled in
//! the documented order (`reduced::int8`).
//!
//! The code patterns are the ones that break byte-wide dot products: all
//! ±127 (the largest pair sums `vpmaddubsw` can form), −128 in documents
//! (a magnitude of 128), −128 in queries (which `vpsignb` cannot negate),
//! alternating signs, and random codes.

use maxsim_core::float::ScoreOptions;
use maxsim_core::reduced::{maxsim_int8_batch_variant, Int8Docs, Int8Queries};
use proptest::prelude::*;

/// Every int8 implementation the kernel tables of this CPU hold.
fn variants() -> Vec<&'static str> {
    let mut ids = Vec::new();
    for kernel in maxsim_core::Kernel::ALL {
        if let Ok(table) = maxsim_core::dispatch::table(kernel) {
            for imp in std::iter::once(&table.int8).chain(table.int8_alternatives) {
                if !ids.contains(&imp.id) {
                    ids.push(imp.id);
                }
            }
        }
    }
    ids
}

/// Codes of one pattern: 0 random in [-128, 127], 1 all 127, 2 all −127,
/// 3 alternating ±127, 4 random in {−128, −127, 127}, 5 random in [−127, 127].
fn codes(pattern: u8, n: usize, seed: u64) -> Vec<i8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| match pattern {
            0 => next() as u8 as i8,
            1 => 127,
            2 => -127,
            3 => {
                if i % 2 == 0 {
                    127
                } else {
                    -127
                }
            }
            4 => [-128i8, -127, 127][(next() % 3) as usize],
            _ => ((next() % 255) as i32 - 127) as i8,
        })
        .collect()
}

/// Positive scales that keep products finite.
fn scales(n: usize, seed: u64) -> Vec<f32> {
    (0..n)
        .map(|i| 1e-3 + ((seed as usize + 7 * i) % 101) as f32 * 1e-4)
        .collect()
}

/// `Σ_i sq_i · max_j fl(fl(⟨cq_i, cd_j⟩) · sd_j)`, summed in f64 in token order.
fn exact(q: &[i8], sq: &[f32], docs: &[(Vec<i8>, Vec<f32>)], dim: usize) -> Vec<f32> {
    docs.iter()
        .map(|(d, sd)| {
            let total: f64 = q
                .chunks_exact(dim)
                .zip(sq)
                .map(|(qi, &s)| {
                    let best = d
                        .chunks_exact(dim)
                        .zip(sd)
                        .map(|(dj, &t)| {
                            let dot: i64 =
                                qi.iter().zip(dj).map(|(&a, &b)| a as i64 * b as i64).sum();
                            (dot as i32 as f32) * t
                        })
                        .fold(f32::NEG_INFINITY, f32::max);
                    (best * s) as f64
                })
                .sum();
            total as f32
        })
        .collect()
}

fn check(dim: usize, nq: usize, lens: &[usize], q_pattern: u8, d_pattern: u8, seed: u64) {
    let q = codes(q_pattern, nq * dim, seed);
    let sq = scales(nq, seed);
    let docs: Vec<(Vec<i8>, Vec<f32>)> = lens
        .iter()
        .enumerate()
        .map(|(j, &n)| {
            let s = seed + 1 + j as u64;
            (codes(d_pattern, n * dim, s), scales(n, s))
        })
        .collect();
    let queries = Int8Queries::from_codes(&[&q], &[&sq], None, dim).unwrap();
    let set = Int8Docs::list(
        docs.iter().map(|d| &d.0[..]).collect(),
        docs.iter().map(|d| &d.1[..]).collect(),
        dim,
    )
    .unwrap();
    let want = exact(&q, &sq, &docs, dim);
    let scalar =
        maxsim_int8_batch_variant("scalar", &queries, &set, ScoreOptions::default()).unwrap();
    for (j, (&got, &w)) in scalar.iter().zip(&want).enumerate() {
        assert!(got == w, "scalar doc {j}: {got} vs exact {w}");
    }
    for id in variants() {
        let got = maxsim_int8_batch_variant(id, &queries, &set, ScoreOptions::default()).unwrap();
        let same = got
            .iter()
            .zip(&scalar)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{id} differs bitwise from scalar: {got:?} vs {scalar:?} (dim {dim}, nq {nq}, patterns {q_pattern}/{d_pattern})");
    }
}

#[test]
fn avx2_runs_every_int8_kernel() {
    // Whichever the AVX2 table picks, the others are alternatives: all are
    // tested. The AVX-VNNI one exists where the CPU has AVX-VNNI.
    if maxsim_core::dispatch::table(maxsim_core::Kernel::Avx2).is_ok() {
        let ids = variants();
        assert!(
            ids.contains(&"avx2") && ids.contains(&"avx2-maddubs"),
            "{ids:?}"
        );
        let vnni = maxsim_core::dispatch::Cpu::get().avxvnni;
        assert_eq!(ids.contains(&"avx2-vnni"), vnni, "{ids:?}");
        let picked = maxsim_core::dispatch::table(maxsim_core::Kernel::Avx2)
            .unwrap()
            .int8
            .id;
        assert_eq!(picked, if vnni { "avx2-vnni" } else { "avx2" });
    }
}

#[test]
fn extreme_codes_every_shape_edge() {
    // Pair sums at the limit (all ±127: 2 · 127 · 127 per pair), −128 on
    // either side, 1-token and long documents, widths around the groups of
    // four and the 32-code conversion steps.
    for (dim, nq) in [
        (1, 1),
        (3, 7),
        (4, 8),
        (5, 9),
        (31, 16),
        (32, 17),
        (33, 64),
        (128, 32),
        (129, 3),
    ] {
        for q_pattern in 0..6 {
            for d_pattern in 0..6 {
                let seed = (dim * 1000 + nq * 10) as u64 + (q_pattern * 6 + d_pattern) as u64;
                check(dim, nq, &[1, 5, 9, 300], q_pattern, d_pattern, seed);
            }
        }
    }
}

#[test]
fn largest_width_does_not_overflow() {
    // 65 536 dimensions of 127 · 127 (and −128 · −128 with the fallback):
    // the int32 sums stay exact.
    let dim = maxsim_core::reduced::MAX_INT8_DIM;
    check(dim, 2, &[1, 2], 1, 1, 3);
    check(dim, 2, &[1, 2], 3, 3, 4);
    check(dim, 1, &[2], 4, 4, 5);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn prop_raw_codes_match_exact(
        dim in 1usize..140,
        nq in 1usize..65,
        lens in proptest::collection::vec(1usize..90, 1..5),
        long in any::<bool>(),
        q_pattern in 0u8..6,
        d_pattern in 0u8..6,
        seed in 0u64..1_000_000,
    ) {
        let mut lens = lens;
        if long {
            lens.push(700);
        }
        check(dim, nq, &lens, q_pattern, d_pattern, seed);
    }
}
