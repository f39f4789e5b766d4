//! AVX-512 BF16 kernel of the bf16-screened float32 MaxSim (`float::screen`).
//!
//! Per document: (1) convert it to bf16 pairs in a scratch buffer while
//! computing its largest token norm; (2) per block of query vectors, screen
//! every token with `vdpbf16ps` (lanes are query tokens, each step multiplies
//! one bf16 pair of the document, broadcast, into the pair-interleaved query),
//! tracking per lane the best three values with their tokens and the fourth
//! value; (3) recompute the candidates with the float32 kernel's FMA chain.

use crate::float::screen::{norm_bound, ScreenQuery};
use crate::float::PreparedQueries;
use crate::vector::prefetch_read;
use std::arch::x86_64::*;

/// Query vectors per block: a 32-token query is one block.
const R: usize = 2;
/// Document tokens per tile: `R × T` accumulators plus the block's running
/// state (4 values and 3 indices per vector) fit the 32 ZMM registers.
const T: usize = 6;
/// Lanes per vector.
const LANES: usize = 16;

/// Per-task scratch: one document in bf16 pairs.
#[derive(Default)]
pub(crate) struct Scratch {
    doc_pairs: Vec<u32>,
}

/// Writes `maxes[i] = max_j f_ij` for every query token, bitwise equal to the
/// AVX-512 float32 kernel, and returns `true`; returns `false` without a
/// result when the document is outside the screen's bound (a non-finite value
/// or a token norm above `MAX_NORM`), for the caller to use the float32 kernel.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VL and AVX512_BF16; `doc.len()` must be a
/// non-zero multiple of `q.dim`; `screen` must have been built from `q`;
/// `maxes.len() >= q.stride`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
pub(crate) unsafe fn doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[f32],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let dim = q.dim;
    debug_assert!(dim > 0 && doc.len().is_multiple_of(dim) && maxes.len() >= q.stride);
    let n_tok = doc.len() / dim;
    // Token indices travel in i32 lanes.
    if n_tok > i32::MAX as usize {
        return false;
    }
    let n_vec = q.n_tokens.div_ceil(LANES);
    if n_vec == 0 {
        return true;
    }
    let row_words = screen.n_pairs.next_multiple_of(LANES);
    scratch.doc_pairs.resize(n_tok * row_words, 0);
    let doc_words = Doc {
        pairs: scratch.doc_pairs.as_mut_ptr(),
        row_words,
        n_pairs: screen.n_pairs,
        n_tok,
    };
    // The first block converts the document as it goes, so that streaming it
    // from memory overlaps the screening arithmetic; the bound needs the
    // whole document's norms, so its vectors are resolved after it.
    let mut sums = Converted::new(doc, dim);
    let first = R.min(n_vec);
    let first_state = if first == R {
        screen_block::<R>(screen, q.stride, 0, &doc_words, Some(&mut sums))
    } else {
        let [state] = screen_block::<1>(screen, q.stride, 0, &doc_words, Some(&mut sums));
        [state; R]
    };
    let Some(norms) = sums.norms() else {
        return false;
    };
    for (r, lane_state) in first_state.iter().enumerate().take(first) {
        resolve(q, screen, r, lane_state, norms, doc, &doc_words, maxes);
    }
    let mut v = first;
    while v + R <= n_vec {
        let state = screen_block::<R>(screen, q.stride, v, &doc_words, None);
        for (r, lane_state) in state.iter().enumerate() {
            resolve(q, screen, v + r, lane_state, norms, doc, &doc_words, maxes);
        }
        v += R;
    }
    while v < n_vec {
        let state = screen_block::<1>(screen, q.stride, v, &doc_words, None);
        resolve(q, screen, v, &state[0], norms, doc, &doc_words, maxes);
        v += 1;
    }
    true
}

/// The document in bf16 pairs: token `j`'s pair `p` is `pairs[j * row_words + p]`.
struct Doc {
    pairs: *mut u32,
    row_words: usize,
    n_pairs: usize,
    n_tok: usize,
}

/// Rows ahead of the conversion that are prefetched: the conversion streams
/// the document from memory.
const PREFETCH_ROWS: usize = 2 * T;

