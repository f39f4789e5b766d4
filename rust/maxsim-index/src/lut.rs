//! Scoring candidates straight from lookup tables (WARP's way), for the
//! product codec: a document token's score against every query token is its
//! centroid's score plus one table row per sub-vector code, so MaxSim needs
//! no decoded vectors. Per token that is `bytes_per_token` row additions of
//! `stride` lanes, against `dim` decoded values and `nq · dim` multiply-adds
//! on the decode path.
//!
//! The sums are in a different order from the decode path's dot products,
//! so scores agree to float rounding, not bitwise.

use crate::candidates::QueryCtx;
use crate::codec::{ProductCodec, CODEWORDS};
use crate::error::{invalid, Result};

/// Lanes added per step; `stride` is a multiple of it.
const LANES: usize = 16;

/// One cache line of lanes: table rows start on line boundaries, so that no
/// vector load of a row straddles two lines (a split load costs two; on Zen
/// 5 the unaligned tables ran the AVX-512 loop slower than the AVX2 one).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; LANES]);

/// The tables of one query and how to walk them.
pub(crate) struct Tables<'a> {
    ctx: &'a QueryCtx<'a>,
    /// `bytes_per_token × CODEWORDS × stride` values, as lines.
    lines: Vec<Line>,
    bytes_per_token: usize,
}

impl<'a> Tables<'a> {
    /// The tables of `ctx`'s query; `ctx` must hold its centroid scores.
    pub fn new(codec: &ProductCodec, ctx: &'a QueryCtx<'a>) -> Result<Self> {
        if ctx.s.is_empty() {
            return invalid!("internal: table scoring needs the query's centroid scores");
        }
        let bytes_per_token = codec.bytes_per_token();
        // `stride` is a whole number of lines (the core pads it to 16).
        let mut lines = vec![Line([0.0; LANES]); bytes_per_token * CODEWORDS * ctx.stride / LANES];
        codec.query_tables(ctx.q, ctx.stride, as_values_mut(&mut lines))?;
        Ok(Tables {
            ctx,
            lines,
            bytes_per_token,
        })
    }

