//! The product residual codec (product quantization, Jégou, Douze and
//! Schmid 2011): the residual is cut into sub-vectors of `w = 8 / nbits`
//! dimensions and each is stored as the byte naming the nearest of the
//! [`CODEWORDS`] codewords learned for its position. That is `nbits` per
//! dimension, the scalar codec's size, but codewords follow the joint spread
//! of neighbouring dimensions instead of a grid of per-dimension buckets.
//!
//! Sub-vector `m` covers dimensions `m·w .. min(dim, (m+1)·w)` (the last may
//! be narrower). Its codebook is [`CODEWORDS`] rows of its width, row-major,
//! starting at value `CODEWORDS · m · w`: all codebooks hold
//! `CODEWORDS · dim` values. Codewords are k-means centroids of the training
//! residuals' sub-vectors (seeded, so the codec depends only on the sample
//! and the seed); encoding picks the Euclidean nearest with the core's
//! argmax kernel, as coarse assignment does.

use super::check_nbits;
use crate::error::{invalid, Result};
use crate::file::F32Rows;
use crate::kmeans;
use maxsim_core::float::argmax::{argmax_rows, dot_rows, PreparedCentroids};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Codewords per sub-vector: one byte of code.
pub const CODEWORDS: usize = 256;
/// Training rows used to fit the codebooks (faiss's default for a
/// 256-word product quantizer is the same 256 points per codeword).
const FIT_ROWS: usize = CODEWORDS * 256;
/// Lloyd iterations per codebook.
const FIT_ITERS: usize = 12;

/// Learned codebooks of one index.
#[derive(Debug)]
pub struct ProductCodec {
    dim: usize,
    nbits: usize,
    /// `CODEWORDS × dim` values, laid out as in the module docs.
    codebooks: F32Rows,
    /// Each sub-vector's codebook prepared for nearest-codeword search.
    prepared: OnceLock<Vec<PreparedCentroids>>,
}

