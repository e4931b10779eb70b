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

fn text(v: &Value) -> String {
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let s = |v: &Value| crate::alerting::scrub(v.as_str().unwrap_or("-"));
    let mut out = format!(
        "*Daily report* (last 24 h)\nSpend: ${:.4} over {} requests ({} failed)",
        num(&v["total_spend"]),
        v["requests"],
        v["failures"]
    );
    let list = |name: &str| v[name].as_array().cloned().unwrap_or_default();
    let _ = write!(out, "\n\n*Top keys by spend*");
    for k in list("top_keys") {
        let _ = write!(out, "\n- {}: ${:.4}", s(&k["key"]), num(&k["spend"]));
    }
    let _ = write!(out, "\n\n*Top model groups by spend*");
    for m in list("top_models") {
        let _ = write!(
            out,
            "\n- {}: ${:.4} ({} requests)",
            s(&m["model"]),
            num(&m["spend"]),
            m["requests"]
        );
    }
    let _ = write!(out, "\n\n*Slowest deployments*");
    for d in list("slowest") {
        let _ = write!(
            out,
            "\n- {} ({}): {:.0} ms on average",
            s(&d["model"]),
            s(&d["api_base"]),
            num(&d["avg_ms"])
        );
    }
    let _ = write!(out, "\n\n*Deployments with most failed requests*");
    for f in list("most_failures") {
        let _ = write!(
            out,
            "\n- {} ({}): {} failures",
            s(&f["model"]),
            s(&f["api_base"]),
            f["failures"]
        );
    }
    out
}