    fn tables(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` over `[f32; LANES]` with no padding.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.lines.len() * LANES) }
    }

    /// MaxSim of the query against the document whose tokens have
    /// centroids `cents` and codes `residuals` (`cents.len() × bytes_per_token`);
    /// `best` is a scratch row.
    pub fn score(&self, cents: &[u32], residuals: &[u8], best: &mut Vec<f32>) -> f32 {
        let stride = self.ctx.stride;
        best.clear();
        best.resize(stride, f32::NEG_INFINITY);
        let doc = Doc {
            cents,
            residuals,
            bytes_per_token: self.bytes_per_token,
            centroid_scores: &self.ctx.s,
            tables: self.tables(),
            stride,
        };
        doc_max(best, &doc);
        best[..self.ctx.nq].iter().map(|&m| m as f64).sum::<f64>() as f32
    }
}

fn as_values_mut(lines: &mut [Line]) -> &mut [f32] {
    // SAFETY: `Line` is `repr(C)` over `[f32; LANES]` with no padding.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), lines.len() * LANES) }
}

/// One document's codes and the query's score tables.
struct Doc<'a> {
    cents: &'a [u32],
    residuals: &'a [u8],
    bytes_per_token: usize,
    /// `n_centroids × stride`: each centroid's score per query token.
    centroid_scores: &'a [f32],
    tables: &'a [f32],
    stride: usize,
}

/// `best[i] = max(best[i], s_i(t))` over the document's tokens `t`, where
/// `s_i(t)` is token `t`'s centroid score for query token `i` plus, per
/// sub-vector `m`, `tables[(m · CODEWORDS + code_m(t)) · stride + i]`.
#[inline]
fn doc_max(best: &mut [f32], doc: &Doc<'_>) {
    #[cfg(target_arch = "x86_64")]
    match x86_level() {
        // SAFETY: the CPU has the features (`x86_level` checked them).
        X86Level::Avx512 => return unsafe { doc_max_avx512(best, doc) },
        X86Level::Avx2 => return unsafe { doc_max_avx2(best, doc) },
        X86Level::Baseline => {}
    }
    doc_max_portable(best, doc)
}

#[inline(always)]
fn doc_max_portable(best: &mut [f32], doc: &Doc<'_>) {
    let stride = doc.stride;
    for (&c, codes) in doc
        .cents
        .iter()
        .zip(doc.residuals.chunks_exact(doc.bytes_per_token))
    {
        let base = &doc.centroid_scores[c as usize * stride..(c as usize + 1) * stride];
        for g in (0..stride).step_by(LANES) {
            let sum = row_sum(doc.tables, codes, stride, g);
            let base: &[f32; LANES] = base[g..g + LANES].try_into().unwrap();
            let b: &mut [f32; LANES] = (&mut best[g..g + LANES]).try_into().unwrap();
            for l in 0..LANES {
                let x = base[l] + sum[l];
                b[l] = if x > b[l] { x } else { b[l] };
            }
        }
    }
}

/// Lanes `g..g + LANES` of the token's table rows summed: four partial sums
/// (sub-vectors `m mod 4` for whole groups of four, the rest into the
/// first), so that four addition chains run at once instead of one
/// `bytes_per_token` long; then `(p0 + p1) + (p2 + p3)`.
#[inline(always)]
fn row_sum(tables: &[f32], codes: &[u8], stride: usize, g: usize) -> [f32; LANES] {
    let row = |m: usize, code: u8| -> &[f32; LANES] {
        let at = (m * CODEWORDS + code as usize) * stride + g;
        tables[at..at + LANES].try_into().unwrap()
    };
    let mut p = [[0.0f32; LANES]; 4];
    let mut quads = codes.chunks_exact(4);
    let mut m = 0;
    for quad in &mut quads {
        for k in 0..4 {
            let r = row(m + k, quad[k]);
            for l in 0..LANES {
                p[k][l] += r[l];
            }
        }
        m += 4;
    }
    for &code in quads.remainder() {
        let r = row(m, code);
        for l in 0..LANES {
            p[0][l] += r[l];
        }
        m += 1;
    }
    let mut out = [0.0f32; LANES];
    for l in 0..LANES {
        out[l] = (p[0][l] + p[1][l]) + (p[2][l] + p[3][l]);
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn doc_max_avx512(best: &mut [f32], doc: &Doc<'_>) {
    doc_max_portable(best, doc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn doc_max_avx2(best: &mut [f32], doc: &Doc<'_>) {
    doc_max_portable(best, doc)
}

/// The widest vectors the table loop compiles to: those of the core's kernel
/// in force (so `MAXSIM_KERNEL` picks this loop's build too). The same
/// elementwise additions in the same order at every level: results are
/// bitwise equal.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum X86Level {
    Avx512,
    Avx2,
    Baseline,
}

#[cfg(target_arch = "x86_64")]
fn x86_level() -> X86Level {
    use maxsim_core::dispatch::{selected_kernel, Kernel};
    // An atomic load once chosen; not cached here, so that `set_kernel`
    // moves this loop with the core's kernels.
    match selected_kernel() {
        Ok(Kernel::Avx512 | Kernel::Amx) => X86Level::Avx512,
        Ok(Kernel::Avx2) => X86Level::Avx2,
        // The scalar kernel, or an invalid override (which the core's
        // kernels report as an error on the same search).
        _ => X86Level::Baseline,
    }
}

/// Whether residual scoring uses the tables: `MAXSIM_INDEX_SCORING=decode`
/// forces the decode path (read once), for comparisons.
pub(crate) fn use_tables() -> bool {
    use std::sync::OnceLock;
    static TABLES: OnceLock<bool> = OnceLock::new();
    *TABLES.get_or_init(|| std::env::var("MAXSIM_INDEX_SCORING").as_deref() != Ok("decode"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::kmeans;
    use crate::rng::Rng;
    use crate::segment::Training;

    fn unit(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n * dim)
            .map(|_| rng.below(1 << 20) as f32 / (1 << 19) as f32 - 1.0)
            .collect();
        for row in v.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    #[test]
    fn table_scores_equal_maxsim_on_the_decoded_tokens() {
        let mut rng = Rng::new(5);
        // Odd dims (a narrow last sub-vector), 1 to 64 query tokens (one to
        // four lane groups), 1-token and long documents.
        for (dim, nbits, nq, len) in [
            (13usize, 2usize, 1usize, 1usize),
            (13, 2, 17, 300),
            (32, 1, 64, 7),
            (7, 4, 5, 40),
            (128, 2, 32, 129),
        ] {
            let sample = unit(&mut rng, 2000, dim);
            let centroids = kmeans::train(&sample, dim, 16, 2, 1).unwrap();
            let prepared = kmeans::prepare_l2(&centroids, dim).unwrap();
            let assign = kmeans::assign(&prepared, &sample).unwrap();
            let residuals: Vec<f32> = sample
                .chunks(dim)
                .zip(&assign)
                .flat_map(|(r, &c)| {
                    r.iter()
                        .zip(&centroids[c as usize * dim..])
                        .map(|(a, b)| a - b)
                })
                .collect();
            let Codec::Product(pq) = Codec::fit(
                crate::manifest::CodecKind::Product,
                &residuals,
                dim,
                nbits,
                0,
            )
            .unwrap() else {
                unreachable!()
            };
            let bpt = pq.bytes_per_token();
            let mut codes = vec![0u8; len * bpt];
            pq.encode_rows(&residuals[..len * dim], &mut codes).unwrap();
            let training = Training::new(dim, centroids.clone(), Codec::Product(pq));
            let Codec::Product(pq) = &training.codec else {
                unreachable!()
            };
            let q = unit(&mut rng, nq, dim);
            let ctx = QueryCtx::new(&training, &q).unwrap();
            let tables = Tables::new(pq, &ctx).unwrap();
            assert_eq!(
                tables.tables().as_ptr() as usize % 64,
                0,
                "rows start on lines"
            );
            let got = tables.score(&assign[..len], &codes, &mut Vec::new());
            // Reference: f64 MaxSim over the decoded tokens.
            let mut decoded = vec![0.0f32; len * dim];
            for (t, row) in decoded.chunks_mut(dim).enumerate() {
                let c = assign[t] as usize;
                pq.decode_add(
                    &codes[t * bpt..(t + 1) * bpt],
                    &centroids[c * dim..(c + 1) * dim],
                    row,
                );
            }
            let want: f64 = q
                .chunks(dim)
                .map(|qi| {
                    decoded
                        .chunks(dim)
                        .map(|d| {
                            qi.iter()
                                .zip(d)
                                .map(|(&a, &b)| a as f64 * b as f64)
                                .sum::<f64>()
                        })
                        .fold(f64::NEG_INFINITY, f64::max)
                })
                .sum();
            assert!(
                (got as f64 - want).abs() <= 1e-5 * nq as f64,
                "dim {dim} nbits {nbits} nq {nq} len {len}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn every_isa_sums_in_the_documented_order() {
        let mut rng = Rng::new(9);
        // 23 sub-vectors: five groups of four and a remainder of three.
        let (bpt, stride, n_cent, len) = (23usize, 48usize, 5usize, 9usize);
        let tables = unit(&mut rng, bpt * CODEWORDS, stride);
        let centroid_scores = unit(&mut rng, n_cent, stride);
        let cents: Vec<u32> = (0..len).map(|_| rng.below(n_cent as u64) as u32).collect();
        let residuals: Vec<u8> = (0..len * bpt).map(|_| rng.below(256) as u8).collect();
        let doc = Doc {
            cents: &cents,
            residuals: &residuals,
            bytes_per_token: bpt,
            centroid_scores: &centroid_scores,
            tables: &tables,
            stride,
        };
        // The order of the module docs, written out lane by lane.
        let mut reference = vec![f32::NEG_INFINITY; stride];
        for (t, &c) in cents.iter().enumerate() {
            for (i, b) in reference.iter_mut().enumerate() {
                let mut p = [0.0f32; 4];
                for m in 0..bpt {
                    let part = if m < bpt / 4 * 4 { m % 4 } else { 0 };
                    let code = residuals[t * bpt + m] as usize;
                    p[part] += tables[(m * CODEWORDS + code) * stride + i];
                }
                let x = centroid_scores[c as usize * stride + i] + ((p[0] + p[1]) + (p[2] + p[3]));
                *b = b.max(x);
            }
        }
        let mut portable = vec![f32::NEG_INFINITY; stride];
        doc_max_portable(&mut portable, &doc);
        assert_eq!(portable, reference);
        let mut dispatched = vec![f32::NEG_INFINITY; stride];
        doc_max(&mut dispatched, &doc);
        assert_eq!(dispatched, reference);
        #[cfg(target_arch = "x86_64")]
        for (has, kernel) in [
            (
                std::arch::is_x86_feature_detected!("avx2"),
                doc_max_avx2 as unsafe fn(&mut [f32], &Doc<'_>),
            ),
            (
                std::arch::is_x86_feature_detected!("avx512f"),
                doc_max_avx512,
            ),
        ] {
            if has {
                let mut v = vec![f32::NEG_INFINITY; stride];
                // SAFETY: the CPU has the feature.
                unsafe { kernel(&mut v, &doc) };
                assert_eq!(v, reference);
            }
        }
    }
}
