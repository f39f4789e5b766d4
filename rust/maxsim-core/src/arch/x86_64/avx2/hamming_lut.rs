//! AVX2 Hamming kernel: per-query-byte nibble tables over byte-transposed codes.
//!
//! The `vpshufb` kernel of `binary.rs` spends eight vector operations per 32
//! bytes compared: an XOR, a shift and two ANDs to split nibbles, two lookups
//! and two additions. Here one lookup does the XOR and the count at once:
//!
//! * codes are transposed, per block of [`CODES`] = 16 codes, into *nibble
//!   planes*: for byte position `b`, one 32-byte vector whose low half holds
//!   the low nibbles of byte `b` of the 16 codes and whose high half their
//!   high nibbles. This is done once per block and shared by every query of
//!   the block of queries that passes over it;
//! * for a query byte `v`, the table `TABLES[v]` holds `popcount(x ^ (v & 15))`
//!   for `x < 16` in its low half and `popcount(x ^ (v >> 4))` in its high half
//!   (`vpshufb` looks up each 128-bit half in its own table), so one `vpshufb`
//!   of a plane gives, per code, the differing bits of both nibbles of byte `b`;
//! * byte counters add up to [`CHUNK`] positions (at most 4 per position and
//!   half), then widen into exact 16-bit distances. A search lets them run
//!   64 positions (a 512-bit code in one pass): a count of 256 then wraps to
//!   0, which can only make a distance look smaller, so every code that passes
//!   a heap's threshold has its distance recomputed exactly before it is
//!   kept.
//!
//! Two vector operations per 16 bytes compared (a lookup and an addition)
//! instead of four. Lookups issue two per cycle on Zen 3 and on Intel P-cores,
//! additions up to four (Zen 3), so the bound is 32 bytes compared per cycle,
//! twice the old kernel's 16; the whole query side is a static 8 KiB of
//! tables, read by index, so nothing is prepared per query.
//!
//! The transposition costs about as much as a few queries' pass over a block,
//! so the paths for one to three queries (row-major rows, streamed tiles) keep
//! the `vpshufb` kernel; so do codes longer than [`MAX_WORDS`] words, whose
//! distances would not fit the signed 16-bit lanes compared to thresholds.

use super::binary::KERNELS as PSHUFB;
use crate::binary::blocked::{Tile, TileKernels};
use crate::binary::heap::Heap;
use crate::binary::layout::GROUP;
use crate::vector::prefetch_lines;
use std::arch::x86_64::*;

/// Codes per block: one 128-bit half of a plane holds one nibble of each.
const CODES: usize = 16;
/// Query rows per register block.
const R: usize = 4;
/// Code blocks per register block: `R × J` accumulators, `J` planes and a
/// table fit the 16 YMM registers; each table load serves `J` lookups and
/// each plane load `R`.
const J: usize = 2;
/// Byte positions summed in 8-bit counters before widening: each adds at most 4.
const CHUNK: usize = 63;
/// As [`CHUNK`] for a search, whose candidates are recomputed exactly: one
/// more position, which may wrap a count of 256 to 0.
const SEARCH_CHUNK: usize = 64;
/// Longest code, in words, this kernel scores: distances stay below 2^15.
pub(crate) const MAX_WORDS: usize = 511;

/// 32-byte aligned, so no table straddles two cache lines.
#[repr(C, align(32))]
struct Tables([[u8; 32]; 256]);

/// `TABLES[v]`: differing bits of `x` against `v`'s low nibble (bytes 0..16)
/// and against its high nibble (bytes 16..32), for every nibble `x`.
static TABLES: Tables = Tables(nibble_tables());

const fn nibble_tables() -> [[u8; 32]; 256] {
    let mut tables = [[0u8; 32]; 256];
    let mut v = 0;
    while v < 256 {
        let mut x = 0;
        while x < 16 {
            tables[v][x] = ((x ^ (v & 15)) as u32).count_ones() as u8;
            tables[v][16 + x] = ((x ^ (v >> 4)) as u32).count_ones() as u8;
            x += 1;
        }
        v += 1;
    }
    tables
}

