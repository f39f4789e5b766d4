//! AVX-512 BF16 kernel of the bf16-screened MaxSim (`float::screen`), for
//! float32, float16 and bfloat16 documents.
//!
//! Per document: (1) obtain it as bf16 pairs — float32 and float16 documents
//! are converted into a scratch buffer while the first query block screens
//! them, bfloat16 documents are read in place — and bound its token norms;
//! (2) per block of query vectors, screen every token with `vdpbf16ps` (lanes
//! are query tokens, each step multiplies one bf16 pair of the document,
//! broadcast, into the pair-interleaved query), tracking per lane the
//! largest keys (value and token packed in 32 bits, see `Tracked`); (3)
//! recompute the candidates with the float32 kernel's FMA chain over the
//! document's exact (widened) values.

use crate::float::screen::{flushed_residual_bound, norm_bound, ScreenQuery};
use crate::float::PreparedQueries;
use crate::vector::prefetch_lines;
use std::arch::x86_64::*;

/// Query vectors per block: a 32-token query is one block. The screen
/// query must be laid out for it (`ScreenQuery::new(q, R)`).
pub(crate) const R: usize = 2;
/// Document tokens per tile of `R` vectors: `R × T` accumulators plus the
/// block's running state (4 values and 3 indices per vector) fit the 32 ZMM
/// registers, and 8 independent `vdpbf16ps` chains cover its latency (6
/// cycles at one per cycle on Zen 4).
const T: usize = 4;
/// Document tokens per tile of a single vector: as many chains again.
const T1: usize = 2 * T;
/// Lanes per vector.
const LANES: usize = 16;

/// Per-task scratch: one document in bf16 pairs.
#[derive(Default)]
pub(crate) struct Scratch {
    doc_pairs: Vec<u32>,
}

/// A document's storage format, as the screen sees it.
///
/// # Safety
/// Implementations read only within the document they were built from, given
/// the callers' bounds (`token < n_tok`, `k0 + popcount(mask) <= dim`).
pub(crate) unsafe trait Source {
    /// One stored value.
    type Elem: Wide;
    /// The document, `n_tok × dim` values, row-major.
    fn values(&self) -> &[Self::Elem];
    /// The bf16 pairs to screen, in `scratch` when converted.
    fn pairs(&self, scratch: &mut Scratch, n_pairs: usize) -> Doc;
    /// Called for tokens `t..t + count`, in order, before the first block
    /// screens them: converts them into `out` and records their norms.
    unsafe fn visit(&mut self, t: usize, count: usize, out: &Doc);
    /// Bounds on the largest token norm and on the largest norm of a token's
    /// bf16 rounding error (as `vdpbf16ps` reads it), or `None` outside the
    /// screen's bound.
    unsafe fn norms(&self) -> Option<(f32, f32)>;
}

/// Writes `maxes[i] = max_j f_ij` for every query token, bitwise equal to the
/// AVX-512 float32 kernel on the document's (widened) values, and returns
/// `true`; returns `false` without a result when the document is outside the
/// screen's bound (a non-finite value, a token norm above `MAX_NORM`, or more
/// tokens than [`MAX_INDEX_BITS`] can index), for the caller to use the plain
/// kernel.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VL and AVX512_BF16; the document must be
/// a non-zero whole number of `q.dim`-wide rows; `screen` must have been built
/// from `q`; `maxes.len() >= q.stride`.
#[inline(always)]
unsafe fn doc_maxes<S: Source>(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    mut source: S,
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    let dim = q.dim;
    let doc = source.values();
    debug_assert!(dim > 0 && doc.len().is_multiple_of(dim) && maxes.len() >= q.stride);
    let n_tok = doc.len() / dim;
    // Token indices travel in the low bits of the keys.
    if index_bits(n_tok) > MAX_INDEX_BITS {
        return false;
    }
    let n_vec = q.n_tokens.div_ceil(LANES);
    if n_vec == 0 {
        return true;
    }
    let doc_words = source.pairs(scratch, screen.n_pairs);
    // The first block visits the document as it goes, so that streaming it
    // from memory overlaps the screening arithmetic; the bound needs the
    // whole document's norms, so its vectors are resolved after it.
    let first = R.min(n_vec);
    let first_state = if first == R {
        screen_block::<R, T, S>(screen, 0, &doc_words, Some(&mut source))
    } else {
        let [state] = screen_block::<1, T1, S>(screen, 0, &doc_words, Some(&mut source));
        [state; R]
    };
    let Some(norms) = source.norms() else {
        return false;
    };
    let doc = source.values();
    resolve::<S>(
        q,
        screen,
        0,
        &first_state[..first],
        norms,
        doc,
        &doc_words,
        maxes,
    );
    let mut v = first;
    while v + R <= n_vec {
        let state = screen_block::<R, T, S>(screen, v, &doc_words, None);
        resolve::<S>(q, screen, v, &state, norms, doc, &doc_words, maxes);
        v += R;
    }
    while v < n_vec {
        let state = screen_block::<1, T1, S>(screen, v, &doc_words, None);
        resolve::<S>(q, screen, v, &state, norms, doc, &doc_words, maxes);
        v += 1;
    }
    true
}

/// [`doc_maxes`] for a float32 document.
///
/// # Safety
/// As [`doc_maxes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
pub(crate) unsafe fn f32_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[f32],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    doc_maxes(q, screen, Converted::new(doc, q.dim), scratch, maxes)
}

/// [`doc_maxes`] for a float16 document (bits).
///
/// # Safety
/// As [`doc_maxes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
pub(crate) unsafe fn f16_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[u16],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    doc_maxes(
        q,
        screen,
        Converted::new(bits_as::<F16Bits>(doc), q.dim),
        scratch,
        maxes,
    )
}

