//! The blocked Hamming algorithms, written once over [`Popcount8`].
//!
//! Every algorithm walks an interleaved tile (a few KiB of codes, held in L1)
//! with `R` query rows at a time: each group word is loaded once and XORed
//! with the broadcast word of each of the `R` queries, so `R × 8` distances
//! build up in registers with no horizontal sum. The caller passes a tile
//! through all of its queries before moving on, so a database tile is read
//! from memory once per query block, not once per query.
//!
//! What happens to each block of `R × 8` distances differs:
//! - [`search_tile`]: a vector threshold test against each query's bounded
//!   heap; only lanes below the threshold reach the (rare) scalar insert;
//! - [`matrix_tile`]: the distances are stored;
//! - [`min_tile`]: a running minimum per query row (binary MaxSim).

use super::heap::Heap;
use super::layout::GROUP;
use super::popcount::Popcount8;
use crate::vector::{opaque_ptr, prefetch_lines};

/// An interleaved tile: `ceil(n_codes / GROUP)` groups of `w × GROUP` words.
/// Its first code has global index `base`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile<'a> {
    pub words: &'a [u64],
    pub n_codes: usize,
    pub base: usize,
}

/// The tile algorithms of one kernel, as function pointers.
#[derive(Clone, Copy)]
pub(crate) struct TileKernels {
    /// See [`search_tile`].
    pub search: unsafe fn(&[u64], usize, Tile<'_>, &mut [Heap]),
    /// [`search_tile`] prefetching about a tile ahead, for a few queries
    /// that stream the database once.
    pub search_streaming: unsafe fn(&[u64], usize, Tile<'_>, &mut [Heap]),
    /// See [`matrix_tile`].
    pub matrix: unsafe fn(&[u64], usize, Tile<'_>, *mut u32, usize),
    /// See [`min_tile`].
    pub min: unsafe fn(&[u64], usize, Tile<'_>, &mut [u32]),
    /// See [`search_rows`].
    pub search_rows: unsafe fn(&[u64], usize, &[u8], usize, &mut [Heap]),
    /// Queries per register block (`R`): `search` is fastest on whole blocks.
    pub block_rows: usize,
    /// Queries that share each database tile in the drivers: enough to
    /// amortise whatever a kernel does once per tile, few enough that their
    /// words and heaps stay in L1 beside it.
    pub query_block: usize,
}

/// Distances of `R` query rows (`w` words each, at `q`) to the eight codes of `group`.
#[inline(always)]
unsafe fn group_distances<V: Popcount8, const R: usize>(
    q: *const u64,
    w: usize,
    group: *const u64,
) -> [V; R] {
    // Up to 16 broadcast query words stay in registers across the group
    // loop; more are broadcast from L1 per group instead of spilled and
    // reloaded (see `opaque_ptr`). `R` and usually `w` are constants here.
    let q = if R * w > 16 { opaque_ptr(q) } else { q };
    let mut total = [V::zero(); R];
    let mut k0 = 0;
    while k0 < w {
        let k1 = w.min(k0.saturating_add(V::PARTIAL_WORDS));
        let mut part = [V::partial_zero(); R];
        for k in k0..k1 {
            let g = V::load_group(group.add(k * GROUP));
            for (r, p) in part.iter_mut().enumerate() {
                *p = V::accumulate(*p, *q.add(r * w + k), g);
            }
        }
        for r in 0..R {
            total[r] = total[r].add_partial(part[r]);
        }
        k0 = k1;
    }
    total
}

/// Runs `$body` with `$w` bound to a literal for the common code lengths
/// (128 to 1024 bits), so the word loops are fully unrolled there, and to
/// the run-time value otherwise.
macro_rules! with_const_words {
    ($w:ident, $body:expr) => {
        match $w {
            2 => {
                let $w = 2usize;
                $body
            }
            4 => {
                let $w = 4usize;
                $body
            }
            6 => {
                let $w = 6usize;
                $body
            }
            8 => {
                let $w = 8usize;
                $body
            }
            16 => {
                let $w = 16usize;
                $body
            }
            _ => $body,
        }
    };
}

/// Lanes of group `g` that hold codes of a tile of `n_codes`.
#[inline(always)]
fn valid_lanes(n_codes: usize, g: usize) -> usize {
    (n_codes - g * GROUP).min(GROUP)
}

/// Offers every code of `tile` to each query's heap. `q` holds
/// `heaps.len()` query rows of `w` words.
///
/// # Safety
/// `V`'s instructions must be available; `q.len() >= heaps.len() * w` and
/// `tile.words` holds `ceil(tile.n_codes / GROUP) * w * GROUP` words.
#[inline(always)]
pub(crate) unsafe fn search_tile<V: Popcount8, const R: usize, const PREFETCH: bool>(
    q: &[u64],
    w: usize,
    tile: Tile<'_>,
    heaps: &mut [Heap],
) {
    debug_assert!(q.len() >= heaps.len() * w);
    debug_assert!(tile.words.len() >= tile.n_codes.div_ceil(GROUP) * w * GROUP);
    let n = heaps.len();
    with_const_words!(w, {
        let mut r0 = 0;
        while r0 + R <= n {
            let (q_rows, block) = (q.as_ptr().add(r0 * w), &mut heaps[r0..r0 + R]);
            search_block::<V, R, PREFETCH>(q_rows, w, tile, block);
            r0 += R;
        }
        while r0 < n {
            let (q_rows, block) = (q.as_ptr().add(r0 * w), &mut heaps[r0..r0 + 1]);
            search_block::<V, 1, PREFETCH>(q_rows, w, tile, block);
            r0 += 1;
        }
    })
}

/// Database bytes ahead of the group being searched that a streaming search
/// (`PREFETCH`) prefetches: about one tile, so the next tile arrives while
/// this one is searched.
const PREFETCH_BYTES: usize = 16 * 1024;

#[inline(always)]
unsafe fn search_block<V: Popcount8, const R: usize, const PREFETCH: bool>(
    q: *const u64,
    w: usize,
    tile: Tile<'_>,
    heaps: &mut [Heap],
) {
    let mut threshold = [0u32; R];
    for (t, h) in threshold.iter_mut().zip(heaps.iter()) {
        *t = h.threshold();
    }
    let n_groups = tile.n_codes.div_ceil(GROUP);
    let words = tile.words.as_ptr();
    for g in 0..n_groups {
        if PREFETCH {
            // Past the tile's end too: tiles of interleaved codes are
            // consecutive. A prefetch never faults, and the address is
            // formed with wrapping arithmetic.
            let ahead =
                (words.wrapping_add(g * w * GROUP) as *const u8).wrapping_add(PREFETCH_BYTES);
            prefetch_lines(ahead, w * GROUP * 8);
        }
        let d = group_distances::<V, R>(q, w, words.add(g * w * GROUP));
        let valid = (1u32 << valid_lanes(tile.n_codes, g)) - 1;
        // All R tests first, one branch for the group: the insert path is
        // cold (about k·ln(n/k) inserts per query in a scan of n codes), and
        // keeping it out of line keeps the distances in registers instead of
        // spilled around a possible heap call.
        let mut masks = [0u32; R];
        let mut any = 0u32;
        for r in 0..R {
            masks[r] = d[r].lt_mask(threshold[r]) & valid;
            any |= masks[r];
        }
        if any != 0 {
            let mut lanes = [[0u32; GROUP]; R];
            for r in 0..R {
                d[r].store(lanes[r].as_mut_ptr());
            }
            offer_group(&lanes, &masks, tile.base + g * GROUP, heaps, &mut threshold);
        }
    }
}

/// Offers the lanes of `masks[r]` (distances `lanes[r]`, code indices
/// `base + lane`) to `heaps[r]`, in lane order, and refreshes `threshold`.
#[cold]
#[inline(never)]
fn offer_group<const R: usize>(
    lanes: &[[u32; GROUP]; R],
    masks: &[u32; R],
    base: usize,
    heaps: &mut [Heap],
    threshold: &mut [u32; R],
) {
    for r in 0..R {
        let mut mask = masks[r];
        while mask != 0 {
            let lane = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if lanes[r][lane] < threshold[r] {
                heaps[r].push(lanes[r][lane], (base + lane) as u64);
                threshold[r] = heaps[r].threshold();
            }
        }
    }
}

/// Offers row-major codes to each query's heap without interleaving them:
/// `rows` holds whole codes of `w` words (`8w` bytes, so `n_bytes % 8 == 0`),
/// the first with global index `base`; eight at a time through
/// [`Popcount8::rows8`]. For one or two queries this beats interleaving a tile
/// that would be used only once or twice.
///
/// # Safety
/// `V`'s instructions must be available; `w <= ROWS_MAX_WORDS`;
/// `q.len() >= heaps.len() * w`; `rows.len()` is a multiple of `8w`.
#[inline(always)]
pub(crate) unsafe fn search_rows<V: Popcount8>(
    q: &[u64],
    w: usize,
    rows: &[u8],
    base: usize,
    heaps: &mut [Heap],
) {
    let stride = w * 8;
    debug_assert!(w <= super::popcount::ROWS_MAX_WORDS && rows.len().is_multiple_of(stride));
    debug_assert!(q.len() >= heaps.len() * w);
    let n_codes = rows.len() / stride;
    let full = n_codes / GROUP;
    for (r, heap) in heaps.iter_mut().enumerate() {
        let q_row = q.as_ptr().add(r * w);
        let mut threshold = heap.threshold();
        with_const_words!(w, {
            for g in 0..full {
                let group = rows.as_ptr().wrapping_add(g * GROUP * stride);
                // The rows are read once per query, as one stream: prefetch
                // it (wrapping address, past the end too: a prefetch never
                // faults).
                prefetch_lines(group.wrapping_add(PREFETCH_BYTES), GROUP * stride);
                let d = V::rows8(q_row, w, group, stride);
                let mut mask = d.lt_mask(threshold);
                if mask != 0 {
                    let mut lanes = [0u32; GROUP];
                    d.store(lanes.as_mut_ptr());
                    while mask != 0 {
                        let lane = mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        if lanes[lane] < threshold {
                            heap.push(lanes[lane], (base + g * GROUP + lane) as u64);
                            threshold = heap.threshold();
                        }
                    }
                }
            }
        });
        for c in full * GROUP..n_codes {
            let row = &rows[c * stride..(c + 1) * stride];
            let dist: u32 = row
                .chunks_exact(8)
                .enumerate()
                .map(|(k, b)| {
                    (*q_row.add(k) ^ u64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .count_ones()
                })
                .sum();
            if dist < threshold {
                heap.push(dist, (base + c) as u64);
                threshold = heap.threshold();
            }
        }
    }
}

/// Writes the distance of every query row of `q` (`n_rows = q.len() / w`)
/// to every code of `tile`: row `r`, code `j` goes to `out[r * stride + j]`.
///
/// # Safety
/// `V`'s instructions must be available; `tile` as in [`search_tile`];
/// `out` valid for writes at `r * stride + j` for every row and `j < tile.n_codes`.
#[inline(always)]
pub(crate) unsafe fn matrix_tile<V: Popcount8, const R: usize>(
    q: &[u64],
    w: usize,
    tile: Tile<'_>,
    out: *mut u32,
    stride: usize,
) {
    let n = q.len() / w;
    with_const_words!(w, {
        let mut r0 = 0;
        while r0 + R <= n {
            matrix_block::<V, R>(
                q.as_ptr().add(r0 * w),
                w,
                tile,
                out.add(r0 * stride),
                stride,
            );
            r0 += R;
        }
        while r0 < n {
            matrix_block::<V, 1>(
                q.as_ptr().add(r0 * w),
                w,
                tile,
                out.add(r0 * stride),
                stride,
            );
            r0 += 1;
        }
    })
}

#[inline(always)]
unsafe fn matrix_block<V: Popcount8, const R: usize>(
    q: *const u64,
    w: usize,
    tile: Tile<'_>,
    out: *mut u32,
    stride: usize,
) {
    let n_groups = tile.n_codes.div_ceil(GROUP);
    let words = tile.words.as_ptr();
    for g in 0..n_groups {
        let d = group_distances::<V, R>(q, w, words.add(g * w * GROUP));
        let lanes = valid_lanes(tile.n_codes, g);
        for (r, dist) in d.iter().enumerate() {
            let dst = out.add(r * stride + g * GROUP);
            if lanes == GROUP {
                dist.store(dst);
            } else {
                let mut tmp = [0u32; GROUP];
                dist.store(tmp.as_mut_ptr());
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, lanes);
            }
        }
    }
}

/// `mins[r] = min(mins[r], min_j distance(q_r, code_j))` over the codes of `tile`,
/// for every query row of `q` (`mins.len()` rows).
///
/// # Safety
/// `V`'s instructions must be available; `q.len() >= mins.len() * w`; `tile` as in [`search_tile`].
#[inline(always)]
pub(crate) unsafe fn min_tile<V: Popcount8, const R: usize>(
    q: &[u64],
    w: usize,
    tile: Tile<'_>,
    mins: &mut [u32],
) {
    debug_assert!(q.len() >= mins.len() * w);
    let n = mins.len();
    with_const_words!(w, {
        let mut r0 = 0;
        while r0 + R <= n {
            min_block::<V, R>(q.as_ptr().add(r0 * w), w, tile, &mut mins[r0..r0 + R]);
            r0 += R;
        }
        while r0 < n {
            min_block::<V, 1>(q.as_ptr().add(r0 * w), w, tile, &mut mins[r0..r0 + 1]);
            r0 += 1;
        }
    })
}

#[inline(always)]
unsafe fn min_block<V: Popcount8, const R: usize>(
    q: *const u64,
    w: usize,
    tile: Tile<'_>,
    mins: &mut [u32],
) {
    let full_groups = tile.n_codes / GROUP;
    let words = tile.words.as_ptr();
    let mut running = [V::splat(u32::MAX); R];
    for g in 0..full_groups {
        let d = group_distances::<V, R>(q, w, words.add(g * w * GROUP));
        for r in 0..R {
            running[r] = running[r].min(d[r]);
        }
    }
    let tail = tile.n_codes - full_groups * GROUP;
    let mut tail_lanes = [[u32::MAX; GROUP]; R];
    if tail > 0 {
        let d = group_distances::<V, R>(q, w, words.add(full_groups * w * GROUP));
        for r in 0..R {
            d[r].store(tail_lanes[r].as_mut_ptr());
            tail_lanes[r][tail..].fill(u32::MAX);
        }
    }
    for r in 0..R {
        let mut lanes = [0u32; GROUP];
        running[r].store(lanes.as_mut_ptr());
        let best = lanes
            .iter()
            .chain(tail_lanes[r].iter())
            .copied()
            .min()
            .unwrap_or(u32::MAX);
        mins[r] = mins[r].min(best);
    }
}

/// Instantiates the three tile algorithms for a vocabulary type inside
/// `#[target_feature]` functions and collects them in a `TileKernels`.
macro_rules! tile_kernels {
    ($vec:ty, $r:expr $(, $features:literal)?) => {
        /// # Safety
        /// The CPU must support the features named in `target_feature`;
        /// otherwise the contract of [`crate::binary::blocked::search_tile`].
        $(#[target_feature(enable = $features)])?
        unsafe fn search_tile(
            q: &[u64],
            w: usize,
            tile: $crate::binary::blocked::Tile<'_>,
            heaps: &mut [$crate::binary::heap::Heap],
        ) {
            $crate::binary::blocked::search_tile::<$vec, { $r }, false>(q, w, tile, heaps)
        }

        /// # Safety
        /// As `search_tile` above.
        $(#[target_feature(enable = $features)])?
        unsafe fn search_tile_streaming(
            q: &[u64],
            w: usize,
            tile: $crate::binary::blocked::Tile<'_>,
            heaps: &mut [$crate::binary::heap::Heap],
        ) {
            $crate::binary::blocked::search_tile::<$vec, { $r }, true>(q, w, tile, heaps)
        }

        /// # Safety
        /// As [`crate::binary::blocked::matrix_tile`], plus the CPU features.
        $(#[target_feature(enable = $features)])?
        unsafe fn matrix_tile(q: &[u64], w: usize, tile: $crate::binary::blocked::Tile<'_>, out: *mut u32, stride: usize) {
            $crate::binary::blocked::matrix_tile::<$vec, { $r }>(q, w, tile, out, stride)
        }

        /// # Safety
        /// As [`crate::binary::blocked::min_tile`], plus the CPU features.
        $(#[target_feature(enable = $features)])?
        unsafe fn min_tile(q: &[u64], w: usize, tile: $crate::binary::blocked::Tile<'_>, mins: &mut [u32]) {
            $crate::binary::blocked::min_tile::<$vec, { $r }>(q, w, tile, mins)
        }

        /// # Safety
        /// As [`crate::binary::blocked::search_rows`], plus the CPU features.
        $(#[target_feature(enable = $features)])?
        unsafe fn search_rows(q: &[u64], w: usize, rows: &[u8], base: usize, heaps: &mut [$crate::binary::heap::Heap]) {
            $crate::binary::blocked::search_rows::<$vec>(q, w, rows, base, heaps)
        }

        /// The tile algorithms of this kernel.
        pub(crate) const KERNELS: $crate::binary::blocked::TileKernels = $crate::binary::blocked::TileKernels {
            search: search_tile,
            search_streaming: search_tile_streaming,
            matrix: matrix_tile,
            min: min_tile,
            search_rows,
            block_rows: $r,
            query_block: 64,
        };
    };
}
pub(crate) use tile_kernels;
