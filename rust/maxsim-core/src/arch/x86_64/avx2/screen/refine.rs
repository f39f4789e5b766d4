//! Refinement: each lane's window over the stored approximate values, and
//! the float32 recomputation of the tokens in it with the AVX2 kernel's own
//! arithmetic (one FMA chain over the dimensions in order, from +0).
//!
//! The plain kernel folds each token's value into a lane's running maximum
//! in token order, keeping the running value unless the new one is greater
//! (`vmaxps`). Every token outside the window is below the lane's maximum,
//! so folding only the window's tokens, in token order, the same way, gives
//! the same bits (including which of +0 and −0 wins a tie at zero).

use super::*;

/// One packed chain of [`exact`]: lane `l` computes query token
/// `lane0 + query_lanes[l]` against document token `tokens[l]`; lanes
/// outside `mask` read token 0 and their values are ignored.
#[derive(Clone, Copy)]
struct Job {
    lane0: usize,
    /// `None`: lane `l` is query token `lane0 + l`.
    query_lanes: Option<__m256i>,
    tokens: [u32; LANES],
    mask: u32,
}

/// Exact float32 maxima in `maxes` for vectors `v0..v0 + best.len()`, from
/// their lane maxima `best` and the approximate values at `approx` (as
/// [`screen_block`] wrote them).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn resolve<E: Elem>(
    q: &PreparedQueries,
    sq: &Int16Query,
    v0: usize,
    best: &[__m256],
    bounds: Bounds,
    doc: &[E],
    approx: *const f32,
    extra: &mut Vec<(u32, u32)>,
    maxes: &mut [f32],
) {
    let n_tok = doc.len() / q.dim;
    let mut firsts = [Job {
        lane0: 0,
        query_lanes: None,
        tokens: [0; LANES],
        mask: 0,
    }; R];
    let mut extra_start = [0usize; R + 1];
    extra.clear();
    for (r, &lane_best) in best.iter().enumerate() {
        let v = v0 + r;
        let lane0 = v * LANES;
        let threshold = threshold(sq, lane0, lane_best, bounds);
        let screened = sq.screened[v] as u32;
        let job = &mut firsts[r];
        job.lane0 = lane0;
        for j in 0..n_tok {
            let value = _mm256_loadu_ps(approx.add((r * n_tok + j) * LANES));
            let mut hits =
                _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(value, threshold)) as u32 & screened;
            while hits != 0 {
                let lane = hits.trailing_zeros();
                hits &= hits - 1;
                if job.mask & (1 << lane) == 0 {
                    job.mask |= 1 << lane;
                    job.tokens[lane as usize] = j as u32;
                } else {
                    extra.push((lane, j as u32));
                }
            }
        }
        extra_start[r + 1] = extra.len();
    }
    // Every lane's first candidate, the vectors' chains interleaved.
    let mut result = [[0f32; LANES]; R];
    if best.len() == R {
        let values = exact::<E, R>(q, doc, firsts);
        for r in 0..R {
            _mm256_storeu_ps(result[r].as_mut_ptr(), values[r]);
        }
    } else {
        let [values] = exact::<E, 1>(q, doc, [firsts[0]]);
        _mm256_storeu_ps(result[0].as_mut_ptr(), values);
    }
    // The rest, eight (lane, token) pairs of one vector per chain, folded in
    // token order.
    for (r, row) in result.iter_mut().enumerate().take(best.len()) {
        let pairs = &extra[extra_start[r]..extra_start[r + 1]];
        for chunk in pairs.chunks(LANES) {
            let mut job = Job {
                lane0: firsts[r].lane0,
                query_lanes: None,
                tokens: [0; LANES],
                mask: (1u32 << chunk.len()) - 1,
            };
            let mut lanes = [0i32; LANES];
            for (l, &(lane, token)) in chunk.iter().enumerate() {
                lanes[l] = lane as i32;
                job.tokens[l] = token;
            }
            job.query_lanes = Some(_mm256_loadu_si256(lanes.as_ptr() as *const __m256i));
            let [values] = exact::<E, 1>(q, doc, [job]);
            let mut values_out = [0f32; LANES];
            _mm256_storeu_ps(values_out.as_mut_ptr(), values);
            for (l, &(lane, _)) in chunk.iter().enumerate() {
                if values_out[l] > row[lane as usize] {
                    row[lane as usize] = values_out[l];
                }
            }
        }
        // All-zero query tokens: +0 against any finite token; padding lanes
        // are never read but get the same.
        let screened = sq.screened[v0 + r] as u32;
        for (lane, value) in row.iter_mut().enumerate() {
            if screened & (1 << lane) == 0 {
                *value = 0.0;
            }
        }
        let lane0 = firsts[r].lane0;
        maxes[lane0..lane0 + LANES].copy_from_slice(row);
    }
}

