//! The screening tiles: `vdpbf16ps` over blocks of query vectors, tracking keys.

use super::*;

/// Screens query vectors `v0..v0 + RR` against every token of the document.
#[inline(always)]
pub(super) unsafe fn screen_block<const RR: usize, const TT: usize, S: Source>(
    screen: &Bf16Query,
    v0: usize,
    doc: &Doc,
    mut visit: Option<&mut S>,
) -> [Tracked; RR] {
    // Below every key of a finite or infinite value (the smallest,
    // sortable(−inf), is 0x007F_FFFF with at most 16 index bits cleared).
    let empty = Tracked {
        keys: [_mm512_setzero_si512(); KEYS],
    };
    let mut state = [empty; RR];
    let (base, stride) = screen.vector_pairs(v0);
    debug_assert_eq!(stride, RR * LANES);
    let q_block = screen.pairs.as_ptr().add(base);
    let mut t = 0;
    while t + TT <= doc.n_tok {
        if let Some(source) = visit.as_deref_mut() {
            source.visit(t, TT, doc);
        }
        tile::<RR, TT>(q_block, stride, doc, t, &mut state);
        t += TT;
    }
    while t < doc.n_tok {
        if let Some(source) = visit.as_deref_mut() {
            source.visit(t, 1, doc);
        }
        tile::<RR, 1>(q_block, stride, doc, t, &mut state);
        t += 1;
    }
    state
}

/// Approximate dot products of `RR` query vectors with tokens `t..t + TT`.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub(super) unsafe fn approx_tile<const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    doc: &Doc,
    t: usize,
) -> [[__m512; TT]; RR] {
    let mut acc = [[_mm512_setzero_ps(); TT]; RR];
    for p in 0..doc.n_pairs {
        let q_row = q_block.add(p * stride);
        let mut qv = [_mm512_setzero_si512(); RR];
        for r in 0..RR {
            qv[r] = _mm512_loadu_si512(q_row.add(r * LANES) as *const __m512i);
        }
        for tt in 0..TT {
            let pair = _mm512_set1_epi32(doc.word(t + tt, p) as i32);
            for r in 0..RR {
                acc[r][tt] = _mm512_dpbf16_ps(
                    acc[r][tt],
                    std::mem::transmute::<__m512i, __m512bh>(qv[r]),
                    std::mem::transmute::<__m512i, __m512bh>(pair),
                );
            }
        }
    }
    acc
}

#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub(super) unsafe fn tile<const RR: usize, const TT: usize>(
    q_block: *const u32,
    stride: usize,
    doc: &Doc,
    t: usize,
    state: &mut [Tracked; RR],
) {
    let acc = approx_tile::<RR, TT>(q_block, stride, doc, t);
    let high = doc.high();
    for tt in 0..TT {
        let token = _mm512_set1_epi32((t + tt) as i32);
        for r in 0..RR {
            track(&mut state[r], acc[r][tt], token, high);
        }
    }
}
