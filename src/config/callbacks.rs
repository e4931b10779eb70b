//! Logging callback names: LiteLLM's full list kept as data, the ones Tianji implements, and
//! the startup check (a name LiteLLM accepts that Tianji does not implement is an error unless
//! `tianji_settings.ignore_unknown_callbacks: true`).

/// Callback names LiteLLM accepts in `callbacks`, `success_callback` and `failure_callback`
/// (its custom-logger literal and its older string callbacks).
pub const LITELLM_CALLBACKS: &[&str] = &[
    "agentops",
    "anthropic_cache_control_hook",
    "argilla",
    "arize",
    "arize_phoenix",
    "athina",
    "aws_sqs",
    "azure_storage",
    "bedrock_vector_store",
    "bitbucket",
    "braintrust",
    "cloudzero",
    "custom_callback_api",
    "datadog",
    "datadog_llm_observability",
    "deepeval",
    "dotprompt",
    "dynamic_rate_limiter",
    "dynamic_rate_limiter_v3",
    "dynamodb",
    "galileo",
    "gcs_bucket",
    "gcs_pubsub",
    "generic",
    "generic_api",
    "greenscale",
    "helicone",
    "humanloop",
    "lago",
    "langfuse",
    "langfuse_otel",
    "langsmith",
    "langtrace",
    "literalai",
    "logfire",
    "lunary",
    "mlflow",
    "openmeter",
    "opik",
    "otel",
    "pagerduty",
    "posthog",
    "prometheus",
    "promptlayer",
    "resend_email",
    "s3",
    "s3_v2",
    "sentry",
    "slack",
    "smtp_email",
    "supabase",
    "traceloop",
    "vector_store_pre_call_hook",
    "wandb",
    "webhook",
];

/// Logging sinks implemented here (`generic` and `custom_callback_api` are LiteLLM's older
/// names of `generic_api`, `s3_v2` its newer name of `s3`; `otel` is also traces).
pub const LOGGING_SINKS: &[&str] = &[
    "generic_api",
    "generic",
    "custom_callback_api",
    "langfuse",
    "datadog",
    "s3",
    "s3_v2",
    "otel",
];

/// Every name Tianji implements: the logging sinks, metrics, traces and the dynamic limiter.
pub const IMPLEMENTED: &[&str] = &["prometheus", "otel", "dynamic_rate_limiter_v3"];

/// Callback names that turn on a built-in guardrail (`banned_keywords_list`,
/// `blocked_user_list`; `crate::guardrails`).
pub const GUARDRAIL_CALLBACKS: &[&str] =
    &["banned_keywords", "blocked_user_check", "blocked_user_list"];

/// Whether `name` is implemented.
pub fn implemented(name: &str) -> bool {
    LOGGING_SINKS.contains(&name)
        || IMPLEMENTED.contains(&name)
        || GUARDRAIL_CALLBACKS.contains(&name)
}

/// The canonical sink name of a logging callback (`generic` -> `generic_api`).
pub fn sink_name(name: &str) -> Option<&'static str> {
    match name {
        "generic_api" | "generic" | "custom_callback_api" => Some("generic_api"),
        "langfuse" => Some("langfuse"),
        "datadog" => Some("datadog"),
        "s3" | "s3_v2" => Some("s3"),
        "otel" => Some("otel"),
        _ => None,
    }
}

/// Why `name` cannot be used, if it cannot.
pub fn refuse(name: &str) -> Option<String> {
    if implemented(name) {
        return None;
    }
    Some(if LITELLM_CALLBACKS.contains(&name) {
        format!(
            "callback '{name}' is not implemented by Tianji (set tianji_settings.ignore_unknown_callbacks: true to start without it)"
        )
    } else {
        format!(
            "unknown callback '{name}' (set tianji_settings.ignore_unknown_callbacks: true to start without it)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(refuse("langfuse").is_none());
        assert!(refuse("prometheus").is_none());
        assert!(refuse("s3").is_none());
        assert!(refuse("sentry").unwrap().contains("not implemented"));
        assert_eq!(sink_name("s3_v2"), Some("s3"));
        assert!(refuse("banned_keywords").is_none());
        assert!(refuse("blocked_user_check").is_none());
        assert!(refuse("nope").unwrap().contains("unknown"));
        assert_eq!(sink_name("generic"), Some("generic_api"));
        assert!(LOGGING_SINKS.iter().all(|s| sink_name(s).is_some()));
    }
}
