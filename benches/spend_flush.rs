//! Spend writer: PostgreSQL CPU per SpendLogs row.
//!
//! Creates a scratch database on the local PostgreSQL, applies the migrations the way the
//! gateway does (`Store::connect`), creates a key with a user, a team (in an organisation) and
//! the team membership, then pushes `--rows` SpendLogs rows, built the way the request pipeline
//! builds them (`pipeline::budget::row` then `Completion::finish_spend`: a priced deployment,
//! 250 prompt / 14 completion tokens, the provider's answer id), through the real queue and
//! writer (`Spend::start`, `Ticket::finish`) at a steady offered rate. Measured from the first
//! push until the writer has committed every row:
//!
//! - PostgreSQL CPU per row: utime+stime of every `postgres` process (/proc/<pid>/stat), plus
//!   the postmaster's reaped children (cutime+cstime: backends and autovacuum workers that
//!   exited during the run). Other databases' clients on the same server count there too, so
//!   a second figure ("scoped") sums only this database's backends (autovacuum workers
//!   included) and the server's shared background processes (WAL writer, checkpointer, ...),
//!   found through `pg_stat_activity` every 100 ms.
//! - the writer's thread CPU per row (the writer runs alone on its own runtime and thread) and
//!   the whole process's (the synthetic producer included);
//! - rows/s, and the batch sizes the flushes had (rows per transaction: `xmin`).
//!
//! Then it checks parity: the stored rows (`SELECT count(*)`), their distinct call ids, the
//! key's spend roll-up and the daily tables against what was pushed, and prints a markdown row.
//!
//! Run: `cargo test --bench spend_flush -- --rows 50000` (debug build; the database's CPU does
//! not depend on our build profile) or `cargo bench --bench spend_flush`. Options: `--rows N`
//! (200000), `--rate R` offered rows/s (20000), `--every-ms M` the writer's tick
//! (`proxy_batch_write_at`, 1000), `--keys K` keys (each with its own user; one team; 1),
//! `--ids unique|same|none` the answers' ids (unique: `chatcmpl-<random>` as real providers
//! give; same: one id for every answer, as benches/load.rs's mock upstream; none: no answer id),
//! `--duration-ms LO-HI` the requests' durations (200-4000: rows come in the order requests
//! end, so `startTime` and the call ids, minted when a request starts, arrive out of order),
//! `--prefill N` rows stored before the measurement (an existing table), `--url` the server's
//! admin database (`TIANJI_TEST_DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/postgres),
//! `--keep` to leave the scratch database, `--sql Q` (repeatable) SQL to run on the scratch
//! database before the run (to measure, say, what one index costs: `--sql 'DROP INDEX ...'`),
//! `--vacuum` to also measure the VACUUM ANALYZE that autovacuum runs later for these rows,
//! `--repeat R` runs (each on a fresh database) with the min/median/max of the CPU figures.
//! `--floor` measures, in one run and alternating (R rounds), the reference's schema, the
//! same table with only its primary key, and with no index at all: what PostgreSQL spends on
//! the row itself (COPY, heap, WAL, commit, roll-ups) whatever the indexes (without the primary
//! key a repeated answer id is stored twice, so that run's parity check fails, as expected).
//! WAL volume per row is read from `pg_stat_wal` (the whole server's).

// Bench code: fail loudly; results go to stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tianji::auth::{KeyRecord, TeamRecord};
use tianji::providers::Catalog;
use tianji::router::{Deployment, ModelTable};
use tianji::spend::cost::{Extra, cost};
use tianji::spend::ledger::Reservation;
use tianji::spend::record::{Caller, SpendRow};
use tianji::spend::usage::Usage;
use tianji::spend::{Spend, SpendOptions, Ticket};
use tianji::store::{Store, StoreOptions};
use tokio_postgres::NoTls;

const PROMPT: u64 = 250;
const COMPLETION: u64 = 14;

#[derive(Clone, Copy, PartialEq)]
enum Ids {
    Unique,
    Same,
    None,
}

