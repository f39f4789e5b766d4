//! Refinement: the candidates each lane's keys leave, their exact float32
//! recomputation (best first, then the runners-up packed), and the rescan of
//! lanes with more candidates than keys.

use super::*;

/// What [`resolve`] refines for one vector: per lane, the tokens whose float32
/// values may be the maximum.
pub(super) struct Candidates {
    /// Query lanes from `lane0` (the vector's first query token).
    lane0: usize,
    /// Per slot, the token each lane names (slot 0: the best approximate value).
    tokens: [__m512i; KEYS - 1],
    /// Per slot, the lanes whose slot is a candidate (slot 0: every tracked lane).
    lanes: [__mmask16; KEYS - 1],
    /// Lanes that may have more candidates than the keys hold: screened again.
    more: __mmask16,
    /// The rescan's threshold for those lanes.
    threshold: __m512,
    /// Real query tokens that are all zero (maximum exactly +0).
    zero_lanes: __mmask16,
}

/// Vector `v`'s candidates from its screening result. `norms` bounds the
/// document's token norms and bf16 rounding-error norms.
#[inline(always)]
pub(super) unsafe fn candidates(
    screen: &Bf16Query,
    v: usize,
    state: &Tracked,
    (norm, residual_norm): (f32, f32),
    doc_words: &Doc,
) -> Candidates {
    let lane0 = v * LANES;
    let screened: __mmask16 = screen.screened[v];
    let eps = _mm512_fmadd_ps(
        _mm512_loadu_ps(screen.eps_doc.as_ptr().add(lane0)),
        _mm512_set1_ps(norm),
        _mm512_fmadd_ps(
            _mm512_loadu_ps(screen.eps_residual.as_ptr().add(lane0)),
            _mm512_set1_ps(residual_norm),
            _mm512_set1_ps(screen.eps_abs),
        ),
    );
    let high = doc_words.high();
    let best = decode(state.keys[0], high);
    // threshold = best − 2ε(1 + 2⁻²⁰) − |best|·2⁻²²: the margins absorb the
    // float32 rounding of this very expression. `best` is at most the largest
    // approximate value, so every candidate is at or above `threshold`.
    let margin = _mm512_fmadd_ps(
        _mm512_abs_ps(best),
        _mm512_set1_ps(1.0 / 4_194_304.0),
        _mm512_mul_ps(eps, _mm512_set1_ps(2.0 * (1.0 + 1.0 / 1_048_576.0))),
    );
    let threshold = _mm512_sub_ps(best, margin);
    // A key's decoded value is below its approximate value `a` by less than
    // 2^(b−23)|a| + 2^(b−149) (b index bits); for any `a` between `threshold`
    // and the largest approximate value that is below `slack`, with a factor
    // of 4 for the rounding here. So a slot whose approximate value may be
    // at or above `threshold` has a decoded value at or above `floor`.
    let b = doc_words.index_bits as i32;
    let scale = f32::from_bits(((127 + b - 21) as u32) << 23); // 2^(b−21)
    let slack = _mm512_fmadd_ps(
        _mm512_max_ps(_mm512_abs_ps(best), _mm512_abs_ps(threshold)),
        _mm512_set1_ps(scale),
        _mm512_set1_ps(scale * f32::from_bits(1 << 22) * 2.0), // 2^(b−147)
    );
    let floor = _mm512_sub_ps(threshold, slack);
    // (Plain code, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    let mut close = [0 as __mmask16; KEYS];
    for (slot, lanes) in close.iter_mut().enumerate().skip(1) {
        let value = decode(state.keys[slot], high);
        *lanes = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(value, floor) & screened;
    }
    // Lanes whose candidates are all tracked: the best token, then the
    // others where they are close enough.
    let more = close[KEYS - 1];
    let tracked = screened & !more;
    let low = _mm512_set1_epi32(!(u32::MAX << doc_words.index_bits) as i32);
    let mut tokens = [_mm512_setzero_si512(); KEYS - 1];
    let mut lanes = [0 as __mmask16; KEYS - 1];
    for slot in 0..KEYS - 1 {
        tokens[slot] = _mm512_and_si512(state.keys[slot], low);
        lanes[slot] = if slot == 0 {
            tracked
        } else {
            close[slot] & tracked
        };
    }
    Candidates {
        lane0,
        tokens,
        lanes,
        more,
        threshold,
        zero_lanes: screen.zero[v],
    }
}

