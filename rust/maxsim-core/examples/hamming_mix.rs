//! The instruction bound of mixing the AVX2 nibble-table Hamming count with
//! scalar `popcnt` in one loop (issue 23's "a mix of the two"): the nibble
//! kernel keeps the vector pipes busy and leaves the integer ALUs idle, so
//! scalar `popcnt` over another query's row-major codes could add
//! throughput. This measures only the counting loop, L1-resident: 512-bit
//! codes, blocks of 2 × 16 codes in nibble planes for 4 query rows
//! (`avx2::hamming_lut`'s register block), plus 1 to 8 words per byte
//! position of a fifth query row counted with `popcnt` on the same codes'
//! rows (4 covers the block's 32 codes in its 64 positions). No heaps, no
//! widening: an upper bound on what a mixed search kernel could reach.
//! Prints the fastest pass in GB/s of compared code bytes.
//!
//! `cargo run --release -p maxsim-core --example hamming_mix [seconds]`

#[cfg(target_arch = "x86_64")]
#[allow(dead_code)]
mod common;

#[cfg(target_arch = "x86_64")]
mod mix {
    use std::arch::asm;
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::time::Instant;

    /// Codes per nibble plane.
    const CODES: usize = 16;
    /// Planes (blocks of codes) per register block.
    const J: usize = 2;
    /// Query rows counted with the nibble tables.
    const R: usize = 4;
    /// Bytes per code (512 bits).
    const BYTES: usize = 64;
    const WORDS: usize = BYTES / 8;
    /// Register blocks per pass: 8 × 2 × 16 codes × 64 bytes = a 16 KiB tile.
    const BLOCKS: usize = 8;

    struct Tile {
        /// `[block][byte][j]` planes of nibbles (random: only the rate counts).
        planes: Vec<[__m256i; J]>,
        /// `[block][code][word]` row-major codes for the `popcnt` row.
        rows: Vec<u64>,
        /// 256 lookup tables of 32 bytes (values up to 4, as the kernel's).
        tables: Vec<__m256i>,
        queries: [[u8; BYTES]; R],
        scalar_query: [u64; WORDS],
    }

    fn tile() -> Tile {
        let mut next = crate::common::random_words(0x9E37_79B9_7F4A_7C15);
        // SAFETY: `main` checked AVX2 before building the tile.
        let vector = |bytes: [u8; 32]| unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
        let planes = (0..BLOCKS * BYTES)
            .map(|_| [(); J].map(|_| vector(std::array::from_fn(|_| (next() & 15) as u8))))
            .collect();
        let rows = (0..BLOCKS * J * CODES * WORDS).map(|_| next()).collect();
        let tables = (0..256)
            .map(|_| vector(std::array::from_fn(|_| (next() % 5) as u8)))
            .collect();
        let queries = [(); R].map(|_| std::array::from_fn(|_| next() as u8));
        let scalar_query = std::array::from_fn(|_| next());
        Tile {
            planes,
            rows,
            tables,
            queries,
            scalar_query,
        }
    }

    /// Adds the Hamming distance of the 8 words at `code` and at `query`
    /// to `acc`: 4 instructions a word, in assembly so that the count stays
    /// scalar (the compiler would otherwise vectorise it with `vpshufb`).
    #[inline(always)]
    unsafe fn popcnt_code(code: *const u64, query: *const u64, acc: &mut u64) {
        asm!(
            "mov {a}, qword ptr [{c}]",
            "xor {a}, qword ptr [{q}]",
            "popcnt {a}, {a}",
            "mov {b}, qword ptr [{c} + 8]",
            "xor {b}, qword ptr [{q} + 8]",
            "popcnt {b}, {b}",
            "add {acc}, {a}",
            "add {acc}, {b}",
            "mov {a}, qword ptr [{c} + 16]",
            "xor {a}, qword ptr [{q} + 16]",
            "popcnt {a}, {a}",
            "mov {b}, qword ptr [{c} + 24]",
            "xor {b}, qword ptr [{q} + 24]",
            "popcnt {b}, {b}",
            "add {acc}, {a}",
            "add {acc}, {b}",
            "mov {a}, qword ptr [{c} + 32]",
            "xor {a}, qword ptr [{q} + 32]",
            "popcnt {a}, {a}",
            "mov {b}, qword ptr [{c} + 40]",
            "xor {b}, qword ptr [{q} + 40]",
            "popcnt {b}, {b}",
            "add {acc}, {a}",
            "add {acc}, {b}",
            "mov {a}, qword ptr [{c} + 48]",
            "xor {a}, qword ptr [{q} + 48]",
            "popcnt {a}, {a}",
            "mov {b}, qword ptr [{c} + 56]",
            "xor {b}, qword ptr [{q} + 56]",
            "popcnt {b}, {b}",
            "add {acc}, {a}",
            "add {acc}, {b}",
            c = in(reg) code,
            q = in(reg) query,
            a = out(reg) _,
            b = out(reg) _,
            acc = inout(reg) *acc,
            options(nostack, readonly),
        );
    }

