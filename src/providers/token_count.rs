//! Token counts as LiteLLM's `token_counter` makes them (what `/utils/token_counter` answers):
//! tiktoken's BPE encodings through the tiktoken-rs crate (cl100k_base, o200k_base; their rank
//! files are embedded and parsed on first use), the encoding chosen as LiteLLM chooses it, a
//! text counted whole, chat messages with OpenAI's per-message overhead (3 tokens a message,
//! 1 more for a `name`, 3 for the reply's priming), tool definitions in OpenAI's TypeScript-like
//! rendering. Images count 85 tokens each (LiteLLM's `low`/`auto` figure; `high` images are not
//! measured). Models LiteLLM counts with a Hugging Face tokenizer are counted with cl100k_base
//! here.

use std::sync::OnceLock;

use serde_json::{Map, Value};
use tiktoken_rs::CoreBPE;

/// Tokens of an image block (OpenAI's base figure).
const IMAGE_TOKENS: u64 = 85;

/// A tiktoken encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Cl100k,
    O200k,
}

/// Why a request cannot be counted.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error("{0}")]
    Invalid(String),
    #[error("the {0} tokenizer could not be loaded")]
    Tokenizer(&'static str),
}

impl Encoding {
    /// The encoding LiteLLM counts `model` with: a model that is not one of OpenAI's chat
    /// models (`openai_chat`: the price map's `openai` chat models) is counted as
    /// `gpt-3.5-turbo` (cl100k_base); `gpt-4o*` and the models tiktoken maps to o200k_base
    /// (`o1`, `o3`, `gpt-4.1`, `gpt-5`, ...) with o200k_base; the rest with cl100k_base.
    pub fn for_model(model: &str, openai_chat: bool) -> Encoding {
        if !openai_chat {
            return Encoding::Cl100k;
        }
        if model.contains("gpt-4o") {
            return Encoding::O200k;
        }
        use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};
        match get_tokenizer(model) {
            Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => Encoding::O200k,
            _ => Encoding::Cl100k,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100k => "cl100k_base",
            Encoding::O200k => "o200k_base",
        }
    }

    /// The loaded encoding (parsed once; a few hundred milliseconds the first time: call from
    /// a blocking thread).
    fn bpe(self) -> Result<&'static CoreBPE, CountError> {
        static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
        static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
        let loaded = match self {
            Encoding::Cl100k => CL100K.get_or_init(|| tiktoken_rs::cl100k_base().ok()),
            Encoding::O200k => O200K.get_or_init(|| tiktoken_rs::o200k_base().ok()),
        };
        loaded.as_ref().ok_or(CountError::Tokenizer(self.name()))
    }
}

