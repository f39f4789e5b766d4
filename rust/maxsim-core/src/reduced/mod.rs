//! Reduced-precision document storage: float16, bfloat16 and int8.
//!
//! MaxSim over stored documents becomes memory-bound once the kernel is good,
//! so storing documents in 16 or 8 bits is the largest speedup left. Scores are
//! always float32.
//!
//! - **float16 / bfloat16** ([`maxsim_half_batch`]): the query stays float32
//!   ([`PreparedQueries`]); each document tile is widened to float32 inside
//!   the float tile loop of the same ISA (exact; the widening of the next tile
//!   is interleaved with the multiply-adds of the current one), so results are
//!   bitwise those of the float32 path on the widened documents (NaN behaves
//!   exactly as in float32). On CPUs with AMX-BF16 the
//!   `amx` kernel scores bfloat16 documents with tiles instead, splitting the
//!   float32 query into two bfloat16 halves (`hi + lo`), which keeps it within
//!   about 2⁻¹⁶ of float32 accuracy.
//! - **int8** ([`maxsim_int8_batch`]): documents carry per-token scales
//!   ([`Int8Docs`], produced by [`quantize_int8`]); the query is quantized the
//!   same way on the fly ([`Int8Queries`]). Dot products are exact in int32,
//!   then scaled in float32 in a fixed order, so every ISA returns bitwise
//!   identical scores (see `int8`).
//!
//! Both run on the float32 driver (`float::drive`), which splits documents
//! over the rayon pool: per-document results do not depend on the thread
//! count, and a query scores the same alone or in a batch.

pub(crate) mod half;
pub(crate) mod half_blocked;
pub(crate) mod int8;
pub mod quantize;

pub use self::half::{HalfFloat, HalfFormat};
pub use ::half::{bf16, f16};
pub use quantize::{
    quantize_int8, quantize_int8_into, quantize_row, to_half, to_half_bits, MAX_INT8_DIM,
    MIN_INT8_ABSMAX,
};

use self::int8::{I8Dot, PackedI8};
#[cfg(target_arch = "aarch64")]
use crate::arch::aarch64::neon::reduced as neon;
#[cfg(target_arch = "x86_64")]
use crate::arch::x86_64::{avx2::reduced as avx2, avx512::reduced as avx512};
use crate::dispatch::{selected_kernel, Kernel};
use crate::docs::DocSet;
use crate::error::{invalid, Error, Result};
use crate::float::{
    check_dim, check_floor, check_kernel, check_query_masks, drive, query_mask, PreparedQueries,
    ScoreOptions,
};

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

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
/// LLVM turns into vector compares; a plain `position` ran one scalar
/// compare-and-branch per scale, 0.5 ms for 300,000 scales, about 8 % of an
/// int8 call), and only a block that fails is searched.
fn first_invalid_scale(scales: &[f32]) -> Option<usize> {
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
    /// non-negative scale per token. Any int8 code is accepted (the quantizer
    /// produces `[-127, 127]`; −128 cannot overflow either: `128² · dim < 2³¹`).
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

// ---------------------------------------------------------------------------
// float16 / bfloat16
// ---------------------------------------------------------------------------

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
    #[cfg(target_arch = "x86_64")]
    if crate::float::screen::screen_enabled(kernel)
        && queries.n_tokens >= crate::float::screen::min_screen_tokens(Some(T::FORMAT))
        && !(kernel == Kernel::Amx
            && T::FORMAT == HalfFormat::Bf16
            && crate::arch::x86_64::amx::bf16_applies(queries.dim))
    {
        return maxsim_half_batch_screened(queries, docs, options);
    }
    maxsim_half_batch_unscreened(kernel, queries, docs, options)
}

/// As [`maxsim_half_batch_with`], never using the bf16 screen.
pub fn maxsim_half_batch_unscreened<T: HalfFloat>(
    kernel: Kernel,
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    check_kernel(kernel)?;
    let dim = queries.dim;
    check_dim(docs.dim(), dim)?;
    let n_docs = docs.len();
    check_floor(&options, n_docs)?;

    #[cfg(target_arch = "x86_64")]
    if T::FORMAT == HalfFormat::Bf16
        && kernel == Kernel::Amx
        && crate::arch::x86_64::amx::bf16_applies(dim)
    {
        let packed = crate::arch::x86_64::amx::PackedBf16::new(queries);
        return Ok(drive(
            n_docs,
            &queries.segments,
            packed.stride(),
            options.zero_floor,
            crate::arch::x86_64::amx::TileState::new,
            |state, i, maxes| {
                let doc = T::as_bits(docs.doc(i));
                // SAFETY: AMX is usable (bf16_applies checked CPUID, XCR0 and the
                // Linux permission); `state` configured this thread's tiles; `doc` is
                // a whole number of `dim`-wide rows; `maxes` has `stride` entries.
                unsafe { crate::arch::x86_64::amx::bf16_doc_maxes(state, &packed, doc, maxes) }
            },
        ));
    }

    let (doc_fn, shape) = half::doc_fn(kernel, T::FORMAT);
    let hq = half_blocked::HalfQuery::new(queries, shape.0, shape.1);
    Ok(drive(
        n_docs,
        &queries.segments,
        queries.stride,
        options.zero_floor,
        Vec::new,
        |scratch, i, maxes| {
            // SAFETY: `doc_fn` belongs to a kernel dispatch verified is supported
            // (checked above); the document is a non-empty whole number of
            // `dim`-wide rows (DocSet invariants) and `maxes` has `stride` entries.
            unsafe { doc_fn(&hq, T::as_bits(docs.doc(i)), scratch, maxes) }
        },
    ))
}

