//! One SpendLogs row as the request path hands it to the writer. It points at the caller's
//! cached records and the deployment rather than copying their strings: the writer reads them
//! when it stores the row (timestamps in Unix seconds).

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::auth::{KeyRecord, TeamRecord};
use crate::router::Deployment;

/// SpendLogs `custom_llm_provider` of a call to an A2A agent (LiteLLM's).
pub const AGENT_PROVIDER: &str = "a2a_agent";

/// Who made the request.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    /// A virtual key (and its team).
    Key(Arc<KeyRecord>, Option<Arc<TeamRecord>>),
    /// The master key, by its sha256 hex.
    Master(Arc<str>),
    /// No master key configured.
    #[default]
    Open,
}

impl Caller {
    /// The caller behind `principal` (`master_hash`: the master key's, when one is set).
    pub fn of(principal: &crate::auth::Principal, master_hash: Option<&Arc<str>>) -> Self {
        use crate::auth::Principal;
        match principal {
            Principal::Key(k) => Caller::Key(k.key.clone(), k.team.clone()),
            Principal::Master => master_hash.map_or(Caller::Open, |h| Caller::Master(h.clone())),
            Principal::Open => Caller::Open,
        }
    }
}

/// What went wrong, for a failed request (in SpendLogs `metadata.error_information`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorInformation {
    pub error_message: String,
    pub error_code: u16,
}

#[derive(Debug, Clone, Default)]
pub struct SpendRow {
    /// The gateway's id of the call (`x-tianji-call-id`, column `litellm_call_id`): unique.
    pub call_id: Uuid,
    /// The answer's `id` (`chatcmpl-...`, `msg_...`, `resp_...`) when it had one: the row's
    /// `request_id`, as LiteLLM stores it, unless another row already has it (the writer
    /// then uses the call id).
    pub response_id: Option<String>,
    pub call_type: &'static str,
    /// The route called (`/v1/chat/completions`, ...).
    pub endpoint: &'static str,
    pub caller: Caller,
    pub deployment: Option<Arc<Deployment>>,
    /// The provider's model name when it is not the deployment's (a pass-through call names
    /// its own model; the deployment only lends its credential).
    pub provider_model: Option<String>,
    /// The public model name the client asked for.
    pub model_group: String,
    pub end_user: Option<String>,
    pub request_tags: Vec<String>,
    pub requester_ip_address: Option<IpAddr>,
    pub spend: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub start_time: f64,
    pub end_time: f64,
    pub completion_start_time: Option<f64>,
    pub request_duration_ms: u64,
    pub cache_hit: bool,
    /// The response cache key ("" when the cache did not apply).
    pub cache_key: String,
    /// `success` or `failure`.
    pub status: &'static str,
    pub error: Option<ErrorInformation>,
    /// The request's `messages` (or `input`, `prompt`) and the whole answer, as the raw JSON
    /// they were; only with `store_prompts_in_spend_logs` (or a logging callback that logs them).
    pub messages: Option<Box<RawValue>>,
    pub response: Option<Box<RawValue>>,
    /// An MCP tool call (`call_mcp_tool`): its server and tool.
    pub tool: Option<Box<ToolCall>>,
    /// The A2A agent the call was made to (SpendLogs `agent_id`; its daily table's row).
    pub agent_id: Option<Arc<str>>,
    /// An OCR call's pages (`metadata.usage_object`, as LiteLLM keeps a call's usage there).
    pub pages: Option<crate::spend::cost::Pages>,
}

/// An OCR call's usage as SpendLogs `metadata.usage_object` shows it.
#[derive(Debug, Serialize)]
pub struct PagesUsed {
    pub pages_processed: u64,
    pub pages_processed_annotation: u64,
}

/// The tool an MCP `tools/call` ran (SpendLogs `mcp_namespaced_tool_name`, and LiteLLM's
/// `mcp_tool_call_metadata` in `metadata`; never its arguments).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolCall {
    /// The tool's own name on its server.
    pub name: String,
    pub mcp_server_name: String,
    /// `{server}/{tool}`
    pub namespaced_tool_name: String,
}

/// The part of a request body that SpendLogs `messages` keeps: `messages`, else `input`, else
/// `prompt` (raw JSON, not parsed into a tree).
pub fn asked(body: &[u8]) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct Asked<'a> {
        #[serde(borrow)]
        messages: Option<&'a RawValue>,
        #[serde(borrow)]
        input: Option<&'a RawValue>,
        #[serde(borrow)]
        prompt: Option<&'a RawValue>,
    }
    let a: Asked<'_> = serde_json::from_slice(body).ok()?;
    a.messages.or(a.input).or(a.prompt).map(RawValue::to_owned)
}

/// A whole answer as raw JSON (`None` when it is not JSON).
pub fn answered(body: &[u8]) -> Option<Box<RawValue>> {
    serde_json::from_slice::<&RawValue>(body)
        .ok()
        .map(RawValue::to_owned)
}

/// A raw body as SpendLogs stores it: the JSON, or `{}` when there is none.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Stored<'a> {
    Raw(&'a RawValue),
    Empty {},
}

