//! int8 MaxSim: the integer dot-product vocabulary and the register-blocked
//! algorithm written once over it.
//!
//! Query token `i` and document token `j` are stored as int8 codes with
//! per-token scales (`q_i ≈ sq_i · cq_i`, `d_j ≈ sd_j · cd_j`). Their
//! similarity is `sq_i · sd_j · ⟨cq_i, cd_j⟩`, where the integer dot product
//! is exact in int32. Per query token the kernels keep
//! `max_j fl(fl(⟨cq_i, cd_j⟩) · sd_j)` and the driver multiplies it by `sq_i`
//! (a positive factor, so it commutes with the max). Every step is exact or
//! correctly rounded in a fixed order, so **every ISA returns bitwise the
//! same scores**.
//!
//! Layout: the query codes are packed once per call into groups of `GROUP`
//! consecutive dimensions: vector `v` of group `g` holds `LANES` query tokens
//! × `GROUP` dimensions. Each tile of `T` document tokens is converted into a
//! small scratch buffer of `DElem` (sign-extended to i16, offset to u8, or
//! copied), its rows zero-padded to a whole number of groups — the next tile
//! while the current one computes; the tile loop broadcasts one group of one
//! document token and multiply-accumulates it into `R × T` int32
//! accumulators, exactly like the float kernel does with single values.

use super::Int8Queries;
use crate::vector::F32Vec;

/// A vector of `LANES` int32 accumulators and its integer dot-product step.
///
/// # Safety
/// Implementations use ISA intrinsics: callers must only use a type inside
/// functions compiled with (and running on a CPU with) the matching features;
/// pointers passed to loads must be valid for the documented number of elements.
pub unsafe trait I8Dot: Copy {
    /// int32 lanes = query tokens per vector.
    const LANES: usize;
    /// Consecutive dimensions each lane consumes per step.
    const GROUP: usize;
    /// Documents are stored as `code + 128` (u8) and the accumulators start at
    /// `−128 · Σ_k cq_k` (for `vpdpbusd`, whose first operand is unsigned), so
    /// they end at the signed dot product with no correction step.
    const OFFSET: bool;
    /// Element of the packed query.
    type QElem: Copy + Default + Send + Sync + 'static;
    /// Element of the converted document scratch.
    type DElem: Copy + Default + Send + Sync + 'static;
    /// One query operand: `LANES × GROUP` elements.
    type Q: Copy;
    /// One broadcast document group: `GROUP` elements.
    type B: Copy;
    /// The f32 vector of the same width, for the epilogue.
    type F: F32Vec;

    /// The query element of a code.
    fn q_elem(code: i8) -> Self::QElem;
    /// The document element of a code.
    fn d_elem(code: i8) -> Self::DElem;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// Loads `LANES` int32 values.
    unsafe fn load_i32(ptr: *const i32) -> Self;
    /// Loads one query operand (`LANES × GROUP` elements).
    unsafe fn load_q(ptr: *const Self::QElem) -> Self::Q;
    /// Broadcasts one document group (`GROUP` elements).
    unsafe fn load_b(ptr: *const Self::DElem) -> Self::B;
    /// `self + Σ_{j < GROUP} q[lane][j] · b[j]` per lane.
    unsafe fn dot(self, q: Self::Q, b: Self::B) -> Self;
    /// The lanes converted to f32 (round to nearest even).
    unsafe fn to_f32(self) -> Self::F;
    /// Codes converted per step when conversion is interleaved with the dot
    /// products (one vector's worth; `T * GROUP` must not exceed it).
    const CONV: usize;
    /// Converts `n` codes to document elements (`d_elem` applied to each).
    unsafe fn convert_doc(src: *const i8, dst: *mut Self::DElem, n: usize);
    /// Converts one row of `dim` codes into `dimp` elements (the whole
    /// groups `dimp` rounds up to), zero codes padding it.
    #[inline(always)]
    unsafe fn convert_row(src: *const i8, dst: *mut Self::DElem, dim: usize, dimp: usize) {
        Self::convert_doc(src, dst, dim);
        let pad = Self::d_elem(0);
        for k in dim..dimp {
            *dst.add(k) = pad;
        }
    }
}

/// Element index of (lane, j) inside one packed query operand.
#[inline(always)]
const fn q_pos(lane: usize, j: usize, group: usize) -> usize {
    lane * group + j
}

