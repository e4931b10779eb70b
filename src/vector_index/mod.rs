//! An in-process nearest-neighbour index of one vector store: `u64` keys (chunk ids) with
//! vectors of a fixed dimension, searched by cosine similarity. Pure: no I/O; the vectors'
//! home is the database, and an index is rebuilt from it on start ([`VectorIndex::add_many`]).
//!
//! Two layouts, chosen by size ([`IndexOptions::exact_below`]):
//! - small stores are one contiguous buffer scanned exactly (`flat.rs`): a scan of 10,000
//!   vectors of 768 dimensions is a few milliseconds and always exact;
//! - above the threshold the vectors move (once, on the add that crosses it) into an HNSW graph
//!   (usearch, `graph.rs`), which keeps the only copy of them. Falling to a quarter of the
//!   threshold moves them back.
//!
//! Filtered searches on the graph: the share of keys the filter accepts is estimated on a sample
//! of keys, then, in order:
//! - few are expected to pass (at most [`IndexOptions::exact_allowed_max`]): the accepted keys
//!   are scanned exactly (a graph walk would visit most of the graph to find them);
//! - a common filter (`k / share` small): an unfiltered walk for about `2 k / share` nearest
//!   keys, of which the accepted ones are kept, if `k` of them pass;
//! - otherwise a filtered walk (usearch passes through refused keys until it holds enough
//!   accepted ones); should it find fewer than `k`, the exact scan answers instead.
//!
//! So a search returns `k` results whenever `k` allowed keys exist.
//!
//! Concurrency: every method takes `&self`. Searches share a read lock; adds and removes are
//! serialised among themselves and change the store under the write lock. usearch's inserts are
//! safe among themselves but not beside searches (a search reads neighbour lists without the
//! node locks an insert rewrites them under, and was seen to return one wrong result in tests),
//! so graph inserts hold the write lock, a batch of 16 per core at a time: a search waits at
//! most one batch (tens of ms) while a load runs. A new graph (crossing the threshold) is built
//! aside while searches go on over the flat store. Nothing blocks on I/O; a search costs at
//! most a few milliseconds of CPU.

mod flat;
mod graph;
mod math;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use flat::Flat;
use graph::Graph;

/// Why the index refused a vector or failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The vector's length is not the index's dimension.
    #[error("the vector has {got} dimensions, the index {expected}")]
    Dimensions { expected: usize, got: usize },
    /// An index of zero dimensions was asked for.
    #[error("an index needs at least one dimension")]
    NoDimensions,
    /// Every component is zero: such a vector has no direction.
    #[error("the vector is zero")]
    ZeroVector,
    /// A component is NaN or infinite.
    #[error("the vector holds NaN or infinity")]
    NotFinite,
    /// `u64::MAX` marks free slots inside usearch and cannot be a key.
    #[error("key {0} is reserved")]
    ReservedKey(u64),
    /// usearch failed (out of memory, mostly), or the search filter panicked.
    #[error("vector index: {0}")]
    Backend(String),
}

/// Thresholds and HNSW parameters; [`Default`] holds the tuned values (docs/benchmarks.md,
/// "Vector search").
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Stores of at most this many vectors are scanned exactly, without a graph.
    pub exact_below: usize,
    /// A filtered search over the graph is answered by an exact scan of the accepted keys when
    /// at most this many are expected to pass the filter.
    pub exact_allowed_max: usize,
    /// HNSW edges per node (usearch `connectivity`, M).
    pub connectivity: usize,
    /// Candidates kept while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidates kept while searching (ef); at least `k` in any case.
    pub expansion_search: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            exact_below: 10_000,
            exact_allowed_max: 3_000,
            connectivity: 16,
            expansion_add: 64,
            expansion_search: 64,
        }
    }
}

/// Keys sampled to estimate a filter's share of the keys.
const FILTER_SAMPLES: usize = 256;

/// How many more nearest keys than `k / share` an unfiltered walk asks for (a filtered search
/// keeps the accepted ones), and the most it asks for.
const OVERSAMPLE: f64 = 2.0;
const OVERSAMPLE_MAX: usize = 400;

/// Graph inserts per core done under one hold of the write lock (about 1 ms each at 768
/// dimensions): how long a load can hold searches back.
const ADD_BATCH: usize = 16;

/// Threads that insert into a graph: the machine's cores, at most 8.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Where the vectors are.
enum Store {
    Flat(Flat),
    Graph(Graph),
}

