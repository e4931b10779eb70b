//! Guardrails over HTTP, each in its documented wire format: `presidio` (analyzer `/analyze`,
//! anonymizer `/anonymize`), `lakera_v2` (`/v2/guard`), `bedrock` (ApplyGuardrail, SigV4),
//! `generic_guardrail_api` (LiteLLM's `/beta/litellm_basic_guardrail_api`) and
//! `openai_moderation` (`/moderations` of a model group, through its deployment's endpoint
//! and credentials). Their URLs come from the admin's config, never from callers.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use super::{BuildError, Ctx, Verdict};
use crate::body::Body;
use crate::providers::bedrock::sigv4;

/// Largest guardrail answer read.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// A string param, else `None`.
fn param(p: &Map<String, Value>, key: &str) -> Option<String> {
    p.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
}

fn required(p: &Map<String, Value>, key: &str) -> Result<String, BuildError> {
    param(p, key).ok_or_else(|| BuildError::Params(format!("`{key}` is required")))
}

/// POST `body` as JSON to `url` with `headers`; the answer's JSON (any 2xx), else why not.
async fn post_json(
    ctx: &Ctx<'_>,
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Value, String> {
    let mut req = Request::new(Body::full(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let h = req.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        h.insert(k.clone(), v.clone());
    }
    let resp = ctx.client.request(req).await.map_err(|e| {
        let mut s = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cur = c.source();
        }
        s
    })?;
    let status = resp.status();
    let bytes = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("answered {}", status.as_u16()));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("answer is not JSON: {e}"))
}

fn bearer(key: &str) -> Result<(HeaderName, HeaderValue), String> {
    let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|e| e.to_string())?;
    v.set_sensitive(true);
    Ok((header::AUTHORIZATION, v))
}

/// LiteLLM's generic guardrail API.
pub struct Generic {
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    extra: Value,
}

impl Generic {
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, BuildError> {
        let base = required(p, "api_base")?;
        let url = if base.ends_with("/beta/litellm_basic_guardrail_api") {
            base
        } else {
            format!("{base}/beta/litellm_basic_guardrail_api")
        };
        let mut headers = Vec::new();
        if let Some(k) = param(p, "api_key") {
            let mut v = HeaderValue::from_str(&k)
                .map_err(|_| BuildError::Params("api_key is not a header value".into()))?;
            v.set_sensitive(true);
            headers.push((HeaderName::from_static("x-api-key"), v.clone()));
            headers.push(bearer(&k).map_err(BuildError::Params)?);
        }
        if let Some(Value::Object(h)) = p.get("headers") {
            for (k, v) in h {
                let (Ok(n), Some(Ok(v))) = (
                    HeaderName::try_from(k.as_str()),
                    v.as_str().map(HeaderValue::from_str),
                ) else {
                    return Err(BuildError::Params(format!("headers.{k}: not a header")));
                };
                headers.push((n, v));
            }
        }
        let extra = (p.get("additional_provider_specific_params").cloned())
            .unwrap_or(Value::Object(Map::new()));
        Ok(Self {
            url,
            headers,
            extra,
        })
    }

    pub async fn check(&self, texts: &[String], ctx: &Ctx<'_>) -> Result<Verdict, String> {
        let body = json!({
            "texts": texts,
            "input_type": ctx.side.input_type(),
            "litellm_call_id": ctx.call_id,
            "model": ctx.model,
            "request_data": ctx.request_data(),
            "additional_provider_specific_params": self.extra,
        });
        let v = post_json(ctx, &self.url, &self.headers, Bytes::from(body.to_string())).await?;
        match v.get("action").and_then(Value::as_str).unwrap_or("NONE") {
            "BLOCKED" => {
                let why = (v.get("blocked_reason").and_then(Value::as_str))
                    .unwrap_or("Blocked by guardrail");
                Ok(Verdict::block(400, why.to_string()))
            }
            "GUARDRAIL_INTERVENED" => match v.get("texts").and_then(Value::as_array) {
                Some(t) if t.len() == texts.len() => Ok(Verdict::Rewrite(
                    t.iter()
                        .map(|s| s.as_str().unwrap_or_default().to_string())
                        .collect(),
                )),
                _ => Ok(Verdict::Pass),
            },
            "NONE" => Ok(Verdict::Pass),
            other => Err(format!("unknown action '{other}'")),
        }
    }
}

/// Lakera Guard v2.
pub struct Lakera {
    url: String,
    auth: Option<(HeaderName, HeaderValue)>,
    project_id: Option<String>,
}

impl Lakera {
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, BuildError> {
        let base = param(p, "api_base").unwrap_or_else(|| "https://api.lakera.ai".into());
        let auth = match param(p, "api_key") {
            Some(k) => Some(bearer(&k).map_err(BuildError::Params)?),
            None => None,
        };
        Ok(Self {
            url: format!("{base}/v2/guard"),
            auth,
            project_id: param(p, "project_id"),
        })
    }

