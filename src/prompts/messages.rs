//! A rendered prompt as chat messages, as LiteLLM's dotprompt integration reads it: a line
//! starting `System:`, `User:` or `Assistant:` (after its indentation) opens a message of that
//! role, the lines after it belong to it; text before any marker is a user message. Lines are
//! trimmed; a message with no text is left out.

use serde_json::{Value, json};

const ROLES: [(&str, &str); 3] = [
    ("System:", "system"),
    ("User:", "user"),
    ("Assistant:", "assistant"),
];

/// The messages of `rendered`.
pub fn messages(rendered: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut role: Option<&str> = None;
    let mut lines: Vec<&str> = Vec::new();
    let mut flush = |role: Option<&str>, lines: &mut Vec<&str>| {
        if let Some(r) = role {
            let text = lines.join("\n");
            let text = text.trim();
            if !text.is_empty() {
                out.push(json!({"role": r, "content": text}));
            }
        }
        lines.clear();
    };
    for line in rendered.trim().split('\n') {
        let line = line.trim();
        match ROLES
            .iter()
            .find_map(|(marker, r)| line.strip_prefix(marker).map(|rest| (*r, rest)))
        {
            Some((r, rest)) => {
                flush(role, &mut lines);
                role = Some(r);
                lines.push(rest.trim());
            }
            None => {
                role.get_or_insert("user");
                lines.push(line);
            }
        }
    }
    flush(role, &mut lines);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_markers_open_messages() {
        let m = messages(
            "System: Be brief.\nKeep it short.\n\nUser: Hello Ann\n  Assistant: Hi!\nUser:",
        );
        assert_eq!(
            m,
            vec![
                json!({"role": "system", "content": "Be brief.\nKeep it short."}),
                json!({"role": "user", "content": "Hello Ann"}),
                json!({"role": "assistant", "content": "Hi!"}),
            ]
        );
    }

    #[test]
    fn plain_text_is_a_user_message() {
        assert_eq!(
            messages("  Tell me a joke.\nAbout cats. "),
            vec![json!({"role": "user", "content": "Tell me a joke.\nAbout cats."})]
        );
        assert!(messages(" \n ").is_empty());
        assert_eq!(
            messages("intro\nSystem: s"),
            vec![
                json!({"role": "user", "content": "intro"}),
                json!({"role": "system", "content": "s"}),
            ]
        );
    }
}
