//! `rag_settings`: the gateway's own vector stores and RAG (`/v1/vector_stores`,
//! `/v1/rag/ingest`, `/v1/rag/query`).

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RagSettings {
    /// The model group a store embeds with when its creator names none.
    pub embedding_model: Option<String>,
    /// Hosts `file_url` ingestion may fetch from although they are private or loopback
    /// addresses (names or IP literals, as written in the URL).
    pub allowed_url_hosts: Vec<String>,
    /// The largest document ingested (MiB).
    pub max_file_mb: f64,
    /// How long fetching a `file_url` may take (seconds).
    pub url_timeout_seconds: f64,
    /// Chunks embedded per embedding call.
    pub embedding_batch_size: usize,
}

impl Default for RagSettings {
    fn default() -> Self {
        Self {
            embedding_model: None,
            allowed_url_hosts: Vec::new(),
            max_file_mb: 50.0,
            url_timeout_seconds: 30.0,
            embedding_batch_size: 64,
        }
    }
}

/// The most chunks one embedding call may carry.
pub const MAX_EMBEDDING_BATCH: usize = 2048;

impl RagSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| ConfigError::Invalid {
            path: format!("rag_settings.{field}"),
            message,
        };
        if !(self.max_file_mb.is_finite() && self.max_file_mb > 0.0) {
            return Err(bad(
                "max_file_mb",
                format!("must be a positive number, got {}", self.max_file_mb),
            ));
        }
        if !(self.url_timeout_seconds.is_finite() && self.url_timeout_seconds > 0.0) {
            return Err(bad(
                "url_timeout_seconds",
                format!(
                    "must be a positive number, got {}",
                    self.url_timeout_seconds
                ),
            ));
        }
        if !(1..=MAX_EMBEDDING_BATCH).contains(&self.embedding_batch_size) {
            return Err(bad(
                "embedding_batch_size",
                format!(
                    "must be between 1 and {MAX_EMBEDDING_BATCH}, got {}",
                    self.embedding_batch_size
                ),
            ));
        }
        Ok(())
    }

    /// `max_file_mb` in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        (self.max_file_mb * 1024.0 * 1024.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Loaded;

    #[test]
    fn rag_settings_defaults_and_bounds() {
        let l = Loaded::from_yaml(
            "rag_settings:\n  embedding_model: emb\n  allowed_url_hosts: [docs.internal]\n",
        )
        .unwrap();
        let r = &l.config.rag_settings;
        assert_eq!(r.embedding_model.as_deref(), Some("emb"));
        assert_eq!(r.allowed_url_hosts, vec!["docs.internal".to_string()]);
        assert_eq!(r.embedding_batch_size, 64);
        for bad in [
            "max_file_mb: 0",
            "url_timeout_seconds: -1",
            "embedding_batch_size: 0",
        ] {
            let e = Loaded::from_yaml(&format!("rag_settings:\n  {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("rag_settings."), "{e}");
        }
    }
}