impl<'a> Stored<'a> {
    pub fn of(v: &'a Option<Box<RawValue>>) -> Self {
        v.as_deref().map_or(Stored::Empty {}, Stored::Raw)
    }
}

impl SpendRow {
    /// sha256 hex of the key used (never the raw key); "" when the gateway is open.
    pub fn api_key(&self) -> &str {
        match &self.caller {
            Caller::Key(k, _) => &k.token,
            Caller::Master(h) => h,
            Caller::Open => "",
        }
    }
    fn key(&self) -> Option<&KeyRecord> {
        match &self.caller {
            Caller::Key(k, _) => Some(k),
            _ => None,
        }
    }
    fn team(&self) -> Option<&TeamRecord> {
        match &self.caller {
            Caller::Key(_, t) => t.as_deref(),
            _ => None,
        }
    }
    /// The key's user.
    pub fn user_id(&self) -> Option<&str> {
        self.key().and_then(|k| k.user_id.as_deref())
    }
    pub fn team_id(&self) -> Option<&str> {
        self.key().and_then(|k| k.team_id.as_deref())
    }
    /// The key's organisation, or its team's.
    pub fn organization_id(&self) -> Option<&str> {
        self.key()
            .and_then(|k| k.organization_id.as_deref())
            .or_else(|| self.team().and_then(|t| t.organization_id.as_deref()))
    }
    /// The provider's model name.
    pub fn model(&self) -> &str {
        if let Some(m) = &self.provider_model {
            return m;
        }
        self.deployment
            .as_ref()
            .map_or("", |d| d.upstream_model.as_str())
    }
    pub fn model_id(&self) -> &str {
        self.deployment.as_ref().map_or("", |d| d.id.as_str())
    }
    pub fn provider(&self) -> &str {
        if let Some(t) = &self.tool {
            return &t.mcp_server_name;
        }
        if self.agent_id.is_some() {
            return AGENT_PROVIDER;
        }
        self.deployment.as_ref().map_or("", |d| d.provider.name())
    }
    pub fn api_base(&self) -> &str {
        self.deployment
            .as_ref()
            .map_or("", |d| d.api_base_shown.as_str())
    }
    /// SpendLogs `mcp_namespaced_tool_name` (MCP tool calls only).
    pub fn mcp_tool(&self) -> Option<&str> {
        self.tool
            .as_deref()
            .map(|t| t.namespaced_tool_name.as_str())
    }
    pub fn end_user(&self) -> Option<&str> {
        self.end_user.as_deref()
    }

    /// SpendLogs `metadata`: LiteLLM's `user_api_key_*` fields, and the error of a failure.
    pub fn metadata(&self) -> Metadata<'_> {
        let who = self.who();
        Metadata {
            usage_object: self.pages.map(|p| PagesUsed {
                pages_processed: p.processed,
                pages_processed_annotation: p.annotated,
            }),
            user_api_key: self.api_key(),
            litellm_call_id: CallId(self.call_id),
            error_information: self.error.as_ref(),
            user_api_key_alias: who.user_api_key_alias,
            user_api_key_org_id: who.user_api_key_org_id,
            user_api_key_team_id: who.user_api_key_team_id,
            user_api_key_user_id: who.user_api_key_user_id,
            mcp_tool_call_metadata: self.tool.as_deref(),
            user_api_key_team_alias: who.user_api_key_team_alias,
            user_api_key_end_user_id: who.user_api_key_end_user_id,
        }
    }

    /// The caller's alias, team, user, org and end user, as LiteLLM's `user_api_key_*` fields.
    pub fn who(&self) -> Who<'_> {
        Who {
            user_api_key_alias: self.key().and_then(|k| k.key_alias.as_deref()),
            user_api_key_team_id: self.team_id(),
            user_api_key_team_alias: self.team().and_then(|t| t.team_alias.as_deref()),
            user_api_key_user_id: self.user_id(),
            user_api_key_org_id: self.organization_id(),
            user_api_key_end_user_id: self.end_user(),
        }
    }
}

/// A call id, serialized as its hyphenated text (without a `String`).
#[derive(Debug, Clone, Copy)]
pub struct CallId(pub uuid::Uuid);

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = uuid::Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

/// See [`SpendRow::who`].
#[derive(Debug, Serialize)]
pub struct Who<'a> {
    pub user_api_key_alias: Option<&'a str>,
    pub user_api_key_team_id: Option<&'a str>,
    pub user_api_key_team_alias: Option<&'a str>,
    pub user_api_key_user_id: Option<&'a str>,
    pub user_api_key_org_id: Option<&'a str>,
    pub user_api_key_end_user_id: Option<&'a str>,
}

