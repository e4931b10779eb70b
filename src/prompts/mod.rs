//! Prompt templates that requests use by `prompt_id` (with `prompt_variables`, and
//! `prompt_version` or an id ending `.v{N}` for an older version): the config's `prompts`
//! (read at startup) and `"TianjiLLM_PromptTable"` (loaded at startup, reloaded on every
//! instance on `Changed::Prompts` through the invalidation channel), held in memory so the
//! request path reads no database. [`dotprompt`] reads a `.prompt` (front matter, template),
//! [`render`] renders it (bounded), [`messages`] splits the result into chat messages by role
//! marker, [`access`] decides who may use which prompt.

pub mod access;
pub mod dotprompt;
pub mod messages;
pub mod render;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::config::prompts::{DOTPROMPT, PromptEntry, PromptParams};
use crate::store::{Query, Store, StoreError};
pub use dotprompt::Dotprompt;

/// Why a prompt could not be found, used or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("Prompt '{0}' not found")]
    NotFound(String),
    #[error("Prompt '{0}' is not allowed for your key/team. Contact proxy admin for access.")]
    NotAllowed(String),
    #[error("Missing prompt variable '{0}': pass it in prompt_variables")]
    MissingVariable(String),
    #[error("Invalid type for prompt variable '{name}': expected {expected}, got {got}")]
    VariableType {
        name: String,
        expected: String,
        got: &'static str,
    },
    /// The render needed more work or made more output than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A malformed template, front matter or prompt definition.
    #[error("{0}")]
    Invalid(String),
    /// A request member of the wrong shape.
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PromptError {
    pub fn invalid(message: impl Into<String>) -> Self {
        PromptError::Invalid(message.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PromptError::NotFound(_) => StatusCode::NOT_FOUND,
            PromptError::NotAllowed(_) => StatusCode::FORBIDDEN,
            PromptError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The request member at fault.
    pub fn param(&self) -> Option<&str> {
        match self {
            PromptError::NotFound(_) | PromptError::NotAllowed(_) => Some("prompt_id"),
            PromptError::MissingVariable(_) | PromptError::VariableType { .. } => {
                Some("prompt_variables")
            }
            PromptError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// One version of a prompt.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// The id requests name (without a version suffix).
    pub id: String,
    /// 1 for config prompts.
    pub version: i32,
    /// Defined in the config file (the management API cannot change it).
    pub from_config: bool,
    /// `tianji_params` as configured or stored (answered as `litellm_params`).
    pub params: Value,
    /// `prompt_info`, its `prompt_type` `config` or `db`.
    pub info: Value,
    pub created_at: Value,
    pub updated_at: Value,
    pub template: Dotprompt,
}

impl Prompt {
    /// The template's messages for `vars`: `input.schema` checked, rendered, split by role.
    pub fn messages(&self, vars: &Map<String, Value>) -> Result<Vec<Value>, PromptError> {
        if let Some(schema) = self.template.schema() {
            render::check_schema(schema, vars)?;
        }
        let text = render::render(&self.template.content, vars)?;
        Ok(messages::messages(&text))
    }

    /// LiteLLM's `PromptSpec`: `{prompt_id, litellm_params, prompt_info, created_at,
    /// updated_at, version}`.
    pub fn spec(&self) -> Value {
        json!({
            "prompt_id": self.id,
            "litellm_params": self.params,
            "prompt_info": self.info,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "version": self.version,
        })
    }

    /// LiteLLM's `PromptTemplateBase`: `{litellm_prompt_id, content, metadata}`.
    pub fn raw_template(&self) -> Value {
        let registered = self
            .params
            .get("prompt_id")
            .and_then(Value::as_str)
            .unwrap_or(&self.id);
        json!({
            "litellm_prompt_id": registered,
            "content": self.template.content,
            "metadata": self.template.metadata,
        })
    }
}

/// `id.v{N}` split into `id` and N, when it has that form.
pub fn split_version(asked: &str) -> Option<(&str, i32)> {
    let (base, n) = asked.rsplit_once(".v")?;
    if base.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, n.parse().ok()?))
}

/// Every prompt, each id's versions in ascending order.
#[derive(Debug, Default)]
pub struct Prompts {
    by_id: HashMap<String, Vec<Arc<Prompt>>>,
}

impl Prompts {
    fn new(list: impl IntoIterator<Item = Arc<Prompt>>) -> Self {
        let mut by_id: HashMap<String, Vec<Arc<Prompt>>> = HashMap::new();
        for p in list {
            by_id.entry(p.id.clone()).or_default().push(p);
        }
        for versions in by_id.values_mut() {
            versions.sort_by_key(|p| p.version);
        }
        Self { by_id }
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The prompt a request asks for: `asked` (an id, or `id.v{N}`) at `version` (else the
    /// suffix's, else the latest).
    pub fn find(&self, asked: &str, version: Option<i32>) -> Option<&Arc<Prompt>> {
        let (id, version) = match self.by_id.contains_key(asked) {
            true => (asked, version),
            false => {
                let (id, n) = split_version(asked)?;
                (id, version.or(Some(n)))
            }
        };
        let versions = self.by_id.get(id)?;
        match version {
            Some(v) => versions.iter().find(|p| p.version == v),
            None => versions.last(),
        }
    }

    /// Every version of `id`, oldest first.
    pub fn versions(&self, id: &str) -> &[Arc<Prompt>] {
        self.by_id.get(id).map_or(&[], Vec::as_slice)
    }

    /// The latest version of every prompt, by id.
    pub fn latest(&self) -> Vec<&Arc<Prompt>> {
        let mut out: Vec<&Arc<Prompt>> = self.by_id.values().filter_map(|v| v.last()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// The live prompts: the config's, plus the database's (replaced whole when one changes).
#[derive(Debug, Default)]
pub struct Registry {
    config: Vec<Arc<Prompt>>,
    live: ArcSwap<Prompts>,
}

impl Registry {
    /// The config's prompts, their templates read and checked; entries of an integration
    /// Tianji does not serve are left out (one warning line each).
    pub fn from_config(c: &Config) -> Result<(Self, Vec<String>), String> {
        let global = c.tianji_settings.global_prompt_directory.as_deref();
        let mut config = Vec::new();
        let mut warnings = Vec::new();
        for (i, e) in c.prompts.iter().enumerate() {
            let path = format!("prompts[{i}] ({})", e.prompt_id);
            if e.tianji_params.prompt_integration != DOTPROMPT {
                warnings.push(format!(
                    "{path}: prompt_integration '{}' is not served (only '{DOTPROMPT}'); the prompt is left out",
                    e.tianji_params.prompt_integration
                ));
                continue;
            }
            let p = config_prompt(e, global).map_err(|err| format!("{path}: {err}"))?;
            if config.iter().any(|q: &Arc<Prompt>| q.id == p.id) {
                return Err(format!("{path}: prompt_id is defined twice"));
            }
            config.push(Arc::new(p));
        }
        let live = ArcSwap::from_pointee(Prompts::new(config.iter().cloned()));
        Ok((Self { config, live }, warnings))
    }

    pub fn load(&self) -> Arc<Prompts> {
        self.live.load_full()
    }

    /// Whether the config file defines `id` (the management API leaves it alone).
    pub fn in_config(&self, id: &str) -> bool {
        self.config.iter().any(|p| p.id == id)
    }

    /// Read the database's prompts; a row whose template cannot be read is left out, with a
    /// warning.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let rows = store.query(Query::ListPrompts, &[]).await?;
        let mut list = self.config.clone();
        for row in &rows {
            let v: Value = row.try_get(0).map_err(StoreError::from)?;
            match Prompt::from_row(&v) {
                Ok(p) if self.in_config(&p.id) => {
                    tracing::warn!(prompt = %p.id, "a stored prompt has the id of a config prompt; the config's is used");
                }
                Ok(p) => list.push(Arc::new(p)),
                Err(e) => {
                    tracing::warn!(prompt = %v["prompt_id"], version = %v["version"], error = %e, "skipping a stored prompt that cannot be read");
                }
            }
        }
        self.live.store(Arc::new(Prompts::new(list)));
        Ok(())
    }
}

/// A config entry as a prompt (its template read from where it says).
fn config_prompt(e: &PromptEntry, global: Option<&str>) -> Result<Prompt, PromptError> {
    let id = e.prompt_id.trim();
    if id.is_empty() {
        return Err(PromptError::invalid("prompt_id must not be empty"));
    }
    let p = &e.tianji_params;
    let registered = p.prompt_id.as_deref().unwrap_or(id);
    let template = match (&p.prompt_file, &p.prompt_directory) {
        (Some(file), _) => read_file(Path::new(file))?,
        (None, Some(dir)) => read_file(&Path::new(dir).join(format!("{registered}.prompt")))?,
        (None, None) => match inline(p, registered)? {
            Some(t) => t,
            None => match global {
                Some(dir) => read_file(&Path::new(dir).join(format!("{registered}.prompt")))?,
                None => {
                    return Err(PromptError::invalid(
                        "set prompt_file, prompt_directory, dotprompt_content or prompt_data (or tianji_settings.global_prompt_directory)",
                    ));
                }
            },
        },
    };
    render::check(&template.content)?;
    let mut info = e.prompt_info.clone().unwrap_or_else(|| json!({}));
    set_prompt_type(&mut info, "config");
    Ok(Prompt {
        id: id.to_string(),
        version: 1,
        from_config: true,
        params: serde_json::to_value(Params::of(p, registered)).unwrap_or_default(),
        info,
        created_at: Value::Null,
        updated_at: Value::Null,
        template,
    })
}

impl Prompt {
    /// A `TianjiLLM_PromptTable` row as a prompt.
    pub fn from_row(row: &Value) -> Result<Prompt, PromptError> {
        let id = row
            .get("prompt_id")
            .and_then(Value::as_str)
            .ok_or_else(|| PromptError::invalid("no prompt_id"))?;
        let version = row.get("version").and_then(Value::as_i64).unwrap_or(1);
        let params = row.get("tianji_params").cloned().unwrap_or(Value::Null);
        let template = stored_template(&params, id)?;
        let mut info = match row.get("prompt_info") {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => json!({}),
        };
        set_prompt_type(&mut info, "db");
        Ok(Prompt {
            id: id.to_string(),
            version: i32::try_from(version).unwrap_or(1),
            from_config: false,
            params,
            info,
            created_at: row.get("created_at").cloned().unwrap_or(Value::Null),
            updated_at: row.get("updated_at").cloned().unwrap_or(Value::Null),
            template,
        })
    }
}

/// The template of stored (or to be stored) `tianji_params`: `dotprompt_content` or
/// `prompt_data`, checked. Files are read only for config prompts.
pub fn stored_template(params: &Value, id: &str) -> Result<Dotprompt, PromptError> {
    let p: PromptParams = serde_json::from_value(params.clone())
        .map_err(|e| PromptError::invalid(format!("litellm_params: {e}")))?;
    if p.prompt_integration != DOTPROMPT {
        return Err(PromptError::invalid(format!(
            "litellm_params.prompt_integration must be '{DOTPROMPT}' (the integration Tianji serves)"
        )));
    }
    if p.prompt_file.is_some() || p.prompt_directory.is_some() {
        return Err(PromptError::invalid(
            "litellm_params: prompt_file and prompt_directory are read from the config file only; send the template as dotprompt_content (or prompt_data)",
        ));
    }
    let registered = p.prompt_id.as_deref().unwrap_or(id);
    let template = inline(&p, registered)?.ok_or_else(|| {
        PromptError::invalid(
            "litellm_params: send the template as dotprompt_content (or prompt_data)",
        )
    })?;
    render::check(&template.content)?;
    Ok(template)
}

/// The template given in the params themselves: `dotprompt_content`, else `prompt_data`
/// (`{content, metadata}`, or keyed by prompt id).
fn inline(p: &PromptParams, registered: &str) -> Result<Option<Dotprompt>, PromptError> {
    if let Some(text) = &p.dotprompt_content {
        return Dotprompt::parse(text).map(Some);
    }
    let Some(data) = &p.prompt_data else {
        return Ok(None);
    };
    let data = match data {
        Value::String(s) => serde_json::from_str(s)
            .map_err(|e| PromptError::invalid(format!("prompt_data is not JSON: {e}")))?,
        v => v.clone(),
    };
    let one = match data.as_object() {
        Some(o) if o.contains_key("content") => &data,
        Some(o) => match (o.get(registered), o.len()) {
            (Some(v), _) => v,
            (None, 1) => o.values().next().unwrap_or(&Value::Null),
            _ => {
                return Err(PromptError::invalid(format!(
                    "prompt_data has no entry for '{registered}'"
                )));
            }
        },
        None => return Err(PromptError::invalid("prompt_data must be a map")),
    };
    Dotprompt::from_json(one).map(Some)
}

/// Read a `.prompt` file (at most [`dotprompt::MAX_TEMPLATE_BYTES`]).
fn read_file(path: &Path) -> Result<Dotprompt, PromptError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| PromptError::invalid(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > dotprompt::MAX_TEMPLATE_BYTES as u64 {
        return Err(PromptError::invalid(format!(
            "{} is longer than {} bytes",
            path.display(),
            dotprompt::MAX_TEMPLATE_BYTES
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| PromptError::invalid(format!("cannot read {}: {e}", path.display())))?;
    Dotprompt::parse(&text)
}

fn set_prompt_type(info: &mut Value, kind: &str) {
    if let Some(o) = info.as_object_mut() {
        o.entry("prompt_type").or_insert_with(|| json!(kind));
    }
}

/// A config entry's params as answered (`prompt_id` filled in).
#[derive(serde::Serialize)]
struct Params<'a> {
    prompt_id: &'a str,
    prompt_integration: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_directory: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dotprompt_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_data: Option<&'a Value>,
    #[serde(flatten)]
    other: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    fn of(p: &'a PromptParams, registered: &'a str) -> Self {
        Self {
            prompt_id: registered,
            prompt_integration: &p.prompt_integration,
            prompt_file: p.prompt_file.as_deref(),
            prompt_directory: p.prompt_directory.as_deref(),
            dotprompt_content: p.dotprompt_content.as_deref(),
            prompt_data: p.prompt_data.as_ref(),
            other: &p.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(id: &str, version: i32) -> Arc<Prompt> {
        Arc::new(Prompt {
            id: id.into(),
            version,
            from_config: false,
            params: Value::Null,
            info: Value::Null,
            created_at: Value::Null,
            updated_at: Value::Null,
            template: Dotprompt::parse("x").unwrap(),
        })
    }

    #[test]
    fn finds_versions() {
        let ps = Prompts::new([prompt("a", 2), prompt("a", 1), prompt("b.v1x", 1)]);
        assert_eq!(ps.find("a", None).unwrap().version, 2);
        assert_eq!(ps.find("a", Some(1)).unwrap().version, 1);
        assert_eq!(ps.find("a.v1", None).unwrap().version, 1);
        assert_eq!(ps.find("a.v1", Some(2)).unwrap().version, 2);
        assert!(ps.find("a", Some(3)).is_none());
        assert!(ps.find("a.v", None).is_none());
        assert!(ps.find("b.v1x", None).is_some());
        assert_eq!(split_version("x.v12"), Some(("x", 12)));
        assert_eq!(split_version(".v1"), None);
        let latest: Vec<_> = ps
            .latest()
            .iter()
            .map(|p| (p.id.clone(), p.version))
            .collect();
        assert_eq!(latest, [("a".to_string(), 2), ("b.v1x".to_string(), 1)]);
    }

    #[test]
    fn stored_templates_come_from_the_params() {
        let p = json!({"prompt_integration": "dotprompt", "dotprompt_content": "---\nmodel: m\n---\nUser: {{ q }}"});
        assert_eq!(
            stored_template(&p, "x").unwrap().model().unwrap(),
            Some("m")
        );
        let p = json!({"prompt_integration": "dotprompt", "prompt_data": {"x": {"content": "hi", "metadata": {}}}});
        assert_eq!(stored_template(&p, "x").unwrap().content, "hi");
        for bad in [
            json!({"prompt_integration": "langfuse", "dotprompt_content": "x"}),
            json!({"prompt_integration": "dotprompt", "prompt_file": "/etc/passwd"}),
            json!({"prompt_integration": "dotprompt"}),
            json!({"prompt_integration": "dotprompt", "dotprompt_content": "{% for %}"}),
        ] {
            assert!(stored_template(&bad, "x").is_err(), "{bad}");
        }
    }
}
