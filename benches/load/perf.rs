//! `--perf`: the performance scenarios of one run, with the CPU of every process that serves a
//! request: the bare proxy, the gateway without database or Redis ("plain", master key), and the
//! governed gateway (a virtual key of a team member with rpm, tpm and max_parallel limits on key,
//! user and team, budgets on key and team, spend logs) on a Redis and a PostgreSQL started for
//! the run (so their CPU is the gateway's alone). Reports per scenario: throughput, gateway CPU
//! per request, Redis CPU per request (process CPU, and `INFO commandstats` deltas), PostgreSQL
//! CPU per spend row (every process of the cluster, until the rows of the phase are written),
//! per-chunk CPU of streams, and RSS at 1,000 concurrent streams (mock answering after 500 ms).
//! `--profile DIR` also records `perf` profiles of the plain and governed phases into DIR.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    MASTER, Opts, Proc, Row, Target, connect, cpu_ns, current_thread, free_port, make_req,
    phase_fixed, phase_max, phase_stream, pid_of, request_body, start_bare, start_gateway,
    start_mock, start_role, wait_port,
};

/// Rounds of alternating max-rps phases (medians reported; `--rounds N`).
const ROUNDS: usize = 3;
/// Offered rate (requests/s over 64 connections) of the same-rate phase (`--same-rate R`):
/// below every target's capacity, so each serves the same load.
const SAME_RATE: u64 = 5000;
/// Concurrent streams of the memory phase.
const MEMORY_STREAMS: usize = 1000;

/// A redis-server of this run.
struct OwnRedis {
    proc: Proc,
    port: u16,
}

impl OwnRedis {
    fn start() -> Option<Self> {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let proc = Proc(child);
        wait_port(port);
        Some(Self { proc, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        pid_of(&self.proc)
    }
}

/// The PostgreSQL cluster of this run (the tests' helper: initdb in a temporary directory).
#[path = "../../tests/common/pg_cluster.rs"]
mod pg_cluster;
use pg_cluster::PgCluster;

fn own_postgres() -> Option<PgCluster> {
    PgCluster::start(&["max_connections=200"], &[])
}

fn postmaster(pg: &PgCluster) -> Option<u32> {
    let s = std::fs::read_to_string(format!("{}/postmaster.pid", pg.data())).ok()?;
    s.lines().next()?.trim().parse().ok()
}

/// CPU (ns) of the cluster: the postmaster, its live children, and the children it reaped.
fn pg_cpu_ns(pg: &PgCluster) -> u64 {
    let Some(pm) = postmaster(pg) else {
        return 0;
    };
    let mut total = cpu_ns(pm) + reaped_children_ns(pm);
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if parent_of(pid) == Some(pm) {
                total += cpu_ns(pid);
            }
        }
    }
    total
}

/// Fields of `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// cutime + cstime (children waited for), in ns (clock ticks of 10 ms).
fn reaped_children_ns(pid: u32) -> u64 {
    let Some(f) = stat_fields(pid) else {
        return 0;
    };
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(13) + tick(14)) * 10_000_000
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `RssAnon`).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// `INFO commandstats`: command -> (calls, usec).
async fn command_stats(url: &str) -> HashMap<String, (u64, u64)> {
    let c = redis::Client::open(url).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = HashMap::new();
    for l in info.lines() {
        let Some((name, rest)) = l.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let field = |k: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(k))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.insert(name.to_string(), (field("calls="), field("usec=")));
    }
    out
}

/// Admin call on the gateway; panics unless it succeeds.
async fn admin(addr: std::net::SocketAddr, path: &str, body: &str) -> serde_json::Value {
    let mut tx = connect(addr).await;
    let req = http::Request::post(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {MASTER}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status();
    let b = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        String::from_utf8_lossy(&b)
    );
    serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null)
}

/// Limits that never bite, on key, user and team.
const LIMITS: &str =
    r#""rpm_limit":1000000000,"tpm_limit":1000000000000,"max_parallel_requests":100000"#;