/// [`doc_maxes`] for a bfloat16 document (bits), read in place.
///
/// # Safety
/// As [`doc_maxes`]; additionally `q.dim` must be even (the pairs of a token
/// must not straddle two tokens).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
pub(crate) unsafe fn bf16_doc_maxes(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    doc: &[u16],
    scratch: &mut Scratch,
    maxes: &mut [f32],
) -> bool {
    debug_assert!(q.dim.is_multiple_of(2));
    doc_maxes(q, screen, InPlace::new(bits_as(doc), q.dim), scratch, maxes)
}

/// The document in bf16 pairs: token `j`'s pair `p` is the (possibly
/// unaligned) word at `pairs + j * row_words + p`.
pub(crate) struct Doc {
    pairs: *const u32,
    row_words: usize,
    n_pairs: usize,
    n_tok: usize,
    /// [`index_bits`] of `n_tok`.
    index_bits: u32,
}

impl Doc {
    /// The mask of a key's value bits (all but the index bits).
    #[inline(always)]
    unsafe fn high(&self) -> __m512i {
        _mm512_set1_epi32((u32::MAX << self.index_bits) as i32)
    }

    /// Pair `p` of token `j` (`j < n_tok`, `p < row_words`).
    #[inline(always)]
    unsafe fn word(&self, j: usize, p: usize) -> u32 {
        self.pairs.add(j * self.row_words + p).read_unaligned()
    }
}

/// Rows ahead of the conversion that are prefetched: the first block streams
/// the document from memory.
const PREFETCH_ROWS: usize = 2 * T;

/// Prefetches row `j + PREFETCH_ROWS` of the rows of `dim` values at `src`,
/// also past the document's last row (`n_tok`): in packed and fixed layouts
/// the next document follows, and its first rows would otherwise be demand
/// misses. A prefetch never faults, and the address is only formed with
/// wrapping arithmetic, so it need not be in the document.
#[inline(always)]
fn prefetch_ahead<E>(src: *const E, j: usize, dim: usize) {
    let ahead = src.wrapping_add((j + PREFETCH_ROWS) * dim) as *const u8;
    prefetch_lines(ahead, dim * size_of::<E>());
}

/// [`norm_bound`] of a document's largest sum of squares, or `None` when
/// `finite_check` (`Σ squares · 0` over its tokens) says a value was not
/// finite.
#[inline(always)]
unsafe fn finite_norm_bound(finite_check: __m512, max_squares: f32, dim: usize) -> Option<f32> {
    if _mm512_reduce_add_ps(finite_check).is_nan() {
        return None;
    }
    norm_bound(max_squares, dim)
}

/// A stored value the screen converts to bf16: float32, or float16 bits.
pub(crate) trait Wide: Copy {
    /// 16 values at `src` (lanes outside `mask` not read, and 0), exactly in f32.
    ///
    /// # Safety
    /// The CPU must support AVX-512F (the callers are compiled with it); the
    /// lanes of `mask` at `src` must be readable (masked-off lanes never fault).
    unsafe fn load16(src: *const Self, mask: __mmask16) -> __m512;
    /// One value, exactly in f32.
    fn widen(self) -> f32;
}

impl Wide for f32 {
    #[inline(always)]
    unsafe fn load16(src: *const f32, mask: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(mask, src)
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

/// The bits of a float16 value.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct F16Bits(u16);

/// The bits of a bfloat16 value.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Bf16Bits(u16);

/// 16-bit values viewed as `T`, one of the transparent `u16` wrappers above.
fn bits_as<T: Wide>(bits: &[u16]) -> &[T] {
    debug_assert_eq!(size_of::<T>(), 2);
    // SAFETY: called only with `F16Bits` and `Bf16Bits`, transparent `u16`s,
    // so the layout, length and alignment of the slice are unchanged.
    unsafe { std::slice::from_raw_parts(bits.as_ptr() as *const T, bits.len()) }
}

impl Wide for F16Bits {
    #[inline(always)]
    unsafe fn load16(src: *const F16Bits, mask: __mmask16) -> __m512 {
        // `vcvtph2ps`, as the float16 kernel widens (exact).
        _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src as *const i16))
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        crate::reduced::half::f16_bits_to_f32(self.0)
    }
}

impl Wide for Bf16Bits {
    #[inline(always)]
    unsafe fn load16(src: *const Bf16Bits, mask: __mmask16) -> __m512 {
        // Zero-extend and shift, as the bfloat16 kernel widens (exact).
        let bits = _mm256_maskz_loadu_epi16(mask, src as *const i16);
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        crate::reduced::half::bf16_bits_to_f32(self.0)
    }
}

/// A float32 or float16 document being converted to bf16, and what the
/// conversion has seen: the largest float32 sums of squares over its tokens of
/// the values and of their bf16 rounding errors (lane maxima in `max_sums`),
/// and whether every value was finite.
struct Converted<'a, E: Wide> {
    doc: &'a [E],
    dim: usize,
    /// Running lane maxima of [`sum_lanes8`] results: even lanes sums of
    /// squares, odd lanes sums of squared rounding errors.
    max_sums: __m512,
    /// `Σ squares · 0`: NaN exactly when some value was not finite.
    finite_check: __m512,
}

