//! Where the screen reads a document from: the `Source` trait, the document
//! as bf16 pairs (`Doc`), and the two sources: converted into scratch
//! (float32 and float16) and read in place (bfloat16).

use super::*;

/// A document's storage format, as the screen sees it.
///
/// # Safety
/// Implementations read only within the document they were built from, given
/// the callers' bounds (`token < n_tok`, `k0 + popcount(mask) <= dim`).
pub(super) unsafe trait Source {
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

/// The document in bf16 pairs: token `j`'s pair `p` is the (possibly
/// unaligned) word at `pairs + j * row_words + p`.
pub(super) struct Doc {
    pub(super) pairs: *const u32,
    pub(super) row_words: usize,
    pub(super) n_pairs: usize,
    pub(super) n_tok: usize,
    /// [`index_bits`] of `n_tok`.
    pub(super) index_bits: u32,
}

impl Doc {
    /// The mask of a key's value bits (all but the index bits).
    #[inline(always)]
    pub(super) unsafe fn high(&self) -> __m512i {
        _mm512_set1_epi32((u32::MAX << self.index_bits) as i32)
    }

    /// Pair `p` of token `j` (`j < n_tok`, `p < row_words`).
    #[inline(always)]
    pub(super) unsafe fn word(&self, j: usize, p: usize) -> u32 {
        self.pairs.add(j * self.row_words + p).read_unaligned()
    }
}

/// Rows ahead of the conversion that are prefetched: the first block streams
/// the document from memory.
pub(super) const PREFETCH_ROWS: usize = 2 * T;

/// Prefetches row `j + PREFETCH_ROWS` of the rows of `dim` values at `src`,
/// also past the document's last row (`n_tok`): in packed and fixed layouts
/// the next document follows, and its first rows would otherwise be demand
/// misses. A prefetch never faults, and the address is only formed with
/// wrapping arithmetic, so it need not be in the document.
#[inline(always)]
pub(super) fn prefetch_ahead<E>(src: *const E, j: usize, dim: usize) {
    let ahead = src.wrapping_add((j + PREFETCH_ROWS) * dim) as *const u8;
    prefetch_lines(ahead, dim * size_of::<E>());
}

/// [`norm_bound`] of a document's largest sum of squares, or `None` when
/// `finite_check` (`Σ squares · 0` over its tokens) says a value was not
/// finite.
#[inline(always)]
pub(super) unsafe fn finite_norm_bound(
    finite_check: __m512,
    max_squares: f32,
    dim: usize,
) -> Option<f32> {
    if _mm512_reduce_add_ps(finite_check).is_nan() {
        return None;
    }
    norm_bound(max_squares, dim)
}

/// A stored value the screen converts to bf16: float32, or float16 bits.
pub(super) trait Wide: Copy {
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
pub(super) struct F16Bits(u16);

/// The bits of a bfloat16 value.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(super) struct Bf16Bits(u16);

/// 16-bit values viewed as `T`, one of the transparent `u16` wrappers above.
pub(super) fn bits_as<T: Wide>(bits: &[u16]) -> &[T] {
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
pub(super) struct Converted<'a, E: Wide> {
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
    pub(super) unsafe fn new(doc: &'a [E], dim: usize) -> Self {
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
            // difference of a value and its rounding is representable. (The
            // a-priori bound, 2⁻⁸ of the token norm, saves this work but
            // about doubles the document's share of the window, and the extra
            // candidates cost more: BENCHMARKS.md, "Design measurements".)
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
pub(super) unsafe fn sum_lanes8(x: [__m512; 8]) -> __m512 {
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
pub(super) fn first_lanes(n: usize) -> __mmask16 {
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
pub(super) struct InPlace<'a> {
    doc: &'a [Bf16Bits],
    dim: usize,
    /// Running lane maxima of [`sum_lanes8`] results (token sums of squares).
    max_sums: __m512,
    finite_check: __m512,
}

impl<'a> InPlace<'a> {
    #[inline(always)]
    pub(super) unsafe fn new(doc: &'a [Bf16Bits], dim: usize) -> Self {
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
