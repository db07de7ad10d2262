//! HTTP plumbing with no knowledge of payglot's doors: a request with its whole body read
//! (bounded in size and time), a reply, and the serve loop that bounds slow and idle
//! connections.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// Connection limits of every listener (`server:`): slow or idle clients are cut off, and
/// the number of open connections is capped below the process's file descriptor limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerConfig {
    /// A new connection must send its first request head within this.
    pub header_read_timeout_ms: u64,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout_ms: u64,
    /// A request body must arrive within this (else 408).
    pub body_read_timeout_ms: u64,
    /// Open connections per listener; at the cap the longest-idle one makes room.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            body_read_timeout_ms: 30_000,
            max_connections: 10_000,
        }
    }
}

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How much of a too-large body is read (and dropped) before the 413 is sent.
const DRAIN_BYTES: usize = 1 << 20;

/// Why a request's body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (bytes).
    TooLarge(usize),
    /// Slower than the limit.
    Timeout(Duration),
    /// The connection failed while reading.
    Read(String),
}

/// A request with its whole body read.
#[derive(Debug)]
pub struct HttpIn {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpIn {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// A response before it becomes a hyper response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        // Written by serde_json into one buffer; Value's Display goes through fmt, twice as
        // slow on the hot path.
        Reply::json_of(status, value)
    }

    /// A JSON answer written straight from a serializable view (no intermediate map).
    pub fn json_of(status: u16, value: &impl serde::Serialize) -> Self {
        // A payment's JSON is 400–900 bytes: one allocation instead of growing from 128.
        let mut body = Vec::with_capacity(1024);
        let body = match serde_json::to_writer(&mut body, value) {
            Ok(()) => String::from_utf8(body).unwrap_or_default(),
            Err(_) => String::new(),
        };
        Reply { status, content_type: "application/json", body }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() =
            hyper::StatusCode::from_u16(self.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        response
    }
}

/// Reads a request's body, refusing more than `limit` bytes or a body slower than `timeout`
/// (408).
pub async fn read_request(req: Request<Incoming>, limit: usize, timeout: Duration) -> Result<HttpIn, BodyError> {
    match tokio::time::timeout(timeout, read_whole(req, limit)).await {
        Ok(read) => read,
        Err(_) => Err(BodyError::Timeout(timeout)),
    }
}

async fn read_whole(req: Request<Incoming>, limit: usize) -> Result<HttpIn, BodyError> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Read a modest excess before answering, so a client still sending gets the 413
        // rather than a reset connection; a huge body is refused at once.
        if declared.is_some_and(|n| n <= DRAIN_BYTES as u64) {
            let _ = Limited::new(req.into_body(), DRAIN_BYTES).collect().await;
        }
        return Err(BodyError::TooLarge(limit));
    }
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                BodyError::TooLarge(limit)
            } else {
                BodyError::Read(e.to_string())
            }
        })?
        .to_bytes();
    Ok(HttpIn {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    })
}

/// What handling a request learnt, for its log line and its duration metric: the merchant it
/// turned out to be for (a front door's school, a callback's payment), the error code of a
/// refusal, and the door and operation it was.
#[derive(Debug, Default, Clone)]
pub struct Noted {
    pub merchant: Option<String>,
    pub code: Option<String>,
    /// (door, operation): door `merchant_api`, `callbacks` or a front door's dialect.
    pub operation: Option<(&'static str, &'static str)>,
}

tokio::task_local! {
    static NOTES: Arc<std::sync::Mutex<Noted>>;
}

/// Runs a request's handling; the answer comes with what the handling noted.
pub async fn with_notes<F: std::future::Future>(work: F) -> (F::Output, Noted) {
    let notes: Arc<std::sync::Mutex<Noted>> = Default::default();
    let output = NOTES.scope(notes.clone(), work).await;
    let noted = notes.lock().map(|n| n.clone()).unwrap_or_default();
    (output, noted)
}

/// Changes the current request's notes (outside a request: nothing).
fn note(change: impl FnOnce(&mut Noted)) {
    let _ = NOTES.try_with(|n| {
        if let Ok(mut noted) = n.lock() {
            change(&mut noted);
        }
    });
}

/// Notes the merchant the current request is for.
pub fn note_merchant(merchant: &str) {
    note(|n| n.merchant = Some(merchant.to_string()));
}

/// Notes the error code the current request is refused with.
pub fn note_error_code(code: &str) {
    note(|n| n.code = Some(code.to_string()));
}

/// Notes which door and operation the current request is, for
/// `payglot_request_duration_seconds{door, operation}`.
pub fn note_operation(door: &'static str, operation: &'static str) {
    note(|n| n.operation = Some((door, operation)));
}

/// The request id: the caller's `X-Request-Id` when it is a sane one, else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::model::random_id("req_", 20))
}

/// One open connection, as the serve loop's tracker sees it.
struct Conn {
    opened: std::time::Instant,
    /// Requests being handled now.
    in_flight: std::sync::atomic::AtomicU32,
    /// Requests answered so far.
    served: std::sync::atomic::AtomicU64,
    /// Milliseconds after `opened` when the last request was answered.
    idle_since_ms: std::sync::atomic::AtomicU64,
    /// Set once the connection was told to close (it is then no longer counted).
    closing: std::sync::atomic::AtomicBool,
    close: Notify,
}