/// Query codes packed for one `I8Dot` implementation.
#[derive(Debug, Clone)]
pub(crate) struct PackedI8<E> {
    /// Query tokens over all queries.
    pub n_tokens: usize,
    /// Tokens padded to a multiple of 16 (the widest vector).
    pub stride: usize,
    /// Embedding width.
    pub dim: usize,
    /// `dim` rounded up to a whole number of groups.
    pub dimp: usize,
    /// Group size the data is packed for.
    pub group: usize,
    /// `(dimp / group) × stride × group` elements; padding is zero. Row-major
    /// (`[g][stride][group]`, as AMX B tiles read it) when `blocks` is `None`;
    /// with `Some((lanes, r))`, block-major: query vectors of `lanes` tokens in
    /// blocks of `r` (then single vectors for the remainder), a block of width
    /// `w` at vector `v` stored `[g][w][lanes][group]` from `v · (dimp/group) ·
    /// lanes · group`, so a tile streams its query block contiguously.
    pub data: Vec<E>,
    /// The block-major layout's `(lanes, r)`, or `None` for row-major.
    pub blocks: Option<(usize, usize)>,
    /// `stride` accumulator start values: `−128 · Σ_k cq_k` when the kernel
    /// offsets documents to unsigned (cancelling the offset's `128 · Σ_k cq_k`),
    /// else 0.
    pub acc_start: Vec<i32>,
}

/// Query tokens are padded to a multiple of this (the widest vector, AVX-512/AMX).
pub(crate) const Q_PAD: usize = 16;

impl<E: Copy + Default> PackedI8<E> {
    /// Packs `q`'s codes, block-major, for the implementation `V` tiling `r`
    /// query vectors at a time.
    pub(crate) fn of<V: I8Dot<QElem = E>>(q: &Int8Queries, r: usize) -> Self {
        Self::new_padded(
            q,
            V::GROUP,
            V::q_elem,
            V::OFFSET,
            Q_PAD,
            Some((V::LANES, r)),
        )
    }

    /// Packs `q`'s codes in groups of `group` dimensions (converted by `elem`),
    /// padding query tokens to a multiple of `pad`; `offset` fills the
    /// accumulator start values of kernels that offset documents to unsigned; `blocks`
    /// selects the layout (see [`PackedI8::data`]).
    pub(crate) fn new_padded(
        q: &Int8Queries,
        group: usize,
        elem: impl Fn(i8) -> E,
        offset: bool,
        pad: usize,
        blocks: Option<(usize, usize)>,
    ) -> Self {
        let dim = q.dim;
        let n_tokens = q.n_tokens();
        let stride = n_tokens.div_ceil(pad).max(1) * pad;
        let dimp = dim.div_ceil(group) * group;
        let n_groups = dimp / group;
        let mut data = vec![E::default(); n_groups * stride * group];
        let mut acc_start = vec![0i32; stride];
        for (i, row) in q.codes.chunks_exact(dim).enumerate() {
            for (k, &c) in row.iter().enumerate() {
                let (g, j) = (k / group, k % group);
                let at = match blocks {
                    None => g * stride * group + q_pos(i, j, group),
                    Some((lanes, r)) => {
                        let (v, lane) = (i / lanes, i % lanes);
                        let full = n_tokens.div_ceil(lanes) / r * r;
                        let (v0, width) = if v < full { (v / r * r, r) } else { (v, 1) };
                        v0 * n_groups * lanes * group
                            + (g * width + v - v0) * lanes * group
                            + q_pos(lane, j, group)
                    }
                };
                data[at] = elem(c);
            }
            if offset {
                acc_start[i] = -128 * row.iter().map(|&c| c as i32).sum::<i32>();
            }
        }
        PackedI8 {
            n_tokens,
            stride,
            dim,
            dimp,
            group,
            data,
            blocks,
            acc_start,
        }
    }
}

