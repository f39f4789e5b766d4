//! The screened paths (the AVX-512 bf16 screen and the AVX2 int16 screen,
//! each where this CPU runs its kernel) against the plain kernels of the same
//! family, for float32, float16 and bfloat16 documents: the screen only chooses which float32 dot
//! products to compute, so every result must be bitwise equal. The inputs
//! cover each branch of the screen: one candidate, two to four tracked
//! candidates, the rescan of lanes with more (repeated document tokens),
//! all-zero query tokens, masked tokens, and the fallbacks (non-finite
//! values, norms past the bound, tiny values, documents past 65536 tokens).
#![cfg(target_arch = "x86_64")]

use maxsim_core::dispatch::{screen_kernels, screens, Screen};
use maxsim_core::float::screen::screen_supported;
use maxsim_core::float::{
    maxsim_scores_batch_screened_with, maxsim_scores_batch_unscreened, PreparedQueries,
    ScoreOptions,
};
use maxsim_core::reduced::{
    bf16, f16, maxsim_half_batch_screened_with, maxsim_half_batch_unscreened, HalfFloat,
};
use maxsim_core::reference::{f32_error_bound, maxsim_f64};
use maxsim_core::DocSet;
use proptest::prelude::*;

mod common;
use common::values;

/// Screened and plain scores of `queries` against packed `docs`, asserted
/// bitwise equal for every screen this CPU runs; also checks them against the
/// f64 reference where finite.
fn check(queries: &[Vec<f32>], masks: Option<&[Vec<bool>]>, docs: &[Vec<f32>], dim: usize) {
    if !maxsim_core::dispatch::run_or_skip("avx512bf16", screen_supported(), "float_screen") {
        return;
    }
    for screen in screens() {
        check_with(screen, queries, masks, docs, dim);
    }
}

/// [`check`] for `screen`.
fn check_with(
    screen: Screen,
    queries: &[Vec<f32>],
    masks: Option<&[Vec<bool>]>,
    docs: &[Vec<f32>],
    dim: usize,
) {
    let query_refs: Vec<&[f32]> = queries.iter().map(|q| q.as_slice()).collect();
    let mask_refs: Option<Vec<&[bool]>> = masks.map(|m| m.iter().map(|m| m.as_slice()).collect());
    let prepared = PreparedQueries::new(&query_refs, mask_refs.as_deref(), dim).unwrap();
    let flat: Vec<f32> = docs.concat();
    let mut offsets = vec![0i64];
    for d in docs {
        offsets.push(offsets.last().unwrap() + (d.len() / dim) as i64);
    }
    let set = DocSet::packed(&flat, &offsets, dim).unwrap();
    let floor: Vec<bool> = (0..docs.len()).map(|i| i % 3 == 1).collect();
    for zero_floor in [None, Some(floor.as_slice())] {
        let options = ScoreOptions { zero_floor };
        let screened = maxsim_scores_batch_screened_with(screen, &prepared, &set, options).unwrap();
        let plain =
            maxsim_scores_batch_unscreened(screen.kernel, &prepared, &set, options).unwrap();
        assert_bitwise(
            &screened,
            &plain,
            docs.len(),
            dim,
            &format!("{screen:?} float32"),
        );
    }
    if masks.is_none() {
        let screened =
            maxsim_scores_batch_screened_with(screen, &prepared, &set, ScoreOptions::default())
                .unwrap();
        check_reference(queries, docs, dim, &screened, "float32");
    }
    // Narrowed as `half` does (values past the range become ±inf; `to_half`
    // would refuse them), to exercise the fallbacks.
    let case = Case {
        screen,
        queries,
        prepared: &prepared,
        unmasked: masks.is_none(),
        docs,
        offsets: &offsets,
        dim,
    };
    check_half(&case, f16::from_f32);
    check_half(&case, bf16::from_f32);
}

/// One input of [`check`], for the 16-bit formats.
struct Case<'a> {
    screen: Screen,
    queries: &'a [Vec<f32>],
    prepared: &'a PreparedQueries,
    unmasked: bool,
    docs: &'a [Vec<f32>],
    offsets: &'a [i64],
    dim: usize,
}

