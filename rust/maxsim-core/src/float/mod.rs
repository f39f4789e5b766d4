//! Float32 MaxSim: query preparation, kernel selection and the parallel drivers.
//!
//! A batch of queries is prepared once into one transposed, zero-padded block
//! whose lanes are query tokens; query `s` owns tokens `segments[s]..segments[s+1]`.
//! A single query is a batch of one. Per document the selected kernel writes the
//! best similarity of every query token, and the driver sums each query's
//! segment. Documents are split across the rayon pool; each output value is
//! produced by one thread in a fixed order, so results are bitwise identical
//! whatever the thread count — and a query scores the same alone or in a batch.

pub(crate) mod blocked;
pub(crate) mod portable;

use crate::dispatch::{selected_kernel, Kernel};
use crate::docs::DocSet;
use crate::error::{invalid, Result};
use crate::threads;
use rayon::prelude::*;

/// Query tokens are padded to a multiple of this, the widest vector in use (AVX-512).
pub(crate) const QUERY_PAD: usize = 16;

/// One or more queries, transposed for the kernels.
#[derive(Debug, Clone)]
pub struct PreparedQueries {
    /// Embedding width.
    pub(crate) dim: usize,
    /// Query tokens kept (masked-out tokens are dropped), over all queries.
    pub(crate) n_tokens: usize,
    /// `n_tokens` rounded up to [`QUERY_PAD`]: the row length of `transposed`.
    pub(crate) stride: usize,
    /// `dim × stride`, row `k` holds dimension `k` of every query token; padding is 0.
    pub(crate) transposed: Vec<f32>,
    /// `n_queries + 1` token boundaries.
    pub(crate) segments: Vec<usize>,
}

impl PreparedQueries {
    /// Prepares `queries[s]` (`nq_s * dim` values, row-major) for scoring.
    /// `masks[s]`, when given, has one entry per token of query `s`; `false`
    /// tokens are skipped. A query whose tokens are all masked scores 0.
    pub fn new(queries: &[&[f32]], masks: Option<&[&[bool]]>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return invalid!("query: dimension must be at least 1");
        }
        if let Some(masks) = masks {
            if masks.len() != queries.len() {
                return invalid!(
                    "query_mask: {} masks for {} queries",
                    masks.len(),
                    queries.len()
                );
            }
        }
        let mut segments = Vec::with_capacity(queries.len() + 1);
        segments.push(0usize);
        let mut kept: Vec<&[f32]> = Vec::new();
        for (s, query) in queries.iter().enumerate() {
            if query.len() % dim != 0 {
                return invalid!(
                    "query {s}: {} values is not a whole number of rows of dim {dim}",
                    query.len()
                );
            }
            let nq = query.len() / dim;
            if nq == 0 {
                return invalid!("query {s}: has zero tokens, shape (0, {dim}); a query needs at least one token");
            }
            let mask = masks.map(|m| m[s]);
            if let Some(mask) = mask {
                if mask.len() != nq {
                    return invalid!(
                        "query_mask: has {} entries but query {s} has {nq} tokens",
                        mask.len()
                    );
                }
            }
            for (i, row) in query.chunks_exact(dim).enumerate() {
                if mask.is_none_or(|m| m[i]) {
                    kept.push(row);
                }
            }
            segments.push(kept.len());
        }
        let n_tokens = kept.len();
        let stride = n_tokens.div_ceil(QUERY_PAD).max(1) * QUERY_PAD;
        let mut transposed = vec![0.0f32; dim * stride];
        for (i, row) in kept.iter().enumerate() {
            for (k, &value) in row.iter().enumerate() {
                transposed[k * stride + i] = value;
            }
        }
        Ok(PreparedQueries {
            dim,
            n_tokens,
            stride,
            transposed,
            segments,
        })
    }

    /// Number of queries.
    pub fn n_queries(&self) -> usize {
        self.segments.len() - 1
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Per-document scoring options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreOptions<'a> {
    /// For documents marked `true`, each query token's best similarity is
    /// floored at 0, exactly as if the document had one extra all-zero token
    /// (PyLate's zero padding and zero masking). `None`: no document.
    pub zero_floor: Option<&'a [bool]>,
}

/// Writes the best similarity of every prepared query token against one document.
pub(crate) type DocMaxesFn = unsafe fn(&PreparedQueries, &[f32], &mut [f32]);