/// Writes the `8w` nibble planes of codes `16 blk .. 16 blk + 16` of an
/// interleaved tile of `n_groups` groups to `out`; codes past the tile read
/// as zero.
///
/// Word `k` of the 16 codes (two groups) is transposed to bytes `8k..8k+8`:
/// bytes of code pairs interleaved, then 16-, 32- and 64-bit unpacks, the
/// codes of the second group riding in the upper 128-bit half throughout.
#[inline(always)]
unsafe fn transpose_block(
    words: *const u64,
    n_groups: usize,
    w: usize,
    blk: usize,
    out: *mut __m256i,
) {
    let pairs = _mm256_broadcastsi128_si256(_mm_setr_epi8(
        0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15,
    ));
    let low_nibbles = _mm256_set1_epi8(0x0f);
    let first = words.add(2 * blk * w * GROUP);
    let second = (2 * blk + 1 < n_groups).then(|| words.add((2 * blk + 1) * w * GROUP));
    for k in 0..w {
        // Codes 2i, 2i + 1 of the first group below codes 8 + 2i, 9 + 2i.
        let mut x = [_mm256_setzero_si256(); 4];
        for (i, slot) in x.iter_mut().enumerate() {
            let low = _mm_loadu_si128(first.add(k * GROUP + 2 * i) as *const __m128i);
            let high = match second {
                Some(s) => _mm_loadu_si128(s.add(k * GROUP + 2 * i) as *const __m128i),
                None => _mm_setzero_si128(),
            };
            *slot = _mm256_shuffle_epi8(_mm256_set_m128i(high, low), pairs);
        }
        // 16-bit pairs (byte m of two codes): bytes 0..4 and 4..8 of four codes.
        let (ab_lo, ab_hi) = (
            _mm256_unpacklo_epi16(x[0], x[1]),
            _mm256_unpackhi_epi16(x[0], x[1]),
        );
        let (cd_lo, cd_hi) = (
            _mm256_unpacklo_epi16(x[2], x[3]),
            _mm256_unpackhi_epi16(x[2], x[3]),
        );
        // Each: [byte 2p of codes 0..8 | byte 2p + 1 of codes 0..8] per half.
        let bytes = [
            _mm256_unpacklo_epi32(ab_lo, cd_lo),
            _mm256_unpackhi_epi32(ab_lo, cd_lo),
            _mm256_unpacklo_epi32(ab_hi, cd_hi),
            _mm256_unpackhi_epi32(ab_hi, cd_hi),
        ];
        for (p, v) in bytes.into_iter().enumerate() {
            // [byte 2p of codes 0..16 | byte 2p + 1 of codes 0..16]
            let e = _mm256_permute4x64_epi64::<0b11_01_10_00>(v);
            let lo = _mm256_and_si256(e, low_nibbles);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(e), low_nibbles);
            let at = out.add(8 * k + 2 * p);
            at.write(_mm256_permute2x128_si256::<0x20>(lo, hi));
            at.add(1).write(_mm256_permute2x128_si256::<0x31>(lo, hi));
        }
    }
}

/// Where each query byte's table is: `32 × byte`, per row of `n_pos` bytes.
/// The lookup loop then spends one load on the offset and one on the table
/// (its limit is the six instructions a Zen 3 core dispatches per cycle, and
/// a byte load plus a shift would be three).
///
/// # Safety
/// The CPU must support AVX2; `q` holds `n_rows` rows of `n_pos / 8` words.
#[inline(always)]
unsafe fn table_offsets(q: &[u64], n_rows: usize, n_pos: usize) -> Vec<u16> {
    let n = n_rows * n_pos;
    debug_assert!(q.len() * 8 >= n);
    let mut out = vec![0u16; n];
    let (src, dst) = (q.as_ptr() as *const u8, out.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        let bytes = _mm_loadu_si128(src.add(i) as *const __m128i);
        let offsets = _mm256_slli_epi16::<5>(_mm256_cvtepu8_epi16(bytes));
        _mm256_storeu_si256(dst.add(i) as *mut __m256i, offsets);
        i += 16;
    }
    while i < n {
        *dst.add(i) = 32 * *src.add(i) as u16;
        i += 1;
    }
    out
}

