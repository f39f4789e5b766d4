//! Binary kernels against plain reference implementations written here
//! (byte-wise `count_ones`, full sorts), for every implementation this CPU
//! runs, on odd sizes; plus thread-count independence.

use maxsim_core::binary::{
    self, hamming_with, interleave, maxsim_scores_batch_with, quantize_ubinary, rescore,
    search_rescore_with, search_with, unpack, Codes, DbFloat, F16Bits, HammingImpl, RescoreTarget,
};
use maxsim_core::{DocSet, Kernel};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Codes where only the bits of `mask` vary: many equal distances.
    fn tied_bytes(&mut self, n: usize, mask: u8) -> Vec<u8> {
        (0..n).map(|_| (self.next() as u8) & mask).collect()
    }
    fn floats(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect()
    }
}

fn ref_hamming(a: &[u8], b: &[u8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x ^ y).count_ones() as i32)
        .sum()
}

fn ref_matrix(a: &[u8], b: &[u8], n_bytes: usize) -> Vec<i32> {
    let mut out = Vec::new();
    for x in a.chunks_exact(n_bytes) {
        for y in b.chunks_exact(n_bytes) {
            out.push(ref_hamming(x, y));
        }
    }
    out
}

/// Full sort by (distance, index), first k.
fn ref_search(q: &[u8], db: &[u8], n_bytes: usize, k: usize) -> (Vec<i32>, Vec<i64>) {
    let mut d = Vec::new();
    let mut i = Vec::new();
    for x in q.chunks_exact(n_bytes) {
        let mut all: Vec<(i32, i64)> = db
            .chunks_exact(n_bytes)
            .enumerate()
            .map(|(j, y)| (ref_hamming(x, y), j as i64))
            .collect();
        all.sort();
        for &(dd, ii) in all.iter().take(k) {
            d.push(dd);
            i.push(ii);
        }
    }
    (d, i)
}

fn impls() -> Vec<HammingImpl> {
    HammingImpl::ALL
        .into_iter()
        .filter(|i| i.is_supported())
        .collect()
}

const BYTE_SIZES: [usize; 18] = [
    1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 48, 64, 65, 128, 129, 260,
];

#[test]
fn reports_which_impls_run() {
    let names: Vec<_> = impls().iter().map(|i| i.name()).collect();
    eprintln!("binary impls tested on this CPU: {names:?}");
    assert!(names.contains(&"portable"));
    #[cfg(target_arch = "aarch64")]
    assert!(
        names.contains(&"neon-vcnt"),
        "NEON must be exercised on aarch64"
    );
}

#[test]
fn avx512_selection_falls_back_without_vpopcntdq() {
    let chosen = HammingImpl::for_kernel(Kernel::Avx512);
    assert!(chosen.is_supported());
    if !HammingImpl::Avx512.is_supported() {
        assert_ne!(chosen, HammingImpl::Avx512);
    }
    assert!(HammingImpl::for_kernel(Kernel::Scalar).is_supported());
}

#[test]
fn hamming_matrix_matches_reference_on_odd_sizes() {
    let mut rng = Rng(0x1234_5678);
    for &n_bytes in &BYTE_SIZES {
        for &(n_a, n_b) in &[
            (1, 1),
            (1, 9),
            (3, 17),
            (5, 64),
            (2, 131),
            (67, 23),
            (0, 5),
            (4, 0),
        ] {
            let a = rng.bytes(n_a * n_bytes);
            let b = rng.bytes(n_b * n_bytes);
            let want = ref_matrix(&a, &b, n_bytes);
            let ca = Codes::rows("a", &a, n_a, n_bytes).unwrap();
            let cb = Codes::rows("b", &b, n_b, n_bytes).unwrap();
            let words = interleave(&b, n_b, n_bytes).unwrap();
            let cbi = Codes::interleaved("b", &words, n_b, n_bytes).unwrap();
            for imp in impls() {
                assert_eq!(
                    hamming_with(imp, &ca, &cb).unwrap(),
                    want,
                    "{} bytes={n_bytes} {n_a}x{n_b}",
                    imp.name()
                );
                assert_eq!(
                    hamming_with(imp, &ca, &cbi).unwrap(),
                    want,
                    "{} interleaved",
                    imp.name()
                );
            }
        }
    }
}

