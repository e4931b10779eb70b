//! One SpendLogs row as the request path hands it to the writer (field names are those
//! `tianji_spend_batch` reads; timestamps are Unix seconds).

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SpendRow {
    pub request_id: String,
    pub call_type: &'static str,
    /// sha256 hex of the key used (never the raw key).
    pub api_key: String,
    pub spend: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub start_time: f64,
    pub end_time: f64,
    pub completion_start_time: Option<f64>,
    pub request_duration_ms: u64,
    /// The provider's model name.
    pub model: String,
    pub model_id: String,
    /// The public model name the client asked for.
    pub model_group: String,
    pub custom_llm_provider: String,
    pub api_base: String,
    /// The key's user.
    pub user_id: Option<String>,
    pub metadata: Value,
    pub cache_hit: &'static str,
    pub request_tags: Vec<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub end_user: Option<String>,
    pub requester_ip_address: Option<String>,
    /// Only with `store_prompts_in_spend_logs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// `success` or `failure`.
    pub status: &'static str,
    pub litellm_call_id: String,
    /// The route called (`/v1/chat/completions`, ...).
    pub endpoint: &'static str,
}