/// As [`maxsim_half_batch_with`] with the AVX-512 kernel, always using the
/// bf16 screen (`float::screen`) where it applies (bfloat16 documents need an
/// even `dim`; others use the plain kernel). The results are bitwise those of
/// the AVX-512 float16 / bfloat16 kernel. `Unsupported` without AVX512_BF16.
#[cfg(target_arch = "x86_64")]
pub fn maxsim_half_batch_screened<T: HalfFloat>(
    queries: &PreparedQueries,
    docs: &DocSet<'_, T>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    use crate::arch::x86_64::avx512;
    let dim = queries.dim;
    let screen_query =
        match crate::float::screen_query_for(queries, docs.dim(), docs.len(), &options)? {
            // A bfloat16 pair must not straddle two tokens.
            Some(sq) if T::FORMAT == HalfFormat::F16 || dim.is_multiple_of(2) => sq,
            // Odd widths, or non-finite or huge query values (outside the bound).
            _ => return maxsim_half_batch_unscreened(Kernel::Avx512, queries, docs, options),
        };
    let (plain_fn, shape) = half::doc_fn(Kernel::Avx512, T::FORMAT);
    let hq = half_blocked::HalfQuery::new(queries, shape.0, shape.1);
    Ok(drive(
        docs.len(),
        &queries.segments,
        queries.stride,
        options.zero_floor,
        || (avx512::screen::Scratch::default(), Vec::new()),
        |(scratch, plain_scratch), i, maxes| {
            let doc = T::as_bits(docs.doc(i));
            // SAFETY: AVX-512F/BW/VL and AVX512_BF16 are present (checked
            // above); the document is a non-empty whole number of `dim`-wide
            // rows (DocSet invariants), `dim` is even for bfloat16,
            // `screen_query` and `hq` were built from `queries`, and `maxes`
            // has `stride` entries.
            unsafe {
                let screened = match T::FORMAT {
                    HalfFormat::F16 => {
                        avx512::screen::f16_doc_maxes(queries, &screen_query, doc, scratch, maxes)
                    }
                    HalfFormat::Bf16 => {
                        avx512::screen::bf16_doc_maxes(queries, &screen_query, doc, scratch, maxes)
                    }
                };
                if !screened {
                    plain_fn(&hq, doc, plain_scratch, maxes);
                }
            }
        },
    ))
}

