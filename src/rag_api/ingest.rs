//! Ingesting one file into one of the gateway's stores: the document read as it arrives (text
//! and Markdown chunked while streaming; HTML and PDF read whole, within
//! `rag_settings.max_file_mb`, then extracted), its chunks embedded in batches of
//! `rag_settings.embedding_batch_size` and written (chunks and vectors) as each batch comes
//! back, then the file marked `completed`: only then do searches see it, on every instance.
//! A failure anywhere deletes the chunks written and marks the file `failed` with the reason.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::source::Document;
use super::{Cx, RagError, embed};
use crate::pipeline::made::For;
use crate::rag::ExtractError;
use crate::rag::chunk::{self, ChunkOptions, StreamSplitter};
use crate::rag::extract::{self, ExtractLimits};
use crate::rag::format::{self, DocFormat};
use crate::state::AppState;
use crate::store::Query;
use crate::vector_stores::{FileEntry, Loaded, encode};

/// HTML and PDF documents extracted at once (each on a blocking thread; a deeply nested page
/// or a hostile PDF costs seconds of CPU).
static EXTRACTING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The largest HTML page read (html5ever's cost grows with nesting; pages are small).
const MAX_HTML_BYTES: u64 = 8 << 20;

/// What to ingest into.
#[derive(Clone)]
pub struct Target {
    pub store_id: String,
    pub embedding_model: String,
}

/// The file being ingested (its row already written, `in_progress`).
#[derive(Clone)]
pub struct FileSpec {
    pub file_id: String,
    pub attributes: Value,
    pub chunking: ChunkOptions,
    /// The OCR model group read a PDF without text with (`ingest_options.ocr.model`).
    pub ocr_model: Option<String>,
}

/// How an ingestion ended: `error` when it failed (the file is marked failed).
pub struct Done {
    pub error: Option<RagError>,
}

/// Ingest `doc` as `file` of `target` for `who`; the file's row is finished either way (and
/// every instance told).
pub async fn run(
    state: &Arc<AppState>,
    who: &For,
    target: &Target,
    file: &FileSpec,
    doc: Document,
) -> Done {
    let Some(store) = state.store.clone() else {
        return Done {
            error: Some(RagError::NoDatabase),
        };
    };
    let stores = state.vector_stores.clone();
    let (vs, fid) = (target.store_id.as_str(), file.file_id.as_str());
    let guard = stores.ingesting(vs, fid);
    let done = match stores.get(&store, vs).await {
        Ok(l) => ingest(state, &store, who, target, file, doc, l).await,
        Err(e) => fail(state, vs, fid, e.into()).await,
    };
    drop(guard);
    state
        .invalidate(&[crate::auth::Changed::VectorStore(vs.to_string())])
        .await;
    done
}

/// [`run`] with the store loaded.
async fn ingest(
    state: &Arc<AppState>,
    store: &crate::store::Store,
    who: &For,
    target: &Target,
    file: &FileSpec,
    doc: Document,
    l: Arc<Loaded>,
) -> Done {
    let (vs, fid) = (target.store_id.as_str(), file.file_id.as_str());
    let mut w = Writer {
        state,
        who,
        target,
        file,
        loaded: l.clone(),
        pending: Vec::new(),
        seq: 0,
        dims: None,
    };
    let read = match w.read(doc).await {
        Ok(bytes) => w.flush().await.map(|()| bytes),
        Err(e) => Err(e),
    };
    let bytes = match read {
        Ok(_) if w.seq == 0 => Err(crate::rag::ExtractError::Empty.into()),
        other => other,
    };
    let finished = match bytes {
        Ok(bytes) => store
            .query(
                Query::FinishVectorStoreFile,
                &[&vs, &fid, &"completed", &Value::Null, &(bytes as i64)],
            )
            .await
            .map_err(RagError::from),
        Err(e) => Err(e),
    };
    match finished {
        Ok(rows) => {
            let row = rows.first().and_then(|r| r.try_get::<_, Value>(0).ok());
            match &row {
                Some(r) => {
                    let name = r.get("filename").and_then(Value::as_str).unwrap_or("");
                    let attrs = r.get("attributes").cloned().unwrap_or(json!({}));
                    l.complete(fid, name, attrs);
                }
                None => {
                    // cancelled or deleted meanwhile: its chunks go
                    l.remove(fid);
                    let _ = store
                        .query(Query::DeleteVectorStoreFileChunks, &[&vs, &fid])
                        .await;
                }
            }
            Done { error: None }
        }
        Err(e) => {
            l.remove(fid);
            fail(state, vs, fid, e).await
        }
    }
}

/// The file could not even be read: mark it failed (every instance told).
pub async fn unreadable(
    state: &AppState,
    target: &Target,
    file: &FileSpec,
    error: RagError,
) -> Done {
    let done = fail(state, &target.store_id, &file.file_id, error).await;
    state
        .invalidate(&[crate::auth::Changed::VectorStore(target.store_id.clone())])
        .await;
    done
}

/// Mark the file failed (its chunks deleted) with `error`'s reason.
async fn fail(state: &AppState, vs: &str, fid: &str, error: RagError) -> Done {
    let Some(store) = state.store.as_deref() else {
        return Done { error: Some(error) };
    };
    let code = match &error {
        RagError::Extract(crate::rag::ExtractError::Unsupported { .. }) => "unsupported_file",
        RagError::Extract(_) | RagError::TooLarge(_) => "invalid_file",
        _ => "server_error",
    };
    let last = json!({"code": code, "message": error.to_string()});
    let _ = store
        .query(Query::DeleteVectorStoreFileChunks, &[&vs, &fid])
        .await;
    let _ = store
        .query(
            Query::FinishVectorStoreFile,
            &[&vs, &fid, &"failed", &last, &0i64],
        )
        .await;
    Done { error: Some(error) }
}

/// Chunks on their way to the store.
struct Writer<'a> {
    state: &'a Arc<AppState>,
    who: &'a For,
    target: &'a Target,
    file: &'a FileSpec,
    loaded: Arc<Loaded>,
    pending: Vec<String>,
    /// Chunks written so far.
    seq: usize,
    /// The store's dimensions, once known.
    dims: Option<usize>,
}