#[test]
fn search_matches_full_sort_with_ties() {
    let mut rng = Rng(42);
    // Sizes around the word (8 bytes), partial-counter (31 words = 248 bytes)
    // and group boundaries; kept small enough for the debug build under qemu.
    for &n_bytes in &[1usize, 3, 8, 9, 16, 17, 24, 64, 72, 260] {
        for &(n_q, n, mask) in &[
            (1, 1, 0xff),
            (3, 50, 0x03),
            (7, 1003, 0x11),
            (33, 133, 0xff),
            (2, 2100, 0x01),
        ] {
            let q = rng.tied_bytes(n_q * n_bytes, mask);
            let db = rng.tied_bytes(n * n_bytes, mask);
            let cq = Codes::rows("q", &q, n_q, n_bytes).unwrap();
            let cdb = Codes::rows("db", &db, n, n_bytes).unwrap();
            let words = interleave(&db, n, n_bytes).unwrap();
            let cdbi = Codes::interleaved("db", &words, n, n_bytes).unwrap();
            let (all_d, all_i) = ref_search(&q, &db, n_bytes, n);
            for k in [1, 2, 10, 100, n, n + 5] {
                let kept = k.min(n);
                let wd: Vec<i32> = all_d
                    .chunks_exact(n)
                    .flat_map(|r| r[..kept].to_vec())
                    .collect();
                let wi: Vec<i64> = all_i
                    .chunks_exact(n)
                    .flat_map(|r| r[..kept].to_vec())
                    .collect();
                for imp in impls() {
                    for src in [&cdb, &cdbi] {
                        let got = search_with(imp, &cq, src, k).unwrap();
                        assert_eq!(got.k, k.min(n));
                        assert_eq!(
                            got.distances,
                            wd,
                            "{} bytes={n_bytes} n={n} k={k}",
                            imp.name()
                        );
                        assert_eq!(
                            got.indices,
                            wi,
                            "{} bytes={n_bytes} n={n} k={k}",
                            imp.name()
                        );
                    }
                }
            }
        }
    }
}

/// One or two queries over row-major codes of whole words take the direct
/// (non-interleaved) path; every chunk tail (`w % 4`) and the longest
/// direct code (124 words) against the reference, and just past it.
#[test]
fn direct_row_path_matches_reference() {
    let mut rng = Rng(17);
    for w in [1usize, 2, 3, 4, 5, 7, 8, 9, 16, 31, 32, 33, 124, 125] {
        let n_bytes = 8 * w;
        let n = 203;
        let db = rng.tied_bytes(n * n_bytes, 0x21);
        // Up to 3 queries take the direct row path, 4 and 5 the interleaved tiles
        // (padded to a whole register block for 5 on 4-query kernels).
        let q = rng.tied_bytes(5 * n_bytes, 0x21);
        let (all_d, all_i) = ref_search(&q, &db, n_bytes, n);
        let cdb = Codes::rows("db", &db, n, n_bytes).unwrap();
        let words = interleave(&db, n, n_bytes).unwrap();
        let cdb_interleaved = Codes::interleaved("db", &words, n, n_bytes).unwrap();
        for n_q in [1usize, 2, 3, 4, 5] {
            let cq = Codes::rows("q", &q[..n_q * n_bytes], n_q, n_bytes).unwrap();
            for k in [1usize, 9, 64, n] {
                let wd: Vec<i32> = all_d
                    .chunks_exact(n)
                    .take(n_q)
                    .flat_map(|r| r[..k].to_vec())
                    .collect();
                let wi: Vec<i64> = all_i
                    .chunks_exact(n)
                    .take(n_q)
                    .flat_map(|r| r[..k].to_vec())
                    .collect();
                for imp in impls() {
                    let got = search_with(imp, &cq, &cdb, k).unwrap();
                    assert_eq!(got.distances, wd, "{} w={w} n_q={n_q} k={k}", imp.name());
                    assert_eq!(got.indices, wi, "{} w={w} n_q={n_q} k={k}", imp.name());
                    // The interleaved layout: fewer queries than a register block
                    // are padded (with throwaway heaps) and must not leak into results.
                    let got = search_with(imp, &cq, &cdb_interleaved, k).unwrap();
                    assert_eq!(
                        got.distances,
                        wd,
                        "{} interleaved w={w} n_q={n_q}",
                        imp.name()
                    );
                    assert_eq!(
                        got.indices,
                        wi,
                        "{} interleaved w={w} n_q={n_q}",
                        imp.name()
                    );
                }
            }
        }
    }
}

