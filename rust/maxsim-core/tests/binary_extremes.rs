//! Every Hamming implementation this CPU runs against a byte-wise reference
//! on the inputs that stress counter widths: codes whose nibbles all differ
//! from the query's (the nibble-table kernel's 8-bit counts reach 256 and
//! wrap in a 64-position search chunk, and must be recomputed), lengths
//! around the chunk sizes (63, 64, 126, 128 bytes), and codes longer than
//! the nibble-table kernel takes (more than 511 words: the `vpshufb`
//! fallback).

use maxsim_core::binary::{
    hamming_with, interleave, maxsim_scores_batch_with, search_with, Codes, HammingImpl,
};
use maxsim_core::DocSet;

fn ref_hamming(a: &[u8], b: &[u8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x ^ y).count_ones() as i32)
        .sum()
}

fn impls() -> Vec<HammingImpl> {
    HammingImpl::ALL
        .into_iter()
        .filter(|i| i.is_supported())
        .collect()
}

/// `n` codes of `n_bytes` whose bytes cycle through complements of the
/// queries' patterns: all-zero, all-one, one nibble set, and mixtures.
fn extreme_codes(n: usize, n_bytes: usize, seed: usize) -> Vec<u8> {
    const PATTERNS: [u8; 6] = [0x00, 0xFF, 0x0F, 0xF0, 0x5A, 0xA5];
    (0..n)
        .flat_map(|c| {
            let p = PATTERNS[(c * 7 + seed) % PATTERNS.len()];
            // A few codes flip one byte, so distances differ by small steps.
            (0..n_bytes).map(move |b| {
                if c % 5 == 3 && b == c % n_bytes {
                    !p
                } else {
                    p
                }
            })
        })
        .collect()
}

/// Distances, search results (all codes, so every distance is reported)
/// and binary MaxSim of `q` against `db`, for each implementation, equal
/// to the reference.
fn check(q: &[u8], db: &[u8], n_bytes: usize) {
    let (n_q, n) = (q.len() / n_bytes, db.len() / n_bytes);
    let want: Vec<i32> = q
        .chunks_exact(n_bytes)
        .flat_map(|x| db.chunks_exact(n_bytes).map(move |y| ref_hamming(x, y)))
        .collect();
    let mut sorted_d = Vec::new();
    let mut sorted_i = Vec::new();
    for row in want.chunks_exact(n) {
        let mut pairs: Vec<(i32, i64)> = row
            .iter()
            .enumerate()
            .map(|(i, &d)| (d, i as i64))
            .collect();
        pairs.sort();
        sorted_d.extend(pairs.iter().map(|p| p.0));
        sorted_i.extend(pairs.iter().map(|p| p.1));
    }
    let bits = 8 * n_bytes as i32;
    let want_maxsim: i32 = want
        .chunks_exact(n)
        .map(|row| row.iter().map(|&d| bits - 2 * d).max().unwrap())
        .sum();
    let cq = Codes::rows("q", q, n_q, n_bytes).unwrap();
    let cdb = Codes::rows("db", db, n, n_bytes).unwrap();
    let words = interleave(db, n, n_bytes).unwrap();
    let cdbi = Codes::interleaved("db", &words, n, n_bytes).unwrap();
    let docs = DocSet::fixed(db, 1, n, n_bytes).unwrap();
    for imp in impls() {
        let what = format!("{} n_bytes={n_bytes} n_q={n_q} n={n}", imp.name());
        for src in [&cdb, &cdbi] {
            assert_eq!(hamming_with(imp, &cq, src).unwrap(), want, "matrix {what}");
            let got = search_with(imp, &cq, src, n).unwrap();
            assert_eq!(got.distances, sorted_d, "search {what}");
            assert_eq!(got.indices, sorted_i, "search {what}");
            let top = search_with(imp, &cq, src, 3).unwrap();
            let top_d: Vec<i32> = sorted_d
                .chunks_exact(n)
                .flat_map(|r| r[..3].to_vec())
                .collect();
            assert_eq!(top.distances, top_d, "search k=3 {what}");
        }
        let ms = maxsim_scores_batch_with(imp, &[q], &docs, None).unwrap();
        assert_eq!(ms, vec![want_maxsim], "maxsim {what}");
    }
}

#[test]
fn counts_at_their_limits_around_the_chunk_sizes() {
    for n_bytes in [1, 8, 31, 32, 63, 64, 65, 72, 126, 127, 128, 129, 192] {
        // Queries of the same patterns: each pattern meets its complement.
        let q = extreme_codes(9, n_bytes, 1);
        let db = extreme_codes(53, n_bytes, 0);
        check(&q, &db, n_bytes);
    }
}

#[test]
fn codes_longer_than_the_nibble_tables_take() {
    // 511 words is the nibble-table kernel's longest; 512 and 513 fall back.
    for n_bytes in [4088, 4089, 4096, 4104] {
        let q = extreme_codes(5, n_bytes, 2);
        let db = extreme_codes(21, n_bytes, 0);
        check(&q, &db, n_bytes);
    }
}
