//! Binary codes: sign quantization, Hamming distances, exact top-k search,
//! rescoring and binary MaxSim.
//!
//! Codes are sentence-transformers' `ubinary` bytes (`np.packbits(x > 0,
//! axis=-1)`); any whole number of bytes per code. Distances are Hamming
//! distances (`popcount(a ^ b)`), as faiss `IndexBinaryFlat` computes them.
//!
//! Layout of the module (the same split as the float kernels):
//! - [`layout`]: row-major and interleaved code layouts ([`Codes`]);
//! - `popcount`: the vocabulary ([`Popcount8`]: eight distances of one
//!   interleaved group) and its portable implementation;
//! - `blocked`: the tile algorithms (search with a bounded heap and a vector
//!   threshold test, distance matrix, running minimum), written once;
//! - `arch::*::binary`: one implementation per ISA (AVX-512 VPOPCNTDQ, AVX2
//!   `vpshufb`, NEON `vcnt`), plus the scalar `POPCNT` instantiation;
//! - this file: kernel choice and the parallel drivers.
//!
//! **Determinism.** A search splits the database into chunks (and a batch of
//! queries into blocks); each chunk keeps its own `k` best per query, and the
//! chunks are merged by `(distance, index)`, a total order. The result is the
//! `k` smallest `(distance, index)` pairs whatever the split, so it is the
//! same for any thread count and equals faiss `IndexBinaryFlat`'s: ascending
//! distance, ties to the lower index.

pub(crate) mod blocked;
pub(crate) mod heap;
pub mod layout;
pub(crate) mod popcount;
mod portable;
pub mod quantize;
pub mod rescore;

pub use layout::{interleave, interleaved_len, words_per_code, Codes, GROUP, MAX_CODE_BYTES};
pub use popcount::{Popcount8, PortableU64};
pub use quantize::{flip_top_bits, quantize_ubinary, unpack, F16Bits, Positive};
pub use rescore::{rescore, DbFloat, RescoreTarget, Rescored};

use crate::dispatch::{selected_kernel, Kernel};
use crate::docs::DocSet;
use crate::error::{invalid, Error, Result};
use crate::threads;
use blocked::{Tile, TileKernels};
use heap::Heap;
use layout::{interleave_into, row_words};
use rayon::prelude::*;

/// One implementation of the Hamming vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HammingImpl {
    /// Plain Rust `u64::count_ones` for the baseline target (the reference).
    Portable,
    /// The same code compiled with x86-64 `POPCNT`: one `popcnt` per `u64`.
    Popcnt,
    /// AVX2 `vpshufb` nibble lookup with byte counters and `vpsadbw`.
    Avx2,
    /// AVX-512 `vpopcntq` on interleaved codes (needs AVX512F/BW/VL + VPOPCNTDQ).
    Avx512,
    /// NEON `vcntq_u8`.
    Neon,
}

/// The implementation an `avx2` kernel selection runs. Measured on Zen 3
/// (see `benches/binary.rs`): `vpshufb` beats scalar `popcnt`.
const AVX2_DEFAULT: HammingImpl = HammingImpl::Avx2;

impl HammingImpl {
    /// Every implementation.
    pub const ALL: [HammingImpl; 5] = [
        HammingImpl::Avx512,
        HammingImpl::Avx2,
        HammingImpl::Popcnt,
        HammingImpl::Neon,
        HammingImpl::Portable,
    ];