/// Exact float32 maxima in `maxes` for vectors `v0..v0 + states.len()` from
/// their screening results (at most [`R`]). `norms` bounds the document's
/// token norms and bf16 rounding-error norms.
///
/// Each recomputation is one FMA chain over the dimensions per lane,
/// latency-bound (4 cycles per FMA on Zen 4), so chains run two at a time
/// ([`exact_at`]; one at a time they took 17 % of a 32-query batch in `perf
/// annotate`, in pairs the batch ran about 10 % faster).
///
/// Every lane's best candidate (slot 0) is one chain per vector. The
/// runners-up (slots 1 and up) are few and scattered (about 7 per 32-token
/// query and document on random data, against 16 lanes per chain), so they
/// are packed: up to 16 (query token, document token) pairs from any slot of
/// either vector per chain, the query side permuted into place. One chain per
/// slot and vector left most lanes idle and cost about half of all
/// recomputation.
///
/// Each lane's chain is the same FMA sequence however it is packed, and the
/// slots are combined per vector in slot order as before, so the results are
/// bitwise those of one vector and slot at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn resolve<S: Source>(
    q: &PreparedQueries,
    screen: &Bf16Query,
    v0: usize,
    states: &[Tracked],
    norms: (f32, f32),
    doc: &[S::Elem],
    doc_words: &Doc,
    maxes: &mut [f32],
) {
    debug_assert!(!states.is_empty() && states.len() <= R);
    // (Plain loops, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    let mut plans: [Option<Candidates>; R] = [None, None];
    for (r, state) in states.iter().enumerate() {
        plans[r] = Some(candidates(screen, v0 + r, state, norms, doc_words));
    }
    let lane0 = v0 * LANES;
    // Slot 0 of every vector: all its lanes, one chain per vector.
    let mut result = [_mm512_setzero_ps(); R];
    if let [Some(first), Some(second)] = &plans {
        result = exact_at::<S, 2, false>(q, doc, [best_job(first), best_job(second)]);
    } else if let Some(first) = &plans[0] {
        result[0] = exact_at::<S, 1, false>(q, doc, [best_job(first)])[0];
    }
    let runners_up = RunnersUp::collect(&plans);
    let mut runner_values = [0.0f32; MAX_RUNNERS_UP];
    // With one vector in the block every query lane is below 16: the "high"
    // vector is the same row again, so no load passes the query's end.
    let high_offset = if states.len() == 2 { LANES } else { 0 };
    let mut first = 0;
    while first < runners_up.count {
        let mut values = [[0.0f32; LANES]; 2];
        let chains = if runners_up.count - first > LANES {
            2
        } else {
            1
        };
        if chains == 2 {
            let jobs = [
                runners_up.job(first, lane0, high_offset),
                runners_up.job(first + LANES, lane0, high_offset),
            ];
            let exact = exact_at::<S, 2, true>(q, doc, jobs);
            _mm512_storeu_ps(values[0].as_mut_ptr(), exact[0]);
            _mm512_storeu_ps(values[1].as_mut_ptr(), exact[1]);
        } else {
            let job = runners_up.job(first, lane0, high_offset);
            _mm512_storeu_ps(
                values[0].as_mut_ptr(),
                exact_at::<S, 1, true>(q, doc, [job])[0],
            );
        }
        let done = (runners_up.count - first).min(chains * LANES);
        for i in 0..done {
            runner_values[runners_up.slots[first + i]] = values[i / LANES][i % LANES];
        }
        first += done;
    }
    for (r, plan) in plans.iter().enumerate() {
        let Some(plan) = plan else { continue };
        // Slot order, as one vector and slot at a time combined them. The
        // plain kernel's running maximum keeps the first of equal values in
        // token order, which differ only as +0 and −0: a runner-up equal to
        // the lane's value so far replaces it where its token comes first.
        let mut token = plan.tokens[0];
        for slot in 1..KEYS - 1 {
            let lanes = plan.lanes[slot];
            if lanes != 0 {
                let at = (r * (KEYS - 2) + slot - 1) * LANES;
                let value = _mm512_loadu_ps(runner_values.as_ptr().add(at));
                let larger = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(lanes, value, result[r]);
                let equal = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(lanes, value, result[r]);
                let earlier = _mm512_cmplt_epu32_mask(plan.tokens[slot], token);
                let take = larger | (equal & earlier);
                result[r] = _mm512_mask_mov_ps(result[r], take, value);
                token = _mm512_mask_mov_epi32(token, take, plan.tokens[slot]);
            }
        }
        let value = _mm512_mask_mov_ps(result[r], plan.zero_lanes, _mm512_setzero_ps());
        _mm512_storeu_ps(maxes.as_mut_ptr().add(plan.lane0), value);
        if plan.more != 0 {
            rescan::<S>(
                q,
                screen,
                v0 + r,
                plan.threshold,
                plan.more,
                doc,
                doc_words,
                maxes,
            );
        }
    }
}

