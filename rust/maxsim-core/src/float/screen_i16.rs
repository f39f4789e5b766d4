//! The int16 screen: the query side and the error bound of the AVX2 kernel
//! (`arch::x86_64::avx2::screen`), which screens float32, float16 and
//! bfloat16 documents with `vpmaddwd` (16 multiply-adds per instruction, twice
//! an AVX2 FMA's 8) and recomputes the candidates with the float32 kernel's
//! own FMA chain, so its results are bitwise those of the AVX2 kernels.
//!
//! **Codes.** A query token `q` becomes `cq = round(s q)` with
//! `s = CODE_NORM / ‖q‖` (computed here in f64), a document token `d` becomes
//! `cd = round(fl(t̂ d))` with `t̂ = fl(CODE_NORM / n̂)`, `n̂` the kernel's float32
//! norm of `d`, and `û = fl(n̂ / CODE_NORM)`. Both code vectors have norms near
//! `CODE_NORM` (the kernel's norm is within 10 % of the true one for any width
//! it takes), so every code fits an i16 and `|cq · cd| ≤ ‖cq‖ ‖cd‖ < 2^31`:
//! `vpmaddwd` and the int32 sums that follow are exact, whatever the order.
//!
//! **Approximate values.** The kernel's value for query token `i` and
//! document token `j` is `a = fl(fl(cq·cd) · û)`, close to `s (q·d)`: per
//! lane, the scale `s` is one constant, so ranking by `a` is ranking by `q·d`.
//!
//! **Bound.** With `q' = cq / s`, `Δq = q' − q`, `d'' = û cd` and `f` the
//! float32 kernel's value (one FMA chain over the dimensions in order):
//!
//! * `|d''_k − d_k| ≤ 2⁻²² |d_k| + û / 2` (one rounding of `t̂ d_k`, the
//!   integer rounding, and `|û t̂ − 1| ≤ 2⁻²² `), so
//!   `‖Δd‖ ≤ 2⁻²² ‖d‖ + û √dim / 2`;
//! * `|a − s (q'·d'')| ≤ 2⁻²² s ‖q'‖ ‖d''‖` (two roundings);
//! * `|q'·d'' − q·d| ≤ ‖Δq‖ ‖d‖ + ‖q'‖ ‖Δd‖`;
//! * `|f − q·d| ≤ γ_dim ‖q‖ ‖d‖ + dim · min_normal` (as for the bf16 screen).
//!
//! Together `|a − s f| ≤ A ‖d‖ + B û + τ` with
//! `A = s (‖Δq‖ + γ_dim ‖q‖ + 2⁻²⁰ ‖q'‖)`, `B = s ‖q'‖ (√dim / 2) (1 + 2⁻²¹)`
//! and `τ = s · dim · min_normal`, each rounded up. A document is screened
//! with its largest token norm bound `N` and largest `û`, `U`: a token can
//! hold lane `i`'s maximum only if its `a` is within `2 (A N + B U + τ)` of
//! the lane's largest `a`, and exactly those tokens are recomputed.
//!
//! Compared with the bf16 screen's `‖q̃‖ + ‖q̂‖ ≈ 2⁻⁸ ‖q‖` per unit of
//! document norm, `A N + B U` is about `√dim / (2 · CODE_NORM) ≈ 2⁻¹³ ‖q‖ ‖d‖`
//! at 128 dimensions: the window is about 20 times narrower, so nearly every
//! lane has one candidate.

// The bound and the query preparation are portable; only x86-64 has a
// kernel that uses them (AVX2).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::screen::{gamma, PairLayout, F32_MIN_NORMAL, F32_UNIT_ROUNDOFF, MAX_NORM};
use super::PreparedQueries;

/// Codes are scaled to this L2 norm: below 2^15 with room for a float32
/// norm that is off by up to 9 %, and `CODE_NORM² · 1.2 < 2^31`.
pub(crate) const CODE_NORM: f32 = 30_000.0;

/// Query tokens per vector (one AVX2 register of int32 accumulators).
pub(crate) const LANES: usize = 8;

/// Codes are stored in chunks of 16 dimensions, each in the order
/// `vpackssdw` leaves them when it packs the int32 codes of dimensions 0..8
/// and 8..16 (its two 128-bit halves interleave): dimension `k` of a chunk
/// sits at position `code_position(k)`. Query and document use the same
/// order, so no permutation is spent per document token, and an integer dot
/// product does not depend on the order of its terms.
pub(crate) const CHUNK: usize = 16;

/// The position of dimension `k` in the stored codes.
pub(crate) fn code_position(k: usize) -> usize {
    let (base, j) = (k / CHUNK * CHUNK, k % CHUNK);
    base + match j {
        4..=7 => j + 4,
        8..=11 => j - 4,
        _ => j,
    }
}

