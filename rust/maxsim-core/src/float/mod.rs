//! Float32 MaxSim: query preparation, kernel selection and the parallel drivers.
//!
//! A batch of queries is prepared once into one transposed, zero-padded block
//! whose lanes are query tokens; query `s` owns tokens `segments[s]..segments[s+1]`.
//! A single query is a batch of one. Per document the selected kernel writes the
//! best similarity of every query token, and the driver sums each query's
//! segment. Documents are split across the rayon pool; each output value is
//! produced by one thread in a fixed order, so results are bitwise identical
//! whatever the thread count — and a query scores the same alone or in a batch.

pub mod argmax;
pub(crate) mod blocked;
pub mod screen;
pub(crate) mod screen_i16;

use crate::dispatch::{selected_kernel, table, Kernel, KernelTable, Screen};
use crate::docs::DocSet;
use crate::error::{invalid, Result};
use crate::threads;
use rayon::prelude::*;

/// Query tokens are padded to a multiple of this, the widest vector in use (AVX-512).
pub(crate) const QUERY_PAD: usize = 16;

/// Checks the query width and that `masks`, when given, has one mask per query.
pub(crate) fn check_query_masks(
    masks: Option<&[&[bool]]>,
    n_queries: usize,
    dim: usize,
) -> Result<()> {
    if dim == 0 {
        return invalid!("query: dimension must be at least 1");
    }
    if let Some(masks) = masks {
        if masks.len() != n_queries {
            return invalid!(
                "query_mask: {} masks for {} queries",
                masks.len(),
                n_queries
            );
        }
    }
    Ok(())
}

/// Query `s`'s mask, if any, after checking that the query has tokens (`nq`)
/// and its mask one entry per token.
pub(crate) fn query_mask<'m>(
    masks: Option<&[&'m [bool]]>,
    s: usize,
    nq: usize,
    dim: usize,
) -> Result<Option<&'m [bool]>> {
    if nq == 0 {
        return invalid!(
            "query {s}: has zero tokens, shape (0, {dim}); a query needs at least one token"
        );
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
    Ok(mask)
}

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
        check_query_masks(masks, queries.len(), dim)?;
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
            let mask = query_mask(masks, s, query.len() / dim, dim)?;
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
    let kernels = table(kernel)?;
    if let Some(screen) = kernels.screen_in_use() {
        if queries.n_tokens >= screen.min_screen_tokens(None) {
            return screened(kernels, queries, docs, options);
        }
    }
    unscreened(kernels, queries, docs, options)
}

/// As [`maxsim_scores_batch_with`], never using the bf16 screen.
pub fn maxsim_scores_batch_unscreened(
    kernel: Kernel,
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    unscreened(table(kernel)?, queries, docs, options)
}

fn unscreened(
    kernels: &KernelTable,
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    check_dim(docs.dim(), queries.dim)?;
    check_floor(&options, docs.len())?;
    let doc_maxes = kernels.float.doc_maxes;
    Ok(drive(
        docs.len(),
        &queries.segments,
        queries.stride,
        options.zero_floor,
        || (),
        |_, i, maxes| {
            // SAFETY: the table's kernel runs on this CPU (`table` checked);
            // the document is a non-empty whole number of `dim`-wide rows
            // (DocSet invariants) and `maxes` has `stride` entries.
            unsafe { doc_maxes(queries, docs.doc(i), maxes) }
        },
    ))
}

/// As [`maxsim_scores_batch_with`] with the kernel of [`screen_kernel`],
/// always using its screen (`screen` module) where it applies. The results
/// are bitwise those of that kernel's float32 path. `Unsupported` where no
/// kernel of this CPU has a screen.
///
/// [`screen_kernel`]: crate::dispatch::screen_kernel
pub fn maxsim_scores_batch_screened(
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    screened(crate::dispatch::screen_table()?, queries, docs, options)
}

/// As [`maxsim_scores_batch_screened`] with `screen` (one of
/// [`screens`]); bitwise its kernel's float32 path. `Unsupported` where it
/// does not run here.
///
/// [`screens`]: crate::dispatch::screens
#[doc(hidden)]
pub fn maxsim_scores_batch_screened_with(
    screen: Screen,
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    screened(
        &crate::dispatch::table_with_screen(screen)?,
        queries,
        docs,
        options,
    )
}

