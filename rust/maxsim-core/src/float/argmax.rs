//! Nearest-centroid assignment and centroid scores, register-blocked over [`F32Vec`].
//!
//! For token rows `x` (`n × dim`, row-major) and `k` centroids `c` with an
//! optional per-centroid bias `b`, [`argmax_rows`] finds for every row the
//! centroid maximising `⟨x, c⟩ + b_c` (ties to the lower index) and
//! [`dot_rows`] writes every `⟨x, c⟩ + b_c`. With `b_c = -|c|²/2` the argmax is
//! the Euclidean nearest centroid; with no bias it is the max-inner-product one.
//!
//! Layout, as the MaxSim kernel's with roles swapped: the centroids are stored
//! transposed (`dim × stride`), so one vector holds one dimension of `LANES`
//! consecutive centroids, and token values are broadcast. An `R × T` tile of
//! (centroid vector, token) dot products lives in registers for the whole
//! `dim` loop; each accumulator starts at the centroids' bias (`-inf` in the
//! padding lanes, so a padding lane never wins). Centroids are walked in
//! blocks that stay in L2 while a chunk of tokens passes over them, so a large
//! codebook is not streamed from memory once per tile. Each dot product is
//! accumulated over `dim` in order, so a row's result does not depend on how
//! rows are split across calls or threads.

use crate::dispatch::{selected_kernel, table, Kernel};
use crate::error::{invalid, Result};
use crate::vector::F32Vec;

/// Centroids per cache block (256 × 128-d × 4 B = 128 KiB, half an L2).
const BLOCK_BYTES: usize = 128 * 1024;
/// Centroid lanes are padded to a multiple of this (the widest vector).
const PAD: usize = 16;

/// Centroids (and their biases) transposed for the kernels.
#[derive(Debug, Clone)]
pub struct PreparedCentroids {
    dim: usize,
    n: usize,
    /// `n` rounded up to [`PAD`]: the row length of `transposed`.
    stride: usize,
    /// `dim × stride`; padding lanes are 0.
    transposed: Vec<f32>,
    /// `stride` values: the bias of each centroid, `-inf` for padding lanes.
    bias: Vec<f32>,
}

impl PreparedCentroids {
    /// `centroids`: `n × dim` row-major f32, `n ≥ 1`; `bias`: `n` values or `None` (all 0).
    pub fn new(centroids: &[f32], bias: Option<&[f32]>, dim: usize) -> Result<Self> {
        if dim == 0 {
            return invalid!("centroids: dimension must be at least 1");
        }
        if centroids.is_empty() || !centroids.len().is_multiple_of(dim) {
            return invalid!(
                "centroids: {} values is not a non-zero whole number of rows of dim {dim}",
                centroids.len()
            );
        }
        let n = centroids.len() / dim;
        if let Some(b) = bias {
            if b.len() != n {
                return invalid!("bias: {} values for {n} centroids", b.len());
            }
        }
        let stride = n.div_ceil(PAD) * PAD;
        let mut transposed = vec![0.0f32; dim * stride];
        for (c, row) in centroids.chunks_exact(dim).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                transposed[k * stride + c] = v;
            }
        }
        let mut padded_bias = vec![f32::NEG_INFINITY; stride];
        for (c, slot) in padded_bias[..n].iter_mut().enumerate() {
            *slot = bias.map_or(0.0, |b| b[c]);
        }
        Ok(PreparedCentroids {
            dim,
            n,
            stride,
            transposed,
            bias: padded_bias,
        })
    }

    /// Number of centroids.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a prepared codebook has at least one centroid.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row length of [`dot_rows`]'s output: `len()` rounded up to 16.
    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// What a kernel does with each finished tile of dot products.
pub(crate) trait TileSink {
    /// `values[j]` is the score of token `row` against centroid `first + j`,
    /// for `j < values.len()` (padding lanes included; they hold `-inf`).
    fn take(&mut self, row: usize, first: usize, values: &[f32]);
}

/// Running best `(score, index)` per row.
pub(crate) struct ArgmaxSink<'a> {
    pub(crate) best: Vec<f32>,
    pub(crate) index: &'a mut [u32],
}

