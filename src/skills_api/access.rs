//! Who may read and change a skill. The creator is recorded in the row's
//! `metadata.owner` (`key`: the key's hash, `user_id`, `team_id`).
//!
//! Read: admins; the key that created it; keys of the same user or the same team; keys whose
//! own or team's `object_permission.skills` names it. Change or delete: admins, the creating
//! key, keys of the creating user.

use serde_json::{Value, json};

use crate::auth::Principal;

/// The caller as a skill's creator.
pub struct Owner {
    key: String,
    user_id: String,
    team_id: String,
}

impl Owner {
    pub fn of(p: &Principal) -> Self {
        Self {
            key: p.key().map(|k| k.key.token.clone()).unwrap_or_default(),
            user_id: p.user_id().unwrap_or_default().to_string(),
            team_id: crate::responses::caller_team(p).to_string(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"key": self.key, "user_id": self.user_id, "team_id": self.team_id})
    }

    /// `created_by` / `updated_by`: the user, else the key's hash, else the admin.
    pub fn by(&self) -> String {
        [&self.user_id, &self.key]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "default_user_id".into())
    }
}

fn owner_field<'a>(row: &'a Value, f: &str) -> &'a str {
    row.pointer(&format!("/metadata/owner/{f}"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether the caller created the skill (its key or its user).
fn created(p: &Principal, row: &Value) -> bool {
    let me = Owner::of(p);
    let (key, user) = (owner_field(row, "key"), owner_field(row, "user_id"));
    (!key.is_empty() && key == me.key) || (!user.is_empty() && user == me.user_id)
}

/// Whether the caller's key or team was granted the skill.
fn granted(p: &Principal, id: &str) -> bool {
    let Some(k) = p.key() else {
        return false;
    };
    let team = k.team.as_deref().and_then(|t| t.object_permission.as_ref());
    [k.key.object_permission.as_ref(), team]
        .into_iter()
        .flatten()
        .any(|op| {
            op.skills
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|s| s == id)
        })
}

pub fn may_read(p: &Principal, row: &Value) -> bool {
    if p.is_admin() || created(p, row) {
        return true;
    }
    let team = owner_field(row, "team_id");
    if !team.is_empty() && team == crate::responses::caller_team(p) {
        return true;
    }
    let id = row
        .get("skill_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    granted(p, id)
}

pub fn may_write(p: &Principal, row: &Value) -> bool {
    p.is_admin() || created(p, row)
}
