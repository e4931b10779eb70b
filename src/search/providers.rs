//! Web search providers behind `/v1/search/{tool}`: the unified request (Perplexity's shape:
//! `query`, `max_results`, `search_domain_filter`, `country`) to each provider's API, and each
//! answer back to `{"object": "search", "results": [{title, url, snippet, date?,
//! last_updated?}]}`. Pure: no I/O.

use serde_json::{Map, Value, json};

/// Why a search request cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SearchError {
    #[error("search needs `query`, a string or a list of strings")]
    Query,
    #[error("max_results must be an integer from 1 to 20")]
    MaxResults,
    #[error("search_domain_filter must be a list of at most 20 domains")]
    Domains,
    #[error("unknown search_provider `{0}` (tavily, brave, exa_ai, linkup, firecrawl, searxng)")]
    Provider(String),
    #[error("searxng needs api_base (or SEARXNG_API_BASE)")]
    NoBase,
}

/// A search request in the unified shape, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub query: String,
    pub max_results: u64,
    pub domains: Vec<String>,
    pub country: Option<String>,
}

impl Ask {
    pub fn from_json(v: &Value) -> Result<Ask, SearchError> {
        let query = match v.get("query") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            _ => return Err(SearchError::Query),
        };
        let max_results = match v.get("max_results") {
            None | Some(Value::Null) => 10,
            Some(n) => n
                .as_u64()
                .filter(|n| (1..=20).contains(n))
                .ok_or(SearchError::MaxResults)?,
        };
        let domains = match v.get("search_domain_filter") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) if a.len() <= 20 && a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => return Err(SearchError::Domains),
        };
        let country = v.get("country").and_then(Value::as_str).map(str::to_string);
        Ok(Ask {
            query,
            max_results,
            domains,
            country,
        })
    }
}

/// The HTTP call to make: method, URL, headers, JSON body (none for GET).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub post: bool,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `base` (or the provider's default) with `path` unless it already ends so.
fn url(base: Option<&str>, default: &str, path: &str) -> String {
    let b = base.unwrap_or(default).trim_end_matches('/');
    if b.ends_with(path) {
        b.to_string()
    } else {
        format!("{b}{path}")
    }
}

