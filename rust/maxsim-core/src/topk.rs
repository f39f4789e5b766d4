//! Best-first selection: highest score first, ties to the lower index.

use std::cmp::Ordering;

/// `k` best `(score, index)` pairs of one score row.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub scores: Vec<f32>,
    pub indices: Vec<i64>,
}

/// Descending by score, then ascending by index; NaN ranks below every number.
#[inline]
pub(crate) fn better<I: Ord>(a: &(f32, I), b: &(f32, I)) -> Ordering {
    let by_score = match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        // Reverse so that larger scores sort first.
        (false, false) => b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal),
    };
    by_score.then(a.1.cmp(&b.1))
}

/// The `min(k, scores.len())` best entries of `scores`, best first, ties to the
/// lower index (faiss's order). `O(n + k log k)`.
pub fn topk_desc(scores: &[f32], k: usize) -> TopK {
    let k = k.min(scores.len());
    let mut pairs: Vec<(f32, usize)> = scores.iter().copied().zip(0..).collect();
    if k == 0 {
        return TopK {
            scores: Vec::new(),
            indices: Vec::new(),
        };
    }
    if k < pairs.len() {
        pairs.select_nth_unstable_by(k - 1, better);
        pairs.truncate(k);
    }
    pairs.sort_unstable_by(better);
    TopK {
        scores: pairs.iter().map(|p| p.0).collect(),
        indices: pairs.iter().map(|p| p.1 as i64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_lower_index() {
        let t = topk_desc(&[1.0, 3.0, 3.0, 2.0, 3.0], 3);
        assert_eq!(t.indices, vec![1, 2, 4]);
        assert_eq!(t.scores, vec![3.0, 3.0, 3.0]);
    }

    #[test]
    fn k_larger_than_n_and_nan_last() {
        let t = topk_desc(&[f32::NAN, 0.5, -1.0], 10);
        assert_eq!(t.indices, vec![1, 2, 0]);
    }

    #[test]
    fn matches_full_sort() {
        let scores: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 97) as f32).collect();
        for k in [1, 5, 97, 500, 1000] {
            let t = topk_desc(&scores, k);
            let mut all: Vec<usize> = (0..scores.len()).collect();
            all.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
            let expected: Vec<i64> = all[..k].iter().map(|&i| i as i64).collect();
            assert_eq!(t.indices, expected);
        }
    }
}
