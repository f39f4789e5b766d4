//! The bounded heap of a Hamming search: the `k` smallest `(distance, index)`
//! pairs seen so far, largest on top, so the worst kept distance is the
//! threshold every new candidate is tested against.

use std::collections::BinaryHeap;

/// At most `k` `(distance, index)` pairs, the smallest seen.
#[derive(Debug, Clone)]
pub(crate) struct Heap {
    k: usize,
    items: BinaryHeap<(u32, u64)>,
}

impl Heap {
    /// `k = 0` makes a placeholder that keeps nothing (threshold 0) and
    /// does not allocate.
    pub(crate) fn new(k: usize) -> Self {
        Heap {
            k,
            items: if k == 0 {
                BinaryHeap::new()
            } else {
                BinaryHeap::with_capacity(k + 1)
            },
        }
    }

    /// A candidate is kept only if its distance is strictly below this:
    /// `u32::MAX` until the heap is full, then the largest kept distance.
    /// (Candidates arrive in increasing index order within a scan, so an
    /// equal distance with a higher index never beats a kept one.)
    #[inline]
    pub(crate) fn threshold(&self) -> u32 {
        if self.k == 0 {
            0
        } else if self.items.len() < self.k {
            u32::MAX
        } else {
            self.items.peek().map_or(u32::MAX, |top| top.0)
        }
    }

    /// Offers a candidate; keeps the `k` smallest by `(distance, index)`.
    #[inline]
    pub(crate) fn push(&mut self, distance: u32, index: u64) {
        if self.items.len() < self.k {
            self.items.push((distance, index));
        } else if let Some(mut top) = self.items.peek_mut() {
            if (distance, index) < *top {
                *top = (distance, index);
            }
        }
    }

    /// The kept pairs, in no particular order.
    pub(crate) fn into_vec(self) -> Vec<(u32, u64)> {
        self.items.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_k_smallest_with_ties_to_lower_index() {
        let mut h = Heap::new(3);
        for (i, d) in [5u32, 1, 5, 3, 1, 5, 0].into_iter().enumerate() {
            if d < h.threshold() {
                h.push(d, i as u64);
            }
        }
        let mut kept = h.into_vec();
        kept.sort_unstable();
        assert_eq!(kept, vec![(0, 6), (1, 1), (1, 4)]);
    }
}
