//! Property tests over odd sizes: every Hamming implementation this CPU runs
//! against a byte-wise `count_ones` reference and a full sort.

use maxsim_core::binary::{
    hamming_with, interleave, maxsim_scores_batch_with, search_with, Codes, HammingImpl,
};
use maxsim_core::DocSet;
use proptest::prelude::*;

fn ref_hamming(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

fn impls() -> Vec<HammingImpl> {
    HammingImpl::ALL
        .into_iter()
        .filter(|i| i.is_supported())
        .collect()
}

/// `(n_bytes, queries, database)`: bytes masked so that many distances tie.
fn code_sets() -> impl Strategy<Value = (usize, Vec<u8>, Vec<u8>)> {
    (
        1usize..140,
        1usize..8,
        0usize..300,
        prop::sample::select(vec![0x01u8, 0x03, 0x81, 0xff]),
    )
        .prop_flat_map(|(n_bytes, n_q, n, mask)| {
            (
                Just(n_bytes),
                prop::collection::vec(any::<u8>().prop_map(move |b| b & mask), n_q * n_bytes),
                prop::collection::vec(any::<u8>().prop_map(move |b| b & mask), n * n_bytes),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn search_is_the_sorted_prefix((n_bytes, q, db) in code_sets(), k in 1usize..400) {
        let (n_q, n) = (q.len() / n_bytes, db.len() / n_bytes);
        let cq = Codes::rows("q", &q, n_q, n_bytes).unwrap();
        let cdb = Codes::rows("db", &db, n, n_bytes).unwrap();
        let words = interleave(&db, n, n_bytes).unwrap();
        let cdbi = Codes::interleaved("db", &words, n, n_bytes).unwrap();
        let kept = k.min(n);
        let mut want_d = Vec::new();
        let mut want_i = Vec::new();
        for x in q.chunks_exact(n_bytes) {
            let mut all: Vec<(u32, usize)> =
                db.chunks_exact(n_bytes).enumerate().map(|(j, y)| (ref_hamming(x, y), j)).collect();
            all.sort();
            want_d.extend(all[..kept].iter().map(|p| p.0 as i32));
            want_i.extend(all[..kept].iter().map(|p| p.1 as i64));
        }
        for imp in impls() {
            for src in [&cdb, &cdbi] {
                let got = search_with(imp, &cq, src, k).unwrap();
                prop_assert_eq!(got.k, kept);
                prop_assert_eq!(&got.distances, &want_d, "{}", imp.name());
                prop_assert_eq!(&got.indices, &want_i, "{}", imp.name());
            }
        }
    }

    #[test]
    fn hamming_matrix_is_exact((n_bytes, q, db) in code_sets()) {
        let (n_q, n) = (q.len() / n_bytes, db.len() / n_bytes);
        let want: Vec<i32> = q
            .chunks_exact(n_bytes)
            .flat_map(|x| db.chunks_exact(n_bytes).map(move |y| ref_hamming(x, y) as i32))
            .collect();
        let cq = Codes::rows("q", &q, n_q, n_bytes).unwrap();
        let cdb = Codes::rows("db", &db, n, n_bytes).unwrap();
        for imp in impls() {
            prop_assert_eq!(hamming_with(imp, &cq, &cdb).unwrap(), want.clone(), "{}", imp.name());
        }
    }

    #[test]
    fn binary_maxsim_is_exact(
        n_bytes in 1usize..70,
        lens in prop::collection::vec(1usize..40, 1..6),
        nq in 1usize..20,
        seed in any::<u64>(),
    ) {
        let mut state = seed | 1;
        let mut bytes = |n: usize| -> Vec<u8> {
            (0..n).map(|_| { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as u8 }).collect()
        };
        let q = bytes(nq * n_bytes);
        let docs: Vec<Vec<u8>> = lens.iter().map(|&l| bytes(l * n_bytes)).collect();
        let bits = (8 * n_bytes) as i32;
        let want: Vec<i32> = docs
            .iter()
            .map(|d| {
                q.chunks_exact(n_bytes)
                    .map(|qt| d.chunks_exact(n_bytes).map(|dt| bits - 2 * ref_hamming(qt, dt) as i32).max().unwrap())
                    .sum()
            })
            .collect();
        let set = DocSet::list(docs.iter().map(|d| d.as_slice()).collect(), n_bytes).unwrap();
        for imp in impls() {
            prop_assert_eq!(maxsim_scores_batch_with(imp, &[&q], &set, None).unwrap(), want.clone(), "{}", imp.name());
        }
    }
}
