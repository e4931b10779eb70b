//! The columns of teams, users, organisations, team memberships and end users that the request
//! path reads (budgets of organisations, memberships and end users come from their
//! `TianjiLLM_BudgetTable` row).

use serde::Deserialize;
use serde_json::Value;

/// The budget and rate limits of a key, team, user, organisation, team membership or end user
/// (the record's own columns, or its budget row's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// `{model: {budget_limit, time_period}}`
    pub model_max_budget: Value,
    /// Past this, a `soft_budget_crossed` alert (no request is refused).
    pub soft_budget: Option<f64>,
}

/// The parts of an object permission (`TianjiLLM_ObjectPermissionTable`) the request path
/// reads: which agents and MCP servers and tools a key or team may call, which skills and
/// plugins it was granted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ObjectPermission {
    pub agents: Option<Vec<String>>,
    pub agent_access_groups: Option<Vec<String>>,
    /// MCP servers (by name) the holder may use.
    pub mcp_servers: Option<Vec<String>>,
    /// MCP access groups: the servers in them.
    pub mcp_access_groups: Option<Vec<String>>,
    /// `{server: [tool, ...]}`: only these tools of these servers (read leniently: a stored
    /// value of another shape restricts nothing).
    pub mcp_tool_permissions: Value,
    /// MCP tools never allowed (`tool` or `{server}-{tool}`).
    pub blocked_tools: Option<Vec<String>>,
    /// Skills and Claude Code plugins (by name) granted even while disabled.
    pub skills: Option<Vec<String>>,
    /// Vector stores (by id) the holder may search.
    pub vector_stores: Option<Vec<String>>,
}

/// `TianjiLLM_TeamTable`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TeamRecord {
    /// The team's object permission row (agents).
    pub object_permission: Option<ObjectPermission>,
    /// Access groups (agents belong to them).
    pub access_group_ids: Option<Vec<String>>,
    pub team_id: String,
    pub team_alias: Option<String>,
    pub organization_id: Option<String>,
    pub blocked: bool,
    pub models: Option<Vec<String>>,
    #[serde(flatten)]
    pub limits: Limits,
    pub admins: Option<Vec<String>>,
    /// `[{"role": "admin"|"user", "user_id": ..}]` (LiteLLM keeps a list in a JSON column).
    pub members_with_roles: Value,
    pub team_member_permissions: Option<Vec<String>>,
    /// Tokens per day (batches).
    pub tpd_limit: Option<i64>,
    pub metadata: Value,
}

impl TeamRecord {
    /// Whether `user_id` is an admin of this team.
    pub fn is_admin(&self, user_id: &str) -> bool {
        self.members_with_roles.as_array().is_some_and(|ms| {
            ms.iter().any(|m| {
                m.get("user_id").and_then(Value::as_str) == Some(user_id)
                    && m.get("role").and_then(Value::as_str) == Some("admin")
            })
        }) || self
            .admins
            .as_ref()
            .is_some_and(|a| a.iter().any(|x| x == user_id))
    }

    /// The model group the team's `model_aliases` (kept in its metadata) map `model` to.
    pub fn model_alias(&self, model: &str) -> Option<&str> {
        self.metadata.get("model_aliases")?.get(model)?.as_str()
    }

    /// Whether `user_id` is a member (any role).
    pub fn has_member(&self, user_id: &str) -> bool {
        self.members_with_roles.as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m.get("user_id").and_then(Value::as_str) == Some(user_id))
        })
    }
}

/// `TianjiLLM_UserTable`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub user_id: String,
    pub user_role: Option<String>,
    pub user_email: Option<String>,
    pub models: Option<Vec<String>>,
    pub teams: Option<Vec<String>>,
    pub organization_id: Option<String>,
    #[serde(flatten)]
    pub limits: Limits,
}

/// `TianjiLLM_OrganizationTable` with its budget.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OrgRecord {
    pub organization_id: String,
    pub organization_alias: Option<String>,
    pub models: Option<Vec<String>>,
    #[serde(flatten)]
    pub limits: Limits,
}

/// `TianjiLLM_TeamMembership` with its budget.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MembershipRecord {
    pub user_id: String,
    pub team_id: String,
    #[serde(flatten)]
    pub limits: Limits,
}

/// `TianjiLLM_EndUserTable` with its budget.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndUserRecord {
    pub user_id: String,
    pub blocked: bool,
    pub models: Option<Vec<String>>,
    /// Deployments of this region only (`eu`, `us`).
    pub allowed_model_region: Option<String>,
    #[serde(flatten)]
    pub limits: Limits,
}
