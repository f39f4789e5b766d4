//! Nearest-centroid argmax and centroid scores (avx2).

use super::vector::Avx2F32;
use crate::dispatch::CentroidKernel;
use crate::float::argmax::{scan, ArgmaxSink, PreparedCentroids, StoreSink};

/// Centroid vectors per tile.
const R: usize = 2;
/// Tokens per tile (the float MaxSim kernel's register budget).
const T: usize = 6;

/// # Safety
/// The CPU must support `avx2,fma`; `rows` must be whole rows of `c.dim()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn argmax(c: &PreparedCentroids, rows: &[f32], sink: &mut ArgmaxSink<'_>) {
    scan::<Avx2F32, R, T, _>(c, rows, sink)
}

/// # Safety
/// As [`argmax`].
#[target_feature(enable = "avx2,fma")]
unsafe fn dots(c: &PreparedCentroids, rows: &[f32], sink: &mut StoreSink<'_>) {
    scan::<Avx2F32, R, T, _>(c, rows, sink)
}

/// The centroid kernels, as the table holds them.
pub(crate) const CENTROIDS: CentroidKernel = CentroidKernel {
    argmax,
    dots,
    name: "avx2: fma 2x6 register tiles",
};
