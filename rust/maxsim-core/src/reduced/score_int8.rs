//! int8 documents: the scoring drivers.

use super::docs::Int8Docs;
use super::int8::{I8Dot, PackedI8};
use super::queries::Int8Queries;
use crate::dispatch::{selected_kernel, table, Kernel};
use crate::error::{Error, Result};
use crate::float::{check_dim, check_floor, drive, ScoreOptions};

/// Per-document int8 kernel over a packed query.
pub(crate) type Int8Fn<Q, D> = unsafe fn(&PackedI8<Q>, &[i8], &[f32], &mut Vec<D>, &mut [f32]);

/// Scores every int8 query against int8 documents with the selected kernel.
/// Returns `n_queries × n_docs`, row-major.
pub fn maxsim_int8_batch(
    queries: &Int8Queries,
    docs: &Int8Docs<'_>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    maxsim_int8_batch_with(selected_kernel()?, queries, docs, options)
}

/// Scores one float32 query (quantized on the fly) against int8 documents.
pub fn maxsim_int8(
    query: &[f32],
    query_mask: Option<&[bool]>,
    docs: &Int8Docs<'_>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let masks = query_mask.map(|m| [m]);
    let q = Int8Queries::quantize(&[query], masks.as_ref().map(|m| &m[..]), docs.dim())?;
    maxsim_int8_batch(&q, docs, options)
}

/// As [`maxsim_int8_batch`], with an explicit kernel (which must be supported).
pub fn maxsim_int8_batch_with(
    kernel: Kernel,
    queries: &Int8Queries,
    docs: &Int8Docs<'_>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let run = table(kernel)?.int8.run;
    Ok(run(Int8Job::checked(queries, docs, options)?))
}

/// Runs the int8 implementation named `variant` (an [`Int8Kernel`] id, e.g.
/// `"scalar"`, `"avx512bw"`, `"neon-smlal"`), for tests of every
/// implementation this CPU runs, including those its kernel would not pick.
///
/// [`Int8Kernel`]: crate::dispatch::Int8Kernel
#[doc(hidden)]
pub fn maxsim_int8_batch_variant(
    variant: &str,
    queries: &Int8Queries,
    docs: &Int8Docs<'_>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    let job = Int8Job::checked(queries, docs, options)?;
    let found = Kernel::ALL
        .into_iter()
        .filter_map(|k| table(k).ok())
        .flat_map(|t| std::iter::once(&t.int8).chain(t.int8_alternatives))
        .find(|kernel| kernel.id == variant);
    match found {
        Some(kernel) => Ok((kernel.run)(job)),
        None => Err(Error::Unsupported(format!(
            "int8 variant {variant:?} is not available on this CPU"
        ))),
    }
}

/// One int8 scoring call, its arguments checked, as every implementation runs it.
#[derive(Clone, Copy)]
pub(crate) struct Int8Job<'a> {
    pub(crate) queries: &'a Int8Queries,
    pub(crate) docs: &'a Int8Docs<'a>,
    pub(crate) options: ScoreOptions<'a>,
}

impl<'a> Int8Job<'a> {
    fn checked(
        queries: &'a Int8Queries,
        docs: &'a Int8Docs<'a>,
        options: ScoreOptions<'a>,
    ) -> Result<Self> {
        check_dim(docs.dim(), queries.dim)?;
        check_floor(&options, docs.len())?;
        Ok(Int8Job {
            queries,
            docs,
            options,
        })
    }

    /// Multiplies each query token's maximum by its scale (positive, so it
    /// commutes with the max).
    pub(crate) fn apply_query_scales(&self, maxes: &mut [f32]) {
        for (m, &s) in maxes.iter_mut().zip(&self.queries.scales) {
            *m *= s;
        }
    }

    /// Packs the queries for the implementation `V` (tiles of `r` query
    /// vectors) and scores every document with `kernel_fn`, `V`'s kernel.
    ///
    /// Callers are the int8 entries of kernel tables: `kernel_fn` runs on
    /// this CPU because a table is built only for a supported kernel.
    pub(crate) fn run<V: I8Dot>(self, r: usize, kernel_fn: Int8Fn<V::QElem, V::DElem>) -> Vec<f32> {
        let Int8Job {
            queries,
            docs,
            options,
        } = self;
        let packed = PackedI8::of::<V>(queries, r);
        drive(
            docs.len(),
            &queries.segments,
            packed.stride,
            options.zero_floor,
            Vec::<V::DElem>::new,
            |scratch, i, maxes| {
                // SAFETY: `kernel_fn` belongs to a table of a supported kernel,
                // and `packed` was packed for its implementation `V`; codes and
                // scales come from validated `Int8Docs` (non-empty,
                // `scales.len() * dim == codes.len()`); `maxes` has `stride` entries.
                unsafe {
                    kernel_fn(
                        &packed,
                        docs.codes.doc(i),
                        docs.scales.doc(i),
                        scratch,
                        maxes,
                    )
                };
                self.apply_query_scales(maxes);
            },
        )
    }
}
