//! float16 / bfloat16 MaxSim: the register-blocked float kernel with the
//! widening of the document software-pipelined into it.
//!
//! The algorithm is the float32 one (`float::blocked`): query tokens
//! transposed in vectors, document values broadcast, an `R × T` tile of dot
//! products accumulated over `k` in order with fused multiply-adds, folded into
//! running maxima. The document is 16-bit, so each `T`-token tile is first
//! widened into a small f32 buffer — and that widening is done *while the
//! previous tile computes*: each `k` step of the first query block's tile also
//! widens one vector of the next tile into a second buffer, so the
//! conversions run on ports the multiply-adds leave idle instead of in a
//! separate pass. Every dot product is accumulated in the same order as the
//! float32 kernel, so scores are bitwise those of the float32 path on the
//! widened documents.

use crate::float::PreparedQueries;
use crate::vector::F32Vec;

/// An f32 vector that can load and widen `LANES` 16-bit floats.
///
/// # Safety
/// As [`F32Vec`]: only used inside functions compiled with the matching
/// features; `src` must be valid for `LANES` reads.
pub unsafe trait Widen: F32Vec {
    /// `LANES` float16 values at `src`, widened.
    unsafe fn widen_f16(src: *const u16) -> Self;
    /// `LANES` bfloat16 values at `src`, widened.
    unsafe fn widen_bf16(src: *const u16) -> Self;
}

#[inline(always)]
unsafe fn widen<V: Widen, const BF16: bool>(src: *const u16) -> V {
    if BF16 {
        V::widen_bf16(src)
    } else {
        V::widen_f16(src)
    }
}

#[inline(always)]
fn widen_scalar<const BF16: bool>(bits: u16) -> f32 {
    if BF16 {
        super::half::bf16_bits_to_f32(bits)
    } else {
        super::half::f16_bits_to_f32(bits)
    }
}

/// Widens `n` values from `src` to `dst` (vectors, then a scalar tail).
#[inline(always)]
unsafe fn widen_all<V: Widen, const BF16: bool>(src: *const u16, dst: *mut f32, n: usize) {
    let mut i = 0;
    while i + V::LANES <= n {
        widen::<V, BF16>(src.add(i)).store(dst.add(i));
        i += V::LANES;
    }
    while i < n {
        *dst.add(i) = widen_scalar::<BF16>(*src.add(i));
        i += 1;
    }
}

/// The float32 queries re-laid out for the tile loop. Query vectors (`lanes`
/// tokens each) are grouped as the kernel walks them: blocks of `r` vectors,
/// then single vectors for the remainder; a block of width `w` starting at
/// vector `v` is stored `[k][w][lanes]` at `v * dim * lanes`. A tile thus reads
/// its query block as one contiguous stream, where the transposed
/// `PreparedQueries` layout strides the whole query width per dimension (for a
/// large batch, a new page per step).
pub(crate) struct HalfQuery<'a> {
    pub(crate) q: &'a PreparedQueries,
    data: Vec<f32>,
    lanes: usize,
    r: usize,
}

impl<'a> HalfQuery<'a> {
    /// Re-lays `q` out for vectors of `lanes` tokens in blocks of `r`.
    pub(crate) fn new(q: &'a PreparedQueries, lanes: usize, r: usize) -> Self {
        let dim = q.dim;
        let n_vec = q.n_tokens.div_ceil(lanes);
        let full = n_vec / r * r;
        let mut data = vec![0.0f32; n_vec * dim * lanes];
        for v in 0..n_vec {
            let (v0, width) = if v < full { (v / r * r, r) } else { (v, 1) };
            let base = v0 * dim * lanes;
            for k in 0..dim {
                let src = &q.transposed[k * q.stride + v * lanes..k * q.stride + (v + 1) * lanes];
                let at = base + (k * width + (v - v0)) * lanes;
                data[at..at + lanes].copy_from_slice(src);
            }
        }
        HalfQuery { q, data, lanes, r }
    }

    /// Start and per-dimension stride of the block of `width` vectors at vector `v`.
    #[inline(always)]
    fn block(&self, v: usize, width: usize) -> (*const f32, usize) {
        // In bounds: `v < n_vec`, so `v * dim * lanes < data.len()`.
        (
            self.data[v * self.q.dim * self.lanes..].as_ptr(),
            width * self.lanes,
        )
    }
}

