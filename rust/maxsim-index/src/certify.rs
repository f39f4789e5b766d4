//! The certificate: proof that a reranked result is the exhaustive top-k.
//!
//! For a query token `q_i` and a document token `d` stored in centroid `c`,
//! `⟨q_i, d⟩ = ⟨q_i, c⟩ + ⟨q_i, d − c⟩ ≤ S[c, i] + |q_i| R_c`, where `R_c` is
//! the largest residual norm (of the stored full vectors) in `c`. So:
//! - a document in no probed list of any token has every token in a
//!   centroid that no query token probed, so it scores at most `Σ_i U_i`,
//!   with `U_i` the largest `S[c, i] + |q_i| R_c` over those centroids
//!   (not merely the ones token `i` did not probe: a centroid another token
//!   probed holds only candidates);
//! - a candidate that was not exactly scored scores at most
//!   `Σ_i max_j (S[c_j, i] + |q_i| R_{c_j})` over its own tokens.
//!
//! The result is certified when the k-th exact score exceeds every such
//! bound by more than the kernels' rounding error. With `exact`, candidates
//! whose bound reaches the k-th score are scored exactly until none does
//! (the caller widens `nprobe` while the non-candidate bound still does).

use crate::candidates::QueryCtx;
use crate::error::Result;
use crate::search::{best_n, Allowed, SearchParams};
use crate::segment::Training;
use crate::snapshot::Snapshot;
use std::collections::HashSet;

/// Unit roundoff of f32.
const EPS: f64 = 1.0 / (1u64 << 24) as f64;

/// Checks (and with `p.exact`, completes) the certificate for `scored`, the
/// exactly scored documents, given every candidate of the probed lists.
#[allow(clippy::too_many_arguments)]
pub(crate) fn certify(
    snap: &Snapshot,
    training: &Training,
    ctx: &QueryCtx<'_>,
    probed: &[Vec<(f32, u32)>],
    cands: &[(u64, f32)],
    scored: &mut Vec<(u64, f32)>,
    p: &SearchParams,
    allowed: Option<&Allowed>,
) -> Result<bool> {
    let (nq, dim) = (ctx.nq, training.dim);
    let n_cent = training.n_centroids();
    let r = &snap.res_norm;
    let qn: Vec<f32> = ctx
        .q
        .chunks_exact(dim)
        .map(|row| {
            row.iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt() as f32
        })
        .collect();
    // U_i over the centroids no token probed.
    let mut probed_by_any = vec![false; n_cent];
    for &(_, c) in probed.iter().flatten() {
        probed_by_any[c as usize] = true;
    }
    let mut upper = vec![f32::NEG_INFINITY; nq];
    for (c, &rc) in r.iter().enumerate().take(n_cent) {
        if probed_by_any[c] {
            continue;
        }
        for (u, (&s, &n)) in upper.iter_mut().zip(ctx.row(c).iter().zip(&qn)) {
            let v = s + n * rc;
            if v > *u {
                *u = v;
            }
        }
    }
    let outside: f64 = upper.iter().map(|&u| u as f64).sum();
    // Rounding: each kernel dot product is within dim·ε·|q||d| of the real
    // one, |d| ≤ |c| + R_c; four times that covers the scores and the bounds.
    let reach: f64 = (0..n_cent)
        .map(|c| {
            let norm: f64 = training
                .centroid(c)
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            norm + r[c] as f64
        })
        .fold(0.0, f64::max);
    let slack = 4.0 * dim as f64 * EPS * qn.iter().map(|&v| v as f64).sum::<f64>() * reach;
    let margin = |tau: f64| slack + 2.0 * EPS * tau.abs() + 1e-30;
    let kth = |scored: &Vec<(u64, f32)>| -> f64 {
        if scored.len() < p.k {
            f64::NEG_INFINITY
        } else {
            best_n(scored.clone(), p.k)[p.k - 1].1 as f64
        }
    };
    let n_allowed = match allowed {
        None => snap.n_live,
        Some(a) => a
            .list
            .iter()
            .filter(|&&o| o < snap.total_docs() && snap.is_live(o))
            .count(),
    };
    let outsiders = n_allowed > cands.len();
    let mut done: HashSet<u64> = scored.iter().map(|e| e.0).collect();
    let unscored: Vec<u64> = cands
        .iter()
        .map(|e| e.0)
        .filter(|o| !done.contains(o))
        .collect();
    let extra = |c: usize, out: &mut [f32]| {
        for (o, &n) in out.iter_mut().zip(&qn) {
            *o = n * r[c];
        }
    };
    let bounds = snap.interaction(ctx, &unscored, Some(&extra))?;
    let mut tau = kth(scored);
    if p.exact {
        // Score every candidate whose bound reaches the k-th score; the k-th
        // score only rises, so the others stay below it.
        let need: Vec<u64> = unscored
            .iter()
            .zip(&bounds)
            .filter(|(_, &b)| b as f64 + margin(tau) >= tau)
            .map(|(&o, _)| o)
            .collect();
        if !need.is_empty() {
            let scores = snap.final_scores(training, ctx, &need, true)?;
            for (o, s) in need.into_iter().zip(scores) {
                done.insert(o);
                scored.push((o, s));
            }
            tau = kth(scored);
        }
    }
    let candidates_bounded = unscored
        .iter()
        .zip(&bounds)
        .all(|(o, &b)| done.contains(o) || (b as f64) + margin(tau) < tau);
    let outsiders_bounded = !outsiders || outside + margin(tau) < tau;
    Ok(candidates_bounded && outsiders_bounded)
}