/// 16 distances (unsigned 16-bit lanes, code order) of `RR` query rows
/// (table offsets `n_pos` apart from `q`) against each of the `J` blocks of
/// planes at `planes` (`n_pos` planes per block), widened every `chunk`
/// positions: exact for `chunk <= CHUNK`, else possibly 256 or 512 too small.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn distances<const RR: usize>(
    q: *const u16,
    planes: *const __m256i,
    n_pos: usize,
    chunk: usize,
) -> [[__m256i; J]; RR] {
    let tables = TABLES.0.as_ptr() as *const u8;
    let mut total = [[_mm256_setzero_si256(); J]; RR];
    let mut b0 = 0;
    while b0 < n_pos {
        let b1 = n_pos.min(b0 + chunk);
        let mut counts = [[_mm256_setzero_si256(); J]; RR];
        for b in b0..b1 {
            let mut plane = [_mm256_setzero_si256(); J];
            for j in 0..J {
                plane[j] = planes.add(j * n_pos + b).read();
            }
            for r in 0..RR {
                let at = tables.add(*q.add(r * n_pos + b) as usize);
                let table = (at as *const __m256i).read();
                for j in 0..J {
                    counts[r][j] =
                        _mm256_add_epi8(counts[r][j], _mm256_shuffle_epi8(table, plane[j]));
                }
            }
        }
        for r in 0..RR {
            for j in 0..J {
                let c = counts[r][j];
                let low = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(c));
                let high = _mm256_cvtepu8_epi16(_mm256_extracti128_si256::<1>(c));
                total[r][j] = _mm256_add_epi16(total[r][j], _mm256_add_epi16(low, high));
            }
        }
        b0 = b1;
    }
    total
}

/// Nibble planes of `J` consecutive blocks of a tile, in a scratch buffer:
/// block `j`'s plane `b` is vector `j * n_pos + b`.
struct Planes {
    data: Vec<__m256i>,
    n_pos: usize,
}

impl Planes {
    #[inline(always)]
    unsafe fn new(w: usize) -> Self {
        Planes {
            data: vec![_mm256_setzero_si256(); J * 8 * w],
            n_pos: 8 * w,
        }
    }

    /// Transposes blocks `blk..blk + J` of `tile` (those it has; the others
    /// keep stale planes, whose lanes callers mask as invalid), and
    /// prefetches the next `J` blocks' codes, past the tile's end too: a
    /// `BinaryIndex`'s next tile follows in memory, and its codes would
    /// otherwise arrive as demand misses at the first transposition.
    #[inline(always)]
    unsafe fn fill(&mut self, tile: &Tile<'_>, blk: usize) {
        let n_blocks = tile.n_codes.div_ceil(CODES);
        let (w, n_groups) = (self.n_pos / 8, tile.n_codes.div_ceil(GROUP));
        let pair_bytes = J * CODES * w * 8;
        // A prefetch never faults; the address is formed with wrapping arithmetic.
        let next = (tile.words.as_ptr() as *const u8).wrapping_add((blk / J + 1) * pair_bytes);
        prefetch_lines(next, pair_bytes);
        for j in 0..J.min(n_blocks - blk) {
            let out = self.data.as_mut_ptr().add(j * self.n_pos);
            transpose_block(tile.words.as_ptr(), n_groups, w, blk + j, out);
        }
    }
}

/// Lanes of the block whose first code is `first` that hold one of the
/// tile's `n_codes` codes.
#[inline(always)]
fn valid_count(n_codes: usize, first: usize) -> usize {
    n_codes.saturating_sub(first).min(CODES)
}