/// The float32 document being converted, and what the conversion has seen:
/// the largest float32 sums of squares over its tokens of the values and of
/// their bf16 rounding errors, and whether every value was finite.
struct Converted<'a> {
    doc: &'a [f32],
    dim: usize,
    max_squares: f32,
    max_residual_squares: f32,
    /// `Σ squares · 0`: NaN exactly when some value was not finite.
    finite_check: __m512,
}

impl<'a> Converted<'a> {
    #[inline(always)]
    unsafe fn new(doc: &'a [f32], dim: usize) -> Self {
        Converted {
            doc,
            dim,
            max_squares: 0.0,
            max_residual_squares: 0.0,
            finite_check: _mm512_setzero_ps(),
        }
    }

    /// Bounds on the largest token norm and bf16 rounding-error norm, or
    /// `None` outside the screen's bound.
    #[inline(always)]
    unsafe fn norms(&self) -> Option<(f32, f32)> {
        if _mm512_reduce_add_ps(self.finite_check).is_nan() {
            return None;
        }
        Some((
            norm_bound(self.max_squares, self.dim)?,
            norm_bound(self.max_residual_squares, self.dim)?,
        ))
    }

    /// Converts tokens `t..t + count` to bf16 pairs in `out` (zero-padded to
    /// `out.row_words` per token).
    #[inline(always)]
    unsafe fn convert(&mut self, t: usize, count: usize, out: &Doc) {
        let dim = self.dim;
        let src = self.doc.as_ptr();
        for j in t..t + count {
            let row = src.add(j * dim);
            if j + PREFETCH_ROWS < out.n_tok {
                let ahead = src.add((j + PREFETCH_ROWS) * dim);
                for line in (0..dim).step_by(16) {
                    prefetch_read(ahead.add(line));
                }
            }
            let out_row = out.pairs.add(j * out.row_words) as *mut __m512i;
            let mut squares = _mm512_setzero_ps();
            let mut residual_squares = _mm512_setzero_ps();
            let mut c = 0;
            while c < dim {
                let left = dim - c;
                let low_mask: __mmask16 = if left >= 16 {
                    0xFFFF
                } else {
                    (1u16 << left) - 1
                };
                let high_mask: __mmask16 = if left >= 32 {
                    0xFFFF
                } else if left > 16 {
                    (1u16 << (left - 16)) - 1
                } else {
                    0
                };
                let low = _mm512_maskz_loadu_ps(low_mask, row.add(c));
                let high = _mm512_maskz_loadu_ps(high_mask, row.add(c + 16));
                squares = _mm512_fmadd_ps(low, low, squares);
                squares = _mm512_fmadd_ps(high, high, squares);
                // Lanes 0..16 of the result come from `low`, 16..32 from `high`:
                // 32 consecutive dimensions, i.e. 16 consecutive pairs.
                let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
                _mm512_storeu_si512(out_row.add(c / 32), packed);
                // The rounding errors, exact: bf16 → f32 is a 16-bit shift and the
                // difference of a value and its rounding is representable.
                let low_rounded = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(
                    _mm512_cvtepu16_epi32(_mm512_castsi512_si256(packed)),
                ));
                let high_rounded = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(
                    _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(packed)),
                ));
                let low_error = _mm512_sub_ps(low, low_rounded);
                let high_error = _mm512_sub_ps(high, high_rounded);
                residual_squares = _mm512_fmadd_ps(low_error, low_error, residual_squares);
                residual_squares = _mm512_fmadd_ps(high_error, high_error, residual_squares);
                c += 32;
            }
            self.finite_check = _mm512_fmadd_ps(squares, _mm512_setzero_ps(), self.finite_check);
            let token_squares = _mm512_reduce_add_ps(squares);
            if token_squares > self.max_squares {
                self.max_squares = token_squares;
            }
            let token_residual = _mm512_reduce_add_ps(residual_squares);
            if token_residual > self.max_residual_squares {
                self.max_residual_squares = token_residual;
            }
        }
    }
}

/// One vector's screening result: per lane the best three approximate values
/// (`values[0]` best) at tokens `at[0..3]`, and the fourth value `values[3]`.
#[derive(Clone, Copy)]
struct Tracked {
    values: [__m512; 4],
    at: [__m512i; 3],
}

