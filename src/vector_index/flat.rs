//! The exact store: every vector in one contiguous row-major buffer, searched by a full scan.
//! Small indexes live here; the graph takes over above the threshold (see `mod.rs`).

use std::collections::HashMap;

use super::math::{TopK, dot};

/// Normalised vectors in rows of `dims`, with the key of each row and the row of each key.
/// Removal moves the last row into the hole, so rows stay dense.
pub(crate) struct Flat {
    dims: usize,
    keys: Vec<u64>,
    rows: HashMap<u64, usize>,
    data: Vec<f32>,
}

impl Flat {
    pub(crate) fn new(dims: usize) -> Self {
        Self {
            dims,
            keys: Vec::new(),
            rows: HashMap::new(),
            data: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.rows.contains_key(&key)
    }

    /// Adds or replaces `key`'s row (`vector` is already normalised and `dims` long).
    pub(crate) fn insert(&mut self, key: u64, vector: &[f32]) {
        match self.rows.get(&key) {
            Some(&row) => {
                self.data[row * self.dims..(row + 1) * self.dims].copy_from_slice(vector);
            }
            None => {
                self.rows.insert(key, self.keys.len());
                self.keys.push(key);
                self.data.extend_from_slice(vector);
            }
        }
    }

    /// Removes `key`'s row; false when it was absent.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(row) = self.rows.remove(&key) else {
            return false;
        };
        let last = self.keys.len() - 1;
        if row != last {
            let moved = self.keys[last];
            self.keys[row] = moved;
            self.rows.insert(moved, row);
            self.data
                .copy_within(last * self.dims..(last + 1) * self.dims, row * self.dims);
        }
        self.keys.pop();
        self.data.truncate(last * self.dims);
        if self.keys.len() < self.keys.capacity() / 4 {
            self.keys.shrink_to_fit();
            self.data.shrink_to_fit();
        }
        true
    }

    /// Every (key, vector) pair, in row order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.keys
            .iter()
            .copied()
            .zip(self.data.chunks_exact(self.dims))
    }

    /// The exact `k` most similar rows that `allow` accepts (`query` normalised).
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        allow: &(dyn Fn(u64) -> bool + Sync),
    ) -> Vec<(u64, f32)> {
        let mut top = TopK::new(k);
        for (key, row) in self.iter() {
            if allow(key) {
                top.offer(key, dot(query, row));
            }
        }
        top.into_sorted()
    }
}
