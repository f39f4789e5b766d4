//! bf16-screened MaxSim: the same results as the float32 kernel, from half
//! the multiply-adds; for float32, float16 and bfloat16 documents (the
//! latter screened in place, the others converted per call).
//!
//! On CPUs whose `vdpbf16ps` retires twice the multiply-adds of an fp32 FMA
//! (AMD Zen 4: one 512-bit instruction per cycle either way, 32 products
//! against 16), most of a document's dot products can be computed in bf16,
//! provided no answer changes. For query token `i` and document token `j`:
//!
//! * `a_ij` is the dot product of the bf16-rounded vectors, accumulated in fp32;
//! * `f_ij` is what the float32 kernel computes (a sequential FMA chain over
//!   `k`; for 16-bit documents, over their values widened exactly).
//!
//! Both are within a bound of the exact `s_ij = ⟨q_i, d_j⟩` that depends only
//! on `q_i`, on `‖d_j‖` and on the norm of `d_j`'s bf16 rounding error, so
//! `|a_ij − f_ij| ≤ A_i ‖d‖ + B_i ‖d − d̂‖ + τ` (see `Bf16Query::new`).
//! The kernel screens every token in bf16, keeps per query token the best
//! four approximate values with their token indices and the fifth-best
//! value (slightly truncated, to pack each with its token in 32 bits; the
//! window below widens by the truncation), and then:
//!
//! * every token whose approximate value is within twice the bound of the
//!   best approximate value is a candidate for the float32 maximum; no other
//!   token can be (its float32 value is provably below a candidate's);
//! * the candidates (one, usually; up to four when the tracked runners-up
//!   are close; rarely more, found by a second bf16 pass) are recomputed with
//!   the float32 kernel's own arithmetic, the FMA chain over `k` in order.
//!
//! Entry points screen from the query sizes the table's `ScreenKernel` gives.
//! The result is the float32 kernel's maximum, bit for bit: the screen only
//! decides which float32 dot products are worth computing. Inputs the bound
//! does not cover (non-finite values, norms above 1e18) fall back to the
//! float32 kernel for that document or call.

// The bound and the query preparation are portable; only x86-64 has a
// kernel that uses them (AVX512_BF16).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::PreparedQueries;
use crate::reduced::half::{bf16_bits_to_f32, f32_to_bf16_bits};

/// Unit roundoff of bf16 (8 significant bits, round to nearest even).
const BF16_UNIT_ROUNDOFF: f64 = 1.0 / 256.0;
/// Unit roundoff of f32.
pub(crate) const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;
/// The smallest normal f32: `vcvtne2ps2bf16` and `vdpbf16ps` flush anything
/// smaller (inputs, products and partial sums) to zero.
pub(crate) const F32_MIN_NORMAL: f64 = 1.175_494_350_822_287_5e-38;
/// Query and document norms above this fall back to the float32 kernel, so
/// no product or partial sum can overflow (1e18 · 1e18 ≪ f32::MAX).
pub(crate) const MAX_NORM: f64 = 1e18;

/// `n u / (1 − n u)`: the relative error bound of any summation of `n` terms
/// in a format of unit roundoff `u` (Higham, *Accuracy and Stability*, §3.1).
pub(crate) fn gamma(n: usize, unit_roundoff: f64) -> f64 {
    let nu = n as f64 * unit_roundoff;
    nu / (1.0 - nu)
}

/// `x` rounded to bf16 (nearest even) as its bits, with results below the
/// smallest normal flushed to zero as the hardware does.
fn to_bf16_flushed(x: f32) -> u16 {
    let bits = f32_to_bf16_bits(x);
    if (bf16_bits_to_f32(bits).abs() as f64) < F32_MIN_NORMAL {
        0
    } else {
        bits
    }
}

/// The query side of the bf16 screen, built once per call from a [`PreparedQueries`].
#[derive(Debug, Clone)]
pub(crate) struct Bf16Query {
    /// `ceil(dim / 2)`: bf16 pairs per token.
    pub(crate) n_pairs: usize,
    /// `n_pairs × stride` u32 words; word `(p, i)` holds query token `i`'s
    /// dimensions `2p` (low half) and `2p + 1` (high half) in bf16, at
    /// [`Bf16Query::vector_pairs`]. Padding is 0.
    pub(crate) pairs: Vec<u32>,
    /// Vectors (of 16 tokens) per block of the layout of `pairs`.
    block_vectors: usize,
    /// Per lane: `A_i`, the screen's error per unit of document-token norm.
    pub(crate) eps_doc: Vec<f32>,
    /// Per lane: `B_i`, its error per unit norm of a document token's bf16 rounding error.
    pub(crate) eps_residual: Vec<f32>,
    /// `τ`, the absolute error from values flushed as tiny (the same for every lane).
    pub(crate) eps_abs: f32,
    /// Per vector of 16 lanes: lanes holding a real query token that is not all zero.
    pub(crate) screened: Vec<u16>,
    /// Per vector of 16 lanes: real query tokens that are all zero; their
    /// float32 maximum is exactly +0 against any finite document.
    pub(crate) zero: Vec<u16>,
}