/// As [`check`] for the documents stored as `T`: screened against the plain
/// 16-bit kernel of the same family, bitwise, and against the f64 reference
/// on the widened values.
fn check_half<T: HalfFloat + Into<f32>>(case: &Case, narrow: fn(f32) -> T) {
    let &Case {
        screen,
        queries,
        prepared,
        unmasked,
        docs,
        offsets,
        dim,
    } = case;
    let stored: Vec<Vec<T>> = docs
        .iter()
        .map(|d| d.iter().map(|&v| narrow(v)).collect())
        .collect();
    let flat: Vec<T> = stored.concat();
    let set = DocSet::packed(&flat, offsets, dim).unwrap();
    let format = format!("{screen:?} {}", std::any::type_name::<T>());
    let floor: Vec<bool> = (0..docs.len()).map(|i| i % 3 == 1).collect();
    for zero_floor in [None, Some(floor.as_slice())] {
        let options = ScoreOptions { zero_floor };
        let screened = maxsim_half_batch_screened_with(screen, prepared, &set, options).unwrap();
        let plain = maxsim_half_batch_unscreened(screen.kernel, prepared, &set, options).unwrap();
        assert_bitwise(&screened, &plain, docs.len(), dim, &format);
    }
    if unmasked {
        let widened: Vec<Vec<f32>> = stored
            .iter()
            .map(|d| d.iter().map(|&v| v.into()).collect())
            .collect();
        let screened =
            maxsim_half_batch_screened_with(screen, prepared, &set, ScoreOptions::default())
                .unwrap();
        check_reference(queries, &widened, dim, &screened, &format);
    }
}

/// Screened and plain scores, `n_queries × n_docs`, are bitwise equal (NaN
/// matching NaN).
fn assert_bitwise(screened: &[f32], plain: &[f32], n_docs: usize, dim: usize, what: &str) {
    for (i, (s, p)) in screened.iter().zip(plain).enumerate() {
        assert!(
            s.to_bits() == p.to_bits() || (s.is_nan() && p.is_nan()),
            "{what} score {i} (query {}, doc {}): screened {s} vs plain {p}, dim {dim}",
            i / n_docs,
            i % n_docs
        );
    }
}

/// Scores against first principles where everything is finite.
fn check_reference(queries: &[Vec<f32>], docs: &[Vec<f32>], dim: usize, got: &[f32], what: &str) {
    if !queries.iter().chain(docs).flatten().all(|v| v.is_finite()) {
        return;
    }
    for (qi, query) in queries.iter().enumerate() {
        for (di, doc) in docs.iter().enumerate() {
            let expected = maxsim_f64(query, doc, dim);
            let bound = f32_error_bound(query, doc, dim);
            let value = got[qi * docs.len() + di] as f64;
            assert!(
                (value - expected).abs() <= bound,
                "{what}: query {qi} doc {di}: {value} vs {expected}"
            );
        }
    }
}

#[test]
fn random_shapes() {
    for dim in [1, 2, 7, 16, 31, 32, 33, 64, 96, 128, 130] {
        for nq in [1, 3, 16, 17, 32, 33, 64] {
            let seed = (dim * 1000 + nq) as u64;
            let query = values(nq * dim, seed);
            let docs: Vec<Vec<f32>> = [1, 2, 5, 6, 7, 13, 64, 300]
                .iter()
                .enumerate()
                .map(|(i, &n)| values(n * dim, seed + 1 + i as u64))
                .collect();
            check(&[query], None, &docs, dim);
        }
    }
}

#[test]
fn long_documents_and_batches() {
    let dim = 128;
    let queries: Vec<Vec<f32>> = (0..5).map(|s| values(32 * dim, 50 + s)).collect();
    let docs: Vec<Vec<f32>> = [2000, 1, 777, 300]
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, 90 + i as u64))
        .collect();
    check(&queries, None, &docs, dim);
}

