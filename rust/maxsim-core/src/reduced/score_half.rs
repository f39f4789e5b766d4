//! float16 / bfloat16 documents: the scoring drivers.

use super::half::{HalfFloat, HalfFormat};
use super::half_blocked::HalfQuery;
use crate::dispatch::screen_table;
use crate::dispatch::{selected_kernel, table, Kernel, KernelTable, Screen};
use crate::docs::DocSet;
use crate::error::Result;
use crate::float::screen::Scratch;
use crate::float::{
    check_dim, check_floor, drive, screen_query_for, PreparedQueries, ScoreOptions,
};

/// Scores every prepared (float32) query against float16 or bfloat16
/// documents with the selected kernel. Returns `n_queries × n_docs`, row-major.
pub fn maxsim_half_batch<T: HalfFloat>(
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    maxsim_half_batch_with(selected_kernel()?, queries, docs, options)
}

/// As [`maxsim_half_batch`], with an explicit kernel (which must be supported).
pub fn maxsim_half_batch_with<T: HalfFloat>(
    kernel: Kernel,
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let kernels = table(kernel)?;
    let tiles_apply = T::FORMAT == HalfFormat::Bf16
        && kernels
            .bf16_tiles
            .is_some_and(|tiles| (tiles.applies)(queries.dim));
    if let Some(screen) = kernels.screen_in_use() {
        if queries.n_tokens >= screen.min_screen_tokens(Some(T::FORMAT)) && !tiles_apply {
            return screened(kernels, queries, docs, options);
        }
    }
    unscreened(kernels, queries, docs, options)
}

/// As [`maxsim_half_batch_with`], never using the bf16 screen.
pub fn maxsim_half_batch_unscreened<T: HalfFloat>(
    kernel: Kernel,
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    unscreened(table(kernel)?, queries, docs, options)
}

fn unscreened<T: HalfFloat>(
    kernels: &KernelTable,
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let dim = queries.dim;
    check_dim(docs.dim(), dim)?;
    check_floor(&options, docs.len())?;
    if let (Some(tiles), Some(bf16_docs)) = (kernels.bf16_tiles, T::as_bf16_docs(docs)) {
        if (tiles.applies)(dim) {
            return Ok((tiles.run)(queries, bf16_docs, options));
        }
    }
    let kernel = kernels.half(T::FORMAT);
    let hq = HalfQuery::new(queries, kernel.shape.lanes, kernel.shape.r);
    let doc_maxes = kernel.doc_maxes;
    Ok(drive(
        docs.len(),
        &queries.segments,
        queries.stride,
        options.zero_floor,
        Vec::new,
        |scratch, i, maxes| {
            // SAFETY: the table's kernel runs on this CPU (`table` checked);
            // `hq` is laid out for its tile shape; the document is a
            // non-empty whole number of `dim`-wide rows (DocSet invariants)
            // and `maxes` has `stride` entries.
            unsafe { doc_maxes(&hq, T::as_bits(docs.doc(i)), scratch, maxes) }
        },
    ))
}

/// As [`maxsim_half_batch_with`] with the kernel of
/// [`crate::dispatch::screen_kernel`], always using its screen
/// (`float::screen`) where it applies (the bf16 screen reads bfloat16
/// documents in place and needs an even `dim`; others use the plain kernel).
/// The results are bitwise those of that kernel's float16 / bfloat16 path.
/// `Unsupported` where no kernel of this CPU has a screen.
pub fn maxsim_half_batch_screened<T: HalfFloat>(
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    screened(screen_table()?, queries, docs, options)
}

/// As [`maxsim_half_batch_screened`] with `screen` (one of
/// [`screens`]); bitwise its kernel's 16-bit path. `Unsupported` where it
/// does not run here.
///
/// [`screens`]: crate::dispatch::screens
#[doc(hidden)]
pub fn maxsim_half_batch_screened_with<T: HalfFloat>(
    screen: Screen,
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
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
/// screen's bound go to its plain 16-bit kernel.
fn screened<T: HalfFloat>(
    kernels: &KernelTable,
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let dim = queries.dim;
    let screen = kernels.screen.expect("a screened table has a screen");
    let in_place = T::FORMAT == HalfFormat::Bf16 && screen.bf16_even_dim;
    let screen_query = match screen_query_for(kernels, queries, docs.dim(), docs.len(), &options)? {
        // A bfloat16 pair read in place must not straddle two tokens.
        Some(sq) if !in_place || dim.is_multiple_of(2) => sq,
        // Odd widths, or non-finite or huge query values (outside the bound).
        _ => return unscreened(kernels, queries, docs, options),
    };
    let screen_doc = match T::FORMAT {
        HalfFormat::F16 => screen.f16,
        HalfFormat::Bf16 => screen.bf16,
    };
    let plain = kernels.half(T::FORMAT);
    let hq = HalfQuery::new(queries, plain.shape.lanes, plain.shape.r);
    Ok(drive(
        docs.len(),
        &queries.segments,
        queries.stride,
        options.zero_floor,
        || (Scratch::default(), Vec::new()),
        |(scratch, plain_scratch), i, maxes| {
            let doc = T::as_bits(docs.doc(i));
            // SAFETY: the table's kernels run on this CPU (`table` checked,
            // and a table holds a screen only where this CPU runs it); the
            // document is a non-empty whole number of `dim`-wide rows
            // (DocSet invariants), `dim` is even where bfloat16 is read in
            // place, `screen_query`
            // and `hq` were built from `queries` for these kernels, and
            // `maxes` has `stride` entries.
            unsafe {
                if !screen_doc(queries, &screen_query, doc, scratch, maxes) {
                    (plain.doc_maxes)(&hq, doc, plain_scratch, maxes);
                }
            }
        },
    ))
}

/// Scores one float32 query (optionally masked) against 16-bit float documents.
pub fn maxsim_half<T: HalfFloat>(
    query: &[f32],
    query_mask: Option<&[bool]>,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let masks = query_mask.map(|m| [m]);
    let prepared = PreparedQueries::new(&[query], masks.as_ref().map(|m| &m[..]), docs.dim())?;
    maxsim_half_batch(&prepared, docs, options)
}