/// The byte mask (two bits per 16-bit lane) of the first `count` lanes.
#[inline(always)]
fn byte_mask(count: usize) -> u32 {
    ((1u64 << (2 * count)) - 1) as u32
}

/// Offers every code of `tile` to each query's heap, as
/// [`crate::binary::blocked::search_tile`] does.
///
/// # Safety
/// The CPU must support AVX2; `q.len() >= heaps.len() * w`; `tile.words`
/// holds `ceil(tile.n_codes / GROUP) * w * GROUP` words.
#[target_feature(enable = "avx2")]
unsafe fn search_tile(q: &[u64], w: usize, tile: Tile<'_>, heaps: &mut [Heap]) {
    if w > MAX_WORDS {
        return (PSHUFB.search)(q, w, tile, heaps);
    }
    debug_assert!(q.len() >= heaps.len() * w);
    let n_rows = heaps.len();
    let offsets = table_offsets(q, n_rows, 8 * w);
    let q_offsets = offsets.as_ptr();
    {
        let mut planes = Planes::new(w);
        let n_pos = 8 * w;
        let mut blk = 0;
        while blk < tile.n_codes.div_ceil(CODES) {
            planes.fill(&tile, blk);
            let first = blk * CODES;
            let mut r0 = 0;
            while r0 + R <= n_rows {
                let (q_rows, p) = (q_offsets.add(r0 * n_pos), planes.data.as_ptr());
                let d = distances::<R>(q_rows, p, n_pos, SEARCH_CHUNK);
                let rows = Rows {
                    q: &q[r0 * w..],
                    w,
                    first,
                };
                search_block(&d, &rows, &tile, &mut heaps[r0..r0 + R]);
                r0 += R;
            }
            while r0 < n_rows {
                let (q_rows, p) = (q_offsets.add(r0 * n_pos), planes.data.as_ptr());
                let d = distances::<1>(q_rows, p, n_pos, SEARCH_CHUNK);
                let rows = Rows {
                    q: &q[r0 * w..],
                    w,
                    first,
                };
                search_block(&d, &rows, &tile, &mut heaps[r0..r0 + 1]);
                r0 += 1;
            }
            blk += J;
        }
    }
}

/// The query rows of a register block and the tile position of its codes,
/// for recomputing candidates' distances exactly.
struct Rows<'a> {
    /// The block's rows, `w` words each, from its first.
    q: &'a [u64],
    w: usize,
    /// The tile index of the block's first code.
    first: usize,
}

impl Rows<'_> {
    /// The distance of row `r` to code `first + c` of `tile`, word by word.
    fn exact(&self, r: usize, c: usize, tile: &Tile<'_>) -> u32 {
        let (w, code) = (self.w, self.first + c);
        let group = &tile.words[code / GROUP * w * GROUP..];
        let row = &self.q[r * w..(r + 1) * w];
        row.iter()
            .enumerate()
            .map(|(k, &word)| (word ^ group[k * GROUP + code % GROUP]).count_ones())
            .sum()
    }
}

/// Tests the distances `d` (from [`distances`] with [`SEARCH_CHUNK`]) of the
/// `RR` rows of `rows` to its `J` blocks against each row's heap threshold,
/// and offers those below it.
#[inline(always)]
unsafe fn search_block<const RR: usize>(
    d: &[[__m256i; J]; RR],
    rows: &Rows<'_>,
    tile: &Tile<'_>,
    heaps: &mut [Heap],
) {
    let first = rows.first;
    let mut masks = [[0u32; J]; RR];
    let mut any = 0;
    for r in 0..RR {
        // Distances are below 2^15 (`MAX_WORDS`): signed compares are exact.
        let threshold = _mm256_set1_epi16(heaps[r].threshold().min(i16::MAX as u32) as i16);
        for j in 0..J {
            let below = _mm256_cmpgt_epi16(threshold, d[r][j]);
            let valid = byte_mask(valid_count(tile.n_codes, first + j * CODES));
            masks[r][j] = _mm256_movemask_epi8(below) as u32 & valid;
            any |= masks[r][j];
        }
    }
    if any != 0 {
        let mut lanes = [[[0u16; CODES]; J]; RR];
        for r in 0..RR {
            for j in 0..J {
                _mm256_storeu_si256(lanes[r][j].as_mut_ptr() as *mut __m256i, d[r][j]);
            }
        }
        // Counts wrap only in 64-position chunks.
        let recompute = 8 * rows.w >= SEARCH_CHUNK;
        offer(&lanes, &masks, rows, recompute, tile, heaps);
    }
}

