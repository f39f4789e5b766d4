//! A document's int16 codes: per token, its norm, then `cd = round(fl(t̂ d))`
//! with `t̂ = CODE_NORM / n̂` and the dequantisation factor `û = n̂ / CODE_NORM`
//! (`float::screen_i16`), and the bounds the screen's window needs.
//!
//! The codes of 16 dimensions are stored in the order `vpackssdw` leaves
//! them (the query's pairs are laid out the same way), which saves a
//! permutation per 16 values.

use super::*;
use crate::float::screen::norm_bound;
use crate::float::screen_i16::CODE_NORM;

/// A stored value the screen reads: float32, or float16 / bfloat16 bits.
pub(super) trait Elem: Copy {
    /// The first `n` (at most 8) of the 8 values at `src`, exactly in f32;
    /// the other lanes are 0 and are not read.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C (the callers are compiled with
    /// them); `src` must be valid for `n` reads.
    unsafe fn load8(src: *const Self, n: usize) -> __m256;
    /// One value, exactly in f32.
    fn widen(self) -> f32;
}

impl Elem for f32 {
    #[inline(always)]
    unsafe fn load8(src: *const f32, n: usize) -> __m256 {
        if n >= LANES {
            _mm256_loadu_ps(src)
        } else {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_maskload_ps(src, _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes))
        }
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

/// The first `n` of 8 16-bit values at `src`, the rest zero.
#[inline(always)]
unsafe fn load8_bits(src: *const u16, n: usize) -> __m128i {
    if n >= LANES {
        _mm_loadu_si128(src as *const __m128i)
    } else {
        let mut tail = [0u16; LANES];
        std::ptr::copy_nonoverlapping(src, tail.as_mut_ptr(), n);
        _mm_loadu_si128(tail.as_ptr() as *const __m128i)
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

impl Elem for F16Bits {
    #[inline(always)]
    unsafe fn load8(src: *const F16Bits, n: usize) -> __m256 {
        // `vcvtph2ps`, as the float16 kernel widens (exact).
        _mm256_cvtph_ps(load8_bits(src as *const u16, n))
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        crate::reduced::half::f16_bits_to_f32(self.0)
    }
}

impl Elem for Bf16Bits {
    #[inline(always)]
    unsafe fn load8(src: *const Bf16Bits, n: usize) -> __m256 {
        // Zero-extend and shift, as the bfloat16 kernel widens (exact).
        let bits = _mm256_cvtepu16_epi32(load8_bits(src as *const u16, n));
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(bits))
    }
    #[inline(always)]
    fn widen(self) -> f32 {
        crate::reduced::half::bf16_bits_to_f32(self.0)
    }
}

/// 16-bit values viewed as `T`, one of the transparent `u16` wrappers above.
pub(super) fn bits_as<T: Elem>(bits: &[u16]) -> &[T] {
    debug_assert_eq!(size_of::<T>(), 2);
    // SAFETY: called only with `F16Bits` and `Bf16Bits`, transparent `u16`s,
    // so the layout, length and alignment of the slice are unchanged.
    unsafe { std::slice::from_raw_parts(bits.as_ptr() as *const T, bits.len()) }
}

/// A document's codes, as the tiles read them.
pub(super) struct Codes {
    /// Token `j`'s pair `p` is the word at `words + j * row_words + p`.
    pub(super) words: *const u32,
    pub(super) row_words: usize,
    pub(super) n_pairs: usize,
    pub(super) n_tok: usize,
    /// Per token, `û`.
    pub(super) scales: *const f32,
}

impl Codes {
    /// Pair `p` of token `j`.
    #[inline(always)]
    pub(super) unsafe fn word(&self, j: usize, p: usize) -> u32 {
        *self.words.add(j * self.row_words + p)
    }
}

/// What the window of a document needs: a bound on its largest token norm
/// (`N`) and its largest `û` (`U`).
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    pub(super) norm: f32,
    pub(super) scale: f32,
}

/// Sums of squares below this may have lost every square to underflow: such
/// a token is either all zero (codes 0, `û = 0`, and every float32 dot
/// product with it is exactly +0) or outside the bound.
const TINY_SUM_SQUARES: f32 = 7.888_609e-31; // 2^-100

/// The eight lane sums of `x[0..8]`, in that order (any summation order: the
/// bound allows it).
#[inline(always)]
unsafe fn sum_lanes8(x: &[__m256; LANES]) -> __m256 {
    let a = _mm256_hadd_ps(_mm256_hadd_ps(x[0], x[1]), _mm256_hadd_ps(x[2], x[3]));
    let b = _mm256_hadd_ps(_mm256_hadd_ps(x[4], x[5]), _mm256_hadd_ps(x[6], x[7]));
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(a, b),
        _mm256_permute2f128_ps::<0x31>(a, b),
    )
}

