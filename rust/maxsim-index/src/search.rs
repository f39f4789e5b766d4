//! The search pipeline (PLAID / WARP family, maxsim's kernels at the end).
//!
//! Per query:
//! 1. `S = Q · Cᵀ` on the core's register-blocked kernel (query tokens as
//!    lanes, centroid rows streamed), kept centroid-major (`K × stride`);
//! 2. the `nprobe` best centroids of each query token;
//! 3. candidates: the live (and allowed) documents of those centroids'
//!    inverted lists, each with an upper estimate of its centroid
//!    interaction: per query token the best probed centroid it has, or the
//!    `nprobe`-th score where it has none (WARP's missing-similarity rule);
//! 4. the best `4 · n_candidates` of those get their exact centroid
//!    interaction `Σ_i max_j S[code_j, i]` from their codes, which keeps
//!    `n_candidates`;
//! 5. those are scored by MaxSim on the stored full vectors (exact MaxSim,
//!    the default when the index has a store, as PLAID's last stage scores
//!    full vectors), or on their decompressed residuals;
//! 6. top-k, best first, ties to the earlier-added document.
//!
//! Every score is computed from one document's data alone and every
//! selection orders by (score, ordinal), so results do not depend on the
//! number of threads. The certificate is in [`crate::certify`].

use crate::codec::Codec;
use crate::error::{invalid, Result};
use crate::lut::Tables;
use crate::manifest::StoreKind;
use crate::reader::{SegView, StoreView};
use crate::segment::Training;
use crate::snapshot::Snapshot;
use maxsim_core::float::argmax::{dot_rows, PreparedCentroids};
use maxsim_core::reduced::{maxsim_half_batch, maxsim_int8_batch, Int8Docs, Int8Queries};
use maxsim_core::{maxsim_scores_batch, DocSet, PreparedQueries, ScoreOptions};
use rayon::prelude::*;
use std::cell::RefCell;
use std::cmp::Ordering;

/// Default centroids probed per query token.
pub const DEFAULT_NPROBE: usize = 8;
/// Documents whose centroid interaction is computed, per final candidate.
const POOL_FACTOR: usize = 4;
/// Centroid rows per parallel task of the centroid scores.
const CENTROID_CHUNK: usize = 1024;
/// Documents decoded and scored per parallel task.
const DECODE_CHUNK: usize = 16;

/// Default number of documents scored on decompressed residuals: `max(256, 16 k)`.
pub const RESIDUAL_CANDIDATES: usize = 256;
/// Default number of documents scored exactly on the stored vectors:
/// `max(EXACT_CANDIDATES, 64 k)`.
pub const EXACT_CANDIDATES: usize = 1024;

/// Default number of documents fully scored, with (`exact`) or without the
/// exact rerank. An exact score of a document costs less than a decoded one
/// (no residual decoding), and the exact path's recall is bounded only by
/// candidate generation, so it scores more of them by default.
pub fn default_candidates(k: usize, exact: bool) -> usize {
    if exact {
        (64 * k).max(EXACT_CANDIDATES)
    } else {
        (16 * k).max(RESIDUAL_CANDIDATES)
    }
}

/// Settings of one search call.
#[derive(Debug, Clone)]
pub struct SearchParams {
    pub k: usize,
    pub nprobe: Option<usize>,
    pub n_candidates: Option<usize>,
    /// Score the final candidates on the stored full vectors (`Some(true)`),
    /// on the decompressed residuals (`Some(false)`), or `None`: on the
    /// stored vectors when the index has a store.
    pub rerank: Option<bool>,
    /// Compute the certificate (only with `rerank`; without it the result is
    /// never certified).
    pub certify: bool,
    /// Widen `nprobe` until the certificate holds (implies `certify`).
    pub exact: bool,
}

impl SearchParams {
    /// Whether the final candidates are scored on the stored vectors of an
    /// index that has (`has_store`) or lacks them.
    pub fn exact_rerank(&self, has_store: bool) -> bool {
        self.exact || self.rerank.unwrap_or(has_store)
    }
}

/// One query's results, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Hits {
    pub scores: Vec<f32>,
    pub ordinals: Vec<u64>,
    /// The results are provably the exhaustive top-k (only with `certify`).
    pub certified: bool,
}

