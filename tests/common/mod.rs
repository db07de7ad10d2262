//! Test harness: a real `payglot serve` process (with its sandbox providers) on loopback
//! ports, a merchant HTTP server that records notifications, and a signing client.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use payglot::core::notify::event_signature;
use payglot::doors::merchant_api::auth::request_signature;
use payglot::upstream::{Answer, Upstream};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub const MERCHANT: &str = "school-a";
pub const MERCHANT_KEY: &str = "school-a-key-0123456789";
pub const XXPAY_A: (&str, &str, &str) = ("1001", "app-a", "xxpay-key-a");
pub const XXPAY_B: (&str, &str, &str) = ("1002", "app-b", "xxpay-key-b");
pub const XJT_KEY: &str = "xiaojitong-key-1";
pub const JINGS_TOKEN: &str = "10665CF54E90822951FE80330E9CF715";
pub const MCT_OPEN_KEY: &str = "0828e83720fdbe3685a7b94214af04f9";

/// The accounts of the other four dialects at the sandbox, and the merchant routed to each.
pub const DIALECT_SCHOOLS: &[(&str, &str)] =
    &[("xjt", "school-xjt"), ("zx", "school-zx"), ("jg", "school-jg"), ("mct", "school-mct")];

/// The port of the XxPay project demo merchant's notifyUrl (in its signed request, fixed in
/// tests/fixtures/xxpay): a test listens on it, so `free_port` never hands it out.
pub const XXPAY_PROJECT_NOTIFY_PORT: u16 = 18080;

/// A loopback port nobody listens on right now, never the same one twice in this process.
/// Ports come from below the kernel's ephemeral range (32768 and up), so an outgoing
/// connection of another test cannot take one between this check and the server's bind.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    // Start where this process's id points, so test binaries run one after another do not
    // walk the same ports: spread by a prime, since their ids are consecutive and the ports an
    // earlier binary (or its children, still exiting) used would otherwise be the next ones here.
    let start = (std::process::id().wrapping_mul(7919) % 20_000) as u16;
    let mut candidate = 10_000 + start + handed_out.len() as u16;
    loop {
        candidate = if candidate >= 30_000 { 10_000 } else { candidate + 1 };
        if handed_out.contains(&candidate) || candidate == XXPAY_PROJECT_NOTIFY_PORT {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            handed_out.push(candidate);
            return candidate;
        }
    }
}

pub fn now() -> i64 {
    payglot::model::now_unix()
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One notification as the merchant server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// Every header as received (lowercase names).
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("event body is JSON")
    }

    pub fn signature_valid(&self) -> bool {
        event_signature(MERCHANT_KEY, &self.timestamp, &self.event_id, self.body.as_bytes()) == self.signature
    }
}

/// A request a test server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
}

/// What a test server answers a request: status and body.
pub type Handler = Arc<dyn Fn(Seen) -> (u16, Vec<u8>) + Send + Sync>;

/// The tests' one HTTP server: a loopback port and a handler. It can be stopped (the port is
/// then closed, and connections in flight are dropped) and started again on the same port,
/// and slowed (`delay_ms` before each answer).
pub struct TestServer {
    pub port: u16,
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Requests that arrived (counted before the delay, so a slow answer is seen in flight).
    pub arrived: Arc<std::sync::atomic::AtomicU64>,
    /// Headers added to every answer (a `Retry-After`, say).
    pub answer_headers: Arc<Mutex<Vec<(String, String)>>>,
    handler: Handler,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub fn new(port: u16, handler: impl Fn(Seen) -> (u16, Vec<u8>) + Send + Sync + 'static) -> Self {
        TestServer {
            port,
            delay_ms: Default::default(),
            arrived: Default::default(),
            answer_headers: Default::default(),
            handler: Arc::new(handler),
            task: None,
        }
    }