/// A loaded encoding that counts.
pub struct Counter(&'static CoreBPE);

impl Counter {
    pub fn new(encoding: Encoding) -> Result<Self, CountError> {
        encoding.bpe().map(Counter)
    }

    /// The tokens of `text` (special tokens counted as plain text, as LiteLLM does).
    pub fn text(&self, text: &str) -> u64 {
        self.0.encode_ordinary(text).len() as u64
    }

    /// The tokens of chat `messages` with the reply's priming, and `tools` and `tool_choice`
    /// when given (LiteLLM's `token_counter(messages=..., tools=..., tool_choice=...)`).
    pub fn messages(
        &self,
        messages: &[Value],
        tools: Option<&[Value]>,
        tool_choice: Option<&Value>,
    ) -> Result<u64, CountError> {
        let mut n = 0u64;
        for m in messages {
            let Some(m) = m.as_object() else {
                return Err(CountError::Invalid("each message must be an object".into()));
            };
            n += 3 + self.message(m)?;
        }
        // every reply is primed with <|start|>assistant<|message|>
        let mut extra: i64 = 3;
        let tools = tools.filter(|t| !t.is_empty());
        if let Some(tools) = tools {
            extra += self.text(&function_definitions(tools)) as i64 + 9;
            if messages.iter().any(|m| m["role"] == "system") {
                extra -= 4;
            }
        }
        match tool_choice {
            Some(Value::String(s)) if s == "none" => extra += 1,
            Some(Value::Object(c)) => {
                let name = c
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                extra += 7 + self.text(name) as i64;
            }
            _ => {}
        }
        Ok(n.saturating_add_signed(extra))
    }

    fn message(&self, m: &Map<String, Value>) -> Result<u64, CountError> {
        let mut n = 0;
        for (key, value) in m {
            n += match (key.as_str(), value) {
                (_, Value::Null) => 0,
                ("tool_calls", Value::Array(calls)) => {
                    let mut t = 0;
                    for c in calls {
                        let Some(f) = c.get("function") else {
                            return Err(CountError::Invalid(
                                "a tool call must have a function".into(),
                            ));
                        };
                        t += self.text(&as_text(f.get("arguments").unwrap_or(&Value::Null)));
                    }
                    t
                }
                ("tool_calls", _) => {
                    return Err(CountError::Invalid("tool_calls must be a list".into()));
                }
                ("function_call", Value::Object(f)) => {
                    self.text(&as_text(f.get("arguments").unwrap_or(&Value::Null)))
                }
                ("name", Value::String(s)) => self.text(s) + 1,
                (_, Value::String(s)) => self.text(s),
                ("content", Value::Array(parts)) => self.content(parts)?,
                _ => 0,
            };
        }
        Ok(n)
    }

    /// The tokens of a content list (OpenAI's and Anthropic's blocks).
    fn content(&self, parts: &[Value]) -> Result<u64, CountError> {
        let mut n = 0;
        for p in parts {
            if let Value::String(s) = p {
                n += self.text(s);
                continue;
            }
            let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
            let text = |field: &str| p.get(field).map(as_text).unwrap_or_default();
            n += match kind {
                "text" => self.text(&text("text")),
                "image_url" | "image" => IMAGE_TOKENS,
                "thinking" | "redacted_thinking" => self.text(&text("thinking")),
                "tool_reference" => self.text(&text("tool_name")),
                "document" => self.document(p)?,
                "file" => {
                    let f = p.get("file");
                    let name = f.and_then(|f| f.get("filename")).and_then(Value::as_str);
                    let data = f.and_then(|f| f.get("file_data")).and_then(Value::as_str);
                    name.map_or(0, |s| self.text(s))
                        + data.filter(|d| !d.is_empty()).map_or(0, |_| IMAGE_TOKENS)
                }
                "tool_use" | "tool_result" => self.tool_block(p)?,
                other => {
                    return Err(CountError::Invalid(format!(
                        "Invalid content item type: {other}. Expected str or dict with 'type' field (text, image_url, image, document, file, tool_use, tool_result, thinking, redacted_thinking, tool_reference)."
                    )));
                }
            };
        }
        Ok(n)
    }

    fn document(&self, d: &Value) -> Result<u64, CountError> {
        let meta: u64 = ["title", "context"]
            .iter()
            .filter_map(|f| d.get(*f).and_then(Value::as_str))
            .map(|s| self.text(s))
            .sum();
        let source = &d["source"];
        Ok(meta
            + match (source["type"].as_str(), &source["content"]) {
                (Some("text"), _) => self.text(source["data"].as_str().unwrap_or_default()),
                (Some("content"), Value::String(s)) => self.text(s),
                (Some("content"), Value::Array(parts)) => self.content(parts)?,
                _ => IMAGE_TOKENS,
            })
    }

    /// An Anthropic `tool_use` / `tool_result` block: its fields but ids and flags.
    fn tool_block(&self, b: &Value) -> Result<u64, CountError> {
        let fields: &[&str] = match b["type"].as_str() {
            Some("tool_use") => &["name", "input"],
            _ => &["content"],
        };
        let mut n = 0;
        for f in fields {
            n += match b.get(*f) {
                Some(Value::String(s)) => self.text(s),
                Some(Value::Array(parts)) => self.content(parts)?,
                Some(v @ Value::Object(_)) => self.text(&v.to_string()),
                _ => 0,
            };
        }
        Ok(n)
    }
}

/// A value as text: a string as it is, anything else as JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Tool definitions as OpenAI renders them into the prompt (TypeScript-like), which is what is
/// counted: OpenAI's `{type: function, function}`, Gemini's `function_declarations`, and
/// Anthropic's `{name, description, input_schema}`.
pub fn function_definitions(tools: &[Value]) -> String {
    let mut lines = vec!["namespace functions {".to_string(), String::new()];
    for tool in tools {
        let Some(t) = tool.as_object() else { continue };
        let declarations = t
            .get("function_declarations")
            .or_else(|| t.get("functionDeclarations"));
        if let Some(f) = t.get("function").filter(|f| f.is_object()) {
            function_lines(f, &mut lines);
        } else if let Some(Value::Array(decls)) = declarations {
            decls.iter().for_each(|d| function_lines(d, &mut lines));
        } else {
            let params = t
                .get("input_schema")
                .or_else(|| t.get("parameters"))
                .filter(|p| p.is_object())
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            let f = serde_json::json!({
                "name": t.get("name"),
                "description": t.get("description"),
                "parameters": params,
            });
            function_lines(&f, &mut lines);
        }
    }
    lines.push("} // namespace functions".into());
    lines.join("\n")
}

fn function_lines(f: &Value, lines: &mut Vec<String>) {
    let Some(name) = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return;
    };
    if let Some(d) = f
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        lines.push(format!("// {d}"));
    }
    let params = f.get("parameters").filter(|p| p.is_object());
    let has_properties = params
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    match params {
        Some(p) if has_properties => {
            lines.push(format!("type {name} = (_: {{"));
            lines.push(object_parameters(p, 0));
            lines.push("}) => any;".into());
        }
        _ => lines.push(format!("type {name} = () => any;")),
    }
    lines.push(String::new());
}

