//! Document collections as the kernels see them: borrowed, never copied.
//!
//! Three layouts cover every caller:
//! - `Fixed`: one `(n_docs, doc_len, dim)` row-major buffer;
//! - `Packed`: ColBERT's "doclens" layout, a `(total_tokens, dim)` buffer plus
//!   `n_docs + 1` token offsets (which need not start at 0, so slices of a
//!   packed set are free);
//! - `List`: independent `(len_i, dim)` buffers, one per document.
//!
//! The element type `T` is `f32` for the float kernels; other modules reuse the
//! same layouts for their own storage types (codes, reduced precision).

use crate::error::{invalid, Result};

/// A borrowed set of documents, each a row-major `(n_tokens, dim)` block of `T`.
#[derive(Debug, Clone)]
pub enum DocSet<'a, T> {
    /// `n_docs` documents of exactly `doc_len` tokens, contiguous.
    Fixed {
        data: &'a [T],
        n_docs: usize,
        doc_len: usize,
        dim: usize,
    },
    /// Document `i` is rows `offsets[i]..offsets[i + 1]` of `data`.
    Packed {
        data: &'a [T],
        offsets: &'a [i64],
        dim: usize,
    },
    /// Document `i` is `docs[i]`, `len_i * dim` elements.
    List { docs: Vec<&'a [T]>, dim: usize },
}

impl<'a, T> DocSet<'a, T> {
    /// Fixed-length documents. `data.len()` must be `n_docs * doc_len * dim`.
    pub fn fixed(data: &'a [T], n_docs: usize, doc_len: usize, dim: usize) -> Result<Self> {
        if dim == 0 {
            return invalid!(
                "docs: dimension must be at least 1, got shape ({n_docs}, {doc_len}, 0)"
            );
        }
        if n_docs > 0 && doc_len == 0 {
            return invalid!(
                "docs: document 0 has zero tokens (shape ({n_docs}, 0, {dim})); every document needs at least one token"
            );
        }
        let expected = n_docs.checked_mul(doc_len).and_then(|n| n.checked_mul(dim));
        if expected != Some(data.len()) {
            return invalid!(
                "docs: buffer holds {} values but shape ({n_docs}, {doc_len}, {dim}) needs {:?}",
                data.len(),
                expected
            );
        }
        Ok(DocSet::Fixed {
            data,
            n_docs,
            doc_len,
            dim,
        })
    }

    /// Packed documents. `offsets` has `n_docs + 1` strictly increasing entries
    /// within `0..=data.len() / dim`.
    pub fn packed(data: &'a [T], offsets: &'a [i64], dim: usize) -> Result<Self> {
        if dim == 0 {
            return invalid!("flat: dimension must be at least 1");
        }
        if !data.len().is_multiple_of(dim) {
            return invalid!(
                "flat: {} values is not a whole number of rows of dim {dim}",
                data.len()
            );
        }
        let total_tokens = (data.len() / dim) as i64;
        if offsets.is_empty() {
            return invalid!("offsets: needs n_docs + 1 >= 1 entries, got an empty array");
        }
        if offsets[0] < 0 {
            return invalid!("offsets: offsets[0] = {} is negative", offsets[0]);
        }
        for (i, pair) in offsets.windows(2).enumerate() {
            if pair[1] < pair[0] {
                return invalid!(
                    "offsets: not monotonic, offsets[{}] = {} < offsets[{i}] = {}",
                    i + 1,
                    pair[1],
                    pair[0]
                );
            }
            if pair[1] == pair[0] {
                return invalid!(
                    "docs: document {i} has zero tokens (offsets[{i}] == offsets[{}] == {}); every document needs at least one token",
                    i + 1,
                    pair[0]
                );
            }
        }
        let last = offsets[offsets.len() - 1];
        if last > total_tokens {
            return invalid!(
                "offsets: last offset {last} runs past flat, which has {total_tokens} tokens"
            );
        }
        Ok(DocSet::Packed { data, offsets, dim })
    }

    /// Independent documents; each slice must hold a whole, non-zero number of rows.
    pub fn list(docs: Vec<&'a [T]>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return invalid!("docs: dimension must be at least 1");
        }
        for (i, d) in docs.iter().enumerate() {
            if d.is_empty() {
                return invalid!(
                    "docs: document {i} has zero tokens; every document needs at least one token"
                );
            }
            if d.len() % dim != 0 {
                return invalid!(
                    "docs: document {i} holds {} values, not a multiple of dim {dim}",
                    d.len()
                );
            }
        }
        Ok(DocSet::List { docs, dim })
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        match self {
            DocSet::Fixed { n_docs, .. } => *n_docs,
            DocSet::Packed { offsets, .. } => offsets.len() - 1,
            DocSet::List { docs, .. } => docs.len(),
        }
    }

    /// True when there are no documents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of one token row.
    pub fn dim(&self) -> usize {
        match self {
            DocSet::Fixed { dim, .. } | DocSet::Packed { dim, .. } | DocSet::List { dim, .. } => {
                *dim
            }
        }
    }

    /// Total number of token rows over all documents.
    pub fn total_tokens(&self) -> usize {
        match self {
            DocSet::Fixed {
                n_docs, doc_len, ..
            } => n_docs * doc_len,
            DocSet::Packed { offsets, .. } => (offsets[offsets.len() - 1] - offsets[0]) as usize,
            DocSet::List { docs, dim } => docs.iter().map(|d| d.len() / dim).sum(),
        }
    }

    /// Document `i` as `n_tokens * dim` values. Panics if `i >= len()`.
    #[inline]
    pub fn doc(&self, i: usize) -> &'a [T] {
        match self {
            DocSet::Fixed {
                data, doc_len, dim, ..
            } => {
                let n = doc_len * dim;
                &data[i * n..(i + 1) * n]
            }
            DocSet::Packed { data, offsets, dim } => {
                // Offsets were validated (non-negative, increasing, in range) at construction.
                let start = offsets[i] as usize * dim;
                let end = offsets[i + 1] as usize * dim;
                &data[start..end]
            }
            DocSet::List { docs, .. } => docs[i],
        }
    }
}