/// The chain of every lane's best candidate (slot 0) of one vector.
#[inline(always)]
pub(super) unsafe fn best_job(plan: &Candidates) -> QueryJob {
    QueryJob {
        lane0: plan.lane0,
        query_lanes: _mm512_setzero_si512(), // unused: lanes are read in order
        high_offset: 0,
        tokens: plan.tokens[0],
        mask: plan.lanes[0],
    }
}

/// Runners-up of a block's two vectors at most: 3 slots of 16 lanes each.
pub(super) const MAX_RUNNERS_UP: usize = R * (KEYS - 2) * LANES;

/// The runners-up (slots 1 and up) of a block's vectors, as (query token,
/// document token) pairs in vector, slot and lane order.
pub(super) struct RunnersUp {
    /// Per pair, its query lane within the block (`16 r + lane`). A chain
    /// reads 16 entries from any start below `count`, so the arrays carry a
    /// chain's worth of padding (zeros; those lanes are masked off).
    lanes: [u32; MAX_RUNNERS_UP + LANES],
    /// Per pair, its document token.
    tokens: [u32; MAX_RUNNERS_UP + LANES],
    /// Per pair, where its value goes back: `(r · (KEYS − 2) + slot − 1) · 16 + lane`.
    slots: [usize; MAX_RUNNERS_UP],
    count: usize,
}

impl RunnersUp {
    #[inline(always)]
    unsafe fn collect(plans: &[Option<Candidates>; R]) -> Self {
        let mut out = RunnersUp {
            lanes: [0; MAX_RUNNERS_UP + LANES],
            tokens: [0; MAX_RUNNERS_UP + LANES],
            slots: [0; MAX_RUNNERS_UP],
            count: 0,
        };
        for (r, plan) in plans.iter().enumerate() {
            let Some(plan) = plan else { continue };
            for slot in 1..KEYS - 1 {
                let mut lanes = plan.lanes[slot];
                if lanes == 0 {
                    continue;
                }
                let mut token_of = [0u32; LANES];
                _mm512_storeu_si512(token_of.as_mut_ptr() as *mut __m512i, plan.tokens[slot]);
                while lanes != 0 {
                    let lane = lanes.trailing_zeros() as usize;
                    lanes &= lanes - 1;
                    out.lanes[out.count] = (r * LANES + lane) as u32;
                    out.tokens[out.count] = token_of[lane];
                    out.slots[out.count] = (r * (KEYS - 2) + slot - 1) * LANES + lane;
                    out.count += 1;
                }
            }
        }
        out
    }

    /// Pairs `first..first + 16` (those below `count`) as one chain.
    #[inline(always)]
    unsafe fn job(&self, first: usize, lane0: usize, high_offset: usize) -> QueryJob {
        debug_assert!(first < self.count);
        // In bounds: `first < count <= MAX_RUNNERS_UP`, and the arrays hold 16 more.
        QueryJob {
            lane0,
            query_lanes: _mm512_loadu_si512(self.lanes.as_ptr().add(first) as *const __m512i),
            high_offset,
            tokens: _mm512_loadu_si512(self.tokens.as_ptr().add(first) as *const __m512i),
            mask: first_lanes(self.count - first),
        }
    }
}