    /// Short name, for benches and diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            HammingImpl::Portable => "portable",
            HammingImpl::Popcnt => "popcnt",
            HammingImpl::Avx2 => "avx2-pshufb",
            HammingImpl::Avx512 => "avx512-vpopcntdq",
            HammingImpl::Neon => "neon-vcnt",
        }
    }

    /// Whether this CPU can run it.
    pub fn is_supported(self) -> bool {
        match self {
            HammingImpl::Portable => true,
            HammingImpl::Popcnt => has_popcnt(),
            HammingImpl::Avx2 => Kernel::Avx2.is_supported(),
            HammingImpl::Avx512 => has_avx512_vpopcntdq(),
            HammingImpl::Neon => Kernel::Neon.is_supported(),
        }
    }

    /// The implementation a kernel selection runs: `avx512`/`amx` use
    /// VPOPCNTDQ where the CPU has it and fall back to the AVX2 choice
    /// otherwise; `scalar` uses `POPCNT` where available.
    pub fn for_kernel(kernel: Kernel) -> HammingImpl {
        let choice = match kernel {
            Kernel::Scalar if has_popcnt() => HammingImpl::Popcnt,
            Kernel::Scalar => HammingImpl::Portable,
            Kernel::Avx2 => AVX2_DEFAULT,
            Kernel::Avx512 | Kernel::Amx if has_avx512_vpopcntdq() => HammingImpl::Avx512,
            Kernel::Avx512 | Kernel::Amx => AVX2_DEFAULT,
            Kernel::Neon => HammingImpl::Neon,
        };
        if choice.is_supported() {
            choice
        } else {
            HammingImpl::Portable
        }
    }

    /// The implementation for the kernel in force ([`selected_kernel`]).
    pub fn selected() -> Result<HammingImpl> {
        Ok(HammingImpl::for_kernel(selected_kernel()?))
    }

    fn check(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "Hamming kernel {:?} is not supported by this CPU",
                self.name()
            )))
        }
    }

    fn kernels(self) -> TileKernels {
        match self {
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Popcnt => crate::arch::x86_64::avx2::binary::popcnt::KERNELS,
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Avx2 => crate::arch::x86_64::avx2::binary::KERNELS,
            #[cfg(target_arch = "x86_64")]
            HammingImpl::Avx512 => crate::arch::x86_64::avx512::binary::KERNELS,
            #[cfg(target_arch = "aarch64")]
            HammingImpl::Neon => crate::arch::aarch64::neon::binary::KERNELS,
            // Implementations of another architecture are never supported.
            _ => portable::KERNELS,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_popcnt() -> bool {
    std::arch::is_x86_feature_detected!("popcnt")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_popcnt() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn has_avx512_vpopcntdq() -> bool {
    Kernel::Avx512.is_supported() && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}
#[cfg(not(target_arch = "x86_64"))]
fn has_avx512_vpopcntdq() -> bool {
    false
}

/// Bytes of database codes per tile: half of a 32 KiB L1D, leaving room for
/// the block of query words that passes over it.
const TILE_BYTES: usize = 16 * 1024;
/// Queries sharing each database tile.
const QUERY_BLOCK: usize = 64;
/// Smallest database chunk a search is split into, in groups (4096 codes).
const MIN_CHUNK_GROUPS: usize = 512;

/// Query blocks of at most this many queries read row-major codes directly
/// instead of interleaving tiles (which pays off once a tile is reused).
/// Measured on Zen 4 (AVX-512, 1M row-major codes, one thread, ms per query,
/// direct / interleaved): 1 query 2.6 / 13.2 (512 bits), 4.8 / 18.5 (1024);
/// 3 queries 2.2 / 3.0, 4.9 / 5.2; 4 queries 2.4 / 2.1, 4.9 / 3.8.
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

fn tile_groups(w: usize) -> usize {
    (TILE_BYTES / (w * GROUP * 8)).max(1)
}

/// Walks groups `g0..g1` of `db` tile by tile, interleaving row-major codes
/// into `scratch` on the way, and calls `f` on each tile.
fn for_each_tile(
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
struct Split {
    query_block: usize,
    n_query_blocks: usize,
    chunk_groups: usize,
    n_chunks: usize,
}

fn split(n_queries: usize, n_groups: usize, n_threads: usize) -> Split {
    let n_query_blocks = n_queries.div_ceil(QUERY_BLOCK).max(1);
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

fn check_same_bytes(a_name: &str, a: &Codes<'_>, b_name: &str, b: &Codes<'_>) -> Result<()> {
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
    imp.check()?;
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
    let kernels = imp.kernels();
    let n_groups = n.div_ceil(GROUP);
    let s = split(n_queries, n_groups, threads::num_threads());
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
                        // whose `k = 0` heaps keep nothing. Measured on Zen 4
                        // (AVX-512, 1M interleaved codes, one thread, ms per
                        // query; padded / streaming): 512 bits, 1 query 4.8 /
                        // 2.7, 2 queries 2.4 / 1.7; 1024 bits, 1 query 4.8 /
                        // 6.0, 2 queries 2.2 / 3.9.
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

/// A raw output pointer shared by parallel units that write disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut u32);

impl SharedOut {
    /// The output pointer (a method, so closures capture the whole `Send` wrapper).
    fn ptr(self) -> *mut u32 {
        self.0
    }
}
// SAFETY: each parallel unit writes only its own rows × columns of the
// output, so no element is written by two threads, and the buffer outlives
// the parallel section (it is owned by the caller and only read afterwards).
unsafe impl Send for SharedOut {}
// SAFETY: as above; the pointer is only used for disjoint writes.
unsafe impl Sync for SharedOut {}

/// All pairwise Hamming distances: `a.len() × b.len()` values, row-major.
pub fn hamming(a: &Codes<'_>, b: &Codes<'_>) -> Result<Vec<i32>> {
    hamming_with(HammingImpl::selected()?, a, b)
}

/// As [`hamming`], with an explicit implementation.
pub fn hamming_with(imp: HammingImpl, a: &Codes<'_>, b: &Codes<'_>) -> Result<Vec<i32>> {
    imp.check()?;
    check_same_bytes("a_codes", a, "b_codes", b)?;
    let (n_a, n_b) = (a.len(), b.len());
    let total = n_a.checked_mul(n_b).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "a_codes, b_codes: {n_a} × {n_b} distances overflow"
        ))
    })?;
    let mut out = vec![0i32; total];
    if total == 0 {
        return Ok(out);
    }
    let w = words_per_code(a.n_bytes());
    let a_words = row_words(a);
    let kernels = imp.kernels();
    let n_groups = n_b.div_ceil(GROUP);
    let s = split(n_a, n_groups, threads::num_threads());
    let dst = SharedOut(out.as_mut_ptr() as *mut u32);
    let units: Vec<(usize, usize)> = (0..s.n_query_blocks)
        .flat_map(|bq| (0..s.n_chunks).map(move |c| (bq, c)))
        .collect();
    threads::install(|| {
        units.par_iter().for_each(|&(bq, c)| {
            let out_ptr = dst.ptr();
            let r0 = bq * s.query_block;
            let r1 = (r0 + s.query_block).min(n_a);
            let g0 = c * s.chunk_groups;
            let g1 = (g0 + s.chunk_groups).min(n_groups);
            let mut scratch = Vec::new();
            for_each_tile(b, g0, g1, &mut scratch, |tile| {
                // SAFETY: `imp` is supported; rows `r0..r1` of `a_words` exist;
                // the tile is whole groups; the kernel writes `out[r][tile.base + j]`
                // for `r in r0..r1`, `j < tile.n_codes`, all inside the
                // `n_a × n_b` buffer and owned by this unit alone (units cover
                // disjoint row blocks × code chunks).
                unsafe {
                    (kernels.matrix)(
                        &a_words[r0 * w..r1 * w],
                        w,
                        tile,
                        out_ptr.add(r0 * n_b + tile.base),
                        n_b,
                    )
                }
            });
        })
    });
    Ok(out)
}

/// Validates an optional code length in bits against `n_bytes`.
fn d_bits_for(d_bits: Option<usize>, n_bytes: usize) -> Result<usize> {
    match d_bits {
        None => Ok(n_bytes * 8),
        Some(bits) if bits > 8 * (n_bytes - 1) && bits <= 8 * n_bytes => Ok(bits),
        Some(bits) => invalid!(
            "dim: {bits} bits do not fit codes of {n_bytes} bytes (needs {} < dim <= {})",
            8 * (n_bytes - 1),
            8 * n_bytes
        ),
    }
}

/// Binary MaxSim of each query against every document, with the selected kernel.
///
/// `queries[s]` is `nq_s` token codes of `docs.dim()` bytes each. Per query
/// token the best document token by Hamming similarity `d_bits - 2·hamming`
/// (the dot product of the ±1 vectors), summed over the query's tokens.
/// `d_bits` defaults to `8 × bytes per code`. Returns `n_queries × n_docs`
/// scores, row-major.
pub fn maxsim_scores_batch(
    queries: &[&[u8]],
    docs: &DocSet<'_, u8>,
    d_bits: Option<usize>,
) -> Result<Vec<i32>> {
    maxsim_scores_batch_with(HammingImpl::selected()?, queries, docs, d_bits)
}

/// As [`maxsim_scores_batch`], with an explicit implementation.
pub fn maxsim_scores_batch_with(
    imp: HammingImpl,
    queries: &[&[u8]],
    docs: &DocSet<'_, u8>,
    d_bits: Option<usize>,
) -> Result<Vec<i32>> {
    imp.check()?;
    let n_bytes = docs.dim();
    if n_bytes > MAX_CODE_BYTES {
        return invalid!(
            "docs_codes: codes of {n_bytes} bytes are longer than the supported {MAX_CODE_BYTES}"
        );
    }
    let d_bits = d_bits_for(d_bits, n_bytes)?;
    let mut segments = Vec::with_capacity(queries.len() + 1);
    segments.push(0usize);
    for (s, q) in queries.iter().enumerate() {
        if q.len() % n_bytes != 0 {
            return invalid!(
                "query_codes[{s}]: {} bytes is not a whole number of codes of {n_bytes} bytes (the documents' code length)",
                q.len()
            );
        }
        let nq = q.len() / n_bytes;
        if nq == 0 {
            return invalid!("query_codes[{s}]: has zero tokens, shape (0, {n_bytes}); a query needs at least one token");
        }
        if (nq as u64) * (d_bits as u64) > i32::MAX as u64 {
            return invalid!(
                "query_codes[{s}]: {nq} tokens of {d_bits} bits can overflow an int32 score"
            );
        }
        segments.push(segments[s] + nq);
    }
    let n_queries = queries.len();
    let n_docs = docs.len();
    let mut doc_major = vec![0i32; n_docs * n_queries];
    if n_docs == 0 || n_queries == 0 {
        return Ok(doc_major);
    }
    let w = words_per_code(n_bytes);
    let all_tokens: Vec<u8> = queries.concat();
    let total_tokens = segments[n_queries];
    let q_words = row_words(&Codes::rows(
        "query_codes",
        &all_tokens,
        total_tokens,
        n_bytes,
    )?);
    let kernels = imp.kernels();
    let per_task = (n_docs / (threads::num_threads() * 8)).clamp(1, 64);
    threads::install(|| {
        doc_major
            .par_chunks_mut(per_task * n_queries)
            .enumerate()
            .for_each(|(task, out)| {
                let mut scratch = Vec::new();
                let mut mins = vec![u32::MAX; total_tokens];
                for (j, row) in out.chunks_mut(n_queries).enumerate() {
                    let doc = docs.doc(task * per_task + j);
                    let n_tok = doc.len() / n_bytes;
                    let doc_codes = Codes::Rows {
                        data: doc,
                        n: n_tok,
                        n_bytes,
                    };
                    mins.fill(u32::MAX);
                    for_each_tile(&doc_codes, 0, n_tok.div_ceil(GROUP), &mut scratch, |tile| {
                        // SAFETY: `imp` is supported; `q_words` holds `total_tokens × w`
                        // words and `mins` one entry per token; the tile is whole groups.
                        unsafe { (kernels.min)(&q_words, w, tile, &mut mins) }
                    });
                    for (s, slot) in row.iter_mut().enumerate() {
                        let best = &mins[segments[s]..segments[s + 1]];
                        let total: i64 = best.iter().map(|&m| d_bits as i64 - 2 * m as i64).sum();
                        *slot = total as i32;
                    }
                }
            })
    });
    if n_queries == 1 {
        return Ok(doc_major);
    }
    let mut out = vec![0i32; n_docs * n_queries];
    for (d, row) in doc_major.chunks_exact(n_queries).enumerate() {
        for (s, &v) in row.iter().enumerate() {
            out[s * n_docs + d] = v;
        }
    }
    Ok(out)
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

/// Measured single-thread Hamming throughput of `imp`, in GB/s of compared
/// code bytes (queries × codes × bytes per code), on a 16 KiB tile that stays
/// in L1 while 64 queries with `k = 10` heaps pass over it: the ceiling of the
/// search kernel on this CPU, which the scan rate of a full search is compared
/// to. Runs for about `seconds`.
pub fn l1_scan_gbps(imp: HammingImpl, n_bytes: usize, seconds: f64) -> Result<f64> {
    imp.check()?;
    if n_bytes == 0 || n_bytes > 4096 {
        return invalid!("n_bytes: must be in 1..=4096, got {n_bytes}");
    }
    let w = words_per_code(n_bytes);
    let n_codes = tile_groups(w) * GROUP;
    let n_queries = 64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let q_words: Vec<u64> = (0..n_queries * w).map(|_| next()).collect();
    let tile_words: Vec<u64> = (0..n_codes.div_ceil(GROUP) * w * GROUP)
        .map(|_| next())
        .collect();
    let tile = Tile {
        words: &tile_words,
        n_codes,
        base: 0,
    };
    let kernels = imp.kernels();
    let mut heaps: Vec<Heap> = (0..n_queries).map(|_| Heap::new(10)).collect();
    let start = std::time::Instant::now();
    let mut passes = 0u64;
    while passes < 4 || start.elapsed().as_secs_f64() < seconds {
        // SAFETY: `imp` is supported; `q_words` holds 64 rows of `w` words,
        // one heap per row; the tile is whole groups of `w × GROUP` words.
        unsafe { (kernels.search)(&q_words, w, tile, &mut heaps) };
        passes += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((passes as f64 * (n_queries * n_codes * n_bytes) as f64) / elapsed / 1e9)
}
