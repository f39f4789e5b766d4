//! The instruction bound of Harley-Seal carry-save counting for AVX2 Hamming
//! search (issue 23), against the shipped nibble-table kernel.
//!
//! Harley-Seal sums the bits of many words with carry-save adders (a CSA
//! of three words gives their bitwise sum and carry in five logic
//! operations) and counts only the carries of sixteen words. A search needs
//! one count per code, so the adders run *across byte positions* of
//! byte-transposed codes: each 32-byte vector holds byte `b` of 32 codes, is
//! XORed with a register holding query byte `b` 32 times, and sixteen such
//! vectors go through 15 CSAs into bit-sliced ones, twos, fours, eights and
//! one sixteens vector, counted per byte with two `vpshufb` lookups. About
//! 6.5 vector operations per 32 bytes compared, all plain logic, against the
//! nibble tables' 4 (two lookups, two additions).
//!
//! Measured here: the counting loop alone, L1-resident (16 KiB of codes,
//! 512-bit codes, blocks of 32 codes), for 1 and 2 query rows sharing each
//! code load; per 32-code block the bit-sliced counters are folded into
//! per-code byte counts (modulo 256: no widening, no heaps), so it is an
//! upper bound on a Harley-Seal search kernel. Beside it, the shipped AVX2
//! nibble-table kernel's full search (`binary::l1_scan`: heaps and widening
//! included, so a lower bound on its loop) over the same code length,
//! alternating. Checks the loop's counts against scalar `popcnt` first.
//!
//! `cargo run --release -p maxsim-core --example hamming_harley_seal [seconds] [rounds]`

#[cfg(target_arch = "x86_64")]
#[allow(dead_code)]
mod common;

#[cfg(target_arch = "x86_64")]
mod harley_seal {
    use crate::common::median;
    use maxsim_core::binary::{l1_scan, HammingImpl};
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::time::Instant;

    /// Bytes per code (512 bits).
    const BYTES: usize = 64;
    /// Codes per block: one byte of each per vector.
    const CODES: usize = 32;
    /// Blocks per pass: 8 × 32 codes × 64 bytes = a 16 KiB tile.
    const BLOCKS: usize = 8;

    struct Tile {
        /// `[block][byte]`: byte `byte` of the block's 32 codes.
        planes: Vec<__m256i>,
        /// `[row][byte]`: query byte `byte`, broadcast.
        queries: Vec<[__m256i; BYTES]>,
        /// The same codes row-major, `[block][code][byte]`, for the check.
        codes: Vec<u8>,
        /// The query rows' bytes, for the check.
        query_bytes: Vec<[u8; BYTES]>,
    }

    fn tile(rows: usize) -> Tile {
        let mut next = crate::common::random_words(0x9E37_79B9_7F4A_7C15);
        let codes: Vec<u8> = (0..BLOCKS * CODES * BYTES).map(|_| next() as u8).collect();
        let query_bytes: Vec<[u8; BYTES]> = (0..rows)
            .map(|_| std::array::from_fn(|_| next() as u8))
            .collect();
        // SAFETY: `main` checked AVX2 before building the tile.
        let vector = |bytes: [u8; 32]| unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
        let planes = (0..BLOCKS * BYTES)
            .map(|i| {
                let (block, byte) = (i / BYTES, i % BYTES);
                vector(std::array::from_fn(|c| {
                    codes[(block * CODES + c) * BYTES + byte]
                }))
            })
            .collect();
        let queries = query_bytes
            .iter()
            .map(|q| std::array::from_fn(|b| vector([q[b]; 32])))
            .collect();
        Tile {
            planes,
            queries,
            codes,
            query_bytes,
        }
    }

    /// Carry-save adder: `(carry, sum)` of the bitwise sum `a + b + c`.
    #[inline(always)]
    unsafe fn csa(a: __m256i, b: __m256i, c: __m256i) -> (__m256i, __m256i) {
        let u = _mm256_xor_si256(a, b);
        let carry = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
        (carry, _mm256_xor_si256(u, c))
    }

