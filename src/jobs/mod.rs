//! Background jobs, all run by one scheduler ([`scheduler`]): each period of each job runs on
//! exactly one instance, elected through its `TianjiLLM_CronJob` row.

pub mod budget_reset;
pub mod daily_report;
pub mod retention;
pub mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::alerting::{AlertType, Alerts};
use crate::config::{ConfigError, GeneralSettings};
use crate::state::AppState;
use scheduler::{Every, Job, Scheduler};

/// Default `maximum_spend_logs_retention_interval` / `maximum_audit_logs_retention_interval`.
const RETENTION_EVERY: Duration = Duration::from_secs(86_400);

fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v.max(0.05)).unwrap_or(Duration::from_secs(1))
}

fn period(name: &str, v: Option<&crate::config::Period>) -> Result<Option<Duration>, ConfigError> {
    match v {
        None => Ok(None),
        Some(p) => p
            .duration()
            .filter(|d| !d.is_zero())
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid {
                path: format!("general_settings.{name}"),
                message:
                    "expected a duration such as \"30d\", \"24h\", \"90m\" or a number of days"
                        .into(),
            }),
    }
}

/// The jobs the settings ask for, checked (bad retention durations stop startup).
pub fn planned(g: &GeneralSettings, alerts: &Alerts) -> Result<Vec<Job>, ConfigError> {
    let mut jobs = Vec::new();
    if !g.disable_reset_budget {
        let min = g
            .proxy_budget_rescheduler_min_time
            .unwrap_or(budget_reset::DEFAULT_MIN_SECS)
            .max(0.05);
        let max = g
            .proxy_budget_rescheduler_max_time
            .unwrap_or(budget_reset::DEFAULT_MAX_SECS)
            .max(min);
        jobs.push(Job {
            id: "reset_budget_job",
            every: Every::Between(secs(min), secs(max)),
            poll: secs(min),
            local: false,
            work: Arc::new(budget_reset::work),
            on_result: None,
        });
    }
    let spend_keep = period(
        "maximum_spend_logs_retention_period",
        g.maximum_spend_logs_retention_period.as_ref(),
    )?;
    let spend_every = period(
        "maximum_spend_logs_retention_interval",
        g.maximum_spend_logs_retention_interval.as_ref(),
    )?;
    if let Some(keep) = spend_keep {
        let every = spend_every.unwrap_or(RETENTION_EVERY);
        jobs.push(Job {
            id: "spend_log_cleanup",
            every: Every::Fixed(every),
            poll: every,
            local: false,
            work: retention::spend_logs(keep),
            on_result: None,
        });
    }
    let audit_keep = period(
        "maximum_audit_logs_retention_period",
        g.maximum_audit_logs_retention_period.as_ref(),
    )?;
    let audit_every = period(
        "maximum_audit_logs_retention_interval",
        g.maximum_audit_logs_retention_interval.as_ref(),
    )?;
    if let Some(keep) = audit_keep {
        let every = audit_every.unwrap_or(RETENTION_EVERY);
        jobs.push(Job {
            id: "audit_log_cleanup",
            every: Every::Fixed(every),
            poll: every,
            local: false,
            work: retention::audit_logs(keep),
            on_result: None,
        });
    }
    jobs.push(Job {
        id: "cron_job_run_cleanup",
        every: Every::Fixed(RETENTION_EVERY),
        poll: RETENTION_EVERY,
        local: false,
        work: retention::cron_job_runs(),
        on_result: None,
    });
    if g.background_health_checks {
        let every = secs(
            g.health_check_interval
                .unwrap_or(crate::health::checks::DEFAULT_INTERVAL_SECS)
                .max(1.0),
        );
        jobs.push(Job {
            id: "health_check",
            every: Every::Fixed(every),
            poll: every,
            local: true,
            work: Arc::new(|st| {
                Box::pin(async move {
                    Ok(crate::health::checks::check(&st, None, "background_health_check").await)
                })
            }),
            on_result: Some(keep_health),
        });
    }
    let Some((every, check)) = alerts.report_schedule() else {
        return Ok(jobs);
    };
    if alerts.wants(AlertType::DailyReports) {
        jobs.push(Job {
            id: "slack_daily_report",
            every: Every::Fixed(every),
            poll: check,
            local: false,
            work: Arc::new(daily_report::daily),
            on_result: None,
        });
    }
    if alerts.wants(AlertType::SpendReports) {
        for (id, days) in [("weekly_spend_report", 7), ("monthly_spend_report", 30)] {
            jobs.push(Job {
                id,
                every: Every::Fixed(Duration::from_secs(days as u64 * 86_400)),
                poll: check,
                local: false,
                work: daily_report::spend(days),
                on_result: None,
            });
        }
    }
    Ok(jobs)
}

/// The latest health report, on every instance.
fn keep_health(st: &AppState, report: Value) {
    st.health.store(Arc::new(Some(Arc::new(report))));
}

/// Start `jobs` for `state`.
pub fn start(state: &Arc<AppState>, g: &GeneralSettings, jobs: Vec<Job>) {
    let lease = g
        .scheduler_lease_seconds
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(scheduler::MAX_LEASE);
    let s = Scheduler::new(lease);
    tracing::debug!(pod = s.pod(), jobs = jobs.len(), "scheduler started");
    for job in jobs {
        s.spawn(Arc::downgrade(state), job);
    }
}