/// Inserts `value` (token `token` in every lane) into the per-lane top three.
#[inline(always)]
unsafe fn track(state: &mut Tracked, value: __m512, token: __m512i) {
    let [v0, v1, v2, v3] = state.values;
    let above0 = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, v0);
    let above1 = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, v1);
    let above2 = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, v2);
    state.values = [
        _mm512_max_ps(v0, value),
        _mm512_max_ps(v1, _mm512_min_ps(value, v0)),
        _mm512_max_ps(v2, _mm512_min_ps(value, v1)),
        _mm512_max_ps(v3, _mm512_min_ps(value, v2)),
    ];
    let [a0, a1, a2] = state.at;
    // A value above slot s moves slot s down to s + 1 and takes its place.
    let a2 = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(a2, above2, token), above1, a1);
    let a1 = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(a1, above1, token), above0, a0);
    let a0 = _mm512_mask_mov_epi32(a0, above0, token);
    state.at = [a0, a1, a2];
}

/// Screens query vectors `v0..v0 + RR` against every token of the document.
#[inline(always)]
unsafe fn screen_block<const RR: usize>(
    screen: &ScreenQuery,
    stride: usize,
    v0: usize,
    doc: &Doc,
    mut convert: Option<&mut Converted>,
) -> [Tracked; RR] {
    let empty = Tracked {
        values: [_mm512_set1_ps(f32::NEG_INFINITY); 4],
        at: [_mm512_setzero_si512(); 3],
    };
    let mut state = [empty; RR];
    let q_block = screen.pairs.as_ptr().add(v0 * LANES);
    let mut t = 0;
    while t + T <= doc.n_tok {
        if let Some(converted) = convert.as_deref_mut() {
            converted.convert(t, T, doc);
        }
        tile::<RR, T>(q_block, stride, doc, t, &mut state);
        t += T;
    }
    while t < doc.n_tok {
        if let Some(converted) = convert.as_deref_mut() {
            converted.convert(t, 1, doc);
        }
        tile::<RR, 1>(q_block, stride, doc, t, &mut state);
        t += 1;
    }
    state
}

/// Approximate dot products of `RR` query vectors with tokens `t..t + TT`.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn approx_tile<const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    doc: &Doc,
    t: usize,
) -> [[__m512; TT]; RR] {
    let mut acc = [[_mm512_setzero_ps(); TT]; RR];
    let rows = doc.pairs.add(t * doc.row_words);
    for p in 0..doc.n_pairs {
        let q_row = q_block.add(p * stride);
        let mut qv = [_mm512_setzero_si512(); RR];
        for r in 0..RR {
            qv[r] = _mm512_loadu_si512(q_row.add(r * LANES) as *const __m512i);
        }
        for tt in 0..TT {
            let pair = _mm512_set1_epi32(*rows.add(tt * doc.row_words + p) as i32);
            for r in 0..RR {
                acc[r][tt] = _mm512_dpbf16_ps(
                    acc[r][tt],
                    std::mem::transmute::<__m512i, __m512bh>(qv[r]),
                    std::mem::transmute::<__m512i, __m512bh>(pair),
                );
            }
        }
    }
    acc
}

#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn tile<const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    doc: &Doc,
    t: usize,
    state: &mut [Tracked; RR],
) {
    let acc = approx_tile::<RR, TT>(q_block, stride, doc, t);
    for tt in 0..TT {
        let token = _mm512_set1_epi32((t + tt) as i32);
        for r in 0..RR {
            track(&mut state[r], acc[r][tt], token);
        }
    }
}

