//! The route table: path -> [`Route`], with method checks. Every LLM route also answers without
//! the `/v1` prefix, and under the Azure aliases with the model taken from the path.

use http::Method;
use matchit::Router;

use crate::admin::AdminRoute;
use crate::pipeline::parse::Expect;

/// What a path is for.
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
    /// `GET /health`: deployment health checks (admins).
    Health,
    /// `GET /health/history`: stored health checks (admins).
    HealthHistory,
    /// The management API.
    Admin(AdminRoute),
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
    /// `/{provider}/{*path}`: provider pass-through (`crate::passthrough`), any method.
    PassThrough(&'static str),
}

impl Route {
    pub fn method(&self) -> Method {
        match self {
            Route::Llm { .. }
            | Route::ResponseCancel
            | Route::CountTokens
            | Route::Gemini
            | Route::Search => Method::POST,
            Route::Admin(a) => a.method(),
            _ => Method::GET,
        }
    }
    /// Whether `m` may call this route (GET routes answer HEAD too).
    pub fn allows(&self, m: &Method) -> bool {
        if let Route::Managed(kind, at) = self {
            return at.allows(*kind, m);
        }
        if let Route::PassThrough(_) = self {
            return true;
        }
        if let Route::Admin(a) = self
            && a.also().as_ref() == Some(m)
        {
            return true;
        }
        let own = self.method();
        m == own
            || (own == Method::GET && m == Method::HEAD)
            || (*self == Route::ResponseItem && m == Method::DELETE)
    }
    pub fn allowed(&self) -> &'static str {
        if let Route::Managed(kind, at) = self {
            return at.allowed(*kind);
        }
        if *self == Route::ResponseItem {
            return "GET, HEAD, DELETE";
        }
        if let Route::Admin(a) = self {
            match a.also() {
                Some(Method::DELETE) => return "GET, HEAD, DELETE",
                Some(Method::PATCH) => return "GET, HEAD, PATCH",
                _ => {}
            }
        }
        match self.method() {
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            _ => "GET, HEAD",
        }
    }
}

/// A matched route and its path parameter (the model, where the path carries one).
pub struct Matched<'p> {
    pub route: Route,
    pub model: Option<&'p str>,
    /// `{key}` in management paths.
    pub key: Option<&'p str>,
    /// The rest of a pass-through path.
    pub rest: Option<&'p str>,
}

pub struct RouteTable {
    router: Router<Route>,
}

