//! Agent cards as the gateway serves them: the stored card with its endpoint rewritten to
//! `{gateway base}/a2a/{agent_id}`, in the A2A version the client speaks (`a2a-version: 1.*`:
//! 1.0, else 0.3).

use serde_json::{Map, Value, json};

/// The A2A version a card is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V03,
    V10,
}

impl Version {
    /// From the request's `a2a-version` header.
    pub fn of(header: Option<&str>) -> Self {
        match header.map(str::trim) {
            Some(v) if v.starts_with("1.") || v == "1" => Version::V10,
            _ => Version::V03,
        }
    }
}

/// Fields of a 0.3 card that 1.0 moved or dropped.
const V03_ONLY: &[&str] = &[
    "url",
    "protocolVersion",
    "preferredTransport",
    "additionalInterfaces",
    "supportsAuthenticatedExtendedCard",
    "security",
];

/// `card` (0.3 or 1.0 as stored) served at `url` in `version`.
pub fn served(card: &Value, url: &str, version: Version) -> Value {
    let mut c: Map<String, Value> = card.as_object().cloned().unwrap_or_default();
    // what the stored card says, whichever version it was written in
    let extended = c
        .get("supportsAuthenticatedExtendedCard")
        .or_else(|| {
            c.get("capabilities")
                .and_then(|k| k.get("extendedAgentCard"))
        })
        .and_then(Value::as_bool);
    let security = c
        .get("security")
        .or_else(|| c.get("securityRequirements"))
        .cloned();
    c.remove("supportedInterfaces");
    match version {
        Version::V03 => {
            if let Some(k) = c.get_mut("capabilities").and_then(Value::as_object_mut) {
                k.remove("extendedAgentCard");
            }
            c.remove("securityRequirements");
            c.insert("protocolVersion".into(), json!("0.3.0"));
            c.insert("url".into(), json!(url));
            c.insert("preferredTransport".into(), json!("JSONRPC"));
            c.insert(
                "additionalInterfaces".into(),
                json!([{"url": url, "transport": "JSONRPC"}]),
            );
            if let Some(e) = extended {
                c.insert("supportsAuthenticatedExtendedCard".into(), json!(e));
            }
            if let Some(s) = security {
                c.insert("security".into(), s);
            }
        }
        Version::V10 => {
            for f in V03_ONLY {
                c.remove(*f);
            }
            c.insert(
                "supportedInterfaces".into(),
                json!([{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]),
            );
            if let Some(e) = extended {
                let caps = c.entry("capabilities").or_insert_with(|| json!({}));
                if let Some(k) = caps.as_object_mut() {
                    k.insert("extendedAgentCard".into(), json!(e));
                }
            }
            if let Some(s) = security {
                c.insert("securityRequirements".into(), s);
            }
        }
    }
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Value {
        json!({"name": "a", "url": "http://10.0.0.1/agent", "protocolVersion": "0.3.0",
               "supportsAuthenticatedExtendedCard": true,
               "capabilities": {"streaming": true}, "skills": []})
    }

    #[test]
    fn versions_from_the_header() {
        assert_eq!(Version::of(Some("1.0")), Version::V10);
        assert_eq!(Version::of(Some("0.3")), Version::V03);
        assert_eq!(Version::of(None), Version::V03);
    }

    #[test]
    fn rewrites_the_url_in_both_versions() {
        let gw = "http://gw/a2a/x";
        let v03 = served(&stored(), gw, Version::V03);
        assert_eq!(v03["url"], gw);
        assert_eq!(v03["protocolVersion"], "0.3.0");
        assert_eq!(v03["supportsAuthenticatedExtendedCard"], true);
        let v10 = served(&stored(), gw, Version::V10);
        assert!(v10.get("url").is_none() && v10.get("protocolVersion").is_none());
        assert_eq!(v10["supportedInterfaces"][0]["url"], gw);
        assert_eq!(v10["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
        assert_eq!(v10["capabilities"]["extendedAgentCard"], true);
        assert_eq!(v10["capabilities"]["streaming"], true);
        // a 1.0 card served as 0.3
        let back = served(&v10, gw, Version::V03);
        assert_eq!(back["url"], gw);
        assert!(back.get("supportedInterfaces").is_none());
    }
}
