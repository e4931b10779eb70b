//! The management API's route table: every route declared once, on one line, with all its
//! paths, its methods, the least role that may call it, a one-line description and its handler.
//! `crate::routes` puts these paths in the one matcher of the gateway; [`super::handle`] checks
//! the role, then runs the handler. Adding a route is one line here plus its handler.
//!
//! Handlers are plain `async fn`s: [`Handler::Store`] ones take a [`Call`] (the database is
//! needed, the body already read), [`Handler::Live`] ones a [`Live`] request (live state only:
//! they answer without a database); [`Handler::Report`] ones are `Store` handlers that read the
//! read replica when one is set. The `store!`/`report!`/`live!` adapters box the handler's future once
//! per management request.

use std::future::Future;
use std::pin::Pin;

use http::{Method, Request, Response};

use super::{
    AdminError, Call, agent_rpc, agents, alerting, audit, budgets, cache, config_file, cron_jobs,
    end_users, invitations, keys, listings, llm_utils, mcp_servers, model_metrics, models,
    organizations, plugins, prompts, router, spend, teams, users,
};
use crate::auth::Principal;
use crate::body::Body;
use crate::request_body::RequestBody;
use crate::state::AppState;

/// The least privilege a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Master key, or a key of a `proxy_admin` user.
    ProxyAdmin,
    /// Read-only routes: also `proxy_admin_viewer` users.
    AdminViewer,
    /// A key of a user; the handler checks the user administers the team in question.
    TeamAdmin,
    /// Any valid key; the handler limits it to what the key owns.
    KeyOwner,
}

impl Role {
    /// Whether `principal` holds this role (or a higher one).
    pub fn admits(self, principal: &Principal) -> bool {
        match self {
            Role::ProxyAdmin => principal.is_admin(),
            Role::AdminViewer => principal.can_read_all(),
            Role::TeamAdmin => principal.is_admin() || principal.user_id().is_some(),
            Role::KeyOwner => true,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Role::ProxyAdmin => "proxy_admin",
            Role::AdminViewer => "proxy_admin_viewer",
            Role::TeamAdmin => "team_admin",
            Role::KeyOwner => "key_owner",
        }
    }
}

/// A handler's answer, boxed (one allocation per management request).
pub type Reply<'a> = Pin<Box<dyn Future<Output = Result<Response<Body>, AdminError>> + Send + 'a>>;

/// A request to a route served from live state: authenticated and its role checked, the body
/// not yet read.
pub struct Live<'a> {
    pub state: &'a AppState,
    pub principal: Principal,
    /// The `{key}` path segment, where the route has one.
    pub path_key: Option<String>,
    pub req: Request<RequestBody>,
}

/// How a route is served.
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// From the database: 503 without one; the handler gets the body read, in a [`Call`].
    Store(for<'a> fn(&'a Call<'a>) -> Reply<'a>),
    /// A report (spend, activity, metrics: reads only): as `Store`, from the read replica when
    /// `database_url_read` sets one.
    Report(for<'a> fn(&'a Call<'a>) -> Reply<'a>),
    /// From live state (router, cache, provider budgets): no database needed.
    Live(for<'a> fn(Live<'a>) -> Reply<'a>),
}

/// One management route.
#[derive(Debug)]
pub struct AdminRoute {
    /// Every path it answers (aliases included).
    pub paths: &'static [&'static str],
    /// The methods it answers; the first is its main one (GET routes answer HEAD too).
    pub methods: &'static [Method],
    pub role: Role,
    /// What it does, in one line.
    pub about: &'static str,
    pub handler: Handler,
}

