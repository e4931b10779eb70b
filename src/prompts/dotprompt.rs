//! A `.prompt` file (Google's dotprompt, as LiteLLM reads it): YAML front matter between `---`
//! lines (`model`, `input.schema`, `output`, and the call's parameters such as `temperature`),
//! then the template. Without front matter the whole text is the template.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::PromptError;

/// The longest template text read (a file, `dotprompt_content`, or a `/prompts/test` body).
pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// Front matter keys that are not call parameters: `model` replaces the request's, `input`
/// and `output` describe the variables and the answer.
const RESERVED: &[&str] = &["model", "input", "output"];

/// Dotprompt's own keys that describe the file, never sent to a provider.
const DESCRIPTIVE: &[&str] = &["name", "variant", "version", "description", "ext"];

/// LiteLLM's pattern: `---`, the YAML, a `---` line, the template (which may be empty).
static FRONT_MATTER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?s)\A---\s*\n(.*?)\n---\s*\n(.*)\z").ok());

/// A parsed prompt: its front matter and template text.
#[derive(Debug, Clone, PartialEq)]
pub struct Dotprompt {
    /// The template, trimmed.
    pub content: String,
    /// The front matter (`{}` without one).
    pub metadata: Map<String, Value>,
}

impl Dotprompt {
    /// Parse `.prompt` text (400 on malformed front matter or over [`MAX_TEMPLATE_BYTES`]).
    pub fn parse(text: &str) -> Result<Self, PromptError> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(PromptError::invalid(format!(
                "the prompt is longer than {MAX_TEMPLATE_BYTES} bytes"
            )));
        }
        let found = FRONT_MATTER
            .as_ref()
            .and_then(|re| re.captures(text))
            .and_then(|c| Some((c.get(1)?.as_str(), c.get(2)?.as_str())));
        let Some((yaml, content)) = found else {
            return Ok(Self {
                content: text.trim().to_string(),
                metadata: Map::new(),
            });
        };
        Ok(Self {
            content: content.trim().to_string(),
            metadata: front_matter(yaml)?,
        })
    }

    /// From LiteLLM's JSON form `{content, metadata}`.
    pub fn from_json(v: &Value) -> Result<Self, PromptError> {
        let content = match v.get("content") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(PromptError::invalid("`content` must be a string")),
        };
        if content.len() > MAX_TEMPLATE_BYTES {
            return Err(PromptError::invalid(format!(
                "the prompt is longer than {MAX_TEMPLATE_BYTES} bytes"
            )));
        }
        let metadata = match v.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(PromptError::invalid("`metadata` must be a map")),
        };
        let p = Self {
            content: content.to_string(),
            metadata,
        };
        p.model()?;
        Ok(p)
    }

    /// The front matter's `model`, which replaces the request's.
    pub fn model(&self) -> Result<Option<&str>, PromptError> {
        match self.metadata.get("model") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(m)) if !m.trim().is_empty() => Ok(Some(m.as_str())),
            Some(_) => Err(PromptError::invalid(
                "the front matter's `model` must be a model name",
            )),
        }
    }

    /// `input.schema`: variable name (`name?` when optional) -> type.
    pub fn schema(&self) -> Option<&Map<String, Value>> {
        self.metadata.get("input")?.get("schema")?.as_object()
    }

    /// The call parameters the front matter sets (every key but `model`, `input`, `output` and
    /// dotprompt's descriptive ones; `config`'s keys are lifted to the top).
    pub fn params(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in &self.metadata {
            if RESERVED.contains(&k.as_str()) || DESCRIPTIVE.contains(&k.as_str()) {
                continue;
            }
            match (k.as_str(), v) {
                ("config", Value::Object(c)) => {
                    out.extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }
}

/// The front matter as a map (empty YAML is an empty map).
fn front_matter(yaml: &str) -> Result<Map<String, Value>, PromptError> {
    if yaml.trim().is_empty() {
        return Ok(Map::new());
    }
    let v: Value = serde_saphyr::from_str(yaml)
        .map_err(|e| PromptError::invalid(format!("invalid YAML front matter: {e}")))?;
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => {
            let p = Dotprompt {
                content: String::new(),
                metadata: m,
            };
            p.model()?;
            Ok(p.metadata)
        }
        _ => Err(PromptError::invalid("the front matter must be a YAML map")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_front_matter_and_template() {
        let p = Dotprompt::parse(
            "---\nmodel: gpt-4o\ntemperature: 0.7\ninput:\n  schema:\n    name: string\n---\n\nUser: Hello {{ name }}\n",
        )
        .unwrap();
        assert_eq!(p.content, "User: Hello {{ name }}");
        assert_eq!(p.model().unwrap(), Some("gpt-4o"));
        assert_eq!(
            p.params(),
            serde_json::json!({"temperature": 0.7})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(p.schema().unwrap()["name"], "string");
    }

    #[test]
    fn without_front_matter_everything_is_the_template() {
        for text in [
            "Hello {{ x }}",
            "---\nno closing line",
            "---\nmodel: a\n---",
        ] {
            let p = Dotprompt::parse(text).unwrap();
            assert_eq!(p.content, text.trim());
            assert!(p.metadata.is_empty());
        }
        let p = Dotprompt::parse("---\n\n---\nbody").unwrap();
        assert_eq!(p.content, "body");
    }

    #[test]
    fn config_is_lifted_and_descriptions_dropped() {
        let p = Dotprompt::parse(
            "---\nname: greet\ndescription: d\nconfig:\n  temperature: 0.1\n  max_tokens: 9\nmax_tokens: 5\n---\nx",
        )
        .unwrap();
        let params = p.params();
        assert_eq!(params["temperature"], 0.1);
        assert!(!params.contains_key("name") && !params.contains_key("description"));
    }

    #[test]
    fn bad_front_matter_is_refused() {
        assert!(Dotprompt::parse("---\n[1, 2]\n---\nx").is_err());
        assert!(Dotprompt::parse("---\nmodel: [a]\n---\nx").is_err());
        assert!(Dotprompt::parse("---\na: [\n---\nx").is_err());
        let big = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(Dotprompt::parse(&big).is_err());
    }
}