/// Turns vector `v`'s screening result into exact float32 maxima in `maxes`.
/// `norms` bounds the document's token norms and bf16 rounding-error norms.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn resolve(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    v: usize,
    state: &Tracked,
    (norm, residual_norm): (f32, f32),
    doc: &[f32],
    doc_words: &Doc,
    maxes: &mut [f32],
) {
    let lane0 = v * LANES;
    let screened: __mmask16 = screen.screened[v];
    let zero_lanes: __mmask16 = screen.zero[v];
    let eps = _mm512_fmadd_ps(
        _mm512_loadu_ps(screen.eps_doc.as_ptr().add(lane0)),
        _mm512_set1_ps(norm),
        _mm512_fmadd_ps(
            _mm512_loadu_ps(screen.eps_residual.as_ptr().add(lane0)),
            _mm512_set1_ps(residual_norm),
            _mm512_set1_ps(screen.eps_abs),
        ),
    );
    let best = state.values[0];
    // threshold = best − 2ε(1 + 2⁻²⁰) − |best|·2⁻²²: the margins absorb the
    // float32 rounding of this very expression.
    let margin = _mm512_fmadd_ps(
        _mm512_abs_ps(best),
        _mm512_set1_ps(1.0 / 4_194_304.0),
        _mm512_mul_ps(eps, _mm512_set1_ps(2.0 * (1.0 + 1.0 / 1_048_576.0))),
    );
    let threshold = _mm512_sub_ps(best, margin);
    let close1 = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(state.values[1], threshold) & screened;
    let close2 = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(state.values[2], threshold) & screened;
    let close3 = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(state.values[3], threshold) & screened;
    // Lanes whose candidates are all tracked: the best token, then the
    // second and third where they are close enough.
    let tracked = screened & !close3;
    let mut result = exact_at(q, doc, lane0, state.at[0], tracked);
    for (slot, lanes) in [(1, close1 & tracked), (2, close2 & tracked)] {
        if lanes != 0 {
            let other = exact_at(q, doc, lane0, state.at[slot], lanes);
            result = _mm512_mask_max_ps(result, lanes, other, result);
        }
    }
    result = _mm512_mask_mov_ps(result, zero_lanes, _mm512_setzero_ps());
    _mm512_storeu_ps(maxes.as_mut_ptr().add(lane0), result);
    if close3 != 0 {
        rescan(q, screen, v, threshold, close3, doc, doc_words, maxes);
    }
}

/// Float32 dot products of the 16 query tokens from `lane0` with the
/// document token each lane names in `tokens` (lanes outside `mask` may hold
/// anything and give unspecified finite values), by the float32 kernel's
/// arithmetic: one FMA chain over `k` in order, starting from 0.
///
/// The 16 rows are loaded 16 dimensions at a time and transposed in
/// registers so that one vector holds dimension `k` of every lane's row
/// (a hardware gather costs about 20 cycles per vector on Zen 4; this, 5).
#[inline(always)]
unsafe fn exact_at(
    q: &PreparedQueries,
    doc: &[f32],
    lane0: usize,
    tokens: __m512i,
    mask: __mmask16,
) -> __m512 {
    let dim = q.dim;
    let mut token_of = [0u32; LANES];
    _mm512_storeu_si512(token_of.as_mut_ptr() as *mut __m512i, tokens);
    // Unselected lanes read row 0, which every document has.
    let mut rows = [doc.as_ptr(); LANES];
    for (lane, row) in rows.iter_mut().enumerate() {
        if mask & (1 << lane) != 0 {
            *row = doc.as_ptr().add(token_of[lane] as usize * dim);
        }
    }
    let q_column = q.transposed.as_ptr().add(lane0);
    let mut acc = _mm512_setzero_ps();
    let mut k0 = 0;
    // (Plain loops, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    while k0 < dim {
        let width = (dim - k0).min(LANES);
        let load_mask: __mmask16 = if width == LANES {
            0xFFFF
        } else {
            (1u16 << width) - 1
        };
        let mut chunk = [_mm512_setzero_ps(); LANES];
        for (lane, slot) in chunk.iter_mut().enumerate() {
            *slot = _mm512_maskz_loadu_ps(load_mask, rows[lane].add(k0));
        }
        let columns = transpose16(chunk);
        for (kk, column) in columns.iter().enumerate().take(width) {
            let q_k = _mm512_loadu_ps(q_column.add((k0 + kk) * q.stride));
            acc = _mm512_fmadd_ps(q_k, *column, acc);
        }
        k0 += LANES;
    }
    acc
}

