//! Shared by the reduced-precision tests: float64 references with error
//! bounds derived from the formats, and fixtures.
#![allow(dead_code)]

use maxsim_core::reduced::{to_half, HalfFloat};
use maxsim_core::Kernel;

pub const EPS: f64 = f32::EPSILON as f64;

/// Deterministic pseudo-random values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

pub fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

// ---------------------------------------------------------------------------
// float64 references
// ---------------------------------------------------------------------------

/// `Σ_i max_j ⟨q_i, d_j⟩` in f64 (floored at 0 per token with `floor`), and an
/// error bound for an f32 kernel: `(dim + 2)·ε·max_j Σ_k |q_k d_k|` per token
/// for the dot products plus `ε` per token for the f32 sum.
pub fn reference(query: &[f64], doc: &[f64], dim: usize, floor: bool) -> (f64, f64) {
    let mut total = 0.0;
    let mut bound = 0.0;
    let nq = (query.len() / dim) as f64;
    for q in query.chunks_exact(dim) {
        let mut best = f64::NEG_INFINITY;
        let mut worst_abs = 0.0f64;
        for d in doc.chunks_exact(dim) {
            let dot: f64 = q.iter().zip(d).map(|(a, b)| a * b).sum();
            let abs: f64 = q.iter().zip(d).map(|(a, b)| (a * b).abs()).sum();
            best = best.max(dot);
            worst_abs = worst_abs.max(abs);
        }
        if floor {
            best = best.max(0.0);
        }
        total += best;
        bound += (dim as f64 + 2.0 + nq) * EPS * worst_abs;
    }
    (total, bound + 1e-30)
}

pub fn widen<T: HalfFloat + Into<f64>>(x: &[T]) -> Vec<f64> {
    x.iter().map(|&v| v.into()).collect()
}

pub fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

pub fn dequantize(codes: &[i8], scales: &[f32], dim: usize) -> Vec<f64> {
    codes
        .chunks_exact(dim)
        .zip(scales)
        .flat_map(|(row, &s)| row.iter().map(move |&c| s as f64 * c as f64))
        .collect()
}

/// Reference for int8 scores (dequantized query and documents) with the bound
/// of the kernels' arithmetic: the int32 dot product is exact, then
/// `fl(fl(dot) · sd)`, the max, `· sq`, and the f32 sum: ≤ 4 roundings of
/// relative ε per token (dot products below 2²⁴ convert exactly).
pub fn int8_reference(q: &[f64], d: &[f64], dim: usize, floor: bool) -> (f64, f64) {
    let mut total = 0.0;
    let mut bound = 0.0;
    for qt in q.chunks_exact(dim) {
        let mut best = f64::NEG_INFINITY;
        let mut worst = 0.0f64;
        for dt in d.chunks_exact(dim) {
            let dot: f64 = qt.iter().zip(dt).map(|(a, b)| a * b).sum();
            best = best.max(dot);
            worst = worst.max(dot.abs());
        }
        if floor {
            best = best.max(0.0);
        }
        total += best;
        bound += 5.0 * EPS * worst;
    }
    (total, bound + 1e-30)
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

pub struct Case {
    pub dim: usize,
    pub queries: Vec<Vec<f32>>,
    pub docs: Vec<Vec<f32>>,
}

pub fn case(dim: usize, query_tokens: &[usize], doc_tokens: &[usize], seed: u64) -> Case {
    let queries = query_tokens
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, seed + i as u64))
        .collect();
    let docs = doc_tokens
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n * dim, seed * 7919 + 1000 + i as u64))
        .collect();
    Case { dim, queries, docs }
}

pub fn to_half_vec<T: HalfFloat + Default>(x: &[f32]) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    to_half(x, &mut out).unwrap();
    out
}
