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
    fn more_specific_sorts_higher() {
        assert!(specificity("openai/*") > specificity("*"));
        assert!(specificity("openai/gpt-*") > specificity("openai/*"));
    }
}
