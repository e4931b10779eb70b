//! The official `anthropic`, `openai` and `google-genai` Python SDKs, unchanged, against the
//! `tianji` binary serving native provider deployments (Anthropic, OpenAI, Azure, Bedrock,
//! Gemini, Cohere) that one provider mock answers (`tests/common/providers.rs`).

use std::sync::Arc;

use crate::common::mock_upstream::MockUpstream;
use crate::common::providers::{self, AWS_KEY_ID, AWS_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_openai_and_google_sdks_against_native_providers() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let a = up.addr;
    let aws = format!(
        "aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: eu-west-1"
    );
    let yaml = format!(
        "model_list:
  - model_name: claude
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant-up, use_in_pass_through: true}}
  - model_name: gpt
    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{a}/v1\", api_key: sk-up, use_in_pass_through: true}}
  - model_name: azure-gpt
    tianji_params: {{model: azure/gpt-dep, api_base: \"http://{a}\", api_key: az-up}}
  - model_name: bedrock
    tianji_params: {{model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0, api_base: \"http://{a}\", {aws}}}
  - model_name: gemini
    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{a}\", api_key: gem-up}}
  - model_name: command
    tianji_params: {{model: cohere/command-a-03-2025, api_base: \"http://{a}\", api_key: co-up}}
  - model_name: gemini-embed
    tianji_params: {{model: gemini/gemini-embedding-001, api_base: \"http://{a}\", api_key: gem-up}}
  - model_name: bedrock-embed
    tianji_params: {{model: bedrock/amazon.titan-embed-text-v2:0, api_base: \"http://{a}\", {aws}}}
  - model_name: cohere-embed
    tianji_params: {{model: cohere/embed-v4.0, api_base: \"http://{a}\", api_key: co-up}}
  - model_name: azure-embed
    tianji_params: {{model: azure/emb-dep, api_base: \"http://{a}\", api_key: az-up}}
  - model_name: image
    tianji_params: {{model: openai/gpt-image-1, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: stt
    tianji_params: {{model: openai/whisper-1, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: tts
    tianji_params: {{model: openai/gpt-4o-mini-tts, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: omni-moderation-latest
    tianji_params: {{model: openai/omni-moderation-latest, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: rerank
    tianji_params: {{model: cohere/rerank-v3.5, api_base: \"http://{a}\", api_key: co-up}}
search_tools:
  - search_tool_name: web
    tianji_params: {{search_provider: tavily, api_key: tv-up, api_base: \"http://{a}\"}}
general_settings: {{master_key: sk-sdk-providers}}
"
    );
    crate::it::sdk::run_python("provider_sdks.py", &yaml, "sk-sdk-providers").await;
    // the provider keys went upstream, the caller's key never did
    for r in up.requests() {
        for (name, value) in &r.headers {
            let v = value.to_str().unwrap_or_default();
            assert!(!v.contains("sk-sdk-providers"), "{} {name}: {v}", r.path);
        }
    }
}
