//! Guardrails: checks on a request's text before it goes upstream (`pre_call`), alongside the
//! upstream call (`during_call`), on the answer (`post_call`, whole or streamed), or on what is
//! logged only (`logging_only`). Built once from the config (`guardrails:` entries, plus
//! `banned_keywords_list` and `blocked_user_list` as the built-in `banned_keywords` and
//! `blocked_user_list`); `crate::pipeline`'s guard stage runs them.
//!
//! Which run on a request: the `default_on` ones (unless the key's or team's
//! `disable_global_guardrails` turns them off and the guardrail has `can_disable` left on),
//! the key's and team's `guardrails`, and the request's own `guardrails` (or
//! `metadata.guardrails`). A request naming an unknown guardrail is refused (400).
//!
//! A guardrail passes, blocks (a 4xx naming it), or rewrites the texts (masking). A guardrail
//! that fails or times out blocks the request (503) unless `fail_open`.

pub mod api;
mod filter;
mod remote;
pub mod stream;
pub mod texts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::config::Config;
use crate::config::guardrails::{GuardrailEntry, ListOrFile};
use crate::router::ModelTable;
use crate::upstream::HttpClient;
pub use filter::luhn;
pub use texts::Side;

/// At most this many guardrails (one bit each in a request's selection).
pub const MAX_GUARDRAILS: usize = 64;
/// Default time limit of a guardrail call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// When a guardrail runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    PreCall,
    DuringCall,
    PostCall,
    LoggingOnly,
}

impl Mode {
    const ALL: [(Mode, &'static str); 4] = [
        (Mode::PreCall, "pre_call"),
        (Mode::DuringCall, "during_call"),
        (Mode::PostCall, "post_call"),
        (Mode::LoggingOnly, "logging_only"),
    ];

    fn parse(s: &str) -> Option<Mode> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(m, _)| *m)
    }
}

/// A guardrail's modes, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Modes(u8);

impl Modes {
    fn with(self, m: Mode) -> Modes {
        Modes(self.0 | 1 << m as u8)
    }

    fn has(self, m: Mode) -> bool {
        self.0 & (1 << m as u8) != 0
    }
}

/// What a guardrail decided.
#[derive(Debug, Clone)]
pub enum Verdict {
    Pass,
    Block {
        status: u16,
        message: String,
    },
    /// The texts, in the order given, some changed.
    Rewrite(Vec<String>),
}

impl Verdict {
    fn block(status: u16, message: String) -> Self {
        Verdict::Block { status, message }
    }
}

/// Why a guardrail cannot be built from its config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Params(String),
}

