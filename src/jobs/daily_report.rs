//! The daily report alert (`alert_types: [daily_reports]`): every `report_check_interval` each
//! instance checks whether a report is due; the alert's deduplication (one per
//! `daily_report_frequency`, through Redis across instances) lets one of them send it. The
//! report: the last 24 h's spend and requests, the top keys (alias or masked name) and model
//! groups by spend, the slowest deployments and those failing most.

use std::fmt::Write;
use std::sync::Weak;

use serde_json::Value;

use crate::state::AppState;
use crate::store::{Query, StoreError};

/// Run the job until the state is dropped (only when daily reports are on and there is a
/// database).
pub fn spawn(state: Weak<AppState>) {
    let Some(st) = state.upgrade() else { return };
    let (Some((every, check)), Some(_)) = (st.alerts.report_schedule(), &st.store) else {
        return;
    };
    drop(st);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(check.max(std::time::Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(st) = state.upgrade() else { return };
            match report(&st).await {
                Ok(text) => st.alerts.report(text, every),
                Err(e) => tracing::warn!(error = %e, "daily report: could not read spend"),
            }
        }
    });
}

/// The report's text.
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