/// The documents a search may return: sorted ordinals and a bitset.
pub struct Allowed {
    bits: Vec<u64>,
    pub list: Vec<u64>,
}

impl Allowed {
    /// From ordinals (any order, repeats allowed) below `total`.
    pub fn new(mut ordinals: Vec<u64>, total: u64) -> Allowed {
        ordinals.sort_unstable();
        ordinals.dedup();
        let mut bits = vec![0u64; (total as usize).div_ceil(64)];
        for &o in &ordinals {
            bits[o as usize / 64] |= 1 << (o % 64);
        }
        Allowed {
            bits,
            list: ordinals,
        }
    }

    #[inline]
    pub fn contains(&self, o: u64) -> bool {
        self.bits
            .get(o as usize / 64)
            .is_some_and(|w| w >> (o % 64) & 1 == 1)
    }
}

/// Writes, for a centroid, the amount added to each query token's score:
/// the certificate's `|q_i| R_c`.
pub(crate) type Bound<'a> = dyn Fn(usize, &mut [f32]) + Sync + 'a;

/// Best first; NaN last; ties to the lower ordinal.
pub(crate) fn better(a: &(u64, f32), b: &(u64, f32)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal),
    }
    .then(a.0.cmp(&b.0))
}

/// The `n` best of `items`, best first.
pub(crate) fn best_n(mut items: Vec<(u64, f32)>, n: usize) -> Vec<(u64, f32)> {
    if n == 0 {
        return Vec::new();
    }
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, better);
        items.truncate(n);
    }
    items.sort_unstable_by(better);
    items
}

/// The centroid scores of one query: `s[c · stride + i] = ⟨c, q_i⟩`.
pub(crate) struct QueryCtx<'a> {
    pub q: &'a [f32],
    pub nq: usize,
    pub stride: usize,
    pub s: Vec<f32>,
    pub prepared: PreparedQueries,
}

impl<'a> QueryCtx<'a> {
    pub(crate) fn new(training: &Training, q: &'a [f32]) -> Result<Self> {
        let dim = training.dim;
        let lanes = PreparedCentroids::new(q, None, dim)?;
        let stride = lanes.stride();
        let mut s = vec![0.0f32; training.n_centroids() * stride];
        s.par_chunks_mut(CENTROID_CHUNK * stride)
            .zip(training.centroids.par_chunks(CENTROID_CHUNK * dim))
            .try_for_each(|(out, rows)| dot_rows(&lanes, rows, out))?;
        Ok(QueryCtx {
            q,
            nq: q.len() / dim,
            stride,
            s,
            prepared: PreparedQueries::new(&[q], None, dim)?,
        })
    }

    #[inline]
    pub fn row(&self, c: usize) -> &[f32] {
        &self.s[c * self.stride..(c + 1) * self.stride]
    }
}

/// Per query token, the `nprobe` best centroids `(score, centroid)`, best
/// first, ties to the lower centroid.
pub(crate) fn probes(ctx: &QueryCtx<'_>, n_cent: usize, nprobe: usize) -> Vec<Vec<(f32, u32)>> {
    let mut lists: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(nprobe + 1); ctx.nq];
    // The score a token's full list must beat; NaN while its list is not
    // full, so that the row filter below lets every score through.
    let mut floor = vec![f32::NAN; ctx.nq];
    for c in 0..n_cent {
        let row = &ctx.row(c)[..ctx.nq];
        // Most rows improve no token's list once the lists are full: one
        // branch-free pass over the row (it vectorises) skips them.
        if !row
            .iter()
            .zip(&floor)
            .fold(false, |any, (&v, &f)| any | may_enter(v, f))
        {
            continue;
        }
        for (i, list) in lists.iter_mut().enumerate() {
            let v = row[i];
            if v.is_nan() || (list.len() == nprobe && v <= floor[i]) {
                continue;
            }
            // After every entry of at least v: equal scores keep centroid order.
            let at = list.partition_point(|e| e.0 >= v);
            list.insert(at, (v, c as u32));
            if list.len() > nprobe {
                list.pop();
            }
            if list.len() == nprobe {
                floor[i] = list[nprobe - 1].0;
            }
        }
    }
    lists
}

