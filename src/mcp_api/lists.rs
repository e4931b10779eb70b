//! The lists a client asks for (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`; every permitted server's items named `{server}-{name}`), and
//! `prompts/get` and `resources/read`, sent to the owning server.

use futures_util::future::join_all;
use http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Answer, Call, answer_raw, error_response, result, rpc_response};
use crate::config::mcp::TOOL_SEPARATOR;
use crate::mcp::client::UpstreamError;
use crate::mcp::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, RpcError};
use crate::mcp::{Server, listing};

/// A list the gateway gathers from every server.
pub(super) struct Listing {
    method: &'static str,
    /// The member of the answer holding the items.
    member: &'static str,
    /// Tools: filtered by the caller's tool permissions.
    tools: bool,
    /// Resources: each one's server remembered by the session (`resources/read` goes there).
    resources: bool,
}

const fn listing(method: &'static str, member: &'static str, tools: bool) -> Listing {
    Listing {
        method,
        member,
        tools,
        resources: false,
    }
}

pub(super) const TOOLS: Listing = listing("tools/list", "tools", true);
pub(super) const PROMPTS: Listing = listing("prompts/list", "prompts", false);
pub(super) const RESOURCES: Listing = Listing {
    resources: true,
    ..listing("resources/list", "resources", false)
};
pub(super) const TEMPLATES: Listing =
    listing("resources/templates/list", "resourceTemplates", false);

impl Call<'_> {
    /// One server's items of a list (`tools/list`, `prompts/list`, `resources/list`,
    /// `resources/templates/list`; every page) that the caller may use, their names
    /// `{server}-{name}`.
    pub(super) async fn server_items(
        &self,
        server: &Server,
        list: &Listing,
    ) -> Result<Vec<Value>, UpstreamError> {
        let keep = |name: &str| !list.tools || self.scope.permits.tool(server, name);
        let send = |params: Option<Box<RawValue>>| async move {
            self.request(server, list.method, params.as_deref()).await
        };
        let items = listing::items(&server.name, list.member, keep, send).await?;
        if list.resources {
            for uri in items
                .iter()
                .filter_map(|i| i.get("uri").and_then(Value::as_str))
            {
                self.session.record_resource(uri, &server.name);
            }
        }
        Ok(items)
    }

    /// A list of every server's items; a server that fails is left out (logged).
    pub(super) async fn list(&self, id: &Value, list: &Listing) -> Answer {
        let all = join_all(
            self.scope
                .servers
                .iter()
                .map(|s| self.server_items(s, list)),
        )
        .await;
        let mut items = Vec::new();
        for (server, got) in self.scope.servers.iter().zip(all) {
            match got {
                Ok(t) => items.extend(t),
                Err(e) => {
                    tracing::warn!(server = %server.name, error = %e, method = list.method, "MCP server left out of a list")
                }
            }
        }
        result(id, json!({ list.member: items }))
    }

    /// `prompts/get`: the owning server's prompt (named `{server}-{prompt}`).
    pub(super) async fn get_prompt(&self, id: &Value, params: Option<&RawValue>) -> Answer {
        let fail = |message: String| {
            error_response(StatusCode::OK, &RpcError::new(id, INVALID_PARAMS, message))
        };
        let mut params: Map<String, Value> = match params.map(|p| serde_json::from_str(p.get())) {
            Some(Ok(p)) => p,
            _ => return fail("Invalid params: expected an object".into()),
        };
        let full = (params.get("name").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let found = full.split_once(TOOL_SEPARATOR).and_then(|(server, name)| {
            let s = self.scope.servers.iter().find(|s| s.name == server)?;
            Some((s.clone(), name.to_string()))
        });
        let Some((server, name)) = found else {
            return fail(format!("Unknown prompt: {full}"));
        };
        params.insert("name".into(), json!(name));
        let forwarded = RawValue::from_string(Value::Object(params).to_string()).ok();
        self.relay(id, &server, "prompts/get", forwarded.as_deref())
            .await
    }

    /// `resources/read`: the server that listed the resource through this session, else the
    /// only server in scope, else the one listing it now (none listing it: a templated URI,
    /// which only a single server in scope can serve).
    pub(super) async fn read_resource(&self, id: &Value, params: Option<&RawValue>) -> Answer {
        let fail = |message: String| {
            error_response(StatusCode::OK, &RpcError::new(id, INVALID_PARAMS, message))
        };
        let uri = params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|p| p.get("uri")?.as_str().map(str::to_string));
        let Some(uri) = uri else {
            return fail("Invalid params: uri is required".into());
        };
        let known = self
            .session
            .resource_server(&uri)
            .and_then(|name| self.scope.servers.iter().find(|s| s.name == name));
        let known = match self.scope.servers.as_slice() {
            [only] => Some(only),
            _ => known,
        };
        if let Some(server) = known {
            return self.relay(id, server, "resources/read", params).await;
        }
        let all = join_all(
            self.scope
                .servers
                .iter()
                .map(|s| self.server_items(s, &RESOURCES)),
        )
        .await;
        let listed = |got: &Result<Vec<Value>, UpstreamError>| {
            got.as_ref()
                .is_ok_and(|items| items.iter().any(|r| r["uri"] == uri.as_str()))
        };
        let owner = (self.scope.servers.iter().zip(all))
            .find(|(_, got)| listed(got))
            .map(|(s, _)| s.clone());
        let Some(server) = owner else {
            return fail(format!("Unknown resource: {uri}"));
        };
        self.relay(id, &server, "resources/read", params).await
    }

    /// Send one request to `server` and answer with its result or error.
    async fn relay(
        &self,
        id: &Value,
        server: &Server,
        method: &str,
        params: Option<&RawValue>,
    ) -> Answer {
        match self.request(server, method, params).await {
            Ok(Ok(res)) => answer_raw(id, &res),
            Ok(Err(err)) => rpc_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "error": err}),
            ),
            Err(e) => error_response(
                StatusCode::OK,
                &RpcError::new(
                    id,
                    INTERNAL_ERROR,
                    format!("MCP server '{}': {e}", server.name),
                ),
            ),
        }
    }
}