    /// A server on a free port, started.
    pub async fn serve(handler: impl Fn(Seen) -> (u16, Vec<u8>) + Send + Sync + 'static) -> Self {
        let mut server = TestServer::new(free_port(), handler);
        server.start().await;
        server
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) {
        let port = self.port;
        let listener =
            TcpListener::bind(("127.0.0.1", port)).await.unwrap_or_else(|e| panic!("test server port {port}: {e}"));
        let (handler, delay, arrived) = (self.handler.clone(), self.delay_ms.clone(), self.arrived.clone());
        let extra = self.answer_headers.clone();
        self.task = Some(tokio::spawn(async move {
            // The connections live in the task: stopping the server drops them too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (handler, delay, arrived) = (handler.clone(), delay.clone(), arrived.clone());
                let extra = extra.clone();
                connections.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let extra = extra.lock().unwrap().clone();
                        let delay = delay.load(Ordering::SeqCst);
                        arrived.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let seen = Seen {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().unwrap_or("").to_string(),
                                headers: parts.headers,
                                body,
                            };
                            let (status, answer) = handler(seen);
                            let mut r = Response::new(Full::new(Bytes::from(answer)));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            for (k, v) in extra {
                                r.headers_mut().insert(
                                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        }));
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A merchant's notify endpoint on a fixed port; it can be down (not listening) or failing.
pub struct MerchantServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub failing: Arc<AtomicBool>,
    /// Milliseconds the server waits before answering (a slow merchant).
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    server: TestServer,
}

impl MerchantServer {
    pub fn new() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Default::default();
        let failing: Arc<AtomicBool> = Default::default();
        let (r, f) = (received.clone(), failing.clone());
        let server = TestServer::new(free_port(), move |seen| {
            if f.load(Ordering::SeqCst) {
                return (500, b"ok".to_vec());
            }
            r.lock().unwrap().push(Received {
                event_id: seen.header("payglot-event-id"),
                timestamp: seen.header("payglot-timestamp"),
                signature: seen.header("payglot-signature"),
                body: String::from_utf8_lossy(&seen.body).into_owned(),
                headers: seen
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect(),
            });
            (200, b"ok".to_vec())
        });
        MerchantServer { port: server.port, received, failing, delay_ms: server.delay_ms.clone(), server }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/notify", self.port)
    }

    pub async fn start(&mut self) {
        self.server.start().await;
    }

    pub fn stop(&mut self) {
        self.server.stop();
    }

    pub fn events(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests that reached the server, answered or still waiting on `delay_ms`.
    pub fn arrived(&self) -> u64 {
        self.server.arrived.load(Ordering::SeqCst)
    }
}

/// Ports and files of one gateway under test.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub port: u16,
    pub admin_port: u16,
    pub sandbox_port: u16,
    pub notify_url: String,
    /// Where providers are told to call back; the gateway itself unless a test changes it.
    pub public_url: String,
    /// The `store:` line's value.
    pub store: String,
    /// Whether this gateway runs the sandbox (a second instance uses the first one's).
    pub embedded_sandbox: bool,
    /// Extra top-level routes.yaml sections (a test's `requery:` schedule, say).
    pub extra_yaml: String,
    /// The process's open file limit (`prlimit --nofile`), when a test sets one.
    pub fd_limit: Option<u64>,
    /// Environment variables of the gateway process.
    pub envs: Vec<(String, String)>,
    /// `delivery.give_up_after_secs`.
    pub give_up_secs: u64,
    child: Option<Child>,
    client: Upstream,
}

impl Gateway {
    /// A gateway whose merchant `school-a` notifies `notify_url` and routes to `xxpay-a`.
    pub fn new(notify_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("routes.yaml");
        let port = free_port();
        let g = Gateway {
            config_path,
            dir,
            port,
            public_url: format!("http://127.0.0.1:{port}"),
            store: "sqlite://payglot.db".into(),
            embedded_sandbox: true,
            extra_yaml: String::new(),
            fd_limit: None,
            envs: Vec::new(),
            give_up_secs: 259_200,
            admin_port: free_port(),
            sandbox_port: free_port(),
            notify_url: notify_url.to_string(),
            child: None,
            client: Upstream::new(),
        };
        g.write_config(&g.routes_yaml("xxpay-a"));
        g
    }

    /// The test routes.yaml, with the merchant's default route going to `route_to`.
    pub fn routes_yaml(&self, route_to: &str) -> String {
        self.routes_yaml_with(&format!("      - to: {route_to}\n"), "")
    }

    /// The test routes.yaml with `school-a`'s routes block (lines under `routes:`) and extra
    /// provider entries (lines under `providers:`).
    pub fn routes_yaml_with(&self, school_a_routes: &str, extra_providers: &str) -> String {
        let account = |(mch, app, key): (&str, &str, &str)| {
            format!(
                "    dialect: xxpay\n    base_url: http://127.0.0.1:{}/xxpay\n    credentials: {{ mch_id: \"{mch}\", app_id: {app}, key: {key} }}\n    timeout_ms: 3000\n",
                self.sandbox_port
            )
        };
        format!(
            "listen: 127.0.0.1:{}\nadmin_listen: 127.0.0.1:{}\npublic_url: {}\nstore: {}\n{}\
             delivery:\n  retry_schedule_secs: [1]\n  poll_ms: 100\n  timeout_ms: 2000\n  lease_secs: 3\n  give_up_after_secs: {}\n{}\
             providers:\n  xxpay-a:\n{}  xxpay-b:\n{}{}{extra_providers}\
             merchants:\n  {MERCHANT}:\n    key: {MERCHANT_KEY}\n    notify_url: {}\n    allow_private_notify: true\n    routes:\n{school_a_routes}{}",
            self.port,
            self.admin_port,
            self.public_url,
            self.store,
            if self.embedded_sandbox {
                format!(
                    "sandbox:\n  listen: 127.0.0.1:{}\n  notify_retry_secs: [1, 1, 1, 2, 3, 5]\n  adjustable_clock: true\n",
                    self.sandbox_port
                )
            } else {
                String::new()
            },
            self.give_up_secs,
            self.extra_yaml,
            account(XXPAY_A),
            account(XXPAY_B),
            self.other_dialects(),
            self.notify_url,
            DIALECT_SCHOOLS
                .iter()
                .map(|(account, school)| format!("  {school}:\n    key: {MERCHANT_KEY}\n    notify_url: {}\n    allow_private_notify: true\n    routes:\n      - to: {account}\n", self.notify_url))
                .collect::<String>()
                + &format!(
                    "  school-bad:\n    key: {MERCHANT_KEY}\n    notify_url: {}\n    allow_private_notify: true\n    routes:\n      - match: {{ channel: wechat }}\n        to: xxpay-unknown\n      - to: mct-unknown\n",
                    self.notify_url
                ),
        )
    }

    fn other_dialects(&self) -> String {
        let base = format!("http://127.0.0.1:{}", self.sandbox_port);
        [
            "  xjt:".to_string(),
            "    dialect: xiaojitong".into(),
            format!("    base_url: {base}/xiaojitong"),
            format!("    credentials: {{ mid: \"2\", key: {XJT_KEY} }}"),
            "    options: { wallet: wechat }".into(),
            // The same provider, an account set up for alipay (xiaojitong requests name no wallet).
            "  xjt-ali:".into(),
            "    dialect: xiaojitong".into(),
            format!("    base_url: {base}/xiaojitong"),
            format!("    credentials: {{ mid: \"3\", key: {XJT_KEY} }}"),
            "    options: { wallet: alipay }".into(),
            "  zx:".into(),
            "    dialect: zhixiao".into(),
            format!("    base_url: {base}/zhixiao"),
            "    credentials: { appid: partner1, appsecret: weiweixiao, aes_key: AD42F6697B035B7580E4FEF93BE20B4D }".into(),
            "  jg:".into(),
            "    dialect: jings".into(),
            format!("    base_url: {base}/jings"),
            format!("    credentials: {{ uid: \"10000001400000\", token: {JINGS_TOKEN} }}"),
            "  mct:".into(),
            "    dialect: mct".into(),
            format!("    base_url: {base}/mct"),
            format!("    credentials: {{ open_id: 87f46f5db1b65f0ac195285f49ee6958, open_key: {MCT_OPEN_KEY}, shop_pass: \"654321\" }}"),
            "    options: { sub_appid: wxde66bf91cac57773 }".into(),
            // Accounts the sandbox does not know (another host name): it refuses them.
            "  xxpay-unknown:".into(),
            "    dialect: xxpay".into(),
            format!("    base_url: http://localhost:{}/xxpay", self.sandbox_port),
            "    credentials: { mch_id: \"9999\", app_id: app-x, key: xxpay-key-x }".into(),
            "  mct-unknown:".into(),
            "    dialect: mct".into(),
            format!("    base_url: http://localhost:{}/mct", self.sandbox_port),
            format!("    credentials: {{ open_id: unknownstore, open_key: {MCT_OPEN_KEY} }}"),
            String::new(),
        ]
        .join("\n")
    }

    /// Replaces routes.yaml the way an editor does: write aside, then rename over it.
    pub fn write_config(&self, text: &str) {
        let tmp = self.dir.path().join(".routes.yaml.tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &self.config_path).expect("rename config");
    }

    pub async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("payglot.log"))
            .expect("log file");
        let mut command = match self.fd_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(env!("CARGO_BIN_EXE_payglot"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_payglot")),
        };
        let child = command
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start payglot");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/healthz", self.admin_port);
        let client = Upstream::new();
        eventually("the gateway to listen", Duration::from_secs(20), || {
            let client = &client;
            let url = url.clone();
            async move { client.send("GET", &url, &[], vec![], 200, 500).await.ok().filter(|a| a.status == 200) }
        })
        .await;
    }

    /// Waits until the gateway has attempted a reload since `before` (an `/admin/config`).
    pub async fn await_reload(&self, before: &Value) -> Value {
        eventually("the config reload", Duration::from_secs(10), || async {
            let (_, c) = self.admin("GET", "/admin/config").await;
            (c["reloads"] != before["reloads"] || c["reload_failures"] != before["reload_failures"]).then_some(c)
        })
        .await
    }

    /// Starts a standalone `payglot sandbox` for `config` (a routes.yaml whose sandbox listens
    /// on another port); killed when the returned child drops.
    pub async fn start_standalone_sandbox(&self, config: &str, port: u16) -> KillOnDrop {
        let path = self.dir.path().join(format!("sandbox-{port}.yaml"));
        std::fs::write(&path, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_payglot"))
            .args(["sandbox", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start payglot sandbox");
        let client = Upstream::new();
        let url = format!("http://127.0.0.1:{port}/_sandbox/stats");
        eventually("the standalone sandbox", Duration::from_secs(20), || {
            let (client, url) = (&client, url.clone());
            async move { client.send("GET", &url, &[], vec![], 200, 500).await.ok().filter(|a| a.status == 200) }
        })
        .await;
        KillOnDrop(child)
    }

    /// The sandbox's count of API requests per dialect.
    pub async fn sandbox_requests(&self, port: u16, dialect: &str) -> u64 {
        let a = self.http("GET", &format!("http://127.0.0.1:{port}/_sandbox/stats"), &[], b"").await;
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        v["requests"][dialect].as_u64().unwrap_or(0)
    }

    /// The sandbox's callbacks: (attempts made, callbacks still being sent).
    pub async fn sandbox_callbacks(&self) -> (u64, u64) {
        let a = self.http("GET", &format!("http://127.0.0.1:{}/_sandbox/stats", self.sandbox_port), &[], b"").await;
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        (v["callbacks"]["attempts"].as_u64().unwrap_or(0), v["callbacks"]["in_flight"].as_u64().unwrap_or(0))
    }

    /// Waits until nothing is left to happen: no sandbox callback is still being sent and no
    /// event waits in the gateway's outbox, so what the merchant received is final.
    pub async fn settled(&self) {
        eventually("the sandbox's callbacks and the outbox to settle", Duration::from_secs(30), || async {
            let (_, in_flight) = self.sandbox_callbacks().await;
            let (_, pending) = self.admin("GET", "/admin/events?status=pending").await;
            (in_flight == 0 && pending["events"].as_array().is_some_and(|e| e.is_empty())).then_some(())
        })
        .await;
    }

    /// The events of a payment as the gateway's store holds them (kind, state, attempts).
    pub async fn payment_events(&self, payment_id: &str) -> Vec<Value> {
        let (status, v) = self.admin("GET", &format!("/admin/payments/{payment_id}")).await;
        assert_eq!(status, 200, "{v}");
        v["events"].as_array().cloned().unwrap_or_default()
    }

    /// The admin listener's `/metrics` text (answered 200).
    pub async fn metrics(&self) -> String {
        let a = self.http("GET", &format!("http://127.0.0.1:{}/metrics", self.admin_port), &[], b"").await;
        assert_eq!(a.status, 200, "/metrics");
        String::from_utf8_lossy(&a.body).to_string()
    }

    /// Moves the gateway's clock forward (its sandbox config has `adjustable_clock`).
    pub async fn advance_clock(&self, secs: i64) {
        let (status, v) = self.admin("POST", &format!("/admin/clock?advance={secs}")).await;
        assert_eq!(status, 200, "{v}");
    }

    /// Sets a sandbox fault mode for a dialect.
    pub async fn sandbox_fault(&self, dialect: &str, mode: &str) {
        let url = format!("http://127.0.0.1:{}/_sandbox/fault?dialect={dialect}&mode={mode}", self.sandbox_port);
        assert_eq!(self.http("POST", &url, &[], b"").await.status, 200);
    }

    /// The gateway process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits (up to `timeout`) for the gateway process to exit; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("payglot.log")).unwrap_or_default()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn http(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        // 3 s to connect: a SYN that meets a full accept queue (the slow-client tests fill it) is
        // sent again after TCP's first retransmission timeout of 1 s; tests bound latency
        // themselves where it matters.
        self.client.send(method, url, headers, body.to_vec(), 3000, 10_000).await.expect("HTTP call")
    }

    /// A merchant API call as `school-a` signed with `key` at `timestamp` with `nonce`.
    pub async fn call_signed(
        &self,
        method: &str,
        path: &str,
        body: &str,
        key: &str,
        timestamp: i64,
        nonce: &str,
    ) -> (u16, Value) {
        self.call_signed_as(MERCHANT, method, path, body, key, timestamp, nonce).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn call_signed_as(
        &self,
        merchant: &str,
        method: &str,
        path: &str,
        body: &str,
        key: &str,
        timestamp: i64,
        nonce: &str,
    ) -> (u16, Value) {
        let ts = timestamp.to_string();
        let sig = request_signature(key, &ts, nonce, method, path, body.as_bytes());
        let headers = [
            ("content-type", "application/json"),
            ("payglot-merchant", merchant),
            ("payglot-timestamp", ts.as_str()),
            ("payglot-nonce", nonce),
            ("payglot-signature", sig.as_str()),
        ];
        let a = self.http(method, &format!("{}{path}", self.base()), &headers, body.as_bytes()).await;
        (a.status, serde_json::from_slice(&a.body).unwrap_or(Value::Null))
    }

    /// A correctly signed merchant API call as `school-a`.
    pub async fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        self.call_as(MERCHANT, method, path, body).await
    }

    /// A correctly signed merchant API call as `merchant` (all test merchants share a key).
    pub async fn call_as(&self, merchant: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
        let nonce = payglot::model::random_id("n", 24);
        self.call_signed_as(merchant, method, path, body, MERCHANT_KEY, now(), &nonce).await
    }

    pub async fn admin(&self, method: &str, path: &str) -> (u16, Value) {
        let a = self.http(method, &format!("http://127.0.0.1:{}{path}", self.admin_port), &[], b"").await;
        (a.status, serde_json::from_slice(&a.body).unwrap_or(Value::Null))
    }

    /// Pays an xxpay order at the sandbox, the way a payer would.
    pub async fn pay_at_sandbox(&self, provider_trade_no: &str) {
        self.pay_at("xxpay", provider_trade_no).await
    }

    /// Pays an order of `dialect` at the sandbox (by provider or merchant order number).
    pub async fn pay_at(&self, dialect: &str, order: &str) {
        let a =
            self.http("POST", &format!("http://127.0.0.1:{}/{dialect}/pay/{order}", self.sandbox_port), &[], b"").await;
        assert_eq!(a.status, 200, "sandbox pay: {}", String::from_utf8_lossy(&a.body));
    }

    /// Completes an xxpay payout at the sandbox.
    pub async fn complete_payout(&self, order: &str) {
        let a =
            self.http("POST", &format!("http://127.0.0.1:{}/xxpay/payout/{order}", self.sandbox_port), &[], b"").await;
        assert_eq!(a.status, 200, "sandbox payout: {}", String::from_utf8_lossy(&a.body));
    }

    /// POSTs a callback to the gateway as a provider would; returns (status, body).
    pub async fn callback(&self, account: &str, form_body: &str) -> (u16, String) {
        let a = self
            .http(
                "POST",
                &format!("{}/callbacks/{account}", self.base()),
                &[("content-type", "application/x-www-form-urlencoded")],
                form_body.as_bytes(),
            )
            .await;
        (a.status, String::from_utf8_lossy(&a.body).into_owned())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- payglot log ---\n{}", self.log());
        }
    }
}

/// Waits until the merchant server holds `n` notifications; returns them.
pub async fn events(merchant: &MerchantServer, n: usize) -> Vec<Received> {
    eventually(&format!("{n} notification(s)"), Duration::from_secs(15), || {
        let events = merchant.events();
        async move { (events.len() >= n).then_some(events) }
    })
    .await
}

/// A create-payment body.
pub fn payment_body(out_trade_no: &str, amount: i64) -> String {
    serde_json::json!({
        "out_trade_no": out_trade_no,
        "amount": amount,
        "subject": "Tuition 2026 autumn",
        "channel": "alipay",
        "scene": "qr",
    })
    .to_string()
}

/// A child process killed (`kill -9`) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An environment variable a PostgreSQL test needs. The PostgreSQL tests are compiled as
/// ignored unless `PAYGLOT_TEST_POSTGRES` or `PAYGLOT_REQUIRE_POSTGRES` was set at build time
/// (build.rs, the `postgres_tests` cfg); once they run, a missing variable fails them.
pub fn postgres_url(variable: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| panic!("PostgreSQL is required for this test but {variable} is not set"))
}

/// The shared PostgreSQL database for multi-instance tests, in a fresh schema named after
/// `name` (earlier runs' schemas of that name are dropped).
pub async fn postgres_store_url(name: &str) -> String {
    let url = postgres_url("PAYGLOT_TEST_POSTGRES");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("PostgreSQL reachable");
    tokio::spawn(conn);
    let old = client
        .query(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE $1",
            &[&format!("g\\_{name}\\_%")],
        )
        .await
        .unwrap();
    for row in old {
        let s: String = row.get(0);
        client.batch_execute(&format!("DROP SCHEMA {s} CASCADE")).await.unwrap();
    }
    let schema = format!("g_{name}_{}", payglot::model::random_id("", 8).to_lowercase());
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// Two gateway instances sharing one PostgreSQL store and the first one's sandbox, with
/// callbacks crossed (providers of payments made on one call back the other).
pub async fn instance_pair(name: &str, merchant_url: &str) -> (Gateway, Gateway) {
    let store = postgres_store_url(name).await;
    let mut a = Gateway::new(merchant_url);
    let mut b = Gateway::new(merchant_url);
    b.embedded_sandbox = false;
    b.sandbox_port = a.sandbox_port;
    a.store = store.clone();
    b.store = store;
    a.public_url = b.base();
    b.public_url = a.base();
    a.write_config(&a.routes_yaml("xxpay-a"));
    b.write_config(&b.routes_yaml("xxpay-a"));
    a.start().await;
    b.start().await;
    (a, b)
}