/// Whether score `v` may enter a list whose floor is `f`: `v > f`, or either
/// is NaN (an unordered compare, so a list that is not full, whose floor is
/// NaN, takes everything; the exact loop skips NaN scores itself).
#[inline]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // the unordered case is the point
fn may_enter(v: f32, f: f32) -> bool {
    !(v <= f)
}

/// Per-thread buffers of the candidate stage, indexed by ordinal.
#[derive(Default)]
struct Scratch {
    stamp: Vec<u32>,
    generation: u32,
    seen: Vec<u32>,
    acc: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// One document's decoded rows (`tokens × dim`), reused.
    static DECODED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Snapshot {
    /// Searches every query (`nq_i × dim` each) of a batch; `allowed[i]`
    /// restricts query `i` to those documents.
    pub fn search(
        &self,
        queries: &[&[f32]],
        params: &SearchParams,
        allowed: &[Option<&Allowed>],
    ) -> Result<Vec<Hits>> {
        let dim = self.manifest.dim;
        if params.k == 0 {
            return invalid!("k: must be at least 1, got 0");
        }
        if params.nprobe == Some(0) || params.n_candidates == Some(0) {
            return invalid!("nprobe and n_candidates: must be at least 1");
        }
        if allowed.len() != queries.len() {
            return invalid!(
                "subset: {} subsets for {} queries",
                allowed.len(),
                queries.len()
            );
        }
        for (i, q) in queries.iter().enumerate() {
            if q.is_empty() || !q.len().is_multiple_of(dim) {
                return invalid!(
                    "queries[{i}]: {} values is not a non-zero number of rows of dim {dim}",
                    q.len()
                );
            }
        }
        if (params.rerank == Some(true) || params.certify || params.exact)
            && self.manifest.store.is_none()
        {
            return invalid!("rerank: 'exact' needs stored full vectors; create the index with store='float16', 'bfloat16', 'float32' or 'int8'");
        }
        if (params.certify || params.exact) && self.manifest.store == Some(StoreKind::Int8) {
            return invalid!("exact: the certificate needs a float store (float32, float16 or bfloat16); int8 rerank quantizes the queries too");
        }
        maxsim_core::threads::install(|| {
            queries
                .par_iter()
                .zip(allowed.par_iter())
                .map(|(q, a)| self.search_one(q, params, *a))
                .collect()
        })
    }

    fn search_one(&self, q: &[f32], p: &SearchParams, allowed: Option<&Allowed>) -> Result<Hits> {
        let Some(training) = self.training.as_deref() else {
            return Ok(Hits {
                scores: vec![],
                ordinals: vec![],
                certified: true,
            });
        };
        let rerank = p.exact_rerank(self.manifest.store.is_some());
        let n_cand = p
            .n_candidates
            .unwrap_or_else(|| default_candidates(p.k, rerank));
        if let Some(a) = allowed {
            let live: Vec<u64> = a
                .list
                .iter()
                .copied()
                .filter(|&o| o < self.total_docs() && self.is_live(o))
                .collect();
            if live.len() <= n_cand {
                // A small subset: score all of it. Table scoring needs the
                // centroid scores; exact and decoded scoring do not.
                let ctx = if !rerank && matches!(training.codec, Codec::Product(_)) {
                    QueryCtx::new(training, q)?
                } else {
                    QueryCtx {
                        q,
                        nq: 0,
                        stride: 0,
                        s: Vec::new(),
                        prepared: PreparedQueries::new(&[q], None, training.dim)?,
                    }
                };
                let scores = self.final_scores(training, &ctx, &live, rerank)?;
                let scored: Vec<(u64, f32)> = live.into_iter().zip(scores).collect();
                return Ok(hits(best_n(scored, p.k), rerank));
            }
        }
        let ctx = QueryCtx::new(training, q)?;
        let n_cent = training.n_centroids();
        let mut nprobe = p.nprobe.unwrap_or(DEFAULT_NPROBE).clamp(1, n_cent);
        loop {
            let probed = probes(&ctx, n_cent, nprobe);
            let cands = self.candidates(&ctx, &probed, allowed)?;
            let pool = best_n(cands.clone(), n_cand.saturating_mul(POOL_FACTOR));
            let pool_ords: Vec<u64> = pool.iter().map(|e| e.0).collect();
            let interaction = self.interaction(training, &ctx, &pool_ords, None)?;
            let survivors: Vec<u64> =
                best_n(pool_ords.into_iter().zip(interaction).collect(), n_cand)
                    .into_iter()
                    .map(|e| e.0)
                    .collect();
            let scores = self.final_scores(training, &ctx, &survivors, rerank)?;
            let mut scored: Vec<(u64, f32)> = survivors.into_iter().zip(scores).collect();
            // The certificate compares exact scores with upper bounds: on
            // residual-decoded (approximate) scores it would prove nothing.
            let certified = if rerank && (p.certify || p.exact) {
                crate::certify::certify(
                    self,
                    training,
                    &ctx,
                    &probed,
                    &cands,
                    &mut scored,
                    p,
                    allowed,
                )?
            } else {
                false
            };
            if !p.exact || certified || nprobe >= n_cent {
                return Ok(Hits {
                    certified,
                    ..hits(best_n(scored, p.k), false)
                });
            }
            nprobe = (nprobe * 2).min(n_cent);
        }
    }

    /// Candidates of the probed lists with their estimated centroid interaction.
    fn candidates(
        &self,
        ctx: &QueryCtx<'_>,
        probed: &[Vec<(f32, u32)>],
        allowed: Option<&Allowed>,
    ) -> Result<Vec<(u64, f32)>> {
        let views = self.views()?;
        let floor: Vec<f32> = probed
            .iter()
            .map(|l| l.last().map_or(0.0, |e| e.0))
            .collect();
        let base_score: f64 = floor.iter().map(|&m| m as f64).sum();
        let total = self.total_docs() as usize;
        SCRATCH.with(|cell| {
            let mut sc = cell.borrow_mut();
            let sc = &mut *sc;
            if sc.stamp.len() < total {
                sc.stamp.resize(total, 0);
                sc.seen.resize(total, 0);
                sc.acc.resize(total, 0.0);
            }
            sc.generation = sc.generation.wrapping_add(1);
            if sc.generation == 0 {
                sc.stamp.fill(0);
                sc.generation = 1;
            }
            let generation = sc.generation;
            let mut cands: Vec<u64> = Vec::new();
            for (s, (seg, view)) in self.segments.iter().zip(&views).enumerate() {
                let base = self.bases[s];
                for (i, list) in probed.iter().enumerate() {
                    for &(score, c) in list {
                        let gain = score - floor[i];
                        for &d in view.list(c) {
                            let ord = base + d as u64;
                            if seg.is_deleted(d as usize)
                                || allowed.is_some_and(|a| !a.contains(ord))
                            {
                                continue;
                            }
                            let slot = ord as usize;
                            if sc.stamp[slot] != generation {
                                sc.stamp[slot] = generation;
                                sc.acc[slot] = 0.0;
                                sc.seen[slot] = u32::MAX;
                                cands.push(ord);
                            }
                            // Probes come best first: the first hit of token i is its best.
                            if sc.seen[slot] != i as u32 {
                                sc.seen[slot] = i as u32;
                                sc.acc[slot] += gain;
                            }
                        }
                    }
                }
            }
            let _ = ctx;
            Ok(cands
                .into_iter()
                .map(|o| (o, (base_score + sc.acc[o as usize] as f64) as f32))
                .collect())
        })
    }

    pub(crate) fn views(&self) -> Result<Vec<SegView<'_>>> {
        self.segments.iter().map(|s| s.view()).collect()
    }

