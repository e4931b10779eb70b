//! Authorization of an authenticated caller for one LLM request: key state, model access, budget.

use crate::router::wildcard;

use super::{AuthError, Principal};

/// Model names in a key's `models` that grant every model.
const ALL_MODELS: &[&str] = &["*", "all-proxy-models"];

/// Whether `allowed` (a key's `models`; empty = all) permits `model`.
pub fn model_allowed(allowed: &[String], model: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|m| {
            ALL_MODELS.contains(&m.as_str())
                || m == model
                || (m.contains('*') && wildcard::captures(m, model).is_some())
        })
}

/// Check the caller may send this request for `model` (the name the client asked for).
pub fn check(principal: &Principal, model: &str) -> Result<(), AuthError> {
    let Principal::Key(key) = principal else {
        return Ok(());
    };
    if let Some(models) = &key.models
        && !model_allowed(models, model)
    {
        return Err(AuthError::ModelDenied(model.to_string()));
    }
    if let Some(max) = key.max_budget
        && max >= 0.0
        && key.spend >= max
    {
        let who = key.key_alias.clone().unwrap_or_else(|| "key".to_string());
        let name = key
            .key_name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        return Err(AuthError::BudgetExceeded(format!(
            "Budget has been exceeded! Key={who}{name} Current cost: {}, Max budget: {max}",
            key.spend
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(model_allowed(&[], "x"));
        assert!(model_allowed(&l(&["a", "b"]), "b"));
        assert!(!model_allowed(&l(&["a"]), "b"));
        assert!(model_allowed(&l(&["openai/*"]), "openai/gpt-4o"));
        assert!(!model_allowed(&l(&["openai/*"]), "groq/x"));
        assert!(model_allowed(&l(&["all-proxy-models"]), "anything"));
    }
}