impl Conn {
    /// When it became idle, if it has no request in flight.
    fn idle_since(&self) -> Option<std::time::Instant> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.in_flight.load(Relaxed) > 0 || self.closing.load(Relaxed) {
            return None;
        }
        Some(self.opened + std::time::Duration::from_millis(self.idle_since_ms.load(Relaxed)))
    }

    fn shut(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::Relaxed);
        self.close.notify_one();
    }
}

/// The open connections of one listener: a sweeper closes slow and idle ones, and at the cap
/// the longest-idle one makes room for a new one (so slow clients cannot crowd out a request
/// that arrives whole).
#[derive(Default)]
struct Tracker {
    conns: std::sync::Mutex<std::collections::HashMap<u64, Arc<Conn>>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Arc::new(Conn {
            opened: std::time::Instant::now(),
            in_flight: Default::default(),
            served: Default::default(),
            idle_since_ms: Default::default(),
            closing: Default::default(),
            close: Notify::new(),
        });
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    /// Connections that are open and not told to close.
    fn live(&self) -> usize {
        self.lock().values().filter(|c| !c.closing.load(std::sync::atomic::Ordering::Relaxed)).count()
    }

    /// Tells the connection idle for longest to close; `false` when every one is busy.
    fn evict_longest_idle(&self) -> bool {
        let conns = self.lock();
        match conns.values().filter_map(|c| c.idle_since().map(|t| (t, c))).min_by_key(|(t, _)| *t) {
            Some((_, c)) => {
                c.shut();
                true
            }
            None => false,
        }
    }

    /// Closes connections that sent no request head in time or sat idle too long.
    fn sweep(&self, limits: &ServerConfig) {
        let now = std::time::Instant::now();
        let header = std::time::Duration::from_millis(limits.header_read_timeout_ms);
        let idle = std::time::Duration::from_millis(limits.idle_timeout_ms);
        for c in self.lock().values() {
            let Some(since) = c.idle_since() else { continue };
            let first = c.served.load(std::sync::atomic::Ordering::Relaxed) == 0;
            if now.duration_since(since) >= if first { header } else { idle } {
                c.shut();
            }
        }
    }
}

/// Whether an accept error means the process ran out of file descriptors or memory: the
/// listener stays readable, so retrying at once would spin.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// The connection cap actually used: the configured one, kept below the process's open file
/// limit (which also has to hold the store, provider connections and the other listeners).
pub fn connection_cap(configured: usize) -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given and has no other effect.
    let fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    configured.min((fds.saturating_mul(3) / 4).max(16))
}

/// Serves HTTP/1.1 on `listener` with `service` until `shutdown` turns true, then stops
/// accepting and lets requests in flight finish (at most 10 s) before returning. Connections
/// are dropped at once if this future is dropped or aborted.
///
/// Slow clients are bounded by `limits`: a request head must come within
/// `header_read_timeout_ms` of connecting, an idle keep-alive connection is closed after
/// `idle_timeout_ms`, and at `max_connections` (kept below the file descriptor limit) the
/// connection idle for longest is closed to make room. Accept errors from running out of
/// descriptors back off (10 ms doubling to 1 s) instead of spinning.
pub async fn serve_http<F, Fut>(
    listener: TcpListener,
    limits: ServerConfig,
    service: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    use std::sync::atomic::Ordering::Relaxed;
    let cap = connection_cap(limits.max_connections);
    let tracker = Arc::new(Tracker::default());
    let mut connections = JoinSet::new();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut sweep = tokio::time::interval(std::time::Duration::from_millis(250));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let min_backoff = std::time::Duration::from_millis(10);
    let mut backoff = min_backoff;
    // hyper's own header timer also covers a request head trickled on a kept-alive connection.
    let head_timeout = std::time::Duration::from_millis(limits.header_read_timeout_ms.max(limits.idle_timeout_ms));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        backoff = min_backoff;
                        stream
                    }
                    Err(e) if out_of_resources(&e) => {
                        metrics::counter!("payglot_accept_errors_total", "kind" => "resources").increment(1);
                        tracker.evict_longest_idle();
                        tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "cannot accept connections; backing off");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                        continue;
                    }
                    Err(_) => continue,
                };
                if tracker.live() >= cap && !tracker.evict_longest_idle() {
                    // Every connection is busy with a request: refuse this one.
                    metrics::counter!("payglot_connections_refused_total").increment(1);
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let (id, conn_state) = tracker.open();
                let service = service.clone();
                let state = conn_state.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let service = service.clone();
                    let state = state.clone();
                    state.in_flight.fetch_add(1, Relaxed);
                    async move {
                        let response = service(req).await;
                        state.served.fetch_add(1, Relaxed);
                        state.idle_since_ms.store(state.opened.elapsed().as_millis() as u64, Relaxed);
                        state.in_flight.fetch_sub(1, Relaxed);
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(head_timeout)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                let tracker = tracker.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_state.close.notified() => {}
                    }
                    tracker.lock().remove(&id);
                });
            }
            _ = sweep.tick() => tracker.sweep(&limits),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // Stop accepting; let requests in flight finish (bounded), closing idle connections.
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after 10 s of shutdown were cut");
    }
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
