//! Reading the parts of an OpenAI chat body that every translation reads the same way.

use serde_json::Value;

/// The `messages` list of a chat body.
pub(crate) fn messages(chat: &Value) -> Result<&Vec<Value>, &'static str> {
    chat.get("messages")
        .and_then(Value::as_array)
        .ok_or("messages must be a list")
}

/// The URL of an `image_url` content part (`{"image_url": {"url": ...}}` or the URL itself).
pub(crate) fn image_url(part: &Value) -> Result<&str, &'static str> {
    part.get("image_url")
        .and_then(|u| u.get("url").or(Some(u)))
        .and_then(Value::as_str)
        .ok_or("image_url.url must be a string")
}

/// An OpenAI `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolChoice<'a> {
    Auto,
    None,
    Required,
    /// `{"type": "function", "function": {"name": ...}}`.
    Named(&'a str),
}

/// The `tool_choice` of a chat body (`None` when it is absent or null); another string than
/// `auto`, `none` or `required`, or an object without a function name, is an error.
pub(crate) fn tool_choice(chat: &Value) -> Result<Option<ToolChoice<'_>>, String> {
    Ok(Some(match chat.get("tool_choice") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(format!("tool_choice `{other}` is not supported")),
        },
        Some(tc @ Value::Object(_)) => ToolChoice::Named(
            tc.pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or("tool_choice.function.name must be a string")?,
        ),
        Some(_) => return Err("tool_choice must be a string or an object".into()),
    }))
}
