//! The caller as the owner of what it creates (skills, vector stores): its key's hash, its user
//! and its team, kept with the object so later calls can tell who made it.

use serde_json::{Value, json};

use super::Principal;

/// The caller as a creator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub key: String,
    pub user_id: String,
    pub team_id: String,
}

impl Owner {
    pub fn of(p: &Principal) -> Self {
        let k = p.key();
        Self {
            key: k.map(|k| k.key.token.clone()).unwrap_or_default(),
            user_id: p.user_id().unwrap_or_default().to_string(),
            team_id: k.and_then(|k| k.key.team_id.clone()).unwrap_or_default(),
        }
    }

    /// The owner kept in an object's JSON (`{key, user_id, team_id}`).
    pub fn from_json(v: Option<&Value>) -> Self {
        let f = |n: &str| {
            v.and_then(|v| v.get(n))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Self {
            key: f("key"),
            user_id: f("user_id"),
            team_id: f("team_id"),
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

    /// Whether `caller` made the object this owns (its key or its user).
    pub fn created_by(&self, caller: &Owner) -> bool {
        (!self.key.is_empty() && self.key == caller.key)
            || (!self.user_id.is_empty() && self.user_id == caller.user_id)
    }

    /// Whether `caller` is of the owner's team.
    pub fn same_team(&self, caller: &Owner) -> bool {
        !self.team_id.is_empty() && self.team_id == caller.team_id
    }
}