/// Transposes a 16 × 16 block: `out[k]` lane `l` is `rows[l]` lane `k`.
#[inline(always)]
unsafe fn transpose16(rows: [__m512; LANES]) -> [__m512; LANES] {
    // Within each 128-bit quarter Q (elements 4Q..4Q+4 of a row):
    // pairs of rows interleaved, then groups of four.
    let mut pairs = [_mm512_setzero_ps(); LANES];
    for i in 0..LANES / 2 {
        let (a, b) = (rows[2 * i], rows[2 * i + 1]);
        pairs[2 * i] = _mm512_unpacklo_ps(a, b);
        pairs[2 * i + 1] = _mm512_unpackhi_ps(a, b);
    }
    // quads[4g + m], quarter Q: element 4Q + m of rows 4g..4g+4.
    let mut quads = [_mm512_setzero_pd(); LANES];
    for g in 0..4 {
        let (lo_a, hi_a) = (
            _mm512_castps_pd(pairs[4 * g]),
            _mm512_castps_pd(pairs[4 * g + 1]),
        );
        let (lo_b, hi_b) = (
            _mm512_castps_pd(pairs[4 * g + 2]),
            _mm512_castps_pd(pairs[4 * g + 3]),
        );
        quads[4 * g] = _mm512_unpacklo_pd(lo_a, lo_b);
        quads[4 * g + 1] = _mm512_unpackhi_pd(lo_a, lo_b);
        quads[4 * g + 2] = _mm512_unpacklo_pd(hi_a, hi_b);
        quads[4 * g + 3] = _mm512_unpackhi_pd(hi_a, hi_b);
    }
    // Element 4Q + m of all 16 rows: quarter Q of quads[m], quads[4 + m],
    // quads[8 + m], quads[12 + m], gathered by a 4 × 4 transpose of quarters.
    let mut out = [_mm512_setzero_ps(); LANES];
    for m in 0..4 {
        let (b0, b1, b2, b3) = (
            _mm512_castpd_ps(quads[m]),
            _mm512_castpd_ps(quads[4 + m]),
            _mm512_castpd_ps(quads[8 + m]),
            _mm512_castpd_ps(quads[12 + m]),
        );
        let c0 = _mm512_shuffle_f32x4::<0x44>(b0, b1);
        let c1 = _mm512_shuffle_f32x4::<0xEE>(b0, b1);
        let c2 = _mm512_shuffle_f32x4::<0x44>(b2, b3);
        let c3 = _mm512_shuffle_f32x4::<0xEE>(b2, b3);
        out[m] = _mm512_shuffle_f32x4::<0x88>(c0, c2);
        out[4 + m] = _mm512_shuffle_f32x4::<0xDD>(c0, c2);
        out[8 + m] = _mm512_shuffle_f32x4::<0x88>(c1, c3);
        out[12 + m] = _mm512_shuffle_f32x4::<0xDD>(c1, c3);
    }
    out
}

/// The rare lanes with four or more candidates: screen vector `v` again
/// and recompute, in float32, every token at or above its lane's threshold.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
unsafe fn rescan(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    v: usize,
    threshold: __m512,
    lanes: __mmask16,
    doc: &[f32],
    doc_words: &Doc,
    maxes: &mut [f32],
) {
    let lane0 = v * LANES;
    let q_vec = screen.pairs.as_ptr().add(lane0);
    let mut best = [f32::NEG_INFINITY; LANES];
    // Whole tiles keep `2 T` independent accumulators in flight; one token at
    // a time would wait on each `vdpbf16ps`'s latency.
    let mut t = 0;
    while t < doc_words.n_tok {
        let (approx, count) = if t + 2 * T <= doc_words.n_tok {
            let [tile] = approx_tile::<1, { 2 * T }>(q_vec, q.stride, doc_words, t);
            (tile, 2 * T)
        } else {
            let [[one]] = approx_tile::<1, 1>(q_vec, q.stride, doc_words, t);
            let mut tile = [_mm512_setzero_ps(); 2 * T];
            tile[0] = one;
            (tile, 1)
        };
        for (tt, &value) in approx.iter().enumerate().take(count) {
            let mut hits = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(value, threshold) & lanes;
            while hits != 0 {
                let lane = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let row = &doc[(t + tt) * q.dim..(t + tt + 1) * q.dim];
                let exact = exact_scalar(q, lane0 + lane, row);
                if exact > best[lane] {
                    best[lane] = exact;
                }
            }
        }
        t += count;
    }
    let mut lanes_left = lanes;
    while lanes_left != 0 {
        let lane = lanes_left.trailing_zeros() as usize;
        lanes_left &= lanes_left - 1;
        maxes[lane0 + lane] = best[lane];
    }
}

/// One query token against one document token, the float32 kernel's way.
#[inline(always)]
fn exact_scalar(q: &PreparedQueries, token: usize, row: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (k, &value) in row.iter().enumerate() {
        acc = q.transposed[k * q.stride + token].mul_add(value, acc);
    }
    acc
}
