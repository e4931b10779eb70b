//! One SpendLogs row as the request path hands it to the writer (timestamps in Unix seconds).

use serde::Serialize;
use serde_json::Value;

/// SpendLogs `metadata`: who made the request (LiteLLM's `user_api_key_*` fields) and, for a
/// failure, what went wrong.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    pub user_api_key: String,
    pub user_api_key_alias: Option<String>,
    pub user_api_key_team_id: Option<String>,
    pub user_api_key_team_alias: Option<String>,
    pub user_api_key_user_id: Option<String>,
    pub user_api_key_org_id: Option<String>,
    pub user_api_key_end_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_information: Option<ErrorInformation>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorInformation {
    pub error_message: String,
    pub error_code: u16,
}

#[derive(Debug, Clone, Default)]
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
    pub metadata: Metadata,
    pub cache_hit: &'static str,
    pub request_tags: Vec<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub end_user: Option<String>,
    pub requester_ip_address: Option<String>,
    /// Only with `store_prompts_in_spend_logs`.
    pub messages: Option<Value>,
    pub response: Option<Value>,
    /// `success` or `failure`.
    pub status: &'static str,
    pub litellm_call_id: String,
    /// The route called (`/v1/chat/completions`, ...).
    pub endpoint: &'static str,
}
