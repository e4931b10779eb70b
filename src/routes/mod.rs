//! The route table. Every route is declared once, in one of two tables: [`table::ENDPOINTS`]
//! (LLM calls, models, responses, files and batches, search, pass-through, health) and
//! `crate::admin::routes::ROUTES` (the management API, each with its least role). Both go into
//! one matcher ([`RouteTable`]): one lookup gives the [`Route`] and the methods it answers;
//! `crate::dispatch` serves it. [`list`] gives every route with its methods, role and
//! description.

mod methods;
pub mod table;

use std::borrow::Cow;

use matchit::Router;

use crate::admin::{AdminRoute, Role};
use crate::pipeline::parse::Expect;
pub use methods::Methods;
pub use table::{ENDPOINTS, Endpoint};

/// What a path is for: `crate::dispatch` matches these, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An LLM call; `path_model` when the model comes from the path (Azure aliases).
    Llm {
        expect: Expect,
        path_model: bool,
    },
    Models,
    ModelInfo,
    Liveliness,
    Readiness,
    /// `GET /metrics` (Prometheus).
    Metrics,
    /// `GET /health`: deployment health checks (admins).
    Health,
    /// `GET /health/history`: stored health checks (admins).
    HealthHistory,
    /// The management API (a row of `crate::admin::routes::ROUTES`).
    Admin(&'static AdminRoute),
    /// `/v1/responses/{id}` (GET, DELETE), `.../cancel` (POST), `.../input_items` (GET).
    ResponseItem,
    ResponseCancel,
    ResponseInputItems,
    /// Files, batches, fine-tuning jobs (`crate::managed`); `/v1/batches` create has the
    /// batch rate limiter.
    Managed(crate::managed::Kind, crate::managed::At),
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `POST /v1beta/models/{model}:{method}` (Gemini's own API; also `/v1/models/...`).
    Gemini,
    /// `POST /v1/search/{tool}` (`crate::search`); `GET /v1/search/tools`.
    Search,
    SearchTools,
    /// `GET /guardrails/list`, `GET /v2/guardrails/list`, `POST /guardrails/apply_guardrail`.
    GuardrailsList,
    GuardrailsListV2,
    ApplyGuardrail,
    /// `/{provider}/{*path}`: provider pass-through (`crate::passthrough`), any method; the
    /// provider is the path's first segment.
    PassThrough,
    /// `/mcp`, `/mcp/{server}`: the MCP gateway (`crate::mcp_api`).
    Mcp,
    /// `GET /mcp/sse`, `/mcp/{server}/sse`: the MCP gateway's SSE transport
    /// (`crate::mcp_api::sse`); `POST /mcp/sse/messages`: its messages.
    McpSse,
    McpSseMessages,
    /// `GET /claude-code/marketplace.json`: the Claude Code plugin catalogue (public unless
    /// configured otherwise; `crate::admin::plugins`).
    Marketplace,
    /// The Skills API (`crate::skills_api`): `/v1/skills...` and the skills discovery index.
    Skills(crate::skills_api::At),
    /// Vector stores and RAG (`crate::rag_api`): `/v1/vector_stores...`, `/v1/rag/...`.
    Rag(crate::rag_api::At),
    /// `GET /routes`: every route of this table ([`listing`]).
    Routes,
}

/// One route as [`list`] gives it.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
    pub paths: &'static [&'static str],
    pub methods: Methods,
    /// The least role, for management routes.
    pub role: Option<Role>,
    /// Who may call it: a management role's name, `key` (any valid key), `public` (no key),
    /// `proxy_admin` or `proxy_admin_viewer` for the gateway's own admin routes.
    pub access: &'static str,
    pub about: &'static str,
}

/// Who may call a route that is not the management API's (whose routes name their role).
fn access_of(route: &Route) -> &'static str {
    match route {
        Route::Liveliness | Route::Readiness | Route::Marketplace => "public",
        // /metrics: public with `require_auth_for_metrics_endpoint: false`
        Route::Metrics | Route::Health | Route::HealthHistory => Role::AdminViewer.name(),
        _ => "key",
    }
}

/// `GET /routes`: every path of every route, with its methods, who may call it and what it
/// does, from the route table itself.
pub fn listing() -> serde_json::Value {
    let routes: Vec<serde_json::Value> = list()
        .iter()
        .flat_map(|r| {
            r.paths.iter().map(move |p| {
                serde_json::json!({
                    "path": p,
                    "methods": r.methods.names(),
                    "access": r.access,
                    "description": r.about,
                })
            })
        })
        .collect();
    serde_json::json!({ "routes": routes })
}

/// Every route of the gateway: the LLM and other routes first, then the management API.
pub fn list() -> Vec<RouteInfo> {
    let plain = ENDPOINTS.iter().map(|e| RouteInfo {
        paths: e.paths,
        methods: e.methods,
        role: None,
        access: access_of(&e.route),
        about: e.about,
    });
    let admin = crate::admin::routes::ROUTES.iter().map(|a| RouteInfo {
        paths: a.paths,
        methods: Methods::of(a.methods),
        role: Some(a.role),
        access: a.role.name(),
        about: a.about,
    });
    plain.chain(admin).collect()
}

/// What the matcher holds for a path.
#[derive(Debug, Clone, Copy)]
struct Entry {
    route: Route,
    methods: Methods,
}

