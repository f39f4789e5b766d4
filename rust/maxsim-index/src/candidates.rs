//! Stages 1 to 4 of the search: the centroid scores of a query, the
//! `nprobe` best centroids of each query token, the candidates of their
//! inverted lists with an estimate of their centroid interaction, and the
//! exact centroid interaction of a pool of them (or its certified upper
//! bound, for [`crate::certify`]).

use crate::error::Result;
use crate::reader::SegView;
use crate::search::Allowed;
use crate::segment::Training;
use crate::snapshot::Snapshot;
use maxsim_core::float::argmax::{dot_rows, PreparedCentroids};
use maxsim_core::PreparedQueries;
use rayon::prelude::*;
use std::cell::RefCell;

/// Centroid rows per parallel task of the centroid scores.
const CENTROID_CHUNK: usize = 1024;

/// Writes, for a centroid, the amount added to each query token's score:
/// the certificate's `|q_i| R_c`.
pub(crate) type Bound<'a> = dyn Fn(usize, &mut [f32]) + Sync + 'a;

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
}

impl Snapshot {
    /// Candidates of the probed lists with their estimated centroid interaction.
    pub(crate) fn candidates(
        &self,
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
        ctx: &QueryCtx<'_>,
        ords: &[u64],
        bound: Option<&Bound<'_>>,
    ) -> Result<Vec<f32>> {
        let views = self.views()?;
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
}

/// `best[i] = max(best[i], row[i])`, NaN in `row` ignored as `f32::max`
/// does; the plain comparison compiles to one `maxps` per vector.
#[inline]
fn max_into(best: &mut [f32], row: &[f32]) {
    for (m, &x) in best.iter_mut().zip(row) {
        *m = if x > *m { x } else { *m };
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