/// Offers the lanes of `masks[r]` (distances `lanes[r]` to the codes of the
/// block of `rows`) to `heaps[r]` in code order, re-testing each against the
/// heap's current threshold; with `recompute`, each distance is first
/// recomputed word by word (the lanes may have wrapped).
#[cold]
#[inline(never)]
fn offer<const RR: usize>(
    lanes: &[[[u16; CODES]; J]; RR],
    masks: &[[u32; J]; RR],
    rows: &Rows<'_>,
    recompute: bool,
    tile: &Tile<'_>,
    heaps: &mut [Heap],
) {
    for (r, heap) in heaps.iter_mut().enumerate().take(RR) {
        let mut threshold = heap.threshold();
        for j in 0..J {
            let mut mask = masks[r][j];
            while mask != 0 {
                let lane = mask.trailing_zeros() as usize / 2;
                mask &= !(3 << (2 * lane));
                let c = j * CODES + lane;
                let distance = if recompute {
                    rows.exact(r, c, tile)
                } else {
                    lanes[r][j][lane] as u32
                };
                if distance < threshold {
                    heap.push(distance, (tile.base + rows.first + c) as u64);
                    threshold = heap.threshold();
                }
            }
        }
    }
}

/// Writes the distance of every query row of `q` to every code of `tile`, as
/// [`crate::binary::blocked::matrix_tile`] does.
///
/// # Safety
/// As [`search_tile`] for `q`, `w` and `tile`; `out` valid for writes at
/// `r * stride + j` for every row `r` and `j < tile.n_codes`.
#[target_feature(enable = "avx2")]
unsafe fn matrix_tile(q: &[u64], w: usize, tile: Tile<'_>, out: *mut u32, stride: usize) {
    if w > MAX_WORDS {
        return (PSHUFB.matrix)(q, w, tile, out, stride);
    }
    let n_rows = q.len() / w;
    let offsets = table_offsets(q, n_rows, 8 * w);
    let q_offsets = offsets.as_ptr();
    {
        let mut planes = Planes::new(w);
        let n_pos = 8 * w;
        let mut blk = 0;
        while blk < tile.n_codes.div_ceil(CODES) {
            planes.fill(&tile, blk);
            let first = blk * CODES;
            let p = planes.data.as_ptr();
            let mut r0 = 0;
            while r0 + R <= n_rows {
                let d = distances::<R>(q_offsets.add(r0 * n_pos), p, n_pos, CHUNK);
                store_rows(
                    &d,
                    tile.n_codes - first,
                    out.add(r0 * stride + first),
                    stride,
                );
                r0 += R;
            }
            while r0 < n_rows {
                let d = distances::<1>(q_offsets.add(r0 * n_pos), p, n_pos, CHUNK);
                store_rows(
                    &d,
                    tile.n_codes - first,
                    out.add(r0 * stride + first),
                    stride,
                );
                r0 += 1;
            }
            blk += J;
        }
    }
}

