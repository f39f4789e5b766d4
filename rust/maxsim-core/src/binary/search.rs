//! Exact Hamming top-k search, and search followed by float rescoring.

use super::blocked::Tile;
use super::heap::Heap;
use super::layout::{interleave_into, row_words, words_per_code, Codes, GROUP};
use super::quantize::{flip_top_bits, quantize_ubinary};
use super::rescore::{rescore, DbFloat, RescoreTarget, Rescored};
use super::{popcount, HammingImpl};
use crate::error::{invalid, Result};
use crate::threads;
use rayon::prelude::*;

/// Bytes of database codes per tile: half of a 32 KiB L1D, leaving room for
/// the block of query words that passes over it.
const TILE_BYTES: usize = 16 * 1024;
/// Smallest database chunk a search is split into, in groups (4096 codes).
const MIN_CHUNK_GROUPS: usize = 512;

/// Query blocks of at most this many queries read row-major codes directly
/// instead of interleaving tiles: interleaving costs a pass over the tile
/// and pays off only once enough queries reuse it (the crossover, measured,
/// is between 3 and 4 queries: BENCHMARKS.md, "Design measurements").
const DIRECT_ROWS_QUERIES: usize = 3;

/// Longest codes (in 64-bit words) whose few-query searches stream the
/// interleaved codes with prefetching rather than padding a register block.
const STREAMING_MAX_WORDS: usize = 8;

/// Whether a block of `n_queries` scans row-major codes of `n_bytes` directly.
fn direct_rows(n_bytes: usize, n_queries: usize) -> bool {
    n_queries <= DIRECT_ROWS_QUERIES
        && n_bytes.is_multiple_of(8)
        && n_bytes / 8 <= popcount::ROWS_MAX_WORDS
}

pub(super) fn tile_groups(w: usize) -> usize {
    (TILE_BYTES / (w * GROUP * 8)).max(1)
}

/// Walks groups `g0..g1` of `db` tile by tile, interleaving row-major codes
/// into `scratch` on the way, and calls `f` on each tile.
pub(super) fn for_each_tile(
    db: &Codes<'_>,
    g0: usize,
    g1: usize,
    scratch: &mut Vec<u64>,
    mut f: impl FnMut(Tile<'_>),
) {
    let n = db.len();
    let n_bytes = db.n_bytes();
    let w = words_per_code(n_bytes);
    let step = tile_groups(w);
    let mut g = g0;
    while g < g1 {
        let ge = (g + step).min(g1);
        let (c0, c1) = (g * GROUP, (ge * GROUP).min(n));
        let words: &[u64] = match db {
            Codes::Rows { data, .. } => {
                scratch.resize(step * w * GROUP, 0);
                interleave_into(data, n_bytes, c0, c1, scratch);
                &scratch[..(ge - g) * w * GROUP]
            }
            Codes::Interleaved { words, .. } => &words[g * w * GROUP..ge * w * GROUP],
        };
        f(Tile {
            words,
            n_codes: c1 - c0,
            base: c0,
        });
        g = ge;
    }
}

/// How a `(queries × database)` job is cut into parallel units.
pub(super) struct Split {
    pub(super) query_block: usize,
    pub(super) n_query_blocks: usize,
    pub(super) chunk_groups: usize,
    pub(super) n_chunks: usize,
}

/// Cuts `n_queries` into blocks of at most `query_block` (each block shares
/// every database tile) and the database into chunks for the threads.
pub(super) fn split(
    n_queries: usize,
    query_block: usize,
    n_groups: usize,
    n_threads: usize,
) -> Split {
    let n_query_blocks = n_queries.div_ceil(query_block).max(1);
    let query_block = n_queries.div_ceil(n_query_blocks).max(1);
    let wanted = if n_threads > 1 {
        (4 * n_threads).div_ceil(n_query_blocks)
    } else {
        1
    };
    let n_chunks = wanted.min(n_groups.div_ceil(MIN_CHUNK_GROUPS)).max(1);
    let chunk_groups = n_groups.div_ceil(n_chunks).max(1);
    Split {
        query_block,
        n_query_blocks,
        chunk_groups,
        n_chunks: n_groups.div_ceil(chunk_groups).max(1),
    }
}

/// Exact k-nearest neighbours: `n_queries × k` distances (ascending) and indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbors {
    /// Results per query: `min(k, database size)`.
    pub k: usize,
    pub distances: Vec<i32>,
    pub indices: Vec<i64>,
}