/// Token indices share the keys with the values: up to 65536 tokens are
/// screened (16 index bits, the widest window), longer documents take the
/// plain kernel.
#[test]
fn documents_at_and_past_the_index_bits() {
    let dim = 6;
    let query = values(20 * dim, 5);
    let docs: Vec<Vec<f32>> = [65_536, 65_537, 3]
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, 70 + i as u64))
        .collect();
    check(&[query], None, &docs, dim);
}

/// The float32 maximum in each tracked slot in turn: `n` copies of a token,
/// perturbed far below bf16 resolution so that their approximate values tie
/// (ties order by token index, largest first) while their float32 values
/// decrease with the index, so the maximum is the copy tracked last.
#[test]
fn true_maximum_in_every_tracked_slot() {
    let dim = 64;
    let query_token = values(dim, 21);
    let query: Vec<f32> = query_token.repeat(16);
    // The query token itself: its copies are far above the unrelated tokens.
    let base = query_token.clone();
    let docs: Vec<Vec<f32>> = (1..=7)
        .map(|n| {
            let mut doc = Vec::new();
            for k in 0..n {
                let step = (n - k) as f32 * 1e-6;
                doc.extend(
                    base.iter()
                        .zip(&query_token)
                        .map(|(&d, &q)| d + step * d.abs() * q.signum()),
                );
            }
            // Unrelated tokens around them.
            doc.extend(values(5 * dim, 23 + n as u64));
            doc
        })
        .collect();
    check(&[query], None, &docs, dim);
}

/// Documents made of a few tokens repeated many times: every query token has
/// many exactly tied and near-tied candidates (the rescan path).
#[test]
fn repeated_and_near_duplicate_tokens() {
    let dim = 96;
    let query = values(40 * dim, 7);
    let base = values(3 * dim, 8);
    let mut docs = Vec::new();
    for copies in [2, 3, 4, 5, 9, 50] {
        let mut doc = Vec::new();
        for c in 0..copies {
            for t in 0..3 {
                let row = &base[t * dim..(t + 1) * dim];
                // Alternate exact copies with copies nudged by one ulp-ish step.
                doc.extend(
                    row.iter()
                        .map(|&v| if c % 2 == 0 { v } else { v * (1.0 + 1e-6) }),
                );
            }
        }
        docs.push(doc);
    }
    check(std::slice::from_ref(&query), None, &docs, dim);
    // Query tokens equal to document tokens: the best match is itself, tied.
    let echo: Vec<f32> = base.iter().chain(&base).copied().collect();
    check(&[echo], None, &docs, dim);
}

#[test]
fn zero_and_masked_query_tokens() {
    let dim = 64;
    let mut query = values(20 * dim, 3);
    for t in [0, 5, 19] {
        query[t * dim..(t + 1) * dim].fill(0.0);
    }
    let mask: Vec<bool> = (0..20).map(|t| t % 4 != 2).collect();
    let docs: Vec<Vec<f32>> = (0..6)
        .map(|i| values((1 + 37 * i) * dim, 30 + i as u64))
        .collect();
    check(std::slice::from_ref(&query), None, &docs, dim);
    check(&[query], Some(&[mask]), &docs, dim);
}

/// Values the bound does not cover fall back to the float32 kernel; tiny
/// values (bf16 flushes them to zero) stay within it.
#[test]
fn non_finite_huge_and_tiny_values() {
    let dim = 33;
    let query = values(17 * dim, 11);
    let mut docs: Vec<Vec<f32>> = (0..8).map(|i| values(20 * dim, 40 + i as u64)).collect();
    docs[1][5] = f32::NAN;
    docs[2][7] = f32::INFINITY;
    docs[3][0] = f32::NEG_INFINITY;
    docs[4].iter_mut().for_each(|v| *v *= 1e19); // norms past the bound
    docs[5].iter_mut().for_each(|v| *v *= 1e-39); // subnormal: flushed by bf16
    docs[6].iter_mut().step_by(3).for_each(|v| *v *= 1e-40);
    check(std::slice::from_ref(&query), None, &docs, dim);
    let tiny_query: Vec<f32> = query.iter().map(|v| v * 1e-38).collect();
    check(&[tiny_query], None, &docs[..1], dim);
    let mut nan_query = query.clone();
    nan_query[3] = f32::NAN;
    check(&[nan_query], None, &docs[..1], dim);
    let huge_query: Vec<f32> = query.iter().map(|v| v * 1e19).collect();
    check(&[huge_query], None, &docs[..1], dim);
}

