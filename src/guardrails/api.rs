//! `GET /guardrails/list`, `GET /v2/guardrails/list` (LiteLLM's shapes; secrets in the params
//! shown as `***`) and `POST /guardrails/apply_guardrail` (one guardrail on a text).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{GuardrailError, Guardrails, Run, Side};

/// The guardrails as `/guardrails/list` (v1) or `/v2/guardrails/list` shows them.
pub fn list(g: &Guardrails, v2: bool) -> Value {
    let items: Vec<Value> = (g.list().iter())
        .map(|x| {
            let mut v = json!({
                "guardrail_name": x.name,
                "litellm_params": x.shown_params,
                "guardrail_info": x.info,
            });
            if v2 {
                v["guardrail_id"] = json!(x.name);
                v["guardrail_definition_location"] = json!("config");
                v["created_at"] = Value::Null;
                v["updated_at"] = Value::Null;
            }
            v
        })
        .collect();
    json!({"guardrails": items})
}

/// `POST /guardrails/apply_guardrail`'s body.
#[derive(Debug, Deserialize)]
pub struct ApplyBody {
    pub guardrail_name: String,
    pub text: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub entities: Option<Vec<String>>,
}

/// Run the named guardrail (every mode it has) on `body.text`: `{"response_text"}`, the text
/// as the guardrail left it, or the guardrail's refusal.
pub async fn apply(run: &Run, body: &ApplyBody) -> Result<Value, GuardrailError> {
    let texts = [body.text.clone()];
    let out = run
        .set
        .apply_one(&body.guardrail_name, &texts, &run.ctx(Side::Request))
        .await?;
    let text = out
        .and_then(|mut t| t.pop())
        .unwrap_or_else(|| body.text.clone());
    Ok(json!({"response_text": text}))
}