impl Bf16Query {
    /// Builds the bf16 query and its error bounds, or `None` when the bound
    /// does not apply (a non-finite value, or a token norm above [`MAX_NORM`]).
    ///
    /// For query token `q` with bf16 rounding `q̂` (`q̃ = q − q̂`) and a document
    /// token `d` with bf16 rounding `d̂` (`d̃ = d − d̂`; `vcvtne2ps2bf16` rounds
    /// to nearest even and flushes values below the smallest normal):
    ///
    /// * `s − ⟨q̂, d̂⟩ = ⟨q̃, d⟩ + ⟨q̂, d̃⟩`, at most `‖q̃‖ ‖d‖ + ‖q̂‖ ‖d̃‖` (Cauchy–Schwarz);
    /// * `vdpbf16ps` forms each product exactly (8 × 8 significant bits) and
    ///   sums `dim` of them in fp32: `γ_dim ‖q̂‖ ‖d̂‖ + 2 dim · min_normal`
    ///   (products and partial sums that underflow are flushed), with
    ///   `‖d̂‖ ≤ (1 + u_bf16) ‖d‖`;
    /// * the float32 FMA chain: `|f − s| ≤ γ_dim ‖q‖ ‖d‖ + dim · min_normal`.
    ///
    /// So `|a − f| ≤ A ‖d‖ + B ‖d̃‖ + τ` with
    /// `A = ‖q̃‖ + γ_dim (1 + u_bf16) ‖q̂‖ + γ_dim ‖q‖`, `B = ‖q̂‖` and
    /// `τ = 3 dim · min_normal`, each rounded up generously.
    ///
    /// The pairs are laid out for a kernel that screens `block_vectors`
    /// vectors at a time ([`Bf16Query::vector_pairs`]).
    pub(crate) fn new(q: &PreparedQueries, block_vectors: usize) -> Option<Self> {
        let (dim, stride) = (q.dim, q.stride);
        let n_pairs = dim.div_ceil(2);
        let mut pairs = vec![0u32; n_pairs * stride];
        let layout = PairLayout::<16>::new(n_pairs, block_vectors, stride / 16);
        let mut eps_doc = vec![0.0f32; stride];
        let mut eps_residual = vec![0.0f32; stride];
        let n_vec = stride / 16;
        let mut screened = vec![0u16; n_vec];
        let mut zero = vec![0u16; n_vec];
        let gamma_dim = gamma(dim + 2, F32_UNIT_ROUNDOFF);
        for i in 0..q.n_tokens {
            let (mut norm_sq, mut rounded_sq, mut residual_sq) = (0.0f64, 0.0f64, 0.0f64);
            for p in 0..n_pairs {
                let mut word = 0u32;
                for half_index in 0..2 {
                    let k = 2 * p + half_index;
                    if k >= dim {
                        break;
                    }
                    let value = q.transposed[k * stride + i];
                    if !value.is_finite() {
                        return None;
                    }
                    let bits = to_bf16_flushed(value);
                    word |= (bits as u32) << (16 * half_index);
                    let rounded = bf16_bits_to_f32(bits);
                    let (value, rounded) = (value as f64, rounded as f64);
                    norm_sq += value * value;
                    rounded_sq += rounded * rounded;
                    residual_sq += (value - rounded) * (value - rounded);
                }
                let (base, step) = layout.vector_pairs(i / 16);
                pairs[base + p * step + i % 16] = word;
            }
            let (norm, rounded_norm, residual_norm) =
                (norm_sq.sqrt(), rounded_sq.sqrt(), residual_sq.sqrt());
            if norm > MAX_NORM {
                return None;
            }
            let (vec_index, bit) = (i / 16, 1u16 << (i % 16));
            if norm_sq == 0.0 {
                zero[vec_index] |= bit;
                continue;
            }
            screened[vec_index] |= bit;
            let eps_doc_i = residual_norm
                + gamma_dim * (1.0 + BF16_UNIT_ROUNDOFF) * rounded_norm
                + gamma_dim * norm;
            // f64 → f32 rounds to nearest; the 1e-3 margin covers that and the
            // f64 evaluation above many times over.
            eps_doc[i] = (eps_doc_i * 1.001) as f32;
            eps_residual[i] = (rounded_norm * 1.001) as f32;
        }
        let eps_abs = (3.0 * dim as f64 * F32_MIN_NORMAL * 1.001) as f32;
        Some(Bf16Query {
            n_pairs,
            pairs,
            block_vectors,
            eps_doc,
            eps_residual,
            eps_abs,
            screened,
            zero,
        })
    }
}

