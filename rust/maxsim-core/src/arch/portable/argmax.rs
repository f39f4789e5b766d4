//! Nearest-centroid argmax and centroid scores (portable).

use crate::dispatch::CentroidKernel;
use crate::float::argmax::{scan, ArgmaxSink, PreparedCentroids, StoreSink};
use crate::vector::Portable8;

/// Centroid vectors per tile.
const R: usize = 2;
/// Tokens per tile.
const T: usize = 4;

/// # Safety
/// `rows` must be whole rows of `c.dim()`; needs no CPU feature.
unsafe fn argmax(c: &PreparedCentroids, rows: &[f32], sink: &mut ArgmaxSink<'_>) {
    scan::<Portable8, R, T, _>(c, rows, sink)
}

/// # Safety
/// As [`argmax`].
unsafe fn dots(c: &PreparedCentroids, rows: &[f32], sink: &mut StoreSink<'_>) {
    scan::<Portable8, R, T, _>(c, rows, sink)
}

/// The centroid kernels, as the table holds them.
pub(crate) const CENTROIDS: CentroidKernel = CentroidKernel {
    argmax,
    dots,
    name: "scalar",
};
