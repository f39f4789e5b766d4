//! Shared by the timing examples: arguments, seeded values, the timing
//! table (median of repeated runs, and each row's largest score difference
//! from the first row of its group), and alternating A/B rounds.

use maxsim_core::reduced::{bf16, f16, to_half};
use std::time::Instant;

/// The thread count given as the first argument (default 1).
pub fn threads_arg() -> usize {
    std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// An unsigned integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A seeded xorshift stream of 64-bit words (random code bits).
pub fn random_words(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// A seeded linear congruential stream of values in [-0.5, 0.5).
pub struct Values(u64);

impl Values {
    pub fn new(seed: u64) -> Self {
        Values(seed)
    }

    /// The next `n` values.
    pub fn take(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }
}

/// One query of `nq` tokens and `n_docs` documents of 300 tokens × 128
/// dims (seeded values), with the documents also in bfloat16 and float16.
pub struct Fixed {
    pub query: Vec<f32>,
    pub data: Vec<f32>,
    pub data_bf16: Vec<bf16>,
    pub data_f16: Vec<f16>,
    pub doc_len: usize,
    pub dim: usize,
}

/// One query of `nq` tokens and `n_docs` documents of `DOC_LEN` tokens
/// (environment, default 300), 128 dimensions.
pub fn fixed_workload(seed: u64, nq: usize, n_docs: usize) -> Fixed {
    let (dim, doc_len) = (128, env_usize("DOC_LEN", 300));
    let mut values = Values::new(seed);
    let query = values.take(nq * dim);
    let data = values.take(n_docs * doc_len * dim);
    let mut data_bf16 = vec![bf16::ZERO; data.len()];
    to_half(&data, &mut data_bf16).unwrap();
    let mut data_f16 = vec![f16::ZERO; data.len()];
    to_half(&data, &mut data_f16).unwrap();
    Fixed {
        query,
        data,
        data_bf16,
        data_f16,
        doc_len,
        dim,
    }
}

/// A named scoring run and the group whose first row it is compared with.
pub struct Row<'a> {
    pub group: &'static str,
    pub name: String,
    pub run: Box<dyn Fn() -> Vec<f32> + 'a>,
}

impl<'a> Row<'a> {
    pub fn new(group: &'static str, name: String, run: Box<dyn Fn() -> Vec<f32> + 'a>) -> Self {
        Row { group, name, run }
    }
}

/// Runs every row `repeat` times and prints its median ms, `flops` per
/// second (`unit` = 1e9 for GFLOP/s, 1e12 for TFLOP/s) and the largest
/// difference from the first row of its group. Returns each row's median
/// seconds, in order.
pub fn print_timings(rows: &[Row<'_>], repeat: usize, flops: f64, unit: (f64, &str)) -> Vec<f64> {
    let mut first: Vec<(&str, Vec<f32>)> = Vec::new();
    let mut medians = Vec::with_capacity(rows.len());
    for row in rows {
        let mut times = Vec::new();
        let mut scores = Vec::new();
        for _ in 0..repeat.max(1) {
            let start = Instant::now();
            scores = (row.run)();
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = times[times.len() / 2];
        let diff = match first.iter().find(|(group, _)| *group == row.group) {
            None => {
                first.push((row.group, scores));
                "reference of its group".to_string()
            }
            Some((_, reference)) => {
                let max_diff = reference
                    .iter()
                    .zip(&scores)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                format!("max |diff| {max_diff:e}")
            }
        };
        println!(
            "{:24} {:9.2} ms  {:8.3} {}  {diff}",
            row.name,
            median * 1e3,
            flops / median / unit.0,
            unit.1
        );
        medians.push(median);
    }
    medians
}

/// Runs every call once, then `rounds` rounds of each in turn (so a shared
/// machine's drift lands on all of them alike). Returns per call its
/// (minimum, median) ms over the rounds, and its last output.
pub fn alternating_rounds(
    runs: &[&(dyn Fn() -> Vec<f32> + '_)],
    rounds: usize,
) -> (Vec<(f64, f64)>, Vec<Vec<f32>>) {
    let mut times = vec![Vec::new(); runs.len()];
    let mut outputs: Vec<Vec<f32>> = runs.iter().map(|run| run()).collect();
    for _ in 0..rounds.max(1) {
        for (i, run) in runs.iter().enumerate() {
            let start = Instant::now();
            outputs[i] = run();
            times[i].push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let stats = times
        .iter_mut()
        .map(|t| (t.iter().copied().fold(f64::INFINITY, f64::min), median(t)))
        .collect();
    (stats, outputs)
}

/// The median of `values` (the upper one of an even count), which it sorts.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Whether two score vectors are equal bit for bit.
pub fn bitwise_eq(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
