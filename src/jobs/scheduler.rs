//! The one scheduler of background jobs. Each job has a row in `TianjiLLM_CronJob` naming
//! when its next run is due; every instance polls it, and the one that takes the row's lease
//! (at most 30 s, renewed while the job runs) runs that due time and records the run, which
//! moves the due time one interval on. A holder that dies stops renewing: its lease ends and
//! another instance claims the same due time, so each period is run to the end exactly once.
//! A run cut short (its lease lost) rolls back what it had not committed; the jobs are written
//! so that running a period's work again does nothing twice. Without a database, jobs that
//! need none (health checks) run on a timer in the instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::state::AppState;
use crate::store::{Query, StoreError};
use crate::util::clock;

/// The longest lease a holder gets (and the default).
pub const MAX_LEASE: Duration = Duration::from_secs(30);

/// What a run's work gives: its outcome (recorded with the run) or why it failed.
pub type Run = Pin<Box<dyn Future<Output = Result<Value, StoreError>> + Send>>;

/// A run's work.
pub type Work = Arc<dyn Fn(Arc<AppState>) -> Run + Send + Sync>;

/// How long after a run the next one is due.
#[derive(Debug, Clone, Copy)]
pub enum Every {
    Fixed(Duration),
    /// A random time between the two (`proxy_budget_rescheduler_min_time` / `_max_time`).
    Between(Duration, Duration),
}

impl Every {
    fn pick(self) -> Duration {
        match self {
            Every::Fixed(d) => d,
            Every::Between(min, max) => min + max.saturating_sub(min).mul_f64(fastrand::f64()),
        }
    }

    fn shortest(self) -> Duration {
        match self {
            Every::Fixed(d) | Every::Between(d, _) => d,
        }
    }

    fn longest(self) -> Duration {
        match self {
            Every::Fixed(d) | Every::Between(_, d) => d,
        }
    }
}

/// One scheduled job.
#[derive(Clone)]
pub struct Job {
    /// Its `cronjob_id`.
    pub id: &'static str,
    pub every: Every,
    /// How often an instance looks whether the job is due (at most a third of the lease, so a
    /// dead holder's job is taken over within about one lease).
    pub poll: Duration,
    /// Runs without a database too (on this instance's own timer).
    pub local: bool,
    pub work: Work,
    /// Told each newer result, on every instance (health checks: the latest report).
    pub on_result: Option<fn(&AppState, Value)>,
}

/// Where this instance's scheduler stands: its name in `pod_id` and its lease.
#[derive(Clone)]
pub struct Scheduler {
    pod: Arc<str>,
    lease: Duration,
}

