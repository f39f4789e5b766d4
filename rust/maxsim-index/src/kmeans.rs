//! Seeded, deterministic k-means (Lloyd) over token embeddings, and the
//! nearest-centroid assignment the index uses for every added token.
//!
//! Assignment is a max-inner-product argmax with the bias `-|c|²/2`, which
//! makes it the Euclidean nearest centroid, on the core's register-blocked
//! kernel (`maxsim_core::float::argmax`). Rows are split into fixed chunks
//! and each centroid's new mean is summed in f64 over its members in sample
//! order, so the result depends on the seed only, not on the thread count.

use crate::error::{invalid, Result};
use crate::rng::Rng;
use maxsim_core::float::argmax::{argmax_rows, PreparedCentroids};
use rayon::prelude::*;

/// Rows per parallel assignment task.
const CHUNK_ROWS: usize = 1024;

/// PLAID's centroid count for a corpus of `n_tokens`: the power of two at or
/// below `16 √n_tokens` (at least 1).
pub fn plaid_centroid_count(n_tokens: usize) -> usize {
    let target = 16.0 * (n_tokens.max(1) as f64).sqrt();
    1usize << (target.log2().floor() as u32)
}

/// Centroids prepared for Euclidean nearest-centroid assignment.
pub fn prepare_l2(centroids: &[f32], dim: usize) -> Result<PreparedCentroids> {
    let bias: Vec<f32> = centroids
        .chunks_exact(dim)
        .map(|c| -0.5 * c.iter().map(|&v| v * v).sum::<f32>())
        .collect();
    Ok(PreparedCentroids::new(centroids, Some(&bias), dim)?)
}

/// The nearest centroid of every row of `rows` (`n × dim`), in parallel.
pub fn assign(prepared: &PreparedCentroids, rows: &[f32]) -> Result<Vec<u32>> {
    let dim = prepared.dim();
    let mut codes = vec![0u32; rows.len() / dim];
    codes
        .par_chunks_mut(CHUNK_ROWS)
        .zip(rows.par_chunks(CHUNK_ROWS * dim))
        .try_for_each(|(out, chunk)| argmax_rows(prepared, chunk, out))?;
    Ok(codes)
}

/// Trains `k` centroids (`k × dim`, row-major) on `sample` (`n × dim`) with
/// `iters` Lloyd iterations from `k` distinct sample rows chosen by `seed`.
/// `k` is capped at `n`. An emptied cluster restarts at a seeded random row.
pub fn train(sample: &[f32], dim: usize, k: usize, iters: usize, seed: u64) -> Result<Vec<f32>> {
    if dim == 0 || sample.is_empty() || !sample.len().is_multiple_of(dim) {
        return invalid!(
            "sample: {} values is not a non-empty whole number of rows of dim {dim}",
            sample.len()
        );
    }
    let n = sample.len() / dim;
    let k = k.clamp(1, n);
    let mut rng = Rng::new(seed);
    let mut centroids: Vec<f32> = rng
        .sample(n, k)
        .into_iter()
        .flat_map(|r| sample[r * dim..(r + 1) * dim].iter().copied())
        .collect();
    for _ in 0..iters {
        let prepared = prepare_l2(&centroids, dim)?;
        let codes = assign(&prepared, sample)?;
        // Members of each centroid, in sample order (a counting sort).
        let mut starts = vec![0usize; k + 1];
        for &c in &codes {
            starts[c as usize + 1] += 1;
        }
        for c in 0..k {
            starts[c + 1] += starts[c];
        }
        let mut fill = starts.clone();
        let mut members = vec![0usize; n];
        for (row, &c) in codes.iter().enumerate() {
            members[fill[c as usize]] = row;
            fill[c as usize] += 1;
        }
        let means: Vec<Option<Vec<f32>>> = (0..k)
            .into_par_iter()
            .map(|c| {
                let rows = &members[starts[c]..starts[c + 1]];
                if rows.is_empty() {
                    return None;
                }
                let mut sum = vec![0.0f64; dim];
                for &r in rows {
                    for (s, &v) in sum.iter_mut().zip(&sample[r * dim..(r + 1) * dim]) {
                        *s += v as f64;
                    }
                }
                Some(
                    sum.iter()
                        .map(|&s| (s / rows.len() as f64) as f32)
                        .collect(),
                )
            })
            .collect();
        for (c, mean) in means.into_iter().enumerate() {
            let row = match mean {
                Some(mean) => mean,
                None => {
                    let r = rng.below(n as u64) as usize;
                    sample[r * dim..(r + 1) * dim].to_vec()
                }
            };
            centroids[c * dim..(c + 1) * dim].copy_from_slice(&row);
        }
    }
    Ok(centroids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroid_count_rule() {
        assert_eq!(plaid_centroid_count(1), 16);
        assert_eq!(plaid_centroid_count(1_300_000), 16384);
        assert_eq!(plaid_centroid_count(10_000_000), 32768);
    }

    #[test]
    fn finds_separated_clusters_and_is_deterministic() {
        // Three tight clusters far apart: every point must end with its cluster.
        let dim = 4;
        let centers = [
            [10.0f32, 0.0, 0.0, 0.0],
            [0.0, 10.0, 0.0, 0.0],
            [0.0, 0.0, 10.0, 0.0],
        ];
        let mut rng = Rng::new(9);
        let mut sample = Vec::new();
        for i in 0..300 {
            for &v in &centers[i % 3] {
                sample.push(v + (rng.below(1000) as f32 / 1000.0 - 0.5) * 0.1);
            }
        }
        let a = train(&sample, dim, 3, 10, 1).unwrap();
        assert_eq!(a, train(&sample, dim, 3, 10, 1).unwrap());
        let codes = assign(&prepare_l2(&a, dim).unwrap(), &sample).unwrap();
        for i in 0..300 {
            assert_eq!(codes[i], codes[i % 3], "point {i}");
        }
        let mut distinct = codes[..3].to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        // More centroids than points: capped.
        assert_eq!(train(&sample[..8], dim, 5, 2, 0).unwrap().len(), 8);
        assert!(train(&[], dim, 3, 1, 0).is_err());
    }
}