/// The int16 screen's query side, built once per call.
#[derive(Debug, Clone)]
pub(crate) struct Int16Query {
    /// Code pairs per token: `dim` rounded up to [`CHUNK`], halved.
    pub(crate) n_pairs: usize,
    /// `n_pairs × 8 × vectors` u32 words; word `(p, i)` holds query token
    /// `i`'s codes at positions `2p` (low half) and `2p + 1` (high half) (see
    /// [`code_position`]), at [`Int16Query::vector_pairs`]. Padding is 0.
    pub(crate) pairs: Vec<u32>,
    /// Vectors per block of the layout of `pairs`.
    block_vectors: usize,
    /// Per lane: `A`, the bound per unit of document-token norm.
    pub(crate) eps_norm: Vec<f32>,
    /// Per lane: `B`, the bound per unit of a document token's `û`.
    pub(crate) eps_scale: Vec<f32>,
    /// Per lane: `τ`.
    pub(crate) eps_abs: Vec<f32>,
    /// Per vector of 8 lanes (`ceil(n_tokens / 8)` of them): lanes holding a
    /// real query token that is not all zero. The others are all-zero tokens,
    /// whose float32 maximum is exactly +0 against any finite document, or
    /// padding.
    pub(crate) screened: Vec<u8>,
}

impl Int16Query {
    /// Quantizes `q` and its bound coefficients, laid out for a kernel that
    /// screens `block_vectors` vectors at a time, or `None` when the bound
    /// does not apply (a non-finite value, or a token norm above [`MAX_NORM`]).
    pub(crate) fn new(q: &PreparedQueries, block_vectors: usize) -> Option<Self> {
        let (dim, stride) = (q.dim, q.stride);
        let n_pairs = dim.next_multiple_of(CHUNK) / 2;
        // The vectors the kernel walks (the layout's blocks follow them).
        let n_vec = q.n_tokens.div_ceil(LANES);
        let layout = PairLayout::<LANES>::new(n_pairs, block_vectors, n_vec);
        let mut pairs = vec![0u32; n_pairs * n_vec * LANES];
        let mut eps_norm = vec![0.0f32; stride];
        let mut eps_scale = vec![0.0f32; stride];
        let mut eps_abs = vec![0.0f32; stride];
        let mut screened = vec![0u8; n_vec];
        let gamma_dim = gamma(dim + 2, F32_UNIT_ROUNDOFF);
        let column = |i: usize| (0..dim).map(move |k| q.transposed[k * stride + i] as f64);
        for i in 0..q.n_tokens {
            if column(i).any(|v| !v.is_finite()) {
                return None;
            }
            let norm = column(i).map(|v| v * v).sum::<f64>().sqrt();
            if norm > MAX_NORM {
                return None;
            }
            let (vec_index, bit) = (i / LANES, 1u8 << (i % LANES));
            if norm == 0.0 {
                continue;
            }
            screened[vec_index] |= bit;
            let s = CODE_NORM as f64 / norm;
            let (mut code_sq, mut residual_sq) = (0.0f64, 0.0f64);
            let (base, step) = layout.vector_pairs(i / LANES);
            for (k, v) in column(i).enumerate() {
                // |s v| ≤ CODE_NORM: the code fits an i16.
                let code = (s * v).round_ties_even();
                let residual = code / s - v;
                code_sq += code * code;
                residual_sq += residual * residual;
                let position = code_position(k);
                let at = base + (position / 2) * step + i % LANES;
                pairs[at] |= ((code as i16 as u16) as u32) << (16 * (position % 2));
            }
            // ‖q'‖ = ‖cq‖ / s.
            let dequantized_norm = code_sq.sqrt() / s;
            let a = s * (residual_sq.sqrt() + gamma_dim * norm + dequantized_norm / 1_048_576.0);
            let b = s * dequantized_norm * (dim as f64).sqrt() / 2.0 * (1.0 + 1.0 / 2_097_152.0);
            let tau = s * dim as f64 * F32_MIN_NORMAL;
            // f64 → f32 rounds to nearest; the 1e-3 margin covers that and
            // the f64 evaluation many times over.
            eps_norm[i] = (a * 1.001) as f32;
            eps_scale[i] = (b * 1.001) as f32;
            eps_abs[i] = (tau * 1.001) as f32;
        }
        Some(Int16Query {
            n_pairs,
            pairs,
            block_vectors,
            eps_norm,
            eps_scale,
            eps_abs,
            screened,
        })
    }

