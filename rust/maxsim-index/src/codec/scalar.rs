//! The scalar residual codec (ColBERTv2's, with per-dimension buckets):
//! each residual value is quantized to `nbits` against bucket cutoffs and
//! reconstructed with bucket weights.
//!
//! Buckets are fitted per dimension: the cutoffs of dimension `k` are the
//! `i / 2^nbits` quantiles of the training residuals' values in that
//! dimension, its weights the mean value inside each bucket (the
//! least-squares reconstruction for those cutoffs). Embedding dimensions
//! differ in spread (transformer outputs carry a few outlier dimensions), and
//! one set of buckets shared by all dimensions wastes most levels of the
//! narrow ones: per-dimension buckets cut the reconstruction error, which is
//! what the residual-only ranking's recall rests on. A codec with one shared
//! set of buckets (ColBERTv2's, and format version 1's) is still read.
//!
//! Codes are packed LSB first: dimension `k`'s code sits at bit
//! `(k · nbits) mod 8` of byte `k · nbits / 8`; a token takes
//! `⌈dim · nbits / 8⌉` bytes.

use super::check_nbits;
use crate::error::{invalid, Result};

/// The learned buckets of one index, per dimension.
#[derive(Debug, Clone)]
pub struct ScalarCodec {
    dim: usize,
    nbits: usize,
    /// `dim × (2^nbits - 1)`, increasing within each dimension.
    cutoffs: Vec<f32>,
    /// `dim × 2^nbits`.
    weights: Vec<f32>,
}

/// Residual values per dimension used to fit the buckets (a larger sample
/// moves the quantiles by less than their sampling noise).
const FIT_VALUES_PER_DIM: usize = 1 << 16;

impl ScalarCodec {
    /// Fits the buckets of each dimension on `residuals` (`n × dim`).
    pub fn fit(residuals: &[f32], dim: usize, nbits: usize) -> Result<ScalarCodec> {
        check_nbits(nbits)?;
        if dim == 0 {
            return invalid!("dim: must be at least 1");
        }
        let n = residuals.len() / dim;
        let step = n.div_ceil(FIT_VALUES_PER_DIM).max(1);
        let levels = 1usize << nbits;
        let mut cutoffs = Vec::with_capacity(dim * (levels - 1));
        let mut weights = Vec::with_capacity(dim * levels);
        for k in 0..dim {
            let mut values: Vec<f32> = (0..n)
                .step_by(step)
                .map(|r| residuals[r * dim + k])
                .filter(|v| v.is_finite())
                .collect();
            if values.is_empty() {
                values.push(0.0);
            }
            values.sort_unstable_by(f32::total_cmp);
            let quantile = |q: f64| {
                let pos = q * (values.len() - 1) as f64;
                let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
                let hi = (lo + 1).min(values.len() - 1);
                (values[lo] as f64 * (1.0 - frac) + values[hi] as f64 * frac) as f32
            };
            let cuts: Vec<f32> = (1..levels)
                .map(|i| quantile(i as f64 / levels as f64))
                .collect();
            // The mean of each bucket's values (values sorted: buckets are runs);
            // an empty bucket (ties) falls back to its middle quantile.
            let mut start = 0;
            for b in 0..levels {
                let end = match cuts.get(b) {
                    Some(&cut) => values.partition_point(|&v| v <= cut),
                    None => values.len(),
                };
                weights.push(if end > start {
                    (values[start..end].iter().map(|&v| v as f64).sum::<f64>()
                        / (end - start) as f64) as f32
                } else {
                    quantile((b as f64 + 0.5) / levels as f64)
                });
                start = end.max(start);
            }
            cutoffs.extend(cuts);
        }
        Self::new(dim, nbits, cutoffs, weights)
    }