    /// One pass over the tile: the nibble count of the `R` rows, and one
    /// 512-bit code counted with `popcnt` every `G` byte positions (`G` = 8
    /// is one word per position; `G` = 2 covers a block's 32 codes in its 64
    /// positions; `G` = 1 counts them for a second query row too). Returns
    /// a checksum.
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn pass<const G: usize>(t: &Tile) -> u64 {
        let mut sink = _mm256_setzero_si256();
        let mut dist = 0u64;
        for block in 0..BLOCKS {
            let mut acc = [[_mm256_setzero_si256(); J]; R];
            let rows = t.rows.as_ptr().add(block * J * CODES * WORDS);
            for group in 0..BYTES / G.max(1) {
                for i in 0..G.max(1) {
                    let b = group * G.max(1) + i;
                    let planes = t.planes.get_unchecked(block * BYTES + b);
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let table = *t.tables.get_unchecked(t.queries[r][b] as usize);
                        for (j, acc_rj) in acc_r.iter_mut().enumerate() {
                            *acc_rj =
                                _mm256_add_epi8(*acc_rj, _mm256_shuffle_epi8(table, planes[j]));
                        }
                    }
                }
                if G > 0 {
                    let code = rows.add((group % (J * CODES)) * WORDS);
                    popcnt_code(code, t.scalar_query.as_ptr(), &mut dist);
                }
            }
            for acc_r in acc {
                for v in acc_r {
                    sink = _mm256_xor_si256(sink, v);
                }
            }
        }
        let mut lanes = [0u64; 4];
        _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sink);
        lanes.iter().fold(dist, |a, &l| a ^ l)
    }

    /// Fastest pass of `pass::<G>` over `seconds`, in GB/s of compared bytes.
    fn rate<const G: usize>(t: &Tile, seconds: f64) -> f64 {
        let vector_bytes = BLOCKS * R * J * CODES * BYTES;
        let scalar_bytes = BYTES
            .checked_div(G)
            .map_or(0, |codes| BLOCKS * codes * BYTES);
        let start = Instant::now();
        let mut best = f64::INFINITY;
        while start.elapsed().as_secs_f64() < seconds {
            let t0 = Instant::now();
            // SAFETY: `main` checked AVX2 and POPCNT; `pass` reads within
            // the tile (code indices wrap within the block's rows).
            black_box(unsafe { pass::<G>(black_box(t)) });
            best = best.min(t0.elapsed().as_secs_f64());
        }
        (vector_bytes + scalar_bytes) as f64 / best / 1e9
    }

    pub fn main() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt")) {
            println!("needs AVX2 and POPCNT");
            return;
        }
        let seconds: f64 = std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        let t = tile();
        println!("| popcnt words per byte position | GB/s (fastest pass) | vs nibble only |");
        println!("|---:|---:|---:|");
        let base = rate::<0>(&t, seconds);
        println!("| 0 (nibble tables only) | {base:.1} | 1.00x |");
        for (words, r) in [
            ("1", rate::<8>(&t, seconds)),
            ("2", rate::<4>(&t, seconds)),
            ("4", rate::<2>(&t, seconds)),
            ("8", rate::<1>(&t, seconds)),
        ] {
            println!("| {words} | {r:.1} | {:.2}x |", r / base);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    mix::main();
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("x86_64 only");
}