/// Scores with `kernels`' screen, which must exist; documents outside the
/// screen's bound, or all of them when the queries are, go to its float kernel.
fn screened(
    kernels: &KernelTable,
    queries: &PreparedQueries,
    docs: &DocSet<'_, f32>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let Some(screen_query) = screen_query_for(kernels, queries, docs.dim(), docs.len(), &options)?
    else {
        // Non-finite or huge query values: the bound does not apply.
        return unscreened(kernels, queries, docs, options);
    };
    let screen_f32 = kernels.screen.expect("a screened table has a screen").f32;
    let doc_maxes = kernels.float.doc_maxes;
    Ok(drive(
        docs.len(),
        &queries.segments,
        queries.stride,
        options.zero_floor,
        screen::Scratch::default,
        |scratch, i, maxes| {
            let doc = docs.doc(i);
            // SAFETY: the table's kernels run on this CPU (`table` checked,
            // and a table holds a screen only where this CPU runs it); the
            // document is a non-empty whole number of `dim`-wide rows (DocSet
            // invariants), `screen_query` was built from `queries` for this
            // screen, and `maxes` has `stride` entries.
            unsafe {
                if !screen_f32(queries, &screen_query, doc, scratch, maxes) {
                    doc_maxes(queries, doc, maxes);
                }
            }
        },
    ))
}

/// The argument checks of the screened entry points, then the screen's query
/// for `kernels`' screen, or `None` when the bound does not apply to these
/// queries (non-finite or huge values).
pub(crate) fn screen_query_for(
    kernels: &KernelTable,
    queries: &PreparedQueries,
    doc_dim: usize,
    n_docs: usize,
    options: &ScoreOptions<'_>,
) -> Result<Option<screen::ScreenQuery>> {
    check_dim(doc_dim, queries.dim)?;
    check_floor(options, n_docs)?;
    let prepare = kernels
        .screen
        .expect("a screened table has a screen")
        .prepare;
    Ok(prepare(queries))
}

/// Documents must be as wide as the queries.
pub(crate) fn check_dim(doc_dim: usize, query_dim: usize) -> Result<()> {
    if doc_dim != query_dim {
        return invalid!(
            "docs: dimension {doc_dim} does not match the query dimension {query_dim}"
        );
    }
    Ok(())
}

/// `zero_floor`, when given, has one entry per document.
pub(crate) fn check_floor(options: &ScoreOptions<'_>, n_docs: usize) -> Result<()> {
    if let Some(floor) = options.zero_floor {
        if floor.len() != n_docs {
            return invalid!(
                "zero_floor: has {} entries for {n_docs} documents",
                floor.len()
            );
        }
    }
    Ok(())
}

/// The parallel driver of every float-score path (float32, float16, bfloat16,
/// int8): runs `per_doc(state, doc_index, maxes)` for every document on the
/// pool and reduces each document's token maxima into per-query scores.
/// `init` makes one state per task (scratch buffers; AMX tile configuration).
/// Returns `n_queries × n_docs` values, row-major.
pub(crate) fn drive<S, Init, Doc>(
    n_docs: usize,
    segments: &[usize],
    stride: usize,
    zero_floor: Option<&[bool]>,
    init: Init,
    per_doc: Doc,
) -> Vec<f32>
where
    Init: Fn() -> S + Sync,
    Doc: Fn(&mut S, usize, &mut [f32]) + Sync,
{
    let n_queries = segments.len() - 1;
    let mut doc_major = vec![0.0f32; n_docs * n_queries];
    if n_docs == 0 || n_queries == 0 {
        return doc_major;
    }
    let per_task = docs_per_task(n_docs, threads::num_threads());
    threads::install(|| {
        doc_major
            .par_chunks_mut(per_task * n_queries)
            .enumerate()
            .for_each(|(task, out)| {
                let mut state = init();
                let mut maxes = vec![0.0f32; stride];
                for (j, row) in out.chunks_mut(n_queries).enumerate() {
                    let doc_index = task * per_task + j;
                    per_doc(&mut state, doc_index, &mut maxes);
                    let floor = zero_floor.is_some_and(|f| f[doc_index]);
                    sum_segments(segments, &maxes, floor, row);
                }
            });
    });
    if n_queries == 1 {
        return doc_major;
    }
    let mut out = vec![0.0f32; n_docs * n_queries];
    for (d, row) in doc_major.chunks_exact(n_queries).enumerate() {
        for (s, &v) in row.iter().enumerate() {
            out[s * n_docs + d] = v;
        }
    }
    out
}

/// Sums each query's token maxima in token order (in f64, rounded once); with
/// `zero_floor` each maximum is floored at 0.
#[inline]
fn sum_segments(segments: &[usize], maxes: &[f32], zero_floor: bool, out: &mut [f32]) {
    for (s, slot) in out.iter_mut().enumerate() {
        let tokens = &maxes[segments[s]..segments[s + 1]];
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
