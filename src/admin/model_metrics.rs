//! LiteLLM's model metrics over SpendLogs and ErrorLogs: `GET /model/metrics` (average seconds
//! per output token, per deployment and day), `/model/metrics/slow_responses` (requests and
//! those slower than `alerting_threshold`, per deployment base) and `/model/metrics/exceptions`
//! (failures per deployment and exception type). Parameters as LiteLLM's:
//! `_selected_model_group` (absent: every group), `startTime` / `endTime` (`YYYY-MM-DD`, or a
//! date and time in UTC; default the last 30 days), `api_key` (a key or its hash) and
//! `customer` (an end user). Unlike LiteLLM, a deployment's days are averaged over all its
//! rows (never one row overwriting another) and `total_exceptions` counts failures, not
//! exception types.

use std::collections::{BTreeMap, BTreeSet};

use http::Response;
use serde_json::{Map, Value, json};
use tokio_postgres::types::ToSql;

use super::{AdminError, Call, ok};
use crate::body::Body;
use crate::store::{Query, StoreError};
use crate::util::clock;

type Out = Result<Response<Body>, AdminError>;

/// The default window: the last 30 days.
const DEFAULT_DAYS: f64 = 30.0;

/// Unix seconds of a `startTime`/`endTime` value: a date (its start, or with `end` its last
/// second) or a date and time (`T` or space; seconds, fractions and a `Z` optional).
fn instant(v: &str, end: bool) -> Option<f64> {
    let v = v.trim().trim_end_matches('Z');
    match v.len() {
        10 => clock::parse_utc(&format!("{v}T00:00:00"))
            .map(|s| s as f64 + if end { 86_399.999 } else { 0.0 }),
        16 => clock::parse_utc(&format!("{v}:00")).map(|s| s as f64),
        _ => {
            let whole = clock::parse_utc(v)? as f64;
            let frac = v
                .get(19..)
                .filter(|f| f.starts_with('.'))
                .and_then(|f| format!("0{f}").parse::<f64>().ok())
                .unwrap_or(0.0);
            Some(whole + frac)
        }
    }
}

/// Column `i` of a row.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    r: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T, AdminError> {
    r.try_get(i)
        .map_err(|e| AdminError::from(StoreError::Db(e)))
}

/// The window and filters every metric shares.
struct Window {
    group: Option<String>,
    start: f64,
    end: f64,
    key: Option<String>,
    customer: Option<String>,
}

fn given(call: &Call<'_>, name: &str) -> Option<String> {
    call.param(name)
        .filter(|v| !v.is_empty() && v != "undefined" && v != "null")
}

fn window(call: &Call<'_>) -> Result<Window, AdminError> {
    let time = |name: &str, end: bool| -> Result<Option<f64>, AdminError> {
        given(call, name)
            .map(|v| {
                instant(&v, end).ok_or_else(|| {
                    AdminError::invalid(
                        name,
                        "expected a date (YYYY-MM-DD) or a UTC date and time (YYYY-MM-DDTHH:MM:SS)",
                    )
                })
            })
            .transpose()
    };
    let end = time("endTime", true)?.unwrap_or_else(clock::now_secs);
    let start = time("startTime", false)?.unwrap_or(end - DEFAULT_DAYS * 86_400.0);
    if start > end {
        return Err(AdminError::invalid(
            "startTime",
            "startTime is after endTime",
        ));
    }
    Ok(Window {
        group: given(call, "_selected_model_group"),
        start,
        end,
        key: given(call, "api_key").map(|k| super::keys::to_token(&k)),
        customer: given(call, "customer"),
    })
}

/// `GET /model/metrics`: `{"data": [{"date", <deployment>: seconds per token}], "all_api_bases"}`.
pub async fn latency(call: &Call<'_>) -> Out {
    let w = window(call)?;
    let params: [&(dyn ToSql + Sync); 5] = [&w.group, &w.start, &w.end, &w.key, &w.customer];
    let rows = call
        .store
        .query(Query::ModelLatencyPerToken, &params)
        .await?;
    let mut days: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for r in &rows {
        let (day, name, v): (String, String, Option<f64>) = (col(r, 0)?, col(r, 1)?, col(r, 2)?);
        let Some(v) = v else { continue };
        names.insert(name.clone());
        days.entry(day).or_default().insert(name, json!(v));
    }
    let data: Vec<Value> = days
        .into_iter()
        .map(|(day, mut m)| {
            m.insert("date".into(), json!(day));
            Value::Object(m)
        })
        .collect();
    Ok(ok(&json!({"data": data, "all_api_bases": names})))
}

/// `GET /model/metrics/slow_responses`: `[{"api_base", "total_count", "slow_count"}]`.
pub async fn slow_responses(call: &Call<'_>) -> Out {
    let w = window(call)?;
    let threshold = call.state.alerts.threshold().as_secs_f64();
    let params: [&(dyn ToSql + Sync); 6] =
        [&w.group, &w.start, &w.end, &w.key, &w.customer, &threshold];
    let rows = call.store.query(Query::ModelSlowResponses, &params).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let (base, total, slow): (String, i64, i64) = (col(r, 0)?, col(r, 1)?, col(r, 2)?);
        out.push(json!({"api_base": base, "total_count": total, "slow_count": slow}));
    }
    Ok(ok(&Value::Array(out)))
}

/// `GET /model/metrics/exceptions`: `{"data": [{"model", "total_exceptions", <type>: count}],
/// "exception_types"}`.
pub async fn exceptions(call: &Call<'_>) -> Out {
    let w = window(call)?;
    let params: [&(dyn ToSql + Sync); 3] = [&w.group, &w.start, &w.end];
    let rows = call.store.query(Query::ModelExceptions, &params).await?;
    let mut kinds = BTreeSet::new();
    let mut data = Vec::with_capacity(rows.len());
    for r in &rows {
        let (name, total, counts): (String, i64, Value) = (col(r, 0)?, col(r, 1)?, col(r, 2)?);
        let mut row = Map::new();
        row.insert("model".into(), json!(name));
        row.insert("total_exceptions".into(), json!(total));
        if let Value::Object(counts) = counts {
            for (kind, n) in counts {
                kinds.insert(kind.clone());
                row.insert(kind, n);
            }
        }
        data.push(Value::Object(row));
    }
    Ok(ok(&json!({"data": data, "exception_types": kinds})))
}

#[cfg(test)]
mod tests {
    use super::instant;

    #[test]
    fn instants() {
        assert_eq!(instant("1970-01-02", false), Some(86_400.0));
        assert_eq!(instant("1970-01-01", true), Some(86_399.999));
        assert_eq!(instant("1970-01-01T00:01", false), Some(60.0));
        assert_eq!(instant("1970-01-01 00:00:02", false), Some(2.0));
        assert_eq!(instant("1970-01-01T00:00:02.500Z", false), Some(2.5));
        for bad in ["", "yesterday", "1970-13-01", "1970-01-01T25:00:00"] {
            assert_eq!(instant(bad, false), None, "{bad}");
        }
    }
}