/// Rows are statics: one is equal only to itself.
impl PartialEq for AdminRoute {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for AdminRoute {}

impl AdminRoute {
    /// The main method (the first declared).
    pub fn method(&self) -> Method {
        self.methods.first().cloned().unwrap_or(Method::GET)
    }
}

/// A [`Handler::Store`] from an `async fn(&Call)` (or an expression over the call `c`).
macro_rules! store {
    ($f:path) => {
        store!(c => $f(c))
    };
    ($c:ident => $e:expr) => {{
        fn serve<'a>($c: &'a Call<'a>) -> Reply<'a> {
            Box::pin($e)
        }
        Handler::Store(serve)
    }};
}

/// A [`Handler::Report`] from an `async fn(&Call)` (or an expression over the call `c`).
macro_rules! report {
    ($f:path) => {
        report!(c => $f(c))
    };
    ($c:ident => $e:expr) => {{
        fn serve<'a>($c: &'a Call<'a>) -> Reply<'a> {
            Box::pin($e)
        }
        Handler::Report(serve)
    }};
}

/// A [`Handler::Live`] from an `async fn(Live)`.
macro_rules! live {
    ($f:path) => {{
        fn serve(l: Live<'_>) -> Reply<'_> {
            Box::pin($f(l))
        }
        Handler::Live(serve)
    }};
}

/// `[paths] METHOD|METHOD Role "about" => handler;`, one route a line.
macro_rules! table {
    ($( [$($path:literal),+ $(,)?] $($m:ident)|+ $role:ident $about:literal => $handler:expr; )*) => {
        &[$(
            AdminRoute {
                paths: &[$($path),+],
                methods: &[$(Method::$m),+],
                role: Role::$role,
                about: $about,
                handler: $handler,
            },
        )*]
    };
}

/// Every management route.
pub static ROUTES: &[AdminRoute] = table! {
    ["/key/generate"] POST TeamAdmin "Create a key" => store!(keys::generate);
    ["/key/update"] POST TeamAdmin "Change a key" => store!(keys::update);
    ["/key/info"] GET KeyOwner "One key (the caller's own without ?key=)" => store!(keys::info);
    ["/key/delete"] POST TeamAdmin "Delete keys (by hash or alias)" => store!(keys::delete);
    ["/key/block"] POST TeamAdmin "Block a key" => store!(c => keys::set_blocked(c, true));
    ["/key/unblock"] POST TeamAdmin "Unblock a key" => store!(c => keys::set_blocked(c, false));
    ["/key/list"] GET AdminViewer "List keys, paged and filtered" => store!(keys::list);
    ["/v2/key/info"] POST ProxyAdmin "Several keys at once" => store!(keys::info_many);
    ["/key/aliases"] GET AdminViewer "List key aliases" => store!(keys::aliases);
    ["/key/service-account/generate"] POST ProxyAdmin "Create a team's service-account key" => store!(keys::generate_service_account);
    ["/key/regenerate", "/key/{key}/regenerate"] POST TeamAdmin "Replace a key's secret" => store!(keys::regenerate);
    ["/key/{key}/reset_spend"] POST ProxyAdmin "Set a key's spend" => store!(keys::reset_spend);
    ["/team/new"] POST ProxyAdmin "Create a team" => store!(teams::new);
    ["/team/update"] POST TeamAdmin "Change a team" => store!(teams::update);
    ["/team/{key}/callback"] GET|POST TeamAdmin "The team's logging callbacks (POST: add one; secrets masked for non-admins)" => store!(teams::callback);
    ["/team/{key}/disable_logging"] POST TeamAdmin "Turn off every logging callback of the team" => store!(teams::disable_logging);
    ["/team/delete"] POST ProxyAdmin "Delete teams" => store!(teams::delete);
    ["/team/info"] GET KeyOwner "One team (its members and keys may read it)" => store!(teams::info);
    ["/team/list"] GET KeyOwner "List teams (the caller's own unless admin)" => store!(teams::list);
    ["/team/available"] GET KeyOwner "Teams open to join" => store!(teams::available);
    ["/team/member_add"] POST TeamAdmin "Add members to a team" => store!(teams::member_add);
    ["/team/member_delete"] POST TeamAdmin "Remove members from a team" => store!(teams::member_delete);
    ["/team/member_update"] POST TeamAdmin "Change a team member's role or budget" => store!(teams::member_update);
    ["/team/permissions_list"] GET TeamAdmin "A team's member permissions" => store!(teams::permissions_list);
    ["/team/permissions_update"] POST TeamAdmin "Set a team's member permissions" => store!(teams::permissions_update);
    ["/team/block"] POST ProxyAdmin "Block a team" => store!(c => teams::set_blocked(c, true));
    ["/team/unblock"] POST ProxyAdmin "Unblock a team" => store!(c => teams::set_blocked(c, false));
    ["/team/model/add"] POST ProxyAdmin "Add models to a team" => store!(c => teams::models(c, true));
    ["/team/model/remove"] POST ProxyAdmin "Remove models from a team" => store!(c => teams::models(c, false));
    ["/user/new"] POST ProxyAdmin "Create a user (and its key)" => store!(users::new);
    ["/user/update"] POST ProxyAdmin "Change a user" => store!(users::update);
    ["/user/info"] GET KeyOwner "One user (the caller's own unless viewer)" => store!(users::info);
    ["/user/delete"] POST ProxyAdmin "Delete users" => store!(users::delete);
    ["/user/list"] GET AdminViewer "List users, paged and filtered" => store!(users::list);
    ["/audit"] GET AdminViewer "List audit log rows" => store!(audit::list);
    ["/audit/{key}"] GET AdminViewer "One audit log row" => store!(audit::get);
    ["/organization/new"] POST ProxyAdmin "Create an organisation" => store!(organizations::new);
    ["/organization/update"] PATCH ProxyAdmin "Change an organisation" => store!(organizations::update);
    ["/organization/delete"] DELETE ProxyAdmin "Delete organisations" => store!(organizations::delete);
    ["/organization/info"] GET KeyOwner "One organisation" => store!(organizations::info);
    ["/organization/list"] GET KeyOwner "List organisations" => store!(organizations::list);
    ["/organization/member_add"] POST ProxyAdmin "Add members to an organisation" => store!(c => organizations::members_change(c, organizations::MemberOp::Add));
    ["/organization/member_update"] PATCH ProxyAdmin "Change an organisation member" => store!(c => organizations::members_change(c, organizations::MemberOp::Update));
    ["/organization/member_delete"] DELETE ProxyAdmin "Remove members from an organisation" => store!(c => organizations::members_change(c, organizations::MemberOp::Delete));
    ["/model/new"] POST ProxyAdmin "Add a model deployment (stored)" => store!(models::new);
    ["/model/update"] POST ProxyAdmin "Change a stored model deployment" => store!(models::update);
    ["/model/delete"] POST ProxyAdmin "Delete a stored model deployment" => store!(models::delete);
    ["/model/info", "/v1/model/info"] GET KeyOwner "Deployments the caller may use, credentials masked" => live!(listings::info);
    ["/v2/model/info"] GET KeyOwner "Deployments the caller may use, filtered and paged" => live!(listings::info_v2);
    ["/model_group/info"] GET KeyOwner "Model groups the caller may use" => live!(listings::group_info);
    ["/fallback"] POST ProxyAdmin "Set a model's fallbacks in the live router" => live!(router::post_fallback);
    ["/fallback/{key}"] GET|DELETE AdminViewer "A model's fallbacks (DELETE: admins)" => live!(router::fallback);
    ["/router/settings"] GET|PATCH AdminViewer "The live router settings (PATCH: admins)" => live!(router::settings_route);
    ["/config/reload"] POST ProxyAdmin "Read the config file again and put it in force" => live!(config_file::reload);
    ["/config/yaml"] GET ProxyAdmin "The config in force, secrets hidden, and the last reload" => live!(config_file::yaml);
    ["/health/services"] GET ProxyAdmin "Send a test alert through the alert channels" => live!(alerting::test_alert);
    ["/invitation/new"] POST ProxyAdmin "Create an invitation link for a user" => store!(invitations::new);
    ["/invitation/info"] GET ProxyAdmin "One invitation link" => store!(invitations::info);
    ["/invitation/update"] POST ProxyAdmin "Accept (or un-accept) an invitation" => store!(invitations::update);
    ["/invitation/delete"] POST ProxyAdmin "Delete an invitation link" => store!(invitations::delete);
    ["/budget/new"] POST ProxyAdmin "Create a budget" => store!(budgets::new);
    ["/budget/update"] POST ProxyAdmin "Change a budget" => store!(budgets::update);
    ["/budget/info"] POST AdminViewer "Budgets by id" => store!(budgets::info);
    ["/budget/list"] GET AdminViewer "List budgets" => store!(budgets::list);
    ["/budget/delete"] POST ProxyAdmin "Delete a budget" => store!(budgets::delete);
    ["/end_user/new", "/customer/new"] POST ProxyAdmin "Create an end user" => store!(end_users::new);
    ["/end_user/update", "/customer/update"] POST ProxyAdmin "Change an end user" => store!(end_users::update);
    ["/end_user/delete", "/customer/delete"] POST ProxyAdmin "Delete end users" => store!(end_users::delete);
    ["/end_user/info", "/customer/info"] GET AdminViewer "One end user" => store!(end_users::info);
    ["/end_user/list", "/customer/list"] GET AdminViewer "List end users" => store!(end_users::list);
    ["/end_user/block", "/customer/block"] POST ProxyAdmin "Block end users" => store!(c => end_users::set_blocked(c, true));
    ["/end_user/unblock", "/customer/unblock"] POST ProxyAdmin "Unblock end users" => store!(c => end_users::set_blocked(c, false));
    ["/spend/logs"] GET KeyOwner "Spend log rows (the caller's own unless viewer)" => report!(spend::spend_logs);
    ["/spend/error_logs"] GET AdminViewer "ErrorLogs rows of failed requests" => report!(spend::error_logs);
    ["/model/metrics"] GET AdminViewer "Average seconds per output token, per deployment and day" => report!(model_metrics::latency);
    ["/model/metrics/slow_responses"] GET AdminViewer "Requests slower than alerting_threshold, per deployment" => report!(model_metrics::slow_responses);
    ["/model/metrics/exceptions"] GET AdminViewer "Failed requests per deployment and exception type" => report!(model_metrics::exceptions);
    ["/cron_jobs"] GET AdminViewer "The scheduled jobs: lease holder, next run, last outcome" => store!(cron_jobs::list);
    ["/spend/keys"] GET KeyOwner "Spend by key" => report!(spend::keys);
    ["/spend/users"] GET KeyOwner "Spend by user" => report!(spend::users);
    ["/spend/teams"] GET AdminViewer "Spend by team" => report!(spend::teams);
    ["/spend/tags"] GET KeyOwner "Spend by request tag" => report!(spend::tags);
    ["/spend/models"] GET KeyOwner "Spend by model" => report!(spend::models);
    ["/spend/end_users"] GET AdminViewer "Spend by end user" => report!(spend::end_users);
    ["/global/spend"] GET AdminViewer "Total spend" => report!(spend::global_spend);
    ["/global/spend/keys"] GET KeyOwner "Top keys by spend (the caller's own unless viewer)" => report!(spend::global_keys);
    ["/global/spend/models"] GET KeyOwner "Top models by spend (the caller's own unless viewer)" => report!(spend::global_models);
    ["/global/spend/teams"] GET AdminViewer "Daily spend by team" => report!(spend::global_teams);
    ["/global/spend/tags"] GET KeyOwner "Spend by tag over a date range (the caller's own unless viewer)" => report!(spend::global_tags);
    ["/global/spend/provider"] GET KeyOwner "Spend by provider (the caller's own unless viewer)" => report!(spend::provider);
    ["/global/spend/end_users"] POST KeyOwner "Top end users by spend (the caller's own unless viewer)" => report!(spend::global_end_users);
    ["/global/spend/report"] GET AdminViewer "Spend report by team, key or customer" => report!(spend::report);
    ["/global/spend/reset"] POST ProxyAdmin "Reset every key's and team's spend" => store!(spend::reset);
    ["/global/activity"] GET KeyOwner "Daily requests and tokens" => report!(spend::activity);
    ["/global/activity/model"] GET KeyOwner "Daily requests and tokens by model" => report!(spend::activity_model);
    ["/global/activity/cache_hits"] GET KeyOwner "Daily cache hits" => report!(spend::activity_cache_hits);
    ["/user/daily/activity"] GET KeyOwner "A user's daily activity" => report!(c => spend::daily_activity(c, spend::Entity::User));
    ["/team/daily/activity"] GET KeyOwner "A team's daily activity" => report!(c => spend::daily_activity(c, spend::Entity::Team));
    ["/organization/daily/activity"] GET AdminViewer "An organisation's daily activity" => report!(c => spend::daily_activity(c, spend::Entity::Organization));
    ["/end_user/daily/activity", "/customer/daily/activity"] GET AdminViewer "An end user's daily activity" => report!(c => spend::daily_activity(c, spend::Entity::EndUser));
    ["/agent/daily/activity"] GET KeyOwner "A2A agents' daily activity (admins: all; others: their key's calls)" => report!(c => spend::daily_activity(c, spend::Entity::Agent));
    ["/provider/budgets"] GET AdminViewer "Provider budgets and their spend" => live!(super::provider_budgets);
    ["/cache/ping"] GET ProxyAdmin "Check the response cache" => live!(cache::ping);
    ["/cache/delete"] POST ProxyAdmin "Delete response cache entries" => live!(cache::delete);
    ["/cache/flushall"] POST ProxyAdmin "Empty the response cache" => live!(cache::flush_all);
    ["/v1/agents"] GET|POST KeyOwner "List the agents the caller may use (POST: admins create one)" => store!(agents::collection);
    ["/v1/agents/make_public"] POST ProxyAdmin "Set the public agents: {agent_ids}" => store!(agents::make_public);
    ["/v1/agents/{key}/make_public"] POST ProxyAdmin "Make an agent public" => store!(agents::make_public);
    ["/v1/agents/{key}"] GET|PUT|PATCH|DELETE KeyOwner "One agent (PUT replace, PATCH change, DELETE: admins)" => store!(agents::item);
    ["/a2a/{key}", "/a2a/{key}/message/send", "/v1/a2a/{key}/message/send", "/a2a/{key}/message/stream", "/v1/a2a/{key}/message/stream"] POST KeyOwner "A2A JSON-RPC to an agent (message/send, message/stream, task methods; 0.3 and 1.0 names)" => live!(agent_rpc::call);
    ["/a2a/{key}/.well-known/agent-card.json", "/a2a/{key}/.well-known/agent.json"] GET KeyOwner "An agent's A2A card, served by the gateway (a2a-version: 0.3 or 1.0)" => live!(agents::card);
    ["/v1/mcp/server"] GET|POST|PUT KeyOwner "List the MCP servers the caller may use (POST: admins register one; PUT: admins change one, server_id in the body)" => store!(mcp_servers::collection);
    ["/v1/mcp/server/{key}"] GET|PUT|DELETE KeyOwner "One MCP server (PUT change, DELETE: admins)" => store!(mcp_servers::item);
    ["/v1/mcp/tools"] GET KeyOwner "The tools of the MCP servers the caller may use (?server_id=)" => live!(mcp_servers::tools);
    ["/claude-code/plugins"] GET|POST AdminViewer "List Claude Code plugins, ?enabled_only=true (POST: admins register one)" => store!(plugins::collection);
    ["/claude-code/plugins/{key}"] GET|PUT|DELETE AdminViewer "One Claude Code plugin (PUT change, DELETE: admins)" => store!(plugins::item);
    ["/claude-code/plugins/{key}/enable"] POST ProxyAdmin "List a plugin in the marketplace" => store!(c => plugins::set_enabled(c, true));
    ["/claude-code/plugins/{key}/disable"] POST ProxyAdmin "Take a plugin out of the public marketplace" => store!(c => plugins::set_enabled(c, false));
    ["/cache/redis/info"] GET ProxyAdmin "The cache's Redis INFO" => live!(cache::redis_info);
    ["/utils/transform_request"] POST ProxyAdmin "The exact request a call would send to the deployment the router picks (URL, headers with secrets masked, body), not sent" => live!(llm_utils::transform_request);
    ["/utils/token_counter"] POST KeyOwner "Count the tokens of a prompt, messages or contents as LiteLLM does (tiktoken)" => live!(llm_utils::token_counter);
    ["/utils/supported_openai_params"] GET KeyOwner "The OpenAI parameters a model group or provider/model takes (?model=)" => live!(llm_utils::supported_openai_params);
    ["/prompts"] POST ProxyAdmin "Create a prompt template (its next version when the id exists)" => store!(prompts::create);
    ["/prompts/list"] GET KeyOwner "The latest version of each prompt the caller may see" => live!(prompts::list);
    ["/prompts/test"] POST KeyOwner "Render a .prompt with variables and call its model for the caller (streamed unless stream: false)" => live!(prompts::test);
    ["/prompts/{key}", "/prompts/{key}/info"] GET|PUT|PATCH|DELETE KeyOwner "One prompt with its template (PUT: a new version, PATCH: change a version, DELETE: every version; admins)" => live!(prompts::item);
    ["/prompts/{key}/versions"] GET AdminViewer "Every version of a prompt, newest first" => live!(prompts::versions);
};

/// Every (path, route) pair, aliases included.
pub fn by_path() -> impl Iterator<Item = (&'static str, &'static AdminRoute)> {
    ROUTES
        .iter()
        .flat_map(|r| r.paths.iter().map(move |p| (*p, r)))
}
