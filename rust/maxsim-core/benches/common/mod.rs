//! Deterministic input data shared by the benches.

/// `n` values `f(state)` over the states of a 64-bit LCG seeded with `seed`.
pub fn lcg<T>(n: usize, seed: u64, f: impl Fn(u64) -> T) -> Vec<T> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            f(state)
        })
        .collect()
}

/// `n` float32 values in `[-0.5, 0.5)`.
#[allow(dead_code)] // the binary bench uses bytes only
pub fn lcg_values(n: usize, seed: u64) -> Vec<f32> {
    lcg(n, seed, |state| {
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    })
}
