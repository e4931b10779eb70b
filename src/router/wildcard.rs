//! `*` patterns in model names (`openai/*`, `*`, `claude-*-latest`).

/// Match `name` against `pattern`, where `*` matches any (possibly empty) run of characters.
/// Returns what each `*` matched, in order.
pub fn captures<'n>(pattern: &str, name: &'n str) -> Option<Vec<&'n str>> {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return (pattern == name).then(Vec::new);
    }
    let first = parts[0];
    let last = parts[parts.len() - 1];
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return None;
    }
    let mut caps = Vec::with_capacity(parts.len() - 1);
    let mut pos = first.len();
    let end = name.len() - last.len();
    // Middle literals are matched leftmost; each star takes what lies before its next literal.
    for lit in &parts[1..parts.len() - 1] {
        let hay = name.get(pos..end)?;
        let at = hay.find(lit)?;
        caps.push(&hay[..at]);
        pos += at + lit.len();
    }
    caps.push(name.get(pos..end)?);
    Some(caps)
}

/// Replace the `*`s of `template` with `caps` in order (extra stars get the last capture).
pub fn substitute(template: &str, caps: &[&str]) -> String {
    if !template.contains('*') {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut i = 0;
    for (n, piece) in template.split('*').enumerate() {
        if n > 0 {
            let cap = caps.get(i).or(caps.last()).copied().unwrap_or("");
            out.push_str(cap);
            i += 1;
        }
        out.push_str(piece);
    }
    out
}

/// The price map's models a wildcard route serves, as LiteLLM lists them: the models of the
/// provider its deployment calls (`params_model`'s prefix, else the pattern's), each named under
/// the pattern's prefix (`anthropic/*` lists `anthropic/claude-...`), those the pattern matches.
/// None for a pattern without a literal `provider/` prefix (`*`, `gpt-*`).
pub fn known_models(pattern: &str, params_model: &str) -> Vec<String> {
    let Some((prefix, _)) = pattern.split_once('/') else {
        return Vec::new();
    };
    if prefix.contains('*') || prefix.is_empty() {
        return Vec::new();
    }
    let provider = match params_model.split_once('/') {
        Some((p, _)) if !p.contains('*') => p,
        _ => prefix,
    };
    let under = format!("{prefix}/");
    crate::prices::Price::models_of(provider)
        .into_iter()
        .map(|m| match m.starts_with(&under) {
            true => m.to_string(),
            false => format!("{under}{m}"),
        })
        .filter(|name| captures(pattern, name).is_some())
        .collect()
}

/// Ordering key: more literal characters first, then fewer stars.
pub fn specificity(pattern: &str) -> (usize, std::cmp::Reverse<usize>) {
    let stars = pattern.matches('*').count();
    (pattern.len() - stars, std::cmp::Reverse(stars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_captures() {
        assert_eq!(captures("openai/*", "openai/gpt-4o"), Some(vec!["gpt-4o"]));
        assert_eq!(
            captures("*", "anything/at all"),
            Some(vec!["anything/at all"])
        );
        assert_eq!(captures("openai/*", "groq/x"), None);
        assert_eq!(
            captures("claude-*-latest", "claude-3-5-latest"),
            Some(vec!["3-5"])
        );
        assert_eq!(captures("a*b*c", "axxbyyc"), Some(vec!["xx", "yy"]));
        assert_eq!(captures("ab*ba", "aba"), None);
        assert_eq!(captures("exact", "exact"), Some(vec![]));
    }

    #[test]
    fn substitutes() {
        assert_eq!(substitute("openai/*", &["gpt-4o"]), "openai/gpt-4o");
        assert_eq!(substitute("groq/llama", &["x"]), "groq/llama");
    }

    #[test]
    fn known_models_of_a_route() {
        let all = known_models("anthropic/*", "anthropic/*");
        assert!(
            all.contains(&"anthropic/claude-haiku-4-5".to_string()),
            "{all:?}"
        );
        assert!(all.iter().all(|m| m.starts_with("anthropic/")));
        let some = known_models("anthropic/claude-opus-*", "anthropic/claude-opus-*");
        assert!(!some.is_empty() && some.len() < all.len());
        assert!(some.iter().all(|m| m.starts_with("anthropic/claude-opus-")));
        // the deployment's provider decides, the pattern's prefix names
        let claude = known_models("claude/*", "anthropic/*");
        assert!(claude.contains(&"claude/claude-haiku-4-5".to_string()));
        assert!(known_models("*", "openai/*").is_empty());
        assert!(known_models("gpt-*", "openai/gpt-*").is_empty());
    }

    #[test]
    fn more_specific_sorts_higher() {
        assert!(specificity("openai/*") > specificity("*"));
        assert!(specificity("openai/gpt-*") > specificity("openai/*"));
    }
}