/// A matched route and its path parameter (the model, where the path carries one).
pub struct Matched<'p> {
    pub route: Route,
    /// The methods it answers.
    pub methods: Methods,
    pub model: Option<&'p str>,
    /// `{key}` in management paths.
    pub key: Option<&'p str>,
    /// The rest of a pass-through path.
    pub rest: Option<&'p str>,
}

pub struct RouteTable {
    router: Router<Entry>,
}

/// Why the route table could not be built (a programming error caught by tests).
#[derive(Debug, thiserror::Error)]
#[error("route table: {0}")]
pub struct RouteTableError(#[from] matchit::InsertError);

/// The concrete paths of a declared one: `{provider}` once per pass-through provider.
fn concrete(path: &'static str) -> Vec<Cow<'static, str>> {
    match path.strip_prefix("/{provider}") {
        Some(rest) => crate::passthrough::PROVIDERS
            .iter()
            .map(|(prefix, _)| Cow::Owned(format!("/{prefix}{rest}")))
            .collect(),
        None => vec![Cow::Borrowed(path)],
    }
}

impl RouteTable {
    pub fn new() -> Result<Self, RouteTableError> {
        let mut r = Router::new();
        for e in ENDPOINTS {
            let entry = Entry {
                route: e.route,
                methods: e.methods,
            };
            for path in e.paths.iter().flat_map(|p| concrete(p)) {
                r.insert(path, entry)?;
            }
        }
        for a in crate::admin::routes::ROUTES {
            let entry = Entry {
                route: Route::Admin(a),
                methods: Methods::of(a.methods),
            };
            for path in a.paths {
                r.insert(*path, entry)?;
            }
        }
        Ok(Self { router: r })
    }

    pub fn at<'p>(&self, path: &'p str) -> Option<Matched<'p>> {
        let m = self.router.at(path).ok()?;
        Some(Matched {
            route: m.value.route,
            methods: m.value.methods,
            model: m.params.get("model"),
            key: m.params.get("key").or_else(|| m.params.get("id")),
            rest: m.params.get("path"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn matches_prefixed_bare_and_azure_paths() {
        let t = RouteTable::new().unwrap();
        for p in ["/v1/chat/completions", "/chat/completions"] {
            assert!(matches!(
                t.at(p).unwrap().route,
                Route::Llm {
                    expect: Expect::Chat,
                    path_model: false
                }
            ));
        }
        let m = t.at("/openai/deployments/gpt-4o/chat/completions").unwrap();
        assert_eq!(m.model, Some("gpt-4o"));
        let m = t.at("/engines/e1/embeddings").unwrap();
        assert!(matches!(
            m.route,
            Route::Llm {
                expect: Expect::Embedding,
                path_model: true
            }
        ));
        assert_eq!(
            t.at("/v1/models/openai/gpt-4o").unwrap().model,
            Some("openai/gpt-4o")
        );
        assert!(t.at("/nope").is_none());
    }

    /// The route of a listed row, as the matcher must find it.
    fn declared() -> Vec<(String, Route, Methods, Option<Role>)> {
        let mut out = Vec::new();
        for e in ENDPOINTS {
            for p in e.paths.iter().flat_map(|p| concrete(p)) {
                out.push((p.into_owned(), e.route, e.methods, None));
            }
        }
        for a in crate::admin::routes::ROUTES {
            for p in a.paths {
                let methods = Methods::of(a.methods);
                out.push((p.to_string(), Route::Admin(a), methods, Some(a.role)));
            }
        }
        out
    }

    #[test]
    fn every_listed_route_resolves_to_itself() {
        let t = RouteTable::new().unwrap();
        let listed = list();
        assert_eq!(
            listed.len(),
            ENDPOINTS.len() + crate::admin::routes::ROUTES.len()
        );
        for (path, route, methods, _) in declared() {
            // a path template matches its own route ({param} as a value)
            let m = t.at(&path).unwrap_or_else(|| panic!("{path} not matched"));
            assert_eq!(m.route, route, "{path}");
            assert_eq!(m.methods, methods, "{path}");
        }
        for info in &listed {
            assert!(!info.about.is_empty() && !info.paths.is_empty());
            assert!(!info.methods.names().is_empty());
        }
    }

    /// What the route table answered before it was declarative (issue 20), path by path: the
    /// methods each path admitted (of GET HEAD POST PUT PATCH DELETE OPTIONS), its `Allow` on a
    /// 405 ("*" when it admits all), and the least role of management routes ("-" for others).
    const BEFORE: &str = include_str!("methods_and_roles.tsv");

    #[test]
    fn methods_allow_and_roles_are_what_they_were() {
        let probe = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        let before: BTreeMap<&str, Vec<&str>> = BEFORE
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols[0], cols[1..].to_vec())
            })
            .collect();
        let mut now = BTreeMap::new();
        for (path, _, methods, role) in declared() {
            let admitted: Vec<&str> = probe
                .iter()
                .copied()
                .filter(|m| methods.allows(&http::Method::from_bytes(m.as_bytes()).unwrap()))
                .collect();
            let role = role.map_or("-".to_string(), |r| format!("{r:?}"));
            let row = vec![admitted.join(","), methods.allow().to_string(), role];
            assert!(now.insert(path.clone(), row).is_none(), "{path} twice");
        }
        assert_eq!(
            now.keys().map(String::as_str).collect::<Vec<_>>(),
            before.keys().copied().collect::<Vec<_>>(),
            "the same paths"
        );
        for (path, row) in &now {
            assert_eq!(row, &before[path.as_str()], "{path}");
        }
    }
}
