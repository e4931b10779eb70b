//! The scheduler across instances: two `tianji` processes on one database run budget resets,
//! spend-log and audit-log retention and health checks; the one holding a job's lease is
//! killed mid-run, the other takes the same due time over once the lease ends, and every
//! job's runs form one unbroken chain of periods, each run exactly once.

use std::io::Write;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Reply, default_reply};
use crate::common::{eventually_async, send, spawn_tianji};

const WAIT: Duration = Duration::from_secs(60);

struct Instance {
    child: Child,
    port: u16,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cfg: &std::path::Path) -> Instance {
    let (child, port) = spawn_tianji(cfg, "warn");
    Instance { child, port }
}

/// `(pod_id, status, due_at)` of a job's row.
async fn row(c: &tokio_postgres::Client, job: &str) -> Option<(String, String, String)> {
    c.query_opt(
        "SELECT pod_id, status, due_at::text FROM \"TianjiLLM_CronJob\" WHERE cronjob_id = $1",
        &[&job],
    )
    .await
    .ok()
    .flatten()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
}

/// The pid named in a `pod_id` (`host:pid:random`).
fn pid_of(pod: &str) -> Option<u32> {
    let mut parts = pod.rsplitn(3, ':');
    parts.next()?;
    parts.next()?.parse().ok()
}

