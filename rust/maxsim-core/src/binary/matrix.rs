//! The pairwise Hamming distance matrix.

use super::layout::{row_words, words_per_code, Codes, GROUP};
use super::search::{check_same_bytes, for_each_tile, split};
use super::HammingImpl;
use crate::error::{Error, Result};
use crate::threads;
use rayon::prelude::*;

/// A raw output pointer shared by parallel units that write disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut u32);

impl SharedOut {
    /// The output pointer (a method, so closures capture the whole `Send` wrapper).
    fn ptr(self) -> *mut u32 {
        self.0
    }
}
// SAFETY: each parallel unit writes only its own rows × columns of the
// output, so no element is written by two threads, and the buffer outlives
// the parallel section (it is owned by the caller and only read afterwards).
unsafe impl Send for SharedOut {}
// SAFETY: as above; the pointer is only used for disjoint writes.
unsafe impl Sync for SharedOut {}

/// All pairwise Hamming distances: `a.len() × b.len()` values, row-major.
pub fn hamming(a: &Codes<'_>, b: &Codes<'_>) -> Result<Vec<i32>> {
    hamming_with(HammingImpl::selected()?, a, b)
}

/// As [`hamming`], with an explicit implementation.
pub fn hamming_with(imp: HammingImpl, a: &Codes<'_>, b: &Codes<'_>) -> Result<Vec<i32>> {
    check_same_bytes("a_codes", a, "b_codes", b)?;
    let (n_a, n_b) = (a.len(), b.len());
    let total = n_a.checked_mul(n_b).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "a_codes, b_codes: {n_a} × {n_b} distances overflow"
        ))
    })?;
    let mut out = vec![0i32; total];
    if total == 0 {
        return Ok(out);
    }
    let w = words_per_code(a.n_bytes());
    let a_words = row_words(a);
    let kernels = imp.tiles()?;
    let n_groups = n_b.div_ceil(GROUP);
    let s = split(n_a, kernels.query_block, n_groups, threads::num_threads());
    let dst = SharedOut(out.as_mut_ptr() as *mut u32);
    let units: Vec<(usize, usize)> = (0..s.n_query_blocks)
        .flat_map(|bq| (0..s.n_chunks).map(move |c| (bq, c)))
        .collect();
    threads::install(|| {
        units.par_iter().for_each(|&(bq, c)| {
            let out_ptr = dst.ptr();
            let r0 = bq * s.query_block;
            let r1 = (r0 + s.query_block).min(n_a);
            let g0 = c * s.chunk_groups;
            let g1 = (g0 + s.chunk_groups).min(n_groups);
            let mut scratch = Vec::new();
            for_each_tile(b, g0, g1, &mut scratch, |tile| {
                // SAFETY: `imp` is supported; rows `r0..r1` of `a_words` exist;
                // the tile is whole groups; the kernel writes `out[r][tile.base + j]`
                // for `r in r0..r1`, `j < tile.n_codes`, all inside the
                // `n_a × n_b` buffer and owned by this unit alone (units cover
                // disjoint row blocks × code chunks).
                unsafe {
                    (kernels.matrix)(
                        &a_words[r0 * w..r1 * w],
                        w,
                        tile,
                        out_ptr.add(r0 * n_b + tile.base),
                        n_b,
                    )
                }
            });
        })
    });
    Ok(out)
}