/// Why the guardrails cannot be built (a config error).
#[derive(Debug, thiserror::Error)]
pub enum GuardrailsConfigError {
    #[error("guardrails[{index}] ({name}): {message}")]
    Entry {
        index: usize,
        name: String,
        message: String,
    },
    #[error("tianji_settings.{key}: {message}")]
    Setting { key: &'static str, message: String },
}

/// A request refused (or failed) by a guardrail.
#[derive(Debug, thiserror::Error)]
pub enum GuardrailError {
    #[error("{message}")]
    Blocked {
        guardrail: String,
        status: StatusCode,
        message: String,
    },
    #[error("Guardrail '{0}' is not configured")]
    Unknown(String),
    #[error("Guardrail '{guardrail}' failed: {detail}")]
    Failed { guardrail: String, detail: String },
    #[error("`guardrails` must be a list of guardrail names")]
    BadList,
}

impl GuardrailError {
    pub fn status(&self) -> StatusCode {
        match self {
            GuardrailError::Blocked { status, .. } => *status,
            GuardrailError::Unknown(_) | GuardrailError::BadList => StatusCode::BAD_REQUEST,
            GuardrailError::Failed { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

crate::error::feature_error!(
    GuardrailError,
    "guardrail",
    fn param(&self) -> Option<&str> {
        match self {
            GuardrailError::Blocked { guardrail, .. }
            | GuardrailError::Failed { guardrail, .. } => Some(guardrail),
            GuardrailError::Unknown(_) | GuardrailError::BadList => Some("guardrails"),
        }
    }
);

/// A guardrail kind and its state.
enum Check {
    BannedKeywords(filter::Keywords),
    BlockedUsers(filter::BlockedUsers),
    ContentFilter(filter::ContentFilter),
    Presidio(remote::Presidio),
    Moderation(remote::Moderation),
    Generic(remote::Generic),
    Lakera(remote::Lakera),
    Bedrock(remote::Bedrock),
}

pub use crate::config::guardrails::KINDS;

impl Check {
    fn build(kind: &str, p: &Map<String, Value>) -> Result<Self, BuildError> {
        Ok(match kind {
            "banned_keywords" => Check::BannedKeywords(filter::Keywords::new(strings(
                p.get("banned_keywords_list"),
            )?)?),
            "blocked_user_list" => Check::BlockedUsers(filter::BlockedUsers::new(strings(
                p.get("blocked_user_list"),
            )?)),
            "litellm_content_filter" | "content_filter" => {
                Check::ContentFilter(filter::ContentFilter::from_params(p)?)
            }
            "presidio" => Check::Presidio(remote::Presidio::from_params(p)?),
            "openai_moderation" => Check::Moderation(remote::Moderation::from_params(p)),
            "generic_guardrail_api" => Check::Generic(remote::Generic::from_params(p)?),
            "lakera_v2" | "lakera" => Check::Lakera(remote::Lakera::from_params(p)?),
            "bedrock" => Check::Bedrock(remote::Bedrock::from_params(p)?),
            other => {
                return Err(BuildError::Params(format!(
                    "guardrail kind '{other}' is not implemented (implemented: {})",
                    KINDS.join(", ")
                )));
            }
        })
    }

    /// Runs locally (no call out): no time limit applies.
    fn local(&self) -> bool {
        matches!(
            self,
            Check::BannedKeywords(_) | Check::BlockedUsers(_) | Check::ContentFilter(_)
        )
    }
}

/// A list of strings from a JSON list or a file (one a line).
fn strings(v: Option<&Value>) -> Result<Vec<String>, BuildError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()),
        Some(Value::String(path)) => lines_of(path).map_err(BuildError::Params),
        Some(_) => Err(BuildError::Params("expected a list or a file path".into())),
    }
}

fn lines_of(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// One configured guardrail.
pub struct Guardrail {
    pub name: String,
    /// The `guardrail:` value.
    pub kind: String,
    modes: Modes,
    pub default_on: bool,
    pub fail_open: bool,
    /// A key's or team's `disable_global_guardrails` may turn it off.
    pub can_disable: bool,
    timeout: Duration,
    check: Check,
    /// Its params as `/guardrails/list` shows them (secrets redacted).
    pub shown_params: Value,
    pub info: Option<Value>,
}

impl Guardrail {
    /// The modes, as LiteLLM names them.
    pub fn mode_names(&self) -> Vec<&'static str> {
        (Mode::ALL.iter())
            .filter(|(m, _)| self.modes.has(*m))
            .map(|(_, n)| *n)
            .collect()
    }

    /// Run the check on `texts` within the time limit; a failure is the guardrail's error.
    async fn run(&self, texts: &[String], ctx: &Ctx<'_>) -> Result<Verdict, String> {
        if texts.is_empty() && !matches!(self.check, Check::BlockedUsers(_)) {
            return Ok(Verdict::Pass);
        }
        let call = async {
            match &self.check {
                Check::BannedKeywords(k) => Ok(k.check(texts)),
                Check::BlockedUsers(b) => Ok(b.check(ctx.end_user)),
                Check::ContentFilter(f) => Ok(f.check(texts)),
                Check::Presidio(p) => p.check(texts, ctx).await,
                Check::Moderation(m) => m.check(texts, ctx).await,
                Check::Generic(g) => g.check(texts, ctx).await,
                Check::Lakera(l) => l.check(texts, ctx).await,
                Check::Bedrock(b) => b.check(texts, ctx).await,
            }
        };
        if self.check.local() {
            return call.await;
        }
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {:.1}s",
                    self.timeout.as_secs_f64()
                ))
            })
    }

    fn presidio_unmasks(&self) -> bool {
        matches!(&self.check, Check::Presidio(p) if p.output_parse_pii)
    }
}

