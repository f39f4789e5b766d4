//! int8 queries: masking and per-token quantization of one or more queries.

use super::docs::first_invalid_scale;
use super::quantize::{quantize_row, MAX_INT8_DIM};
use crate::error::{invalid, Result};
use crate::float::{check_query_masks, query_mask};

/// Kept `(query, token)` positions and `n_queries + 1` boundaries.
type Selection = (Vec<(usize, usize)>, Vec<usize>);

/// Kept `(query, token)` positions and per-query boundaries after masking.
fn select_tokens(
    token_counts: &[usize],
    masks: Option<&[&[bool]]>,
    dim: usize,
) -> Result<Selection> {
    check_query_masks(masks, token_counts.len(), dim)?;
    let mut kept = Vec::new();
    let mut segments = vec![0usize];
    for (s, &nq) in token_counts.iter().enumerate() {
        let mask = query_mask(masks, s, nq, dim)?;
        for i in 0..nq {
            if mask.is_none_or(|m| m[i]) {
                kept.push((s, i));
            }
        }
        segments.push(kept.len());
    }
    Ok((kept, segments))
}

/// One or more queries quantized to int8 with per-token scales.
#[derive(Debug, Clone)]
pub struct Int8Queries {
    pub(crate) dim: usize,
    /// `n_tokens × dim` codes, row-major, kept tokens only.
    pub(crate) codes: Vec<i8>,
    /// One scale per kept token.
    pub(crate) scales: Vec<f32>,
    /// `n_queries + 1` token boundaries.
    pub(crate) segments: Vec<usize>,
}

impl Int8Queries {
    /// Quantizes float32 queries (`queries[s]` is `nq_s × dim`, row-major) with
    /// the documented per-token scheme ([`quantize_row`]). Masked-out tokens
    /// are dropped; a query whose tokens are all masked scores 0.
    pub fn quantize(queries: &[&[f32]], masks: Option<&[&[bool]]>, dim: usize) -> Result<Self> {
        let counts = row_counts(queries.iter().map(|q| q.len()), dim, "query")?;
        let (kept, segments) = select_tokens(&counts, masks, dim)?;
        let mut codes = vec![0i8; kept.len() * dim];
        let mut scales = vec![0.0f32; kept.len()];
        for (t, &(s, i)) in kept.iter().enumerate() {
            let row = &queries[s][i * dim..(i + 1) * dim];
            match quantize_row(row, &mut codes[t * dim..(t + 1) * dim]) {
                Ok(scale) => scales[t] = scale,
                Err(k) => {
                    return invalid!(
                        "query {s}: token {i} has a non-finite value ({}) at dimension {k}; int8 scoring quantizes the query and needs finite values",
                        row[k]
                    )
                }
            }
        }
        Self::checked(dim, codes, scales, segments)
    }

    /// Queries that are already quantized: `codes[s]` is `nq_s × dim` and
    /// `scales[s]` has `nq_s` finite, non-negative entries.
    pub fn from_codes(
        codes: &[&[i8]],
        scales: &[&[f32]],
        masks: Option<&[&[bool]]>,
        dim: usize,
    ) -> Result<Self> {
        if codes.len() != scales.len() {
            return invalid!(
                "query_scales: {} scale arrays for {} queries",
                scales.len(),
                codes.len()
            );
        }
        let counts = row_counts(codes.iter().map(|q| q.len()), dim, "query")?;
        for (s, (&n, sc)) in counts.iter().zip(scales).enumerate() {
            if sc.len() != n {
                return invalid!(
                    "query_scales: query {s} has {n} tokens but {} scales",
                    sc.len()
                );
            }
        }
        let (kept, segments) = select_tokens(&counts, masks, dim)?;
        let mut out_codes = Vec::with_capacity(kept.len() * dim);
        let mut out_scales = Vec::with_capacity(kept.len());
        for &(s, i) in &kept {
            out_codes.extend_from_slice(&codes[s][i * dim..(i + 1) * dim]);
            out_scales.push(scales[s][i]);
        }
        Self::checked(dim, out_codes, out_scales, segments)
    }

    fn checked(dim: usize, codes: Vec<i8>, scales: Vec<f32>, segments: Vec<usize>) -> Result<Self> {
        if dim > MAX_INT8_DIM {
            return invalid!(
                "query: dimension {dim} is larger than the int8 kernels support ({MAX_INT8_DIM})"
            );
        }
        if let Some(t) = first_invalid_scale(&scales) {
            return invalid!(
                "query_scales: token {t} has scale {}; scales must be finite and >= 0",
                scales[t]
            );
        }
        Ok(Int8Queries {
            dim,
            codes,
            scales,
            segments,
        })
    }

    /// Number of queries.
    pub fn n_queries(&self) -> usize {
        self.segments.len() - 1
    }

    /// Kept tokens over all queries.
    pub fn n_tokens(&self) -> usize {
        self.scales.len()
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The kept tokens' codes, `n_tokens × dim`, row-major.
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }

    /// The kept tokens' scales.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
}

fn row_counts(lengths: impl Iterator<Item = usize>, dim: usize, what: &str) -> Result<Vec<usize>> {
    if dim == 0 {
        return invalid!("{what}: dimension must be at least 1");
    }
    lengths
        .enumerate()
        .map(|(s, n)| {
            if n % dim != 0 {
                invalid!("{what} {s}: {n} values is not a whole number of rows of dim {dim}")
            } else {
                Ok(n / dim)
            }
        })
        .collect()
}