impl<'a, E: Wide> Converted<'a, E> {
    #[inline(always)]
    unsafe fn new(doc: &'a [E], dim: usize) -> Self {
        Converted {
            doc,
            dim,
            max_sums: _mm512_setzero_ps(),
            finite_check: _mm512_setzero_ps(),
        }
    }
    /// Converts token `j` to bf16 pairs in `out` (zero-padded to
    /// `out.row_words`) and returns its lane sums of squares and of squared
    /// rounding errors.
    #[inline(always)]
    unsafe fn convert_token(&self, j: usize, out: &Doc) -> (__m512, __m512) {
        let dim = self.dim;
        let src = self.doc.as_ptr();
        let row = src.add(j * dim);
        prefetch_ahead(src, j, dim);
        // The scratch rows belong to this call (`pairs` sized them).
        let out_row = out.pairs.add(j * out.row_words) as *mut __m512i;
        let mut squares = _mm512_setzero_ps();
        let mut residual_squares = _mm512_setzero_ps();
        let mut c = 0;
        while c < dim {
            let left = dim - c;
            let low = E::load16(row.add(c), first_lanes(left));
            let high = E::load16(row.add(c + 16), first_lanes(left.saturating_sub(16)));
            squares = _mm512_fmadd_ps(low, low, squares);
            squares = _mm512_fmadd_ps(high, high, squares);
            // Lanes 0..16 of the result come from `low`, 16..32 from `high`:
            // 32 consecutive dimensions, i.e. 16 consecutive pairs.
            let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            _mm512_storeu_si512(out_row.add(c / 32), packed);
            // The rounding errors, exact: bf16 → f32 is a 16-bit shift and the
            // difference of a value and its rounding is representable.
            let low_rounded = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                _mm512_castsi512_si256(packed),
            )));
            let high_rounded = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                _mm512_extracti64x4_epi64::<1>(packed),
            )));
            let low_error = _mm512_sub_ps(low, low_rounded);
            let high_error = _mm512_sub_ps(high, high_rounded);
            residual_squares = _mm512_fmadd_ps(low_error, low_error, residual_squares);
            residual_squares = _mm512_fmadd_ps(high_error, high_error, residual_squares);
            c += 32;
        }
        (squares, residual_squares)
    }
}

/// The horizontal sums of eight vectors, `x[0..4]` and `x[4..8]` interleaved:
/// lanes `4L` and `4L + 2` hold the sum of `x[L]`, lanes `4L + 1` and `4L + 3`
/// that of `x[4 + L]` (any summation order; the callers' bounds allow it).
#[inline(always)]
unsafe fn sum_lanes8(x: [__m512; 8]) -> __m512 {
    // Pairs of vectors: [p.q0 + p.q2, p.q1 + p.q3, r.q0 + r.q2, r.q1 + r.q3]
    // (q: 128-bit quarters).
    let mut halves = [_mm512_setzero_ps(); 4];
    for (i, half) in halves.iter_mut().enumerate() {
        let (p, r) = (x[2 * i], x[2 * i + 1]);
        *half = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(p, r),
            _mm512_shuffle_f32x4::<0xEE>(p, r),
        );
    }
    // Quarter L of `first` holds four partial sums of x[L], of `second` of x[4 + L].
    let first = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(halves[0], halves[1]),
        _mm512_shuffle_f32x4::<0xDD>(halves[0], halves[1]),
    );
    let second = _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(halves[2], halves[3]),
        _mm512_shuffle_f32x4::<0xDD>(halves[2], halves[3]),
    );
    let pairs = _mm512_add_ps(
        _mm512_unpacklo_ps(first, second),
        _mm512_unpackhi_ps(first, second),
    );
    _mm512_add_ps(pairs, _mm512_permute_ps::<0x4E>(pairs))
}

/// The mask of the first `n` of 16 lanes (all for `n >= 16`, none for 0).
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        (1u16 << n) - 1
    }
}

// SAFETY: reads only `doc` (rows below `n_tok`, values below `dim` by the
// masks) and writes only the scratch rows it sized.
unsafe impl<E: Wide> Source for Converted<'_, E> {
    type Elem = E;

    fn values(&self) -> &[E] {
        self.doc
    }

    fn pairs(&self, scratch: &mut Scratch, n_pairs: usize) -> Doc {
        let row_words = n_pairs.next_multiple_of(LANES);
        let n_tok = self.doc.len() / self.dim;
        // Grow only: conversion writes every word of the rows it uses, so
        // the zeros are never read, and filling them on each longer document
        // (a memset per document in variable-length lists) was wasted work.
        let words = n_tok * row_words;
        if scratch.doc_pairs.len() < words {
            scratch.doc_pairs.resize(words, 0);
        }
        Doc {
            pairs: scratch.doc_pairs.as_mut_ptr(),
            row_words,
            n_pairs,
            n_tok,
            index_bits: index_bits(n_tok),
        }
    }

    #[inline(always)]
    unsafe fn norms(&self) -> Option<(f32, f32)> {
        let mut lanes = [0f32; 16];
        _mm512_storeu_ps(lanes.as_mut_ptr(), self.max_sums);
        let (mut max_squares, mut max_residual_squares) = (0f32, 0f32);
        for pair in lanes.chunks_exact(2) {
            max_squares = max_squares.max(pair[0]);
            max_residual_squares = max_residual_squares.max(pair[1]);
        }
        Some((
            finite_norm_bound(self.finite_check, max_squares, self.dim)?,
            norm_bound(max_residual_squares, self.dim)?,
        ))
    }

    /// Converts tokens `t..t + count` to bf16 pairs in `out` (zero-padded to
    /// `out.row_words` per token). Four tokens at a time, their eight sums
    /// (squares and rounding errors) are reduced together, by one shuffle
    /// tree instead of eight horizontal sums (a last group of fewer tokens
    /// adds zero sums).
    #[inline(always)]
    unsafe fn visit(&mut self, t: usize, count: usize, out: &Doc) {
        let end = t + count;
        let mut j = t;
        while j < end {
            let mut sums = [_mm512_setzero_ps(); 8];
            for u in 0..(end - j).min(4) {
                (sums[u], sums[4 + u]) = self.convert_token(j + u, out);
            }
            let token_sums = sum_lanes8(sums);
            self.finite_check = _mm512_fmadd_ps(token_sums, _mm512_setzero_ps(), self.finite_check);
            self.max_sums = _mm512_max_ps(self.max_sums, token_sums);
            j += 4;
        }
    }
}

/// A bfloat16 document (bits, even `dim`), screened in place: its bf16 pairs
/// are its own words. Visiting only bounds the token norms.
struct InPlace<'a> {
    doc: &'a [Bf16Bits],
    dim: usize,
    /// Running lane maxima of [`sum_lanes8`] results (token sums of squares).
    max_sums: __m512,
    finite_check: __m512,
}