impl Writer<'_> {
    fn max_bytes(&self) -> u64 {
        self.state.config().rag_settings.max_file_bytes()
    }

    /// Read the document into chunks (written as batches fill); its size in bytes.
    async fn read(&mut self, doc: Document) -> Result<u64, RagError> {
        let Document {
            filename,
            content_type,
            mut body,
        } = doc;
        let max = self.max_bytes();
        let too_large = || RagError::TooLarge(self.state.config().rag_settings.max_file_mb);
        // the first bytes tell the format
        let mut first = Bytes::new();
        while first.is_empty() {
            match body.next().await {
                Some(piece) => first = piece?,
                None => break,
            }
        }
        let fmt = format::detect(filename.as_deref(), content_type.as_deref(), &first)?;
        let mut total = first.len() as u64;
        if total > max {
            return Err(too_large());
        }
        if matches!(fmt, DocFormat::Text | DocFormat::Markdown) {
            let mut split = StreamSplitter::new(self.file.chunking.clone());
            let mut piece = first;
            loop {
                for c in split.push_bytes(&piece)? {
                    self.push(c).await?;
                }
                match body.next().await {
                    Some(p) => {
                        piece = p?;
                        total += piece.len() as u64;
                        if total > max {
                            return Err(too_large());
                        }
                    }
                    None => break,
                }
            }
            for c in split.finish_bytes()? {
                self.push(c).await?;
            }
            return Ok(total);
        }
        let mut whole = Vec::with_capacity(first.len());
        whole.extend_from_slice(&first);
        while let Some(p) = body.next().await {
            let p = p?;
            total += p.len() as u64;
            if total > max {
                return Err(too_large());
            }
            whole.extend_from_slice(&p);
        }
        if fmt == DocFormat::Html && total > MAX_HTML_BYTES {
            return Err(RagError::BadRequest(format!(
                "HTML documents are read up to {} MiB",
                MAX_HTML_BYTES >> 20
            )));
        }
        let limits = ExtractLimits {
            max_bytes: max as usize,
            ..ExtractLimits::default()
        };
        // parsing is CPU work on blocking threads: a few at a time
        let _turn = EXTRACTING
            .acquire()
            .await
            .map_err(|e| RagError::Read(e.to_string()))?;
        let whole = Bytes::from(whole);
        let text = match extract::extract(fmt, whole.clone(), &limits).await {
            Err(ExtractError::Empty) if fmt == DocFormat::Pdf && self.file.ocr_model.is_some() => {
                drop(_turn);
                let cx = super::Cx {
                    state: self.state,
                    store: self.state.store.clone(),
                    who: self.who.clone(),
                };
                let model = self.file.ocr_model.as_deref().unwrap_or_default();
                super::ocr::pdf_text(&cx, model, &whole)
                    .await
                    .map_err(|e| RagError::Read(format!("OCR with {model}: {e}")))?
            }
            other => other?,
        };
        for c in chunk::split(&text, &self.file.chunking) {
            self.push(c).await?;
        }
        Ok(total)
    }

    async fn push(&mut self, chunk: String) -> Result<(), RagError> {
        self.pending.push(chunk);
        if self.pending.len() >= self.state.config().rag_settings.embedding_batch_size {
            self.flush().await?;
        }
        Ok(())
    }

    /// Embed and write the pending chunks.
    async fn flush(&mut self) -> Result<(), RagError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let texts = std::mem::take(&mut self.pending);
        let vectors =
            embed::embed(self.state, self.who, &self.target.embedding_model, &texts).await?;
        let got = vectors.first().map_or(0, Vec::len);
        let dims = match self.dims {
            Some(d) => d,
            None => {
                let d = self.record_dims(got).await?;
                self.dims = Some(d);
                d
            }
        };
        if got != dims {
            return Err(
                crate::vector_stores::VectorStoreError::Dimensions { store: dims, got }.into(),
            );
        }
        let store = self.state.store.as_deref().ok_or(RagError::NoDatabase)?;
        let seqs: Vec<i32> = (self.seq..self.seq + texts.len())
            .map(|s| i32::try_from(s).unwrap_or(i32::MAX))
            .collect();
        let blobs: Vec<Vec<u8>> = vectors.iter().map(|v| encode(v)).collect();
        let (vs, fid) = (self.target.store_id.as_str(), self.file.file_id.as_str());
        let rows = store
            .query(
                Query::InsertVectorStoreChunks,
                &[&vs, &fid, &seqs, &texts, &blobs],
            )
            .await?;
        let ids: Vec<u64> = rows
            .iter()
            .filter_map(|r| r.try_get::<_, i64>(0).ok())
            .map(|i| i as u64)
            .collect();
        store
            .query(Query::TouchVectorStoreFile, &[&vs, &fid])
            .await?;
        let chunks: Vec<(u64, Vec<f32>)> = ids.into_iter().zip(vectors).collect();
        let entry = FileEntry {
            filename: String::new(),
            attributes: self.file.attributes.clone(),
            searchable: false,
            chunks: Vec::new(),
        };
        self.loaded
            .add_blocking(fid.to_string(), entry, chunks)
            .await?;
        self.seq += texts.len();
        Ok(())
    }

    /// The store's dimensions: recorded by its first embedding (`got`), else as recorded.
    async fn record_dims(&self, got: usize) -> Result<usize, RagError> {
        if let Some(d) = self.loaded.dims() {
            return Ok(d);
        }
        let store = self.state.store.as_deref().ok_or(RagError::NoDatabase)?;
        let vs = self.target.store_id.as_str();
        let n = i32::try_from(got).unwrap_or(i32::MAX);
        let rows = store
            .query(Query::SetVectorStoreDimensions, &[&vs, &n])
            .await?;
        let d = rows
            .first()
            .and_then(|r| r.try_get::<_, i32>(0).ok())
            .unwrap_or(n);
        Ok(usize::try_from(d).unwrap_or(got))
    }
}

