//! The local guardrails: `banned_keywords` (LiteLLM's enterprise hook), `blocked_user_list`,
//! and the content filter (`litellm_content_filter`: built-in patterns for emails, phone
//! numbers, credit cards (Luhn-checked), SSNs and API keys/secrets, custom regexes and
//! keywords, each set to `BLOCK` or `MASK`). One `RegexSet` pass a text finds which patterns
//! match (only those are run again, to find and mask their matches); the built-in patterns stay
//! out of the set and run only on texts that have what they need (an `@`, enough digits, their
//! literal: `AKIA`, `sk-`, ...), so prose costs a few SIMD substring searches and one pass of
//! the custom patterns' set.

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexSet};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{BuildError, Verdict};

/// LiteLLM's `banned_keywords`: a text containing any keyword (case-insensitive) is refused.
pub struct Keywords {
    words: Vec<String>,
    matcher: AhoCorasick,
}

impl Keywords {
    pub fn new(words: Vec<String>) -> Result<Self, BuildError> {
        let words: Vec<String> = (words.into_iter())
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        // case-sensitive over lowercased text, leftmost-first: the automaton then searches with
        // its packed (SIMD) prefilter, which the standard match kind (or ASCII case folding)
        // cannot use
        let matcher = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&words)
            .map_err(|e| BuildError::Params(format!("banned keywords: {e}")))?;
        Ok(Self { words, matcher })
    }

    pub fn check(&self, texts: &[String]) -> Verdict {
        for t in texts {
            let lower = if t.is_ascii() {
                t.to_ascii_lowercase()
            } else {
                t.to_lowercase()
            };
            let hit = self.matcher.find(lower.as_bytes()).map(|m| m.pattern());
            if let Some(p) = hit {
                return Verdict::block(
                    403,
                    format!("Keyword banned. Keyword={}", self.words[p.as_usize()]),
                );
            }
        }
        Verdict::Pass
    }
}

/// LiteLLM's `blocked_user_list`: requests for these end users are refused.
pub struct BlockedUsers {
    users: std::collections::HashSet<String>,
}

impl BlockedUsers {
    pub fn new(users: Vec<String>) -> Self {
        Self {
            users: (users.into_iter())
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
        }
    }

    pub fn check(&self, end_user: Option<&str>) -> Verdict {
        match end_user {
            Some(u) if self.users.contains(u) => Verdict::block(
                403,
                format!("User blocked from making LLM API Calls. User={u}"),
            ),
            _ => Verdict::Pass,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    #[serde(alias = "block")]
    Block,
    #[serde(alias = "mask")]
    Mask,
}

/// What to check after a regex matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    Luhn,
}

/// What a text must have for a built-in pattern to be worth running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Nothing known: the pattern is in the one `RegexSet` pass.
    Any,
    /// An `@`.
    At,
    /// At least this many ASCII digits.
    Digits(usize),
    /// One of these strings.
    Lits(&'static [&'static str]),
}