#[test]
fn search_k_1000_on_larger_database() {
    let mut rng = Rng(7);
    let (n_q, n, n_bytes) = (5, 20_011, 64);
    let q = rng.bytes(n_q * n_bytes);
    let db = rng.tied_bytes(n * n_bytes, 0x81);
    let (wd, wi) = ref_search(&q, &db, n_bytes, 1000);
    let cq = Codes::rows("q", &q, n_q, n_bytes).unwrap();
    let cdb = Codes::rows("db", &db, n, n_bytes).unwrap();
    for imp in impls() {
        let got = search_with(imp, &cq, &cdb, 1000).unwrap();
        assert_eq!(got.distances, wd, "{}", imp.name());
        assert_eq!(got.indices, wi, "{}", imp.name());
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut rng = Rng(99);
    let (n, n_bytes) = (30_001, 16);
    let db = rng.tied_bytes(n * n_bytes, 0x0f);
    let q = rng.tied_bytes(130 * n_bytes, 0x0f);
    let cdb = Codes::rows("db", &db, n, n_bytes).unwrap();
    let mut outputs = Vec::new();
    for threads in [1, 2, 3, 8] {
        maxsim_core::set_num_threads(threads).unwrap();
        let mut per = Vec::new();
        for n_q in [1, 130] {
            let cq = Codes::rows("q", &q[..n_q * n_bytes], n_q, n_bytes).unwrap();
            for imp in impls() {
                per.push(search_with(imp, &cq, &cdb, 37).unwrap());
            }
        }
        let docs = DocSet::fixed(&db[..300 * 10 * n_bytes], 300, 10, n_bytes).unwrap();
        let ms =
            maxsim_scores_batch_with(HammingImpl::Portable, &[&q[..32 * n_bytes]], &docs, None)
                .unwrap();
        outputs.push((per, ms));
    }
    maxsim_core::set_num_threads(2).unwrap();
    for o in &outputs[1..] {
        assert_eq!(o, &outputs[0]);
    }
}

fn ref_maxsim(q: &[u8], doc: &[u8], n_bytes: usize, d_bits: i32) -> i32 {
    q.chunks_exact(n_bytes)
        .map(|qt| {
            doc.chunks_exact(n_bytes)
                .map(|dt| d_bits - 2 * ref_hamming(qt, dt))
                .max()
                .unwrap()
        })
        .sum()
}

#[test]
fn binary_maxsim_matches_reference_for_every_layout() {
    let mut rng = Rng(5);
    for &n_bytes in &[1usize, 3, 8, 16, 17, 32, 40, 260] {
        let queries: Vec<Vec<u8>> = [1usize, 5, 32, 33]
            .iter()
            .map(|&nq| rng.bytes(nq * n_bytes))
            .collect();
        let qrefs: Vec<&[u8]> = queries.iter().map(|q| q.as_slice()).collect();
        // Variable lengths, including 1 and lengths around group boundaries.
        let lens = [1usize, 7, 8, 9, 16, 31, 300, 2];
        let list: Vec<Vec<u8>> = lens.iter().map(|&l| rng.bytes(l * n_bytes)).collect();
        let flat: Vec<u8> = list.concat();
        let mut offsets = vec![0i64];
        for &l in &lens {
            offsets.push(offsets.last().unwrap() + l as i64);
        }
        let fixed = rng.bytes(6 * 13 * n_bytes);
        let d_bits = (n_bytes * 8) as i32;
        let want_list: Vec<i32> = qrefs
            .iter()
            .flat_map(|q| {
                list.iter()
                    .map(|d| ref_maxsim(q, d, n_bytes, d_bits))
                    .collect::<Vec<_>>()
            })
            .collect();
        let want_fixed: Vec<i32> = qrefs
            .iter()
            .flat_map(|q| {
                fixed
                    .chunks_exact(13 * n_bytes)
                    .map(|d| ref_maxsim(q, d, n_bytes, d_bits))
                    .collect::<Vec<_>>()
            })
            .collect();
        let list_set = DocSet::list(list.iter().map(|d| d.as_slice()).collect(), n_bytes).unwrap();
        let packed_set = DocSet::packed(&flat, &offsets, n_bytes).unwrap();
        let fixed_set = DocSet::fixed(&fixed, 6, 13, n_bytes).unwrap();
        for imp in impls() {
            assert_eq!(
                maxsim_scores_batch_with(imp, &qrefs, &list_set, None).unwrap(),
                want_list,
                "{}",
                imp.name()
            );
            assert_eq!(
                maxsim_scores_batch_with(imp, &qrefs, &packed_set, None).unwrap(),
                want_list,
                "{}",
                imp.name()
            );
            assert_eq!(
                maxsim_scores_batch_with(imp, &qrefs, &fixed_set, None).unwrap(),
                want_fixed,
                "{}",
                imp.name()
            );
            // A single query gives its row of the batch.
            assert_eq!(
                maxsim_scores_batch_with(imp, &qrefs[2..3], &list_set, None).unwrap(),
                want_list[2 * lens.len()..3 * lens.len()]
            );
        }
        // An explicit bit count shifts every token's similarity.
        if n_bytes > 1 {
            let bits = n_bytes * 8 - 3;
            let got =
                maxsim_scores_batch_with(HammingImpl::Portable, &qrefs[..1], &list_set, Some(bits))
                    .unwrap();
            let want: Vec<i32> = list
                .iter()
                .map(|d| ref_maxsim(qrefs[0], d, n_bytes, bits as i32))
                .collect();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn quantize_and_unpack_round_trip() {
    let mut rng = Rng(11);
    for dim in [1usize, 7, 8, 9, 64, 100, 384, 1023] {
        let n = 13;
        let x = rng.floats(n * dim);
        let codes = quantize_ubinary(&x, n, dim).unwrap();
        let n_bytes = dim.div_ceil(8);
        assert_eq!(codes.len(), n * n_bytes);
        // Reference: bit j of row i is x > 0, MSB first, zero padding.
        for i in 0..n {
            for j in 0..n_bytes * 8 {
                let bit = (codes[i * n_bytes + j / 8] >> (7 - j % 8)) & 1;
                let want = j < dim && x[i * dim + j] > 0.0;
                assert_eq!(bit == 1, want);
            }
        }
        let bits = unpack(&codes, n, n_bytes, dim).unwrap();
        let want: Vec<u8> = x.iter().map(|&v| (v > 0.0) as u8).collect();
        assert_eq!(bits, want);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        assert_eq!(quantize_ubinary(&x64, n, dim).unwrap(), codes);
        let x16: Vec<F16Bits> = x
            .iter()
            .map(|&v| F16Bits(half::f16::from_f32(v).to_bits()))
            .collect();
        let want16: Vec<u8> = {
            let back: Vec<f32> = x16
                .iter()
                .map(|v| half::f16::from_bits(v.0).to_f32())
                .collect();
            quantize_ubinary(&back, n, dim).unwrap()
        };
        assert_eq!(quantize_ubinary(&x16, n, dim).unwrap(), want16);
    }
    assert!(quantize_ubinary(&[1.0f32; 6], 2, 4).is_err());
    assert!(unpack(&[0u8; 4], 2, 2, 17).is_err());
}

#[test]
fn rescoring_matches_reference() {
    let mut rng = Rng(3);
    let (n, dim, n_q) = (700, 77, 4);
    let db_f = rng.floats(n * dim);
    let db_codes = quantize_ubinary(&db_f, n, dim).unwrap();
    let n_bytes = dim.div_ceil(8);
    let q = rng.floats(n_q * dim);
    let codes = Codes::rows("db", &db_codes, n, n_bytes).unwrap();
    let db_i8: Vec<i8> = db_f.iter().map(|&v| (v * 200.0) as i8).collect();
    let db_f16: Vec<F16Bits> = db_f
        .iter()
        .map(|&v| F16Bits(half::f16::from_f32(v).to_bits()))
        .collect();
    for (k, mult) in [(1usize, 1usize), (5, 4), (10, 10), (50, 20)] {
        for target in ["bits", "f32", "f16", "i8", "bits_flipped"] {
            let mut flipped_codes = db_codes.clone();
            binary::flip_top_bits(&mut flipped_codes);
            let flipped = Codes::rows("db", &flipped_codes, n, n_bytes).unwrap();
            let (db, is_flipped, db_float) = match target {
                "bits" => (codes, false, None),
                "bits_flipped" => (flipped, true, None),
                "f32" => (codes, false, Some(DbFloat::F32(&db_f))),
                "f16" => (codes, false, Some(DbFloat::F16(&db_f16))),
                _ => (codes, false, Some(DbFloat::I8(&db_i8))),
            };
            let got = search_rescore_with(
                HammingImpl::Portable,
                &q,
                dim,
                &db,
                is_flipped,
                (k, mult),
                db_float,
            )
            .unwrap();
            // Reference: Hamming top k*mult by full sort, then f64 rescoring and a full sort.
            let q_codes = quantize_ubinary(&q, n_q, dim).unwrap();
            let (_, cand) = ref_search(&q_codes, &db_codes, n_bytes, k * mult);
            let per = (k * mult).min(n);
            for qi in 0..n_q {
                let qrow = &q[qi * dim..(qi + 1) * dim];
                let mut scored: Vec<(f32, i64)> = cand[qi * per..(qi + 1) * per]
                    .iter()
                    .map(|&c| {
                        let c_us = c as usize;
                        let s: f64 = (0..dim)
                            .map(|j| {
                                let d = match target {
                                    "bits" | "bits_flipped" => {
                                        ((db_codes[c_us * n_bytes + j / 8] >> (7 - j % 8)) & 1)
                                            as f64
                                    }
                                    "f32" => db_f[c_us * dim + j] as f64,
                                    "f16" => {
                                        half::f16::from_bits(db_f16[c_us * dim + j].0).to_f64()
                                    }
                                    _ => db_i8[c_us * dim + j] as f64,
                                };
                                qrow[j] as f64 * d
                            })
                            .sum();
                        (s as f32, c)
                    })
                    .collect();
                scored.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
                let kept = k.min(per);
                let want_idx: Vec<i64> = scored[..kept].iter().map(|p| p.1).collect();
                let want_scores: Vec<f32> = scored[..kept].iter().map(|p| p.0).collect();
                assert_eq!(
                    &got.indices[qi * kept..(qi + 1) * kept],
                    &want_idx[..],
                    "{target} k={k} m={mult}"
                );
                assert_eq!(
                    &got.scores[qi * kept..(qi + 1) * kept],
                    &want_scores[..],
                    "{target} k={k} m={mult}"
                );
            }
        }
    }
    // Out-of-range candidates are an error, never a crash.
    assert!(rescore(
        &q[..dim],
        dim,
        &[0, n as i64],
        2,
        1,
        RescoreTarget::Bits {
            codes,
            flipped: false
        }
    )
    .is_err());
    assert!(rescore(
        &q[..dim],
        dim,
        &[-1],
        1,
        1,
        RescoreTarget::Bits {
            codes,
            flipped: false
        }
    )
    .is_err());
}

#[test]
fn bad_input_is_an_error() {
    let a = [0u8; 12];
    let c3 = Codes::rows("a", &a, 4, 3).unwrap();
    let c4 = Codes::rows("b", &a, 3, 4).unwrap();
    let err = search_with(HammingImpl::Portable, &c3, &c4, 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("query_codes") && err.contains("3 bytes"),
        "{err}"
    );
    assert!(search_with(HammingImpl::Portable, &c3, &c3, 0)
        .unwrap_err()
        .to_string()
        .contains("k:"));
    assert!(Codes::rows("a", &a, 5, 3).is_err());
    assert!(Codes::rows("a", &a, 0, 0).is_err());
    assert!(Codes::interleaved("a", &[0u64; 7], 1, 8).is_err());
    assert!(hamming_with(HammingImpl::Portable, &c3, &c4).is_err());
    let docs = DocSet::fixed(&a, 1, 3, 4).unwrap();
    assert!(maxsim_scores_batch_with(HammingImpl::Portable, &[&a[..3]], &docs, None).is_err());
    assert!(maxsim_scores_batch_with(HammingImpl::Portable, &[&a[..4]], &docs, Some(33)).is_err());
    assert!(maxsim_scores_batch_with(HammingImpl::Portable, &[&a[..0]], &docs, None).is_err());
}
