//! Residual compression: each token is stored as its centroid plus its
//! residual (token − centroid) compressed to `nbits` per dimension, in
//! `⌈dim · nbits / 8⌉` bytes, by one of two codecs:
//!
//! - [`ProductCodec`] (the default of new indexes): product quantization,
//!   one byte per sub-vector of `8 / nbits` dimensions;
//! - [`ScalarCodec`]: ColBERTv2's per-dimension buckets (what fast-plaid
//!   stores, so imported codebooks keep it).
//!
//! At the same size the product codec reconstructs residuals closer, which
//! is what ranking without a full-vector store rests on: on SciFact-1000 at
//! 2 bits per dimension it lifts the recall@10 cap of residual-only MaxSim
//! from 0.929 to 0.952 (`benches/accuracy/index_codec_study.py`).

mod product;
mod scalar;

pub use product::{ProductCodec, CODEWORDS};
pub use scalar::ScalarCodec;

use crate::error::{invalid, Result};
use crate::manifest::CodecKind;

/// Checks `nbits` ∈ {1, 2, 4}.
pub fn check_nbits(nbits: usize) -> Result<()> {
    if matches!(nbits, 1 | 2 | 4) {
        Ok(())
    } else {
        invalid!("nbits: must be 1, 2 or 4, got {nbits}")
    }
}

/// The residual codec of one index.
#[derive(Debug)]
pub enum Codec {
    Scalar(ScalarCodec),
    Product(ProductCodec),
}

impl Codec {
    /// Fits a codec of `kind` on `residuals` (`n × dim`); `seed` seeds the
    /// product codec's k-means.
    pub fn fit(
        kind: CodecKind,
        residuals: &[f32],
        dim: usize,
        nbits: usize,
        seed: u64,
    ) -> Result<Codec> {
        Ok(match kind {
            CodecKind::Scalar => Codec::Scalar(ScalarCodec::fit(residuals, dim, nbits)?),
            CodecKind::Product => Codec::Product(ProductCodec::fit(residuals, dim, nbits, seed)?),
        })
    }

    pub fn kind(&self) -> CodecKind {
        match self {
            Codec::Scalar(_) => CodecKind::Scalar,
            Codec::Product(_) => CodecKind::Product,
        }
    }

    /// Bytes of one token's codes: `⌈dim · nbits / 8⌉` for both codecs.
    pub fn bytes_per_token(&self) -> usize {
        match self {
            Codec::Scalar(c) => c.bytes_per_token(),
            Codec::Product(c) => c.bytes_per_token(),
        }
    }

    /// Encodes `residuals` (`n × dim`) into `out` (`n × bytes_per_token()`).
    pub fn encode_rows(&self, residuals: &[f32], out: &mut [u8]) -> Result<()> {
        match self {
            Codec::Scalar(c) => {
                let bpt = c.bytes_per_token();
                for (r, packed) in residuals
                    .chunks_exact(c.dim())
                    .zip(out.chunks_exact_mut(bpt))
                {
                    c.encode(r, packed);
                }
                Ok(())
            }
            Codec::Product(c) => c.encode_rows(residuals, out),
        }
    }

    /// `out = centroid + decoded residual` for one token.
    #[inline]
    pub fn decode_add(&self, codes: &[u8], centroid: &[f32], out: &mut [f32]) {
        match self {
            Codec::Scalar(c) => c.decode_add(codes, centroid, out),
            Codec::Product(c) => c.decode_add(codes, centroid, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbits_outside_1_2_4_is_rejected_by_both_codecs() {
        for nbits in [0usize, 3, 8] {
            assert!(check_nbits(nbits).is_err());
            assert!(Codec::fit(CodecKind::Scalar, &[0.0; 8], 4, nbits, 0).is_err());
            assert!(Codec::fit(CodecKind::Product, &[0.0; 8], 4, nbits, 0).is_err());
        }
    }
}