/// Built-in patterns: name, regex, extra check, what a text needs for it to match.
const PREBUILT: &[(&str, &str, Extra, Needs)] = &[
    (
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
        Extra::None,
        Needs::At,
    ),
    (
        "phone",
        r"(?:\+?\d{1,3}[ .-]?)?(?:\(\d{3}\)|\b\d{3})[ .-]?\d{3}[ .-]?\d{4}\b",
        Extra::None,
        Needs::Digits(10),
    ),
    (
        "us_ssn",
        r"\b\d{3}-\d{2}-\d{4}\b",
        Extra::None,
        Needs::Digits(9),
    ),
    (
        "credit_card",
        r"\b(?:\d[ -]?){12,18}\d\b",
        Extra::Luhn,
        Needs::Digits(13),
    ),
    (
        "visa",
        r"\b4\d{3}(?:[ -]?\d{4}){3}\b",
        Extra::Luhn,
        Needs::Digits(16),
    ),
    (
        "mastercard",
        r"\b5[1-5]\d{2}(?:[ -]?\d{4}){3}\b",
        Extra::Luhn,
        Needs::Digits(16),
    ),
    (
        "amex",
        r"\b3[47]\d{2}[ -]?\d{6}[ -]?\d{5}\b",
        Extra::Luhn,
        Needs::Digits(15),
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        Extra::None,
        Needs::Lits(&["AKIA", "ASIA"]),
    ),
    (
        "aws_secret_key",
        r"(?i)aws.{0,20}?(?:secret|key).{0,20}?\b[A-Za-z0-9/+=]{40}\b",
        Extra::None,
        Needs::Lits(&["aws", "awS", "aWs", "aWS", "Aws", "AwS", "AWs", "AWS"]),
    ),
    (
        "github_token",
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        Extra::None,
        Needs::Lits(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]),
    ),
    (
        "openai_api_key",
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
        Extra::None,
        Needs::Lits(&["sk-"]),
    ),
    (
        "slack_token",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        Extra::None,
        Needs::Lits(&["xox"]),
    ),
    (
        "private_key",
        r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----",
        Extra::None,
        Needs::Lits(&["-----BEGIN "]),
    ),
];

/// `api_keys` stands for every secret pattern at once.
const SECRET_PATTERNS: &[&str] = &[
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "openai_api_key",
    "slack_token",
    "private_key",
];

/// How many ASCII digits `b` has. Counted in byte lanes over chunks of 255 (so the compiler
/// keeps 16 or 32 bytes per vector step rather than widening every byte to a 64-bit count).
fn ascii_digits(b: &[u8]) -> usize {
    b.chunks(255)
        .map(|c| {
            let n = c.iter().fold(0u8, |n, &x| {
                n.wrapping_add(u8::from(x.wrapping_sub(b'0') < 10))
            });
            usize::from(n)
        })
        .sum()
}

/// Whether `digits` (spaces and dashes ignored) pass the Luhn check.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 || digits.len() > 19 {
        return false;
    }
    let sum: u32 = (digits.iter().rev().enumerate())
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

struct Pattern {
    name: String,
    regex: Regex,
    extra: Extra,
    needs: Needs,
    /// `Needs::Lits` as searchers.
    lits: Vec<memchr::memmem::Finder<'static>>,
    action: Action,
    /// The mask put in place of a match.
    tag: String,
}

/// LiteLLM's content filter.
pub struct ContentFilter {
    /// The patterns needing nothing in particular (`Needs::Any`), by their index in `in_set`.
    set: RegexSet,
    in_set: Vec<usize>,
    patterns: Vec<Pattern>,
    /// Every pattern's `Needs::Lits` in one automaton: a text without any of them (most prose)
    /// skips all the per-pattern literal searches in one SIMD pass.
    any_lit: Option<AhoCorasick>,
}

#[derive(Deserialize)]
struct PatternConf {
    #[serde(default)]
    pattern_type: Option<String>,
    #[serde(default)]
    pattern_name: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    name: Option<String>,
    action: Action,
}

#[derive(Deserialize)]
struct WordConf {
    keyword: String,
    action: Action,
}

