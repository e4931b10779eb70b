//! `search_tools` entries.

use serde::Deserialize;
use serde_json::Value;

/// One entry of `search_tools`.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchTool {
    pub search_tool_name: String,
    #[serde(alias = "litellm_params")]
    pub tianji_params: SearchParams,
    #[serde(default)]
    pub search_tool_info: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchParams {
    /// tavily, brave, exa_ai, linkup, firecrawl, searxng
    pub search_provider: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_base: Option<String>,
    /// Seconds (default 30).
    #[serde(default)]
    pub timeout: Option<f64>,
}