    pub async fn check(&self, texts: &[String], ctx: &Ctx<'_>) -> Result<Verdict, String> {
        let role = match ctx.side {
            super::texts::Side::Request => "user",
            super::texts::Side::Response => "assistant",
        };
        let messages: Vec<Value> = (texts.iter())
            .map(|t| json!({"role": role, "content": t}))
            .collect();
        let mut body = json!({"messages": messages, "breakdown": false});
        if let Some(p) = &self.project_id {
            body["project_id"] = json!(p);
        }
        let headers: Vec<_> = self.auth.iter().cloned().collect();
        let v = post_json(ctx, &self.url, &headers, Bytes::from(body.to_string())).await?;
        match v.get("flagged").and_then(Value::as_bool) {
            Some(true) => Ok(Verdict::block(400, "Violated guardrail policy".into())),
            Some(false) => Ok(Verdict::Pass),
            None => Err("answer has no `flagged`".into()),
        }
    }
}

/// Amazon Bedrock's ApplyGuardrail.
pub struct Bedrock {
    url: String,
    region: String,
    creds: sigv4::Credentials,
}

impl Bedrock {
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, BuildError> {
        let id = required(p, "guardrailIdentifier")?;
        let version = param(p, "guardrailVersion").unwrap_or_else(|| "DRAFT".into());
        let region = param(p, "aws_region_name")
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        let base = param(p, "api_base")
            .or_else(|| param(p, "aws_bedrock_runtime_endpoint"))
            .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
        let creds = sigv4::Credentials {
            access_key_id: param(p, "aws_access_key_id")
                .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
                .unwrap_or_default(),
            secret_access_key: param(p, "aws_secret_access_key")
                .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok())
                .unwrap_or_default(),
            session_token: param(p, "aws_session_token"),
        };
        if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
            return Err(BuildError::Params(
                "aws_access_key_id and aws_secret_access_key are required".into(),
            ));
        }
        let plain = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        };
        if !plain(&id) || !plain(&version) {
            return Err(BuildError::Params(
                "guardrailIdentifier and guardrailVersion: letters, digits, - _ . : only".into(),
            ));
        }
        Ok(Self {
            url: format!("{base}/guardrail/{id}/version/{version}/apply"),
            region,
            creds,
        })
    }

    pub async fn check(&self, texts: &[String], ctx: &Ctx<'_>) -> Result<Verdict, String> {
        let source = match ctx.side {
            super::texts::Side::Request => "INPUT",
            super::texts::Side::Response => "OUTPUT",
        };
        let content: Vec<Value> = (texts.iter())
            .map(|t| json!({"text": {"text": t}}))
            .collect();
        let body = Bytes::from(json!({"source": source, "content": content}).to_string());
        let signed = sigv4::sign(
            &sigv4::HttpRequest {
                method: "POST",
                uri: &self.url,
                headers: &[("content-type", "application/json")],
                body: &body,
            },
            &self.creds,
            &self.region,
            "bedrock",
            SystemTime::now(),
        )
        .map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        for (k, v) in signed {
            let (Ok(n), Ok(mut v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) else {
                return Err("bad signature header".into());
            };
            v.set_sensitive(true);
            headers.push((n, v));
        }
        let v = post_json(ctx, &self.url, &headers, body).await?;
        match v.get("action").and_then(Value::as_str) {
            Some("GUARDRAIL_INTERVENED") => {
                let why = (v.pointer("/outputs/0/text").and_then(Value::as_str))
                    .unwrap_or("Violated guardrail policy");
                Ok(Verdict::block(400, why.to_string()))
            }
            Some(_) => Ok(Verdict::Pass),
            None => Err("answer has no `action`".into()),
        }
    }
}

/// Microsoft Presidio: PII found by the analyzer, masked by the anonymizer.
pub struct Presidio {
    analyzer: String,
    anonymizer: String,
    language: String,
    /// Entity types to look for (`pii_entities_config` keys; empty: all).
    entities: Vec<String>,
    /// Entity types that block instead of being masked.
    block: Vec<String>,
    /// Put the original values back into the answer.
    pub output_parse_pii: bool,
}

impl Presidio {
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, BuildError> {
        let from_env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        let analyzer = param(p, "presidio_analyzer_api_base")
            .or_else(|| from_env("PRESIDIO_ANALYZER_API_BASE"))
            .ok_or_else(|| BuildError::Params("`presidio_analyzer_api_base` is required".into()))?;
        let anonymizer = param(p, "presidio_anonymizer_api_base")
            .or_else(|| from_env("PRESIDIO_ANONYMIZER_API_BASE"))
            .ok_or_else(|| {
                BuildError::Params("`presidio_anonymizer_api_base` is required".into())
            })?;
        let mut entities = Vec::new();
        let mut block = Vec::new();
        if let Some(Value::Object(c)) = p.get("pii_entities_config") {
            for (k, v) in c {
                entities.push(k.clone());
                if v.as_str().is_some_and(|a| a.eq_ignore_ascii_case("BLOCK")) {
                    block.push(k.clone());
                }
            }
        }
        Ok(Self {
            analyzer: format!("{}/analyze", analyzer.trim_end_matches('/')),
            anonymizer: format!("{}/anonymize", anonymizer.trim_end_matches('/')),
            language: param(p, "presidio_language").unwrap_or_else(|| "en".into()),
            entities,
            block,
            output_parse_pii: p.get("output_parse_pii").and_then(Value::as_bool) == Some(true),
        })
    }

