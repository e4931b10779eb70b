//! Response-ID security for the Responses API (`general_settings.disable_responses_id_security`,
//! `allow_unmanaged_response_ids`): create runs the LLM pipeline, get, delete, cancel and input
//! items by id are served by `crate::managed::responses`.
//!
//! Ids handed to clients are sealed ([`ids`]) with the caller's user and team and the
//! deployment that holds the response, so a later call goes back to that deployment and only
//! the owner (or an admin) may make it.

pub mod ids;

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use crate::auth::Principal;
use ids::{Owned, Sealer};

const DISABLE_HINT: &str = "To disable this security feature, set general_settings::disable_responses_id_security to True in the config.yaml file.";

#[derive(Debug, thiserror::Error)]
pub enum ResponsesError {
    #[error(
        "Forbidden. The response id is not associated with the user, who this key belongs to. {DISABLE_HINT}"
    )]
    OtherUser,
    #[error(
        "Forbidden. The response id is not associated with the team, who this key belongs to. {DISABLE_HINT}"
    )]
    OtherTeam,
    #[error(
        "Forbidden. This response id was not issued by this proxy, so the proxy cannot tell who owns it. To accept such ids, set general_settings::allow_unmanaged_response_ids to True in the config.yaml file."
    )]
    Unmanaged,
    #[error(
        "Cannot tell which deployment holds response {0}: pass the model as ?model= or the x-tianji-model header"
    )]
    NoDeployment(String),
    #[error("The deployment holding this response ({0}) does not serve the Responses API")]
    Unsupported(String),
}

crate::error::feature_error!(ResponsesError, "responses");

impl ResponsesError {
    pub fn status(&self) -> StatusCode {
        match self {
            ResponsesError::NoDeployment(_) => StatusCode::BAD_REQUEST,
            ResponsesError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// `raw` as owned by `principal` (its user and team) on deployment `model_id`.
pub fn owner(raw: &str, principal: &Principal, model_id: &str) -> Owned {
    Owned {
        raw: raw.to_string(),
        user_id: caller_user(principal).into_owned(),
        team_id: caller_team(principal).to_string(),
        model_id: model_id.to_string(),
    }
}

/// Who owns what `principal` creates, as the user part of an owner: its user; else, for a key
/// of no user, the key itself (`key:<hash>`), so keys without users do not share objects; else
/// (the master key) `proxy_admin`.
pub fn caller_user(principal: &Principal) -> std::borrow::Cow<'_, str> {
    if let Some(u) = principal.user_id().filter(|u| !u.is_empty()) {
        return std::borrow::Cow::Borrowed(u);
    }
    match principal.key() {
        Some(k) => std::borrow::Cow::Owned(format!("key:{}", k.key.token)),
        None => std::borrow::Cow::Borrowed("proxy_admin"),
    }
}

pub fn caller_team(principal: &Principal) -> &str {
    principal
        .key()
        .and_then(|k| k.key.team_id.as_deref())
        .unwrap_or_default()
}

/// Response-ID security settings.
#[derive(Debug)]
pub struct IdSecurity {
    sealer: Option<std::sync::Arc<Sealer>>,
    pub disabled: bool,
    allow_unmanaged: bool,
}

impl IdSecurity {
    /// `secret`: the salt key, else the master key (none: ids cannot be sealed).
    pub fn new(secret: Option<&str>, disabled: bool, allow_unmanaged: bool) -> Self {
        Self {
            sealer: secret.and_then(Sealer::new).map(std::sync::Arc::new),
            disabled,
            allow_unmanaged,
        }
    }

    /// The key ids are sealed with (none without a master or salt key).
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_deref()
    }

    /// The id to give `principal` for the provider's `raw` id held by `model_id`.
    pub fn seal(&self, raw: &str, principal: &Principal, model_id: &str) -> Option<String> {
        if self.disabled {
            return None;
        }
        self.sealer.as_ref()?.seal(&owner(raw, principal, model_id))
    }

    /// The provider's id behind `id` and the deployment holding it (when the id says), if
    /// `principal` may use it.
    pub fn check(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<(String, Option<String>), ResponsesError> {
        let opened = self.sealer.as_ref().and_then(|s| s.open(id));
        let Some(o) = opened else {
            if self.disabled
                || self.allow_unmanaged
                || self.sealer.is_none()
                || principal.is_admin()
            {
                return Ok((id.to_string(), None));
            }
            return Err(ResponsesError::Unmanaged);
        };
        if !self.disabled && !principal.is_admin() {
            let user = caller_user(principal);
            if !o.user_id.is_empty() && o.user_id != user {
                return Err(ResponsesError::OtherUser);
            }
            if !o.team_id.is_empty() && o.team_id != caller_team(principal) {
                return Err(ResponsesError::OtherTeam);
            }
        }
        Ok((o.raw, Some(o.model_id)))
    }

    /// Seal the top-level `id` of a response object (JSON) when it is the provider's.
    pub fn seal_body(&self, body: &Bytes, principal: &Principal, model_id: &str) -> Option<Bytes> {
        if self.disabled || self.sealer.is_none() {
            return None;
        }
        let mut v: Value = serde_json::from_slice(body).ok()?;
        let raw = v.get("id")?.as_str()?.to_string();
        let sealed = self.seal(&raw, principal, model_id)?;
        v["id"] = Value::String(sealed);
        serde_json::to_vec(&v).ok().map(Bytes::from)
    }

    /// A rewriter of SSE event lines that seals `response.id` for `principal` (none when
    /// ids are not sealed).
    pub fn event_sealer(&self, principal: &Principal, model_id: &str) -> Option<EventSealer> {
        if self.disabled {
            return None;
        }
        Some(EventSealer {
            sealer: self.sealer.clone()?,
            owner: owner("", principal, model_id),
        })
    }
}

/// Seals response ids in a Responses API event stream, line by line.
pub struct EventSealer {
    sealer: std::sync::Arc<Sealer>,
    owner: Owned,
}

impl EventSealer {
    /// The line with `response.id` sealed, if it carries one (`data: {...}` lines only).
    pub fn line(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        let json = line.strip_prefix(b"data: ")?;
        crate::literal!(b"\"response\"").find(json)?;
        let mut v: Value = serde_json::from_slice(json).ok()?;
        self.owner.raw = v.get("response")?.get("id")?.as_str()?.to_string();
        let sealed = self.sealer.seal(&self.owner)?;
        v["response"]["id"] = Value::String(sealed);
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(&serde_json::to_vec(&v).ok()?);
        Some(out)
    }

    /// Rewrite the complete lines of `pending` + `chunk`; the unfinished tail stays pending.
    pub fn feed(&mut self, pending: &mut Vec<u8>, chunk: &[u8]) -> Bytes {
        pending.extend_from_slice(chunk);
        let Some(end) = memchr::memrchr(b'\n', pending) else {
            return Bytes::new();
        };
        let rest = pending.split_off(end + 1);
        let done = std::mem::replace(pending, rest);
        let mut out = Vec::with_capacity(done.len() + 64);
        for line in done.split_inclusive(|b| *b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            match self.line(body) {
                Some(new) => {
                    out.extend_from_slice(&new);
                    out.push(b'\n');
                }
                None => out.extend_from_slice(line),
            }
        }
        Bytes::from(out)
    }
}