impl TileSink for ArgmaxSink<'_> {
    #[inline(always)]
    fn take(&mut self, row: usize, first: usize, values: &[f32]) {
        let mut best = self.best[row];
        let mut index = self.index[row];
        for (j, &v) in values.iter().enumerate() {
            // Strictly greater: blocks arrive in centroid order, so ties keep
            // the lower index (and NaN never wins).
            if v > best {
                best = v;
                index = (first + j) as u32;
            }
        }
        self.best[row] = best;
        self.index[row] = index;
    }
}

/// Every score, into a `rows × stride` matrix.
pub(crate) struct StoreSink<'a> {
    pub(crate) out: &'a mut [f32],
    pub(crate) stride: usize,
}

impl TileSink for StoreSink<'_> {
    #[inline(always)]
    fn take(&mut self, row: usize, first: usize, values: &[f32]) {
        let at = row * self.stride + first;
        self.out[at..at + values.len()].copy_from_slice(values);
    }
}

/// Runs every (row, centroid) dot product of `rows` through `sink`.
///
/// # Safety
/// `V`'s instructions must be available; `rows.len()` must be a multiple of `c.dim`.
#[inline(always)]
pub(crate) unsafe fn scan<V: F32Vec, const R: usize, const T: usize, S: TileSink>(
    c: &PreparedCentroids,
    rows: &[f32],
    sink: &mut S,
) {
    let dim = c.dim;
    debug_assert!(rows.len().is_multiple_of(dim));
    let n_rows = rows.len() / dim;
    let n_vec = c.stride / V::LANES;
    let block_vecs = ((BLOCK_BYTES / (dim * 4 * V::LANES)) / R * R).max(R);
    let mut v0 = 0;
    while v0 < n_vec {
        let v1 = (v0 + block_vecs).min(n_vec);
        let mut t = 0;
        while t + T <= n_rows {
            block::<V, R, T, S>(c, rows, t, (v0, v1), sink);
            t += T;
        }
        while t < n_rows {
            block::<V, R, 1, S>(c, rows, t, (v0, v1), sink);
            t += 1;
        }
        v0 = v1;
    }
}

/// Tokens `t..t + T` against centroid vectors `v0..v1`.
#[inline(always)]
unsafe fn block<V: F32Vec, const R: usize, const T: usize, S: TileSink>(
    c: &PreparedCentroids,
    rows: &[f32],
    t: usize,
    (v0, v1): (usize, usize),
    sink: &mut S,
) {
    let mut v = v0;
    while v + R <= v1 {
        tile::<V, R, T, S>(c, rows, t, v, sink);
        v += R;
    }
    while v < v1 {
        tile::<V, 1, T, S>(c, rows, t, v, sink);
        v += 1;
    }
}

/// One `R × T` register tile: centroid vectors `v..v + R`, tokens `t..t + T`.
// Index loops over the const-size tile unroll fully and keep `acc` in registers.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn tile<V: F32Vec, const R: usize, const T: usize, S: TileSink>(
    c: &PreparedCentroids,
    rows: &[f32],
    t: usize,
    v: usize,
    sink: &mut S,
) {
    let dim = c.dim;
    let lanes = V::LANES;
    let base = c.transposed.as_ptr().add(v * lanes);
    let bias = c.bias.as_ptr().add(v * lanes);
    let x = rows.as_ptr().add(t * dim);
    let mut acc = [[V::zero(); T]; R];
    for r in 0..R {
        let b = V::load(bias.add(r * lanes));
        for slot in acc[r].iter_mut() {
            *slot = b;
        }
    }
    for k in 0..dim {
        let row = base.add(k * c.stride);
        let mut cv = [V::zero(); R];
        for (r, slot) in cv.iter_mut().enumerate() {
            *slot = V::load(row.add(r * lanes));
        }
        for j in 0..T {
            let b = V::splat(*x.add(j * dim + k));
            for r in 0..R {
                acc[r][j] = cv[r].mul_add(b, acc[r][j]);
            }
        }
    }
    // Up to 4 vectors of 16 lanes: the widest tile any kernel uses.
    let mut values = [0.0f32; 64];
    debug_assert!(R * lanes <= values.len());
    for j in 0..T {
        for r in 0..R {
            acc[r][j].store(values.as_mut_ptr().add(r * lanes));
        }
        sink.take(t + j, v * lanes, &values[..R * lanes]);
    }
}