    /// Mask each text; note `(mask, original)` pairs in `ctx.pii` for the answer.
    pub async fn check(&self, texts: &[String], ctx: &Ctx<'_>) -> Result<Verdict, String> {
        let mut out = texts.to_vec();
        let mut changed = false;
        for t in out.iter_mut() {
            if t.is_empty() {
                continue;
            }
            let mut q = json!({"text": t, "language": self.language});
            if !self.entities.is_empty() {
                q["entities"] = json!(self.entities);
            }
            let found = post_json(ctx, &self.analyzer, &[], Bytes::from(q.to_string())).await?;
            let Some(results) = found.as_array() else {
                return Err("analyzer answer is not a list".into());
            };
            if results.is_empty() {
                continue;
            }
            if let Some(e) = (results.iter())
                .filter_map(|r| r.get("entity_type").and_then(Value::as_str))
                .find(|e| self.block.iter().any(|b| b == e))
            {
                return Ok(Verdict::block(
                    400,
                    format!("Blocked PII entity detected: {e}"),
                ));
            }
            let q = json!({"text": t, "analyzer_results": results});
            let masked = post_json(ctx, &self.anonymizer, &[], Bytes::from(q.to_string())).await?;
            let Some(new) = masked.get("text").and_then(Value::as_str) else {
                return Err("anonymizer answer has no `text`".into());
            };
            if self.output_parse_pii {
                remember(t, results, &masked, ctx);
            }
            *t = new.to_string();
            changed = true;
        }
        Ok(if changed {
            Verdict::Rewrite(out)
        } else {
            Verdict::Pass
        })
    }
}

/// Pair the anonymizer's items (in the masked text) with the analyzer's spans (in `original`),
/// both in text order.
fn remember(original: &str, results: &[Value], masked: &Value, ctx: &Ctx<'_>) {
    let span = |v: &Value| {
        let s = v.get("start").and_then(Value::as_u64)? as usize;
        let e = v.get("end").and_then(Value::as_u64)? as usize;
        Some((s, e))
    };
    let mut spans: Vec<(usize, usize)> = results.iter().filter_map(span).collect();
    spans.sort_unstable();
    spans.dedup();
    let mut items: Vec<(usize, String)> = (masked.get("items").and_then(Value::as_array))
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let s = i.get("start").and_then(Value::as_u64)? as usize;
            Some((s, i.get("text").and_then(Value::as_str)?.to_string()))
        })
        .collect();
    items.sort_unstable();
    let Ok(mut pii) = ctx.pii.lock() else {
        return;
    };
    for ((s, e), (_, token)) in spans.iter().zip(items) {
        if let Some(orig) = original.get(*s..*e)
            && !pii.iter().any(|(t, _)| *t == token)
        {
            pii.push((token, orig.to_string()));
        }
    }
}

/// Put the originals of masked PII back into answer texts.
pub fn unmask(texts: &[String], pii: &[(String, String)]) -> Option<Vec<String>> {
    let mut out = None;
    for (i, t) in texts.iter().enumerate() {
        if pii.iter().any(|(tok, _)| t.contains(tok.as_str())) {
            let mut s = t.clone();
            for (tok, orig) in pii {
                s = s.replace(tok.as_str(), orig);
            }
            out.get_or_insert_with(|| texts.to_vec())[i] = s;
        }
    }
    out
}

/// OpenAI's moderation endpoint, called on a model group's deployment.
pub struct Moderation {
    /// The model group (default `omni-moderation-latest`).
    group: String,
}

impl Moderation {
    pub fn from_params(p: &Map<String, Value>) -> Self {
        Self {
            group: param(p, "model").unwrap_or_else(|| "omni-moderation-latest".into()),
        }
    }

    pub async fn check(&self, texts: &[String], ctx: &Ctx<'_>) -> Result<Verdict, String> {
        let resolved = (ctx.models.resolve(&self.group))
            .map_err(|e| format!("moderation model group: {e}"))?;
        let dep = resolved.pick();
        let url = (dep.endpoints.as_ref())
            .and_then(|e| e.at("/moderations"))
            .ok_or_else(|| format!("model group '{}' has no /moderations", self.group))?;
        let body = json!({"model": dep.upstream_model, "input": texts.join("\n")});
        let v = post_json(
            ctx,
            &url.to_string(),
            &dep.headers,
            Bytes::from(body.to_string()),
        )
        .await?;
        let flagged = (v.get("results").and_then(Value::as_array)).is_some_and(|r| {
            r.iter()
                .any(|x| x.get("flagged") == Some(&Value::Bool(true)))
        });
        Ok(if flagged {
            Verdict::block(400, "Violated OpenAI moderation policy".into())
        } else {
            Verdict::Pass
        })
    }
}