struct Args {
    rows: usize,
    rate: f64,
    every: Duration,
    keys: usize,
    ids: Ids,
    prefill: usize,
    url: String,
    keep: bool,
    /// SQL run on the scratch database before the run (experiments: `DROP INDEX ...`).
    sql: Vec<String>,
    /// Request durations, uniform in this range (ms): rows reach the writer in the order
    /// requests end, so their `startTime` (and call ids, minted at the start) are not in order.
    durations: (u64, u64),
    /// Also measure the VACUUM ANALYZE that autovacuum will run for these rows.
    vacuum: bool,
    /// Runs, each on a fresh database.
    repeat: usize,
    /// The schema floor: reference schema, primary key only, no index, alternating.
    floor: bool,
}

fn args() -> Args {
    let mut a = Args {
        rows: 200_000,
        rate: 20_000.0,
        every: Duration::from_secs(1),
        keys: 1,
        ids: Ids::Unique,
        prefill: 0,
        url: std::env::var("TIANJI_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        keep: false,
        sql: Vec::new(),
        durations: (200, 4000),
        vacuum: false,
        repeat: 1,
        floor: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = || argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--rows" => a.rows = v().parse().unwrap(),
            "--rate" => a.rate = v().parse().unwrap(),
            "--every-ms" => a.every = Duration::from_millis(v().parse().unwrap()),
            "--keys" => a.keys = v().parse::<usize>().unwrap().max(1),
            "--prefill" => a.prefill = v().parse().unwrap(),
            "--url" => a.url = v(),
            "--sql" => a.sql.push(v()),
            "--repeat" => a.repeat = v().parse::<usize>().unwrap().max(1),
            "--floor" => {
                a.floor = true;
                i += 1;
                continue;
            }
            "--duration-ms" => {
                let r = v();
                let (lo, hi) = r.split_once('-').unwrap_or((&r, &r));
                a.durations = (lo.parse().unwrap(), hi.parse().unwrap());
            }
            "--ids" => {
                a.ids = match v().as_str() {
                    "unique" => Ids::Unique,
                    "same" => Ids::Same,
                    "none" => Ids::None,
                    o => panic!("--ids unique|same|none, not {o}"),
                }
            }
            "--keep" => {
                a.keep = true;
                i += 1;
                continue;
            }
            "--vacuum" => {
                a.vacuum = true;
                i += 1;
                continue;
            }
            // cargo test/bench pass their own flags
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn with_db(url: &str, db: &str) -> String {
    let i = url.rfind('/').unwrap();
    format!("{}/{db}", &url[..i])
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("PostgreSQL must be running (scripts/services starts it)");
    tokio::spawn(conn);
    c
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc
// ---------------------------------------------------------------------------------------------

/// (utime+stime, cutime+cstime, ppid, start time) of a process or thread, in clock ticks.
fn stat(path: &str) -> Option<(u64, u64, u32, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    // fields after the command name, which is in parentheses and may hold spaces
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state): field n is f[n - 3]
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((
        n(14)? + n(15)?,
        n(16)? + n(17)?,
        u32::try_from(n(4)?).ok()?,
        n(22)?,
    ))
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// CPU ticks of every live `postgres` process, and the postmaster's reaped children's.
struct PgCpu {
    per_pid: HashMap<u32, (u64, u64)>,
    reaped: u64,
}

fn pg_cpu() -> PgCpu {
    let mut per_pid = HashMap::new();
    let mut reaped = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if comm(pid) != "postgres" {
            continue;
        }
        let Some((cpu, children, ppid, start)) = stat(&format!("/proc/{pid}/stat")) else {
            continue;
        };
        if comm(ppid) != "postgres" {
            reaped += children; // the postmaster
        }
        per_pid.insert(pid, (cpu, start));
    }
    PgCpu { per_pid, reaped }
}

fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Seconds since boot now, in clock ticks (to tell processes started during the run).
fn now_ticks(hz: f64) -> u64 {
    let up = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let secs: f64 = up
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    (secs * hz) as u64
}

/// The processes this run is charged for: this database's backends and the server's own
/// background processes, by kind, with the last CPU seen.
#[derive(Default)]
struct Scoped {
    /// pid -> (kind, last CPU ticks seen)
    seen: HashMap<u32, (String, u64)>,
}

impl Scoped {
    async fn sample(&mut self, admin: &tokio_postgres::Client, db: &str) {
        let rows = admin
            .query(
                "SELECT pid, backend_type FROM pg_stat_activity \
                 WHERE (datname = $1 AND backend_type IN ('client backend', 'autovacuum worker')) \
                    OR (datname IS NULL AND backend_type NOT IN ('client backend', 'autovacuum worker'))",
                &[&db],
            )
            .await
            .unwrap();
        for r in rows {
            let pid: i32 = r.get(0);
            let kind: String = r.get(1);
            let pid = pid as u32;
            if let Some((cpu, _, _, _)) = stat(&format!("/proc/{pid}/stat")) {
                self.seen.insert(pid, (kind, cpu));
            }
        }
        let pids: Vec<u32> = self.seen.keys().copied().collect();
        for pid in pids {
            if let Some((cpu, _, _, _)) = stat(&format!("/proc/{pid}/stat"))
                && let Some(e) = self.seen.get_mut(&pid)
            {
                e.1 = cpu;
            }
        }
    }

    /// Ticks used during the run, by kind.
    fn used(&self, start: &PgCpu, started_at: u64) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (pid, (kind, cpu)) in &self.seen {
            let base = match start.per_pid.get(pid) {
                Some((c, st)) if *st < started_at + 1 || *c <= *cpu => *c,
                _ => 0,
            };
            *out.entry(kind.clone()).or_insert(0) += cpu.saturating_sub(base);
        }
        out
    }
}

fn thread_cpu() -> u64 {
    stat("/proc/thread-self/stat").map_or(0, |s| s.0)
}

fn process_cpu() -> u64 {
    stat("/proc/self/stat").map_or(0, |s| s.0)
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

struct World {
    keys: Vec<Caller>,
    deployment: Arc<Deployment>,
}

fn deployment() -> Arc<Deployment> {
    let l = tianji::Loaded::from_yaml(
        "model_list:\n  - model_name: gpt-4o-mini\n    tianji_params: {model: openai/gpt-4o-mini, api_key: sk-bench}\n",
    )
    .unwrap();
    let t = ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env).unwrap();
    let d = t.deployments().next().unwrap().clone();
    assert!(d.price.is_some(), "the bench model must be priced");
    d
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// One request's row, filled in as `pipeline::budget::row`, `reserve_for` and
/// `Completion::finish_spend` do for a non-streaming chat completion.
fn row(w: &World, i: usize, ids: Ids, durations: (u64, u64)) -> (SpendRow, f64) {
    let d = &w.deployment;
    let took = fastrand::u64(durations.0..=durations.1.max(durations.0));
    let end = SystemTime::now();
    let started = end - Duration::from_millis(took);
    let since = started.duration_since(UNIX_EPOCH).unwrap();
    // minted when the request started (pipeline/mod.rs)
    let call_id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        since.as_secs(),
        since.subsec_nanos(),
    ));
    let usage = Usage {
        prompt_tokens: PROMPT,
        completion_tokens: COMPLETION,
        total_tokens: PROMPT + COMPLETION,
        ..Usage::default()
    };
    let spend = cost(d.price.as_deref().unwrap(), &usage, Extra::default());
    let r = SpendRow {
        call_id,
        call_type: "acompletion",
        endpoint: "/v1/chat/completions",
        caller: w.keys[i % w.keys.len()].clone(),
        start_time: unix(started),
        model_group: d.model_name.clone(),
        requester_ip_address: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        spend,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
        end_time: unix(end),
        completion_start_time: Some(unix(started + Duration::from_millis(took / 3))),
        request_duration_ms: took,
        status: "success",
        deployment: Some(d.clone()),
        response_id: match ids {
            Ids::Unique => Some(format!("chatcmpl-{}", random_id())),
            Ids::Same => Some("chatcmpl-bench".into()),
            Ids::None => None,
        },
        ..SpendRow::default()
    };
    (r, spend)
}

/// 29 characters like an OpenAI completion id's tail.
fn random_id() -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..29)
        .map(|_| A[fastrand::usize(..A.len())] as char)
        .collect()
}

