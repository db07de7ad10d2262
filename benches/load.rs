//! Load benchmark, side by side in one run (`cargo bench --bench load`): the load generator
//! straight to a provider stub (direct), through nginx `proxy_pass` with a keepalive upstream
//! (passthrough: what a translation-free proxy costs here), and through payglot (queries and
//! creates in every dialect, durable SQLite writes included). The stub is payglot's own sandbox
//! (`payglot sandbox`) on core 1; payglot and nginx each get core 0 (`taskset`). The generator
//! is unpinned for the closed-loop peaks (pinned to core 1 it was what capped nginx's) and on
//! core 1 for the open loop, so latency is measured without it on the server's core. Loopback
//! only, bounded: `PAYGLOT_BENCH_SECS` per scenario (default 5),
//! `PAYGLOT_BENCH_CONCURRENCY` connections (default 32). Then a callback benchmark: verified
//! callbacks per second through to persisted outbox rows, at that many connections and at four
//! times as many (group commit's rate grows with the writes in flight). nginx is used when installed
//! (`apt-get install nginx-light`), else the passthrough row says it was skipped.
//!
//! `PAYGLOT_BENCH_INSTRUCTIONS=N` counts instead of timing: payglot and nginx run under
//! `valgrind --tool=callgrind`, and each scenario's row is the instructions the server executed
//! for N requests (4 connections, after 50 to warm up; counters zeroed and dumped around them
//! with `callgrind_control`), divided by N: a figure that stays put on a noisy machine. The
//! dumps stay in `PAYGLOT_BENCH_CALLGRIND_DIR` (default: a temporary directory) for
//! `callgrind_annotate`; `PAYGLOT_BENCH_ONLY=text` counts only the scenarios whose name holds it.
//! `PAYGLOT_BENCH_ONLY=callbacks` (without counting) runs only the callback benchmark,
//! `PAYGLOT_BENCH_ONLY=open-loop` only the open loop (after the two peaks it needs).

use payglot::doors::merchant_api::auth::request_signature;
use payglot::model::{now_unix, random_id};
use payglot::upstream::Upstream;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "bench-merchant-key-0123456789";

mod support;

use support::{free_port, Proc};

/// Where callgrind writes its dumps when instructions are counted.
fn callgrind_dir() -> Option<String> {
    std::env::var_os("PAYGLOT_BENCH_INSTRUCTIONS")?;
    let dir = std::env::var("PAYGLOT_BENCH_CALLGRIND_DIR").unwrap_or_else(|_| {
        let d = std::env::temp_dir().join(format!("payglot-callgrind-{}", std::process::id()));
        d.display().to_string()
    });
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// `program` on `core`; under callgrind when instructions are counted and `counted`.
fn pinned_counted(core: &str, program: &str, args: &[&str], counted: bool) -> Proc {
    let taskset = Path::new("/usr/bin/taskset").exists();
    let mut words: Vec<String> = Vec::new();
    if taskset {
        words.extend(["taskset".into(), "-c".into(), core.into()]);
    }
    if let (Some(dir), true) = (callgrind_dir(), counted) {
        words.extend(["valgrind".into(), "--tool=callgrind".into(), "--dump-instr=no".into()]);
        words.push(format!("--callgrind-out-file={dir}/callgrind.out.%p"));
    }
    words.push(program.into());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    Proc(
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    )
}

/// Moves every thread of this process (the load generator) to `cores`.
fn pin_generator(cores: &str) {
    if Path::new("/usr/bin/taskset").exists() {
        let me = std::process::id().to_string();
        let status = Command::new("taskset").args(["-a", "-p", "-c", cores, &me]).stdout(Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "taskset could not move the generator to cores {cores}");
    }
}

fn pinned(core: &str, program: &str, args: &[&str]) -> Proc {
    pinned_counted(core, program, args, false)
}

/// Sends `n` requests of `target` over `connections` connections; how many were answered 200.
async fn run_count(client: Arc<Upstream>, target: Target, n: u64, connections: usize) -> u64 {
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, target, counter) = (client.clone(), target.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            loop {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return ok;
                }
                ok += u64::from(send_one(&client, &target, i + 1_000_000).await);
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok
}

/// The instructions `pid` (under callgrind) executed per request of `target`, over `n` requests.
async fn instructions_per_request(client: &Arc<Upstream>, pid: u32, target: Target, n: u64) -> (f64, u64) {
    run_count(client.clone(), target.clone(), 50, 4).await;
    let control = |flag: &str| {
        let out = Command::new("callgrind_control").args([flag, &pid.to_string()]).output().expect("callgrind_control");
        assert!(out.status.success(), "callgrind_control {flag}: {}", String::from_utf8_lossy(&out.stderr));
    };
    control("-z");
    let ok = run_count(client.clone(), target, n, 4).await;
    control("-d");
    let dir = callgrind_dir().unwrap();
    let prefix = format!("callgrind.out.{pid}.");
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.file_name().to_string_lossy().rsplit('.').next().and_then(|n| n.parse::<u32>().ok()))
        .expect("a callgrind dump");
    let text = std::fs::read_to_string(newest.path()).unwrap();
    let total: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("summary: ").or_else(|| l.strip_prefix("totals: ")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a total in the dump");
    (total / n as f64, ok)
}

/// A process's CPU time so far (user + system, and system alone, seconds) and its peak RSS (KiB).
#[derive(Clone, Copy)]
struct Usage {
    cpu: f64,
    system: f64,
    peak_rss: u64,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak_rss = status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Usage { cpu: (ticks(11) + ticks(12)) / 100.0, system: ticks(12) / 100.0, peak_rss }
    }

    /// The CPU used since `before`, with the peak RSS now.
    fn since(self, before: Usage) -> Usage {
        Usage { cpu: self.cpu - before.cpu, system: self.system - before.system, peak_rss: self.peak_rss }
    }
}