/// Writes `maxes[i] = max_j fl(fl(⟨cq_i, cd_j⟩) · sd_j)` for every packed query token.
///
/// Documents are walked in tiles of `T` tokens, converted into one of two
/// small scratch buffers: while a tile computes, the first query block's
/// group loop also converts one vector of the next tile into the other buffer
/// (when rows need no padding), so the conversions overlap the dot products.
///
/// # Safety
/// `V`'s instructions must be available; `q` must be packed for `V`
/// (`q.group == V::GROUP`); `codes.len() == scales.len() * q.dim`, `scales` non-empty;
/// `maxes.len() >= q.stride`; `T * V::GROUP <= V::CONV`.
#[inline(always)]
pub(crate) unsafe fn doc_maxes<V: I8Dot, const R: usize, const T: usize>(
    q: &PackedI8<V::QElem>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<V::DElem>,
    maxes: &mut [f32],
) {
    let dim = q.dim;
    let dimp = q.dimp;
    let n_tok = scales.len();
    debug_assert!(q.group == V::GROUP && codes.len() == n_tok * dim && n_tok > 0);
    debug_assert!(T * V::GROUP <= V::CONV);
    let n_vec = q.n_tokens.div_ceil(V::LANES);
    debug_assert!(n_vec * V::LANES <= q.stride && maxes.len() >= q.stride);
    maxes[..n_vec * V::LANES].fill(f32::NEG_INFINITY);

    if q.stride * dimp * std::mem::size_of::<V::QElem>() > PIPELINE_QUERY_BYTES {
        return doc_maxes_chunked::<V, R, T>(q, codes, scales, scratch, maxes);
    }
    let tile_len = T * dimp;
    if scratch.len() < 2 * tile_len {
        scratch.resize(2 * tile_len, V::DElem::default());
    }
    // Unpadded rows make a tile one contiguous run of codes, converted a
    // vector per group step; padded rows are converted row by row afterwards.
    let n_conv = if dim == dimp { tile_len / V::CONV } else { 0 };
    let code_ptr = codes.as_ptr();
    let max_ptr = maxes.as_mut_ptr();
    let mut cur = scratch.as_mut_ptr();
    let mut next = cur.add(tile_len);

    let mut t = 0;
    if n_tok >= T {
        convert_rows::<V>(code_ptr, cur, T, dim, dimp);
    }
    while t + T <= n_tok {
        let has_next = t + 2 * T <= n_tok;
        let next_src = code_ptr.add((t + T) * dim);
        let tile_scales = scales.as_ptr().add(t);
        let convert = if has_next { n_conv } else { 0 };
        let mut v = 0;
        let mut first = true;
        while v < n_vec {
            let m = max_ptr.add(v * V::LANES);
            let wide = v + R <= n_vec;
            match (wide, first && convert > 0) {
                (true, true) => {
                    tile::<V, R, T, true>(q, v, cur, tile_scales, next_src, next, convert, m)
                }
                (true, false) => {
                    tile::<V, R, T, false>(q, v, cur, tile_scales, next_src, next, 0, m)
                }
                (false, true) => {
                    tile::<V, 1, T, true>(q, v, cur, tile_scales, next_src, next, convert, m)
                }
                (false, false) => {
                    tile::<V, 1, T, false>(q, v, cur, tile_scales, next_src, next, 0, m)
                }
            }
            first = false;
            v += if wide { R } else { 1 };
        }
        if has_next {
            if n_conv > 0 {
                let done = n_conv * V::CONV;
                V::convert_doc(next_src.add(done), next.add(done), tile_len - done);
            } else {
                convert_rows::<V>(next_src, next, T, dim, dimp);
            }
            std::mem::swap(&mut cur, &mut next);
        }
        t += T;
    }
    // Remaining tokens (fewer than T), one at a time.
    while t < n_tok {
        convert_rows::<V>(code_ptr.add(t * dim), cur, 1, dim, dimp);
        let tile_scales = scales.as_ptr().add(t);
        let mut v = 0;
        while v < n_vec {
            let m = max_ptr.add(v * V::LANES);
            if v + R <= n_vec {
                tile::<V, R, 1, false>(q, v, cur, tile_scales, code_ptr, next, 0, m);
                v += R;
            } else {
                tile::<V, 1, 1, false>(q, v, cur, tile_scales, code_ptr, next, 0, m);
                v += 1;
            }
        }
        t += 1;
    }
}

/// Packed queries larger than this are scored chunk by chunk instead: a
/// tile-by-tile walk would stream the whole query from L3 for every tile.
const PIPELINE_QUERY_BYTES: usize = 128 * 1024;

/// Converted document bytes per chunk for large queries (L2-resident).
const CHUNK_BYTES: usize = 32 * 1024;

/// The large-query walk: convert a chunk of tokens, then pass every query
/// block over it (same integer sums, so bitwise the same scores).
///
/// # Safety
/// As [`doc_maxes`]; `maxes` already holds −inf for every query vector.
#[inline(always)]
unsafe fn doc_maxes_chunked<V: I8Dot, const R: usize, const T: usize>(
    q: &PackedI8<V::QElem>,
    codes: &[i8],
    scales: &[f32],
    scratch: &mut Vec<V::DElem>,
    maxes: &mut [f32],
) {
    let (dim, dimp) = (q.dim, q.dimp);
    let n_tok = scales.len();
    let n_vec = q.n_tokens.div_ceil(V::LANES);
    let chunk = ((CHUNK_BYTES / (dimp * std::mem::size_of::<V::DElem>())) / T * T).max(T);
    if scratch.len() < chunk * dimp {
        scratch.resize(chunk * dimp, V::DElem::default());
    }
    let buf = scratch.as_mut_ptr();
    let max_ptr = maxes.as_mut_ptr();
    let none = std::ptr::null_mut();
    let mut t0 = 0;
    while t0 < n_tok {
        let n = chunk.min(n_tok - t0);
        convert_rows::<V>(codes.as_ptr().add(t0 * dim), buf, n, dim, dimp);
        let mut v = 0;
        while v < n_vec {
            let m = max_ptr.add(v * V::LANES);
            let wide = v + R <= n_vec;
            let mut t = 0;
            while t + T <= n {
                let (cur, s) = (buf.add(t * dimp), scales.as_ptr().add(t0 + t));
                if wide {
                    tile::<V, R, T, false>(q, v, cur, s, codes.as_ptr(), none, 0, m);
                } else {
                    tile::<V, 1, T, false>(q, v, cur, s, codes.as_ptr(), none, 0, m);
                }
                t += T;
            }
            while t < n {
                let (cur, s) = (buf.add(t * dimp), scales.as_ptr().add(t0 + t));
                if wide {
                    tile::<V, R, 1, false>(q, v, cur, s, codes.as_ptr(), none, 0, m);
                } else {
                    tile::<V, 1, 1, false>(q, v, cur, s, codes.as_ptr(), none, 0, m);
                }
                t += 1;
            }
            v += if wide { R } else { 1 };
        }
        t0 += n;
    }
}