    /// `Σ_i max_j (S[code_j, i] + bound_i(code_j))` of each document, where
    /// `bound(c)` (per query token, `stride` values per centroid) is added
    /// when given: the centroid interaction, or its certified upper bound.
    pub(crate) fn interaction(
        &self,
        training: &Training,
        ctx: &QueryCtx<'_>,
        ords: &[u64],
        bound: Option<&Bound<'_>>,
    ) -> Result<Vec<f32>> {
        let views = self.views()?;
        let _ = training;
        let (nq, stride) = (ctx.nq, ctx.stride);
        Ok(ords
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(best, extra): &mut (Vec<f32>, Vec<f32>), &o| {
                    let (s, d) = self.locate(o);
                    let v = &views[s];
                    let (a, b) = v.tokens(d);
                    best.clear();
                    best.resize(stride, f32::NEG_INFINITY);
                    match bound {
                        None => {
                            for t in a..b {
                                max_into(best, ctx.row(v.codes.get(t)));
                            }
                        }
                        Some(f) => {
                            extra.resize(stride, 0.0);
                            for t in a..b {
                                let c = v.codes.get(t);
                                f(c, extra);
                                for ((m, &x), &e) in best.iter_mut().zip(ctx.row(c)).zip(&*extra) {
                                    *m = m.max(x + e);
                                }
                            }
                        }
                    }
                    best[..nq].iter().map(|&m| m as f64).sum::<f64>() as f32
                },
            )
            .collect())
    }

    /// MaxSim of the query against each document: on decompressed residuals,
    /// or (`exact`) on the stored full vectors.
    pub(crate) fn final_scores(
        &self,
        training: &Training,
        ctx: &QueryCtx<'_>,
        ords: &[u64],
        exact: bool,
    ) -> Result<Vec<f32>> {
        if ords.is_empty() {
            return Ok(Vec::new());
        }
        let views = self.views()?;
        let dim = training.dim;
        let options = ScoreOptions::default();
        if exact {
            let ranges: Vec<(usize, usize, usize)> = ords
                .iter()
                .map(|&o| {
                    let (s, d) = self.locate(o);
                    let (a, b) = views[s].tokens(d);
                    (s, a, b)
                })
                .collect();
            let store = |s: usize| views[s].store.expect("rerank checked the store");
            return Ok(match store(ranges[0].0) {
                StoreView::F32(_) => {
                    let docs = ranges.iter().map(|&(s, a, b)| match store(s) {
                        StoreView::F32(x) => &x[a * dim..b * dim],
                        _ => unreachable!("one store type per index"),
                    });
                    maxsim_scores_batch(
                        &ctx.prepared,
                        &DocSet::list(docs.collect(), dim)?,
                        options,
                    )?
                }
                StoreView::F16(_) => {
                    let docs = ranges.iter().map(|&(s, a, b)| match store(s) {
                        StoreView::F16(x) => &x[a * dim..b * dim],
                        _ => unreachable!("one store type per index"),
                    });
                    maxsim_half_batch(&ctx.prepared, &DocSet::list(docs.collect(), dim)?, options)?
                }
                StoreView::Bf16(_) => {
                    let docs = ranges.iter().map(|&(s, a, b)| match store(s) {
                        StoreView::Bf16(x) => &x[a * dim..b * dim],
                        _ => unreachable!("one store type per index"),
                    });
                    maxsim_half_batch(&ctx.prepared, &DocSet::list(docs.collect(), dim)?, options)?
                }
                StoreView::Int8(..) => {
                    let (mut codes, mut scales) = (Vec::new(), Vec::new());
                    for &(s, a, b) in &ranges {
                        if let StoreView::Int8(c, sc) = store(s) {
                            codes.push(&c[a * dim..b * dim]);
                            scales.push(&sc[a..b]);
                        }
                    }
                    let queries = Int8Queries::quantize(&[ctx.q], None, dim)?;
                    maxsim_int8_batch(&queries, &Int8Docs::list(codes, scales, dim)?, options)?
                }
            });
        }
        let bpt = training.codec.bytes_per_token();
        if let (Codec::Product(pq), true) = (&training.codec, crate::lut::use_tables()) {
            let tables = Tables::new(pq, ctx)?;
            return Ok(ords
                .par_iter()
                .map_init(
                    || (Vec::new(), Vec::new()),
                    |(cents, best): &mut (Vec<u32>, Vec<f32>), &o| {
                        let (s, d) = self.locate(o);
                        let v = &views[s];
                        let (a, b) = v.tokens(d);
                        cents.clear();
                        cents.extend((a..b).map(|t| v.codes.get(t) as u32));
                        tables.score(cents, &v.residuals[a * bpt..b * bpt], best)
                    },
                )
                .collect());
        }
        let chunks: Vec<Result<Vec<f32>>> = ords
            .par_chunks(DECODE_CHUNK)
            .map(|chunk| {
                DECODED.with(|cell| {
                    let mut flat = cell.borrow_mut();
                    let mut scores = Vec::with_capacity(chunk.len());
                    // Score one document at a time: the decoded rows stay in one
                    // per-thread buffer of a document's size, so the heap a search
                    // leaves behind does not grow with the candidate count.
                    for &o in chunk {
                        let (s, d) = self.locate(o);
                        let v = &views[s];
                        let (a, b) = v.tokens(d);
                        flat.clear();
                        flat.resize((b - a) * dim, 0.0);
                        for (row, t) in flat.chunks_mut(dim).zip(a..b) {
                            training.codec.decode_add(
                                &v.residuals[t * bpt..(t + 1) * bpt],
                                training.centroid(v.codes.get(t)),
                                row,
                            );
                        }
                        let offsets = [0i64, (b - a) as i64];
                        scores.extend(maxsim_scores_batch(
                            &ctx.prepared,
                            &DocSet::packed(&flat, &offsets, dim)?,
                            options,
                        )?);
                    }
                    Ok(scores)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(ords.len());
        for c in chunks {
            out.extend(c?);
        }
        Ok(out)
    }
}

/// `best[i] = max(best[i], row[i])`, NaN in `row` ignored as `f32::max`
/// does; the plain comparison compiles to one `maxps` per vector.
#[inline]
fn max_into(best: &mut [f32], row: &[f32]) {
    for (m, &x) in best.iter_mut().zip(row) {
        *m = if x > *m { x } else { *m };
    }
}

fn hits(best: Vec<(u64, f32)>, certified: bool) -> Hits {
    Hits {
        scores: best.iter().map(|e| e.1).collect(),
        ordinals: best.iter().map(|e| e.0).collect(),
        certified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Per token, every non-NaN centroid score sorted best first, ties to the
    /// lower centroid, cut at `nprobe`: what `probes` promises.
    fn reference(s: &[f32], nq: usize, stride: usize, nprobe: usize) -> Vec<Vec<(f32, u32)>> {
        (0..nq)
            .map(|i| {
                let mut col: Vec<(f32, u32)> = (0..s.len() / stride)
                    .map(|c| (s[c * stride + i], c as u32))
                    .filter(|e| !e.0.is_nan())
                    .collect();
                col.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                col.truncate(nprobe);
                col
            })
            .collect()
    }

    proptest! {
        /// Scores from a few levels (many ties), some NaN, some infinite, any
        /// `nprobe` up to past the centroid count; padded lanes hold junk
        /// that must be ignored.
        #[test]
        fn probes_match_a_sort(
            nq in prop_oneof![1usize..4, 1usize..40],
            n_cent in 1usize..120,
            nprobe in 1usize..20,
            seed in any::<u64>(),
        ) {
            let stride = nq.next_multiple_of(16);
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let s: Vec<f32> = (0..n_cent * stride)
                .map(|j| {
                    if j % stride >= nq {
                        return 1e30; // padding lane
                    }
                    match next() % 8 {
                        0 => f32::NAN,
                        1 => f32::NEG_INFINITY,
                        2 => f32::INFINITY,
                        r => (r % 5) as f32 * 0.25 - 0.5,
                    }
                })
                .collect();
            let q = vec![0.0f32; nq];
            let ctx = QueryCtx {
                q: &q,
                nq,
                stride,
                s: s.clone(),
                prepared: PreparedQueries::new(&[&q], None, 1).unwrap(),
            };
            let got = probes(&ctx, n_cent, nprobe);
            let want = reference(&s, nq, stride, nprobe);
            for (g, w) in got.iter().zip(&want) {
                let g: Vec<(u32, u32)> = g.iter().map(|e| (e.0.to_bits(), e.1)).collect();
                let w: Vec<(u32, u32)> = w.iter().map(|e| (e.0.to_bits(), e.1)).collect();
                prop_assert_eq!(g, w);
            }
        }
    }
}