/// The provider call for `ask`.
pub fn call(
    provider: &str,
    ask: &Ask,
    api_key: Option<&str>,
    api_base: Option<&str>,
) -> Result<Call, SearchError> {
    let key = api_key.unwrap_or_default().to_string();
    let bearer = vec![("authorization", format!("Bearer {key}"))];
    let domains = json!(ask.domains);
    Ok(match provider {
        "tavily" => {
            let mut b = json!({"query": ask.query, "max_results": ask.max_results});
            if !ask.domains.is_empty() {
                b["include_domains"] = domains;
            }
            if let Some(c) = &ask.country {
                b["country"] = json!(c.to_lowercase());
            }
            Call {
                post: true,
                url: url(api_base, "https://api.tavily.com", "/search"),
                headers: bearer,
                body: Some(b),
            }
        }
        "exa_ai" | "exa" => {
            let mut b = json!({"query": ask.query, "numResults": ask.max_results, "contents": {"text": true}});
            if !ask.domains.is_empty() {
                b["includeDomains"] = domains;
            }
            if let Some(c) = &ask.country {
                b["userLocation"] = json!(c);
            }
            Call {
                post: true,
                url: url(api_base, "https://api.exa.ai", "/search"),
                headers: vec![("x-api-key", key)],
                body: Some(b),
            }
        }
        "linkup" => {
            let mut b = json!({"q": ask.query, "depth": "standard", "outputType": "searchResults",
                "maxResults": ask.max_results});
            if !ask.domains.is_empty() {
                b["includeDomains"] = domains;
            }
            Call {
                post: true,
                url: url(api_base, "https://api.linkup.so/v1", "/search"),
                headers: bearer,
                body: Some(b),
            }
        }
        "firecrawl" => {
            let mut b = json!({"query": ask.query, "limit": ask.max_results,
                "scrapeOptions": {"formats": ["markdown"], "onlyMainContent": true}});
            if let Some(c) = &ask.country {
                b["country"] = json!(c);
            }
            Call {
                post: true,
                url: url(api_base, "https://api.firecrawl.dev/v2", "/search"),
                headers: bearer,
                body: Some(b),
            }
        }
        "brave" => {
            let mut q = ask.query.clone();
            if !ask.domains.is_empty() {
                let sites: Vec<String> = ask.domains.iter().map(|d| format!("site:{d}")).collect();
                q = format!("{q} {}", sites.join(" OR "));
            }
            let mut u = format!(
                "{}?q={}&count={}",
                url(
                    api_base,
                    "https://api.search.brave.com/res/v1/web",
                    "/search"
                ),
                enc(&q),
                ask.max_results.min(20)
            );
            if let Some(c) = &ask.country {
                u.push_str(&format!("&country={}", enc(c)));
            }
            Call {
                post: false,
                url: u,
                headers: vec![
                    ("x-subscription-token", key),
                    ("accept", "application/json".into()),
                ],
                body: None,
            }
        }
        "searxng" => {
            let base = api_base.ok_or(SearchError::NoBase)?;
            let mut u = format!(
                "{}?q={}&format=json",
                url(Some(base), "", "/search"),
                enc(&ask.query)
            );
            if let Some(c) = &ask.country {
                let lang = match c.to_lowercase().as_str() {
                    "us" | "uk" | "gb" => "en".to_string(),
                    "jp" => "ja".to_string(),
                    other => other.to_string(),
                };
                u.push_str(&format!("&language={}", enc(&lang)));
            }
            Call {
                post: false,
                url: u,
                headers: if key.is_empty() { Vec::new() } else { bearer },
                body: None,
            }
        }
        other => return Err(SearchError::Provider(other.to_string())),
    })
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn result(
    title: Option<String>,
    url: Option<String>,
    snippet: Option<String>,
    date: Option<String>,
) -> Value {
    let mut o = Map::new();
    o.insert("title".into(), json!(title.unwrap_or_default()));
    o.insert("url".into(), json!(url.unwrap_or_default()));
    o.insert("snippet".into(), json!(snippet.unwrap_or_default()));
    if let Some(d) = date {
        o.insert("date".into(), json!(d));
    }
    Value::Object(o)
}

/// One result whose title is member `title`, its URL `url`, its snippet the first of
/// `snippet` that is there and its date the first of `date`.
fn hit(r: &Value, title: &str, snippet: &[&str], date: &[&str]) -> Value {
    let first = |keys: &[&str]| keys.iter().find_map(|k| s(r, k));
    result(s(r, title), s(r, "url"), first(snippet), first(date))
}

/// The provider's answer in the unified shape, at most `max` results.
pub fn answer(provider: &str, resp: &Value, max: u64) -> Value {
    let list = |k: &str| -> Vec<Value> {
        resp.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let results: Vec<Value> = match provider {
        "tavily" => list("results")
            .iter()
            .map(|r| hit(r, "title", &["content"], &["published_date"]))
            .collect(),
        "exa_ai" | "exa" => list("results")
            .iter()
            .map(|r| {
                let snippet = s(r, "text")
                    .or_else(|| {
                        r.get("highlights").and_then(Value::as_array).map(|h| {
                            h.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                    })
                    .or_else(|| s(r, "summary"));
                result(s(r, "title"), s(r, "url"), snippet, s(r, "publishedDate"))
            })
            .collect(),
        "linkup" => list("results")
            .iter()
            .map(|r| hit(r, "name", &["content"], &[]))
            .collect(),
        "firecrawl" => {
            let data = resp.get("data");
            let items: Vec<Value> = match data {
                Some(Value::Array(a)) => a.clone(),
                Some(Value::Object(o)) => ["web", "news"]
                    .iter()
                    .filter_map(|k| o.get(*k).and_then(Value::as_array))
                    .flatten()
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            items
                .iter()
                .map(|r| hit(r, "title", &["markdown", "description"], &[]))
                .collect()
        }
        "brave" => ["web", "news", "discussions", "faqs", "videos"]
            .iter()
            .filter_map(|k| {
                resp.pointer(&format!("/{k}/results"))
                    .and_then(Value::as_array)
            })
            .flatten()
            .map(|r| hit(r, "title", &["description"], &["page_age", "age"]))
            .collect(),
        "searxng" => list("results")
            .iter()
            .map(|r| hit(r, "title", &["content"], &["publishedDate", "pubdate"]))
            .collect(),
        _ => Vec::new(),
    };
    let results: Vec<Value> = results.into_iter().take(max as usize).collect();
    json!({"object": "search", "results": results})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> Ask {
        Ask::from_json(&json!({"query": ["rust", "gateway"], "max_results": 2,
            "search_domain_filter": ["docs.rs"], "country": "US"}))
        .unwrap()
    }

    #[test]
    fn requests_checked() {
        assert_eq!(ask().query, "rust gateway");
        for bad in [
            json!({}),
            json!({"query": ""}),
            json!({"query": [1]}),
            json!({"query": "q", "max_results": 0}),
            json!({"query": "q", "max_results": 21}),
            json!({"query": "q", "search_domain_filter": "x"}),
        ] {
            assert!(Ask::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calls_per_provider() {
        let t = call("tavily", &ask(), Some("tk"), None).unwrap();
        assert_eq!(t.url, "https://api.tavily.com/search");
        assert_eq!(
            t.body.as_ref().unwrap()["include_domains"],
            json!(["docs.rs"])
        );
        assert_eq!(t.body.as_ref().unwrap()["country"], "us");
        let b = call("brave", &ask(), Some("bk"), None).unwrap();
        assert!(!b.post);
        assert_eq!(
            b.url,
            "https://api.search.brave.com/res/v1/web/search?q=rust%20gateway%20site%3Adocs.rs&count=2&country=US"
        );
        assert_eq!(b.headers[0], ("x-subscription-token", "bk".into()));
        let e = call("exa_ai", &ask(), Some("ek"), Some("http://m/")).unwrap();
        assert_eq!(e.url, "http://m/search");
        assert_eq!(e.body.as_ref().unwrap()["numResults"], 2);
        assert_eq!(
            call("searxng", &ask(), None, None),
            Err(SearchError::NoBase)
        );
        let x = call("searxng", &ask(), None, Some("http://sx")).unwrap();
        assert!(x.url.ends_with("format=json&language=en"), "{}", x.url);
        assert!(x.headers.is_empty());
        assert!(call("nope", &ask(), None, None).is_err());
    }

    #[test]
    fn answers_per_provider() {
        let t = answer(
            "tavily",
            &json!({"results": [{"title": "A", "url": "u", "content": "c"}, {"title": "B"}, {"title": "C"}]}),
            2,
        );
        assert_eq!(t["results"].as_array().unwrap().len(), 2);
        assert_eq!(t["results"][0]["snippet"], "c");
        let b = answer(
            "brave",
            &json!({"web": {"results": [{"title": "W", "url": "u", "description": "d", "page_age": "2024"}]}}),
            5,
        );
        assert_eq!(b["results"][0]["date"], "2024");
        let f = answer(
            "firecrawl",
            &json!({"data": {"web": [{"title": "F", "url": "u", "description": "d"}]}}),
            5,
        );
        assert_eq!(f["results"][0]["snippet"], "d");
        let l = answer(
            "linkup",
            &json!({"results": [{"name": "L", "url": "u", "content": "c"}]}),
            5,
        );
        assert_eq!(l["results"][0]["title"], "L");
        assert_eq!(
            answer(
                "exa_ai",
                &json!({"results": [{"title": "E", "url": "u", "highlights": ["a", "b"]}]}),
                5
            )["results"][0]["snippet"],
            "a b"
        );
        assert_eq!(
            answer("searxng", &json!({}), 5),
            json!({"object": "search", "results": []})
        );
    }
}