async fn seed(db: &tokio_postgres::Client, keys: usize) -> Vec<Caller> {
    db.batch_execute(
        r#"
INSERT INTO "TianjiLLM_BudgetTable" ("budget_id", "created_by", "updated_by") VALUES ('bench-budget', 'bench', 'bench');
INSERT INTO "TianjiLLM_OrganizationTable" ("organization_id", "organization_alias", "budget_id", "created_by", "updated_by")
    VALUES ('bench-org', 'Bench Org', 'bench-budget', 'bench', 'bench');
INSERT INTO "TianjiLLM_TeamTable" ("team_id", "team_alias", "organization_id") VALUES ('bench-team', 'bench-team-alias', 'bench-org');
"#,
    )
    .await
    .unwrap();
    let team = Arc::new(TeamRecord {
        team_id: "bench-team".into(),
        team_alias: Some("bench-team-alias".into()),
        organization_id: Some("bench-org".into()),
        ..TeamRecord::default()
    });
    let mut out = Vec::new();
    for k in 0..keys {
        let user = format!("bench-user-{k}");
        let token = format!("{:064x}", 0xbe0c4_u64 * 1_000_003 + k as u64);
        db.execute(
            r#"INSERT INTO "TianjiLLM_UserTable" ("user_id", "organization_id") VALUES ($1, 'bench-org')"#,
            &[&user],
        )
        .await
        .unwrap();
        db.execute(
            r#"INSERT INTO "TianjiLLM_TeamMembership" ("user_id", "team_id") VALUES ($1, 'bench-team')"#,
            &[&user],
        )
        .await
        .unwrap();
        db.execute(
            r#"INSERT INTO "TianjiLLM_VerificationToken" ("token", "key_alias", "user_id", "team_id") VALUES ($1, $2, $3, 'bench-team')"#,
            &[&token, &format!("bench-key-{k}"), &user],
        )
        .await
        .unwrap();
        let key = Arc::new(KeyRecord {
            token,
            key_alias: Some(format!("bench-key-{k}")),
            user_id: Some(user),
            team_id: Some("bench-team".into()),
            ..KeyRecord::default()
        });
        out.push(Caller::Key(key, Some(team.clone())));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// The writer, alone on its own thread and runtime (so its thread's CPU is its own).
struct WriterThread {
    spend: Arc<Spend>,
    tid_cpu: std::sync::mpsc::Sender<std::sync::mpsc::Sender<u64>>,
    done: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn start_writer(url: String, every: Duration) -> WriterThread {
    let (tx, rx) = std::sync::mpsc::channel();
    let (cpu_tx, cpu_rx) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<u64>>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("spend-writer".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let store = Store::connect(&url, StoreOptions::default()).await.unwrap();
                let mut opts = SpendOptions::default();
                opts.writer.every = every;
                let spend = Arc::new(Spend::start(Some(Arc::new(store)), opts));
                tx.send(spend.clone()).unwrap();
                // answer CPU questions from this thread until told to stop
                let mut done_rx = done_rx;
                loop {
                    tokio::select! {
                        _ = &mut done_rx => break,
                        _ = tokio::time::sleep(Duration::from_millis(5)) => {
                            while let Ok(reply) = cpu_rx.try_recv() {
                                let _ = reply.send(thread_cpu());
                            }
                        }
                    }
                }
                spend.shutdown().await;
            });
        })
        .unwrap();
    let spend = rx.recv().unwrap();
    WriterThread {
        spend,
        tid_cpu: cpu_tx,
        done: done_tx,
        thread,
    }
}