/// Why the route table could not be built (a programming error caught by tests).
#[derive(Debug, thiserror::Error)]
#[error("route table: {0}")]
pub struct RouteTableError(#[from] matchit::InsertError);

impl RouteTable {
    pub fn new() -> Result<Self, RouteTableError> {
        let mut r = Router::new();
        let llm = |expect| Route::Llm {
            expect,
            path_model: false,
        };
        let azure = |expect| Route::Llm {
            expect,
            path_model: true,
        };
        for prefix in ["/v1", ""] {
            r.insert(format!("{prefix}/chat/completions"), llm(Expect::Chat))?;
            r.insert(format!("{prefix}/completions"), llm(Expect::Completion))?;
            r.insert(format!("{prefix}/embeddings"), llm(Expect::Embedding))?;
            r.insert(format!("{prefix}/responses"), llm(Expect::Responses))?;
            r.insert(
                format!("{prefix}/images/generations"),
                llm(Expect::ImageGeneration),
            )?;
            r.insert(format!("{prefix}/audio/speech"), llm(Expect::Speech))?;
            r.insert(format!("{prefix}/images/edits"), llm(Expect::ImageEdit))?;
            r.insert(
                format!("{prefix}/images/variations"),
                llm(Expect::ImageVariation),
            )?;
            r.insert(
                format!("{prefix}/audio/transcriptions"),
                llm(Expect::Transcription),
            )?;
            r.insert(
                format!("{prefix}/audio/translations"),
                llm(Expect::Translation),
            )?;
            r.insert(format!("{prefix}/moderations"), llm(Expect::Moderation))?;
            r.insert(format!("{prefix}/rerank"), llm(Expect::Rerank))?;
            r.insert(format!("{prefix}/search"), Route::Search)?;
            r.insert(format!("{prefix}/search/{{model}}"), Route::Search)?;
            r.insert(format!("{prefix}/search/tools"), Route::SearchTools)?;
            {
                use crate::managed::{At, Kind};
                for (base, kind) in [
                    ("files", Kind::File),
                    ("batches", Kind::Batch),
                    ("fine_tuning/jobs", Kind::FineTune),
                ] {
                    r.insert(
                        format!("{prefix}/{base}"),
                        Route::Managed(kind, At::Collection),
                    )?;
                    r.insert(
                        format!("{prefix}/{base}/{{id}}"),
                        Route::Managed(kind, At::Item),
                    )?;
                }
                for (path, kind, at) in [
                    ("files/{id}/content", Kind::File, At::Content),
                    ("batches/{id}/cancel", Kind::Batch, At::Cancel),
                    ("fine_tuning/jobs/{id}/cancel", Kind::FineTune, At::Cancel),
                    ("fine_tuning/jobs/{id}/events", Kind::FineTune, At::Events),
                    (
                        "fine_tuning/jobs/{id}/checkpoints",
                        Kind::FineTune,
                        At::Checkpoints,
                    ),
                ] {
                    r.insert(format!("{prefix}/{path}"), Route::Managed(kind, at))?;
                }
            }
            r.insert(format!("{prefix}/messages"), llm(Expect::Messages))?;
            r.insert(
                format!("{prefix}/messages/count_tokens"),
                Route::CountTokens,
            )?;
            r.insert(format!("{prefix}/responses/{{id}}"), Route::ResponseItem)?;
            r.insert(
                format!("{prefix}/responses/{{id}}/cancel"),
                Route::ResponseCancel,
            )?;
            r.insert(
                format!("{prefix}/responses/{{id}}/input_items"),
                Route::ResponseInputItems,
            )?;
            r.insert(format!("{prefix}/models"), Route::Models)?;
            r.insert(format!("{prefix}/models/{{*model}}"), Route::ModelInfo)?;
            r.insert(
                format!("{prefix}/engines/{{model}}/chat/completions"),
                azure(Expect::Chat),
            )?;
            r.insert(
                format!("{prefix}/engines/{{model}}/completions"),
                azure(Expect::Completion),
            )?;
            r.insert(
                format!("{prefix}/engines/{{model}}/embeddings"),
                azure(Expect::Embedding),
            )?;
        }
        r.insert(
            "/openai/deployments/{model}/chat/completions",
            azure(Expect::Chat),
        )?;
        r.insert(
            "/openai/deployments/{model}/completions",
            azure(Expect::Completion),
        )?;
        r.insert(
            "/openai/deployments/{model}/embeddings",
            azure(Expect::Embedding),
        )?;
        r.insert(
            "/openai/deployments/{model}/images/generations",
            azure(Expect::ImageGeneration),
        )?;
        r.insert(
            "/openai/deployments/{model}/audio/speech",
            azure(Expect::Speech),
        )?;
        r.insert("/v2/rerank", llm(Expect::Rerank))?;
        for (path, expect) in [
            ("images/edits", Expect::ImageEdit),
            ("audio/transcriptions", Expect::Transcription),
            ("audio/translations", Expect::Translation),
        ] {
            r.insert(
                format!("/openai/deployments/{{model}}/{path}"),
                azure(expect),
            )?;
        }
        for (path, route) in AdminRoute::ALL {
            r.insert(*path, Route::Admin(*route))?;
        }
        r.insert("/v1beta/models/{*model}", Route::Gemini)?;
        for (prefix, _) in crate::passthrough::PROVIDERS {
            r.insert(format!("/{prefix}/{{*path}}"), Route::PassThrough(prefix))?;
        }
        r.insert("/health/liveliness", Route::Liveliness)?;
        r.insert("/health/liveness", Route::Liveliness)?;
        r.insert("/health/readiness", Route::Readiness)?;
        r.insert("/health", Route::Health)?;
        r.insert("/health/history", Route::HealthHistory)?;
        Ok(Self { router: r })
    }

    pub fn at<'p>(&self, path: &'p str) -> Option<Matched<'p>> {
        let m = self.router.at(path).ok()?;
        Some(Matched {
            route: *m.value,
            model: m.params.get("model"),
            key: m.params.get("key").or_else(|| m.params.get("id")),
            rest: m.params.get("path"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