/// What a guardrail call sees of the request.
pub struct Ctx<'a> {
    pub side: Side,
    pub call_id: &'a str,
    pub model: &'a str,
    pub end_user: Option<&'a str>,
    pub principal: Option<&'a Principal>,
    pub client: &'a HttpClient,
    pub models: &'a ModelTable,
    /// Presidio's `(mask, original)` pairs, for `output_parse_pii`.
    pub pii: &'a Mutex<Vec<(String, String)>>,
}

impl Ctx<'_> {
    /// LiteLLM's `request_data` of the generic guardrail API (no raw key).
    fn request_data(&self) -> Value {
        let mut m = Map::new();
        if let Some(Principal::Key(k)) = self.principal {
            let mut put = |name: &str, v: Option<&String>| {
                if let Some(v) = v {
                    m.insert(name.into(), json!(v));
                }
            };
            put("user_api_key_hash", Some(&k.key.token));
            put("user_api_key_alias", k.key.key_alias.as_ref());
            put("user_api_key_user_id", k.key.user_id.as_ref());
            put("user_api_key_team_id", k.key.team_id.as_ref());
            put("user_api_key_org_id", k.key.organization_id.as_ref());
            put(
                "user_api_key_user_email",
                k.user.as_ref().and_then(|u| u.user_email.as_ref()),
            );
            put(
                "user_api_key_team_alias",
                k.team.as_ref().and_then(|t| t.team_alias.as_ref()),
            );
        }
        if let Some(e) = self.end_user {
            m.insert("user_api_key_end_user_id".into(), json!(e));
        }
        Value::Object(m)
    }
}

/// A request's guardrails: which apply, and what their calls see (owned, so a stream's end and
/// a `during_call` check can run them after the request's stages moved on).
pub struct Run {
    /// Every guardrail, and the bits of those that apply.
    set: Arc<Guardrails>,
    selected: u64,
    /// What remote guardrails are called with (a moderation model group is in `models`).
    client: HttpClient,
    models: Arc<ModelTable>,
    /// Who and what the request is (the generic guardrail API's `request_data`).
    call_id: String,
    model: String,
    end_user: Option<String>,
    principal: Option<Principal>,
    /// Presidio's `(mask, original)` pairs.
    pii: Mutex<Vec<(String, String)>>,
}

impl Run {
    /// The guardrails of `selected` (bits of `set`); remote ones are called through `client`
    /// (a moderation model group is found in `models`).
    pub fn new(
        (set, selected): (Arc<Guardrails>, u64),
        client: HttpClient,
        models: Arc<ModelTable>,
    ) -> Self {
        Self {
            set,
            selected,
            client,
            models,
            call_id: String::new(),
            model: String::new(),
            end_user: None,
            principal: None,
            pii: Mutex::new(Vec::new()),
        }
    }

    /// For call `call_id` to model group `model`, by `principal` for `end_user`.
    pub fn about(
        mut self,
        call_id: String,
        model: String,
        end_user: Option<String>,
        principal: Option<Principal>,
    ) -> Self {
        (self.call_id, self.model) = (call_id, model);
        (self.end_user, self.principal) = (end_user, principal);
        self
    }

    fn ctx(&self, side: Side) -> Ctx<'_> {
        Ctx {
            side,
            call_id: &self.call_id,
            model: &self.model,
            end_user: self.end_user.as_deref(),
            principal: self.principal.as_ref(),
            client: &self.client,
            models: &self.models,
            pii: &self.pii,
        }
    }

    /// Whether any selected guardrail runs in `mode`.
    pub fn any(&self, mode: Mode) -> bool {
        self.set.any(self.selected, mode)
    }

    /// Whether answers need a look (post_call, or presidio's unmasking).
    pub fn wants_answer(&self) -> bool {
        self.set.wants_answer(self.selected)
    }

    /// Run the selected guardrails of `mode` on `texts` of `side`.
    pub async fn apply(
        &self,
        mode: Mode,
        side: Side,
        texts: &[String],
    ) -> Result<Option<Vec<String>>, GuardrailError> {
        self.set
            .apply(self.selected, mode, texts, &self.ctx(side))
            .await
    }

    /// Run the guardrails of `mode` on the texts of a JSON `body`: the body to use instead
    /// when they rewrote it (`None`: unchanged; not JSON: nothing to check).
    pub async fn apply_body(
        &self,
        mode: Mode,
        side: Side,
        body: &[u8],
    ) -> Result<Option<Value>, GuardrailError> {
        let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
            return Ok(None);
        };
        let texts = texts::collect(&mut v, side);
        match self.apply(mode, side, &texts).await? {
            Some(new) => {
                texts::replace(&mut v, side, &new);
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }
}