/// See [`SpendRow::metadata`]: the fields of [`Who`] and the key's hash, the call id, and
/// what only some calls have. The fields are in the order PostgreSQL keeps a `jsonb` object's
/// keys (shorter first, then bytewise): the database sorts the keys of each document it
/// parses, and a document that comes sorted costs it the fewest comparisons.
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_object: Option<PagesUsed>,
    pub user_api_key: &'a str,
    /// The call id (`x-tianji-call-id`), also kept here when `request_id` is the answer's id.
    pub litellm_call_id: CallId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_information: Option<&'a ErrorInformation>,
    pub user_api_key_alias: Option<&'a str>,
    pub user_api_key_org_id: Option<&'a str>,
    pub user_api_key_team_id: Option<&'a str>,
    pub user_api_key_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_tool_call_metadata: Option<&'a ToolCall>,
    pub user_api_key_team_alias: Option<&'a str>,
    pub user_api_key_end_user_id: Option<&'a str>,
}

impl Metadata<'_> {
    /// The JSON `serde_json::to_writer` writes for this value (a test holds them equal), with
    /// the keys written as they are instead of escaped one by one: the spend writer's hot
    /// loop writes one per row.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        fn text(out: &mut Vec<u8>, s: Option<&str>) {
            match s {
                Some(s) => crate::util::json_text::write_str(out, s),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'{');
        if let Some(u) = &self.usage_object {
            out.extend_from_slice(b"\"usage_object\":");
            serde_json::to_writer(&mut *out, u)?;
            out.push(b',');
        }
        out.extend_from_slice(b"\"user_api_key\":");
        text(out, Some(self.user_api_key));
        out.extend_from_slice(b",\"litellm_call_id\":\"");
        let mut id = uuid::Uuid::encode_buffer();
        out.extend_from_slice(
            self.litellm_call_id
                .0
                .hyphenated()
                .encode_lower(&mut id)
                .as_bytes(),
        );
        out.push(b'"');
        if let Some(e) = self.error_information {
            out.extend_from_slice(b",\"error_information\":");
            serde_json::to_writer(&mut *out, e)?;
        }
        for (key, v) in [
            (&b",\"user_api_key_alias\":"[..], self.user_api_key_alias),
            (b",\"user_api_key_org_id\":", self.user_api_key_org_id),
            (b",\"user_api_key_team_id\":", self.user_api_key_team_id),
            (b",\"user_api_key_user_id\":", self.user_api_key_user_id),
        ] {
            out.extend_from_slice(key);
            text(out, v);
        }
        if let Some(t) = self.mcp_tool_call_metadata {
            out.extend_from_slice(b",\"mcp_tool_call_metadata\":");
            serde_json::to_writer(&mut *out, t)?;
        }
        out.extend_from_slice(b",\"user_api_key_team_alias\":");
        text(out, self.user_api_key_team_alias);
        out.extend_from_slice(b",\"user_api_key_end_user_id\":");
        text(out, self.user_api_key_end_user_id);
        out.push(b'}');
        Ok(())
    }
}

pub use crate::util::status::exception_class as error_class;

#[cfg(test)]
mod tests {
    use super::*;

    /// A row with every metadata field set: a key with an alias, user, team (with an alias) and
    /// organisation; an end user, an error, a tool and OCR pages.
    fn full_row(token: &str, alias: &str, end_user: &str, message: &str) -> SpendRow {
        let key = Arc::new(KeyRecord {
            token: token.into(),
            key_alias: Some(alias.into()),
            user_id: Some("u".into()),
            team_id: Some("t".into()),
            organization_id: Some("o".into()),
            ..Default::default()
        });
        let team = Arc::new(TeamRecord {
            team_id: "t".into(),
            team_alias: Some("ta".into()),
            ..Default::default()
        });
        SpendRow {
            caller: Caller::Key(key, Some(team)),
            end_user: Some(end_user.into()),
            error: Some(ErrorInformation {
                error_message: message.into(),
                error_code: 500,
            }),
            tool: Some(Box::new(ToolCall::default())),
            pages: Some(crate::spend::cost::Pages {
                processed: 1,
                annotated: 0,
            }),
            ..Default::default()
        }
    }

    /// `write_json` writes what serde_json writes, whichever fields are set (and strings that
    /// need escaping).
    #[test]
    fn metadata_written_as_serde_writes_it() {
        let bare = SpendRow::default();
        let full = full_row("h\"a\\sh", "al\nias é", "e\u{1}", "bad \"thing\"");
        for row in [&bare, &full] {
            let mut fast = Vec::new();
            row.metadata().write_json(&mut fast).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                serde_json::to_string(&row.metadata()).unwrap()
            );
        }
    }

    /// `metadata` serializes its keys in `jsonb`'s order (length, then bytes), every key
    /// present.
    #[test]
    fn metadata_keys_come_in_jsonb_order() {
        let row = full_row("hash", "alias", "e", "m");
        let text = serde_json::to_string(&row.metadata()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let keys: Vec<&str> = v.as_object().map_or(Vec::new(), |m| {
            let mut k: Vec<&str> = m.keys().map(String::as_str).collect();
            k.sort_by_key(|k| text.find(&format!("\"{k}\":")));
            k
        });
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 11);
        assert_eq!(v["user_api_key_team_alias"], "ta");
        assert_eq!(v["user_api_key_org_id"], "o");
        assert_eq!(v["user_api_key_end_user_id"], "e");
        assert_eq!(v["user_api_key"], "hash");
    }
}