impl<'a> InPlace<'a> {
    #[inline(always)]
    unsafe fn new(doc: &'a [Bf16Bits], dim: usize) -> Self {
        InPlace {
            doc,
            dim,
            max_sums: _mm512_setzero_ps(),
            finite_check: _mm512_setzero_ps(),
        }
    }
}

// SAFETY: reads only `doc`: rows below `n_tok`, values below `dim` by the
// masks; the pair words of a row are within it because `dim` is even.
unsafe impl Source for InPlace<'_> {
    type Elem = Bf16Bits;

    fn values(&self) -> &[Bf16Bits] {
        self.doc
    }

    fn pairs(&self, _scratch: &mut Scratch, n_pairs: usize) -> Doc {
        debug_assert_eq!(2 * n_pairs, self.dim);
        let n_tok = self.doc.len() / self.dim;
        Doc {
            pairs: self.doc.as_ptr() as *const u32,
            row_words: n_pairs,
            n_pairs,
            n_tok,
            index_bits: index_bits(n_tok),
        }
    }

    #[inline(always)]
    unsafe fn norms(&self) -> Option<(f32, f32)> {
        // `vdpbf16ps` reads bf16 subnormals as zero: that difference is the
        // only rounding error.
        let max_squares = _mm512_reduce_max_ps(self.max_sums);
        Some((
            finite_norm_bound(self.finite_check, max_squares, self.dim)?,
            flushed_residual_bound(self.dim),
        ))
    }

    /// Bounds the norms of tokens `t..t + count`: `vdpbf16ps` of each row with
    /// itself forms the squares exactly and sums them in float32 (with
    /// products below the smallest normal flushed), which [`norm_bound`]
    /// accounts for. Eight tokens at a time, their sums are reduced together
    /// by one shuffle tree (a last group of fewer tokens adds zero sums): a
    /// horizontal sum per token was about 8 of the 13 vector operations this
    /// spends per token, beside the screen's 64 `vdpbf16ps` per query vector.
    #[inline(always)]
    unsafe fn visit(&mut self, t: usize, count: usize, _out: &Doc) {
        let dim = self.dim;
        let src = self.doc.as_ptr();
        let end = t + count;
        let mut j = t;
        while j < end {
            let mut sums = [_mm512_setzero_ps(); 8];
            for (u, squares) in sums.iter_mut().enumerate().take(end - j) {
                let row = src.add((j + u) * dim);
                prefetch_ahead(src, j + u, dim);
                let mut c = 0;
                while c < dim {
                    let left = dim - c;
                    let mask: __mmask32 = if left >= 32 {
                        u32::MAX
                    } else {
                        (1u32 << left) - 1
                    };
                    let values: __m512bh = std::mem::transmute(_mm512_maskz_loadu_epi16(
                        mask,
                        row.add(c) as *const i16,
                    ));
                    *squares = _mm512_dpbf16_ps(*squares, values, values);
                    c += 32;
                }
            }
            let token_sums = sum_lanes8(sums);
            self.finite_check = _mm512_fmadd_ps(token_sums, _mm512_setzero_ps(), self.finite_check);
            self.max_sums = _mm512_max_ps(self.max_sums, token_sums);
            j += 8;
        }
    }
}

/// Keys tracked per lane: the candidates refined from them (all but the
/// last), and the last, which says whether more candidates exist (the lane
/// is then screened again). Five rather than four: on random data about 10 %
/// of vectors had a lane with four close candidates, and each rescan costs a
/// vector's whole screen; a fifth key costs two operations per token.
const KEYS: usize = 5;

/// One vector's screening result: per lane the [`KEYS`] largest keys
/// (`keys[0]` largest) over the document's tokens.
///
/// A key packs an approximate value and its token: the value's bits made
/// order-preserving as an unsigned integer, with the low `index_bits` bits
/// replaced by the token index. Tracking keys takes unsigned min/max only —
/// no compares, masks or blends to carry indices along, 10 operations per
/// token instead of 15. The price is a truncated value: a key's decoded value
/// is at most `2^(index_bits − 23)·|a| + 2^(index_bits − 149)` below the
/// approximate value `a` ([`resolve`] widens its window by that).
#[derive(Clone, Copy)]
struct Tracked {
    keys: [__m512i; KEYS],
}

/// Token indices above this do not fit the keys' low bits with a useful
/// value left; longer documents take the plain kernel.
const MAX_INDEX_BITS: u32 = 16;

/// The low bits of a key that hold the token index, for `n_tok` tokens.
fn index_bits(n_tok: usize) -> u32 {
    usize::BITS - n_tok.saturating_sub(1).leading_zeros()
}

/// `f32` bits → unsigned integers in the same order as the values (finite
/// or infinite): negative values have every bit flipped, others the sign
/// bit set.
#[inline(always)]
unsafe fn sortable(value: __m512) -> __m512i {
    let bits = _mm512_castps_si512(value);
    let sign = _mm512_srai_epi32::<31>(bits);
    // bits ^ (sign | 0x8000_0000)
    _mm512_ternarylogic_epi32::<0x1E>(bits, sign, _mm512_set1_epi32(i32::MIN))
}

/// The value a key stands for: its high bits, as [`sortable`] made them, back
/// to `f32` (the low bits read as zeros of the sortable form).
#[inline(always)]
unsafe fn decode(key: __m512i, high: __m512i) -> __m512 {
    let truncated = _mm512_and_si512(key, high);
    let sign = _mm512_srai_epi32::<31>(truncated);
    // truncated ^ (!sign | 0x8000_0000): set top bit → clear it; else flip all.
    _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0x4B>(
        truncated,
        sign,
        _mm512_set1_epi32(i32::MIN),
    ))
}

