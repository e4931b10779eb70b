//! `/spend/logs` and the `/spend/{keys,users,teams,tags,models,end_users}` lists.

use http::Response;
use serde_json::Value;

use super::{Scope, day, key_param, scope, user_filter};
use crate::admin::{AdminError, Call, ok};
use crate::body::Body;
use crate::store::Query;

type Out = Result<Response<Body>, AdminError>;

/// `GET /spend/logs`: rows (newest first, at most 10,000), or with `summarize=true` (the
/// default when both dates are given) one summary per day.
pub async fn spend_logs(call: &Call<'_>) -> Out {
    let start = day(call, "start_date", false)?;
    let end = day(call, "end_date", false)?;
    let mut api_key = key_param(call, "api_key");
    let mut user = call.param("user_id").filter(|v| !v.is_empty());
    match scope(call) {
        Scope::All => {}
        Scope::User(u) => user = Some(u),
        Scope::Key(k) => api_key = Some(k),
    }
    let request_id = call.param("request_id").filter(|v| !v.is_empty());
    let summarize = match call.param("summarize").as_deref() {
        None | Some("") => true,
        Some("true") | Some("True") | Some("1") => true,
        Some("false") | Some("False") | Some("0") => false,
        Some(v) => {
            return Err(AdminError::invalid(
                "summarize",
                format!("must be true or false, got '{v}'"),
            ));
        }
    };
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&api_key, &user, &request_id, &start, &end];
    let q = if summarize && start.is_some() && end.is_some() {
        Query::SpendLogsSummary
    } else {
        Query::SpendLogsRows
    };
    Ok(ok(&Value::Array(call.rows(q, &params).await?)))
}

/// `GET /spend/error_logs`: ErrorLogs rows (newest first, at most 10,000), by `request_id`
/// and `start_date`/`end_date`.
pub async fn error_logs(call: &Call<'_>) -> Out {
    let start = day(call, "start_date", false)?;
    let end = day(call, "end_date", false)?;
    let request_id = call.param("request_id").filter(|v| !v.is_empty());
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&request_id, &start, &end];
    Ok(ok(&Value::Array(
        call.rows(Query::ErrorLogsRows, &params).await?,
    )))
}

/// `GET /spend/keys`: keys by spend (a non-admin sees its user's keys).
pub async fn keys(call: &Call<'_>) -> Out {
    let user = match scope(call) {
        Scope::All => None,
        Scope::User(u) => Some(u),
        Scope::Key(_) => return Ok(ok(&Value::Array(vec![]))),
    };
    Ok(ok(&Value::Array(
        call.rows(Query::SpendKeys, &[&user]).await?,
    )))
}

/// `GET /spend/users[?user_id=]`: users by spend (a non-admin sees only itself).
pub async fn users(call: &Call<'_>) -> Out {
    let asked = call.param("user_id").filter(|v| !v.is_empty());
    let user = match scope(call) {
        Scope::All => asked,
        Scope::User(u) => {
            if asked.as_ref().is_some_and(|a| *a != u) {
                return Err(AdminError::Forbidden(
                    "Not authorized to view spend for another user.".into(),
                ));
            }
            Some(u)
        }
        Scope::Key(_) => return Ok(ok(&Value::Array(vec![]))),
    };
    Ok(ok(&Value::Array(
        call.rows(Query::SpendUsers, &[&user]).await?,
    )))
}

/// `GET /spend/teams`: teams by spend.
pub async fn teams(call: &Call<'_>) -> Out {
    Ok(ok(&Value::Array(call.rows(Query::SpendTeams, &[]).await?)))
}

/// `GET /spend/end_users`: end users by spend.
pub async fn end_users(call: &Call<'_>) -> Out {
    Ok(ok(&Value::Array(
        call.rows(Query::SpendEndUsers, &[]).await?,
    )))
}

/// `GET /spend/tags[?start_date&end_date]`: spend and requests per request tag.
pub async fn tags(call: &Call<'_>) -> Out {
    caller_between(call, Query::SpendTags).await
}

/// `GET /spend/models[?start_date&end_date]`: spend, tokens and requests per model.
pub async fn models(call: &Call<'_>) -> Out {
    caller_between(call, Query::SpendModels).await
}

/// The rows of `q` (user, start, end): the caller's own for non-admins, between the optional
/// dates.
async fn caller_between(call: &Call<'_>, q: Query) -> Out {
    let (start, end) = (
        day(call, "start_date", false)?,
        day(call, "end_date", false)?,
    );
    let user = user_filter(call)?;
    Ok(ok(&Value::Array(
        call.rows(q, &[&user, &start, &end]).await?,
    )))
}
