//! Spend and activity reports (`/spend/*`, `/global/*`, `/<entity>/daily/activity`) and the
//! global spend reset. Admins and admin viewers see everything; other callers see their own
//! user's spend (or, for a key without a user, their own key's).

mod daily;
mod global;
mod logs;

pub use daily::{Entity, daily_activity};
pub use global::{
    activity, activity_cache_hits, activity_model, end_users as global_end_users, provider, report,
    reset, spend as global_spend, spend_keys as global_keys, spend_models as global_models,
    spend_tags as global_tags, spend_teams as global_teams,
};
pub use logs::{end_users, error_logs, keys, models, spend_logs, tags, teams, users};

use super::{AdminError, Call};

/// A required or optional `YYYY-MM-DD` query parameter.
fn day(call: &Call<'_>, name: &str, required: bool) -> Result<Option<String>, AdminError> {
    let Some(v) = call.param(name).filter(|v| !v.is_empty()) else {
        if required {
            return Err(AdminError::invalid(
                name,
                "Please provide start_date and end_date (YYYY-MM-DD)",
            ));
        }
        return Ok(None);
    };
    let b = v.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        std::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && num(5..7).is_some_and(|m| (1..=12).contains(&m))
        && num(8..10).is_some_and(|d| (1..=31).contains(&d));
    if ok {
        Ok(Some(v))
    } else {
        Err(AdminError::invalid(
            name,
            format!("must be a YYYY-MM-DD date, got '{v}'"),
        ))
    }
}

/// Both dates, required, in order.
fn range(call: &Call<'_>) -> Result<(String, String), AdminError> {
    let start = day(call, "start_date", true)?.unwrap_or_default();
    let end = day(call, "end_date", true)?.unwrap_or_default();
    if end < start {
        return Err(AdminError::invalid(
            "end_date",
            "end_date must be on or after start_date",
        ));
    }
    Ok((start, end))
}

/// What a caller may read: everything, or one user's rows, or one key's rows.
enum Scope {
    All,
    User(String),
    Key(String),
}

fn scope(call: &Call<'_>) -> Scope {
    if call.principal.can_read_all() {
        return Scope::All;
    }
    match (call.principal.user_id(), call.principal.key()) {
        (Some(u), _) => Scope::User(u.to_string()),
        (None, Some(k)) => Scope::Key(k.key.token.clone()),
        (None, None) => Scope::All,
    }
}

/// The user filter for user-scoped reports; a key without a user cannot use them.
fn user_filter(call: &Call<'_>) -> Result<Option<String>, AdminError> {
    match scope(call) {
        Scope::All => Ok(None),
        Scope::User(u) => Ok(Some(u)),
        Scope::Key(_) => Err(AdminError::Forbidden(
            "Service-account keys cannot query user analytics. Use a user-bound key, or call as a proxy admin."
                .into(),
        )),
    }
}

/// A key parameter, raw or as its hash, as the stored hash.
fn key_param(call: &Call<'_>, name: &str) -> Option<String> {
    call.param(name)
        .filter(|v| !v.is_empty())
        .map(|k| super::keys::to_token(&k))
}