/// The governed caller: a key of a team member, with limits and budgets everywhere.
async fn governed_key(addr: std::net::SocketAddr) -> String {
    admin(
        addr,
        "/user/new",
        &format!(r#"{{"user_id":"perf-user",{LIMITS}}}"#),
    )
    .await;
    admin(
        addr,
        "/team/new",
        &format!(
            r#"{{"team_id":"perf-team","models":["bench"],"max_budget":1000000,{LIMITS},"members_with_roles":[{{"role":"user","user_id":"perf-user"}}]}}"#
        ),
    )
    .await;
    let v = admin(
        addr,
        "/key/generate",
        &format!(
            r#"{{"models":["bench"],"max_budget":1000000,"team_id":"perf-team","user_id":"perf-user",{LIMITS}}}"#
        ),
    )
    .await;
    v["key"].as_str().expect("generated key").to_string()
}

/// `perf record` of `pid` while it runs (stopped with SIGINT on drop).
struct Recording(Option<std::process::Child>);

impl Recording {
    fn start(dir: Option<&Path>, name: &str, pid: Option<u32>) -> Self {
        let (Some(dir), Some(pid)) = (dir, pid) else {
            return Self(None);
        };
        let out = dir.join(format!("{name}.perf.data"));
        let child = Command::new("perf")
            .args(["record", "-F", "499", "--call-graph", "dwarf,16384", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        // perf needs a moment to attach before the phase starts
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[derive(Default)]
struct Governed {
    rps: Vec<f64>,
    gw: Vec<f64>,
    redis_cpu: Vec<f64>,
    redis_script: Vec<f64>,
    pg_per_row: Vec<f64>,
    /// command -> calls over all governed phases
    calls: HashMap<String, u64>,
    requests: u64,
}

/// Wait until the cluster's CPU stays flat (the spend writer has flushed the phase's rows and
/// whatever they set off), at most 20 s.
fn settle(pg: &PgCluster) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet = 0;
    let mut last = pg_cpu_ns(pg);
    while Instant::now() < deadline && quiet < 3 {
        std::thread::sleep(Duration::from_millis(200));
        let now = pg_cpu_ns(pg);
        // under 2 ms of CPU in 200 ms: idle apart from background ticks
        if now.saturating_sub(last) < 2_000_000 {
            quiet += 1;
        } else {
            quiet = 0;
        }
        last = now;
    }
}

pub fn run(o: &Opts, args: &[String], proxy_cpu: Option<usize>, client_cpu: Option<usize>) {
    let profile_dir = args
        .iter()
        .position(|a| a == "--profile")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    if let Some(d) = &profile_dir {
        std::fs::create_dir_all(d).unwrap();
    }
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok())
        .unwrap_or(ROUNDS);
    let skip_memory = args.iter().any(|a| a == "--no-memory");
    let same_rate = args
        .iter()
        .position(|a| a == "--same-rate")
        .and_then(|i| args.get(i + 1)?.parse::<u64>().ok())
        .unwrap_or(SAME_RATE);
    let (_mock, mock_port) = start_mock(client_cpu);
    let (bare, bare_port) = start_bare(proxy_cpu, mock_port);
    let (floor, floor_port) = start_role(proxy_cpu, "__floor", mock_port);
    let redis = OwnRedis::start();
    let pg = own_postgres();
    if redis.is_none() || pg.is_none() {
        eprintln!(
            "redis-server or PostgreSQL's initdb/pg_ctl not found: governed scenario skipped"
        );
    }
    let models = format!(
        "model_list:\n  - model_name: bench\n    tianji_params: {{model: openai/gpt-bench, api_base: \"http://127.0.0.1:{mock_port}/v1\", api_key: sk-upstream, input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}}\n  - model_name: bench-slow\n    tianji_params: {{model: openai/gpt-bench, api_base: \"http://127.0.0.1:{mock_port}/slow/v1\", api_key: sk-upstream}}\n"
    );
    let config = |extra: &str| {
        let mut cfg = tempfile::NamedTempFile::new().unwrap();
        use std::io::Write;
        writeln!(
            cfg,
            "{models}general_settings: {{master_key: {MASTER}, max_connections_per_ip: 0{extra}}}"
        )
        .unwrap();
        cfg
    };
    let plain_cfg = config("");
    let plain_port = free_port();
    let plain = start_gateway(proxy_cpu, &plain_cfg, plain_port);
    let gov_cfg = match (&redis, &pg) {
        (Some(r), Some(p)) => {
            let mut cfg = config(&format!(", database_url: \"{}\"", p.url()));
            use std::io::Write;
            writeln!(cfg, "router_settings: {{redis_url: \"{}\"}}", r.url()).unwrap();
            Some(cfg)
        }
        _ => None,
    };
    let gov_port = free_port();
    let gov = gov_cfg
        .as_ref()
        .map(|c| start_gateway(proxy_cpu, c, gov_port));
    let rt = current_thread();
    let gov_key = gov
        .as_ref()
        .map(|_| rt.block_on(governed_key(([127, 0, 0, 1], gov_port).into())));

    let bare_t = Target::new(
        "bare hyper proxy",
        ([127, 0, 0, 1], bare_port).into(),
        Some(pid_of(&bare)),
        MASTER,
    );
    let floor_t = Target::new(
        "floor: the least a compatible gateway does (load/floor.rs)",
        ([127, 0, 0, 1], floor_port).into(),
        Some(pid_of(&floor)),
        MASTER,
    );
    let plain_t = Target::new(
        "plain: gateway, master key, no DB/Redis",
        ([127, 0, 0, 1], plain_port).into(),
        Some(pid_of(&plain)),
        MASTER,
    );
    let gov_t = gov_key.map(|k| {
        Target::new(
            "governed: virtual key, rpm+tpm+parallel on key/user/team in Redis, budgets, spend logs",
            ([127, 0, 0, 1], gov_port).into(),
            gov.as_ref().map(pid_of),
            Box::leak(k.into_boxed_str()),
        )
    });
    println!(
        "tianji perf bench: {}s phases, {} conns, {rounds} alternating rounds (medians); proxies on CPU {:?}, mock + load on CPU {:?}; Redis and PostgreSQL of this run, unpinned",
        o.seconds, o.conns, proxy_cpu, client_cpu
    );
    if skip_memory {
        eprintln!("--no-memory: the memory phase is skipped");
    }
    // every target of the run, in the order phases visit them
    let targets: Vec<&Target> = [
        Some(&bare_t),
        Some(&floor_t),
        Some(&plain_t),
        gov_t.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let body = request_body(false);
    // warm up (connections, caches, the key's records)
    rt.block_on(async {
        for t in targets.iter().copied() {
            phase_max(t, &body, o.conns, 1).await;
        }
    });
    if let Some(p) = &pg {
        settle(p);
    }

    let (mut bare_rps, mut bare_cpu, mut plain_rps, mut plain_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut floor_rps, mut floor_cpu) = (Vec::new(), Vec::new());
    let mut g = Governed::default();
    for round in 0..rounds {
        // round 1 is profiled (with --profile)
        let profile = profile_dir.as_deref().filter(|_| round == 0);
        rt.block_on(async {
            let (r, c) = recorded_max(&bare_t, &body, o, profile, "bare").await;
            bare_rps.push(r);
            bare_cpu.push(c);
            let (r, c) = recorded_max(&floor_t, &body, o, profile, "floor").await;
            floor_rps.push(r);
            floor_cpu.push(c);
            let (r, c) = recorded_max(&plain_t, &body, o, profile, "plain").await;
            plain_rps.push(r);
            plain_cpu.push(c);
        });
        if let (Some(t), Some(redis), Some(pg)) = (&gov_t, &redis, &pg) {
            let served0 = t.served.load(Ordering::Relaxed);
            let stats0 = rt.block_on(command_stats(&redis.url()));
            let (r0, p0) = (cpu_ns(redis.pid()), pg_cpu_ns(pg));
            let (r, c) = rt.block_on(recorded_max(t, &body, o, profile, "governed"));
            let served = t.served.load(Ordering::Relaxed) - served0;
            let r1 = cpu_ns(redis.pid());
            let stats1 = rt.block_on(command_stats(&redis.url()));
            settle(pg);
            let p1 = pg_cpu_ns(pg);
            g.rps.push(r);
            g.gw.push(c);
            g.redis_cpu.push((r1 - r0) as f64 / 1000.0 / served as f64);
            let script = |s: &HashMap<String, (u64, u64)>| {
                ["evalsha", "eval"]
                    .iter()
                    .filter_map(|n| s.get(*n))
                    .map(|v| v.1)
                    .sum::<u64>()
            };
            g.redis_script
                .push((script(&stats1) - script(&stats0)) as f64 / served as f64);
            g.pg_per_row.push((p1 - p0) as f64 / 1000.0 / served as f64);
            for (name, (calls, _)) in &stats1 {
                let before = stats0.get(name).map_or(0, |v| v.0);
                if *calls > before && name != "info" {
                    *g.calls.entry(name.clone()).or_default() += calls - before;
                }
            }
            g.requests += served;
        }
        eprintln!("  round {} of {rounds} done", round + 1);
    }

    // the same offered rate for every target: CPU per request when each serves the same load
    // (at max rps, the slower a target, the more often the other CPU sleeps when it writes to
    // it, and waking a sleeping vCPU is expensive in a VM: its CPU per request grows with it)
    let mut same = Vec::new();
    for t in targets.iter().copied() {
        let (served0, cpu0) = (t.served.load(Ordering::Relaxed), t.pid.map(cpu_ns));
        rt.block_on(phase_fixed(t, &body, same_rate, o.seconds));
        let served = t.served.load(Ordering::Relaxed) - served0;
        let cpu = match (cpu0, t.pid.map(cpu_ns)) {
            (Some(a), Some(b)) => (b - a) as f64 / 1000.0 / served.max(1) as f64,
            _ => f64::NAN,
        };
        same.push((t.name, cpu));
    }

    // streams: per-chunk CPU, 16 concurrent streams of 50 chunks 1 ms apart
    let mut chunk = Vec::new();
    for t in targets.iter().copied() {
        let mut row = Row::default();
        rt.block_on(phase_stream(t, o.seconds, &mut row));
        chunk.push((t.name, row.cpu_us_per_chunk));
    }

    // memory: fresh processes, idle RSS, then peak RSS over 1,000 concurrent streams
    let (mem_bare, mem_bare_port) = start_bare(proxy_cpu, mock_port);
    let (mem_floor, mem_floor_port) = start_role(proxy_cpu, "__floor", mock_port);
    let mem_plain_port = free_port();
    let mem_plain = start_gateway(proxy_cpu, &plain_cfg, mem_plain_port);
    let mut mem_bare_t = Target::new(
        "bare hyper proxy",
        ([127, 0, 0, 1], mem_bare_port).into(),
        Some(pid_of(&mem_bare)),
        MASTER,
    );
    let mem_floor_t = Target::new(
        "floor",
        ([127, 0, 0, 1], mem_floor_port).into(),
        Some(pid_of(&mem_floor)),
        MASTER,
    );
    let mut mem_plain_t = Target::new(
        "plain gateway",
        ([127, 0, 0, 1], mem_plain_port).into(),
        Some(pid_of(&mem_plain)),
        MASTER,
    );
    mem_plain_t.post = Some("/v1/chat/completions");
    mem_bare_t.post = Some("/slow/v1/chat/completions");
    let mut memory = Vec::new();
    for t in [&mem_bare_t, &mem_floor_t, &mem_plain_t] {
        if skip_memory {
            break;
        }
        let pid = t.pid.unwrap();
        let (idle, idle_anon) = (rss_kib(pid), status_kib(pid, "RssAnon"));
        let (peak, peak_anon) = rt.block_on(many_streams(t, MEMORY_STREAMS));
        memory.push((idle, peak, idle_anon, peak_anon));
    }

    // report
    let (br, bc) = (median(bare_rps), median(bare_cpu));
    let (pr, pc) = (median(plain_rps), median(plain_cpu));
    let (fr, fc) = (median(floor_rps), median(floor_cpu));
    println!();
    println!(
        "| scenario | max rps | x bare | gateway CPU µs/req | x bare | Redis CPU µs/req (process) | Redis script µs/req (commandstats) | PostgreSQL CPU µs/spend row |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {br:.0} | 1.00 | {bc:.1} | 1.00 | — | — | — |",
        bare_t.name
    );
    println!(
        "| {} | {fr:.0} | {:.2} | {fc:.1} | {:.2} | — | — | — |",
        floor_t.name,
        fr / br,
        fc / bc
    );
    println!(
        "| {} | {pr:.0} | {:.2} | {pc:.1} | {:.2} | — | — | — |",
        plain_t.name,
        pr / br,
        pc / bc
    );
    if let Some(t) = &gov_t {
        let (gr, gc) = (median(g.rps.clone()), median(g.gw.clone()));
        println!(
            "| {} | {gr:.0} | {:.2} | {gc:.1} | {:.2} | {:.1} | {:.1} | {:.1} |",
            t.name,
            gr / br,
            gc / bc,
            median(g.redis_cpu.clone()),
            median(g.redis_script.clone()),
            median(g.pg_per_row.clone())
        );
        println!();
        println!(
            "governed / plain: throughput {:.3}x (target >= 0.8), gateway CPU per request {:.3}x (target <= 1.2)",
            gr / pr,
            gc / pc
        );
        let mut calls: Vec<_> = g.calls.iter().collect();
        calls.sort_by(|a, b| b.1.cmp(a.1));
        let per: Vec<String> = calls
            .iter()
            .map(|(n, c)| format!("{n} {:.3}", **c as f64 / g.requests.max(1) as f64))
            .collect();
        println!(
            "Redis commands per governed request ({} requests; commands inside scripts are counted too): {}",
            g.requests,
            per.join(", ")
        );
    }
    println!(
        "plain / bare: throughput {:.3}x, gateway CPU per request {:.3}x (target <= 1.35); floor / bare: {:.3}x, {:.3}x; plain / floor CPU {:.3}x",
        pr / br,
        pc / bc,
        fr / br,
        fc / bc,
        pc / fc
    );
    println!();
    println!(
        "| same offered rate ({same_rate} rps, 64 connections) | gateway CPU µs/req | x bare |"
    );
    println!("|---|---|---|");
    let same_bare = same.first().map_or(f64::NAN, |s| s.1);
    for (name, cpu) in &same {
        println!("| {name} | {cpu:.1} | {:.2} |", cpu / same_bare);
    }
    if let [(_, b), (_, f), (_, p), (_, g)] = same[..] {
        println!(
            "same rate: plain / bare {:.3}x (target <= 1.35), floor / bare {:.3}x, governed / plain {:.3}x (target <= 1.2)",
            p / b,
            f / b,
            g / p
        );
    }
    println!();
    println!("| streams (16 x 50 chunks, 1 ms apart) | CPU µs/chunk | over bare µs |");
    println!("|---|---|---|");
    let bare_chunk = chunk.first().map_or(f64::NAN, |c| c.1);
    for (name, c) in &chunk {
        println!("| {name} | {c:.2} | {:+.2} |", c - bare_chunk);
    }
    println!();
    println!(
        "| memory ({MEMORY_STREAMS} concurrent streams, mock answers after 500 ms) | idle RSS MiB | peak RSS MiB | idle anonymous MiB | peak anonymous MiB |"
    );
    println!("|---|---|---|---|---|");
    let mib = |k: u64| k as f64 / 1024.0;
    for (t, (idle, peak, idle_anon, peak_anon)) in [&mem_bare_t, &mem_floor_t, &mem_plain_t]
        .iter()
        .zip(&memory)
    {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            t.name,
            mib(*idle),
            mib(*peak),
            mib(*idle_anon),
            mib(*peak_anon)
        );
    }
    if let [(bi, bp, bia, bpa), (_, fp, fia, fpa), (pi, pp, pia, ppa)] = memory[..] {
        println!(
            "gateway / bare RSS: idle {:.2}x, at {MEMORY_STREAMS} streams {:.2}x (target <= 1.2); floor / bare at {MEMORY_STREAMS} streams {:.2}x",
            pi as f64 / bi.max(1) as f64,
            pp as f64 / bp.max(1) as f64,
            fp as f64 / bp.max(1) as f64
        );
        let per = |peak: u64, idle: u64| peak.saturating_sub(idle) as f64 / MEMORY_STREAMS as f64;
        println!(
            "anonymous memory per open stream (peak minus idle): bare {:.1} KiB, floor {:.1} KiB, gateway {:.1} KiB",
            per(bpa, bia),
            per(fpa, fia),
            per(ppa, pia)
        );
    }
    if let Some(d) = &profile_dir {
        println!(
            "profiles: {}/bare.perf.data, {}/floor.perf.data, {}/plain.perf.data, {}/governed.perf.data (perf report -i FILE --no-children)",
            d.display(),
            d.display(),
            d.display(),
            d.display()
        );
    }
    drop(gov);
}

/// A max-rps phase of `t`, profiled into `dir` as `name` when a directory is given.
async fn recorded_max(
    t: &Target,
    body: &Bytes,
    o: &Opts,
    dir: Option<&Path>,
    name: &str,
) -> (f64, f64) {
    let _rec = Recording::start(dir, name, t.pid);
    phase_max(t, body, o.conns, o.seconds).await
}

/// Open `n` streams at once against the slow mock and sample the target's RSS until all end;
/// the peaks of RSS and of its anonymous part (KiB; the rest is the executable's pages).
async fn many_streams(t: &Target, n: usize) -> (u64, u64) {
    let pid = t.pid.unwrap();
    let mut body: serde_json::Value = serde_json::from_slice(&request_body(true)).unwrap();
    body["model"] = "bench-slow".into();
    let body = Bytes::from(serde_json::to_vec(&body).unwrap());
    let dest = t.dest();
    let mut hs = Vec::new();
    for _ in 0..n {
        let body = body.clone();
        hs.push(tokio::spawn(async move {
            let mut tx = connect(dest.addr).await;
            tx.ready().await.unwrap();
            let resp = tx.send_request(make_req(dest, &body)).await.unwrap();
            assert_eq!(resp.status(), 200);
            let _ = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap();
        }));
    }
    let (mut peak, mut anon) = (0, 0);
    loop {
        peak = peak.max(rss_kib(pid));
        anon = anon.max(status_kib(pid, "RssAnon"));
        if hs.iter().all(|h| h.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for h in hs {
        h.await.unwrap();
    }
    (peak, anon)
}