/// The largest lane of `x`.
#[inline(always)]
unsafe fn max_lane(x: __m256) -> f32 {
    let mut lanes = [0f32; LANES];
    _mm256_storeu_ps(lanes.as_mut_ptr(), x);
    lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// A document being quantized into the screen's scratch, eight tokens at a
/// time, as the first block of query vectors screens it (so that streaming
/// it from memory overlaps the screening), and what it has seen.
pub(super) struct Quantizer<'a, E: Elem> {
    doc: &'a [E],
    dim: usize,
    codes: Codes,
    /// Tokens converted so far (a multiple of 8, or all).
    done: usize,
    /// Lane maxima of the tokens' sums of squares and of their `û`.
    max_squares: __m256,
    max_scale: __m256,
    /// `Σ squares · 0`: NaN exactly when some value was not finite.
    finite_check: __m256,
    /// A token too small to scale that is not all zero was seen.
    outside: bool,
}

impl<'a, E: Elem> Quantizer<'a, E> {
    /// Sizes the scratch for `doc` and returns the quantizer, whose
    /// [`Quantizer::codes`] the tiles read as tokens are converted.
    #[inline(always)]
    pub(super) unsafe fn new(
        doc: &'a [E],
        dim: usize,
        n_pairs: usize,
        doc_pairs: &mut Vec<u32>,
        token_scales: &mut Vec<f32>,
    ) -> Self {
        let n_tok = doc.len() / dim;
        // Grow only: conversion writes every word of the rows it uses.
        if doc_pairs.len() < n_tok * n_pairs {
            doc_pairs.resize(n_tok * n_pairs, 0);
        }
        if token_scales.len() < n_tok.next_multiple_of(LANES) {
            token_scales.resize(n_tok.next_multiple_of(LANES), 0.0);
        }
        let zero = _mm256_setzero_ps();
        Quantizer {
            doc,
            dim,
            codes: Codes {
                words: doc_pairs.as_mut_ptr(),
                row_words: n_pairs,
                n_pairs,
                n_tok,
                scales: token_scales.as_mut_ptr(),
            },
            done: 0,
            max_squares: zero,
            max_scale: zero,
            finite_check: zero,
            outside: false,
        }
    }

    /// The codes, valid for the tokens converted so far.
    pub(super) fn codes(&self) -> &Codes {
        &self.codes
    }

    /// Where token `j`'s values start, as bytes (past the document too: in
    /// packed and fixed layouts the next document follows, so prefetching
    /// there pays; the address is formed with wrapping arithmetic).
    pub(super) fn row_bytes_at(&self, j: usize) -> (*const u8, usize) {
        let row = self.dim * size_of::<E>();
        ((self.doc.as_ptr() as *const u8).wrapping_add(j * row), row)
    }

    /// Converts tokens, eight at a time, until at least `end` are.
    #[inline(always)]
    pub(super) unsafe fn convert_until(&mut self, end: usize) {
        while self.done < end.min(self.codes.n_tok) {
            self.convert_batch();
        }
    }

