//! Stage 5 of the search: MaxSim of the surviving candidates, exact on the
//! stored full vectors, or on their residuals (from per-query lookup tables
//! for the product codec, or on decoded rows).

use crate::candidates::QueryCtx;
use crate::codec::Codec;
use crate::error::Result;
use crate::lut::Tables;
use crate::reader::StoreView;
use crate::segment::Training;
use crate::snapshot::Snapshot;
use maxsim_core::reduced::{maxsim_half_batch, maxsim_int8_batch, Int8Docs, Int8Queries};
use maxsim_core::{maxsim_scores_batch, DocSet, ScoreOptions};
use rayon::prelude::*;
use std::cell::RefCell;

/// Documents decoded and scored per parallel task.
const DECODE_CHUNK: usize = 16;

thread_local! {
    /// One document's decoded rows (`tokens × dim`), reused.
    static DECODED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Snapshot {
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