/// Stores the first `n_codes` (at most `J × 16`) distances of each row of `d`,
/// widened to `u32`, row `r` at `out + r * stride`.
#[inline(always)]
unsafe fn store_rows<const RR: usize>(
    d: &[[__m256i; J]; RR],
    n_codes: usize,
    out: *mut u32,
    stride: usize,
) {
    for (r, row) in d.iter().enumerate() {
        let mut wide = [0u32; J * CODES];
        for (j, &v) in row.iter().enumerate() {
            let at = wide.as_mut_ptr().add(j * CODES) as *mut __m256i;
            at.write_unaligned(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)));
            at.add(1)
                .write_unaligned(_mm256_cvtepu16_epi32(_mm256_extracti128_si256::<1>(v)));
        }
        let n = n_codes.min(J * CODES);
        std::ptr::copy_nonoverlapping(wide.as_ptr(), out.add(r * stride), n);
    }
}

/// `mins[r] = min(mins[r], min_j distance(q_r, code_j))` over the codes of
/// `tile`, as [`crate::binary::blocked::min_tile`] does.
///
/// # Safety
/// As [`search_tile`], with `q.len() >= mins.len() * w`.
#[target_feature(enable = "avx2")]
unsafe fn min_tile(q: &[u64], w: usize, tile: Tile<'_>, mins: &mut [u32]) {
    if w > MAX_WORDS {
        return (PSHUFB.min)(q, w, tile, mins);
    }
    let n_rows = mins.len();
    let offsets = table_offsets(q, n_rows, 8 * w);
    let q_offsets = offsets.as_ptr();
    {
        let mut planes = Planes::new(w);
        let n_pos = 8 * w;
        let mut blk = 0;
        while blk < tile.n_codes.div_ceil(CODES) {
            planes.fill(&tile, blk);
            let first = blk * CODES;
            let p = planes.data.as_ptr();
            let mut r0 = 0;
            while r0 + R <= n_rows {
                let d = distances::<R>(q_offsets.add(r0 * n_pos), p, n_pos, CHUNK);
                fold_min(&d, tile.n_codes, first, &mut mins[r0..r0 + R]);
                r0 += R;
            }
            while r0 < n_rows {
                let d = distances::<1>(q_offsets.add(r0 * n_pos), p, n_pos, CHUNK);
                fold_min(&d, tile.n_codes, first, &mut mins[r0..r0 + 1]);
                r0 += 1;
            }
            blk += J;
        }
    }
}

/// Folds the smallest valid distance of each row of `d` into `mins`.
#[inline(always)]
unsafe fn fold_min<const RR: usize>(
    d: &[[__m256i; J]; RR],
    n_codes: usize,
    first: usize,
    mins: &mut [u32],
) {
    let lane_index = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (r, row) in d.iter().enumerate() {
        let mut least = _mm256_set1_epi16(-1);
        for (j, &v) in row.iter().enumerate() {
            // Lanes past the tile's codes become 0xFFFF, above every distance.
            let count = valid_count(n_codes, first + j * CODES) as i16;
            let valid = _mm256_cmpgt_epi16(_mm256_set1_epi16(count), lane_index);
            let masked = _mm256_or_si256(v, _mm256_andnot_si256(valid, _mm256_set1_epi16(-1)));
            least = _mm256_min_epu16(least, masked);
        }
        let halves = _mm_min_epu16(
            _mm256_castsi256_si128(least),
            _mm256_extracti128_si256::<1>(least),
        );
        let best = _mm_extract_epi16::<0>(_mm_minpos_epu16(halves)) as u32;
        mins[r] = mins[r].min(best);
    }
}

/// The nibble-table kernels; the few-query paths are the `vpshufb` kernel's.
pub(crate) const KERNELS: TileKernels = TileKernels {
    search: search_tile,
    search_streaming: PSHUFB.search_streaming,
    matrix: matrix_tile,
    min: min_tile,
    search_rows: PSHUFB.search_rows,
    block_rows: R,
    // Each tile is transposed once per block of queries: a block of 128
    // amortises it twice as well as 64, and the queries' table offsets
    // (2 bytes per query byte) still leave the tables and planes room in L1.
    query_block: 128,
};