    /// Converts the next (up to) eight tokens: their sums of squares,
    /// reduced together, give eight scales at once; each token's values are
    /// then read again, from L1, and encoded.
    #[inline(always)]
    unsafe fn convert_batch(&mut self) {
        let (dim, j0) = (self.dim, self.done);
        let count = LANES.min(self.codes.n_tok - j0);
        let src = self.doc.as_ptr();
        let mut sums = [_mm256_setzero_ps(); LANES];
        for (u, sum) in sums.iter_mut().enumerate().take(count) {
            *sum = sum_squares(src.add((j0 + u) * dim), dim);
        }
        let squares = sum_lanes8(&sums);
        self.finite_check = _mm256_fmadd_ps(squares, _mm256_setzero_ps(), self.finite_check);
        self.max_squares = _mm256_max_ps(self.max_squares, squares);
        let norm = _mm256_sqrt_ps(squares);
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(squares, _mm256_set1_ps(TINY_SUM_SQUARES));
        let up = _mm256_andnot_ps(tiny, _mm256_div_ps(_mm256_set1_ps(CODE_NORM), norm));
        let down = _mm256_andnot_ps(tiny, _mm256_mul_ps(norm, _mm256_set1_ps(1.0 / CODE_NORM)));
        _mm256_storeu_ps((self.codes.scales as *mut f32).add(j0), down);
        self.max_scale = _mm256_max_ps(self.max_scale, down);
        let mut tiny_tokens = _mm256_movemask_ps(tiny) as u32 & ((1u32 << count) - 1);
        while tiny_tokens != 0 {
            let u = tiny_tokens.trailing_zeros() as usize;
            tiny_tokens &= tiny_tokens - 1;
            let row = &self.doc[(j0 + u) * dim..(j0 + u + 1) * dim];
            self.outside |= row.iter().any(|v| v.widen() != 0.0);
        }
        let mut scales = [0f32; LANES];
        _mm256_storeu_ps(scales.as_mut_ptr(), up);
        let words = self.codes.words as *mut u32;
        for (u, &scale) in scales.iter().enumerate().take(count) {
            let out = words.add((j0 + u) * self.codes.row_words);
            encode(src.add((j0 + u) * dim), dim, scale, out);
        }
        self.done += count;
    }

    /// The document's [`Bounds`] once every token is converted, or `None`
    /// when it is outside the screen's bound (a non-finite value, a token
    /// norm above `MAX_NORM`, or a token too small to scale that is not all
    /// zero).
    #[inline(always)]
    pub(super) unsafe fn bounds(&self) -> Option<Bounds> {
        debug_assert_eq!(self.done, self.codes.n_tok);
        let mut checks = [0f32; LANES];
        _mm256_storeu_ps(checks.as_mut_ptr(), self.finite_check);
        if self.outside || checks.iter().any(|c| c.is_nan()) {
            return None;
        }
        Some(Bounds {
            norm: norm_bound(max_lane(self.max_squares), self.dim)?,
            scale: max_lane(self.max_scale),
        })
    }
}

/// The lane sums of squares of the `dim` values at `row` (two accumulators).
#[inline(always)]
unsafe fn sum_squares<E: Elem>(row: *const E, dim: usize) -> __m256 {
    let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut c = 0;
    while c + 2 * LANES <= dim {
        let (a, b) = (
            E::load8(row.add(c), LANES),
            E::load8(row.add(c + LANES), LANES),
        );
        even = _mm256_fmadd_ps(a, a, even);
        odd = _mm256_fmadd_ps(b, b, odd);
        c += 2 * LANES;
    }
    while c < dim {
        let a = E::load8(row.add(c), dim - c);
        even = _mm256_fmadd_ps(a, a, even);
        c += LANES;
    }
    _mm256_add_ps(even, odd)
}

/// Writes `round(fl(scale · d_k))` for the `dim` values at `row` as i16 to
/// `out`, 16 at a time in `vpackssdw`'s order (`screen_i16::code_position`),
/// zeros past `dim` up to the next 16.
#[inline(always)]
unsafe fn encode<E: Elem>(row: *const E, dim: usize, scale: f32, out: *mut u32) {
    let scale = _mm256_set1_ps(scale);
    let mut c = 0;
    while c < dim {
        let (low, high) = if c + 2 * LANES <= dim {
            (
                E::load8(row.add(c), LANES),
                E::load8(row.add(c + LANES), LANES),
            )
        } else if c + LANES < dim {
            let low = E::load8(row.add(c), LANES);
            (low, E::load8(row.add(c + LANES), dim - c - LANES))
        } else {
            (E::load8(row.add(c), dim - c), _mm256_setzero_ps())
        };
        // `vcvtps2dq` rounds to nearest even (the default MXCSR mode); codes
        // fit an i16, so `vpackssdw` never saturates.
        let low = _mm256_cvtps_epi32(_mm256_mul_ps(low, scale));
        let high = _mm256_cvtps_epi32(_mm256_mul_ps(high, scale));
        _mm256_storeu_si256(
            out.add(c / 2) as *mut __m256i,
            _mm256_packs_epi32(low, high),
        );
        c += 2 * LANES;
    }
}