    /// Set bits per byte, with two nibble lookups.
    #[inline(always)]
    unsafe fn count_bytes(v: __m256i) -> __m256i {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low));
        let hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
        _mm256_add_epi8(lo, hi)
    }

    /// One pass over the tile for `R` query rows: per block, each row's
    /// distances to the block's 32 codes modulo 256, XORed into a checksum
    /// (or, with `out`, stored `[block][row][code]`).
    #[target_feature(enable = "avx2")]
    unsafe fn pass<const R: usize>(t: &Tile, mut out: Option<&mut Vec<u8>>) -> u64 {
        let zero = _mm256_setzero_si256();
        let mut sink = zero;
        for block in 0..BLOCKS {
            let planes = t.planes.as_ptr().add(block * BYTES);
            let mut ones = [zero; R];
            let mut twos = [zero; R];
            let mut fours = [zero; R];
            let mut eights = [zero; R];
            let mut sixteens = [zero; R];
            for group in 0..BYTES / 16 {
                let base = group * 16;
                for r in 0..R {
                    let q = t.queries.get_unchecked(r);
                    let x = |i: usize| {
                        _mm256_xor_si256(*planes.add(base + i), *q.get_unchecked(base + i))
                    };
                    let (twos_a, o) = csa(ones[r], x(0), x(1));
                    let (twos_b, o) = csa(o, x(2), x(3));
                    let (fours_a, tw) = csa(twos[r], twos_a, twos_b);
                    let (twos_a, o) = csa(o, x(4), x(5));
                    let (twos_b, o) = csa(o, x(6), x(7));
                    let (fours_b, tw) = csa(tw, twos_a, twos_b);
                    let (eights_a, fo) = csa(fours[r], fours_a, fours_b);
                    let (twos_a, o) = csa(o, x(8), x(9));
                    let (twos_b, o) = csa(o, x(10), x(11));
                    let (fours_a, tw) = csa(tw, twos_a, twos_b);
                    let (twos_a, o) = csa(o, x(12), x(13));
                    let (twos_b, o) = csa(o, x(14), x(15));
                    let (fours_b, tw) = csa(tw, twos_a, twos_b);
                    let (eights_b, fo) = csa(fo, fours_a, fours_b);
                    let (carry, ei) = csa(eights[r], eights_a, eights_b);
                    sixteens[r] = _mm256_add_epi8(sixteens[r], count_bytes(carry));
                    (ones[r], twos[r], fours[r], eights[r]) = (o, tw, fo, ei);
                }
            }
            for r in 0..R {
                // 16 s + 8 e + 4 f + 2 t + o, by doubling: ((2 s + e) ...).
                let mut total = sixteens[r];
                for level in [eights[r], fours[r], twos[r], ones[r]] {
                    total = _mm256_add_epi8(_mm256_add_epi8(total, total), count_bytes(level));
                }
                if let Some(out) = out.as_deref_mut() {
                    let mut lanes = [0u8; CODES];
                    _mm256_storeu_si256(lanes.as_mut_ptr().cast(), total);
                    out.extend_from_slice(&lanes);
                }
                sink = _mm256_xor_si256(sink, total);
            }
        }
        let mut lanes = [0u64; 4];
        _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sink);
        lanes.iter().fold(0, |a, &l| a ^ l)
    }

    /// The loop's distances against scalar counts, modulo 256.
    fn check<const R: usize>(t: &Tile) {
        let mut got = Vec::new();
        // SAFETY: `main` checked AVX2; the tile has `R` query rows.
        unsafe { pass::<R>(t, Some(&mut got)) };
        for block in 0..BLOCKS {
            for r in 0..R {
                for c in 0..CODES {
                    let code = &t.codes[(block * CODES + c) * BYTES..][..BYTES];
                    let want: u32 = code
                        .iter()
                        .zip(&t.query_bytes[r])
                        .map(|(a, b)| (a ^ b).count_ones())
                        .sum();
                    let have = got[(block * R + r) * CODES + c];
                    assert_eq!(have, want as u8, "block {block}, row {r}, code {c}");
                }
            }
        }
    }

    /// Seconds of the fastest of the passes run within `seconds`.
    fn fastest<const R: usize>(t: &Tile, seconds: f64) -> f64 {
        let start = Instant::now();
        let mut best = f64::INFINITY;
        while start.elapsed().as_secs_f64() < seconds {
            let t0 = Instant::now();
            // SAFETY: `main` checked AVX2; the tile has `R` query rows.
            black_box(unsafe { pass::<R>(black_box(t), None) });
            best = best.min(t0.elapsed().as_secs_f64());
        }
        best
    }

    pub fn main() {
        if !HammingImpl::Avx2Lut.is_supported() {
            println!("needs AVX2");
            return;
        }
        let mut args = std::env::args().skip(1);
        let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(0.5);
        let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
        let t = tile(2);
        check::<1>(&t);
        check::<2>(&t);
        let bytes = (BLOCKS * CODES * BYTES) as f64;
        let (mut one, mut two, mut nibble) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            one.push(bytes / fastest::<1>(&t, seconds) / 1e9);
            two.push(2.0 * bytes / fastest::<2>(&t, seconds) / 1e9);
            let rates = l1_scan(HammingImpl::Avx2Lut, BYTES, seconds).expect("supported");
            nibble.push(rates.best);
        }
        let nibble = median(&mut nibble);
        println!("| loop (512-bit codes, L1-resident) | GB/s, median of {rounds} rounds' fastest passes | vs nibble-table search |");
        println!("|---|---:|---:|");
        println!(
            "| nibble tables: the shipped search (`{}`) | {nibble:.1} | 1.00x |",
            HammingImpl::Avx2Lut.name()
        );
        for (name, mut rates) in [("1 query row", one), ("2 query rows", two)] {
            let r = median(&mut rates);
            println!(
                "| Harley-Seal counting loop, {name} | {r:.1} | {:.2}x |",
                r / nibble
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    harley_seal::main();
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("x86_64 only");
}
