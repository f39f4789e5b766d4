//! int8 documents: codes in any `DocSet` layout paired with per-token scales.

use super::quantize::MAX_INT8_DIM;
use crate::docs::DocSet;
use crate::error::{invalid, Error, Result};

/// int8 documents: codes in any [`DocSet`] layout plus one scale per token, in
/// the same layout with `dim == 1` (so `scales.doc(i)` are document `i`'s scales).
#[derive(Debug, Clone)]
pub struct Int8Docs<'a> {
    pub(crate) codes: DocSet<'a, i8>,
    pub(crate) scales: DocSet<'a, f32>,
}

/// Position of the first scale that is not finite and `>= 0`, if any.
///
/// Every scoring call checks every scale, so the common all-valid case must
/// run at memory speed: each block is tested without an early exit (which
/// LLVM turns into vector compares; a plain `position` runs one scalar
/// compare-and-branch per scale, a visible share of an int8 call), and only
/// a block that fails is searched.
pub(super) fn first_invalid_scale(scales: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    let valid = |x: f32| (0.0..=f32::MAX).contains(&x);
    scales.chunks(BLOCK).enumerate().find_map(|(b, block)| {
        let all_valid = block.iter().fold(true, |ok, &x| ok & valid(x));
        if all_valid {
            None
        } else {
            block.iter().position(|&x| !valid(x)).map(|t| b * BLOCK + t)
        }
    })
}

impl<'a> Int8Docs<'a> {
    /// Pairs codes with scales; every document must have one finite,
    /// non-negative scale per token. Any int8 code is accepted and scored
    /// exactly (the quantizer produces `[-127, 127]`; −128 cannot overflow
    /// either: `128² · dim < 2³¹`, and the AVX2 `vpmaddubsw` kernel, which
    /// would saturate on a −128 query code, checks the query once per call).
    pub fn new(codes: DocSet<'a, i8>, scales: DocSet<'a, f32>) -> Result<Self> {
        let dim = codes.dim();
        if scales.dim() != 1 {
            return invalid!(
                "scales: must have one value per token (a width-1 layout), got width {}",
                scales.dim()
            );
        }
        if dim > MAX_INT8_DIM {
            return invalid!(
                "docs: dimension {dim} is larger than the int8 kernels support ({MAX_INT8_DIM})"
            );
        }
        if scales.len() != codes.len() {
            return invalid!(
                "scales: {} documents of scales for {} documents of codes",
                scales.len(),
                codes.len()
            );
        }
        for i in 0..codes.len() {
            let (c, s) = (codes.doc(i), scales.doc(i));
            if s.len() * dim != c.len() {
                return invalid!(
                    "scales: document {i} has {} tokens of codes but {} scales",
                    c.len() / dim,
                    s.len()
                );
            }
            if let Some(t) = first_invalid_scale(s) {
                return invalid!(
                    "scales: document {i} token {t} has scale {}; scales must be finite and >= 0",
                    s[t]
                );
            }
        }
        Ok(Int8Docs { codes, scales })
    }

    /// Packed layout: `codes` is `(total_tokens, dim)`, `scales` `(total_tokens,)`,
    /// document `i` is rows `offsets[i]..offsets[i + 1]`.
    pub fn packed(
        codes: &'a [i8],
        scales: &'a [f32],
        offsets: &'a [i64],
        dim: usize,
    ) -> Result<Self> {
        let c = DocSet::packed(codes, offsets, dim)?;
        if dim > 0 && scales.len() != codes.len() / dim {
            return invalid!(
                "scales: has {} entries but codes has {} tokens (one scale per token)",
                scales.len(),
                codes.len() / dim
            );
        }
        let s = DocSet::packed(scales, offsets, 1)?;
        Self::new(c, s)
    }

    /// Fixed layout: `codes` is `(n_docs, doc_len, dim)`, `scales` `(n_docs, doc_len)`.
    pub fn fixed(
        codes: &'a [i8],
        scales: &'a [f32],
        n_docs: usize,
        doc_len: usize,
        dim: usize,
    ) -> Result<Self> {
        let c = DocSet::fixed(codes, n_docs, doc_len, dim)?;
        let s = DocSet::fixed(scales, n_docs, doc_len, 1).map_err(|_| {
            Error::InvalidArgument(format!(
                "scales: needs shape ({n_docs}, {doc_len}), got {} values",
                scales.len()
            ))
        })?;
        Self::new(c, s)
    }

    /// List layout: `codes[i]` is `(len_i, dim)`, `scales[i]` `(len_i,)`.
    pub fn list(codes: Vec<&'a [i8]>, scales: Vec<&'a [f32]>, dim: usize) -> Result<Self> {
        let c = DocSet::list(codes, dim)?;
        let s = DocSet::list(scales, 1)?;
        Self::new(c, s)
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when there are no documents.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.codes.dim()
    }

    /// The codes.
    pub fn codes(&self) -> &DocSet<'a, i8> {
        &self.codes
    }

    /// The scales (one per token, width-1 layout).
    pub fn scales(&self) -> &DocSet<'a, f32> {
        &self.scales
    }
}
