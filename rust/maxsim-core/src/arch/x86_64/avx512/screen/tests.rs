//! Unit tests of the screen's building blocks against scalar references.

use super::*;
use crate::dispatch::{run_or_skip, Cpu};

/// Finite and infinite values of every kind, then pseudo-random bit patterns.
fn values() -> Vec<f32> {
    let mut values = vec![
        f32::NEG_INFINITY,
        -f32::MAX,
        -1.5,
        -f32::MIN_POSITIVE,
        -1e-40,
        -0.0,
        0.0,
        1e-45,
        1e-40,
        f32::MIN_POSITIVE,
        1.0,
        1.0 + f32::EPSILON,
        f32::MAX,
        f32::INFINITY,
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    while values.len() < 4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = f32::from_bits((state >> 32) as u32);
        if !x.is_nan() {
            values.push(x);
        }
    }
    values.resize(values.len() / LANES * LANES, 0.0);
    values
}

/// `sum_lanes8` against scalar sums of each vector.
#[test]
fn sum_lanes8_matches_scalar_sums() {
    if !run_or_skip(
        "avx512",
        Cpu::get().avx512,
        "sum_lanes8_matches_scalar_sums",
    ) {
        return;
    }
    // Small integers: every summation order is exact, so the sums compare equal.
    let inputs: Vec<[f32; 16]> = (0..8)
        .map(|v| std::array::from_fn(|lane| ((v * 37 + lane * 11) % 23) as f32))
        .collect();
    // SAFETY: AVX-512F/BW/VL checked above.
    let lanes = unsafe { sum_lanes8_of(&inputs) };
    for token in 0..4 {
        let squares: f32 = inputs[token].iter().sum();
        let residuals: f32 = inputs[4 + token].iter().sum();
        for copy in [0, 2] {
            assert_eq!(
                lanes[4 * token + copy],
                squares,
                "lane {}",
                4 * token + copy
            );
            assert_eq!(
                lanes[4 * token + 1 + copy],
                residuals,
                "lane {}",
                4 * token + 1 + copy
            );
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sum_lanes8_of(inputs: &[[f32; 16]]) -> [f32; 16] {
    let x: [__m512; 8] = std::array::from_fn(|i| _mm512_loadu_ps(inputs[i].as_ptr()));
    let mut out = [0f32; 16];
    _mm512_storeu_ps(out.as_mut_ptr(), sum_lanes8(x));
    out
}

/// Keys order values as the values do, carry their token exactly, and
/// decode to at most the value, within the bound `resolve` widens by.
#[test]
fn keys_order_values_and_decode_within_the_bound() {
    if !run_or_skip(
        "avx512",
        Cpu::get().avx512,
        "keys_order_values_and_decode_within_the_bound",
    ) {
        return;
    }
    // SAFETY: AVX-512F/BW/VL checked above.
    unsafe { check_keys(&values()) }
}

#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn check_keys(values: &[f32]) {
    let mut sortables = vec![0u32; values.len()];
    for (chunk, out) in values.chunks(LANES).zip(sortables.chunks_mut(LANES)) {
        let key = sortable(_mm512_loadu_ps(chunk.as_ptr()));
        _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, key);
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    for pair in order.windows(2) {
        let (x, y) = (values[pair[0]], values[pair[1]]);
        let (kx, ky) = (sortables[pair[0]], sortables[pair[1]]);
        assert!(kx <= ky, "{x} < {y} but keys {kx:#x} > {ky:#x}");
        assert!(x == y || kx < ky || (x == 0.0 && y == 0.0));
    }
    for bits in [0u32, 1, 9, 12, MAX_INDEX_BITS] {
        let doc = Doc {
            pairs: std::ptr::null(),
            row_words: 0,
            n_pairs: 0,
            n_tok: 0,
            index_bits: bits,
        };
        let high = doc.high();
        let token_value = (1u32 << bits) - 1;
        let token = _mm512_set1_epi32(token_value as i32);
        for chunk in values.chunks(LANES) {
            let value = _mm512_loadu_ps(chunk.as_ptr());
            let mut state = Tracked {
                keys: [_mm512_setzero_si512(); KEYS],
            };
            track(&mut state, value, token, high);
            let mut keys = [0u32; LANES];
            _mm512_storeu_si512(keys.as_mut_ptr() as *mut __m512i, state.keys[0]);
            let mut decoded = [0f32; LANES];
            _mm512_storeu_ps(decoded.as_mut_ptr(), decode(state.keys[0], high));
            for lane in 0..LANES {
                let (x, t) = (chunk[lane] as f64, decoded[lane] as f64);
                assert_eq!(keys[lane] & token_value, token_value);
                // Approximate values of the screen are below 1e36 in
                // magnitude (norms up to 1e18); truncating the key of a
                // value near f32::MAX could reach the inf/NaN exponent.
                if x.abs() > 1e37 {
                    continue;
                }
                let bound = 2f64.powi(bits as i32 - 23) * x.abs() + 2f64.powi(bits as i32 - 149);
                assert!(
                    t <= x && x - t <= bound,
                    "{x} decodes to {t} with {bits} index bits"
                );
            }
        }
    }
}

#[test]
fn zen5_screens_float32_from_past_one_plain_block() {
    // Zen 5 (family 0x1A) keeps 32-token queries on the plain kernel, which
    // scores them in one block of 2 x 16 query tokens; Zen 4 and other CPUs
    // keep the screen's own thresholds.
    let zen4 = Cpu {
        amd: true,
        family: 0x19,
        avx512bf16: true,
        ..Cpu::default()
    };
    let zen5 = Cpu {
        family: 0x1A,
        ..zen4
    };
    let intel = Cpu {
        amd: false,
        family: 6,
        ..zen4
    };
    assert_eq!(screen_for(&zen5).min_tokens, [33, 24, 1]);
    assert_eq!(screen_for(&zen4).min_tokens, SCREEN.min_tokens);
    assert_eq!(screen_for(&intel).min_tokens, SCREEN.min_tokens);
}
