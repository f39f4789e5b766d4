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
//! number of threads. Stages 1 to 4 are in the crate's `candidates` module,
//! stage 5 in `rescore`, the certificate in [`crate::certify`].

use crate::candidates::{probes, QueryCtx};
use crate::codec::Codec;
use crate::error::{invalid, Result};
use crate::manifest::StoreKind;
use crate::snapshot::Snapshot;
use maxsim_core::PreparedQueries;
use rayon::prelude::*;
use std::cmp::Ordering;

/// Default centroids probed per query token.
pub const DEFAULT_NPROBE: usize = 8;
/// Documents whose centroid interaction is computed, per final candidate.
const POOL_FACTOR: usize = 4;

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
            let cands = self.candidates(&probed, allowed)?;
            let pool = best_n(cands.clone(), n_cand.saturating_mul(POOL_FACTOR));
            let pool_ords: Vec<u64> = pool.iter().map(|e| e.0).collect();
            let interaction = self.interaction(&ctx, &pool_ords, None)?;
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
}

fn hits(best: Vec<(u64, f32)>, certified: bool) -> Hits {
    Hits {
        scores: best.iter().map(|e| e.1).collect(),
        ordinals: best.iter().map(|e| e.0).collect(),
        certified,
    }
}
