//! Rescoring Hamming candidates against the float query.
//!
//! Two targets:
//! - the candidates' own bits, unpacked to 0/1 (sentence-transformers'
//!   rescoring: `query · unpackbits(code)`, i.e. the sum of the query values
//!   at the set bits);
//! - stored float32, float16 or int8 document vectors: exact dot products.
//!
//! Sums are accumulated in `f64` in dimension order and rounded once to `f32`,
//! so a score does not depend on how the work is split. Candidates are then
//! ordered best first, ties to the lower database index, NaN last.

use super::layout::Codes;
use super::quantize::F16Bits;
use crate::error::{invalid, Result};
use crate::threads;
use crate::topk::better;
use rayon::prelude::*;

/// Stored document vectors for exact rescoring, `n × dim` row-major.
#[derive(Debug, Clone, Copy)]
pub enum DbFloat<'a> {
    F32(&'a [f32]),
    F16(&'a [F16Bits]),
    I8(&'a [i8]),
}

impl DbFloat<'_> {
    fn len(&self) -> usize {
        match self {
            DbFloat::F32(x) => x.len(),
            DbFloat::F16(x) => x.len(),
            DbFloat::I8(x) => x.len(),
        }
    }

    fn dtype(&self) -> &'static str {
        match self {
            DbFloat::F32(_) => "float32",
            DbFloat::F16(_) => "float16",
            DbFloat::I8(_) => "int8",
        }
    }

    #[inline]
    fn dot(&self, query: &[f32], i: usize) -> f64 {
        let dim = query.len();
        let range = i * dim..(i + 1) * dim;
        match self {
            DbFloat::F32(x) => query
                .iter()
                .zip(&x[range])
                .map(|(&q, &d)| q as f64 * d as f64)
                .sum(),
            DbFloat::F16(x) => query
                .iter()
                .zip(&x[range])
                .map(|(&q, &d)| q as f64 * half::f16::from_bits(d.0).to_f64())
                .sum(),
            DbFloat::I8(x) => query
                .iter()
                .zip(&x[range])
                .map(|(&q, &d)| q as f64 * d as f64)
                .sum(),
        }
    }
}

/// What candidates are rescored against.
#[derive(Debug, Clone, Copy)]
pub enum RescoreTarget<'a> {
    /// The candidates' bits as 0/1 values. `flipped`: the codes are `binary`
    /// (`int8`, top bit of every byte flipped) rather than `ubinary`.
    Bits { codes: Codes<'a>, flipped: bool },
    /// Stored vectors of the `n` database entries.
    Float { docs: DbFloat<'a>, n: usize },
}

/// Rescored results: `n_queries × k` scores (best first) and database indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescored {
    pub k: usize,
    pub scores: Vec<f32>,
    pub indices: Vec<i64>,
}

/// `Σ_j query[j] · bit_j(code i)` over the first `query.len()` bits.
#[inline]
fn bits_dot(query: &[f32], codes: &Codes<'_>, flipped: bool, i: usize) -> f64 {
    let flip = if flipped { 0x8080_8080_8080_8080u64 } else { 0 };
    let dim = query.len();
    let mut total = 0.0f64;
    for (k, chunk) in query.chunks(64).enumerate() {
        let bytes = (codes.word(i, k) ^ flip).to_le_bytes();
        for (b, part) in chunk.chunks(8).enumerate() {
            let mut byte = bytes[b];
            // Bit 7 of the byte is dimension 0 of the chunk (MSB first).
            while byte != 0 {
                let j = byte.leading_zeros() as usize;
                byte &= !(0x80u8 >> j);
                if j < part.len() {
                    total += part[j] as f64;
                }
            }
        }
    }
    debug_assert!(dim <= codes.n_bytes() * 8);
    total
}

/// Rescores `candidates` (`n_queries × n_candidates` database indices) against
/// `query` (`n_queries × dim`) and keeps the best `min(k, n_candidates)` per query.
pub fn rescore(
    query: &[f32],
    dim: usize,
    candidates: &[i64],
    n_candidates: usize,
    k: usize,
    target: RescoreTarget<'_>,
) -> Result<Rescored> {
    if dim == 0 {
        return invalid!("query: dimension must be at least 1");
    }
    if !query.len().is_multiple_of(dim) {
        return invalid!(
            "query: {} values is not a whole number of rows of dim {dim}",
            query.len()
        );
    }
    if k == 0 {
        return invalid!("k: must be at least 1, got 0");
    }
    let n_queries = query.len() / dim;
    if n_queries.checked_mul(n_candidates) != Some(candidates.len()) {
        return invalid!(
            "candidates: holds {} indices, not shape ({n_queries}, {n_candidates})",
            candidates.len()
        );
    }
    let n = match target {
        RescoreTarget::Bits { codes, .. } => {
            if dim.div_ceil(8) != codes.n_bytes() {
                return invalid!(
                    "query: dimension {dim} does not match codes of {} bytes ({} bits)",
                    codes.n_bytes(),
                    codes.n_bytes() * 8
                );
            }
            codes.len()
        }
        RescoreTarget::Float { docs, n } => {
            if n.checked_mul(dim) != Some(docs.len()) {
                return invalid!(
                    "db_float: {} {} values do not form shape ({n}, {dim}) (the database size and the query dimension)",
                    docs.len(),
                    docs.dtype()
                );
            }
            n
        }
    };
    if let Some(bad) = candidates.iter().find(|&&c| c < 0 || c as u64 >= n as u64) {
        return invalid!("candidates: index {bad} is out of range for a database of {n} entries");
    }
    let kept = k.min(n_candidates);
    let rows: Vec<Vec<(f32, i64)>> = threads::install(|| {
        (0..n_queries)
            .into_par_iter()
            .map(|qi| {
                let q = &query[qi * dim..(qi + 1) * dim];
                let mut scored: Vec<(f32, i64)> = candidates
                    [qi * n_candidates..(qi + 1) * n_candidates]
                    .iter()
                    .map(|&c| {
                        let i = c as usize;
                        let s = match target {
                            RescoreTarget::Bits { codes, flipped } => {
                                bits_dot(q, &codes, flipped, i)
                            }
                            RescoreTarget::Float { docs, .. } => docs.dot(q, i),
                        };
                        (s as f32, c)
                    })
                    .collect();
                scored.sort_unstable_by(better);
                scored.truncate(kept);
                scored
            })
            .collect()
    });
    let mut scores = Vec::with_capacity(n_queries * kept);
    let mut indices = Vec::with_capacity(n_queries * kept);
    for row in rows {
        for (s, i) in row {
            scores.push(s);
            indices.push(i);
        }
    }
    Ok(Rescored {
        k: kept,
        scores,
        indices,
    })
}