/// One chain of [`exact_at`]: lane `l` computes the dot product of query
/// token `lane0 + query_lanes[l]` (below `lane0 + 16 + high_offset`) with
/// document token `tokens[l]`; lanes outside `mask` may hold anything and
/// give unspecified finite values.
#[derive(Clone, Copy)]
pub(super) struct QueryJob {
    lane0: usize,
    query_lanes: __m512i,
    /// 16 when `query_lanes` reach into the block's second vector, else 0.
    high_offset: usize,
    tokens: __m512i,
    mask: __mmask16,
}

/// Float32 dot products for each of `N` jobs, by the float32 kernel's
/// arithmetic: one FMA chain over `k` in order, starting from 0. The `N`
/// chains run interleaved. Without `PERMUTED`, lane `l` reads query token
/// `lane0 + l` (`query_lanes` is ignored); with it, `lane0 + query_lanes[l]`,
/// one `vpermt2ps` per dimension.
///
/// The 16 document rows are loaded 16 dimensions at a time and transposed in
/// registers so that one vector holds dimension `k` of every lane's row
/// (a hardware gather costs about 20 cycles per vector on Zen 4; this, 5).
#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub(super) unsafe fn exact_at<S: Source, const N: usize, const PERMUTED: bool>(
    q: &PreparedQueries,
    doc: &[S::Elem],
    jobs: [QueryJob; N],
) -> [__m512; N] {
    let dim = q.dim;
    // Unselected lanes read row 0, which every document has.
    let mut rows = [[doc.as_ptr(); LANES]; N];
    for (job_rows, job) in rows.iter_mut().zip(jobs.iter()) {
        let mut token_of = [0u32; LANES];
        _mm512_storeu_si512(token_of.as_mut_ptr() as *mut __m512i, job.tokens);
        for (lane, row) in job_rows.iter_mut().enumerate() {
            if job.mask & (1 << lane) != 0 {
                *row = doc.as_ptr().add(token_of[lane] as usize * dim);
            }
        }
    }
    let mut acc = [_mm512_setzero_ps(); N];
    let mut k0 = 0;
    // (Plain loops, not closures: a closure is not compiled with this
    // function's target features, so intrinsics in it become calls.)
    while k0 < dim {
        let width = (dim - k0).min(LANES);
        let load_mask = first_lanes(width);
        let mut columns = [[_mm512_setzero_ps(); LANES]; N];
        for (job_columns, job_rows) in columns.iter_mut().zip(rows.iter()) {
            let mut chunk = [_mm512_setzero_ps(); LANES];
            for (lane, slot) in chunk.iter_mut().enumerate() {
                *slot = S::Elem::load16(job_rows[lane].add(k0), load_mask);
            }
            *job_columns = transpose16(chunk);
        }
        for kk in 0..width {
            for j in 0..N {
                let row = q
                    .transposed
                    .as_ptr()
                    .add(jobs[j].lane0 + (k0 + kk) * q.stride);
                let q_k = if PERMUTED {
                    // SAFETY (of the read): the block's second vector, or
                    // the same row when there is none (`high_offset` 0).
                    let high = _mm512_loadu_ps(row.add(jobs[j].high_offset));
                    _mm512_permutex2var_ps(_mm512_loadu_ps(row), jobs[j].query_lanes, high)
                } else {
                    _mm512_loadu_ps(row)
                };
                acc[j] = _mm512_fmadd_ps(q_k, columns[j][kk], acc[j]);
            }
        }
        k0 += LANES;
    }
    acc
}