/// Inserts `value` at token `token` (in every lane, below `2^index_bits`)
/// into the per-lane [`KEYS`] largest keys; `high` masks off the index bits.
#[inline(always)]
unsafe fn track(state: &mut Tracked, value: __m512, token: __m512i, high: __m512i) {
    // (sortable & high) | token
    let key = _mm512_ternarylogic_epi32::<0xEA>(sortable(value), high, token);
    // Slot s takes the larger of itself and min(key, old slot s − 1): the
    // key moves into place and every smaller key moves down one.
    let old = state.keys;
    state.keys[0] = _mm512_max_epu32(old[0], key);
    for slot in 1..KEYS {
        state.keys[slot] = _mm512_max_epu32(old[slot], _mm512_min_epu32(key, old[slot - 1]));
    }
}

/// Screens query vectors `v0..v0 + RR` against every token of the document.
#[inline(always)]
unsafe fn screen_block<const RR: usize, const TT: usize, S: Source>(
    screen: &ScreenQuery,
    v0: usize,
    doc: &Doc,
    mut visit: Option<&mut S>,
) -> [Tracked; RR] {
    // Below every key of a finite or infinite value (the smallest,
    // sortable(−inf), is 0x007F_FFFF with at most 16 index bits cleared).
    let empty = Tracked {
        keys: [_mm512_setzero_si512(); KEYS],
    };
    let mut state = [empty; RR];
    let (base, stride) = screen.vector_pairs(v0);
    debug_assert_eq!(stride, RR * LANES);
    let q_block = screen.pairs.as_ptr().add(base);
    let mut t = 0;
    while t + TT <= doc.n_tok {
        if let Some(source) = visit.as_deref_mut() {
            source.visit(t, TT, doc);
        }
        tile::<RR, TT>(q_block, stride, doc, t, &mut state);
        t += TT;
    }
    while t < doc.n_tok {
        if let Some(source) = visit.as_deref_mut() {
            source.visit(t, 1, doc);
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
    for p in 0..doc.n_pairs {
        let q_row = q_block.add(p * stride);
        let mut qv = [_mm512_setzero_si512(); RR];
        for r in 0..RR {
            qv[r] = _mm512_loadu_si512(q_row.add(r * LANES) as *const __m512i);
        }
        for tt in 0..TT {
            let pair = _mm512_set1_epi32(doc.word(t + tt, p) as i32);
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
    let high = doc.high();
    for tt in 0..TT {
        let token = _mm512_set1_epi32((t + tt) as i32);
        for r in 0..RR {
            track(&mut state[r], acc[r][tt], token, high);
        }
    }
}

/// What [`resolve`] refines for one vector: per lane, the tokens whose float32
/// values may be the maximum.
struct Candidates {
    /// Query lanes from `lane0` (the vector's first query token).
    lane0: usize,
    /// Per slot, the token each lane names (slot 0: the best approximate value).
    tokens: [__m512i; KEYS - 1],
    /// Per slot, the lanes whose slot is a candidate (slot 0: every tracked lane).
    lanes: [__mmask16; KEYS - 1],
    /// Lanes that may have more candidates than the keys hold: screened again.
    more: __mmask16,
    /// The rescan's threshold for those lanes.
    threshold: __m512,
    /// Real query tokens that are all zero (maximum exactly +0).
    zero_lanes: __mmask16,
}

/// Vector `v`'s candidates from its screening result. `norms` bounds the
/// document's token norms and bf16 rounding-error norms.
#[inline(always)]
unsafe fn candidates(
    screen: &ScreenQuery,
    v: usize,
    state: &Tracked,
    (norm, residual_norm): (f32, f32),
    doc_words: &Doc,
) -> Candidates {
    let lane0 = v * LANES;
    let screened: __mmask16 = screen.screened[v];
    let eps = _mm512_fmadd_ps(
        _mm512_loadu_ps(screen.eps_doc.as_ptr().add(lane0)),
        _mm512_set1_ps(norm),
        _mm512_fmadd_ps(
            _mm512_loadu_ps(screen.eps_residual.as_ptr().add(lane0)),
            _mm512_set1_ps(residual_norm),
            _mm512_set1_ps(screen.eps_abs),
        ),
    );
    let high = doc_words.high();
    let best = decode(state.keys[0], high);
    // threshold = best − 2ε(1 + 2⁻²⁰) − |best|·2⁻²²: the margins absorb the
    // float32 rounding of this very expression. `best` is at most the largest
    // approximate value, so every candidate is at or above `threshold`.
    let margin = _mm512_fmadd_ps(
        _mm512_abs_ps(best),
        _mm512_set1_ps(1.0 / 4_194_304.0),
        _mm512_mul_ps(eps, _mm512_set1_ps(2.0 * (1.0 + 1.0 / 1_048_576.0))),
    );
    let threshold = _mm512_sub_ps(best, margin);
    // A key's decoded value is below its approximate value `a` by less than
    // 2^(b−23)|a| + 2^(b−149) (b index bits); for any `a` between `threshold`
    // and the largest approximate value that is below `slack`, with a factor
    // of 4 for the rounding here. So a slot whose approximate value may be
    // at or above `threshold` has a decoded value at or above `floor`.
    let b = doc_words.index_bits as i32;
    let scale = f32::from_bits(((127 + b - 21) as u32) << 23); // 2^(b−21)
    let slack = _mm512_fmadd_ps(
        _mm512_max_ps(_mm512_abs_ps(best), _mm512_abs_ps(threshold)),
        _mm512_set1_ps(scale),
        _mm512_set1_ps(scale * f32::from_bits(1 << 22) * 2.0), // 2^(b−147)
    );
    let floor = _mm512_sub_ps(threshold, slack);
    // (Plain code, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    let mut close = [0 as __mmask16; KEYS];
    for (slot, lanes) in close.iter_mut().enumerate().skip(1) {
        let value = decode(state.keys[slot], high);
        *lanes = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(value, floor) & screened;
    }
    // Lanes whose candidates are all tracked: the best token, then the
    // others where they are close enough.
    let more = close[KEYS - 1];
    let tracked = screened & !more;
    let low = _mm512_set1_epi32(!(u32::MAX << doc_words.index_bits) as i32);
    let mut tokens = [_mm512_setzero_si512(); KEYS - 1];
    let mut lanes = [0 as __mmask16; KEYS - 1];
    for slot in 0..KEYS - 1 {
        tokens[slot] = _mm512_and_si512(state.keys[slot], low);
        lanes[slot] = if slot == 0 {
            tracked
        } else {
            close[slot] & tracked
        };
    }
    Candidates {
        lane0,
        tokens,
        lanes,
        more,
        threshold,
        zero_lanes: screen.zero[v],
    }
}

/// Exact float32 maxima in `maxes` for vectors `v0..v0 + states.len()` from
/// their screening results (at most [`R`]). `norms` bounds the document's
/// token norms and bf16 rounding-error norms.
///
/// Each recomputation is one FMA chain over the dimensions per lane,
/// latency-bound (4 cycles per FMA on Zen 4), so chains run two at a time
/// ([`exact_at`]; one at a time they took 17 % of a 32-query batch in `perf
/// annotate`, in pairs the batch ran about 10 % faster).
///
/// Every lane's best candidate (slot 0) is one chain per vector. The
/// runners-up (slots 1 and up) are few and scattered (about 7 per 32-token
/// query and document on random data, against 16 lanes per chain), so they
/// are packed: up to 16 (query token, document token) pairs from any slot of
/// either vector per chain, the query side permuted into place. One chain per
/// slot and vector left most lanes idle and cost about half of all
/// recomputation.
///
/// Each lane's chain is the same FMA sequence however it is packed, and the
/// slots are combined per vector in slot order as before, so the results are
/// bitwise those of one vector and slot at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn resolve<S: Source>(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    v0: usize,
    states: &[Tracked],
    norms: (f32, f32),
    doc: &[S::Elem],
    doc_words: &Doc,
    maxes: &mut [f32],
) {
    debug_assert!(!states.is_empty() && states.len() <= R);
    // (Plain loops, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    let mut plans: [Option<Candidates>; R] = [None, None];
    for (r, state) in states.iter().enumerate() {
        plans[r] = Some(candidates(screen, v0 + r, state, norms, doc_words));
    }
    let lane0 = v0 * LANES;
    // Slot 0 of every vector: all its lanes, one chain per vector.
    let mut result = [_mm512_setzero_ps(); R];
    if let [Some(first), Some(second)] = &plans {
        result = exact_at::<S, 2, false>(q, doc, [best_job(first), best_job(second)]);
    } else if let Some(first) = &plans[0] {
        result[0] = exact_at::<S, 1, false>(q, doc, [best_job(first)])[0];
    }
    let runners_up = RunnersUp::collect(&plans);
    let mut runner_values = [0.0f32; MAX_RUNNERS_UP];
    // With one vector in the block every query lane is below 16: the "high"
    // vector is the same row again, so no load passes the query's end.
    let high_offset = if states.len() == 2 { LANES } else { 0 };
    let mut first = 0;
    while first < runners_up.count {
        let mut values = [[0.0f32; LANES]; 2];
        let chains = if runners_up.count - first > LANES {
            2
        } else {
            1
        };
        if chains == 2 {
            let jobs = [
                runners_up.job(first, lane0, high_offset),
                runners_up.job(first + LANES, lane0, high_offset),
            ];
            let exact = exact_at::<S, 2, true>(q, doc, jobs);
            _mm512_storeu_ps(values[0].as_mut_ptr(), exact[0]);
            _mm512_storeu_ps(values[1].as_mut_ptr(), exact[1]);
        } else {
            let job = runners_up.job(first, lane0, high_offset);
            _mm512_storeu_ps(
                values[0].as_mut_ptr(),
                exact_at::<S, 1, true>(q, doc, [job])[0],
            );
        }
        let done = (runners_up.count - first).min(chains * LANES);
        for i in 0..done {
            runner_values[runners_up.slots[first + i]] = values[i / LANES][i % LANES];
        }
        first += done;
    }
    for (r, plan) in plans.iter().enumerate() {
        let Some(plan) = plan else { continue };
        // Slot order, as one vector and slot at a time combined them.
        for slot in 1..KEYS - 1 {
            let lanes = plan.lanes[slot];
            if lanes != 0 {
                let at = (r * (KEYS - 2) + slot - 1) * LANES;
                let value = _mm512_loadu_ps(runner_values.as_ptr().add(at));
                result[r] = _mm512_mask_max_ps(result[r], lanes, value, result[r]);
            }
        }
        let value = _mm512_mask_mov_ps(result[r], plan.zero_lanes, _mm512_setzero_ps());
        _mm512_storeu_ps(maxes.as_mut_ptr().add(plan.lane0), value);
        if plan.more != 0 {
            rescan::<S>(
                q,
                screen,
                v0 + r,
                plan.threshold,
                plan.more,
                doc,
                doc_words,
                maxes,
            );
        }
    }
}

/// The chain of every lane's best candidate (slot 0) of one vector.
#[inline(always)]
unsafe fn best_job(plan: &Candidates) -> QueryJob {
    QueryJob {
        lane0: plan.lane0,
        query_lanes: _mm512_setzero_si512(), // unused: lanes are read in order
        high_offset: 0,
        tokens: plan.tokens[0],
        mask: plan.lanes[0],
    }
}

/// Runners-up of a block's two vectors at most: 3 slots of 16 lanes each.
const MAX_RUNNERS_UP: usize = R * (KEYS - 2) * LANES;

/// The runners-up (slots 1 and up) of a block's vectors, as (query token,
/// document token) pairs in vector, slot and lane order.
struct RunnersUp {
    /// Per pair, its query lane within the block (`16 r + lane`). A chain
    /// reads 16 entries from any start below `count`, so the arrays carry a
    /// chain's worth of padding (zeros; those lanes are masked off).
    lanes: [u32; MAX_RUNNERS_UP + LANES],
    /// Per pair, its document token.
    tokens: [u32; MAX_RUNNERS_UP + LANES],
    /// Per pair, where its value goes back: `(r · (KEYS − 2) + slot − 1) · 16 + lane`.
    slots: [usize; MAX_RUNNERS_UP],
    count: usize,
}

impl RunnersUp {
    #[inline(always)]
    unsafe fn collect(plans: &[Option<Candidates>; R]) -> Self {
        let mut out = RunnersUp {
            lanes: [0; MAX_RUNNERS_UP + LANES],
            tokens: [0; MAX_RUNNERS_UP + LANES],
            slots: [0; MAX_RUNNERS_UP],
            count: 0,
        };
        for (r, plan) in plans.iter().enumerate() {
            let Some(plan) = plan else { continue };
            for slot in 1..KEYS - 1 {
                let mut lanes = plan.lanes[slot];
                if lanes == 0 {
                    continue;
                }
                let mut token_of = [0u32; LANES];
                _mm512_storeu_si512(token_of.as_mut_ptr() as *mut __m512i, plan.tokens[slot]);
                while lanes != 0 {
                    let lane = lanes.trailing_zeros() as usize;
                    lanes &= lanes - 1;
                    out.lanes[out.count] = (r * LANES + lane) as u32;
                    out.tokens[out.count] = token_of[lane];
                    out.slots[out.count] = (r * (KEYS - 2) + slot - 1) * LANES + lane;
                    out.count += 1;
                }
            }
        }
        out
    }

    /// Pairs `first..first + 16` (those below `count`) as one chain.
    #[inline(always)]
    unsafe fn job(&self, first: usize, lane0: usize, high_offset: usize) -> QueryJob {
        debug_assert!(first < self.count);
        // In bounds: `first < count <= MAX_RUNNERS_UP`, and the arrays hold 16 more.
        QueryJob {
            lane0,
            query_lanes: _mm512_loadu_si512(self.lanes.as_ptr().add(first) as *const __m512i),
            high_offset,
            tokens: _mm512_loadu_si512(self.tokens.as_ptr().add(first) as *const __m512i),
            mask: first_lanes(self.count - first),
        }
    }
}

/// One chain of [`exact_at`]: lane `l` computes the dot product of query
/// token `lane0 + query_lanes[l]` (below `lane0 + 16 + high_offset`) with
/// document token `tokens[l]`; lanes outside `mask` may hold anything and
/// give unspecified finite values.
#[derive(Clone, Copy)]
struct QueryJob {
    lane0: usize,
    query_lanes: __m512i,
    /// 16 when `query_lanes` reach into the block's second vector, else 0.
    high_offset: usize,
    tokens: __m512i,
    mask: __mmask16,
}

/// Float32 dot products for each of `N` jobs, by the float32 kernel's
/// arithmetic: one FMA chain over `k` in order, starting from 0. The `N`
/// chains run interleaved. Without `PERMUTED`, lane `l` reads query token
/// `lane0 + l` (`query_lanes` is ignored); with it, `lane0 + query_lanes[l]`,
/// one `vpermt2ps` per dimension.
///
/// The 16 document rows are loaded 16 dimensions at a time and transposed in
/// registers so that one vector holds dimension `k` of every lane's row
/// (a hardware gather costs about 20 cycles per vector on Zen 4; this, 5).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn exact_at<S: Source, const N: usize, const PERMUTED: bool>(
    q: &PreparedQueries,
    doc: &[S::Elem],
    jobs: [QueryJob; N],
) -> [__m512; N] {
    let dim = q.dim;
    // Unselected lanes read row 0, which every document has.
    let mut rows = [[doc.as_ptr(); LANES]; N];
    for (job_rows, job) in rows.iter_mut().zip(jobs.iter()) {
        let mut token_of = [0u32; LANES];
        _mm512_storeu_si512(token_of.as_mut_ptr() as *mut __m512i, job.tokens);
        for (lane, row) in job_rows.iter_mut().enumerate() {
            if job.mask & (1 << lane) != 0 {
                *row = doc.as_ptr().add(token_of[lane] as usize * dim);
            }
        }
    }
    let mut acc = [_mm512_setzero_ps(); N];
    let mut k0 = 0;
    // (Plain loops, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    while k0 < dim {
        let width = (dim - k0).min(LANES);
        let load_mask = first_lanes(width);
        let mut columns = [[_mm512_setzero_ps(); LANES]; N];
        for (job_columns, job_rows) in columns.iter_mut().zip(rows.iter()) {
            let mut chunk = [_mm512_setzero_ps(); LANES];
            for (lane, slot) in chunk.iter_mut().enumerate() {
                *slot = S::Elem::load16(job_rows[lane].add(k0), load_mask);
            }
            *job_columns = transpose16(chunk);
        }
        for kk in 0..width {
            for j in 0..N {
                let row = q
                    .transposed
                    .as_ptr()
                    .add(jobs[j].lane0 + (k0 + kk) * q.stride);
                let q_k = if PERMUTED {
                    // SAFETY (of the read): the block's second vector, or
                    // the same row when there is none (`high_offset` 0).
                    let high = _mm512_loadu_ps(row.add(jobs[j].high_offset));
                    _mm512_permutex2var_ps(_mm512_loadu_ps(row), jobs[j].query_lanes, high)
                } else {
                    _mm512_loadu_ps(row)
                };
                acc[j] = _mm512_fmadd_ps(q_k, columns[j][kk], acc[j]);
            }
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

/// The rare lanes with [`KEYS`] or more candidates: screen vector `v` again
/// and recompute, in float32, every token at or above its lane's threshold.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
unsafe fn rescan<S: Source>(
    q: &PreparedQueries,
    screen: &ScreenQuery,
    v: usize,
    threshold: __m512,
    lanes: __mmask16,
    doc: &[S::Elem],
    doc_words: &Doc,
    maxes: &mut [f32],
) {
    let lane0 = v * LANES;
    let (base, stride) = screen.vector_pairs(v);
    let q_vec = screen.pairs.as_ptr().add(base);
    let mut best = [f32::NEG_INFINITY; LANES];
    // Whole tiles keep `2 T` independent accumulators in flight; one token at
    // a time would wait on each `vdpbf16ps`'s latency.
    let mut t = 0;
    while t < doc_words.n_tok {
        let (approx, count) = if t + T1 <= doc_words.n_tok {
            let [tile] = approx_tile::<1, T1>(q_vec, stride, doc_words, t);
            (tile, T1)
        } else {
            let [[one]] = approx_tile::<1, 1>(q_vec, stride, doc_words, t);
            let mut tile = [_mm512_setzero_ps(); T1];
            tile[0] = one;
            (tile, 1)
        };
        for (tt, &value) in approx.iter().enumerate().take(count) {
            let mut hits = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(value, threshold) & lanes;
            while hits != 0 {
                let lane = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let row = &doc[(t + tt) * q.dim..(t + tt + 1) * q.dim];
                let exact = exact_scalar::<S>(q, lane0 + lane, row);
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
fn exact_scalar<S: Source>(q: &PreparedQueries, token: usize, row: &[S::Elem]) -> f32 {
    let mut acc = 0.0f32;
    for (k, &value) in row.iter().enumerate() {
        acc = q.transposed[k * q.stride + token].mul_add(value.widen(), acc);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finite and infinite values of every kind, then pseudo-random bit patterns.
    fn values() -> Vec<f32> {
        let mut values = vec![
            f32::NEG_INFINITY,
            -f32::MAX,
            -1.5,
            -f32::MIN_POSITIVE,
            -1e-40,
            -0.0,
            0.0,
            1e-45,
            1e-40,
            f32::MIN_POSITIVE,
            1.0,
            1.0 + f32::EPSILON,
            f32::MAX,
            f32::INFINITY,
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        while values.len() < 4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f32::from_bits((state >> 32) as u32);
            if !x.is_nan() {
                values.push(x);
            }
        }
        values.resize(values.len() / LANES * LANES, 0.0);
        values
    }

    /// `sum_lanes8` against scalar sums of each vector.
    #[test]
    fn sum_lanes8_matches_scalar_sums() {
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("AVX-512 not available: sum_lanes8 not tested on this CPU");
            return;
        }
        // Small integers: every summation order is exact, so the sums compare equal.
        let inputs: Vec<[f32; 16]> = (0..8)
            .map(|v| std::array::from_fn(|lane| ((v * 37 + lane * 11) % 23) as f32))
            .collect();
        // SAFETY: AVX-512F checked above.
        let lanes = unsafe { sum_lanes8_of(&inputs) };
        for token in 0..4 {
            let squares: f32 = inputs[token].iter().sum();
            let residuals: f32 = inputs[4 + token].iter().sum();
            for copy in [0, 2] {
                assert_eq!(
                    lanes[4 * token + copy],
                    squares,
                    "lane {}",
                    4 * token + copy
                );
                assert_eq!(
                    lanes[4 * token + 1 + copy],
                    residuals,
                    "lane {}",
                    4 * token + 1 + copy
                );
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn sum_lanes8_of(inputs: &[[f32; 16]]) -> [f32; 16] {
        let x: [__m512; 8] = std::array::from_fn(|i| _mm512_loadu_ps(inputs[i].as_ptr()));
        let mut out = [0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), sum_lanes8(x));
        out
    }

    /// Keys order values as the values do, carry their token exactly, and
    /// decode to at most the value, within the bound `resolve` widens by.
    #[test]
    fn keys_order_values_and_decode_within_the_bound() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")) {
            eprintln!("AVX-512 not available: keys not tested on this CPU");
            return;
        }
        // SAFETY: AVX-512F/BW checked above.
        unsafe { check_keys(&values()) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn check_keys(values: &[f32]) {
        let mut sortables = vec![0u32; values.len()];
        for (chunk, out) in values.chunks(LANES).zip(sortables.chunks_mut(LANES)) {
            let key = sortable(_mm512_loadu_ps(chunk.as_ptr()));
            _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, key);
        }
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        for pair in order.windows(2) {
            let (x, y) = (values[pair[0]], values[pair[1]]);
            let (kx, ky) = (sortables[pair[0]], sortables[pair[1]]);
            assert!(kx <= ky, "{x} < {y} but keys {kx:#x} > {ky:#x}");
            assert!(x == y || kx < ky || (x == 0.0 && y == 0.0));
        }
        for bits in [0u32, 1, 9, 12, MAX_INDEX_BITS] {
            let doc = Doc {
                pairs: std::ptr::null(),
                row_words: 0,
                n_pairs: 0,
                n_tok: 0,
                index_bits: bits,
            };
            let high = doc.high();
            let token_value = (1u32 << bits) - 1;
            let token = _mm512_set1_epi32(token_value as i32);
            for chunk in values.chunks(LANES) {
                let value = _mm512_loadu_ps(chunk.as_ptr());
                let mut state = Tracked {
                    keys: [_mm512_setzero_si512(); KEYS],
                };
                track(&mut state, value, token, high);
                let mut keys = [0u32; LANES];
                _mm512_storeu_si512(keys.as_mut_ptr() as *mut __m512i, state.keys[0]);
                let mut decoded = [0f32; LANES];
                _mm512_storeu_ps(decoded.as_mut_ptr(), decode(state.keys[0], high));
                for lane in 0..LANES {
                    let (x, t) = (chunk[lane] as f64, decoded[lane] as f64);
                    assert_eq!(keys[lane] & token_value, token_value);
                    // Approximate values of the screen are below 1e36 in
                    // magnitude (norms up to 1e18); truncating the key of a
                    // value near f32::MAX could reach the inf/NaN exponent.
                    if x.abs() > 1e37 {
                        continue;
                    }
                    let bound =
                        2f64.powi(bits as i32 - 23) * x.abs() + 2f64.powi(bits as i32 - 149);
                    assert!(
                        t <= x && x - t <= bound,
                        "{x} decodes to {t} with {bits} index bits"
                    );
                }
            }
        }
    }
}
