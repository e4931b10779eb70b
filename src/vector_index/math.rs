//! The arithmetic of the index: vectors checked and normalised (cosine becomes a dot product),
//! the dot product itself (eight lanes, so the compiler vectorises it) and a bounded top-k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::IndexError;

/// Checks `vector`'s length and values: NaN or infinite components and the zero vector are
/// refused (a zero vector has no direction to compare).
pub(crate) fn checked(vector: &[f32], dims: usize) -> Result<(), IndexError> {
    unit_scale(vector, dims).map(|_| ())
}

/// `vector` scaled to unit length, after [`checked`].
pub(crate) fn normalized(vector: &[f32], dims: usize) -> Result<Vec<f32>, IndexError> {
    let scale = unit_scale(vector, dims)?;
    Ok(vector.iter().map(|x| x * scale).collect())
}

/// What `vector` is multiplied by to be of unit length, after the checks of [`checked`].
///
/// One vectorised pass over the squares in the common case: a NaN or infinite component makes
/// the sum NaN or infinite, and a sum that is neither (nor too small to take the root of
/// precisely) is the squared length. Otherwise the careful way: each component checked, and
/// the vector scaled by its largest component first so squaring can neither overflow nor
/// underflow.
fn unit_scale(vector: &[f32], dims: usize) -> Result<f32, IndexError> {
    if vector.len() != dims {
        return Err(IndexError::Dimensions {
            expected: dims,
            got: vector.len(),
        });
    }
    let squares = dot(vector, vector);
    if squares.is_finite() && squares >= 1e-30 {
        return Ok(1.0 / squares.sqrt());
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(IndexError::NotFinite);
    }
    let max = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return Err(IndexError::ZeroVector);
    }
    let inv = 1.0 / max;
    let scaled = vector.iter().map(|x| (x * inv) * (x * inv)).sum::<f32>();
    Ok(inv / scaled.sqrt())
}

/// The dot product of two equally long slices, over eight independent accumulators: the loop
/// has no dependency between lanes, so it compiles to SIMD multiply-adds.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// One scored key; ordered so the heap's top is the worst kept (lowest similarity, then the
/// highest key, so equal similarities resolve the same way on every path).
#[derive(Clone, Copy, Debug)]
struct Scored {
    similarity: f32,
    key: u64,
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .similarity
            .total_cmp(&self.similarity)
            .then(self.key.cmp(&other.key))
    }
}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}

/// The `k` best (key, similarity) pairs offered so far.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(4096)),
        }
    }

    /// Offers a candidate; kept when it beats the worst of a full list.
    pub(crate) fn offer(&mut self, key: u64, similarity: f32) {
        if self.k == 0 {
            return;
        }
        let entry = Scored { similarity, key };
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && entry < *worst
        {
            *worst = entry;
        }
    }

    /// The kept pairs, most similar first.
    pub(crate) fn into_sorted(self) -> Vec<(u64, f32)> {
        // `into_sorted_vec` is ascending by `Ord`, which is best first here.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|s| (s.key, s.similarity))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dot_matches_naive_for_every_tail_length() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn normalized_is_unit_and_refuses_bad_vectors() {
        let v = normalized(&[3.0, 4.0], 2).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let big = normalized(&[3e30, 4e30], 2).unwrap();
        assert!((big[1] - 0.8).abs() < 1e-6);
        let tiny = normalized(&[3e-30, 4e-30], 2).unwrap();
        assert!((tiny[0] - 0.6).abs() < 1e-6, "{tiny:?}");
        let long: Vec<f32> = (0..768).map(|i| (i % 7) as f32 - 3.0).collect();
        let unit = normalized(&long, 768).unwrap();
        assert!((dot(&unit, &unit) - 1.0).abs() < 1e-5);
        assert!(matches!(
            normalized(&[1.0, f32::NAN], 2),
            Err(IndexError::NotFinite)
        ));
        assert!(matches!(
            normalized(&[f32::NEG_INFINITY, 1.0], 2),
            Err(IndexError::NotFinite)
        ));
        assert!(matches!(
            normalized(&[0.0, 0.0], 2),
            Err(IndexError::ZeroVector)
        ));
        assert!(matches!(
            normalized(&[f32::NAN, 1.0], 2),
            Err(IndexError::NotFinite)
        ));
        assert!(matches!(
            normalized(&[f32::INFINITY, 1.0], 2),
            Err(IndexError::NotFinite)
        ));
        assert!(matches!(
            normalized(&[1.0], 2),
            Err(IndexError::Dimensions {
                expected: 2,
                got: 1
            })
        ));
    }

    #[test]
    fn top_k_keeps_the_best_in_order() {
        let mut top = TopK::new(3);
        for (key, s) in [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.7), (5, -0.2), (6, 0.7)] {
            top.offer(key, s);
        }
        assert_eq!(top.into_sorted(), vec![(2, 0.9), (4, 0.7), (6, 0.7)]);
        let mut none = TopK::new(0);
        none.offer(1, 1.0);
        assert!(none.into_sorted().is_empty());
    }
}