impl WriterThread {
    fn cpu(&self) -> u64 {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tid_cpu.send(tx).unwrap();
        rx.recv().unwrap()
    }
}

/// Push `n` rows at `rate` rows/s through the queue; the sum of their costs.
async fn produce(spend: &Arc<Spend>, w: &World, n: usize, rate: f64, a: &Args) -> f64 {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut pushed = 0;
    let mut total = 0.0;
    while pushed < n {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as usize).min(n);
        while pushed < due {
            let slot = spend.slot().await;
            let (r, c) = row(w, pushed, a.ids, a.durations);
            total += c;
            let t = Ticket {
                spend: spend.clone(),
                slot,
                reservation: Reservation::default(),
            };
            t.finish(c, Some("openai"), Some(r));
            pushed += 1;
        }
    }
    total
}

/// The reference schema's secondary indexes on SpendLogs (the primary key is `request_id`).
const SECONDARY_INDEXES: [&str; 5] = [
    "TianjiLLM_SpendLogs_startTime_request_id_idx",
    "TianjiLLM_SpendLogs_end_user_idx",
    "TianjiLLM_SpendLogs_session_id_idx",
    "TianjiLLM_SpendLogs_litellm_call_id_idx",
    "TianjiLLM_SpendLogs_api_key_startTime_idx",
];

