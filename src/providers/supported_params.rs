//! The OpenAI chat parameters a provider takes through Tianji (what
//! `/utils/supported_openai_params` answers, in LiteLLM's shape): for OpenAI-shaped providers
//! OpenAI's own list (the body is forwarded), for translated wires the parameters their
//! translation carries over (the rest are dropped or refused by the translation).

/// OpenAI's chat completion parameters (forwarded as sent to OpenAI-shaped providers).
const OPENAI: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_tokens",
    "max_completion_tokens",
    "modalities",
    "prediction",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "function_call",
    "functions",
    "max_retries",
    "extra_headers",
    "parallel_tool_calls",
    "audio",
    "response_format",
    "user",
    "reasoning_effort",
    "web_search_options",
    "service_tier",
];

const ANTHROPIC: &[&str] = &[
    "stream",
    "stop",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    "extra_headers",
    "parallel_tool_calls",
    "user",
    "reasoning_effort",
    "thinking",
];

const GEMINI: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "tools",
    "response_format",
    "n",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "reasoning_effort",
];

const BEDROCK: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "stop",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning_effort",
    "thinking",
];

const COHERE: &[&str] = &[
    "stream",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning_effort",
];

const WATSONX: &[&str] = &[
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
];

/// SageMaker's TGI generate API.
const SAGEMAKER_TGI: &[&str] = &["stream", "temperature", "max_tokens", "top_p", "stop", "n"];

/// Text completion models (chat sent as a prompt).
const TEXT_COMPLETION: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "user",
];

/// How a provider's chat requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Forwarded in OpenAI's shape (OpenAI-compatible providers, Azure, SageMaker's Messages
    /// API containers).
    OpenAi,
    Anthropic,
    /// Gemini and Vertex AI.
    Gemini,
    Bedrock,
    Cohere,
    WatsonX,
    SageMakerTgi,
    TextCompletion,
}

/// The parameters `family` takes.
pub fn chat(family: Family) -> &'static [&'static str] {
    match family {
        Family::OpenAi => OPENAI,
        Family::Anthropic => ANTHROPIC,
        Family::Gemini => GEMINI,
        Family::Bedrock => BEDROCK,
        Family::Cohere => COHERE,
        Family::WatsonX => WATSONX,
        Family::SageMakerTgi => SAGEMAKER_TGI,
        Family::TextCompletion => TEXT_COMPLETION,
    }
}

/// The family of a `provider/model` name's provider (`None`: a provider Tianji does not
/// serve).
pub fn family_of(kind: &super::ProviderKind) -> Option<Family> {
    Some(match kind {
        super::ProviderKind::OpenAiCompatible(s) if s.chat_via_completions => {
            Family::TextCompletion
        }
        super::ProviderKind::OpenAiCompatible(_) => Family::OpenAi,
        super::ProviderKind::Native(n) => match *n {
            "anthropic" => Family::Anthropic,
            "azure_text" => Family::TextCompletion,
            "bedrock" | "bedrock_converse" => Family::Bedrock,
            "cohere" | "cohere_chat" => Family::Cohere,
            "gemini" | "vertex_ai" | "vertex_ai_beta" => Family::Gemini,
            "sagemaker" => Family::SageMakerTgi,
            "watsonx" => Family::WatsonX,
            _ => Family::OpenAi,
        },
        super::ProviderKind::NotServed { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_has_the_basics_and_no_repeats() {
        for f in [
            Family::OpenAi,
            Family::Anthropic,
            Family::Gemini,
            Family::Bedrock,
            Family::Cohere,
            Family::WatsonX,
            Family::SageMakerTgi,
            Family::TextCompletion,
        ] {
            let l = chat(f);
            for p in ["stream", "temperature", "max_tokens", "top_p", "stop"] {
                assert!(l.contains(&p), "{f:?} lacks {p}");
            }
            let mut sorted = l.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), l.len(), "{f:?} repeats a parameter");
        }
    }
}
