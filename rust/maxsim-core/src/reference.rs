//! Straightforward reference implementations, used by tests of every kernel.
//! Not fast and not meant to be: each line mirrors the definition.

/// `Σ_i max_j ⟨q_i, d_j⟩` in f64 for one `(nq, dim)` query and one `(nd, dim)` document.
pub fn maxsim_f64(query: &[f32], doc: &[f32], dim: usize) -> f64 {
    let mut total = 0.0f64;
    for q in query.chunks_exact(dim) {
        let mut best = f64::NEG_INFINITY;
        for d in doc.chunks_exact(dim) {
            let dot: f64 = q.iter().zip(d).map(|(a, b)| *a as f64 * *b as f64).sum();
            best = best.max(dot);
        }
        total += best;
    }
    total
}

/// A bound on `|kernel − maxsim_f64|` for f32 kernels: each dot product of
/// `dim` terms accumulates at most `dim·ε·Σ|q_k·d_k|` rounding error, and the
/// final sum over query tokens adds a relative `nq·ε`.
pub fn f32_error_bound(query: &[f32], doc: &[f32], dim: usize) -> f64 {
    let eps = f32::EPSILON as f64;
    let mut bound = 0.0f64;
    let nq = (query.len() / dim) as f64;
    for q in query.chunks_exact(dim) {
        let mut worst = 0.0f64;
        for d in doc.chunks_exact(dim) {
            let abs_dot: f64 = q
                .iter()
                .zip(d)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            worst = worst.max(abs_dot);
        }
        bound += (dim as f64 + 2.0) * eps * worst + nq * eps * worst;
    }
    bound + 1e-30
}