    /// Where vector `v`'s pairs are in `pairs`: pair `p` of its lane `l` is
    /// word `base + p * step + l`. Vectors are grouped as the kernel walks
    /// them (blocks of `block_vectors`, then single vectors), each block's
    /// rows contiguous, so a tile streams its query block.
    pub(crate) fn vector_pairs(&self, v: usize) -> (usize, usize) {
        PairLayout::<LANES>::new(self.n_pairs, self.block_vectors, self.screened.len())
            .vector_pairs(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes and bound coefficients against first principles: each code
    /// is the rounded scaled value, the dequantised token is within half a
    /// code step of the value, and `A` covers the query's rounding error.
    #[test]
    fn codes_round_the_scaled_query() {
        let dim = 5;
        let tokens: [[f32; 5]; 3] = [
            [0.5, -0.25, 0.125, 1.0, -2.0],
            [0.0; 5],
            [1e-3, 3e-3, -7e-3, 0.0, 2e-3],
        ];
        let rows: Vec<f32> = tokens.iter().flatten().copied().collect();
        let q = PreparedQueries::new(&[&rows], None, dim).unwrap();
        let sq = Int16Query::new(&q, 2).unwrap();
        assert_eq!(sq.screened, vec![0b101]);
        for (i, token) in tokens.iter().enumerate() {
            let norm = token
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let (base, step) = sq.vector_pairs(0);
            for (k, &v) in token.iter().enumerate() {
                let position = code_position(k);
                let word = sq.pairs[base + (position / 2) * step + i];
                let code = (word >> (16 * (position % 2))) as u16 as i16 as f64;
                if norm == 0.0 {
                    assert_eq!(code, 0.0);
                    continue;
                }
                let scaled = v as f64 * CODE_NORM as f64 / norm;
                assert!(
                    (code - scaled).abs() <= 0.5,
                    "token {i} dim {k}: {code} vs {scaled}"
                );
            }
            if norm > 0.0 {
                // A ≥ s ‖Δq‖ ≥ 0 and B ≈ CODE_NORM √dim / 2.
                let b = sq.eps_scale[i] as f64;
                let expected = CODE_NORM as f64 * (dim as f64).sqrt() / 2.0;
                assert!((b / expected - 1.0).abs() < 1e-2, "B {b} vs {expected}");
                assert!(sq.eps_norm[i] > 0.0);
            }
        }
    }

    /// The kernel's arithmetic for one document token, in scalar code: its
    /// float32 norm, scales, codes, and the approximate value against the
    /// query token `i` of `sq`; with the bound's `N` and `U`.
    fn approximate(sq: &Int16Query, i: usize, d: &[f32]) -> (f32, f32, f32) {
        let squares = d.iter().fold(0f32, |acc, &v| v.mul_add(v, acc));
        let norm = squares.sqrt();
        let (up, down) = (CODE_NORM / norm, norm * (1.0 / CODE_NORM));
        let (base, step) = sq.vector_pairs(i / LANES);
        let dot: i64 = d
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let position = code_position(k);
                let word = sq.pairs[base + (position / 2) * step + i % LANES];
                let code_q = (word >> (16 * (position % 2))) as u16 as i16 as i64;
                code_q * (v * up).round_ties_even() as i64
            })
            .sum();
        let norm_bound = super::super::screen::norm_bound(squares, d.len()).unwrap();
        ((dot as f32) * down, norm_bound, down)
    }

    /// `|a − s f| ≤ A N + B U + τ` on random tokens and on tokens built so
    /// that every rounding error adds up: values half a code step off the
    /// grid, the query's signs matching them.
    #[test]
    fn the_bound_holds_where_errors_align() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut worst = 0.0f64;
        for (case, dim) in [3usize, 8, 31, 128, 384]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            let aligned = case % 2 == 1;
            let d: Vec<f32> = (0..dim)
                .map(|k| {
                    if aligned {
                        // About a code step (‖d‖ / 30000 with ‖d‖ ≈ √dim / 2)
                        // times an integer and a half, less a hair.
                        let code_step = (dim as f32).sqrt() / 2.0 / CODE_NORM;
                        code_step * ((k % 7) as f32 * 1000.0 + 0.4999)
                    } else {
                        next()
                    }
                })
                .collect();
            let q: Vec<f32> = (0..dim)
                .map(|k| {
                    if aligned {
                        1.0 + (k % 3) as f32
                    } else {
                        next()
                    }
                })
                .collect();
            let prepared = PreparedQueries::new(&[&q], None, dim).unwrap();
            let sq = Int16Query::new(&prepared, 2).unwrap();
            let (a, n, u) = approximate(&sq, 0, &d);
            let exact = q
                .iter()
                .zip(&d)
                .fold(0f32, |acc, (&x, &y)| x.mul_add(y, acc));
            let s = CODE_NORM as f64 / q.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            let bound = sq.eps_norm[0] as f64 * n as f64
                + sq.eps_scale[0] as f64 * u as f64
                + sq.eps_abs[0] as f64;
            let error = (a as f64 - s * exact as f64).abs();
            assert!(
                error <= bound,
                "dim {dim} case {case}: |a − s f| = {error} > {bound}"
            );
            worst = worst.max(error / bound);
        }
        eprintln!("largest error / bound: {worst:.3}");
    }

    #[test]
    fn code_positions_are_a_permutation_of_each_chunk() {
        let mut seen: Vec<usize> = (0..48).map(code_position).collect();
        assert_eq!(
            &seen[..16],
            &[0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]
        );
        seen.sort_unstable();
        assert_eq!(seen, (0..48).collect::<Vec<_>>());
    }

    #[test]
    fn non_finite_and_huge_queries_are_outside_the_bound() {
        for bad in [f32::NAN, f32::INFINITY, 1e30] {
            let q = PreparedQueries::new(&[&[1.0, bad]], None, 2).unwrap();
            assert!(Int16Query::new(&q, 2).is_none(), "{bad}");
        }
    }
}