/// Scans rows against the centroids, keeping each row's best centroid.
pub(crate) type ArgmaxFn = unsafe fn(&PreparedCentroids, &[f32], &mut ArgmaxSink<'_>);
/// Scans rows against the centroids, storing every score.
pub(crate) type DotsFn = unsafe fn(&PreparedCentroids, &[f32], &mut StoreSink<'_>);

fn check_rows(c: &PreparedCentroids, rows: &[f32], out_len: usize, per_row: usize) -> Result<()> {
    if !rows.len().is_multiple_of(c.dim) {
        return invalid!(
            "rows: {} values is not a whole number of rows of dim {}",
            rows.len(),
            c.dim
        );
    }
    let n_rows = rows.len() / c.dim;
    if out_len != n_rows * per_row {
        return invalid!(
            "out: {out_len} slots for {n_rows} rows of {per_row} (expected {})",
            n_rows * per_row
        );
    }
    Ok(())
}

/// For every row of `rows` (`n × dim`), the index of the centroid maximising
/// `⟨x, c⟩ + bias_c`, ties to the lower index, into `out` (`n` entries), with
/// the selected kernel. Single-threaded: callers split rows across threads.
pub fn argmax_rows(c: &PreparedCentroids, rows: &[f32], out: &mut [u32]) -> Result<()> {
    argmax_rows_with(selected_kernel()?, c, rows, out)
}

/// As [`argmax_rows`], with an explicit kernel (which must be supported).
pub fn argmax_rows_with(
    kernel: Kernel,
    c: &PreparedCentroids,
    rows: &[f32],
    out: &mut [u32],
) -> Result<()> {
    let kernels = table(kernel)?.centroids;
    check_rows(c, rows, out.len(), 1)?;
    out.fill(0);
    let mut sink = ArgmaxSink {
        best: vec![f32::NEG_INFINITY; out.len()],
        index: out,
    };
    // SAFETY: the table's kernels run on this CPU (`table` checked) and
    // `rows` is whole rows.
    unsafe { (kernels.argmax)(c, rows, &mut sink) };
    Ok(())
}

/// Every `⟨x, c⟩ + bias_c` for the rows of `rows` (`n × dim`), into `out`
/// (`n × c.stride()`, row-major; the padding columns `len()..stride()` hold
/// `-inf`), with the selected kernel. Single-threaded.
pub fn dot_rows(c: &PreparedCentroids, rows: &[f32], out: &mut [f32]) -> Result<()> {
    dot_rows_with(selected_kernel()?, c, rows, out)
}

/// As [`dot_rows`], with an explicit kernel (which must be supported).
pub fn dot_rows_with(
    kernel: Kernel,
    c: &PreparedCentroids,
    rows: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let kernels = table(kernel)?.centroids;
    check_rows(c, rows, out.len(), c.stride)?;
    let mut sink = StoreSink {
        out,
        stride: c.stride,
    };
    // SAFETY: the table's kernels run on this CPU (`table` checked) and
    // `rows` is whole rows.
    unsafe { (kernels.dots)(c, rows, &mut sink) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// f64 reference scores.
    fn reference(cents: &[f32], bias: Option<&[f32]>, rows: &[f32], dim: usize) -> Vec<Vec<f64>> {
        rows.chunks_exact(dim)
            .map(|x| {
                cents
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(c, row)| {
                        let dot: f64 = row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum();
                        dot + bias.map_or(0.0, |b| b[c] as f64)
                    })
                    .collect()
            })
            .collect()
    }

    fn supported() -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .collect()
    }

    fn values(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn check_shape(n_cent: usize, n_rows: usize, dim: usize, with_bias: bool, seed: u64) {
        let cents = values(seed, n_cent * dim);
        let rows = values(seed + 1, n_rows * dim);
        let bias_values = values(seed + 2, n_cent);
        let bias = with_bias.then_some(&bias_values[..]);
        let want = reference(&cents, bias, &rows, dim);
        let prepared = PreparedCentroids::new(&cents, bias, dim).unwrap();
        for kernel in supported() {
            let mut idx = vec![7u32; n_rows];
            argmax_rows_with(kernel, &prepared, &rows, &mut idx).unwrap();
            let mut dots = vec![0.0f32; n_rows * prepared.stride()];
            dot_rows_with(kernel, &prepared, &rows, &mut dots).unwrap();
            let tol = 1e-5 * dim as f64;
            for (r, scores) in want.iter().enumerate() {
                let best = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                // The chosen centroid is within rounding of the best, and no
                // centroid before it is clearly better.
                let got = idx[r] as usize;
                assert!(got < n_cent, "{kernel:?}: index {got} out of range");
                assert!(
                    scores[got] >= best - tol,
                    "{kernel:?} {n_cent}x{dim}: row {r} got {got} ({}) best {best}",
                    scores[got]
                );
                for (c, &s) in scores.iter().enumerate() {
                    let d = dots[r * prepared.stride() + c] as f64;
                    assert!((d - s).abs() <= tol, "{kernel:?}: dot ({r},{c}) {d} vs {s}");
                }
                for c in n_cent..prepared.stride() {
                    assert_eq!(dots[r * prepared.stride() + c], f32::NEG_INFINITY);
                }
            }
        }
    }

    #[test]
    fn shapes_against_reference() {
        for (i, &(n_cent, n_rows, dim)) in [
            (1, 1, 1),
            (3, 5, 7),
            (16, 13, 128),
            (17, 6, 33),
            (300, 50, 96),
            (1025, 9, 128),
            (40, 200, 1),
        ]
        .iter()
        .enumerate()
        {
            check_shape(n_cent, n_rows, dim, i % 2 == 0, i as u64 * 31 + 5);
            check_shape(n_cent, n_rows, dim, i % 2 == 1, i as u64 * 31 + 6);
        }
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        // Centroids 1, 4 and 40 are the same vector: every kernel must pick 1.
        let dim = 12;
        let mut cents = values(3, 64 * dim);
        for v in cents.iter_mut() {
            *v *= 0.1;
        }
        let winner: Vec<f32> = (0..dim).map(|k| 1.0 + k as f32).collect();
        for c in [1usize, 4, 40] {
            cents[c * dim..(c + 1) * dim].copy_from_slice(&winner);
        }
        let rows = winner.repeat(3);
        let prepared = PreparedCentroids::new(&cents, None, dim).unwrap();
        for kernel in supported() {
            let mut idx = vec![0u32; 3];
            argmax_rows_with(kernel, &prepared, &rows, &mut idx).unwrap();
            assert_eq!(idx, vec![1, 1, 1], "{kernel:?}");
        }
    }

    #[test]
    fn euclidean_bias_picks_the_nearest() {
        // With bias -|c|²/2 the argmax is the L2-nearest centroid, even where
        // a far, long centroid has the largest inner product.
        let dim = 2;
        let cents = [1.0f32, 0.0, 10.0, 0.0];
        let bias: Vec<f32> = cents
            .chunks(2)
            .map(|c| -(c[0] * c[0] + c[1] * c[1]) / 2.0)
            .collect();
        let prepared = PreparedCentroids::new(&cents, Some(&bias), dim).unwrap();
        let plain = PreparedCentroids::new(&cents, None, dim).unwrap();
        let rows = [1.2f32, 0.1];
        for kernel in supported() {
            let mut idx = [9u32];
            argmax_rows_with(kernel, &prepared, &rows, &mut idx).unwrap();
            assert_eq!(idx, [0]);
            argmax_rows_with(kernel, &plain, &rows, &mut idx).unwrap();
            assert_eq!(idx, [1]);
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(PreparedCentroids::new(&[], None, 4).is_err());
        assert!(PreparedCentroids::new(&[1.0; 6], None, 4).is_err());
        assert!(PreparedCentroids::new(&[1.0; 8], Some(&[0.0]), 4).is_err());
        let c = PreparedCentroids::new(&[1.0; 8], None, 4).unwrap();
        assert!(argmax_rows(&c, &[1.0; 5], &mut [0; 1]).is_err());
        assert!(argmax_rows(&c, &[1.0; 8], &mut [0; 1]).is_err());
        assert!(dot_rows(&c, &[1.0; 4], &mut [0.0; 2]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn random_shapes(n_cent in 1usize..200, n_rows in 1usize..40, dim in 1usize..70,
                         bias in any::<bool>(), seed in 0u64..1000) {
            check_shape(n_cent, n_rows, dim, bias, seed);
        }
    }
}