pub(super) fn check_same_bytes(
    a_name: &str,
    a: &Codes<'_>,
    b_name: &str,
    b: &Codes<'_>,
) -> Result<()> {
    if a.n_bytes() != b.n_bytes() {
        return invalid!(
            "{a_name}: codes of {} bytes ({} bits, shape ({}, {})) do not match {b_name}'s {} bytes ({} bits, shape ({}, {}))",
            a.n_bytes(),
            a.n_bytes() * 8,
            a.len(),
            a.n_bytes(),
            b.n_bytes(),
            b.n_bytes() * 8,
            b.len(),
            b.n_bytes()
        );
    }
    Ok(())
}

/// The `k` nearest database codes of every query by Hamming distance, with
/// the selected kernel. Ascending distance, ties to the lower index.
pub fn search(queries: &Codes<'_>, db: &Codes<'_>, k: usize) -> Result<Neighbors> {
    search_with(HammingImpl::selected()?, queries, db, k)
}

/// As [`search`], with an explicit implementation.
pub fn search_with(
    imp: HammingImpl,
    queries: &Codes<'_>,
    db: &Codes<'_>,
    k: usize,
) -> Result<Neighbors> {
    if k == 0 {
        return invalid!("k: must be at least 1, got 0");
    }
    check_same_bytes("query_codes", queries, "db_codes", db)?;
    let (n_queries, n) = (queries.len(), db.len());
    let kept = k.min(n);
    if n_queries == 0 || kept == 0 {
        return Ok(Neighbors {
            k: kept,
            distances: Vec::new(),
            indices: Vec::new(),
        });
    }
    let w = words_per_code(db.n_bytes());
    let q_words = row_words(queries);
    let kernels = imp.tiles()?;
    let n_groups = n.div_ceil(GROUP);
    let s = split(
        n_queries,
        kernels.query_block,
        n_groups,
        threads::num_threads(),
    );
    let units: Vec<(usize, usize)> = (0..s.n_query_blocks)
        .flat_map(|b| (0..s.n_chunks).map(move |c| (b, c)))
        .collect();
    let per_unit: Vec<Vec<Heap>> = threads::install(|| {
        units
            .par_iter()
            .map(|&(b, c)| {
                let q0 = b * s.query_block;
                let q1 = (q0 + s.query_block).min(n_queries);
                let mut heaps: Vec<Heap> = (q0..q1).map(|_| Heap::new(kept)).collect();
                let g0 = c * s.chunk_groups;
                let g1 = (g0 + s.chunk_groups).min(n_groups);
                let queries = &q_words[q0 * w..q1 * w];
                match db {
                    Codes::Rows { data, n_bytes, .. } if direct_rows(*n_bytes, q1 - q0) => {
                        let (c0, c1) = (g0 * GROUP, (g1 * GROUP).min(n));
                        let rows = &data[c0 * n_bytes..c1 * n_bytes];
                        // SAFETY: `imp` is supported; `direct_rows` checked
                        // `n_bytes == 8w` and `w <= ROWS_MAX_WORDS`; `rows` is whole
                        // codes; there is one heap per query row of `queries`.
                        unsafe { (kernels.search_rows)(queries, w, rows, c0, &mut heaps) }
                    }
                    _ => {
                        // Fewer queries than a register block, 512 bits or
                        // less: one prefetching pass per query block. Longer
                        // codes: pad the block with copies of the last query,
                        // whose `k = 0` heaps keep nothing. Streaming wins
                        // for short codes, where a padded block wastes most
                        // of its rows; padding wins for long ones, where the
                        // block's reuse of each loaded word dominates.
                        let real = q1 - q0;
                        let streaming = real < kernels.block_rows && w <= STREAMING_MAX_WORDS;
                        let padded: Vec<u64>;
                        let block_queries = if real < kernels.block_rows && !streaming {
                            let last = &queries[(real - 1) * w..];
                            padded = queries
                                .iter()
                                .chain(last.iter().cycle().take((kernels.block_rows - real) * w))
                                .copied()
                                .collect();
                            heaps.extend((real..kernels.block_rows).map(|_| Heap::new(0)));
                            &padded[..]
                        } else {
                            queries
                        };
                        let search = if streaming {
                            kernels.search_streaming
                        } else {
                            kernels.search
                        };
                        let mut scratch = Vec::new();
                        for_each_tile(db, g0, g1, &mut scratch, |tile| {
                            // SAFETY: `imp` is supported (checked above);
                            // `block_queries` holds `heaps.len()` rows of `w` words;
                            // the tile holds whole groups of `w × GROUP` words for its
                            // `n_codes` codes (`for_each_tile`).
                            unsafe { search(block_queries, w, tile, &mut heaps) }
                        });
                        heaps.truncate(real);
                    }
                }
                heaps
            })
            .collect()
    });
    let mut distances = Vec::with_capacity(n_queries * kept);
    let mut indices = Vec::with_capacity(n_queries * kept);
    let mut per_unit: Vec<Vec<Option<Heap>>> = per_unit
        .into_iter()
        .map(|hs| hs.into_iter().map(Some).collect())
        .collect();
    for qi in 0..n_queries {
        let b = qi / s.query_block;
        let mut all: Vec<(u32, u64)> = Vec::with_capacity(kept * s.n_chunks);
        for c in 0..s.n_chunks {
            if let Some(h) = per_unit[b * s.n_chunks + c][qi - b * s.query_block].take() {
                all.extend(h.into_vec());
            }
        }
        all.sort_unstable();
        debug_assert!(all.len() >= kept);
        for &(d, i) in &all[..kept] {
            distances.push(d as i32);
            indices.push(i as i64);
        }
    }
    Ok(Neighbors {
        k: kept,
        distances,
        indices,
    })
}