/// Writes `maxes[i] = max_j ⟨q_i, d_j⟩` for every query token of `q`, the
/// document given as 16-bit values (`BF16` selects bfloat16, else float16).
///
/// # Safety
/// `V`'s instructions must be available; `doc.len()` a non-zero multiple of
/// `q.dim`; `maxes.len() >= q.stride`; `T <= V::LANES`.
#[inline(always)]
pub(crate) unsafe fn doc_maxes<V: Widen, const BF16: bool, const R: usize, const T: usize>(
    hq: &HalfQuery<'_>,
    doc: &[u16],
    scratch: &mut Vec<f32>,
    maxes: &mut [f32],
) {
    debug_assert!(T <= V::LANES && hq.lanes == V::LANES && hq.r == R);
    let q = hq.q;
    let dim = q.dim;
    let n_tok = doc.len() / dim;
    let n_vec = q.n_tokens.div_ceil(V::LANES);
    debug_assert!(n_vec * V::LANES <= q.stride && maxes.len() >= q.stride);
    maxes[..n_vec * V::LANES].fill(f32::NEG_INFINITY);
    if q.stride * dim * 4 > PIPELINE_QUERY_BYTES {
        return doc_maxes_chunked::<V, BF16, R, T>(hq, doc, scratch, maxes);
    }
    let tile_len = T * dim;
    if scratch.len() < 2 * tile_len {
        scratch.resize(2 * tile_len, 0.0);
    }
    let src = doc.as_ptr();
    let max_ptr = maxes.as_mut_ptr();
    let mut cur = scratch.as_mut_ptr();
    let mut next = cur.add(tile_len);
    // Vectors of the next tile widened inside the k loop (one per step); the
    // remainder after the loop.
    let groups = tile_len / V::LANES;

    let mut t = 0;
    if n_tok >= T {
        widen_all::<V, BF16>(src, cur, tile_len);
    }
    while t + T <= n_tok {
        let has_next = t + 2 * T <= n_tok;
        let next_src = src.add((t + T) * dim);
        let mut v = 0;
        let mut first = true;
        while v < n_vec {
            let width = if v + R <= n_vec { R } else { 1 };
            let (q_block, qs) = hq.block(v, width);
            let m = max_ptr.add(v * V::LANES);
            match (width == R, first && has_next) {
                (true, true) => {
                    tile::<V, BF16, R, T, true>(q_block, qs, cur, dim, next_src, next, groups, m)
                }
                (true, false) => {
                    tile::<V, BF16, R, T, false>(q_block, qs, cur, dim, next_src, next, 0, m)
                }
                (false, true) => {
                    tile::<V, BF16, 1, T, true>(q_block, qs, cur, dim, next_src, next, groups, m)
                }
                (false, false) => {
                    tile::<V, BF16, 1, T, false>(q_block, qs, cur, dim, next_src, next, 0, m)
                }
            }
            first = false;
            v += width;
        }
        if has_next {
            let done = groups * V::LANES;
            widen_all::<V, BF16>(next_src.add(done), next.add(done), tile_len - done);
            std::mem::swap(&mut cur, &mut next);
        }
        t += T;
    }
    // Remaining tokens (fewer than T), one at a time.
    while t < n_tok {
        widen_all::<V, BF16>(src.add(t * dim), cur, dim);
        let mut v = 0;
        while v < n_vec {
            let width = if v + R <= n_vec { R } else { 1 };
            let (q_block, qs) = hq.block(v, width);
            let m = max_ptr.add(v * V::LANES);
            if width == R {
                tile::<V, BF16, R, 1, false>(q_block, qs, cur, dim, src, next, 0, m);
                v += R;
            } else {
                tile::<V, BF16, 1, 1, false>(q_block, qs, cur, dim, src, next, 0, m);
                v += 1;
            }
        }
        t += 1;
    }
}

/// Queries larger than this (f32 bytes) are scored chunk by chunk instead: a
/// tile-by-tile walk would stream the whole query from L3 for every tile.
pub(crate) const PIPELINE_QUERY_BYTES: usize = 128 * 1024;

/// Document bytes (as f32) widened per chunk for large queries: an L2-resident
/// block that every query block then walks, so the query streams once per chunk.
const CHUNK_BYTES: usize = 32 * 1024;