fn providers(stub: u16) -> String {
    let b = format!("http://127.0.0.1:{stub}");
    let account = |name: &str, dialect: &str, creds: &str| {
        format!("  {name}:\n    dialect: {dialect}\n    base_url: {b}/{dialect}\n    credentials: {{ {creds} }}\n    max_connections: 256\n")
    };
    [
        "providers:\n".to_string(),
        account("xxpay", "xxpay", "mch_id: \"20001222\", app_id: app, key: bench-xxpay-key"),
        account("xiaojitong", "xiaojitong", "mid: \"2\", key: bench-xjt-key"),
        account(
            "zhixiao",
            "zhixiao",
            "appid: partner1, appsecret: weiweixiao, aes_key: AD42F6697B035B7580E4FEF93BE20B4D",
        ),
        account("jings", "jings", "uid: \"10000001400000\", token: 10665CF54E90822951FE80330E9CF715"),
        account("mct", "mct", "open_id: 87f46f5db1b65f0ac195285f49ee6958, open_key: 0828e83720fdbe3685a7b94214af04f9"),
    ]
    .concat()
}

fn merchants() -> String {
    let mut m = String::from("merchants:\n");
    for d in ["xxpay", "xiaojitong", "zhixiao", "jings", "mct"] {
        m.push_str(&format!(
            "  bench-{d}:\n    key: {KEY}\n    notify_url: http://127.0.0.1:9/notify\n    allow_private_notify: true\n    routes:\n      - to: {d}\n"
        ));
    }
    m
}

/// A create body that dialect's sandbox takes.
fn create_body(dialect: &str, no: &str) -> String {
    let (channel, scene) = match dialect {
        "xiaojitong" => ("wechat", "qr"),
        "zhixiao" => ("alipay", "h5"),
        "jings" => ("alipay", "web"),
        "mct" => ("wechat", "qr"),
        _ => ("alipay", "qr"),
    };
    json!({"out_trade_no": no, "amount": 19_800, "subject": "Tuition", "channel": channel, "scene": scene, "return_url": "https://s/r"}).to_string()
}

#[derive(Clone)]
struct Target {
    method: &'static str,
    url: String,
    /// Some(merchant): sign each request as this merchant; the body is made per request.
    merchant: Option<String>,
    path: String,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
    content_type: &'static str,
}

/// One line of the report: scenario, its outcome (None: skipped), the server's CPU over it and
/// its peak RSS.
type Row = (String, Option<Outcome>, Option<Usage>);

struct Outcome {
    requests: u64,
    errors: u64,
    secs: f64,
    latencies_us: Vec<u32>,
}

/// Sends request number `n` of `target` (signed when it names a merchant); `true` on a 200.
async fn send_one(client: &Upstream, target: &Target, n: u64) -> bool {
    let body = (target.body)(n);
    let (ts, nonce) = (now_unix().to_string(), random_id("n", 24));
    let sig = target
        .merchant
        .as_ref()
        .map(|_| request_signature(KEY, &ts, &nonce, target.method, &target.path, body.as_bytes()));
    let mut headers = vec![("content-type", target.content_type)];
    if let (Some(m), Some(sig)) = (&target.merchant, &sig) {
        headers.extend([
            ("payglot-merchant", m.as_str()),
            ("payglot-timestamp", ts.as_str()),
            ("payglot-nonce", nonce.as_str()),
            ("payglot-signature", sig.as_str()),
        ]);
    }
    let answer = client.send(target.method, &target.url, &headers, body.into_bytes(), 2000, 10_000).await;
    matches!(&answer, Ok(a) if a.status == 200)
}