    /// A codec from stored buckets: per dimension (`dim × (2^nbits - 1)`
    /// cutoffs, `dim × 2^nbits` weights) or shared by all dimensions
    /// (`2^nbits - 1` and `2^nbits`); cutoffs increase within a dimension.
    pub fn new(
        dim: usize,
        nbits: usize,
        cutoffs: Vec<f32>,
        weights: Vec<f32>,
    ) -> Result<ScalarCodec> {
        check_nbits(nbits)?;
        let levels = 1usize << nbits;
        let (cutoffs, weights) = if cutoffs.len() == levels - 1 && weights.len() == levels {
            (cutoffs.repeat(dim), weights.repeat(dim))
        } else {
            (cutoffs, weights)
        };
        if dim == 0 || cutoffs.len() != dim * (levels - 1) || weights.len() != dim * levels {
            return invalid!(
                "buckets: {} cutoffs and {} weights for nbits {nbits} and dim {dim}",
                cutoffs.len(),
                weights.len()
            );
        }
        if cutoffs.chunks(levels - 1).any(|c| {
            c.windows(2)
                .any(|w| w[0].partial_cmp(&w[1]).is_none_or(|o| o.is_gt()))
        }) {
            return invalid!("buckets: cutoffs must be non-decreasing in each dimension");
        }
        Ok(ScalarCodec {
            dim,
            nbits,
            cutoffs,
            weights,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn nbits(&self) -> usize {
        self.nbits
    }

    /// `dim × (2^nbits - 1)` cutoffs.
    pub fn cutoffs(&self) -> &[f32] {
        &self.cutoffs
    }

    /// `dim × 2^nbits` weights.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Bytes of one token's packed residual.
    pub fn bytes_per_token(&self) -> usize {
        (self.dim * self.nbits).div_ceil(8)
    }

    /// The bucket of value `v` in dimension `k`.
    #[inline]
    pub fn bucket(&self, k: usize, v: f32) -> usize {
        let per = (1 << self.nbits) - 1;
        // The bucket is the number of the dimension's cutoffs below the value.
        self.cutoffs[k * per..(k + 1) * per]
            .iter()
            .filter(|&&x| x < v)
            .count()
    }

    /// Packs `residual` (`dim` values) into `out` (`bytes_per_token()` bytes).
    pub fn encode(&self, residual: &[f32], out: &mut [u8]) {
        out.fill(0);
        for (k, &v) in residual.iter().enumerate() {
            let code = self.bucket(k, v) as u8;
            let bit = k * self.nbits;
            out[bit / 8] |= code << (bit % 8);
        }
    }

    /// `out = centroid + decoded residual` for one token.
    #[inline]
    pub fn decode_add(&self, codes: &[u8], centroid: &[f32], out: &mut [f32]) {
        let (nbits, levels) = (self.nbits, 1usize << self.nbits);
        let mask = (levels - 1) as u8;
        for (k, (o, &c)) in out[..self.dim].iter_mut().zip(centroid).enumerate() {
            let bit = k * nbits;
            let code = (codes[bit / 8] >> (bit % 8)) & mask;
            *o = c + self.weights[k * levels + code as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Residuals whose dimensions differ in spread by a factor of up to 40.
    fn skewed(dim: usize, n: usize) -> Vec<f32> {
        (0..dim * n)
            .map(|i| {
                let k = i % dim;
                let v = ((i * 37 % 101) as f32 - 50.0) / 100.0;
                v * (1.0 + 39.0 * (k == 3) as u8 as f32) + 0.1 * k as f32
            })
            .collect()
    }

    #[test]
    fn round_trip_reconstructs_the_bucket_weights() {
        for nbits in [1usize, 2, 4] {
            let dim = 13;
            let residuals = skewed(dim, 200);
            let codec = ScalarCodec::fit(&residuals, dim, nbits).unwrap();
            let levels = 1 << nbits;
            assert_eq!(codec.bytes_per_token(), (dim * nbits).div_ceil(8));
            let centroid: Vec<f32> = (0..dim).map(|k| k as f32).collect();
            let mut packed = vec![0u8; codec.bytes_per_token()];
            let mut out = vec![0.0f32; dim];
            for token in residuals.chunks(dim) {
                codec.encode(token, &mut packed);
                codec.decode_add(&packed, &centroid, &mut out);
                for k in 0..dim {
                    // Expected: the weight of the bucket the value falls in.
                    let cuts = &codec.cutoffs()[k * (levels - 1)..(k + 1) * (levels - 1)];
                    let bucket = cuts.iter().filter(|&&c| c < token[k]).count();
                    assert_eq!(out[k], centroid[k] + codec.weights()[k * levels + bucket]);
                }
            }
            for k in 0..dim {
                let values: Vec<f32> = residuals.iter().skip(k).step_by(dim).copied().collect();
                let bucket_of = |v: f32| codec.bucket(k, v);
                // Quantile buckets hold about equal shares of each dimension's values.
                let mut counts = vec![0usize; levels];
                let mut sums = vec![0.0f64; levels];
                for &v in &values {
                    counts[bucket_of(v)] += 1;
                    sums[bucket_of(v)] += v as f64;
                }
                let share = values.len() / levels;
                assert!(
                    counts.iter().all(|&c| c.abs_diff(share) <= share / 5 + 2),
                    "{counts:?}"
                );
                // Each weight is its bucket's mean (least squares).
                for b in 0..levels {
                    let mean = sums[b] / counts[b] as f64;
                    let w = codec.weights()[k * levels + b] as f64;
                    assert!((w - mean).abs() < 1e-5, "dim {k} bucket {b}: {w} vs {mean}");
                }
            }
        }
        assert!(ScalarCodec::fit(&[0.0], 4, 3).is_err());
    }

    #[test]
    fn per_dimension_buckets_beat_shared_buckets_on_skewed_dimensions() {
        let dim = 16;
        let residuals = skewed(dim, 500);
        let per_dim = ScalarCodec::fit(&residuals, dim, 2).unwrap();
        // The shared codec: one set of quantile buckets over all values.
        let mut all = residuals.clone();
        all.sort_unstable_by(f32::total_cmp);
        let q = |x: f64| all[(x * (all.len() - 1) as f64) as usize];
        let shared = ScalarCodec::new(
            dim,
            2,
            vec![q(0.25), q(0.5), q(0.75)],
            vec![q(0.125), q(0.375), q(0.625), q(0.875)],
        )
        .unwrap();
        let error = |codec: &ScalarCodec| {
            let zero = vec![0.0f32; dim];
            let (mut packed, mut out) = (vec![0u8; 4], vec![0.0f32; dim]);
            residuals
                .chunks(dim)
                .map(|t| {
                    codec.encode(t, &mut packed);
                    codec.decode_add(&packed, &zero, &mut out);
                    t.iter()
                        .zip(&out)
                        .map(|(a, b)| ((a - b) as f64).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
        };
        assert!(error(&per_dim) < 0.5 * error(&shared));
    }

    #[test]
    fn shared_buckets_are_read_and_bad_shapes_rejected() {
        let codec = ScalarCodec::new(3, 1, vec![0.5], vec![0.0, 1.0]).unwrap();
        assert_eq!(codec.cutoffs(), &[0.5, 0.5, 0.5]);
        assert_eq!(codec.weights(), &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        assert!(ScalarCodec::new(3, 1, vec![0.5; 2], vec![0.0; 6]).is_err());
        assert!(ScalarCodec::new(2, 2, vec![0.0, 2.0, 1.0, 0.0, 1.0, 2.0], vec![0.0; 8]).is_err());
    }
}