/// The large-query walk: widen a chunk of tokens, then pass every query block
/// over it (the float32 kernel's loop order; the same dot products, bitwise).
///
/// # Safety
/// As [`doc_maxes`]; `maxes` already holds −inf for every query vector.
#[inline(always)]
unsafe fn doc_maxes_chunked<V: Widen, const BF16: bool, const R: usize, const T: usize>(
    hq: &HalfQuery<'_>,
    doc: &[u16],
    scratch: &mut Vec<f32>,
    maxes: &mut [f32],
) {
    let q = hq.q;
    let dim = q.dim;
    let n_tok = doc.len() / dim;
    let n_vec = q.n_tokens.div_ceil(V::LANES);
    let chunk = ((CHUNK_BYTES / (dim * 4)) / T * T).max(T);
    if scratch.len() < chunk * dim {
        scratch.resize(chunk * dim, 0.0);
    }
    let buf = scratch.as_mut_ptr();
    let max_ptr = maxes.as_mut_ptr();
    let none = std::ptr::null_mut();
    let mut t0 = 0;
    while t0 < n_tok {
        let n = chunk.min(n_tok - t0);
        widen_all::<V, BF16>(doc.as_ptr().add(t0 * dim), buf, n * dim);
        let mut v = 0;
        while v < n_vec {
            let wide = v + R <= n_vec;
            let (q_block, qs) = hq.block(v, if wide { R } else { 1 });
            let m = max_ptr.add(v * V::LANES);
            let mut t = 0;
            while t + T <= n {
                let cur = buf.add(t * dim);
                if wide {
                    tile::<V, BF16, R, T, false>(q_block, qs, cur, dim, doc.as_ptr(), none, 0, m);
                } else {
                    tile::<V, BF16, 1, T, false>(q_block, qs, cur, dim, doc.as_ptr(), none, 0, m);
                }
                t += T;
            }
            while t < n {
                let cur = buf.add(t * dim);
                if wide {
                    tile::<V, BF16, R, 1, false>(q_block, qs, cur, dim, doc.as_ptr(), none, 0, m);
                } else {
                    tile::<V, BF16, 1, 1, false>(q_block, qs, cur, dim, doc.as_ptr(), none, 0, m);
                }
                t += 1;
            }
            v += if wide { R } else { 1 };
        }
        t0 += n;
    }
}

/// One `R × T` tile over the widened tokens at `cur`, folded into the running
/// maxima at `maxes`. With `CONVERT`, step `k < groups` also widens vector `k`
/// of `next_src` into `next`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<V: Widen, const BF16: bool, const R: usize, const T: usize, const CONVERT: bool>(
    q_block: *const f32,
    q_stride: usize,
    cur: *const f32,
    dim: usize,
    next_src: *const u16,
    next: *mut f32,
    groups: usize,
    maxes: *mut f32,
) {
    let mut acc = [[V::zero(); T]; R];
    // The first `split` steps also widen one vector of the next tile each
    // (two loops rather than a branch in one keeps the tile in registers).
    let split = if CONVERT { groups.min(dim) } else { 0 };
    for k in 0..split {
        step::<V, R, T>(q_block, q_stride, cur, dim, k, &mut acc);
        widen::<V, BF16>(next_src.add(k * V::LANES)).store(next.add(k * V::LANES));
    }
    for k in split..dim {
        step::<V, R, T>(q_block, q_stride, cur, dim, k, &mut acc);
    }
    if CONVERT && groups > dim {
        // Only when T > LANES (not instantiated); kept for completeness.
        for g in dim..groups {
            widen::<V, BF16>(next_src.add(g * V::LANES)).store(next.add(g * V::LANES));
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let mut running = V::load(maxes.add(r * V::LANES));
        for a in row {
            running = a.max(running);
        }
        running.store(maxes.add(r * V::LANES));
    }
}

/// Dimension `k` of the tile: `R` query vectors times `T` broadcast document values.
// Index loops mirror the register tile; iterator chains obscure it for no gain.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn step<V: F32Vec, const R: usize, const T: usize>(
    q_block: *const f32,
    q_stride: usize,
    cur: *const f32,
    dim: usize,
    k: usize,
    acc: &mut [[V; T]; R],
) {
    let q_row = q_block.add(k * q_stride);
    let mut qv = [V::zero(); R];
    for (r, slot) in qv.iter_mut().enumerate() {
        *slot = V::load(q_row.add(r * V::LANES));
    }
    for t in 0..T {
        let b = V::splat(*cur.add(t * dim + k));
        for r in 0..R {
            acc[r][t] = qv[r].mul_add(b, acc[r][t]);
        }
    }
}

/// Per-document 16-bit kernel.
pub(crate) type HalfDocFn = unsafe fn(&HalfQuery<'_>, &[u16], &mut Vec<f32>, &mut [f32]);