/// The chunking of a file: OpenAI's `chunking_strategy` (`auto`, or `static` with
/// `max_chunk_size_tokens` / `chunk_overlap_tokens`, a token counted as 4 characters) or
/// LiteLLM's `{chunk_size, chunk_overlap, separators}` (characters).
pub fn chunking(v: Option<&Value>) -> Result<ChunkOptions, RagError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(ChunkOptions::default());
    };
    let opts = match v.get("type").and_then(Value::as_str) {
        Some("auto") => ChunkOptions::default(),
        Some("static") => {
            let s = v.get("static").unwrap_or(&Value::Null);
            let tokens = |f: &str| s.get(f).and_then(Value::as_u64);
            let size = tokens("max_chunk_size_tokens").ok_or_else(|| {
                RagError::BadRequest(
                    "chunking_strategy.static.max_chunk_size_tokens is required".into(),
                )
            })?;
            let overlap = tokens("chunk_overlap_tokens").unwrap_or(0);
            ChunkOptions {
                chunk_size: (size * 4) as usize,
                chunk_overlap: (overlap * 4) as usize,
                ..ChunkOptions::default()
            }
        }
        Some(other) => {
            return Err(RagError::BadRequest(format!(
                "chunking_strategy.type must be auto or static, got `{other}`"
            )));
        }
        None => serde_json::from_value::<ChunkOptions>(v.clone())
            .map_err(|e| RagError::BadRequest(format!("chunking_strategy: {e}")))?,
    };
    opts.validate()?;
    Ok(opts)
}

/// The chunking as a file object shows it (OpenAI's static strategy, in tokens).
pub fn chunking_shown(o: &ChunkOptions) -> Value {
    json!({"type": "static", "static": {
        "max_chunk_size_tokens": o.chunk_size.div_ceil(4),
        "chunk_overlap_tokens": o.chunk_overlap / 4,
    }})
}

/// The embedding model of the store row `row`.
pub fn store_model(row: &Value) -> Option<String> {
    row.pointer("/model_mappings/embedding_model")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Keep `cx`-free callers honest about which store they ingest into.
pub fn target_of(row: &Value) -> Result<Target, RagError> {
    Ok(Target {
        store_id: super::store_id(row).to_string(),
        embedding_model: store_model(row).ok_or(RagError::NoEmbeddingModel)?,
    })
}

/// Insert the file row (`in_progress`) of `file` in `target`; `None` when the store holds it
/// already.
pub async fn add_file_row(
    cx: &Cx<'_>,
    target: &Target,
    file: &FileSpec,
    filename: &str,
    batch: Option<&str>,
) -> Result<Option<Value>, RagError> {
    let shown = chunking_shown(&file.chunking);
    cx.one(
        Query::InsertVectorStoreFile,
        &[
            &target.store_id,
            &file.file_id,
            &filename,
            &file.attributes,
            &shown,
            &batch,
        ],
    )
    .await
}
