//! The report alerts, run by the scheduler on one instance: `daily_reports` (every
//! `daily_report_frequency`): the last 24 h's spend and requests, the top keys (alias or masked
//! name) and model groups by spend, the slowest deployments and those failing most;
//! `spend_reports` (weekly and monthly): spend per team and per tag over the last 7 and 30
//! days.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::scheduler::{Run, Work};
use crate::alerting::AlertType;
use crate::state::AppState;
use crate::store::{Query, StoreError};

/// The daily report job's work.
pub fn daily(st: Arc<AppState>) -> Run {
    Box::pin(async move {
        let text = report(&st).await?;
        st.alerts.report(
            AlertType::DailyReports,
            "daily_report",
            text,
            Duration::ZERO,
        );
        Ok(json!({"sent": true}))
    })
}

/// The weekly (7 days) or monthly (30) spend report job's work.
pub fn spend(days: i32) -> Work {
    Arc::new(move |st| {
        Box::pin(async move {
            let Some(store) = &st.store else {
                return Ok(Value::Null);
            };
            let name = if days == 7 { "Weekly" } else { "Monthly" };
            let rows = store.query(Query::SpendReportAlert, &[&days]).await?;
            let v: Value = match rows.first() {
                Some(r) => r.try_get(0)?,
                None => Value::Null,
            };
            st.alerts.report(
                AlertType::SpendReports,
                name,
                spend_text(name, days, &v),
                Duration::ZERO,
            );
            Ok(json!({"sent": true}))
        })
    })
}

fn spend_text(name: &str, days: i32, v: &Value) -> String {
    let mut out = format!(
        "*{name} spend report* (last {days} days)\nTotal: ${:.4}",
        v["total_spend"].as_f64().unwrap_or(0.0)
    );
    for (list, title) in [("teams", "Spend per team"), ("tags", "Spend per tag")] {
        let _ = write!(out, "\n\n*{title}*");
        for e in v[list].as_array().into_iter().flatten() {
            let who = crate::alerting::scrub(e["name"].as_str().unwrap_or("-"));
            let _ = write!(out, "\n- {who}: ${:.4}", e["spend"].as_f64().unwrap_or(0.0));
        }
    }
    out
}

/// The daily report's text.
pub async fn report(state: &AppState) -> Result<String, StoreError> {
    let Some(store) = &state.store else {
        return Ok(String::new());
    };
    let row = store.query(Query::DailyAlertReport, &[]).await?;
    let v: Value = match row.first() {
        Some(r) => r.try_get(0)?,
        None => Value::Null,
    };
    Ok(text(&v))
}

/// A line of a report section from one of its entries.
type Line = fn(&Value) -> String;

fn text(v: &Value) -> String {
    let money = |v: &Value| format!("${:.4}", v.as_f64().unwrap_or(0.0));
    let mut out = format!(
        "*Daily report* (last 24 h)\nSpend: {} over {} requests ({} failed)",
        money(&v["total_spend"]),
        v["requests"],
        v["failures"]
    );
    let sections: [(&str, &str, Line); 4] = [
        ("top_keys", "Top keys by spend", |k| {
            format!(
                "{}: ${:.4}",
                k["key"].as_str().unwrap_or("-"),
                k["spend"].as_f64().unwrap_or(0.0)
            )
        }),
        ("top_models", "Top model groups by spend", |m| {
            format!(
                "{}: ${:.4} ({} requests)",
                m["model"].as_str().unwrap_or("-"),
                m["spend"].as_f64().unwrap_or(0.0),
                m["requests"]
            )
        }),
        ("slowest", "Slowest deployments", |d| {
            format!(
                "{} ({}): {:.0} ms on average",
                d["model"].as_str().unwrap_or("-"),
                d["api_base"].as_str().unwrap_or("-"),
                d["avg_ms"].as_f64().unwrap_or(0.0)
            )
        }),
        (
            "most_failures",
            "Deployments with most failed requests",
            |f| {
                format!(
                    "{} ({}): {} failures",
                    f["model"].as_str().unwrap_or("-"),
                    f["api_base"].as_str().unwrap_or("-"),
                    f["failures"]
                )
            },
        ),
    ];
    for (name, title, line) in sections {
        let _ = write!(out, "\n\n*{title}*");
        for entry in v[name].as_array().into_iter().flatten() {
            let _ = write!(out, "\n- {}", crate::alerting::scrub(&line(entry)));
        }
    }
    out
}
