//! `/global/spend*`, `/global/activity*` and `POST /global/spend/reset`.

use http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{key_param, range, user_filter};
use crate::admin::crud::{Params, Tx};
use crate::admin::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::Query;

type Out = Result<Response<Body>, AdminError>;

/// The first row of `q`, or `null`.
async fn one(call: &Call<'_>, q: Query, params: &Params<'_>) -> Result<Value, AdminError> {
    Ok(call.first(q, params).await?.unwrap_or(Value::Null))
}

/// The activity `q` reports between the required dates (the caller's own for non-admins).
async fn caller_activity(call: &Call<'_>, q: Query) -> Out {
    let (start, end) = range(call)?;
    let user = user_filter(call)?;
    Ok(ok(&one(call, q, &[&start, &end, &user]).await?))
}

/// `GET /global/activity?start_date&end_date`: requests and tokens per day.
pub async fn activity(call: &Call<'_>) -> Out {
    caller_activity(call, Query::GlobalActivity).await
}

/// `GET /global/activity/model`: the same per model group (top 10 by requests).
pub async fn activity_model(call: &Call<'_>) -> Out {
    caller_activity(call, Query::GlobalActivityModel).await
}

/// `GET /global/activity/cache_hits`: cache hits against upstream calls per call type.
pub async fn activity_cache_hits(call: &Call<'_>) -> Out {
    caller_activity(call, Query::GlobalActivityCacheHits).await
}

/// `GET /global/spend`: spend of the last 30 days; `max_budget` is LiteLLM's proxy-wide
/// budget, which Tianji does not have (0.0, LiteLLM's default).
pub async fn spend(call: &Call<'_>) -> Out {
    let rows = call.store.query(Query::GlobalSpend, &[]).await?;
    let total: Option<f64> = rows.first().and_then(|r| r.try_get(0).ok());
    Ok(ok(&json!({"spend": total, "max_budget": 0.0})))
}

fn limit(call: &Call<'_>, default: i64) -> Result<i64, AdminError> {
    match call.param("limit").filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            AdminError::invalid(
                "limit",
                format!("Invalid limit: {v}, error: Limit must be greater than 0"),
            )
        }),
    }
}

/// `GET /global/spend/keys[?limit]`: keys by spend, last 30 days (the caller's own for
/// non-admins).
pub async fn spend_keys(call: &Call<'_>) -> Out {
    let n = limit(call, i64::MAX)?;
    let user = user_filter(call)?;
    Ok(ok(&Value::Array(
        call.rows(Query::GlobalSpendKeys, &[&n, &user]).await?,
    )))
}

/// `GET /global/spend/models[?limit=10]`: models by spend, last 30 days (the caller's own for
/// non-admins).
pub async fn spend_models(call: &Call<'_>) -> Out {
    let n = limit(call, 10)?;
    let user = user_filter(call)?;
    Ok(ok(&Value::Array(
        call.rows(Query::GlobalSpendModels, &[&n, &user]).await?,
    )))
}

/// `GET /global/spend/teams`: spend per team and day, last 30 days.
pub async fn spend_teams(call: &Call<'_>) -> Out {
    Ok(ok(&one(call, Query::GlobalSpendTeams, &[]).await?))
}

/// `GET /global/spend/tags?start_date&end_date[&tags=a,b]`.
pub async fn spend_tags(call: &Call<'_>) -> Out {
    let (start, end) = range(call)?;
    let tags: Option<Vec<String>> = call
        .param("tags")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty() && !t.iter().any(|s| s == "all-tags"));
    let user = user_filter(call)?;
    Ok(ok(&one(
        call,
        Query::GlobalSpendTags,
        &[&start, &end, &tags, &user],
    )
    .await?))
}

/// `GET /global/spend/provider?start_date&end_date`: spend per provider (the caller's own for
/// non-admins).
pub async fn provider(call: &Call<'_>) -> Out {
    let (start, end) = range(call)?;
    let user = user_filter(call)?;
    Ok(ok(&Value::Array(
        call.rows(Query::GlobalSpendProvider, &[&start, &end, &user])
            .await?,
    )))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EndUsersBody {
    api_key: Option<String>,
    #[serde(rename = "startTime")]
    start_time: Option<String>,
    #[serde(rename = "endTime")]
    end_time: Option<String>,
}

/// `POST /global/spend/end_users`: the 100 end users with the most spend (default: last 30
/// days; the caller's own requests for non-admins).
pub async fn end_users(call: &Call<'_>) -> Out {
    let b: EndUsersBody = call.json()?;
    let user = user_filter(call)?;
    let from = b.start_time.unwrap_or_else(|| {
        crate::util::clock::fmt_utc(crate::util::clock::now_secs() - 30.0 * 86_400.0)
    });
    let to = b.end_time;
    let key = b.api_key.map(|k| crate::admin::keys::to_token(&k));
    Ok(ok(&Value::Array(
        call.rows(Query::GlobalSpendEndUsers, &[&key, &from, &to, &user])
            .await?,
    )))
}

/// `GET /global/spend/report?start_date&end_date&group_by=team|customer|api_key`, in LiteLLM's
/// order: an `api_key` or `internal_user_id` reports per key; a `team_id` with a `customer_id`
/// that team's spend for that end user; else `group_by`.
pub async fn report(call: &Call<'_>) -> Out {
    let (start, end) = range(call)?;
    let api_key = key_param(call, "api_key");
    let user = call.given("internal_user_id");
    let team = call.given("team_id");
    let customer = call.given("customer_id");
    let group_by = call.param("group_by").unwrap_or_else(|| "team".into());
    let rows = if api_key.is_some() || user.is_some() || group_by == "api_key" {
        call.rows(
            Query::GlobalSpendReportKeys,
            &[&start, &end, &api_key, &user],
        )
        .await?
    } else if let (Some(t), Some(c)) = (&team, &customer) {
        call.rows(Query::GlobalSpendReportTeamCustomers, &[&start, &end, t, c])
            .await?
    } else if group_by == "team" {
        call.rows(Query::GlobalSpendReportTeams, &[&start, &end, &team])
            .await?
    } else if group_by == "customer" {
        call.rows(
            Query::GlobalSpendReportCustomers,
            &[&start, &end, &customer],
        )
        .await?
    } else {
        return Err(AdminError::invalid(
            "group_by",
            format!("must be team, customer or api_key, got '{group_by}'"),
        ));
    };
    Ok(ok(&Value::Array(rows)))
}

/// `POST /global/spend/reset`: every key's and team's spend back to 0 (SpendLogs stay).
pub async fn reset(call: &Call<'_>) -> Out {
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let keys = tx.query(Query::ResetAllKeySpend, &[]).await?;
    let teams = tx.query(Query::ResetAllTeamSpend, &[]).await?;
    let id = |r: &tokio_postgres::Row| r.try_get::<_, String>(0).ok();
    let mut changed: Vec<Changed> = keys.iter().filter_map(id).map(Changed::Key).collect();
    changed.extend(teams.iter().filter_map(id).map(Changed::Team));
    // No audit rows; the caches are dropped below, once the shared spend is reset too.
    tx.commit(Vec::new(), &[]).await?;
    call.state.spend.reset_shared(&changed, 0.0).await;
    call.state.invalidate(&[Changed::All]).await;
    Ok(ok(&json!({
        "message": "Spend for all API Keys and Teams reset successfully",
        "status": "success"
    })))
}
