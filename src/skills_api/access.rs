//! Who may read and change a skill. The creator is recorded in the row's
//! `metadata.owner` (`key`: the key's hash, `user_id`, `team_id`).
//!
//! Read: admins; the key that created it; keys of the same user or the same team; keys whose
//! own or team's `object_permission.skills` names it. Change or delete: admins, the creating
//! key, keys of the creating user.

use serde_json::Value;

pub use crate::auth::Owner;
use crate::auth::Principal;

/// The skill's creator, from its row.
fn owner(row: &Value) -> Owner {
    Owner::from_json(row.pointer("/metadata/owner"))
}

/// Whether the caller created the skill (its key or its user).
fn created(p: &Principal, row: &Value) -> bool {
    owner(row).created_by(&Owner::of(p))
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
    if owner(row).same_team(&Owner::of(p)) {
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