/// The bf16 screen is x86-64 only (AVX512_BF16): `Unsupported` elsewhere.
#[cfg(not(target_arch = "x86_64"))]
pub fn maxsim_half_batch_screened<T: HalfFloat>(
    _queries: &PreparedQueries,
    _docs: &DocSet<'_, T>,
    _options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    Err(Error::Unsupported(
        "the bf16 screen needs x86-64 with AVX512_BF16".into(),
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

// ---------------------------------------------------------------------------
// int8
// ---------------------------------------------------------------------------

/// Per-document int8 kernel over a packed query.
type Int8Fn<Q, D> = unsafe fn(&PackedI8<Q>, &[i8], &[f32], &mut Vec<D>, &mut [f32]);

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
    check_kernel(kernel)?;
    check_dim(docs.dim(), queries.dim)?;
    check_floor(&options, docs.len())?;
    let job = Int8Job {
        queries,
        docs,
        options,
    };
    Ok(match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Amx if crate::arch::x86_64::amx::int8_applies(queries.dim) => {
            let packed = PackedI8::new_padded(queries, 4, |c| c, false, 32, None);
            drive(
                docs.len(),
                &queries.segments,
                packed.stride,
                options.zero_floor,
                crate::arch::x86_64::amx::TileState::new,
                |state, i, maxes| {
                    // SAFETY: AMX is usable (int8_applies checked CPUID, XCR0 and the
                    // Linux permission); `state` configured this thread's tiles; codes
                    // and scales come from validated `Int8Docs`.
                    unsafe {
                        crate::arch::x86_64::amx::int8_doc_maxes(
                            state,
                            &packed,
                            docs.codes.doc(i),
                            docs.scales.doc(i),
                            maxes,
                        )
                    };
                    apply_query_scales(queries, maxes);
                },
            )
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 | Kernel::Amx if std::arch::is_x86_feature_detected!("avx512vnni") => {
            job.run::<avx512::Avx512Vnni>(avx512::INT8_R, avx512::int8_doc_maxes_vnni)
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 | Kernel::Amx => {
            job.run::<avx512::Avx512Bw>(avx512::INT8_R, avx512::int8_doc_maxes_bw)
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => job.run::<avx2::Avx2I8>(avx2::INT8_R, avx2::int8_doc_maxes),
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon if std::arch::is_aarch64_feature_detected!("dotprod") => {
            job.run::<neon::NeonSdot>(neon::INT8_R, neon::int8_doc_maxes_sdot)
        }
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon => job.run::<neon::NeonSmlal>(neon::INT8_R, neon::int8_doc_maxes_smlal),
        _ => job.run::<int8::PortableI8>(int8::PORTABLE_R, int8::doc_maxes_portable),
    })
}

/// Forces the int8 path of a kernel that would otherwise pick a better one
/// (for tests of every implementation on one machine).
#[doc(hidden)]
pub fn maxsim_int8_batch_variant(
    variant: &str,
    queries: &Int8Queries,
    docs: &Int8Docs<'_>,
    options: ScoreOptions<'_>,
) -> Result<Vec<f32>> {
    check_floor(&options, docs.len())?;
    check_dim(docs.dim(), queries.dim)?;
    let job = Int8Job {
        queries,
        docs,
        options,
    };
    match variant {
        "scalar" => Ok(job.run::<int8::PortableI8>(int8::PORTABLE_R, int8::doc_maxes_portable)),
        #[cfg(target_arch = "aarch64")]
        "neon-smlal" if Kernel::Neon.is_supported() => {
            Ok(job.run::<neon::NeonSmlal>(neon::INT8_R, neon::int8_doc_maxes_smlal))
        }
        #[cfg(target_arch = "x86_64")]
        "avx512bw" if Kernel::Avx512.is_supported() => {
            Ok(job.run::<avx512::Avx512Bw>(avx512::INT8_R, avx512::int8_doc_maxes_bw))
        }
        other => Err(Error::Unsupported(format!(
            "int8 variant {other:?} is not available on this CPU"
        ))),
    }
}

fn apply_query_scales(queries: &Int8Queries, maxes: &mut [f32]) {
    for (m, &s) in maxes.iter_mut().zip(&queries.scales) {
        *m *= s;
    }
}

/// One int8 scoring call, as every register-blocked implementation runs it.
#[derive(Clone, Copy)]
struct Int8Job<'a> {
    queries: &'a Int8Queries,
    docs: &'a Int8Docs<'a>,
    options: ScoreOptions<'a>,
}

impl Int8Job<'_> {
    /// Packs the queries for the implementation `V` (tiles of `r` query
    /// vectors) and scores every document with `kernel_fn`, `V`'s kernel.
    fn run<V: I8Dot>(self, r: usize, kernel_fn: Int8Fn<V::QElem, V::DElem>) -> Vec<f32> {
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
                // SAFETY: `kernel_fn` belongs to a kernel dispatch verified is supported,
                // and `packed` was packed for its implementation `V`; codes and scales
                // come from validated `Int8Docs` (non-empty, `scales.len() * dim ==
                // codes.len()`); `maxes` has `stride` entries.
                unsafe {
                    kernel_fn(
                        &packed,
                        docs.codes.doc(i),
                        docs.scales.doc(i),
                        scratch,
                        maxes,
                    )
                };
                apply_query_scales(queries, maxes);
            },
        )
    }
}

// ---------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------

/// Which implementation each document dtype uses under `kernel`, for `maxsim.info()`.
pub fn reduced_paths(kernel: Kernel) -> Vec<(&'static str, String)> {
    #[allow(unused_mut)]
    let mut f16 = half::to_f32_name(kernel, HalfFormat::F16).to_string();
    #[allow(unused_mut)]
    let mut bf16 = half::to_f32_name(kernel, HalfFormat::Bf16).to_string();
    if crate::float::screen::screen_enabled(kernel) {
        f16 = format!(
            "{f16}; bf16 screen + exact refine from {} query tokens",
            crate::float::screen::min_screen_tokens(Some(HalfFormat::F16))
        );
        bf16 = "avx512: bf16 screen in place (vdpbf16ps) + exact refine (even dim)".into();
    }
    let int8: String = match kernel {
        Kernel::Scalar => "scalar".into(),
        #[cfg(target_arch = "x86_64")]
        Kernel::Amx if crate::arch::x86_64::amx::usable() => {
            "amx: tdpbssd tiles (dim % 64 == 0), else avx512".into()
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 | Kernel::Amx if std::arch::is_x86_feature_detected!("avx512vnni") => {
            "avx512: vnni vpdpbusd".into()
        }
        Kernel::Avx512 | Kernel::Amx => "avx512: vpmaddwd".into(),
        Kernel::Avx2 => "avx2: vpmaddwd".into(),
        #[cfg(target_arch = "aarch64")]
        Kernel::Neon if std::arch::is_aarch64_feature_detected!("dotprod") => "neon: sdot".into(),
        Kernel::Neon => "neon: smlal".into(),
    };
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Amx {
        bf16 = if crate::arch::x86_64::amx::usable() {
            "amx: tdpbf16ps tiles, query split hi+lo (dim % 32 == 0), else avx512".into()
        } else {
            format!("{bf16} (AMX tile permission denied by the OS)")
        };
    }
    vec![("float16", f16), ("bfloat16", bf16), ("int8", int8)]
}
