//! Residual compression (ColBERTv2): each token is its centroid plus a
//! residual quantized to `nbits` per dimension against bucket cutoffs (the
//! `i / 2^nbits` quantiles of the training residuals' values) and
//! reconstructed with bucket weights (the `(i + ½) / 2^nbits` quantiles).
//!
//! Codes are packed LSB first: dimension `k`'s code sits at bit
//! `(k · nbits) mod 8` of byte `k · nbits / 8`; a token takes
//! `⌈dim · nbits / 8⌉` bytes.

use crate::error::{invalid, Result};

/// The learned buckets of one index, and a decoding table.
#[derive(Debug, Clone)]
pub struct Codec {
    dim: usize,
    nbits: usize,
    cutoffs: Vec<f32>,
    weights: Vec<f32>,
    /// `256 × (8 / nbits)`: the weights of the codes packed in each byte value.
    lut: Vec<f32>,
}

/// Values of the residual sample used to fit the buckets (a larger sample
/// moves the quantiles by less than their sampling noise).
const FIT_VALUES: usize = 1 << 22;

impl Codec {
    /// Checks `nbits` ∈ {1, 2, 4}.
    pub fn check_nbits(nbits: usize) -> Result<()> {
        if matches!(nbits, 1 | 2 | 4) {
            Ok(())
        } else {
            invalid!("nbits: must be 1, 2 or 4, got {nbits}")
        }
    }

    /// Fits the buckets on `residuals` (any number of values).
    pub fn fit(residuals: &[f32], dim: usize, nbits: usize) -> Result<Codec> {
        Self::check_nbits(nbits)?;
        let step = residuals.len().div_ceil(FIT_VALUES).max(1);
        let mut values: Vec<f32> = residuals
            .iter()
            .step_by(step)
            .copied()
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
        let levels = 1usize << nbits;
        let cutoffs = (1..levels)
            .map(|i| quantile(i as f64 / levels as f64))
            .collect();
        let weights = (0..levels)
            .map(|i| quantile((i as f64 + 0.5) / levels as f64))
            .collect();
        Self::new(dim, nbits, cutoffs, weights)
    }

    /// A codec from stored buckets (`2^nbits - 1` increasing cutoffs, `2^nbits` weights).
    pub fn new(dim: usize, nbits: usize, cutoffs: Vec<f32>, weights: Vec<f32>) -> Result<Codec> {
        Self::check_nbits(nbits)?;
        let levels = 1usize << nbits;
        if cutoffs.len() != levels - 1 || weights.len() != levels {
            return invalid!(
                "buckets: {} cutoffs and {} weights for nbits {nbits}",
                cutoffs.len(),
                weights.len()
            );
        }
        let per_byte = 8 / nbits;
        let mask = (levels - 1) as u32;
        let mut lut = vec![0.0f32; 256 * per_byte];
        for byte in 0..256u32 {
            for j in 0..per_byte {
                let code = (byte >> (j * nbits)) & mask;
                lut[byte as usize * per_byte + j] = weights[code as usize];
            }
        }
        Ok(Codec {
            dim,
            nbits,
            cutoffs,
            weights,
            lut,
        })
    }

    pub fn nbits(&self) -> usize {
        self.nbits
    }

    pub fn cutoffs(&self) -> &[f32] {
        &self.cutoffs
    }

    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Bytes of one token's packed residual.
    pub fn bytes_per_token(&self) -> usize {
        (self.dim * self.nbits).div_ceil(8)
    }

    /// Packs `residual` (`dim` values) into `out` (`bytes_per_token()` bytes).
    pub fn encode(&self, residual: &[f32], out: &mut [u8]) {
        out.fill(0);
        for (k, &v) in residual.iter().enumerate() {
            // The bucket is the number of cutoffs below the value.
            let code = self.cutoffs.iter().filter(|&&c| c < v).count() as u8;
            let bit = k * self.nbits;
            out[bit / 8] |= code << (bit % 8);
        }
    }

    /// `out = centroid + decoded residual` for one token.
    #[inline]
    pub fn decode_add(&self, codes: &[u8], centroid: &[f32], out: &mut [f32]) {
        let per_byte = 8 / self.nbits;
        let mut k = 0;
        for &byte in codes {
            let vals = &self.lut[byte as usize * per_byte..(byte as usize + 1) * per_byte];
            for &w in vals {
                if k < self.dim {
                    out[k] = centroid[k] + w;
                }
                k += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_reconstructs_the_bucket_weights() {
        for nbits in [1usize, 2, 4] {
            let dim = 13;
            let residuals: Vec<f32> = (0..dim * 200)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0)
                .collect();
            let codec = Codec::fit(&residuals, dim, nbits).unwrap();
            assert_eq!(codec.bytes_per_token(), (dim * nbits).div_ceil(8));
            let centroid: Vec<f32> = (0..dim).map(|k| k as f32).collect();
            let mut packed = vec![0u8; codec.bytes_per_token()];
            let mut out = vec![0.0f32; dim];
            for token in residuals.chunks(dim) {
                codec.encode(token, &mut packed);
                codec.decode_add(&packed, &centroid, &mut out);
                for k in 0..dim {
                    // Expected: the weight of the bucket the value falls in.
                    let bucket = codec.cutoffs().iter().filter(|&&c| c < token[k]).count();
                    assert_eq!(out[k], centroid[k] + codec.weights()[bucket]);
                }
            }
            // Quantile buckets hold about equal shares of the values.
            let levels = 1 << nbits;
            let mut counts = vec![0usize; levels];
            for &v in &residuals {
                counts[codec.cutoffs().iter().filter(|&&c| c < v).count()] += 1;
            }
            let share = residuals.len() / levels;
            assert!(
                counts.iter().all(|&c| c.abs_diff(share) <= share / 5 + 2),
                "{counts:?}"
            );
        }
        assert!(Codec::fit(&[0.0], 4, 3).is_err());
    }
}