/// Every configured guardrail.
#[derive(Default)]
pub struct Guardrails {
    all: Vec<Guardrail>,
    by_name: HashMap<String, usize>,
    /// Bits of the `default_on` guardrails, and of those a key or team may not turn off.
    default_on: u64,
    locked: u64,
}

impl Guardrails {
    /// Build from the config (the built-ins first).
    pub fn build(c: &Config) -> Result<Self, GuardrailsConfigError> {
        let mut g = Guardrails::default();
        let t = &c.tianji_settings;
        let callbacks = || t.callbacks.iter().chain(&t.success_callback);
        let builtin = |key: &'static str, list: &Option<ListOrFile>, named: &[&str]| {
            let asked = callbacks().any(|c| named.contains(&c.as_str()));
            match list {
                Some(ListOrFile::List(l)) => Ok(Some(l.clone())),
                Some(ListOrFile::File(p)) => lines_of(p)
                    .map(Some)
                    .map_err(|message| GuardrailsConfigError::Setting { key, message }),
                None if asked => Err(GuardrailsConfigError::Setting {
                    key,
                    message: format!("`{}` needs this list", named[0]),
                }),
                None => Ok(None),
            }
        };
        if let Some(words) = builtin(
            "banned_keywords_list",
            &t.banned_keywords_list,
            &["banned_keywords"],
        )? {
            let check =
                filter::Keywords::new(words).map_err(|e| GuardrailsConfigError::Setting {
                    key: "banned_keywords_list",
                    message: e.to_string(),
                })?;
            g.push_builtin("banned_keywords", Check::BannedKeywords(check));
        }
        if let Some(users) = builtin(
            "blocked_user_list",
            &t.blocked_user_list,
            &["blocked_user_check", "blocked_user_list"],
        )? {
            let check = filter::BlockedUsers::new(users);
            g.push_builtin("blocked_user_list", Check::BlockedUsers(check));
        }
        for (index, e) in c.guardrails.iter().enumerate() {
            // the loader refused it unless `ignore_unknown_guardrails` (then it warned)
            if !crate::config::guardrails::implemented(&e.tianji_params.guardrail) {
                continue;
            }
            let err = |message: String| GuardrailsConfigError::Entry {
                index,
                name: e.guardrail_name.clone(),
                message,
            };
            let built = Self::entry(e).map_err(|b| err(b.to_string()))?;
            if g.by_name.contains_key(&built.name) {
                return Err(err("the name is used twice".into()));
            }
            if g.all.len() >= MAX_GUARDRAILS {
                return Err(err(format!("at most {MAX_GUARDRAILS} guardrails")));
            }
            g.push(built);
        }
        Ok(g)
    }

    fn entry(e: &GuardrailEntry) -> Result<Guardrail, BuildError> {
        let p = &e.tianji_params;
        let mut modes = Modes::default();
        for m in p
            .mode
            .as_ref()
            .map(|m| m.items())
            .unwrap_or(vec!["pre_call"])
        {
            let Some(bit) = Mode::parse(m) else {
                return Err(BuildError::Params(format!(
                    "mode '{m}' (expected pre_call, during_call, post_call or logging_only)"
                )));
            };
            modes = modes.with(bit);
        }
        let timeout = match p.timeout {
            Some(s) => Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| BuildError::Params("timeout must be > 0 seconds".into()))?,
            None => DEFAULT_TIMEOUT,
        };
        let check = Check::build(&p.guardrail, &p.params)?;
        let mut shown = Map::new();
        shown.insert("guardrail".into(), json!(p.guardrail));
        shown.insert("mode".into(), json!(p.mode.as_ref().map(|m| m.items())));
        shown.insert("default_on".into(), json!(p.default_on));
        for (k, v) in &p.params {
            shown.insert(k.clone(), v.clone());
        }
        let mut shown = Value::Object(shown);
        redact(&mut shown);
        Ok(Guardrail {
            name: e.guardrail_name.clone(),
            kind: p.guardrail.clone(),
            modes,
            default_on: p.default_on,
            fail_open: p.fail_open,
            can_disable: p.can_disable.unwrap_or(true),
            timeout,
            check,
            shown_params: shown,
            info: e.guardrail_info.clone(),
        })
    }

    /// A built-in from `tianji_settings`: always on, pre_call, not to be turned off.
    fn push_builtin(&mut self, name: &str, check: Check) {
        self.push(Guardrail {
            name: name.into(),
            kind: name.into(),
            modes: Modes::default().with(Mode::PreCall),
            default_on: true,
            fail_open: false,
            can_disable: false,
            timeout: DEFAULT_TIMEOUT,
            check,
            shown_params: json!({"guardrail": name, "mode": ["pre_call"], "default_on": true}),
            info: None,
        });
    }

    fn push(&mut self, g: Guardrail) {
        let bit = 1u64 << self.all.len();
        if g.default_on {
            self.default_on |= bit;
            if !g.can_disable {
                self.locked |= bit;
            }
        }
        self.by_name.insert(g.name.clone(), self.all.len());
        self.all.push(g);
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn list(&self) -> &[Guardrail] {
        &self.all
    }

    pub fn get(&self, name: &str) -> Option<&Guardrail> {
        self.by_name.get(name).map(|&i| &self.all[i])
    }

    /// The guardrails that apply to a request with `body` from `principal`: one bit each.
    /// Nothing is allocated unless the body names guardrails.
    pub fn select(&self, body: &[u8], principal: &Principal) -> Result<u64, GuardrailError> {
        let named = crate::holds!(body, b"\"guardrails\"");
        if self.all.is_empty() && !named {
            return Ok(0);
        }
        let mut on = self.default_on;
        if let Principal::Key(k) = principal {
            let metas =
                std::iter::once(&k.key.metadata).chain(k.team.as_ref().map(|t| &t.metadata));
            for meta in metas {
                if meta.get("disable_global_guardrails") == Some(&Value::Bool(true)) {
                    on &= self.locked;
                }
            }
            let metas =
                std::iter::once(&k.key.metadata).chain(k.team.as_ref().map(|t| &t.metadata));
            for meta in metas {
                for n in (meta.get("guardrails").and_then(Value::as_array))
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    match self.by_name.get(n) {
                        Some(&i) => on |= 1 << i,
                        None => {
                            tracing::debug!(guardrail = n, "key or team names an unknown guardrail")
                        }
                    }
                }
            }
        }
        if named {
            for n in asked(body)? {
                match self.by_name.get(&n) {
                    Some(&i) => on |= 1 << i,
                    None => return Err(GuardrailError::Unknown(n)),
                }
            }
        }
        Ok(on)
    }

    /// Whether any guardrail of `selected` runs in `mode`.
    pub fn any(&self, selected: u64, mode: Mode) -> bool {
        self.each(selected).any(|g| g.modes.has(mode))
    }

    fn each(&self, selected: u64) -> impl Iterator<Item = &Guardrail> {
        (self.all.iter().enumerate())
            .filter(move |(i, _)| selected & (1 << i) != 0)
            .map(|(_, g)| g)
    }

    /// Run the guardrails of `selected` that have `mode` on `texts`, in order (each sees the
    /// previous one's rewrite). The rewritten texts, if any guardrail rewrote them.
    pub async fn apply(
        &self,
        selected: u64,
        mode: Mode,
        texts: &[String],
        ctx: &Ctx<'_>,
    ) -> Result<Option<Vec<String>>, GuardrailError> {
        self.run_each(selected, Some(mode), texts, ctx).await
    }

    /// [`Guardrails::apply`]; `mode: None` runs each guardrail of `selected` whatever its modes.
    async fn run_each(
        &self,
        selected: u64,
        mode: Option<Mode>,
        texts: &[String],
        ctx: &Ctx<'_>,
    ) -> Result<Option<Vec<String>>, GuardrailError> {
        let mut out: Option<Vec<String>> = None;
        let runs = |g: &&Guardrail| mode.is_none_or(|m| g.modes.has(m));
        for g in self.each(selected).filter(runs) {
            let cur = out.as_deref().unwrap_or(texts);
            match g.run(cur, ctx).await {
                Ok(Verdict::Pass) => {}
                Ok(Verdict::Rewrite(t)) if t.len() == cur.len() => out = Some(t),
                Ok(Verdict::Rewrite(_)) => {
                    return Err(fail(g, "rewrote a different number of texts".into()));
                }
                Ok(Verdict::Block { status, message }) => {
                    tracing::info!(guardrail = %g.name, status, "guardrail blocked the request");
                    return Err(GuardrailError::Blocked {
                        guardrail: g.name.clone(),
                        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                        message,
                    });
                }
                Err(detail) if g.fail_open => {
                    tracing::warn!(guardrail = %g.name, error = %crate::secrets::redact_text(&detail), "guardrail failed; fail_open lets the request through");
                }
                Err(detail) => return Err(fail(g, detail)),
            }
        }
        // presidio's masks put back into the answer (output_parse_pii)
        if ctx.side == Side::Response && self.each(selected).any(Guardrail::presidio_unmasks) {
            let pii = ctx.pii.lock().map(|p| p.clone()).unwrap_or_default();
            if let Some(t) = remote::unmask(out.as_deref().unwrap_or(texts), &pii) {
                out = Some(t);
            }
        }
        Ok(out)
    }

    /// Whether answers need a look (post_call guardrails, or presidio unmasking).
    pub fn wants_answer(&self, selected: u64) -> bool {
        self.each(selected)
            .any(|g| g.modes.has(Mode::PostCall) || g.presidio_unmasks())
    }

    /// Run one guardrail on `texts` in any mode (`/guardrails/apply_guardrail`).
    pub async fn apply_one(
        &self,
        name: &str,
        texts: &[String],
        ctx: &Ctx<'_>,
    ) -> Result<Option<Vec<String>>, GuardrailError> {
        let Some(&i) = self.by_name.get(name) else {
            return Err(GuardrailError::Unknown(name.to_string()));
        };
        self.run_each(1 << i, None, texts, ctx).await
    }
}