#[tokio::test]
async fn two_instances_one_killed_mid_lease_every_period_runs_once() {
    let db = TestDb::create().await;
    // Health probes take 2.5 s: the health job holds its lease (2 s, renewed) that long.
    let up = MockUpstream::with(Arc::new(|r| {
        Reply::Delay(Duration::from_millis(2500), Box::new(default_reply(r)))
    }))
    .await;
    let yaml = format!(
        "model_list:\n  - model_name: slow\n    tianji_params:\n      model: openai/gpt-4o\n      api_base: {}\n      api_key: sk-provider-secret\n\
         general_settings:\n  master_key: sk-admin\n  database_url: \"{}\"\n  store_audit_logs: true\n\
         \x20 background_health_checks: true\n  health_check_interval: 1\n  scheduler_lease_seconds: 2\n\
         \x20 proxy_budget_rescheduler_min_time: 0.5\n  proxy_budget_rescheduler_max_time: 1\n\
         \x20 maximum_spend_logs_retention_period: 1d\n  maximum_spend_logs_retention_interval: 1s\n\
         \x20 maximum_audit_logs_retention_period: 7d\n  maximum_audit_logs_retention_interval: 1s\n",
        up.base(),
        db.url
    );
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    cfg.write_all(yaml.as_bytes()).unwrap();
    let a = start(cfg.path());
    let b = start(cfg.path());
    let c = db.client().await;

    // Old and recent log rows: retention deletes only the old ones.
    c.batch_execute(
        "INSERT INTO \"TianjiLLM_SpendLogs\" (request_id, call_type, \"startTime\", \"endTime\") VALUES
           ('old-spend', 'acompletion', now() - interval '2 days', now() - interval '2 days'),
           ('new-spend', 'acompletion', now() - interval '1 hour', now() - interval '1 hour');
         INSERT INTO \"TianjiLLM_ErrorLogs\" (request_id, \"startTime\", \"endTime\") VALUES
           ('old-error', now() - interval '3 days', now() - interval '3 days'),
           ('new-error', now(), now());
         INSERT INTO \"TianjiLLM_AuditLog\" (id, updated_at, action, table_name, object_id) VALUES
           ('old-audit', now() - interval '8 days', 'created', 'x', 'x'),
           ('new-audit', now() - interval '6 days', 'created', 'x', 'x');",
    )
    .await
    .unwrap();

    // Kill whichever instance holds the health job's lease while it runs.
    let held = std::sync::Mutex::new(None);
    assert!(
        eventually_async(WAIT, || async {
            match row(&c, "health_check").await {
                Some((pod, status, due)) if status == "ACTIVE" => {
                    *held.lock().unwrap() = Some((pod, due));
                    true
                }
                _ => false,
            }
        })
        .await,
        "the health job never ran"
    );
    let (killed_pod, killed_due) = held.into_inner().unwrap().unwrap();
    let pid = pid_of(&killed_pod).expect("pod_id names the process");
    let (mut victim, survivor) = if a.child.id() == pid {
        (a, b)
    } else {
        assert_eq!(b.child.id(), pid, "{killed_pod}");
        (b, a)
    };
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();

    // The survivor takes the same due time over once the lease ends, and runs it once.
    let taken = || async {
        c.query_opt(
            "SELECT pod_id FROM \"TianjiLLM_CronJobRun\" WHERE cronjob_id = 'health_check' AND due_at = $1::text::timestamp(3)",
            &[&killed_due],
        )
        .await
        .unwrap()
        .map(|r| r.get::<_, String>(0))
    };
    assert!(
        eventually_async(WAIT, || async { taken().await.is_some() }).await,
        "nobody finished the killed instance's run"
    );
    let finisher = taken().await.unwrap();
    assert_ne!(finisher, killed_pod);

    // Every job keeps running on the survivor.
    let jobs = [
        "reset_budget_job",
        "spend_log_cleanup",
        "audit_log_cleanup",
        "health_check",
    ];
    for job in jobs {
        assert!(
            eventually_async(WAIT, || async {
                let n: i64 = c
                    .query_one(
                        "SELECT count(*) FROM \"TianjiLLM_CronJobRun\" WHERE cronjob_id = $1 AND pod_id = $2",
                        &[&job, &finisher],
                    )
                    .await
                    .unwrap()
                    .get(0);
                n >= 3
            })
            .await,
            "{job} stopped after the kill"
        );
    }

    // One unbroken chain per job: each run was due exactly one interval after the previous
    // run finished (the interval the previous run drew), started no earlier than it was due,
    // and no due time was run twice.
    for job in jobs {
        let rows = c
            .query(
                "SELECT due_at::text, pod_id,
                        EXTRACT(epoch FROM started_at - due_at)::float8,
                        EXTRACT(epoch FROM due_at - lag(finished_at) OVER (ORDER BY due_at))::float8,
                        status
                 FROM \"TianjiLLM_CronJobRun\" WHERE cronjob_id = $1 ORDER BY due_at",
                &[&job],
            )
            .await
            .unwrap();
        assert!(rows.len() >= 3, "{job}: {} runs", rows.len());
        let (lo, hi) = match job {
            "reset_budget_job" => (0.5, 1.0),
            _ => (1.0, 1.0),
        };
        for (i, r) in rows.iter().enumerate() {
            let due: String = r.get(0);
            let late: f64 = r.get(2);
            assert!(late >= -0.002, "{job} run due {due} started {late} s early");
            assert_eq!(r.get::<_, String>(4), "succeeded", "{job} run due {due}");
            if i > 0 {
                let gap: f64 = r.get(3);
                assert!(
                    gap >= lo - 0.002 && gap <= hi + 0.002,
                    "{job} run due {due}: {gap} s after the previous run finished"
                );
            }
        }
        // (counted over the rows read above: runs go on finishing meanwhile)
        let distinct: std::collections::HashSet<String> =
            rows.iter().map(|r| r.get::<_, String>(0)).collect();
        assert_eq!(distinct.len(), rows.len(), "{job}: a due time run twice");
    }

    // What the retention jobs did.
    let ids = |sql: &'static str| {
        let c = &c;
        async move {
            let mut v: Vec<String> = c
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(
        ids("SELECT request_id FROM \"TianjiLLM_SpendLogs\"").await,
        ["new-spend"]
    );
    assert_eq!(
        ids("SELECT request_id FROM \"TianjiLLM_ErrorLogs\" WHERE request_id LIKE '%-error'").await,
        ["new-error"]
    );
    assert_eq!(
        ids("SELECT id FROM \"TianjiLLM_AuditLog\" WHERE table_name = 'x'").await,
        ["new-audit"]
    );

    // The survivor answers GET /health with the latest background results.
    let r = send(
        http::Method::GET,
        &format!("http://127.0.0.1:{}/health", survivor.port),
        &[("authorization", "Bearer sk-admin")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["healthy_count"], 1, "{}", r.text());
    drop(victim);
}

#[tokio::test]
async fn a_bad_retention_period_stops_startup() {
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    cfg.write_all(
        b"model_list: []\ngeneral_settings:\n  maximum_spend_logs_retention_period: soon\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tianji"))
        .args(["--config", cfg.path().to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("general_settings.maximum_spend_logs_retention_period"),
        "{err}"
    );
}
