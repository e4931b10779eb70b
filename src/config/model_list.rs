//! `model_list[]` entries as written in the config file.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One deployment: a public `model_name` served by `tianji_params.model` at a provider.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub model_name: String,
    #[serde(alias = "litellm_params")]
    pub tianji_params: TianjiParams,
    /// Free-form metadata (`id`, `mode`, `base_model`, costs, ...): never warned about.
    #[serde(default)]
    pub model_info: Map<String, Value>,
}

/// How to call the deployment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TianjiParams {
    /// `provider/name` (a bare name means `openai`). `*` may appear for wildcard deployments.
    pub model: String,
    pub api_key: Option<String>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    /// Azure: a Microsoft Entra ID token sent as `Authorization: Bearer` instead of `api-key`.
    pub azure_ad_token: Option<String>,
    /// Bedrock: AWS credentials and region (default: the standard AWS environment variables).
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub aws_region_name: Option<String>,
    /// Vertex AI: project, location and service-account credentials (a JSON string or a path to
    /// the JSON file; default `GOOGLE_APPLICATION_CREDENTIALS`).
    pub vertex_project: Option<String>,
    pub vertex_location: Option<String>,
    pub vertex_credentials: Option<String>,
    /// watsonx.ai: the project (or deployment space) of the model (default
    /// `WATSONX_PROJECT_ID` / `WATSONX_SPACE_ID`), and a pre-fetched IAM token used instead of
    /// exchanging `api_key` for one (default `WATSONX_TOKEN`).
    pub project_id: Option<String>,
    /// LiteLLM's other name for `project_id`.
    pub watsonx_project: Option<String>,
    pub space_id: Option<String>,
    pub token: Option<String>,
    /// The deployment's region (`eu`, `us`) for requests restricted by `allowed_model_region`.
    pub region_name: Option<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// Share of traffic under `simple-shuffle` (relative to the group's other deployments).
    pub weight: Option<f64>,
    /// Tags requests may ask for (`tags` in the body or `x-tianji-tags`) when
    /// `enable_tag_filtering` is on; `default` takes untagged and unmatched requests.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Requests this deployment may have in flight (across instances sharing Redis).
    pub max_parallel_requests: Option<u64>,
    /// Seconds for a non-streaming call (whole response).
    pub timeout: Option<f64>,
    /// Seconds to the first byte of a streaming call, and between two chunks.
    pub stream_timeout: Option<f64>,
    /// Extra attempts after a connection failure, upstream 429 or 5xx.
    pub max_retries: Option<u32>,
    /// Answer with this text without calling the provider.
    pub mock_response: Option<String>,
    /// Lend this deployment's credential and base URL to provider pass-through
    /// (`/anthropic/...`, ...); unmarked deployments never are (LiteLLM's name).
    #[serde(default)]
    pub use_in_pass_through: bool,
    /// Headers added to every upstream request of this deployment.
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Same as `extra_headers` (LiteLLM accepts both names).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Custom pricing (USD); overrides the price map for this deployment.
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub input_cost_per_second: Option<f64>,
    pub output_cost_per_second: Option<f64>,
    /// OCR: per page processed, per page annotated.
    pub ocr_cost_per_page: Option<f64>,
    pub annotation_cost_per_page: Option<f64>,
}

impl TianjiParams {
    /// The custom pricing fields that are set, by their price-map names.
    pub fn cost_overrides(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in [
            ("input_cost_per_token", self.input_cost_per_token),
            ("output_cost_per_token", self.output_cost_per_token),
            ("input_cost_per_second", self.input_cost_per_second),
            ("output_cost_per_second", self.output_cost_per_second),
            ("ocr_cost_per_page", self.ocr_cost_per_page),
            ("annotation_cost_per_page", self.annotation_cost_per_page),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v));
            }
        }
        m
    }
}