/// Transposes a 16 × 16 block: `out[k]` lane `l` is `rows[l]` lane `k`.
#[inline(always)]
pub(super) unsafe fn transpose16(rows: [__m512; LANES]) -> [__m512; LANES] {
    // Within each 128-bit quarter Q (elements 4Q..4Q+4 of a row):
    // pairs of rows interleaved, then groups of four.
    let mut pairs = [_mm512_setzero_ps(); LANES];
    for i in 0..LANES / 2 {
        let (a, b) = (rows[2 * i], rows[2 * i + 1]);
        pairs[2 * i] = _mm512_unpacklo_ps(a, b);
        pairs[2 * i + 1] = _mm512_unpackhi_ps(a, b);
    }
    // quads[4g + m], quarter Q: element 4Q + m of rows 4g..4g+4.
    let mut quads = [_mm512_setzero_pd(); LANES];
    for g in 0..4 {
        let (lo_a, hi_a) = (
            _mm512_castps_pd(pairs[4 * g]),
            _mm512_castps_pd(pairs[4 * g + 1]),
        );
        let (lo_b, hi_b) = (
            _mm512_castps_pd(pairs[4 * g + 2]),
            _mm512_castps_pd(pairs[4 * g + 3]),
        );
        quads[4 * g] = _mm512_unpacklo_pd(lo_a, lo_b);
        quads[4 * g + 1] = _mm512_unpackhi_pd(lo_a, lo_b);
        quads[4 * g + 2] = _mm512_unpacklo_pd(hi_a, hi_b);
        quads[4 * g + 3] = _mm512_unpackhi_pd(hi_a, hi_b);
    }
    // Element 4Q + m of all 16 rows: quarter Q of quads[m], quads[4 + m],
    // quads[8 + m], quads[12 + m], gathered by a 4 × 4 transpose of quarters.
    let mut out = [_mm512_setzero_ps(); LANES];
    for m in 0..4 {
        let (b0, b1, b2, b3) = (
            _mm512_castpd_ps(quads[m]),
            _mm512_castpd_ps(quads[4 + m]),
            _mm512_castpd_ps(quads[8 + m]),
            _mm512_castpd_ps(quads[12 + m]),
        );
        let c0 = _mm512_shuffle_f32x4::<0x44>(b0, b1);
        let c1 = _mm512_shuffle_f32x4::<0xEE>(b0, b1);
        let c2 = _mm512_shuffle_f32x4::<0x44>(b2, b3);
        let c3 = _mm512_shuffle_f32x4::<0xEE>(b2, b3);
        out[m] = _mm512_shuffle_f32x4::<0x88>(c0, c2);
        out[4 + m] = _mm512_shuffle_f32x4::<0xDD>(c0, c2);
        out[8 + m] = _mm512_shuffle_f32x4::<0x88>(c1, c3);
        out[12 + m] = _mm512_shuffle_f32x4::<0xDD>(c1, c3);
    }
    out
}

/// The rare lanes with [`KEYS`] or more candidates: screen vector `v` again
/// and recompute, in float32, every token at or above its lane's threshold.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")]
pub(super) unsafe fn rescan<S: Source>(
    q: &PreparedQueries,
    screen: &Bf16Query,
    v: usize,
    threshold: __m512,
    lanes: __mmask16,
    doc: &[S::Elem],
    doc_words: &Doc,
    maxes: &mut [f32],
) {
    let lane0 = v * LANES;
    let (base, stride) = screen.vector_pairs(v);
    let q_vec = screen.pairs.as_ptr().add(base);
    let mut best = [f32::NEG_INFINITY; LANES];
    // Whole tiles keep `2 T` independent accumulators in flight; one token at
    // a time would wait on each `vdpbf16ps`'s latency.
    let mut t = 0;
    while t < doc_words.n_tok {
        let (approx, count) = if t + T1 <= doc_words.n_tok {
            let [tile] = approx_tile::<1, T1>(q_vec, stride, doc_words, t);
            (tile, T1)
        } else {
            let [[one]] = approx_tile::<1, 1>(q_vec, stride, doc_words, t);
            let mut tile = [_mm512_setzero_ps(); T1];
            tile[0] = one;
            (tile, 1)
        };
        for (tt, &value) in approx.iter().enumerate().take(count) {
            let mut hits = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(value, threshold) & lanes;
            while hits != 0 {
                let lane = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                let row = &doc[(t + tt) * q.dim..(t + tt + 1) * q.dim];
                let exact = exact_scalar::<S>(q, lane0 + lane, row);
                if exact > best[lane] {
                    best[lane] = exact;
                }
            }
        }
        t += count;
    }
    let mut lanes_left = lanes;
    while lanes_left != 0 {
        let lane = lanes_left.trailing_zeros() as usize;
        lanes_left &= lanes_left - 1;
        maxes[lane0 + lane] = best[lane];
    }
}

/// One query token against one document token, the float32 kernel's way.
#[inline(always)]
pub(super) fn exact_scalar<S: Source>(q: &PreparedQueries, token: usize, row: &[S::Elem]) -> f32 {
    let mut acc = 0.0f32;
    for (k, &value) in row.iter().enumerate() {
        acc = q.transposed[k * q.stride + token].mul_add(value.widen(), acc);
    }
    acc
}