/// One store's index: shared as `Arc<VectorIndex>`.
pub struct VectorIndex {
    dims: usize,
    options: IndexOptions,
    /// Serialises adds and removes (searches do not take it).
    writes: Mutex<()>,
    store: RwLock<Store>,
}

impl VectorIndex {
    /// An empty index of `dims`-dimensional vectors, with the default options.
    pub fn new(dims: usize) -> Result<Self, IndexError> {
        Self::with_options(dims, IndexOptions::default())
    }

    /// An empty index with chosen thresholds and HNSW parameters.
    pub fn with_options(dims: usize, options: IndexOptions) -> Result<Self, IndexError> {
        if dims == 0 {
            return Err(IndexError::NoDimensions);
        }
        Ok(Self {
            dims,
            options,
            writes: Mutex::new(()),
            store: RwLock::new(Store::Flat(Flat::new(dims))),
        })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// How many vectors the index holds.
    pub fn len(&self) -> usize {
        match &*self.read() {
            Store::Flat(flat) => flat.len(),
            Store::Graph(graph) => graph.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while searches are exact scans (the store is below the threshold).
    pub fn is_exact(&self) -> bool {
        matches!(&*self.read(), Store::Flat(_))
    }

    /// Whether adding `more` vectors is a quick copy: the store is an exact scan and stays one.
    pub fn stays_exact_with(&self, more: usize) -> bool {
        match &*self.read() {
            Store::Flat(flat) => flat.len() + more <= self.options.exact_below,
            Store::Graph(_) => false,
        }
    }

    /// Bytes held for vectors, graph and keys (approximate).
    pub fn memory_bytes(&self) -> usize {
        match &*self.read() {
            Store::Flat(flat) => flat.len() * (self.dims * 4 + 40),
            Store::Graph(graph) => graph.memory_usage() + graph.len() * 40,
        }
    }

    /// Adds (or replaces) `key`'s vector; normalised for cosine. A wrong length is
    /// [`IndexError::Dimensions`]; NaN, infinity and the zero vector are refused.
    pub fn add(&self, key: u64, vector: &[f32]) -> Result<(), IndexError> {
        self.add_many_refs(&[(key, vector)])
    }

    /// Adds (or replaces) many vectors at once (the load on start): on a graph, spread over
    /// the cores. Every vector is checked first: on a refusal nothing is added. A key given
    /// twice keeps its last vector.
    pub fn add_many(&self, items: &[(u64, Vec<f32>)]) -> Result<(), IndexError> {
        let refs: Vec<(u64, &[f32])> = items.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        self.add_many_refs(&refs)
    }

    fn add_many_refs(&self, items: &[(u64, &[f32])]) -> Result<(), IndexError> {
        for &(key, vector) in items {
            if key == u64::MAX {
                return Err(IndexError::ReservedKey(key));
            }
            math::checked(vector, self.dims)?;
        }
        // The last vector of a key given twice wins.
        let mut last: HashMap<u64, usize> = HashMap::with_capacity(items.len());
        for (i, &(key, _)) in items.iter().enumerate() {
            last.insert(key, i);
        }
        let items: Vec<(u64, &[f32])> = items
            .iter()
            .enumerate()
            .filter(|(i, (key, _))| last.get(key) == Some(i))
            .map(|(_, item)| *item)
            .collect();
        if items.is_empty() {
            return Ok(());
        }

        let _writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let promote = match &*self.read() {
            Store::Flat(flat) => {
                let new = items.iter().filter(|(k, _)| !flat.contains(*k)).count();
                flat.len() + new > self.options.exact_below
            }
            Store::Graph(_) => false,
        };
        if promote {
            self.promote(items.len())?;
        }

        if let Store::Flat(flat) = &mut *self.write() {
            for &(key, vector) in &items {
                flat.insert(key, &math::normalized(vector, self.dims)?);
            }
            return Ok(());
        }
        // Graph inserts exclude searches (see the module doc), a batch at a time so searches
        // run in between the batches of a long load.
        let batch = ADD_BATCH * workers();
        for part in items.chunks(batch) {
            let store = self.write();
            let Store::Graph(graph) = &*store else {
                // Only `writes` holders change the layout, and this call holds it.
                return Err(IndexError::Backend("the store changed layout".into()));
            };
            // usearch keeps one vector per key: a replaced key is removed first.
            for &(key, _) in part {
                if graph.contains(key) {
                    graph.remove(key)?;
                }
            }
            graph.reserve(graph.len() + part.len())?;
            add_all(graph, part, self.dims)?;
        }
        Ok(())
    }

    /// Moves a flat store into a new graph, leaving room for `more` vectors. Runs under
    /// `writes`; searches go on over the flat store while the graph is built.
    fn promote(&self, more: usize) -> Result<(), IndexError> {
        let graph = {
            let store = self.read();
            let Store::Flat(flat) = &*store else {
                return Ok(());
            };
            let graph = Graph::new(self.dims, &self.options, flat.len() + more)?;
            let rows: Vec<(u64, &[f32])> = flat.iter().collect();
            add_all(&graph, &rows, self.dims)?;
            graph
        };
        *self.write() = Store::Graph(graph);
        Ok(())
    }

    /// Removes `key`'s vector (nothing when it is absent).
    pub fn remove(&self, key: u64) -> Result<(), IndexError> {
        let _writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut store = self.write();
        match &mut *store {
            Store::Flat(flat) => {
                flat.remove(key);
            }
            Store::Graph(graph) => {
                graph.remove(key)?;
                if graph.len() < self.options.exact_below / 4 {
                    let flat = graph.export()?;
                    *store = Store::Flat(flat);
                }
            }
        }
        Ok(())
    }

    /// The `k` nearest keys by cosine similarity (highest first, similarity in [-1, 1]) among
    /// those `allow` accepts; exact while the store is below the threshold, and for selective
    /// filters. `allow` is called from the searching thread only; it must not panic (a panic
    /// during a graph walk is caught and returned as [`IndexError::Backend`]).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allow: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<Vec<(u64, f32)>, IndexError> {
        let query = math::normalized(query, self.dims)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let store = self.read();
        let graph = match &*store {
            Store::Flat(flat) => return Ok(flat.search(&query, k, allow)),
            Store::Graph(graph) => graph,
        };
        let (share, n) = graph.allowed_share(allow, FILTER_SAMPLES);
        if n <= self.options.exact_below {
            return graph.search_exact(&query, k, allow);
        }
        if share >= 1.0 {
            // Every sampled key passes: walk unfiltered, and fall back to the filtered walk if
            // an unsampled key is refused after all.
            let found = graph.search(&query, k, None)?;
            if found.iter().all(|(key, _)| allow(*key)) {
                if found.len() < k.min(n) {
                    // the walk came back short (a graph can leave nodes unreached): scan
                    return graph.search_exact(&query, k, allow);
                }
                return Ok(found);
            }
        }
        let expected = share * n as f64;
        if expected <= self.options.exact_allowed_max as f64 {
            return graph.search_exact(&query, k, allow);
        }
        // A common filter: ask the graph for enough nearest keys that `k` of them should pass,
        // and keep those that do.
        let wanted = (k as f64 / share.max(f64::MIN_POSITIVE) * OVERSAMPLE).ceil();
        if wanted <= OVERSAMPLE_MAX as f64 {
            let found = graph.search(&query, wanted as usize, None)?;
            let passed: Vec<(u64, f32)> = found
                .into_iter()
                .filter(|(key, _)| allow(*key))
                .take(k)
                .collect();
            if passed.len() == k {
                return Ok(passed);
            }
        }
        // A rarer filter: walk the graph through refused keys until `k` accepted ones are found.
        let found = graph.search(&query, k, Some(allow))?;
        if found.len() < k.min(n) {
            return graph.search_exact(&query, k, allow);
        }
        Ok(found)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Adds `items` (new keys, checked, not yet normalised) to `graph`, spread over the cores when
/// there are many; room was reserved.
fn add_all(graph: &Graph, items: &[(u64, &[f32])], dims: usize) -> Result<(), IndexError> {
    let add = |chunk: &[(u64, &[f32])]| -> Result<(), IndexError> {
        for &(key, vector) in chunk {
            graph.add_new(key, &math::normalized(vector, dims)?)?;
        }
        Ok(())
    };
    let threads = workers();
    if items.len() < 2 * threads || threads == 1 {
        return add(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || add(part)))
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .unwrap_or_else(|_| Err(IndexError::Backend("an insert thread panicked".into())))
        })
    })
}

#[cfg(test)]
mod tests;