/// Converts `rows` rows of `dim` codes into rows of `dimp` elements (zero codes pad).
#[inline(always)]
unsafe fn convert_rows<V: I8Dot>(
    src: *const i8,
    dst: *mut V::DElem,
    rows: usize,
    dim: usize,
    dimp: usize,
) {
    for r in 0..rows {
        V::convert_row(src.add(r * dim), dst.add(r * dimp), dim, dimp);
    }
}

/// Query vectors `v0..v0 + R` against the `T` converted tokens at `doc`: the
/// `R × T` integer dot products in registers, scaled and folded into the
/// running maxima at `maxes`. With `CONVERT`, group step `g < n_conv` also
/// converts `V::CONV` codes of the next tile (`next_src` → `next`).
// Index loops mirror the register tile; iterator chains obscure it for no gain.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<V: I8Dot, const R: usize, const T: usize, const CONVERT: bool>(
    q: &PackedI8<V::QElem>,
    v0: usize,
    doc: *const V::DElem,
    scales: *const f32,
    next_src: *const i8,
    next: *mut V::DElem,
    n_conv: usize,
    maxes: *mut f32,
) {
    let mut acc = [[V::zero(); T]; R];
    if V::OFFSET {
        // Starting at −128 · Σ cq saves a subtraction per accumulator in the
        // epilogue (one of four vector operations there).
        for (r, row) in acc.iter_mut().enumerate() {
            *row = [V::load_i32(q.acc_start.as_ptr().add((v0 + r) * V::LANES)); T];
        }
    }
    let n_groups = q.dimp / V::GROUP;
    let (q_base, q_step) = match q.blocks {
        Some((lanes, r)) => {
            debug_assert!(lanes == V::LANES && (R == r || R == 1));
            let vec_len = V::LANES * V::GROUP;
            (q.data.as_ptr().add(v0 * n_groups * vec_len), R * vec_len)
        }
        None => (
            q.data.as_ptr().add(v0 * V::LANES * V::GROUP),
            q.stride * V::GROUP,
        ),
    };
    let mut rows = [doc; T];
    for (t, row) in rows.iter_mut().enumerate() {
        *row = doc.add(t * q.dimp);
    }
    // Two loops rather than a branch in one keep the tile in registers.
    let split = if CONVERT { n_conv.min(n_groups) } else { 0 };
    for g in 0..split {
        step::<V, R, T>(q_base, q_step, &rows, g, &mut acc);
        V::convert_doc(next_src.add(g * V::CONV), next.add(g * V::CONV), V::CONV);
    }
    for g in split..n_groups {
        step::<V, R, T>(q_base, q_step, &rows, g, &mut acc);
    }
    let zero = <V::F as F32Vec>::zero();
    for r in 0..R {
        let mut running = <V::F as F32Vec>::load(maxes.add(r * V::LANES));
        for t in 0..T {
            let s = <V::F as F32Vec>::splat(*scales.add(t));
            let sim = acc[r][t].to_f32().mul_add(s, zero);
            running = sim.max(running);
        }
        running.store(maxes.add(r * V::LANES));
    }
}

/// Group `g` of the tile: `R` query operands times `T` broadcast document groups.
// (A function, not a closure: closures do not inherit `#[target_feature]`,
// which would leave every intrinsic an out-of-line call.)
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn step<V: I8Dot, const R: usize, const T: usize>(
    q_base: *const V::QElem,
    q_step: usize,
    rows: &[*const V::DElem; T],
    g: usize,
    acc: &mut [[V; T]; R],
) {
    let q_row = q_base.add(g * q_step);
    let mut qv = [V::load_q(q_row); R];
    for (r, slot) in qv.iter_mut().enumerate().skip(1) {
        *slot = V::load_q(q_row.add(r * V::LANES * V::GROUP));
    }
    for t in 0..T {
        let b = V::load_b(rows[t].add(g * V::GROUP));
        for r in 0..R {
            acc[r][t] = acc[r][t].dot(qv[r], b);
        }
    }
}