/// Closed loop: `concurrency` connections each send the next request as soon as the last is
/// answered, for `secs`: the peak rate.
async fn run(client: Arc<Upstream>, target: Target, secs: u64, concurrency: usize) -> Outcome {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, target, counter) = (client.clone(), target.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = Instant::now();
                let ok = send_one(&client, &target, n).await;
                lat.push(t.elapsed().as_micros() as u32);
                errors += u64::from(!ok);
            }
            (lat, errors)
        }));
    }
    let mut outcome = Outcome { requests: 0, errors: 0, secs: 0.0, latencies_us: Vec::new() };
    for t in tasks {
        let (lat, errors) = t.await.unwrap();
        outcome.requests += lat.len() as u64;
        outcome.errors += errors;
        outcome.latencies_us.extend(lat);
    }
    outcome.secs = started.elapsed().as_secs_f64();
    outcome.latencies_us.sort_unstable();
    outcome
}

/// Open loop: request i is due at `i / rate` seconds whatever happened to the others, and its
/// latency counts from when it was due, so a server that falls behind shows it (no coordinated
/// omission). At most `connections` requests are in flight (as many keep-alive connections);
/// beyond that the generator waits, and the wait counts too.
async fn run_at_rate(client: Arc<Upstream>, target: Target, secs: u64, rate: f64, connections: usize) -> Outcome {
    let started = Instant::now();
    let total = (rate * secs as f64) as u64;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(connections));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let (client, target) = (client.clone(), target.clone());
        tasks.spawn(async move {
            let ok = send_one(&client, &target, n).await;
            drop(permit);
            (due.elapsed().as_micros() as u32, ok)
        });
    }
    let mut outcome = Outcome { requests: 0, errors: 0, secs: 0.0, latencies_us: Vec::new() };
    while let Some(done) = tasks.join_next().await {
        let (lat, ok) = done.unwrap();
        outcome.requests += 1;
        outcome.errors += u64::from(!ok);
        outcome.latencies_us.push(lat);
    }
    outcome.secs = started.elapsed().as_secs_f64();
    outcome.latencies_us.sort_unstable();
    outcome
}

/// The gateway's `/metrics` text (empty when the admin listener does not answer).
async fn metrics_text(client: &Upstream, admin: u16) -> String {
    let url = format!("http://127.0.0.1:{admin}/metrics");
    match client.send("GET", &url, &[], vec![], 1000, 5000).await {
        Ok(answer) => String::from_utf8_lossy(&answer.body).into_owned(),
        Err(_) => String::new(),
    }
}

