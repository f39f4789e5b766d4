//! Binary MaxSim: per query token, the best document token by Hamming similarity.

use super::layout::{row_words, words_per_code, Codes, GROUP, MAX_CODE_BYTES};
use super::search::for_each_tile;
use super::HammingImpl;
use crate::docs::DocSet;
use crate::error::{invalid, Result};
use crate::threads;
use rayon::prelude::*;

/// Validates an optional code length in bits against `n_bytes`.
fn d_bits_for(d_bits: Option<usize>, n_bytes: usize) -> Result<usize> {
    match d_bits {
        None => Ok(n_bytes * 8),
        Some(bits) if bits > 8 * (n_bytes - 1) && bits <= 8 * n_bytes => Ok(bits),
        Some(bits) => invalid!(
            "dim: {bits} bits do not fit codes of {n_bytes} bytes (needs {} < dim <= {})",
            8 * (n_bytes - 1),
            8 * n_bytes
        ),
    }
}

/// Binary MaxSim of each query against every document, with the selected kernel.
///
/// `queries[s]` is `nq_s` token codes of `docs.dim()` bytes each. Per query
/// token the best document token by Hamming similarity `d_bits - 2·hamming`
/// (the dot product of the ±1 vectors), summed over the query's tokens.
/// `d_bits` defaults to `8 × bytes per code`. Returns `n_queries × n_docs`
/// scores, row-major.
pub fn maxsim_scores_batch(
    queries: &[&[u8]],
    docs: &DocSet<'_, u8>,
    d_bits: Option<usize>,
) -> Result<Vec<i32>> {
    maxsim_scores_batch_with(HammingImpl::selected()?, queries, docs, d_bits)
}

/// As [`maxsim_scores_batch`], with an explicit implementation.
pub fn maxsim_scores_batch_with(
    imp: HammingImpl,
    queries: &[&[u8]],
    docs: &DocSet<'_, u8>,
    d_bits: Option<usize>,
) -> Result<Vec<i32>> {
    let n_bytes = docs.dim();
    if n_bytes > MAX_CODE_BYTES {
        return invalid!(
            "docs_codes: codes of {n_bytes} bytes are longer than the supported {MAX_CODE_BYTES}"
        );
    }
    let d_bits = d_bits_for(d_bits, n_bytes)?;
    let mut segments = Vec::with_capacity(queries.len() + 1);
    segments.push(0usize);
    for (s, q) in queries.iter().enumerate() {
        if q.len() % n_bytes != 0 {
            return invalid!(
                "query_codes[{s}]: {} bytes is not a whole number of codes of {n_bytes} bytes (the documents' code length)",
                q.len()
            );
        }
        let nq = q.len() / n_bytes;
        if nq == 0 {
            return invalid!("query_codes[{s}]: has zero tokens, shape (0, {n_bytes}); a query needs at least one token");
        }
        if (nq as u64) * (d_bits as u64) > i32::MAX as u64 {
            return invalid!(
                "query_codes[{s}]: {nq} tokens of {d_bits} bits can overflow an int32 score"
            );
        }
        segments.push(segments[s] + nq);
    }
    let n_queries = queries.len();
    let n_docs = docs.len();
    let mut doc_major = vec![0i32; n_docs * n_queries];
    if n_docs == 0 || n_queries == 0 {
        return Ok(doc_major);
    }
    let w = words_per_code(n_bytes);
    let all_tokens: Vec<u8> = queries.concat();
    let total_tokens = segments[n_queries];
    let q_words = row_words(&Codes::rows(
        "query_codes",
        &all_tokens,
        total_tokens,
        n_bytes,
    )?);
    let kernels = imp.tiles()?;
    let per_task = (n_docs / (threads::num_threads() * 8)).clamp(1, 64);
    threads::install(|| {
        doc_major
            .par_chunks_mut(per_task * n_queries)
            .enumerate()
            .for_each(|(task, out)| {
                let mut scratch = Vec::new();
                let mut mins = vec![u32::MAX; total_tokens];
                for (j, row) in out.chunks_mut(n_queries).enumerate() {
                    let doc = docs.doc(task * per_task + j);
                    let n_tok = doc.len() / n_bytes;
                    let doc_codes = Codes::Rows {
                        data: doc,
                        n: n_tok,
                        n_bytes,
                    };
                    mins.fill(u32::MAX);
                    for_each_tile(&doc_codes, 0, n_tok.div_ceil(GROUP), &mut scratch, |tile| {
                        // SAFETY: `imp` is supported; `q_words` holds `total_tokens × w`
                        // words and `mins` one entry per token; the tile is whole groups.
                        unsafe { (kernels.min)(&q_words, w, tile, &mut mins) }
                    });
                    for (s, slot) in row.iter_mut().enumerate() {
                        let best = &mins[segments[s]..segments[s + 1]];
                        let total: i64 = best.iter().map(|&m| d_bits as i64 - 2 * m as i64).sum();
                        *slot = total as i32;
                    }
                }
            })
    });
    if n_queries == 1 {
        return Ok(doc_major);
    }
    let mut out = vec![0i32; n_docs * n_queries];
    for (d, row) in doc_major.chunks_exact(n_queries).enumerate() {
        for (s, &v) in row.iter().enumerate() {
            out[s * n_docs + d] = v;
        }
    }
    Ok(out)
}
