//! `general_settings.pass_through_endpoints` entries.

/// One entry of `general_settings.pass_through_endpoints`: requests to `path` go to `target`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Endpoint {
    /// The gateway path, e.g. `/v1/rerank-custom`.
    pub path: String,
    /// The URL requests go to.
    pub target: String,
    /// Headers added to every forwarded request (values may be `os.environ/NAME`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Also pass the client's headers on (never its credentials when `auth` is on).
    #[serde(default)]
    pub forward_headers: bool,
    /// Also serve `path/...`, appending the rest to `target`.
    #[serde(default)]
    pub include_subpath: bool,
    /// Require a Tianji key (default true).
    #[serde(default = "yes")]
    pub auth: bool,
    /// Methods served (default all).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Seconds (default 600).
    #[serde(default)]
    pub timeout: Option<f64>,
}

fn yes() -> bool {
    true
}