fn object_parameters(p: &Value, indent: usize) -> String {
    let Some(props) = p.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    let required = p.get("required").and_then(Value::as_array);
    let mut lines = Vec::new();
    for (key, prop) in props {
        if let Some(d) = prop
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            lines.push(format!("// {d}"));
        }
        let optional = match required {
            Some(r) if r.iter().any(|k| k == key) => "",
            _ => "?",
        };
        lines.push(format!("{key}{optional}: {},", type_of(prop, indent)));
    }
    let pad = " ".repeat(indent);
    lines
        .iter()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn type_of(p: &Value, indent: usize) -> String {
    let enumerated = |p: &Value| {
        p.get("enum").and_then(Value::as_array).map(|items| {
            items
                .iter()
                .map(|i| format!("\"{}\"", as_text(i)))
                .collect::<Vec<_>>()
                .join(" | ")
        })
    };
    match p.get("type").and_then(Value::as_str) {
        Some("string") => enumerated(p).unwrap_or_else(|| "string".into()),
        Some("array") => format!("{}[]", type_of(&p["items"], indent)),
        Some("object") => format!("{{\n{}\n}}", object_parameters(p, indent + 2)),
        Some("integer" | "number") => enumerated(p).unwrap_or_else(|| "number".into()),
        Some("boolean") => "boolean".into(),
        Some("null") => "null".into(),
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn encodings_as_litellm_chooses_them() {
        assert_eq!(Encoding::for_model("gpt-4o-mini", true), Encoding::O200k);
        assert_eq!(Encoding::for_model("gpt-4.1", true), Encoding::O200k);
        assert_eq!(Encoding::for_model("gpt-4", true), Encoding::Cl100k);
        assert_eq!(Encoding::for_model("gpt-3.5-turbo", true), Encoding::Cl100k);
        // not an OpenAI chat model: counted as gpt-3.5-turbo
        assert_eq!(
            Encoding::for_model("claude-3-5-sonnet", false),
            Encoding::Cl100k
        );
        assert_eq!(Encoding::for_model("gpt-4o", false), Encoding::Cl100k);
    }

    #[test]
    fn text_and_messages_count_like_openai() {
        let c = Counter::new(Encoding::Cl100k).unwrap();
        assert_eq!(c.text("hello world"), 2);
        assert_eq!(c.text("<|endoftext|>"), 7, "special tokens counted as text");
        // the OpenAI cookbook's rule: 3 a message + its strings, 3 for the reply
        let msgs = [json!({"role": "user", "content": "hello world"})];
        assert_eq!(c.messages(&msgs, None, None).unwrap(), 3 + 1 + 2 + 3);
        let named = [json!({"role": "user", "name": "bob", "content": "hello world"})];
        assert_eq!(
            c.messages(&named, None, None).unwrap(),
            3 + 1 + 2 + (c.text("bob") + 1) + 3
        );
        let parts = [json!({"role": "user", "content": [
            {"type": "text", "text": "hello world"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]})];
        assert_eq!(c.messages(&parts, None, None).unwrap(), 3 + 1 + 2 + 85 + 3);
        let bad = [json!({"role": "user", "content": [{"type": "video"}]})];
        assert!(c.messages(&bad, None, None).is_err());
    }

    #[test]
    fn tools_are_rendered_and_counted() {
        let tools = [
            json!({"type": "function", "function": {"name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"]}}}),
        ];
        assert_eq!(
            function_definitions(&tools),
            "namespace functions {\n\n// Weather of a city\ntype get_weather = (_: {\n// The city\ncity: string,\nunit?: \"c\" | \"f\",\n}) => any;\n\n} // namespace functions"
        );
        let c = Counter::new(Encoding::Cl100k).unwrap();
        let msgs = [json!({"role": "user", "content": "hi"})];
        let bare = c.messages(&msgs, None, None).unwrap();
        let with = c.messages(&msgs, Some(&tools), None).unwrap();
        assert_eq!(with, bare + c.text(&function_definitions(&tools)) + 9);
    }
}