/// Near-ties at the screen's own resolution: many copies of one token, each
/// perturbed by a few units of the int16 screen's code step (`‖d‖ / 30000`)
/// or of bf16's, so that approximate and exact orders disagree within the
/// bound and a window any narrower than it misses the true maximum.
#[test]
fn near_ties_at_the_code_step() {
    let dim = 96;
    let query = values(24 * dim, 61);
    let base = values(dim, 62);
    let docs: Vec<Vec<f32>> = (0..120u64)
        .map(|i| {
            let step = if i % 2 == 0 { 3e-5 } else { 4e-3 };
            let noise = values(48 * dim, 1000 + i);
            noise
                .chunks_exact(dim)
                .flat_map(|n| base.iter().zip(n).map(move |(&b, &e)| b + step * e))
                .collect()
        })
        .collect();
    check(&[query], None, &docs, dim);
}

/// Ties at zero: a one-token query whose only non-zero value, in its last
/// dimension, is the smallest subnormal gives −0 against a token with a
/// negative value there (the last product rounds to −0) and +0 against a
/// positive one, and the plain kernel keeps whichever comes first in token
/// order; the score is that zero. The bound is wide for such a token (every
/// document token is a candidate), so the screen must fold its candidates in
/// token order too.
#[test]
fn signed_zero_ties_follow_token_order() {
    if !maxsim_core::dispatch::run_or_skip("avx512bf16", screen_supported(), "float_screen") {
        return;
    }
    let dim = 4;
    let query = vec![0.0, 0.0, 0.0, f32::from_bits(1)];
    let row = |last: f32| [0.5, -0.25, 0.75, last];
    let docs: Vec<Vec<f32>> = [[-0.4f32, 0.4, 0.3], [0.4, -0.4, -0.3], [-0.3, -0.2, 0.1]]
        .iter()
        .map(|lasts| lasts.iter().flat_map(|&f| row(f)).collect())
        .collect();
    check(std::slice::from_ref(&query), None, &docs, dim);
    // The scores really are −0 and +0 (each screened kernel's plain ones).
    let prepared = PreparedQueries::new(&[&query], None, dim).unwrap();
    let flat: Vec<f32> = docs.concat();
    let set = DocSet::packed(&flat, &[0, 3, 6, 9], dim).unwrap();
    for kernel in screen_kernels() {
        let plain =
            maxsim_scores_batch_unscreened(kernel, &prepared, &set, ScoreOptions::default());
        let signs: Vec<bool> = plain
            .unwrap()
            .iter()
            .map(|v| v.is_sign_negative())
            .collect();
        assert_eq!(signs, [true, false, true], "{kernel:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_shapes_bitwise_equal(
        dim in 1usize..140,
        nq in 1usize..65,
        lengths in proptest::collection::vec(1usize..400, 1..6),
        duplicate_every in 0usize..4,
        seed in any::<u64>(),
    ) {
        let query = values(nq * dim, seed);
        let docs: Vec<Vec<f32>> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut doc = values(n * dim, seed ^ (i as u64 + 1));
                // Optionally repeat rows to create ties.
                if duplicate_every > 0 {
                    for t in (duplicate_every..n).step_by(duplicate_every + 1) {
                        let (head, tail) = doc.split_at_mut(t * dim);
                        tail[..dim].copy_from_slice(&head[(t - duplicate_every) * dim..(t - duplicate_every + 1) * dim]);
                    }
                }
                doc
            })
            .collect();
        check(&[query], None, &docs, dim);
    }
}
