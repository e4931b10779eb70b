//! One of the gateway's own vector stores as this instance holds it: the search index of its
//! chunk vectors ([`crate::vector_index`], made when the first vector arrives, with its
//! dimensions) and what searches need of its files (status, attributes, name, chunk keys).
//! Chunks of a file not yet completed may be in the index, but no search returns them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

use super::VectorStoreError;
use super::filters::Filter;
use crate::vector_index::VectorIndex;

/// Most vectors [`Loaded::add_blocking`] adds on the calling thread (to an exact-scan store:
/// normalised and copied, about 1 µs each).
const QUICK_ADD: usize = 256;

/// A file of the store.
#[derive(Debug, Clone, Default)]
pub struct FileEntry {
    pub filename: String,
    pub attributes: Value,
    /// Completed: its chunks are searchable.
    pub searchable: bool,
    pub chunks: Vec<u64>,
}

#[derive(Default)]
struct Files {
    by_id: HashMap<Arc<str>, FileEntry>,
    chunk_file: HashMap<u64, Arc<str>>,
}

/// A search hit.
#[derive(Debug, Clone)]
pub struct Hit {
    pub chunk_id: u64,
    pub file_id: Arc<str>,
    pub filename: String,
    pub attributes: Value,
    pub score: f32,
}

pub struct Loaded {
    pub id: String,
    index: OnceLock<VectorIndex>,
    files: RwLock<Files>,
}

impl Loaded {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            index: OnceLock::new(),
            files: RwLock::new(Files::default()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Files> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Files> {
        self.files.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The index, made with `dims` dimensions when there is none yet.
    fn index(&self, dims: usize) -> Result<&VectorIndex, VectorStoreError> {
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        let made = VectorIndex::new(dims)?;
        Ok(self.index.get_or_init(|| made))
    }

    /// The index's dimensions, once it has vectors.
    pub fn dims(&self) -> Option<usize> {
        self.index.get().map(VectorIndex::dims)
    }

    /// Files the store holds here.
    pub fn file_ids(&self) -> Vec<Arc<str>> {
        self.read().by_id.keys().cloned().collect()
    }

    pub fn has_file(&self, file_id: &str) -> bool {
        self.read().by_id.contains_key(file_id)
    }

    /// Add chunk vectors of `file_id` (made known with `entry` the first time).
    pub fn add(
        &self,
        file_id: &str,
        entry: impl FnOnce() -> FileEntry,
        chunks: &[(u64, Vec<f32>)],
    ) -> Result<(), VectorStoreError> {
        let Some(first) = chunks.first() else {
            let mut files = self.write();
            if !files.by_id.contains_key(file_id) {
                files.by_id.insert(Arc::from(file_id), entry());
            }
            return Ok(());
        };
        let index = self.index(first.1.len())?;
        index.add_many(chunks)?;
        let mut files = self.write();
        let key: Arc<str> = match files.by_id.get_key_value(file_id) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(file_id);
                files.by_id.insert(k.clone(), entry());
                k
            }
        };
        for (c, _) in chunks {
            files.chunk_file.insert(*c, key.clone());
        }
        if let Some(f) = files.by_id.get_mut(file_id) {
            f.chunks.extend(chunks.iter().map(|(c, _)| *c));
        }
        Ok(())
    }

    /// [`Loaded::add`] on a blocking thread: adding vectors is CPU work (building the HNSW
    /// graph when the store crosses the exact-scan threshold takes seconds). Up to
    /// `QUICK_ADD` vectors into a store that stays an exact scan are only copied: added on
    /// the calling task.
    pub async fn add_blocking(
        self: &Arc<Self>,
        file_id: String,
        entry: FileEntry,
        chunks: Vec<(u64, Vec<f32>)>,
    ) -> Result<(), VectorStoreError> {
        // a few vectors copied into an exact-scan store: done here, no thread handoff
        let quick = chunks.len() <= QUICK_ADD
            && self
                .index
                .get()
                .is_none_or(|i| i.stays_exact_with(chunks.len()));
        if quick {
            return self.add(&file_id, || entry, &chunks);
        }
        let l = self.clone();
        tokio::task::spawn_blocking(move || l.add(&file_id, || entry, &chunks))
            .await
            .map_err(|e| {
                VectorStoreError::Index(crate::vector_index::IndexError::Backend(e.to_string()))
            })?
    }

    /// Make a file's chunks searchable (its ingestion completed), with its attributes.
    pub fn complete(&self, file_id: &str, filename: &str, attributes: Value) {
        let mut files = self.write();
        if let Some(f) = files.by_id.get_mut(file_id) {
            f.searchable = true;
            f.attributes = attributes;
            if !filename.is_empty() {
                f.filename = filename.to_string();
            }
        }
    }

    pub fn set_attributes(&self, file_id: &str, attributes: Value) {
        if let Some(f) = self.write().by_id.get_mut(file_id) {
            f.attributes = attributes;
        }
    }

    /// Drop a file and its vectors.
    pub fn remove(&self, file_id: &str) {
        let gone = {
            let mut files = self.write();
            let Some(f) = files.by_id.remove(file_id) else {
                return;
            };
            for c in &f.chunks {
                files.chunk_file.remove(c);
            }
            f.chunks
        };
        if let Some(index) = self.index.get() {
            for c in gone {
                // a key the index no longer holds is nothing to remove
                let _ = index.remove(c);
            }
        }
    }

    /// The `k` best chunks for `query` among completed files passing `filter` (and among
    /// `only`, when given).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        only: Option<&HashSet<String>>,
    ) -> Result<Vec<Hit>, VectorStoreError> {
        let Some(index) = self.index.get() else {
            return Ok(Vec::new());
        };
        if query.len() != index.dims() {
            return Err(VectorStoreError::Dimensions {
                store: index.dims(),
                got: query.len(),
            });
        }
        let files = self.read();
        let allowed: HashSet<&str> = files
            .by_id
            .iter()
            .filter(|(id, f)| {
                f.searchable
                    && only.is_none_or(|o| o.contains(&***id))
                    && filter.is_none_or(|flt| flt.matches(&f.attributes))
            })
            .map(|(id, _)| &**id)
            .collect();
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        let everything = allowed.len() == files.by_id.len();
        let allow = |key: u64| {
            everything
                || files
                    .chunk_file
                    .get(&key)
                    .is_some_and(|f| allowed.contains(&**f))
        };
        let found = index.search(query, k, &allow)?;
        Ok(found
            .into_iter()
            .filter_map(|(chunk_id, score)| {
                let file_id = files.chunk_file.get(&chunk_id)?.clone();
                let f = files.by_id.get(&file_id)?;
                Some(Hit {
                    chunk_id,
                    filename: f.filename.clone(),
                    attributes: f.attributes.clone(),
                    file_id,
                    score,
                })
            })
            .collect())
    }
}