impl Bf16Query {
    /// Where vector `v`'s pairs are in `pairs`: pair `p` of its lane `l` is
    /// word `base + p * step + l`.
    ///
    /// Vectors are grouped as the kernel walks them: blocks of
    /// `block_vectors`, then single vectors; a block's rows are contiguous
    /// (`step` is its width in words), so a tile streams its query block
    /// instead of striding the whole query width per pair (for a large batch,
    /// one 4 KiB step per pair, every row in the same L1 set).
    pub(crate) fn vector_pairs(&self, v: usize) -> (usize, usize) {
        PairLayout::<16>::new(self.n_pairs, self.block_vectors, self.screened.len()).vector_pairs(v)
    }
}

/// Where a screen query's vectors sit in its pair array ([`Bf16Query::pairs`]
/// with 16 lanes, `Int16Query::pairs` with 8): the vectors are grouped as the
/// kernel walks them, blocks of `block_vectors` and then single vectors, each
/// block's rows contiguous.
pub(crate) struct PairLayout<const LANES: usize> {
    n_pairs: usize,
    block_vectors: usize,
    /// Vectors in whole blocks.
    full: usize,
}

impl<const LANES: usize> PairLayout<LANES> {
    /// The layout of `n_vec` vectors of `n_pairs` pairs each.
    pub(crate) fn new(n_pairs: usize, block_vectors: usize, n_vec: usize) -> Self {
        PairLayout {
            n_pairs,
            block_vectors,
            full: n_vec / block_vectors * block_vectors,
        }
    }

    /// `(base, step)`: pair `p` of lane `l` of vector `v` is word
    /// `base + p * step + l`.
    pub(crate) fn vector_pairs(&self, v: usize) -> (usize, usize) {
        let words_per_vector = self.n_pairs * LANES;
        if v < self.full {
            let first = v / self.block_vectors * self.block_vectors;
            (
                first * words_per_vector + (v - first) * LANES,
                self.block_vectors * LANES,
            )
        } else {
            (v * words_per_vector, LANES)
        }
    }
}

/// An upper bound on a norm from its float32 sum of squares over `dim`
/// values (any summation order), or `None` when that is not finite or the
/// norm is above [`MAX_NORM`].
pub(crate) fn norm_bound(sum_squares: f32, dim: usize) -> Option<f32> {
    let computed = sum_squares as f64;
    if !computed.is_finite() {
        return None;
    }
    // Each square and addition may round (γ), and squares below the smallest
    // normal may be lost entirely (dim · min_normal).
    let bound = computed / (1.0 - gamma(dim + 16, F32_UNIT_ROUNDOFF)) + dim as f64 * F32_MIN_NORMAL;
    let norm = bound.sqrt() * (1.0 + 1e-6);
    (norm <= MAX_NORM).then_some(norm as f32)
}

/// `√dim · min_normal`: a bound on `‖d − d̂‖` where `d̂` is `d` with its
/// subnormal components flushed to zero, as `vdpbf16ps` reads bf16 values.
pub(crate) fn flushed_residual_bound(dim: usize) -> f32 {
    ((dim as f64).sqrt() * F32_MIN_NORMAL * 1.001) as f32
}

/// A screen's query side, as its kernel's `prepare` builds it.
pub(crate) enum ScreenQuery {
    /// The AVX-512 bf16 screen's.
    Bf16(Bf16Query),
    /// The AVX2 int16 screen's (`screen_i16`).
    Int16(super::screen_i16::Int16Query),
}

/// Per-task scratch of the screens: one document in bf16 or int16 pairs, and
/// (int16) its per-token dequantisation factors, a block's approximate
/// values and its extra candidates.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) doc_pairs: Vec<u32>,
    pub(crate) token_scales: Vec<f32>,
    pub(crate) approx: Vec<f32>,
    pub(crate) extra: Vec<(u32, u32)>,
}

/// Whether this CPU can run a screen (the bf16 screen: AVX-512F/BW/VL and
/// AVX512_BF16; the int16 screen: AVX2), whether or not the scoring entry
/// points use it by default.
pub fn screen_supported() -> bool {
    crate::dispatch::screen_table().is_ok()
}