impl Scheduler {
    /// `lease` is capped at [`MAX_LEASE`].
    pub fn new(lease: Duration) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "tianji".into());
        let pod = format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..));
        Scheduler {
            pod: pod.into(),
            lease: lease.clamp(Duration::from_millis(500), MAX_LEASE),
        }
    }

    /// This instance's `pod_id`: `host:pid:random`.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// Run `job` while `state` lives.
    pub fn spawn(&self, state: Weak<AppState>, job: Job) {
        let me = self.clone();
        let poll = job
            .poll
            .min(self.lease / 3)
            .min(job.every.shortest())
            .max(Duration::from_millis(50));
        tokio::spawn(async move {
            let mut seen: i64 = -1;
            let mut ensured = false;
            loop {
                let Some(st) = state.upgrade() else { return };
                if st.store.is_none() {
                    if !job.local {
                        return;
                    }
                    run_local(&st, &job).await;
                    drop(st);
                    tokio::time::sleep(job.every.pick()).await;
                    continue;
                }
                if !ensured {
                    ensured = me.ensure(&st, &job).await;
                }
                if ensured {
                    me.tick(&st, &job, &mut seen).await;
                }
                drop(st);
                tokio::time::sleep(poll.mul_f64(0.9 + 0.2 * fastrand::f64())).await;
            }
        });
    }

    async fn ensure(&self, st: &AppState, job: &Job) -> bool {
        let Some(store) = &st.store else { return false };
        match store.background(Query::EnsureCronJob, &[&job.id]).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "scheduler: cannot register the job");
                false
            }
        }
    }

    /// Claim the job if it is due and run it; else pick up a newer result.
    async fn tick(&self, st: &Arc<AppState>, job: &Job, seen: &mut i64) {
        let Some(store) = &st.store else { return };
        let lease = self.lease.as_secs_f64();
        // a due time further away than the longest interval: the settings changed
        let interval = job.every.longest().as_secs_f64();
        let pod: &str = &self.pod;
        let claimed = store
            .background(Query::ClaimCronJob, &[&job.id, &pod, &lease, &interval])
            .await;
        match claimed {
            Ok(rows) => match rows.first().and_then(|r| r.try_get::<_, String>(0).ok()) {
                Some(due) => self.run(st, job, &due).await,
                None => {
                    if let Some(tell) = job.on_result {
                        pick_up(st, job, seen, tell).await;
                    }
                }
            },
            Err(e) => tracing::debug!(job = job.id, error = %e, "scheduler: claim failed"),
        }
    }

    /// Run the claimed due time `due`, renewing the lease, and record the run.
    async fn run(&self, st: &Arc<AppState>, job: &Job, due: &str) {
        let started = clock::now_secs();
        let outcome = tokio::select! {
            r = (job.work)(st.clone()) => Some(r),
            _ = self.keep_lease(st, job) => None,
        };
        let Some(outcome) = outcome else {
            tracing::warn!(
                job = job.id,
                due,
                "scheduler: lease lost; the run was stopped"
            );
            return;
        };
        let (status, result) = match outcome {
            Ok(v) => ("succeeded", v),
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "scheduled job failed");
                ("failed", json!({"error": e.to_string()}))
            }
        };
        let Some(store) = &st.store else { return };
        let next = job.every.pick().as_secs_f64();
        let pod: &str = &self.pod;
        let done = store
            .background(
                Query::FinishCronJob,
                &[&job.id, &pod, &due, &next, &started, &status, &result],
            )
            .await;
        match done {
            Ok(rows) if !rows.is_empty() => {
                tracing::debug!(job = job.id, due, status, "scheduled job ran");
                if let Some(tell) = job.on_result {
                    tell(st, result);
                }
            }
            Ok(_) => tracing::warn!(
                job = job.id,
                due,
                "scheduler: another instance took the job over before this run finished"
            ),
            Err(e) => tracing::warn!(job = job.id, error = %e, "scheduler: cannot record a run"),
        }
    }

    /// Renew the lease every third of it; returns when it is lost (another holder, or no
    /// renewal for a whole lease).
    async fn keep_lease(&self, st: &AppState, job: &Job) {
        let Some(store) = &st.store else { return };
        let lease = self.lease.as_secs_f64();
        let pod: &str = &self.pod;
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.lease / 3).await;
            match store
                .background(Query::RenewCronJob, &[&job.id, &pod, &lease])
                .await
            {
                Ok(rows) if rows.is_empty() => return,
                Ok(_) => renewed = Instant::now(),
                Err(e) => {
                    tracing::debug!(job = job.id, error = %e, "scheduler: renewal failed");
                    if renewed.elapsed() >= self.lease {
                        return;
                    }
                }
            }
        }
    }
}

/// A job run on this instance's own timer (no database).
async fn run_local(st: &Arc<AppState>, job: &Job) {
    match (job.work)(st.clone()).await {
        Ok(v) => {
            if let Some(tell) = job.on_result {
                tell(st, v);
            }
        }
        Err(e) => tracing::warn!(job = job.id, error = %e, "scheduled job failed"),
    }
}

/// The job's latest result, when a run newer than `seen` finished elsewhere.
async fn pick_up(st: &AppState, job: &Job, seen: &mut i64, tell: fn(&AppState, Value)) {
    let Some(store) = &st.store else { return };
    let Ok(rows) = store
        .background(Query::CronJobResult, &[&job.id, &*seen])
        .await
    else {
        return;
    };
    if let Some(r) = rows.first() {
        let runs: i64 = r.try_get(0).unwrap_or(*seen);
        *seen = runs;
        if let Ok(Some(v)) = r.try_get::<_, Option<Value>>(1) {
            tell(st, v);
        }
    }
}