/// A histogram of a `/metrics` text, summed over its label sets: (bucket bound in seconds,
/// cumulative count), `+Inf` last.
fn histogram(metrics: &str, name: &str) -> Vec<(f64, u64)> {
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let prefix = format!("{name}_bucket{{");
    for line in metrics.lines().filter(|l| l.starts_with(&prefix)) {
        let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("");
        let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
        let count: u64 = line.rsplit(' ').next().and_then(|c| c.parse().ok()).unwrap_or(0);
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, c)) => *c += count,
            None => buckets.push((bound, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The bucket holding the 99th percentile of what was recorded between two readings, as
/// "≤ N ms".
fn p99_bucket(before: &[(f64, u64)], after: &[(f64, u64)]) -> String {
    let count = |h: &[(f64, u64)], bound: f64| h.iter().find(|(b, _)| *b == bound).map_or(0, |(_, c)| *c);
    let total = count(after, f64::INFINITY).saturating_sub(count(before, f64::INFINITY));
    if total == 0 {
        return "-".into();
    }
    let bound = after
        .iter()
        .find(|(b, c)| c.saturating_sub(count(before, *b)) as f64 >= 0.99 * total as f64)
        .map_or(f64::INFINITY, |(b, _)| *b);
    if bound.is_finite() {
        format!("≤{}ms", bound * 1000.0)
    } else {
        ">10s".into()
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

async fn wait_port(port: u16) {
    // Up to a minute: a server under valgrind starts slowly.
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

fn main() {
    let secs: u64 = std::env::var("PAYGLOT_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = std::env::var("PAYGLOT_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(bench(secs, concurrency));
}

async fn bench(secs: u64, concurrency: usize) {
    let bin = env!("CARGO_BIN_EXE_payglot");
    let dir = tempfile::tempdir().unwrap();
    let (stub, gw, admin, nginx_port) = (free_port(), free_port(), free_port(), free_port());
    let common = format!("{}{}", providers(stub), merchants());
    std::fs::write(dir.path().join("stub.yaml"), format!("listen: 127.0.0.1:{}\npublic_url: http://127.0.0.1:{gw}\nsandbox:\n  listen: 127.0.0.1:{stub}\n  notify_retry_secs: []\n{common}", free_port())).unwrap();
    std::fs::write(
        dir.path().join("gw.yaml"),
        format!("listen: 127.0.0.1:{gw}\nadmin_listen: 127.0.0.1:{admin}\npublic_url: http://127.0.0.1:{gw}\nstore: sqlite://payglot.db\ndelivery:\n  retry_schedule_secs: [3600]\n{common}"),
    )
    .unwrap();
    let stub_cfg = dir.path().join("stub.yaml").display().to_string();
    let gw_cfg = dir.path().join("gw.yaml").display().to_string();
    let _stub = pinned("1", bin, &["sandbox", "--config", &stub_cfg]);
    let counting: Option<u64> = std::env::var("PAYGLOT_BENCH_INSTRUCTIONS").ok().and_then(|n| n.parse().ok());
    let gateway = pinned_counted("0", bin, &["serve", "--config", &gw_cfg], true);
    let nginx = which("nginx").map(|nginx| {
        let conf = include_str!("nginx.conf")
            .replace("{NGINX_PORT}", &nginx_port.to_string())
            .replace("{STUB_PORT}", &stub.to_string());
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let conf = dir.path().join("nginx.conf").display().to_string();
        let prefix = dir.path().display().to_string();
        pinned_counted("0", &nginx, &["-p", &prefix, "-c", &conf, "-g", "daemon off;"], true)
    });
    wait_port(stub).await;
    wait_port(gw).await;
    if nginx.is_some() {
        wait_port(nginx_port).await;
    }
    let client = Arc::new(Upstream::new());
    let gw_url = format!("http://127.0.0.1:{gw}");

    // One pending payment per dialect to query, and a pre-signed stub query for the baseline.
    let mut query_targets = Vec::new();
    for d in ["xxpay", "xiaojitong", "zhixiao", "jings", "mct"] {
        let no = format!("Q-{d}");
        let body = create_body(d, &no);
        let (ts, nonce) = (now_unix().to_string(), random_id("n", 24));
        let sig = request_signature(KEY, &ts, &nonce, "POST", "/v1/payments", body.as_bytes());
        let m = format!("bench-{d}");
        let headers = [
            ("payglot-merchant", m.as_str()),
            ("payglot-timestamp", ts.as_str()),
            ("payglot-nonce", nonce.as_str()),
            ("payglot-signature", sig.as_str()),
        ];
        let a = client
            .send("POST", &format!("{gw_url}/v1/payments"), &headers, body.into_bytes(), 2000, 10_000)
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{d}: {}", String::from_utf8_lossy(&a.body));
        query_targets.push((d, m, format!("/v1/payments/{no}"), serde_json::from_slice::<Value>(&a.body).unwrap()));
    }
    let xxpay_payment: payglot::model::Payment = {
        let p = &query_targets[0].3;
        let mut pay = bench_payment();
        pay.payment_id = p["payment_id"].as_str().unwrap().to_string();
        pay
    };
    let mut cfg = payglot::config::ProviderConfig::with_defaults("xxpay", "xxpay");
    for (k, v) in [("mch_id", "20001222"), ("app_id", "app"), ("key", "bench-xxpay-key")] {
        cfg.credentials.insert(k.into(), payglot::config::Secret::new(v));
    }
    let stub_query = payglot::dialects::build(&cfg).unwrap().query_payment(&xxpay_payment, now_unix()).unwrap();
    let stub_body = String::from_utf8(stub_query.body).unwrap();

    let only = std::env::var("PAYGLOT_BENCH_ONLY").unwrap_or_default();
    if counting.is_none() && only == "callbacks" {
        return callback_benches(&client, &gw_url, admin, gateway, &dir, bin, &common, concurrency).await;
    }
    if let Some(n) = counting {
        count_instructions(&client, n, &nginx, &gateway, stub, nginx_port, &gw_url, &stub_body, &query_targets).await;
        return;
    }
    let mut rows: Vec<Row> = Vec::new();
    let fixed = |s: String| -> Arc<dyn Fn(u64) -> String + Send + Sync> { Arc::new(move |_| s.clone()) };
    let form = "application/x-www-form-urlencoded";
    let direct = Target {
        method: "POST",
        url: format!("http://127.0.0.1:{stub}/xxpay/api/pay/query_order"),
        merchant: None,
        path: String::new(),
        body: fixed(stub_body.clone()),
        content_type: form,
    };
    rows.push((
        "direct: generator -> stub (xxpay query)".into(),
        Some(run(client.clone(), direct, secs, concurrency).await),
        None,
    ));
    // The same stub query through nginx, and a signed merchant query of one payment via payglot.
    let through_nginx = Target {
        method: "POST",
        url: format!("http://127.0.0.1:{nginx_port}/xxpay/api/pay/query_order"),
        merchant: None,
        path: String::new(),
        body: fixed(stub_body.clone()),
        content_type: form,
    };
    let payglot_query = |merchant: &str, path: &str| Target {
        method: "GET",
        url: format!("{gw_url}{path}"),
        merchant: Some(merchant.to_string()),
        path: path.to_string(),
        body: fixed(String::new()),
        content_type: "application/json",
    };
    match &nginx {
        Some(n) => {
            let before = Usage::of(n.0.id());
            let o = run(client.clone(), through_nginx.clone(), secs, concurrency).await;
            rows.push((
                "passthrough: nginx proxy_pass -> stub".into(),
                Some(o),
                Some(Usage::of(n.0.id()).since(before)),
            ));
        }
        None => rows.push(("passthrough: skipped (nginx not installed)".into(), None, None)),
    }
    let idle_rss = Usage::of(gateway.0.id()).peak_rss;
    // `PAYGLOT_BENCH_ONLY=open-loop`: only the two peaks the open loop needs, then the open loop.
    let open_loop_only = only == "open-loop";
    for (d, m, path, _) in query_targets.iter().filter(|(d, ..)| !open_loop_only || *d == "xxpay") {
        let before = Usage::of(gateway.0.id());
        let o = run(client.clone(), payglot_query(m, path), secs, concurrency).await;
        let used = Usage::of(gateway.0.id()).since(before);
        let note = if *d == "jings" { " (1 query/min/order: from the store)" } else { "" };
        rows.push((format!("payglot query via {d}{note}"), Some(o), Some(used)));
    }
    // Run before the creates: afterwards the re-query worker checks their many pending payments
    // at the provider on the same core, which the open loop would measure instead.
    let mut open_loop_report = String::new();
    // The open loop measures latency, so the generator keeps off the servers' core 0 for it
    // (unpinned, `perf sched` showed its thread there, delaying the measured server by up to
    // 15 ms); its rates are below what core 1 can generate. The closed-loop peaks leave it
    // unpinned: pinned, nginx's peak was the generator's.
    pin_generator("1");
    // Latency at a fixed rate, open loop: half of passthrough's peak (DESIGN.md §9: < 1 ms added
    // p99 there), then half of payglot's own peak for a query via xxpay: the latency payglot adds
    // when its core is not near saturation (at half of nginx's rate, it is).
    let peak_of = |row: &str| {
        rows.iter()
            .find(|(n, _, _)| n.starts_with(row))
            .and_then(|(_, o, _)| o.as_ref())
            .map(|o| o.requests as f64 / o.secs)
    };
    let passthrough_rps = peak_of("passthrough:");
    let rates = [
        (passthrough_rps, "passthrough's", true),
        (peak_of("payglot query via xxpay"), "payglot's own (query via xxpay)", false),
    ];
    let rates = if nginx.is_some() { rates.as_slice() } else { &[] };
    for &(peak, whose, both) in rates {
        let Some(peak) = peak else { continue };
        let rate = (peak / 2.0).round();
        let mut at_rate: Vec<(String, Target)> =
            vec![("passthrough: nginx proxy_pass -> stub".into(), through_nginx.clone())];
        for (d, m, path, _) in query_targets.iter().filter(|(d, ..)| ["xxpay", "jings"].contains(d)) {
            if both || *d == "xxpay" {
                let note = if *d == "jings" { " (from the store)" } else { "" };
                at_rate.push((format!("payglot query via {d}{note}"), payglot_query(m, path)));
            }
        }
        let _ = writeln!(open_loop_report, "\nopen loop at {rate:.0} req/s (half of {whose} peak), {secs} s each; latency from when each request was due\n");
        let _ = writeln!(
            open_loop_report,
            "{:<58} {:>9} {:>8} {:>8} {:>8} {:>12} {:>9} {:>9} {:>6}",
            "scenario", "req/s", "p50 ms", "p99 ms", "p999 ms", "added p99 ms", "handler", "provider", "CPU"
        );
        let mut base_p99 = None;
        for (name, t) in at_rate {
            // Where payglot's tail is: its own histograms of the handler's time and of the
            // provider call (bucket bounds), and its core's busy share, over this run.
            let of_payglot = name.starts_with("payglot");
            let before = if of_payglot { metrics_text(&client, admin).await } else { String::new() };
            let cpu_before = Usage::of(gateway.0.id()).cpu;
            let o = run_at_rate(client.clone(), t, secs, rate, concurrency * 2).await;
            let cpu = (Usage::of(gateway.0.id()).cpu - cpu_before) / o.secs;
            let split = if of_payglot {
                let after = metrics_text(&client, admin).await;
                let p99 = |name| p99_bucket(&histogram(&before, name), &histogram(&after, name));
                let (handler, provider) =
                    (p99("payglot_request_duration_seconds"), p99("payglot_upstream_latency_seconds"));
                format!(" {handler:>9} {provider:>9} {:>5.0}%", cpu * 100.0)
            } else {
                String::new()
            };
            let p99 = pct(&o.latencies_us, 0.99);
            // nginx's own row falling behind the rate means core 1 (generator and stub) could
            // not make it: the run then measures core 1's queue, not the servers.
            let behind = base_p99.is_none() && (o.requests as f64 / o.secs) < 0.97 * rate;
            let added = base_p99.map(|b: f64| format!("{:.2}", p99 - b)).unwrap_or_else(|| "-".into());
            base_p99.get_or_insert(p99);
            let errors = if o.errors > 0 { format!("  ({} errors)", o.errors) } else { String::new() };
            let _ = writeln!(
                open_loop_report,
                "{:<58} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>12}{split}{errors}",
                name,
                o.requests as f64 / o.secs,
                pct(&o.latencies_us, 0.5),
                p99,
                pct(&o.latencies_us, 0.999),
                added
            );
            if behind {
                let _ = writeln!(
                    open_loop_report,
                    "  (nginx fell behind {rate:.0} req/s: generator and stub, both on core 1, cannot make this rate, so the rows of this rate measure core 1's queue, not the servers)"
                );
            }
        }
    }
    pin_generator("0,1");
    if open_loop_only {
        print!("{open_loop_report}");
        return;
    }
    for d in ["xxpay", "xiaojitong", "zhixiao", "jings", "mct"] {
        let before = Usage::of(gateway.0.id());
        let dialect = d.to_string();
        let run_id = random_id("", 6);
        let body: Arc<dyn Fn(u64) -> String + Send + Sync> =
            Arc::new(move |n| create_body(&dialect, &format!("C{run_id}{n}")));
        let t = Target {
            method: "POST",
            url: format!("{gw_url}/v1/payments"),
            merchant: Some(format!("bench-{d}")),
            path: "/v1/payments".into(),
            body,
            content_type: "application/json",
        };
        let o = run(client.clone(), t, secs, concurrency).await;
        let used = Usage::of(gateway.0.id()).since(before);
        let note = if d == "jings" { " (browser form: no provider call)" } else { "" };
        rows.push((format!("payglot create via {d}{note}"), Some(o), Some(used)));
    }

    println!("\n{secs} s per scenario, {concurrency} connections; payglot and nginx on core 0, stub on core 1, generator unpinned (core 1 in the open loop)\n");
    println!(
        "{:<58} {:>9} {:>8} {:>8} {:>8} {:>13} {:>8} {:>7}",
        "scenario", "req/s", "p50 ms", "p99 ms", "p999 ms", "CPU (sys) µs", "RSS MiB", "x pass"
    );
    for (name, o, cpu) in &rows {
        let Some(o) = o else {
            println!("{name}");
            continue;
        };
        let rps = o.requests as f64 / o.secs;
        let per_request = |seconds: f64| seconds * 1e6 / o.requests.max(1) as f64;
        let cpu_per = cpu
            .map(|u| format!("{:.0} ({:.0})", per_request(u.cpu), per_request(u.system)))
            .unwrap_or_else(|| "-".into());
        let rss = cpu.map(|u| format!("{:.1}", u.peak_rss as f64 / 1024.0)).unwrap_or_else(|| "-".into());
        let ratio = passthrough_rps
            .filter(|_| name.starts_with("payglot"))
            .map(|p| format!("{:.2}", rps / p))
            .unwrap_or_else(|| "-".into());
        let errors = if o.errors > 0 { format!("  ({} errors)", o.errors) } else { String::new() };
        println!(
            "{:<58} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>13} {:>8} {:>7}{errors}",
            name,
            rps,
            pct(&o.latencies_us, 0.5),
            pct(&o.latencies_us, 0.99),
            pct(&o.latencies_us, 0.999),
            cpu_per,
            rss,
            ratio
        );
    }
    println!("\npayglot idle RSS before load: {:.1} MiB", idle_rss as f64 / 1024.0);
    print!("{open_loop_report}");
    callback_benches(&client, &gw_url, admin, gateway, &dir, bin, &common, concurrency).await;
}

/// Callbacks through to outbox rows on the SQLite gateway, then on PostgreSQL when configured.
#[allow(clippy::too_many_arguments)]
async fn callback_benches(
    client: &Arc<Upstream>,
    gw_url: &str,
    admin: u16,
    gateway: Proc,
    dir: &tempfile::TempDir,
    bin: &str,
    common: &str,
    concurrency: usize,
) {
    // Group commit shares each commit among the writes waiting for it, so the rate depends on
    // how many are in flight: each store at the bench's concurrency, then at four times it.
    for c in [concurrency, 4 * concurrency] {
        callbacks(client, gw_url, admin, &format!("SQLite, synchronous=FULL, {c} connections"), c).await;
    }
    drop(gateway);

    // The same callback path on PostgreSQL, when a server is configured.
    match std::env::var("PAYGLOT_TEST_POSTGRES").ok().filter(|u| !u.is_empty()) {
        Some(url) => {
            let schema = format!("bench_{}", random_id("", 8).to_lowercase());
            let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("PostgreSQL reachable");
            tokio::spawn(conn);
            pg.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let store = format!("{url}{sep}options=-csearch_path%3D{schema}");
            let (gw2, admin2) = (free_port(), free_port());
            std::fs::write(
                dir.path().join("gw-pg.yaml"),
                format!("listen: 127.0.0.1:{gw2}\nadmin_listen: 127.0.0.1:{admin2}\npublic_url: http://127.0.0.1:{gw2}\nstore: \"{store}\"\ndelivery:\n  retry_schedule_secs: [3600]\n{common}"),
            )
            .unwrap();
            let cfg = dir.path().join("gw-pg.yaml").display().to_string();
            let pg_gateway = pinned("0", bin, &["serve", "--config", &cfg]);
            wait_port(gw2).await;
            for c in [concurrency, 4 * concurrency] {
                callbacks(
                    client,
                    &format!("http://127.0.0.1:{gw2}"),
                    admin2,
                    &format!("PostgreSQL, {c} connections"),
                    c,
                )
                .await;
            }
            drop(pg_gateway);
            let _ = pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
        }
        None => println!("callbacks on PostgreSQL: skipped (set PAYGLOT_TEST_POSTGRES)"),
    }
}

/// The instruction counts (see the module doc): nginx's passthrough, then every payglot query
/// and create scenario.
#[allow(clippy::too_many_arguments)]
async fn count_instructions(
    client: &Arc<Upstream>,
    n: u64,
    nginx: &Option<Proc>,
    gateway: &Proc,
    stub: u16,
    nginx_port: u16,
    gw_url: &str,
    stub_body: &str,
    query_targets: &[(&str, String, String, Value)],
) {
    let form = "application/x-www-form-urlencoded";
    let fixed = |s: String| -> Arc<dyn Fn(u64) -> String + Send + Sync> { Arc::new(move |_| s.clone()) };
    let _ = stub;
    let mut rows: Vec<(String, f64, u64)> = Vec::new();
    if let Some(nginx) = nginx {
        let t = Target {
            method: "POST",
            url: format!("http://127.0.0.1:{nginx_port}/xxpay/api/pay/query_order"),
            merchant: None,
            path: String::new(),
            body: fixed(stub_body.to_string()),
            content_type: form,
        };
        let (per, ok) = instructions_per_request(client, nginx.0.id(), t, n).await;
        rows.push(("passthrough: nginx proxy_pass -> stub".into(), per, ok));
    }
    // The gateway runs under taskset -> valgrind: its pid is valgrind's, which is the process.
    let pid = gateway.0.id();
    let only = std::env::var("PAYGLOT_BENCH_ONLY").unwrap_or_default();
    for (d, m, path, _) in query_targets.iter().filter(|(d, ..)| format!("payglot query via {d}").contains(&only)) {
        let t = Target {
            method: "GET",
            url: format!("{gw_url}{path}"),
            merchant: Some(m.clone()),
            path: path.clone(),
            body: fixed(String::new()),
            content_type: "application/json",
        };
        let (per, ok) = instructions_per_request(client, pid, t, n).await;
        rows.push((format!("payglot query via {d}"), per, ok));
    }
    for d in ["xxpay", "xiaojitong", "zhixiao", "jings", "mct"]
        .into_iter()
        .filter(|d| format!("payglot create via {d}").contains(&only))
    {
        let dialect = d.to_string();
        let run_id = random_id("", 6);
        let t = Target {
            method: "POST",
            url: format!("{gw_url}/v1/payments"),
            merchant: Some(format!("bench-{d}")),
            path: "/v1/payments".into(),
            body: Arc::new(move |i| create_body(&dialect, &format!("I{run_id}{i}"))),
            content_type: "application/json",
        };
        let (per, ok) = instructions_per_request(client, pid, t, n).await;
        rows.push((format!("payglot create via {d}"), per, ok));
    }
    let base = rows.iter().find(|r| r.0.starts_with("passthrough")).map(|r| r.1);
    println!("\ninstructions per request (callgrind, {n} requests a scenario, 4 connections)\n");
    println!("{:<45} {:>14} {:>9} {:>6}", "scenario", "instructions", "x nginx", "200s");
    for (name, per, ok) in rows {
        let ratio = base.map(|b| format!("{:.1}", per / b)).unwrap_or_else(|| "-".into());
        println!("{name:<45} {per:>14.0} {ratio:>9} {ok:>6}");
    }
    println!("\ncallgrind dumps: {}", callgrind_dir().unwrap());
}

fn bench_payment() -> payglot::model::Payment {
    payglot::model::Payment {
        payment_id: String::new(),
        merchant_id: "bench-xxpay".into(),
        out_trade_no: "Q-xxpay".into(),
        amount: 19_800,
        subject: "Tuition".into(),
        provider: "xxpay".into(),
        ..payglot::test_support::payment()
    }
}

/// Verified xxpay callbacks per second, each through to a persisted outbox row; the rows are
/// counted by the gateway's own `payglot_outbox_depth` (the merchant endpoint is down, so
/// every event stays in the outbox).
async fn callbacks(client: &Arc<Upstream>, gw_url: &str, admin: u16, store: &str, concurrency: usize) {
    let n = 4000;
    // The payments first, from `concurrency` connections: each a durable create (payment row,
    // provider call, its answer recorded).
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let created = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url) = (client.clone(), next.clone(), format!("{gw_url}/v1/payments"));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return ids;
                }
                let body = create_body("xxpay", &format!("CB-{i}-{}", random_id("", 4)));
                let (ts, nonce) = (now_unix().to_string(), random_id("n", 24));
                let sig = request_signature(KEY, &ts, &nonce, "POST", "/v1/payments", body.as_bytes());
                let h = [
                    ("payglot-merchant", "bench-xxpay"),
                    ("payglot-timestamp", ts.as_str()),
                    ("payglot-nonce", nonce.as_str()),
                    ("payglot-signature", sig.as_str()),
                ];
                let a = client.send("POST", &url, &h, body.into_bytes(), 2000, 10_000).await.unwrap();
                let answer = serde_json::from_slice::<Value>(&a.body).unwrap();
                ids.push(answer["payment_id"].as_str().expect("created").to_string());
            }
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let create_secs = created.elapsed().as_secs_f64();
    println!(
        "creates ({store}): {n} in {create_secs:.2} s = {:.0} creates/s (xxpay, provider called)",
        n as f64 / create_secs
    );
    let bodies: Vec<String> = ids
        .iter()
        .map(|id| {
            let f = [
                ("payOrderId", "P01"),
                ("mchId", "20001222"),
                ("mchOrderNo", id.as_str()),
                ("amount", "19800"),
                ("status", "2"),
                ("paySuccTime", "1505049094262"),
            ];
            payglot::dialects::xxpay::provider::notify_body(
                f.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                "bench-xxpay-key",
            )
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, bodies, next, url) =
            (client.clone(), bodies.clone(), next.clone(), format!("{gw_url}/callbacks/xxpay"));
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { return acked };
                let a = client
                    .send(
                        "POST",
                        &url,
                        &[("content-type", "application/x-www-form-urlencoded")],
                        body.clone().into_bytes(),
                        2000,
                        10_000,
                    )
                    .await;
                acked += matches!(&a, Ok(a) if a.body.as_ref() == b"success") as usize;
            }
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let text = metrics_text(client, admin).await;
    assert!(!text.is_empty(), "the gateway's /metrics did not answer");
    let rows = text
        .lines()
        .find(|l| l.starts_with("payglot_outbox_depth"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_string();
    println!(
        "callbacks ({store}): {acked} of {n} verified and acked in {secs:.2} s = {:.0} callbacks/s through to outbox rows; rows in the outbox: {rows}",
        acked as f64 / secs
    );
}

fn which(program: &str) -> Option<String> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| format!("{d}/{program}"))
        .find(|p| Path::new(p).exists())
}