/// `--floor`: the reference schema, only its primary key, no index; alternating rounds.
fn floor(a: &mut Args, rt: &tokio::runtime::Runtime) {
    let base = std::mem::take(&mut a.sql);
    let drops: Vec<String> = SECONDARY_INDEXES
        .iter()
        .map(|i| format!(r#"DROP INDEX "{i}""#))
        .collect();
    let no_pk = r#"ALTER TABLE "TianjiLLM_SpendLogs" DROP CONSTRAINT "TianjiLLM_SpendLogs_pkey""#
        .to_string();
    let variants: [(&str, Vec<String>); 3] = [
        ("reference schema (primary key + 5 indexes)", Vec::new()),
        ("primary key only", drops.clone()),
        ("no index", [drops, vec![no_pk]].concat()),
    ];
    let mut got: Vec<Vec<(f64, f64, bool)>> = vec![Vec::new(); variants.len()];
    for round in 0..a.repeat {
        for (i, (name, sql)) in variants.iter().enumerate() {
            println!();
            println!("== round {} of {}: {name}", round + 1, a.repeat);
            a.sql = [base.clone(), sql.clone()].concat();
            let r = rt.block_on(run(a, round == 0 && i == 0));
            got[i].push((r.all, r.scoped, r.ok));
        }
    }
    println!();
    println!(
        "| SpendLogs schema | PG CPU µs/row, all postgres (per round) | scoped (per round) | parity |"
    );
    println!("|---|---|---|---|");
    for ((name, _), runs) in variants.iter().zip(&got) {
        let list = |f: fn(&(f64, f64, bool)) -> f64| {
            runs.iter()
                .map(|r| format!("{:.2}", f(r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let parity = if runs.iter().all(|r| r.2) {
            "ok"
        } else {
            "FAILED"
        };
        println!(
            "| {name} | {} | {} | {parity} |",
            list(|r| r.0),
            list(|r| r.1)
        );
    }
}

fn main() {
    let mut a = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if a.floor {
        floor(&mut a, &rt);
        return;
    }
    let mut all = Vec::new();
    let mut scoped = Vec::new();
    let mut ok = true;
    for i in 0..a.repeat {
        let r = rt.block_on(run(&a, i == 0));
        all.push(r.all);
        scoped.push(r.scoped);
        ok &= r.ok;
    }
    if a.repeat > 1 {
        let f = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            format!(
                "min {:.2}, median {:.2}, max {:.2}",
                v[0],
                v[v.len() / 2],
                v[v.len() - 1]
            )
        };
        println!();
        println!(
            "{} runs: PG CPU µs/row all postgres {}; scoped {}",
            a.repeat,
            f(&mut all),
            f(&mut scoped)
        );
    }
    if !ok {
        std::process::exit(1);
    }
}

/// What one run measured (µs per row), and whether its parity check passed.
struct Measured {
    all: f64,
    scoped: f64,
    ok: bool,
}

/// Cluster-wide WAL counters: (records, full-page images, bytes).
async fn wal(admin: &tokio_postgres::Client) -> (i64, i64, f64) {
    let r = admin
        .query_one(
            "SELECT wal_records, wal_fpi, wal_bytes::float8 FROM pg_stat_wal",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

async fn run(a: &Args, header: bool) -> Measured {
    let hz = ticks_per_sec();
    let name = format!("tianji_spend_bench_{}", uuid::Uuid::now_v7().simple());
    let admin = connect(&a.url).await;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let url = with_db(&a.url, &name);
    let writer = start_writer(url.clone(), a.every);
    let db = connect(&url).await;
    for q in &a.sql {
        db.batch_execute(q).await.unwrap();
    }
    let world = World {
        keys: seed(&db, a.keys).await,
        deployment: deployment(),
    };
    let mut expected = 0.0;
    if a.prefill > 0 {
        expected += produce(&writer.spend, &world, a.prefill, f64::MAX, a).await;
        while writer.spend.queued() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        db.batch_execute("VACUUM ANALYZE \"TianjiLLM_SpendLogs\"")
            .await
            .unwrap();
    }
    let (xmin_floor,): (i64,) = {
        let r = db
            .query_one("SELECT txid_current()::bigint", &[])
            .await
            .unwrap();
        (r.get(0),)
    };

    let mut scoped = Scoped::default();
    let t0 = Instant::now();
    let started_at = now_ticks(hz);
    let pg0 = pg_cpu();
    let w0 = writer.cpu();
    let p0 = process_cpu();
    // sample the scoped processes while producing
    let wal0 = wal(&admin).await;
    let producing = produce(&writer.spend, &world, a.rows, a.rate, a);
    tokio::pin!(producing);
    let cost_total = loop {
        tokio::select! {
            c = &mut producing => break c,
            _ = tokio::time::sleep(Duration::from_millis(100)) => scoped.sample(&admin, &name).await,
        }
    };
    let pushed_in = t0.elapsed();
    let total_rows = a.rows + a.prefill;
    let mut last_sample = Instant::now();
    // every row committed: the writer has nothing queued or in flight, and count(*) agrees
    // (the CPU is read before the count, which is not charged to the run)
    let (elapsed, pg1, w1, p1, count, wal1) = loop {
        if writer.spend.queued() > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if last_sample.elapsed() >= Duration::from_millis(100) {
                scoped.sample(&admin, &name).await;
                last_sample = Instant::now();
            }
            continue;
        }
        scoped.sample(&admin, &name).await;
        let elapsed = t0.elapsed();
        let (pg1, w1, p1) = (pg_cpu(), writer.cpu(), process_cpu());
        let wal1 = wal(&admin).await;
        let count: i64 = db
            .query_one(r#"SELECT count(*) FROM "TianjiLLM_SpendLogs""#, &[])
            .await
            .unwrap()
            .get(0);
        if count >= total_rows as i64 || t0.elapsed() > pushed_in + Duration::from_secs(120) {
            break (elapsed, pg1, w1, p1, count, wal1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    expected += cost_total;

    // all postgres: live processes' deltas (new ones from 0), plus children reaped meanwhile
    let mut pg_ticks = pg1.reaped.saturating_sub(pg0.reaped);
    for (pid, (cpu, st)) in &pg1.per_pid {
        let base = match pg0.per_pid.get(pid) {
            Some((c, st0)) if st0 == st => *c,
            _ => 0,
        };
        pg_ticks += cpu.saturating_sub(base);
    }
    let scoped_by_kind = scoped.used(&pg0, started_at);
    let scoped_ticks: u64 = scoped_by_kind.values().sum();

    // parity
    let calls: i64 = db
        .query_one(
            r#"SELECT count(DISTINCT "litellm_call_id") FROM "TianjiLLM_SpendLogs""#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let key_spend: f64 = db
        .query_one(
            r#"SELECT COALESCE(sum("spend"), 0) FROM "TianjiLLM_VerificationToken""#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let log_spend: f64 = db
        .query_one(
            r#"SELECT COALESCE(sum("spend"), 0) FROM "TianjiLLM_SpendLogs""#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut daily = Vec::new();
    for (t, c) in [
        ("TianjiLLM_DailyUserSpend", "user_id"),
        ("TianjiLLM_DailyTeamSpend", "team_id"),
        ("TianjiLLM_DailyOrganizationSpend", "organization_id"),
    ] {
        let r = db
            .query_one(
                &format!(
                    r#"SELECT COALESCE(sum("api_requests"), 0)::int8, COALESCE(sum("prompt_tokens"), 0)::int8, COALESCE(sum("spend"), 0) FROM "{t}" WHERE "{c}" IS NOT NULL"#
                ),
                &[],
            )
            .await
            .unwrap();
        daily.push((
            t,
            r.get::<_, i64>(0),
            r.get::<_, i64>(1),
            r.get::<_, f64>(2),
        ));
    }
    let team_spend: f64 = db
        .query_one(
            r#"SELECT "spend" FROM "TianjiLLM_TeamTable" WHERE "team_id" = 'bench-team'"#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let member_spend: f64 = db
        .query_one(
            r#"SELECT COALESCE(sum("spend"), 0) FROM "TianjiLLM_TeamMembership""#,
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut batches: Vec<i64> = db
        .query(
            r#"SELECT count(*) FROM "TianjiLLM_SpendLogs" WHERE xmin::text::bigint >= $1 GROUP BY xmin::text::bigint"#,
            &[&(xmin_floor % (1_i64 << 32))],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let distinct_request_ids: i64 = db
        .query_one(
            r#"SELECT count(DISTINCT "request_id") FROM "TianjiLLM_SpendLogs""#,
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs().max(1.0);
    let mut problems = Vec::new();
    if count != total_rows as i64 {
        problems.push(format!("rows {count} != pushed {total_rows}"));
    }
    if calls != total_rows as i64 {
        problems.push(format!("distinct call ids {calls} != {total_rows}"));
    }
    if distinct_request_ids != total_rows as i64 {
        problems.push(format!(
            "distinct request ids {distinct_request_ids} != {total_rows}"
        ));
    }
    for (what, v) in [
        ("key spend", key_spend),
        ("team spend", team_spend),
        ("member spend", member_spend),
        ("SpendLogs spend", log_spend),
    ] {
        if !close(v, expected) {
            problems.push(format!("{what} {v} != pushed {expected}"));
        }
    }
    for (t, req, prompt, s) in &daily {
        if *req != total_rows as i64
            || *prompt != (total_rows as u64 * PROMPT) as i64
            || !close(*s, expected)
        {
            problems.push(format!(
                "{t}: requests {req}, prompt tokens {prompt}, spend {s}"
            ));
        }
    }

    let per_row = |ticks: u64| ticks as f64 / hz * 1e6 / a.rows as f64;
    // what autovacuum will spend on these rows later (its VACUUM and ANALYZE), measured on
    // this connection's backend
    let vacuum = if a.vacuum {
        let pid: i32 = db
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let at = |pid: i32| stat(&format!("/proc/{pid}/stat")).map_or(0, |s| s.0);
        let before = at(pid);
        db.batch_execute(r#"VACUUM ANALYZE "TianjiLLM_SpendLogs""#)
            .await
            .unwrap();
        format!(" | {:.2}", per_row(at(pid).saturating_sub(before)))
    } else {
        String::new()
    };
    let wal_rows = a.rows as f64;
    let wal_line = format!(
        "WAL (whole server, other databases included): {:.0} bytes/row, {:.2} records/row, {:.1} full-page images per 1000 rows",
        (wal1.2 - wal0.2) / wal_rows,
        (wal1.0 - wal0.0) as f64 / wal_rows,
        (wal1.1 - wal0.1) as f64 * 1000.0 / wal_rows
    );
    let nb = batches.len();
    let min = batches.iter().copied().min().unwrap_or(0);
    let max = batches.iter().copied().max().unwrap_or(0);
    let med = median(&mut batches);
    println!(
        "spend_flush: {} rows pushed in {:.2} s, all committed after {:.2} s; offered {:.0}/s, ids {}, keys {}, durations {}-{} ms, prefill {}, tick {} ms",
        a.rows,
        pushed_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        a.rate,
        match a.ids {
            Ids::Unique => "unique",
            Ids::Same => "same",
            Ids::None => "none",
        },
        a.keys,
        a.durations.0,
        a.durations.1,
        a.prefill,
        a.every.as_millis()
    );
    println!("{wal_line}");
    println!(
        "scoped PostgreSQL CPU by process kind (µs/row): {}",
        scoped_by_kind
            .iter()
            .map(|(k, t)| format!("{k} {:.2}", per_row(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if header {
        println!();
        println!(
            "| rows | offered rows/s | rows/s | flushes (rows min/median/max) | PG CPU µs/row (all postgres) | PG CPU µs/row (scoped) | writer thread µs/row | process µs/row |{}",
            if a.vacuum {
                " later VACUUM ANALYZE µs/row |"
            } else {
                ""
            }
        );
        println!(
            "|---|---|---|---|---|---|---|---|{}",
            if a.vacuum { "---|" } else { "" }
        );
    }
    println!(
        "| {} | {:.0} | {:.0} | {} ({}/{}/{}) | {:.2} | {:.2} | {:.2} | {:.2}{vacuum} |",
        a.rows,
        a.rate,
        a.rows as f64 / elapsed.as_secs_f64(),
        nb,
        min,
        med,
        max,
        per_row(pg_ticks),
        per_row(scoped_ticks),
        per_row(w1.saturating_sub(w0)),
        per_row(p1.saturating_sub(p0)),
    );
    if problems.is_empty() {
        println!(
            "parity: ok ({count} rows == {total_rows} pushed; distinct call and request ids; key, team, member and daily roll-ups match)"
        );
    } else {
        println!("parity: FAILED: {}", problems.join("; "));
    }

    let _ = writer.done.send(());
    let _ = writer.thread.join();
    drop(db);
    if a.keep {
        println!("kept database {name}");
    } else {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    }
    Measured {
        all: per_row(pg_ticks),
        scoped: per_row(scoped_ticks),
        ok: problems.is_empty(),
    }
}