impl ContentFilter {
    /// From the guardrail's params: `patterns`, `blocked_words`, `pattern_redaction_format`,
    /// `keyword_redaction_tag`.
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, BuildError> {
        let get = |k: &str| p.get(k).cloned().unwrap_or(Value::Array(Vec::new()));
        let confs: Vec<PatternConf> = serde_json::from_value(get("patterns"))
            .map_err(|e| BuildError::Params(format!("patterns: {e}")))?;
        let words: Vec<WordConf> = serde_json::from_value(get("blocked_words"))
            .map_err(|e| BuildError::Params(format!("blocked_words: {e}")))?;
        let format = (p.get("pattern_redaction_format").and_then(Value::as_str))
            .unwrap_or("[{pattern_name}_REDACTED]");
        let keyword_tag = (p.get("keyword_redaction_tag").and_then(Value::as_str))
            .unwrap_or("[KEYWORD_REDACTED]");
        let tag = |n: &str| format.replace("{pattern_name}", &n.to_uppercase());
        let mut patterns = Vec::new();
        let mut add = |name: &str, re: &str, (extra, needs), action: Action, tag: String| {
            let regex =
                Regex::new(re).map_err(|e| BuildError::Params(format!("pattern {name}: {e}")))?;
            let lits = match needs {
                Needs::Lits(l) => l.iter().map(memchr::memmem::Finder::new).collect(),
                _ => Vec::new(),
            };
            patterns.push(Pattern {
                name: name.to_string(),
                regex,
                extra,
                needs,
                lits,
                action,
                tag,
            });
            Ok::<(), BuildError>(())
        };
        for c in &confs {
            match (c.pattern_type.as_deref(), &c.pattern) {
                (Some("regex"), Some(re)) | (None, Some(re)) => {
                    let name = c.name.as_deref().or(c.pattern_name.as_deref());
                    let name = name.unwrap_or("custom");
                    add(name, re, (Extra::None, Needs::Any), c.action, tag(name))?;
                }
                _ => {
                    let Some(name) = c.pattern_name.as_deref() else {
                        return Err(BuildError::Params(
                            "a pattern needs `pattern_name` (prebuilt) or `pattern` (regex)".into(),
                        ));
                    };
                    let names: Vec<&str> = if name == "api_keys" {
                        SECRET_PATTERNS.to_vec()
                    } else {
                        vec![name]
                    };
                    for n in names {
                        let Some((_, re, extra, needs)) = PREBUILT.iter().find(|(p, ..)| *p == n)
                        else {
                            let known: Vec<&str> = PREBUILT.iter().map(|p| p.0).collect();
                            return Err(BuildError::Params(format!(
                                "unknown prebuilt pattern '{n}' (known: api_keys, {})",
                                known.join(", ")
                            )));
                        };
                        add(n, re, (*extra, *needs), c.action, tag(n))?;
                    }
                }
            }
        }
        for w in &words {
            let re = format!("(?i){}", regex::escape(w.keyword.trim()));
            add(
                &w.keyword,
                &re,
                (Extra::None, Needs::Any),
                w.action,
                keyword_tag.to_string(),
            )?;
        }
        let in_set: Vec<usize> = (0..patterns.len())
            .filter(|&i| patterns[i].needs == Needs::Any)
            .collect();
        let set = RegexSet::new(in_set.iter().map(|&i| patterns[i].regex.as_str()))
            .map_err(|e| BuildError::Params(e.to_string()))?;
        let lits: Vec<&str> = (patterns.iter())
            .flat_map(|p| match p.needs {
                Needs::Lits(l) => l,
                _ => &[],
            })
            .copied()
            .collect();
        let any_lit = if lits.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                    .build(&lits)
                    .map_err(|e| BuildError::Params(format!("literals: {e}")))?,
            )
        };
        Ok(Self {
            set,
            in_set,
            patterns,
            any_lit,
        })
    }

    /// The indexes of the patterns that match `t`, in config order.
    fn hits(&self, t: &str) -> Vec<usize> {
        let mut hits: Vec<usize> = (self.set.matches(t).iter())
            .map(|i| self.in_set[i])
            .collect();
        let mut digits = None;
        let mut any_lit = None;
        for (i, p) in self.patterns.iter().enumerate() {
            let may = match p.needs {
                Needs::Any => continue,
                Needs::At => memchr::memchr(b'@', t.as_bytes()).is_some(),
                Needs::Lits(_) => {
                    *any_lit.get_or_insert_with(|| {
                        (self.any_lit.as_ref()).is_some_and(|a| a.is_match(t.as_bytes()))
                    }) && p.lits.iter().any(|f| f.find(t.as_bytes()).is_some())
                }
                Needs::Digits(n) => *digits.get_or_insert_with(|| ascii_digits(t.as_bytes())) >= n,
            };
            if may && p.regex.is_match(t) {
                hits.push(i);
            }
        }
        hits.sort_unstable();
        hits
    }

    /// Block on the first `BLOCK` pattern found; else mask every `MASK` match.
    pub fn check(&self, texts: &[String]) -> Verdict {
        let mut out: Option<Vec<String>> = None;
        for (i, t) in texts.iter().enumerate() {
            let hits = self.hits(t);
            if hits.is_empty() {
                continue;
            }
            let mut masked: Option<String> = None;
            for h in hits {
                let p = &self.patterns[h];
                let cur = masked.as_deref().unwrap_or(t);
                let valid = |m: &str| p.extra != Extra::Luhn || luhn(m);
                if !p.regex.find_iter(cur).any(|m| valid(m.as_str())) {
                    continue;
                }
                match p.action {
                    Action::Block => {
                        return Verdict::block(
                            400,
                            format!("Content blocked: {} pattern detected", p.name),
                        );
                    }
                    Action::Mask => {
                        let next = p.regex.replace_all(cur, |c: &regex::Captures<'_>| {
                            let m = c.get(0).map_or("", |m| m.as_str());
                            if valid(m) {
                                p.tag.clone()
                            } else {
                                m.to_string()
                            }
                        });
                        masked = Some(next.into_owned());
                    }
                }
            }
            if let Some(m) = masked {
                out.get_or_insert_with(|| texts.to_vec())[i] = m;
            }
        }
        out.map_or(Verdict::Pass, Verdict::Rewrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(v: Value) -> ContentFilter {
        ContentFilter::from_params(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn counts_digits() {
        let long = "a1".repeat(600);
        assert_eq!(ascii_digits(long.as_bytes()), 600);
        assert_eq!(ascii_digits(b"call 555-0100 now /:"), 7);
        assert_eq!(ascii_digits(b""), 0);
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("4532-0151-1283-0366"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234"));
    }

    #[test]
    fn masks_and_blocks() {
        let f = filter(json!({"patterns": [
            {"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"},
            {"pattern_type": "prebuilt", "pattern_name": "credit_card", "action": "BLOCK"},
            {"pattern_type": "prebuilt", "pattern_name": "api_keys", "action": "MASK"},
            {"pattern_type": "regex", "pattern": "PROJECT-\\d{6}", "name": "project_code", "action": "BLOCK"}
        ]}));
        let Verdict::Rewrite(t) = f.check(&["mail a@b.io or AKIAABCDEFGHIJKLMNOP".into()]) else {
            panic!()
        };
        assert_eq!(t[0], "mail [EMAIL_REDACTED] or [AWS_ACCESS_KEY_REDACTED]");
        // not a card number (Luhn fails): passes
        assert!(matches!(
            f.check(&["card 4111 1111 1111 1112".into()]),
            Verdict::Pass
        ));
        let Verdict::Block { message, .. } = f.check(&["card 4111 1111 1111 1111".into()]) else {
            panic!()
        };
        assert!(message.contains("credit_card"), "{message}");
        assert!(matches!(
            f.check(&["PROJECT-123456".into()]),
            Verdict::Block { .. }
        ));
        assert!(matches!(f.check(&["nothing here".into()]), Verdict::Pass));
    }

    #[test]
    fn keywords_any_case() {
        let k = Keywords::new(vec!["Credit Card".into(), "ssn".into()]).unwrap();
        let Verdict::Block { status, message } = k.check(&["what's your CREDIT card".into()])
        else {
            panic!()
        };
        assert_eq!(status, 403);
        assert_eq!(message, "Keyword banned. Keyword=credit card");
        assert!(matches!(k.check(&["fine".into()]), Verdict::Pass));
    }
}
