//! The gateway's own vector stores (`provider: tianji`): files, chunks and their vectors are
//! kept in Postgres (`"TianjiLLM_VectorStoreFileTable"`, `"TianjiLLM_VectorStoreChunkTable"`);
//! each instance holds one search index per store ([`loaded::Loaded`]), loaded from the chunk
//! table on first use (and for every store at startup, in the background) and kept in step
//! with the other instances through the invalidation channel: on `Changed::VectorStore(id)`
//! the store's file list is read again, the chunks of files completed since are loaded, and
//! files gone, failed or cancelled are dropped ([`VectorStores::sync`]). Which stores a caller
//! may use is [`access`]; search filters are [`filters`].

pub mod access;
pub mod filters;
mod loaded;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::store::{Query, Store, StoreError};
use crate::vector_index::IndexError;
pub use loaded::{FileEntry, Hit, Loaded};

/// Why a store could not be loaded or searched.
#[derive(Debug, thiserror::Error)]
pub enum VectorStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("vector index: {0}")]
    Index(#[from] IndexError),
    #[error(
        "Dimension mismatch: the store's vectors have {store} dimensions, the embedding has {got}"
    )]
    Dimensions { store: usize, got: usize },
    #[error("a stored embedding is corrupt (its length is not a whole number of floats)")]
    Corrupt,
}

/// Vectors as stored: little-endian f32s.
pub fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode(b: &[u8]) -> Result<Vec<f32>, VectorStoreError> {
    if !b.len().is_multiple_of(4) {
        return Err(VectorStoreError::Corrupt);
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The stores this instance holds.
#[derive(Default)]
pub struct VectorStores {
    loaded: Mutex<HashMap<String, Arc<OnceCell<Arc<Loaded>>>>>,
    /// Files being ingested here `(store, file)`: their chunks are in the index before the
    /// database says they are complete.
    ingesting: Mutex<HashSet<(String, String)>>,
    /// Embedding model groups that refused base64 vectors (asked for floats since).
    floats_only: Mutex<HashSet<String>>,
}

/// A file being ingested on this instance (until dropped).
pub struct Ingesting<'a> {
    stores: &'a VectorStores,
    key: (String, String),
}

impl Drop for Ingesting<'_> {
    fn drop(&mut self) {
        let mut set = self
            .stores
            .ingesting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        set.remove(&self.key);
    }
}

impl VectorStores {
    /// Whether the embedding model group `model` refused base64 vectors here.
    pub fn floats_only(&self, model: &str) -> bool {
        let set = self.floats_only.lock().unwrap_or_else(|e| e.into_inner());
        set.contains(model)
    }

    /// Remember that `model` refused base64 vectors.
    pub fn set_floats_only(&self, model: &str) {
        let mut set = self.floats_only.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(model.to_string());
    }

    fn cell(&self, id: &str) -> Arc<OnceCell<Arc<Loaded>>> {
        let mut map = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }

    fn held(&self, id: &str) -> Option<Arc<Loaded>> {
        let map = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).and_then(|c| c.get().cloned())
    }

    /// The store `id`, loaded from the database if this instance does not hold it yet.
    pub async fn get(&self, store: &Store, id: &str) -> Result<Arc<Loaded>, VectorStoreError> {
        let cell = self.cell(id);
        let loaded = cell
            .get_or_try_init(|| async {
                let l = Arc::new(Loaded::new(id));
                sync_files(self, store, &l).await?;
                Ok::<_, VectorStoreError>(l)
            })
            .await?;
        Ok(loaded.clone())
    }

    /// Load every store of the gateway (at startup; failures are logged), after failing the
    /// files whose ingestion stopped with the instance that ran it.
    pub async fn load_all(&self, store: &Store) {
        if let Err(e) = store.query(Query::FailStaleVectorStoreFiles, &[]).await {
            tracing::warn!(error = %e, "could not fail interrupted vector store files");
        }
        let ids = match store.query(Query::EmbeddedVectorStores, &[]).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not list vector stores");
                return;
            }
        };
        for row in ids {
            let Ok(id) = row.try_get::<_, String>(0) else {
                continue;
            };
            if let Err(e) = self.get(store, &id).await {
                tracing::warn!(store = %id, error = %e, "could not load a vector store");
            }
        }
    }

    /// Bring the store `id` in step with the database (another instance changed it), if this
    /// instance holds it.
    pub async fn sync(&self, store: &Store, id: &str) -> Result<(), VectorStoreError> {
        let Some(l) = self.held(id) else {
            return Ok(());
        };
        let exists = !store.query(Query::GetVectorStore, &[&id]).await?.is_empty();
        if !exists {
            self.forget(id);
            return Ok(());
        }
        sync_files(self, store, &l).await
    }

    /// Drop the store `id` (deleted).
    pub fn forget(&self, id: &str) {
        let mut map = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id);
    }

    /// Mark `(store, file)` as being ingested here until the guard drops.
    pub fn ingesting(&self, store: &str, file: &str) -> Ingesting<'_> {
        let key = (store.to_string(), file.to_string());
        let mut set = self.ingesting.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(key.clone());
        Ingesting { stores: self, key }
    }

    fn is_ingesting(&self, store: &str, file: &str) -> bool {
        let set = self.ingesting.lock().unwrap_or_else(|e| e.into_inner());
        set.contains(&(store.to_string(), file.to_string()))
    }
}

/// Read the store's files and make `l` hold what they say.
async fn sync_files(
    stores: &VectorStores,
    store: &Store,
    l: &Arc<Loaded>,
) -> Result<(), VectorStoreError> {
    let rows = store
        .query(Query::ListVectorStoreFiles, &[&l.id.as_str()])
        .await?;
    let mut present = HashSet::new();
    let mut to_load: Vec<(String, FileEntry)> = Vec::new();
    for row in rows {
        let Ok(f) = row.try_get::<_, Value>(0) else {
            continue;
        };
        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default();
        let (file_id, status) = (s("file_id").to_string(), s("status"));
        let filename = s("filename").to_string();
        let attributes = f.get("attributes").cloned().unwrap_or(Value::Null);
        match status {
            "completed" => {
                present.insert(file_id.clone());
                if l.has_file(&file_id) {
                    l.complete(&file_id, &filename, attributes);
                } else {
                    let entry = FileEntry {
                        filename,
                        attributes,
                        searchable: true,
                        chunks: Vec::new(),
                    };
                    to_load.push((file_id, entry));
                }
            }
            "in_progress" => {
                present.insert(file_id);
            }
            _ => {}
        }
    }
    for f in l.file_ids() {
        if !present.contains(&*f) && !stores.is_ingesting(&l.id, &f) {
            l.remove(&f);
        }
    }
    if to_load.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = to_load.iter().map(|(f, _)| f.as_str()).collect();
    let rows = store
        .query(Query::LoadVectorStoreChunks, &[&l.id.as_str(), &ids])
        .await?;
    let mut by_file: HashMap<String, Vec<(u64, Vec<f32>)>> = HashMap::new();
    for row in rows {
        let (Ok(chunk), Ok(file), Ok(bytes)) = (
            row.try_get::<_, i64>(0),
            row.try_get::<_, String>(1),
            row.try_get::<_, Vec<u8>>(2),
        ) else {
            continue;
        };
        by_file
            .entry(file)
            .or_default()
            .push((chunk as u64, decode(&bytes)?));
    }
    for (file, entry) in to_load {
        let chunks = by_file.remove(&file).unwrap_or_default();
        l.add_blocking(file, entry, chunks).await?;
    }
    Ok(())
}