impl ProductCodec {
    /// Fits the codebooks on `residuals` (`n × dim`, rows with a non-finite
    /// value skipped), with `seed` for the k-means initialisation.
    pub fn fit(residuals: &[f32], dim: usize, nbits: usize, seed: u64) -> Result<ProductCodec> {
        check_nbits(nbits)?;
        if dim == 0 || !residuals.len().is_multiple_of(dim) {
            return invalid!(
                "residuals: {} values are not rows of dim {dim}",
                residuals.len()
            );
        }
        let n = residuals.len() / dim;
        let step = n.div_ceil(FIT_ROWS).max(1);
        let rows: Vec<&[f32]> = residuals
            .chunks_exact(dim)
            .step_by(step)
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .collect();
        if rows.is_empty() {
            return invalid!("residuals: no finite training rows to fit the codebooks on");
        }
        let w = 8 / nbits;
        let books: Vec<Vec<f32>> = (0..dim.div_ceil(w))
            .into_par_iter()
            .map(|m| {
                let (lo, hi) = (m * w, ((m + 1) * w).min(dim));
                let sub: Vec<f32> = rows
                    .iter()
                    .flat_map(|r| r[lo..hi].iter().copied())
                    .collect();
                let seed = seed ^ (m as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut book = kmeans::train(&sub, hi - lo, CODEWORDS, FIT_ITERS, seed)?;
                // Fewer training rows than codewords: the spare codewords
                // repeat the first (never nearer than it, so never chosen).
                let first = book[..hi - lo].to_vec();
                while book.len() < CODEWORDS * (hi - lo) {
                    book.extend_from_slice(&first);
                }
                Ok(book)
            })
            .collect::<Result<_>>()?;
        Self::new(dim, nbits, books.concat())
    }

    /// A codec from codebooks in memory (`CODEWORDS × dim` finite values).
    pub fn new(dim: usize, nbits: usize, codebooks: Vec<f32>) -> Result<ProductCodec> {
        if codebooks.iter().any(|v| !v.is_finite()) {
            return invalid!("codebooks: hold a non-finite value");
        }
        Self::mapped(dim, nbits, F32Rows::Owned(codebooks))
    }

    /// A codec from a training file's codebooks, checked for shape only: the
    /// values are what this crate wrote (the file's checksums cover them),
    /// and reading them all would make every page resident at `open`.
    pub fn mapped(dim: usize, nbits: usize, codebooks: F32Rows) -> Result<ProductCodec> {
        check_nbits(nbits)?;
        if dim == 0 || codebooks.len() != CODEWORDS * dim {
            return invalid!(
                "codebooks: {} values for dim {dim} (expected {})",
                codebooks.len(),
                CODEWORDS * dim
            );
        }
        Ok(ProductCodec {
            dim,
            nbits,
            codebooks,
            prepared: OnceLock::new(),
        })
    }

    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    /// Dimensions per sub-vector (the last may have fewer).
    fn width(&self) -> usize {
        8 / self.nbits
    }

    /// Bytes of one token's codes: one per sub-vector.
    pub fn bytes_per_token(&self) -> usize {
        self.dim.div_ceil(self.width())
    }

    /// Sub-vector `m`'s dimensions and codebook.
    #[inline]
    fn book(&self, m: usize) -> (usize, usize, &[f32]) {
        let w = self.width();
        let (lo, hi) = (m * w, ((m + 1) * w).min(self.dim));
        let start = CODEWORDS * lo;
        (
            lo,
            hi,
            &self.codebooks[start..start + CODEWORDS * (hi - lo)],
        )
    }

    fn prepared(&self) -> Result<&[PreparedCentroids]> {
        if let Some(p) = self.prepared.get() {
            return Ok(p);
        }
        let books = (0..self.bytes_per_token())
            .map(|m| {
                let (lo, hi, book) = self.book(m);
                kmeans::prepare_l2(book, hi - lo)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.prepared.get_or_init(|| books))
    }

    /// Encodes `residuals` (`n × dim`) into `out` (`n × bytes_per_token()`):
    /// byte `m` of a token is the codeword nearest its sub-vector `m`.
    pub fn encode_rows(&self, residuals: &[f32], out: &mut [u8]) -> Result<()> {
        let (dim, bpt) = (self.dim, self.bytes_per_token());
        let n = residuals.len() / dim;
        let prepared = self.prepared()?;
        let mut sub = Vec::with_capacity(n * self.width());
        let mut nearest = vec![0u32; n];
        for (m, book) in prepared.iter().enumerate() {
            let (lo, hi, _) = self.book(m);
            sub.clear();
            for r in residuals.chunks_exact(dim) {
                sub.extend_from_slice(&r[lo..hi]);
            }
            argmax_rows(book, &sub, &mut nearest)?;
            for (packed, &code) in out.chunks_exact_mut(bpt).zip(&nearest) {
                packed[m] = code as u8;
            }
        }
        Ok(())
    }

    /// Each query token's inner product with every codeword, laid out so
    /// that one token's codes add whole rows across query tokens:
    /// `tables[(m · CODEWORDS + code) · stride + i]` = ⟨sub-vector `m` of
    /// `q_i`, codeword `code` of `m`⟩ for the `nq = q.len() / dim` query
    /// tokens `i`, `-inf` in the padding lanes `nq..stride`, written to
    /// `tables` (`bytes_per_token() × CODEWORDS × stride` values; `stride`
    /// is `nq` rounded up to 16, as for the centroid scores). Each
    /// sub-vector's rows are the core's centroid-score kernel (`dot_rows`)
    /// run with the query's sub-vectors as the "centroids".
    pub fn query_tables(&self, q: &[f32], stride: usize, tables: &mut [f32]) -> Result<()> {
        let dim = self.dim;
        tables
            .par_chunks_mut(CODEWORDS * stride)
            .enumerate()
            .try_for_each(|(m, out)| {
                let (lo, hi, book) = self.book(m);
                let sub: Vec<f32> = q
                    .chunks_exact(dim)
                    .flat_map(|token| token[lo..hi].iter().copied())
                    .collect();
                let lanes = PreparedCentroids::new(&sub, None, hi - lo)?;
                Ok(dot_rows(&lanes, book, out)?)
            })
    }

    /// `out = centroid + decoded residual` for one token.
    #[inline]
    pub fn decode_add(&self, codes: &[u8], centroid: &[f32], out: &mut [f32]) {
        for (m, &code) in codes[..self.bytes_per_token()].iter().enumerate() {
            let (lo, hi, book) = self.book(m);
            let word = &book[code as usize * (hi - lo)..(code as usize + 1) * (hi - lo)];
            for ((o, &c), &v) in out[lo..hi].iter_mut().zip(&centroid[lo..hi]).zip(word) {
                *o = c + v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Rows drawn around a few points per sub-vector, plus noise.
    fn clustered(dim: usize, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut unit = || rng.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5;
        let centers: Vec<f32> = (0..8 * dim).map(|_| unit() * 4.0).collect();
        let mut rows = Vec::with_capacity(n * dim);
        for i in 0..n {
            for k in 0..dim {
                rows.push(centers[(i * 7 + k / 3) % 8 * dim + k] + 0.05 * unit());
            }
        }
        rows
    }

    #[test]
    fn encodes_each_sub_vector_as_its_nearest_codeword() {
        for (dim, nbits) in [(13usize, 2usize), (16, 1), (7, 4), (3, 1)] {
            let rows = clustered(dim, 600, dim as u64);
            let codec = ProductCodec::fit(&rows, dim, nbits, 3).unwrap();
            let w = 8 / nbits;
            assert_eq!(codec.bytes_per_token(), (dim * nbits).div_ceil(8));
            assert_eq!(codec.codebooks().len(), CODEWORDS * dim);
            let n = rows.len() / dim;
            let mut packed = vec![0u8; n * codec.bytes_per_token()];
            codec.encode_rows(&rows, &mut packed).unwrap();
            let centroid: Vec<f32> = (0..dim).map(|k| k as f32 * 0.25).collect();
            let mut out = vec![0.0f32; dim];
            for (r, codes) in rows.chunks(dim).zip(packed.chunks(codec.bytes_per_token())) {
                codec.decode_add(codes, &centroid, &mut out);
                for (m, &code) in codes.iter().enumerate() {
                    let (lo, hi) = (m * w, ((m + 1) * w).min(dim));
                    let width = hi - lo;
                    // Brute force over the codebook as stored.
                    let dist = |c: usize| -> f32 {
                        (0..width)
                            .map(|j| r[lo + j] - codec.codebooks()[CODEWORDS * lo + c * width + j])
                            .map(|d| d * d)
                            .sum()
                    };
                    let best = (0..CODEWORDS).map(dist).fold(f32::INFINITY, f32::min);
                    // The kernel ranks by r·c - |c|²/2, exact up to rounding
                    // at the scale of |r|² (values here are up to 2).
                    let scale: f32 = r[lo..hi].iter().map(|v| v * v).sum::<f32>() + 1.0;
                    let got = dist(code as usize);
                    assert!(
                        got <= best + 1e-5 * scale,
                        "dim {dim} m {m}: {got} vs {best}"
                    );
                    for j in 0..width {
                        let word = codec.codebooks()[CODEWORDS * lo + code as usize * width + j];
                        assert_eq!(out[lo + j], centroid[lo + j] + word);
                    }
                }
            }
        }
    }

    #[test]
    fn beats_the_scalar_codec_on_correlated_dimensions_and_is_seeded() {
        // Sub-vectors sit near 8 points: 256 codewords capture them, while
        // 2 bits per dimension on a grid cannot.
        let dim = 16;
        let rows = clustered(dim, 4000, 1);
        let pq = ProductCodec::fit(&rows, dim, 2, 0).unwrap();
        let scalar = crate::codec::ScalarCodec::fit(&rows, dim, 2).unwrap();
        let zero = vec![0.0f32; dim];
        let error = |decode: &dyn Fn(&[f32], &mut [f32])| -> f64 {
            let mut out = vec![0.0f32; dim];
            rows.chunks(dim)
                .map(|r| {
                    decode(r, &mut out);
                    r.iter()
                        .zip(&out)
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum::<f64>()
                })
                .sum()
        };
        let pq_error = error(&|r, out| {
            let mut codes = vec![0u8; pq.bytes_per_token()];
            pq.encode_rows(r, &mut codes).unwrap();
            pq.decode_add(&codes, &zero, out);
        });
        let scalar_error = error(&|r, out| {
            let mut codes = vec![0u8; scalar.bytes_per_token()];
            scalar.encode(r, &mut codes);
            scalar.decode_add(&codes, &zero, out);
        });
        assert!(
            pq_error < 0.2 * scalar_error,
            "{pq_error} vs {scalar_error}"
        );
        let again = ProductCodec::fit(&rows, dim, 2, 0).unwrap();
        assert_eq!(pq.codebooks(), again.codebooks());
        let other = ProductCodec::fit(&rows, dim, 2, 1).unwrap();
        assert_ne!(pq.codebooks(), other.codebooks());
    }

    #[test]
    fn few_rows_and_bad_codebooks() {
        // 5 rows: every codeword past the fifth repeats the first.
        let rows: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let codec = ProductCodec::fit(&rows, 4, 2, 0).unwrap();
        let mut codes = vec![0u8; 5];
        codec.encode_rows(&rows, &mut codes).unwrap();
        let mut out = vec![0.0f32; 4];
        for (r, &c) in rows.chunks(4).zip(&codes) {
            codec.decode_add(&[c], &[0.0; 4], &mut out);
            assert_eq!(out, r, "each of 5 rows is its own codeword");
        }
        assert!(ProductCodec::fit(&[f32::NAN; 8], 4, 2, 0).is_err());
        assert!(ProductCodec::new(4, 2, vec![0.0; CODEWORDS * 4 - 1]).is_err());
        let mut bad = vec![0.0; CODEWORDS * 4];
        bad[7] = f32::INFINITY;
        assert!(ProductCodec::new(4, 2, bad).is_err());
    }
}