/// The window's lower end for the 8 lanes from `lane0`: the lane's largest
/// approximate value `best` less twice its bound, with margins that absorb
/// the float32 rounding of this very expression (every candidate is at or
/// above it).
#[inline(always)]
unsafe fn threshold(sq: &Int16Query, lane0: usize, best: __m256, bounds: Bounds) -> __m256 {
    let eps = _mm256_fmadd_ps(
        _mm256_loadu_ps(sq.eps_norm.as_ptr().add(lane0)),
        _mm256_set1_ps(bounds.norm),
        _mm256_fmadd_ps(
            _mm256_loadu_ps(sq.eps_scale.as_ptr().add(lane0)),
            _mm256_set1_ps(bounds.scale),
            _mm256_loadu_ps(sq.eps_abs.as_ptr().add(lane0)),
        ),
    );
    let abs_best = _mm256_andnot_ps(_mm256_set1_ps(-0.0), best);
    let margin = _mm256_fmadd_ps(
        abs_best,
        _mm256_set1_ps(1.0 / 4_194_304.0),
        _mm256_mul_ps(eps, _mm256_set1_ps(2.0 * (1.0 + 1.0 / 1_048_576.0))),
    );
    _mm256_sub_ps(best, margin)
}

/// Float32 dot products for each of `N` jobs, by the AVX2 kernel's
/// arithmetic: one FMA chain per lane over the dimensions in order, from +0.
/// The chains run interleaved (an FMA waits 4 cycles for the previous one).
///
/// The 8 document rows of a job are loaded 8 dimensions at a time and
/// transposed in registers, so one vector holds dimension `k` of every
/// lane's row.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn exact<E: Elem, const N: usize>(
    q: &PreparedQueries,
    doc: &[E],
    jobs: [Job; N],
) -> [__m256; N] {
    let dim = q.dim;
    let mut rows = [[doc.as_ptr(); LANES]; N];
    for (job_rows, job) in rows.iter_mut().zip(jobs.iter()) {
        for (lane, row) in job_rows.iter_mut().enumerate() {
            if job.mask & (1 << lane) != 0 {
                *row = doc.as_ptr().add(job.tokens[lane] as usize * dim);
            }
        }
    }
    let mut acc = [_mm256_setzero_ps(); N];
    let mut k0 = 0;
    while k0 < dim {
        let width = LANES.min(dim - k0);
        let mut columns = [[_mm256_setzero_ps(); LANES]; N];
        for n in 0..N {
            let mut chunk = [_mm256_setzero_ps(); LANES];
            for (lane, slot) in chunk.iter_mut().enumerate() {
                *slot = E::load8(rows[n][lane].add(k0), width);
            }
            columns[n] = transpose8(chunk);
        }
        for kk in 0..width {
            for n in 0..N {
                let row = q
                    .transposed
                    .as_ptr()
                    .add((k0 + kk) * q.stride + jobs[n].lane0);
                let q_k = match jobs[n].query_lanes {
                    Some(lanes) => _mm256_permutevar8x32_ps(_mm256_loadu_ps(row), lanes),
                    None => _mm256_loadu_ps(row),
                };
                acc[n] = _mm256_fmadd_ps(q_k, columns[n][kk], acc[n]);
            }
        }
        k0 += LANES;
    }
    acc
}

/// Transposes an 8 × 8 block: `out[k]` lane `l` is `rows[l]` lane `k`.
#[inline(always)]
unsafe fn transpose8(rows: [__m256; LANES]) -> [__m256; LANES] {
    let mut pairs = [_mm256_setzero_ps(); LANES];
    for i in 0..LANES / 2 {
        pairs[2 * i] = _mm256_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        pairs[2 * i + 1] = _mm256_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    // quads[4g + m] half h: element 4h + m of rows 4g..4g + 4.
    let mut quads = [_mm256_setzero_ps(); LANES];
    for g in 0..2 {
        let (lo_a, hi_a, lo_b, hi_b) = (
            pairs[4 * g],
            pairs[4 * g + 1],
            pairs[4 * g + 2],
            pairs[4 * g + 3],
        );
        quads[4 * g] = _mm256_shuffle_ps::<0x44>(lo_a, lo_b);
        quads[4 * g + 1] = _mm256_shuffle_ps::<0xEE>(lo_a, lo_b);
        quads[4 * g + 2] = _mm256_shuffle_ps::<0x44>(hi_a, hi_b);
        quads[4 * g + 3] = _mm256_shuffle_ps::<0xEE>(hi_a, hi_b);
    }
    let mut out = [_mm256_setzero_ps(); LANES];
    for m in 0..4 {
        out[m] = _mm256_permute2f128_ps::<0x20>(quads[m], quads[4 + m]);
        out[4 + m] = _mm256_permute2f128_ps::<0x31>(quads[m], quads[4 + m]);
    }
    out
}