/// Hide secret params (keys, tokens, passwords, header values) and URL credentials.
fn redact(v: &mut Value) {
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        k == "api_key"
            || k == "headers"
            || k == "aws_access_key_id"
            || ["secret", "token", "password", "credential"]
                .iter()
                .any(|p| k.contains(p))
    };
    if let Value::Object(m) = v {
        for (k, x) in m.iter_mut() {
            if secret(k) && !x.is_null() {
                *x = json!("***");
            }
        }
    }
    crate::secrets::redact_json(v);
}

fn fail(g: &Guardrail, detail: String) -> GuardrailError {
    let detail = crate::secrets::redact_text(&detail).into_owned();
    tracing::warn!(guardrail = %g.name, error = %detail, "guardrail failed; the request is refused (fail closed)");
    GuardrailError::Failed {
        guardrail: g.name.clone(),
        detail,
    }
}

/// The guardrails a request body names: `guardrails` (a list of names, or a map by name) or
/// `metadata.guardrails`.
fn asked(body: &[u8]) -> Result<Vec<String>, GuardrailError> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        guardrails: Option<Value>,
        #[serde(default)]
        metadata: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        guardrails: Option<Value>,
    }
    let Ok(b) = serde_json::from_slice::<Body>(body) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for v in [b.guardrails, b.metadata.and_then(|m| m.guardrails)]
        .into_iter()
        .flatten()
    {
        match v {
            Value::Null => {}
            Value::Array(a) => {
                for x in a {
                    match x {
                        Value::String(s) => out.push(s),
                        _ => return Err(GuardrailError::BadList),
                    }
                }
            }
            Value::Object(m) => out.extend(m.into_iter().map(|(k, _)| k)),
            _ => return Err(GuardrailError::BadList),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names() {
        let a = asked(br#"{"guardrails": ["a", "b"], "metadata": {"guardrails": {"c": {}}}}"#);
        assert_eq!(a.unwrap(), ["a", "b", "c"]);
        assert!(asked(br#"{"guardrails": 3}"#).is_err());
    }
}
