//! The approximate store: an HNSW graph (usearch) over normalised vectors with the inner-product
//! metric (distance = 1 - cosine similarity). usearch keeps the only copy of each vector; the
//! keys are also listed here, so a selective filter can be answered exactly (see `mod.rs`).
//!
//! usearch serves each `add` and `search` from one of the thread slots reserved up front, and
//! fails a call when none is free; [`Slots`] makes callers wait for a slot instead. Adds may run
//! beside adds, searches beside searches; the caller (`mod.rs`) keeps the two apart, and holds
//! its exclusive lock to reserve and to remove.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, RwLock};

use usearch::{Index, IndexOptions as UsearchOptions, MetricKind, ScalarKind};

use super::flat::Flat;
use super::math::{TopK, dot};
use super::{IndexError, IndexOptions};

/// Calls into usearch at once (its thread contexts: a visited set and queues each, a few KiB
/// per slot at this size); more callers wait for a free one.
const SLOTS: usize = 64;

fn backend(e: impl std::fmt::Display) -> IndexError {
    IndexError::Backend(e.to_string())
}

/// A counting semaphore over usearch's thread slots.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A held slot, given back on drop.
struct Slot<'a>(&'a Slots);

impl Slots {
    fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// The keys held, in a dense list (for sampling and exact scans) with each key's position.
#[derive(Default)]
struct Keys {
    list: Vec<u64>,
    at: HashMap<u64, usize>,
}

impl Keys {
    fn insert(&mut self, key: u64) {
        if !self.at.contains_key(&key) {
            self.at.insert(key, self.list.len());
            self.list.push(key);
        }
    }

    fn remove(&mut self, key: u64) -> bool {
        let Some(i) = self.at.remove(&key) else {
            return false;
        };
        self.list.swap_remove(i);
        if let Some(&moved) = self.list.get(i) {
            self.at.insert(moved, i);
        }
        true
    }
}

/// The HNSW index and its key list.
pub(crate) struct Graph {
    dims: usize,
    index: Index,
    keys: RwLock<Keys>,
    slots: Slots,
}

impl Graph {
    pub(crate) fn new(
        dims: usize,
        options: &IndexOptions,
        capacity: usize,
    ) -> Result<Self, IndexError> {
        let index = Index::new(&UsearchOptions {
            dimensions: dims,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: options.connectivity,
            expansion_add: options.expansion_add,
            expansion_search: options.expansion_search,
            multi: false,
        })
        .map_err(backend)?;
        index
            .reserve_capacity_and_threads(capacity.max(64), SLOTS)
            .map_err(backend)?;
        Ok(Self {
            dims,
            index,
            keys: RwLock::new(Keys::default()),
            slots: Slots {
                free: Mutex::new(SLOTS),
                freed: Condvar::new(),
            },
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .list
            .len()
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.index.contains(key)
    }

    /// Room for `wanted` vectors in all, grown by doubling. Not concurrent with anything else
    /// on the index: the caller holds its exclusive lock.
    pub(crate) fn reserve(&self, wanted: usize) -> Result<(), IndexError> {
        let capacity = self.index.capacity();
        if wanted <= capacity {
            return Ok(());
        }
        let grown = wanted.max(capacity.saturating_mul(2));
        self.index
            .reserve_capacity_and_threads(grown, SLOTS)
            .map_err(backend)
    }

    /// Adds a key that is not in the index (`vector` normalised), after `reserve`; concurrent
    /// with other adds of distinct keys, never with searches.
    pub(crate) fn add_new(&self, key: u64, vector: &[f32]) -> Result<(), IndexError> {
        {
            let _slot = self.slots.acquire();
            self.index.add(key, vector).map_err(backend)?;
        }
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key);
        Ok(())
    }

    /// Removes `key`; false when absent. The caller holds its exclusive lock.
    pub(crate) fn remove(&self, key: u64) -> Result<bool, IndexError> {
        let removed = self
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if removed {
            self.index.remove(key).map_err(backend)?;
        }
        Ok(removed)
    }

    /// The share of keys `allow` accepts, estimated on up to `samples` keys spread evenly over
    /// the list; also the number of keys.
    pub(crate) fn allowed_share(
        &self,
        allow: &(dyn Fn(u64) -> bool + Sync),
        samples: usize,
    ) -> (f64, usize) {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let n = keys.list.len();
        if n == 0 {
            return (0.0, 0);
        }
        let step = n.div_ceil(samples.max(1));
        let (mut seen, mut allowed) = (0usize, 0usize);
        for &key in keys.list.iter().step_by(step) {
            seen += 1;
            allowed += usize::from(allow(key));
        }
        (allowed as f64 / seen as f64, n)
    }

    /// The approximate `k` nearest among keys `allow` accepts (`all`: no filter), through the
    /// graph. A panicking filter is reported as an error, not unwound through C++.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        allow: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<(u64, f32)>, IndexError> {
        let _slot = self.slots.acquire();
        let matches = match allow {
            None => self.index.search(query, k).map_err(backend)?,
            Some(allow) => {
                let panicked = AtomicBool::new(false);
                let guarded = |key: u64| {
                    catch_unwind(AssertUnwindSafe(|| allow(key))).unwrap_or_else(|_| {
                        panicked.store(true, Ordering::Relaxed);
                        false
                    })
                };
                let matches = self
                    .index
                    .filtered_search(query, k, guarded)
                    .map_err(backend)?;
                if panicked.load(Ordering::Relaxed) {
                    return Err(IndexError::Backend("the search filter panicked".into()));
                }
                matches
            }
        };
        Ok(matches
            .keys
            .iter()
            .zip(&matches.distances)
            .map(|(&key, &distance)| (key, (1.0 - distance).clamp(-1.0, 1.0)))
            .collect())
    }

    /// The exact `k` nearest among keys `allow` accepts: every key is tested, and each
    /// accepted one's vector read back from usearch and compared.
    pub(crate) fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        allow: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<Vec<(u64, f32)>, IndexError> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut top = TopK::new(k);
        let mut row = vec![0.0f32; self.dims];
        for &key in &keys.list {
            if allow(key) && self.index.get(key, &mut row).map_err(backend)? == 1 {
                top.offer(key, dot(query, &row));
            }
        }
        Ok(top.into_sorted())
    }

    /// The vectors back in a flat store (when the index has shrunk below the threshold).
    pub(crate) fn export(&self) -> Result<Flat, IndexError> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut flat = Flat::new(self.dims);
        let mut row = vec![0.0f32; self.dims];
        for &key in &keys.list {
            if self.index.get(key, &mut row).map_err(backend)? == 1 {
                flat.insert(key, &row);
            }
        }
        Ok(flat)
    }

    /// Bytes usearch holds (vectors, graph, key lookup).
    pub(crate) fn memory_usage(&self) -> usize {
        self.index.memory_usage()
    }
}