/// The float kernel of `kernel`.
pub(crate) fn doc_maxes_fn(kernel: Kernel) -> DocMaxesFn {
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => crate::arch::x86_64::avx2::float::doc_maxes,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 | Kernel::Amx => crate::arch::x86_64::avx512::float::doc_maxes,
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon => crate::arch::aarch64::neon::float::doc_maxes,
        // Kernels of another architecture are never selected (dispatch checks
        // support), so only the portable path remains.
        _ => portable::doc_maxes,
    }
}

/// Documents per parallel task: small enough to balance variable lengths
/// across threads, large enough to amortise task overhead.
fn docs_per_task(n_docs: usize, n_threads: usize) -> usize {
    (n_docs / (n_threads * 8)).clamp(1, 64)
}

/// Scores every prepared query against every document with the selected kernel.
/// Returns `n_queries × n_docs` values, row-major.
pub fn maxsim_scores_batch(
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    maxsim_scores_batch_with(selected_kernel()?, queries, docs, options)
}

/// As [`maxsim_scores_batch`], with an explicit kernel (which must be supported).
pub fn maxsim_scores_batch_with(
    kernel: Kernel,
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    if !kernel.is_supported() {
        return Err(crate::Error::Unsupported(format!(
            "kernel {:?} is not supported by this CPU",
            kernel.name()
        )));
    }
    if docs.dim() != queries.dim {
        return invalid!(
            "docs: dimension {} does not match the query dimension {}",
            docs.dim(),
            queries.dim
        );
    }
    let n_docs = docs.len();
    if let Some(floor) = options.zero_floor {
        if floor.len() != n_docs {
            return invalid!(
                "zero_floor: has {} entries for {n_docs} documents",
                floor.len()
            );
        }
    }
    let n_queries = queries.n_queries();
    let mut doc_major = vec![0.0f32; n_docs * n_queries];
    if n_docs == 0 || n_queries == 0 {
        return Ok(doc_major);
    }
    let kernel_fn = doc_maxes_fn(kernel);
    let per_task = docs_per_task(n_docs, threads::num_threads());
    threads::install(|| {
        doc_major
            .par_chunks_mut(per_task * n_queries)
            .enumerate()
            .for_each(|(task, out)| {
                let mut maxes = vec![0.0f32; queries.stride];
                for (j, row) in out.chunks_mut(n_queries).enumerate() {
                    let doc_index = task * per_task + j;
                    let doc = docs.doc(doc_index);
                    // SAFETY: `kernel` is supported by this CPU (checked above);
                    // `doc` is a non-empty whole number of `dim`-wide rows (DocSet
                    // invariants) and `maxes` has `stride` entries.
                    unsafe { kernel_fn(queries, doc, &mut maxes) };
                    let floor = options.zero_floor.is_some_and(|f| f[doc_index]);
                    sum_segments(queries, &maxes, floor, row);
                }
            });
    });
    if n_queries == 1 {
        return Ok(doc_major);
    }
    let mut out = vec![0.0f32; n_docs * n_queries];
    for (d, row) in doc_major.chunks_exact(n_queries).enumerate() {
        for (s, &v) in row.iter().enumerate() {
            out[s * n_docs + d] = v;
        }
    }
    Ok(out)
}

/// Sums each query's token maxima in token order (in f64, rounded once).
#[inline]
fn sum_segments(queries: &PreparedQueries, maxes: &[f32], zero_floor: bool, out: &mut [f32]) {
    for (s, slot) in out.iter_mut().enumerate() {
        let tokens = &maxes[queries.segments[s]..queries.segments[s + 1]];
        let total: f64 = if zero_floor {
            tokens
                .iter()
                .map(|&m| if m > 0.0 { m as f64 } else { 0.0 })
                .sum()
        } else {
            tokens.iter().map(|&m| m as f64).sum()
        };
        *slot = total as f32;
    }
}

/// Scores one `(nq, dim)` query (optionally masked) against every document.
pub fn maxsim_scores(
    query: &[f32],
    query_mask: Option<&[bool]>,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let dim = docs.dim();
    let masks = query_mask.map(|m| [m]);
    let prepared = PreparedQueries::new(&[query], masks.as_ref().map(|m| &m[..]), dim)?;
    maxsim_scores_batch(&prepared, docs, options)
}
