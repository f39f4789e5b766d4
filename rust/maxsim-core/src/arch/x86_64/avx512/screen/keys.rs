//! Key tracking: per lane, the largest approximate values with their tokens,
//! packed in 32 bits.

use super::*;

/// Keys tracked per lane: the candidates refined from them (all but the
/// last), and the last, which says whether more candidates exist (the lane
/// is then screened again). Five rather than four: on random data about 10 %
/// of vectors had a lane with four close candidates, and each rescan costs a
/// vector's whole screen; a fifth key costs two operations per token.
pub(super) const KEYS: usize = 5;

/// One vector's screening result: per lane the [`KEYS`] largest keys
/// (`keys[0]` largest) over the document's tokens.
///
/// A key packs an approximate value and its token: the value's bits made
/// order-preserving as an unsigned integer, with the low `index_bits` bits
/// replaced by the token index. Tracking keys takes unsigned min/max only —
/// no compares, masks or blends to carry indices along, 10 operations per
/// token instead of 15. The price is a truncated value: a key's decoded value
/// is at most `2^(index_bits − 23)·|a| + 2^(index_bits − 149)` below the
/// approximate value `a` ([`resolve`] widens its window by that).
#[derive(Clone, Copy)]
pub(super) struct Tracked {
    pub(super) keys: [__m512i; KEYS],
}

/// Token indices above this do not fit the keys' low bits with a useful
/// value left; longer documents take the plain kernel.
pub(super) const MAX_INDEX_BITS: u32 = 16;

/// The low bits of a key that hold the token index, for `n_tok` tokens.
pub(super) fn index_bits(n_tok: usize) -> u32 {
    usize::BITS - n_tok.saturating_sub(1).leading_zeros()
}

/// `f32` bits → unsigned integers in the same order as the values (finite
/// or infinite): negative values have every bit flipped, others the sign
/// bit set.
#[inline(always)]
pub(super) unsafe fn sortable(value: __m512) -> __m512i {
    let bits = _mm512_castps_si512(value);
    let sign = _mm512_srai_epi32::<31>(bits);
    // bits ^ (sign | 0x8000_0000)
    _mm512_ternarylogic_epi32::<0x1E>(bits, sign, _mm512_set1_epi32(i32::MIN))
}

/// The value a key stands for: its high bits, as [`sortable`] made them, back
/// to `f32` (the low bits read as zeros of the sortable form).
#[inline(always)]
pub(super) unsafe fn decode(key: __m512i, high: __m512i) -> __m512 {
    let truncated = _mm512_and_si512(key, high);
    let sign = _mm512_srai_epi32::<31>(truncated);
    // truncated ^ (!sign | 0x8000_0000): set top bit → clear it; else flip all.
    _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0x4B>(
        truncated,
        sign,
        _mm512_set1_epi32(i32::MIN),
    ))
}

/// Inserts `value` at token `token` (in every lane, below `2^index_bits`)
/// into the per-lane [`KEYS`] largest keys; `high` masks off the index bits.
#[inline(always)]
pub(super) unsafe fn track(state: &mut Tracked, value: __m512, token: __m512i, high: __m512i) {
    // (sortable & high) | token
    let key = _mm512_ternarylogic_epi32::<0xEA>(sortable(value), high, token);
    // Slot s takes the larger of itself and min(key, old slot s − 1): the
    // key moves into place and every smaller key moves down one.
    let old = state.keys;
    state.keys[0] = _mm512_max_epu32(old[0], key);
    for slot in 1..KEYS {
        state.keys[slot] = _mm512_max_epu32(old[slot], _mm512_min_epu32(key, old[slot - 1]));
    }
}