/// Hamming search for `k × multiplier` candidates followed by [`rescore()`]:
/// `query` is `n_queries × dim` float32, quantized to `ubinary` here (to
/// `binary` when `flipped`, i.e. the database holds `int8` codes). With
/// `db_float` the candidates are rescored by exact dot products with the
/// stored vectors, otherwise against their own 0/1 bits.
pub fn search_rescore(
    query: &[f32],
    dim: usize,
    db: &Codes<'_>,
    flipped: bool,
    k: usize,
    multiplier: usize,
    db_float: Option<DbFloat<'_>>,
) -> Result<Rescored> {
    search_rescore_with(
        HammingImpl::selected()?,
        query,
        dim,
        db,
        flipped,
        (k, multiplier),
        db_float,
    )
}

/// As [`search_rescore`], with an explicit implementation; `k_mult` is `(k, multiplier)`.
pub fn search_rescore_with(
    imp: HammingImpl,
    query: &[f32],
    dim: usize,
    db: &Codes<'_>,
    flipped: bool,
    (k, multiplier): (usize, usize),
    db_float: Option<DbFloat<'_>>,
) -> Result<Rescored> {
    if k == 0 {
        return invalid!("k: must be at least 1, got 0");
    }
    if multiplier == 0 {
        return invalid!("rescore_multiplier: must be at least 1, got 0");
    }
    if dim == 0 || !query.len().is_multiple_of(dim) {
        return invalid!(
            "query: {} values is not a whole number of rows of dim {dim}",
            query.len()
        );
    }
    if dim.div_ceil(8) != db.n_bytes() {
        return invalid!(
            "query: dimension {dim} needs codes of {} bytes but db_codes has {} bytes ({} bits) per code",
            dim.div_ceil(8),
            db.n_bytes(),
            db.n_bytes() * 8
        );
    }
    let n_queries = query.len() / dim;
    let mut q_codes = quantize_ubinary(query, n_queries, dim)?;
    if flipped {
        flip_top_bits(&mut q_codes);
    }
    let q = Codes::rows("query", &q_codes, n_queries, db.n_bytes())?;
    let candidates = search_with(imp, &q, db, k.saturating_mul(multiplier))?;
    let target = match db_float {
        Some(docs) => RescoreTarget::Float { docs, n: db.len() },
        None => RescoreTarget::Bits {
            codes: *db,
            flipped,
        },
    };
    rescore(query, dim, &candidates.indices, candidates.k, k, target)
}
