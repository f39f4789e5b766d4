//! The register-blocked MaxSim algorithm, written once over [`F32Vec`].
//!
//! Layout: the query tokens are stored transposed (`dim × stride`), so one
//! vector holds one dimension of `LANES` consecutive query tokens. Documents
//! are read in their natural row-major layout: for each dimension `k`, the
//! value `d[t][k]` of each of `T` document tokens is broadcast and multiplied
//! into `R` query vectors, giving an `R × T` tile of dot products that lives in
//! registers for the whole `k` loop. After the loop each tile is folded into a
//! running per-query-token maximum. The `nq × nd` similarity matrix never
//! exists in memory.
//!
//! When the query needs more than `R` vectors, the document is walked in
//! chunks small enough to stay in L1 while every query block passes over it.
//! Each lane's dot product is accumulated over `k` in order, and maxima are
//! exact, so a token's result does not depend on how queries are batched or
//! how documents are split across threads.

use super::PreparedQueries;
use crate::vector::{prefetch_read, F32Vec, FLOATS_PER_LINE};

/// Document bytes per chunk when several query blocks share it (half of a
/// 32 KiB L1D; the other half holds the query block being used).
const CHUNK_BYTES: usize = 16 * 1024;

/// Writes `maxes[i] = max_j ⟨q_i, d_j⟩` for every query token `i` of `q`.
///
/// # Safety
/// `V`'s instructions must be available (the caller is compiled with them);
/// `doc.len()` must be a non-zero multiple of `q.dim`, and `maxes.len() >= q.stride`.
#[inline(always)]
pub(crate) unsafe fn doc_maxes<V: F32Vec, const R: usize, const T: usize>(
    q: &PreparedQueries,
    doc: &[f32],
    maxes: &mut [f32],
) {
    let dim = q.dim;
    debug_assert!(dim > 0 && doc.len().is_multiple_of(dim) && maxes.len() >= q.stride);
    let n_tok = doc.len() / dim;
    let n_vec = q.n_tokens.div_ceil(V::LANES);
    debug_assert!(n_vec * V::LANES <= q.stride);
    maxes[..n_vec * V::LANES].fill(f32::NEG_INFINITY);

    let chunk = if n_vec <= R {
        n_tok
    } else {
        ((CHUNK_BYTES / (dim * 4)) / T * T).max(T)
    };
    let qt = q.transposed.as_ptr();
    let doc_ptr = doc.as_ptr();
    let max_ptr = maxes.as_mut_ptr();
    let mut t0 = 0;
    while t0 < n_tok {
        let t1 = (t0 + chunk).min(n_tok);
        let mut v = 0;
        while v + R <= n_vec {
            block::<V, R, T>(
                qt.add(v * V::LANES),
                q.stride,
                doc_ptr,
                dim,
                (t0, t1, n_tok),
                max_ptr.add(v * V::LANES),
            );
            v += R;
        }
        while v < n_vec {
            block::<V, 1, T>(
                qt.add(v * V::LANES),
                q.stride,
                doc_ptr,
                dim,
                (t0, t1, n_tok),
                max_ptr.add(v * V::LANES),
            );
            v += 1;
        }
        t0 = t1;
    }
}

/// Tiles ahead whose document rows are prefetched while a tile computes:
/// the first query block's pass over a chunk streams it from memory.
const PREFETCH_TILES: usize = 2;

/// One query block (`R` vectors) against document tokens `t0..t1` of a
/// document of `n_tok` tokens.
#[inline(always)]
unsafe fn block<V: F32Vec, const R: usize, const T: usize>(
    q_block: *const f32,
    q_stride: usize,
    doc: *const f32,
    dim: usize,
    (t0, t1, n_tok): (usize, usize, usize),
    maxes: *mut f32,
) {
    let mut running = [V::zero(); R];
    for (r, m) in running.iter_mut().enumerate() {
        *m = V::load(maxes.add(r * V::LANES));
    }
    let mut t = t0;
    while t + T <= t1 {
        let ahead = t + PREFETCH_TILES * T;
        let prefetch = if ahead + T <= n_tok {
            doc.add(ahead * dim)
        } else {
            std::ptr::null()
        };
        tile::<V, R, T>(
            q_block,
            q_stride,
            doc.add(t * dim),
            dim,
            prefetch,
            &mut running,
        );
        t += T;
    }
    while t < t1 {
        tile::<V, R, 1>(
            q_block,
            q_stride,
            doc.add(t * dim),
            dim,
            std::ptr::null(),
            &mut running,
        );
        t += 1;
    }
    for (r, m) in running.iter().enumerate() {
        m.store(maxes.add(r * V::LANES));
    }
}

/// `R × T` dot products in registers, folded into `running`. When
/// `prefetch` is not null, the `T` rows there are prefetched, one cache line
/// per row every 16 dimensions, spread over the `k` loop.
// Index loops over the const-size register tile: they unroll fully and keep
// `acc` in registers, which iterator chains over nested arrays do not always.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn tile<V: F32Vec, const R: usize, const T: usize>(
    q_block: *const f32,
    q_stride: usize,
    doc_tokens: *const f32,
    dim: usize,
    prefetch: *const f32,
    running: &mut [V; R],
) {
    let mut acc = [[V::zero(); T]; R];
    let mut k_start = 0;
    while k_start < dim {
        let k_end = (k_start + FLOATS_PER_LINE).min(dim);
        if !prefetch.is_null() {
            for t in 0..T {
                prefetch_read(prefetch.add(t * dim + k_start));
            }
        }
        for k in k_start..k_end {
            let q_row = q_block.add(k * q_stride);
            let mut qv = [V::zero(); R];
            for (r, slot) in qv.iter_mut().enumerate() {
                *slot = V::load(q_row.add(r * V::LANES));
            }
            for t in 0..T {
                let b = V::splat(*doc_tokens.add(t * dim + k));
                for r in 0..R {
                    acc[r][t] = qv[r].mul_add(b, acc[r][t]);
                }
            }
        }
        k_start = k_end;
    }
    for r in 0..R {
        for t in 0..T {
            running[r] = acc[r][t].max(running[r]);
        }
    }
}
