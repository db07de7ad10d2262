//! The one HTTP client payglot uses to reach providers and merchants: pooled hyper-util
//! clients (HTTP and HTTPS through rustls), one pool per connect timeout, bounded answers, and
//! errors classified by whether the other side may have seen the request. Calls to a provider
//! account also pass its circuit breaker and its connection limit.

use crate::dialects::ProviderConfig;
use crate::dialects::ProviderRequest;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers larger than this are refused: no provider answer or merchant ack needs more.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
/// The client of notifications to merchants without `allow_private_notify`: it connects to
/// public addresses only (see `egress`).
type PublicClient = Client<HttpsConnector<HttpConnector<crate::egress::PublicOnly>>, Full<Bytes>>;

fn build_client<R>(
    mut http: HttpConnector<R>,
    connect_timeout_ms: u64,
) -> Client<HttpsConnector<HttpConnector<R>>, Full<Bytes>>
where
    HttpsConnector<HttpConnector<R>>: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_millis(connect_timeout_ms)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build(https)
}

/// Why a call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection was made: the request certainly did not reach the other side.
    Connect(String),
    /// Sent, but no answer in time: the other side may have acted on it.
    Timeout,
    /// Any other failure after the connection was made.
    Failed(String),
    /// The account's circuit is open: not sent.
    CircuitOpen,
    /// The account's connection limit was reached and no slot freed in time: not sent.
    Busy,
}

impl UpstreamError {
    /// Whether the request certainly never reached the provider (so another may take it).
    pub fn not_sent(&self) -> bool {
        matches!(self, UpstreamError::Connect(_) | UpstreamError::CircuitOpen | UpstreamError::Busy)
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "could not connect: {e}"),
            UpstreamError::Timeout => write!(f, "no answer in time"),
            UpstreamError::Failed(e) => write!(f, "request failed: {e}"),
            UpstreamError::CircuitOpen => write!(f, "circuit open after repeated failures; not called"),
            UpstreamError::Busy => write!(f, "connection limit reached; not called"),
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Pooled clients, one per connect timeout (accounts with the same timeout share a pool), and
/// the circuit and connection limit of each provider account.
pub struct Upstream {
    clients: Mutex<HashMap<u64, HttpsClient>>,
    public_only: std::sync::OnceLock<PublicClient>,
    accounts: Mutex<HashMap<String, Arc<AccountGuard>>>,
}

/// An account's last calls: whether each was answered below 500, and how long it took.
#[derive(Debug, Clone, Default)]
struct RecentCalls {
    calls: std::collections::VecDeque<(bool, u32)>,
}

/// What an account's recent calls looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallStats {
    pub calls: usize,
    pub failures: usize,
    pub p50_ms: u32,
    pub p95_ms: u32,
}

impl RecentCalls {
    const KEPT: usize = 200;

    fn push(&mut self, healthy: bool, took: Duration) {
        if self.calls.len() == Self::KEPT {
            self.calls.pop_front();
        }
        self.calls.push_back((healthy, u32::try_from(took.as_millis()).unwrap_or(u32::MAX)));
    }

    fn stats(&self) -> CallStats {
        let mut latencies: Vec<u32> = self.calls.iter().map(|(_, ms)| *ms).collect();
        latencies.sort_unstable();
        let at = |q: usize| latencies.get((latencies.len() * q / 100).min(latencies.len().saturating_sub(1))).copied();
        CallStats {
            calls: self.calls.len(),
            failures: self.calls.iter().filter(|(ok, _)| !ok).count(),
            p50_ms: at(50).unwrap_or(0),
            p95_ms: at(95).unwrap_or(0),
        }
    }
}

/// Per provider account: its breaker and its connection limit.
pub struct AccountGuard {
    pub breaker: Breaker,
    /// The account's last calls, for the console.
    recent: Mutex<RecentCalls>,
    slots: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    pub fn new() -> Self {
        Upstream {
            clients: Mutex::new(HashMap::new()),
            public_only: std::sync::OnceLock::new(),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, connect_timeout_ms: u64) -> HttpsClient {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(connect_timeout_ms)
            .or_insert_with(|| build_client(HttpConnector::new(), connect_timeout_ms))
            .clone()
    }

    fn guard(&self, account: &ProviderConfig) -> Arc<AccountGuard> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = || {
            Arc::new(AccountGuard {
                breaker: Breaker::default(),
                recent: Mutex::default(),
                slots: Arc::new(tokio::sync::Semaphore::new(account.max_connections)),
                max_connections: account.max_connections,
            })
        };
        let guard = accounts.entry(account.name.clone()).or_insert_with(fresh);
        if guard.max_connections != account.max_connections {
            // A reload changed the limit: new slots, same breaker history.
            let breaker = guard.breaker.snapshot_clone();
            let recent = Mutex::new(guard.recent.lock().unwrap_or_else(|p| p.into_inner()).clone());
            *guard = Arc::new(AccountGuard {
                breaker,
                recent,
                slots: Arc::new(tokio::sync::Semaphore::new(account.max_connections)),
                max_connections: account.max_connections,
            });
        }
        guard.clone()
    }

    /// The circuit state of every account called so far: (account, state, consecutive failures).
    pub fn circuits(&self) -> Vec<(String, &'static str, u32)> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> =
            accounts.iter().map(|(k, g)| (k.clone(), g.breaker.state_name(), g.breaker.failures())).collect();
        out.sort();
        out
    }

    /// Each account's last calls (at most `RecentCalls::KEPT`): how many, how many failed, and
    /// their median and 95th-percentile latency.
    pub fn recent_calls(&self) -> Vec<(String, CallStats)> {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = accounts
            .iter()
            .map(|(k, g)| (k.clone(), g.recent.lock().unwrap_or_else(|p| p.into_inner()).stats()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Sends a dialect's request to a provider account: through its circuit breaker and its
    /// connection limit, with its timeouts. A 5xx answer counts as a failure for the breaker.
    pub async fn call_provider(
        &self,
        account: &ProviderConfig,
        request: &ProviderRequest,
    ) -> Result<Answer, UpstreamError> {
        self.call_provider_with(account, request, true).await
    }

    /// As `call_provider`; with `count` false the outcome does not move the breaker (queries
    /// prompted by messages payglot could not verify: whoever sends those must not be able to
    /// open an account's circuit).
    pub async fn call_provider_with(
        &self,
        account: &ProviderConfig,
        request: &ProviderRequest,
        count: bool,
    ) -> Result<Answer, UpstreamError> {
        let guard = self.guard(account);
        let settings = CircuitSettings::of(account);
        if let Err(e) = guard.breaker.admit(std::time::Instant::now(), &settings) {
            metrics::counter!("payglot_upstream_calls_total", "provider" => account.name.clone(), "operation" => "any", "outcome" => "circuit_open").increment(1);
            return Err(e);
        }
        let slot = tokio::time::timeout(
            Duration::from_millis(account.connect_timeout_ms),
            guard.slots.clone().acquire_owned(),
        )
        .await;
        let Ok(Ok(_slot)) = slot else {
            guard.breaker.release_probe();
            return Err(UpstreamError::Busy);
        };
        let url = format!("{}{}", account.base_url, request.path);
        let headers: Vec<(&str, &str)> = request.content_type.iter().map(|ct| ("content-type", *ct)).collect();
        let started = std::time::Instant::now();
        // The path without its query names the operation (`/api/pay/create_order`).
        let operation = request.path.split('?').next().unwrap_or("").to_string();
        let span = crate::telemetry::Span::child("provider.call")
            .attr("provider", account.name.clone())
            .attr("dialect", account.dialect.clone())
            .attr("operation", operation.clone());
        let result = span
            .run(self.send(
                request.method,
                &url,
                &headers,
                request.body.clone(),
                account.connect_timeout_ms,
                account.timeout_ms,
            ))
            .await;
        let healthy = matches!(&result, Ok(a) if a.status < 500);
        guard.recent.lock().unwrap_or_else(|p| p.into_inner()).push(healthy, started.elapsed());
        if count {
            guard.breaker.record(healthy, std::time::Instant::now(), &settings);
        } else {
            guard.breaker.release_probe();
        }
        let outcome = match &result {
            Ok(a) if a.status < 500 => "ok",
            Ok(_) => "http_5xx",
            Err(UpstreamError::Connect(_)) => "connect_error",
            Err(UpstreamError::Timeout) => "timeout",
            Err(_) => "failed",
        };
        if outcome != "ok" {
            span.failed(outcome);
        }
        metrics::counter!("payglot_upstream_calls_total", "provider" => account.name.clone(), "operation" => operation.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("payglot_upstream_latency_seconds", "provider" => account.name.clone(), "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Sends one request and reads the whole answer (at most `MAX_ANSWER_BYTES`).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        connect_timeout_ms: u64,
        timeout_ms: u64,
    ) -> Result<Answer, UpstreamError> {
        let request = Self::request(method, url, headers, body)?;
        Self::exchange(self.client(connect_timeout_ms), request, timeout_ms).await
    }

    /// Sends a notification to a merchant; unless the merchant may be notified on private
    /// addresses, through the client that connects to public addresses only.
    pub async fn send_notification(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        allow_private: bool,
        timeout_ms: u64,
    ) -> Result<Answer, UpstreamError> {
        if allow_private {
            return self.send(method, url, headers, body, 3000, timeout_ms).await;
        }
        let request = Self::request(method, url, headers, body)?;
        let client = self
            .public_only
            .get_or_init(|| build_client(HttpConnector::new_with_resolver(crate::egress::PublicOnly), 3000))
            .clone();
        Self::exchange(client, request, timeout_ms).await
    }

    fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(Full::new(Bytes::from(body))).map_err(|e| {
            let url = crate::secret::redact_url_passwords(url);
            UpstreamError::Connect(format!("bad request for {url}: {e}"))
        })
    }

    async fn exchange<C>(
        client: Client<C, Full<Bytes>>,
        request: Request<Full<Bytes>>,
        timeout_ms: u64,
    ) -> Result<Answer, UpstreamError>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        let exchange = async {
            let response = client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    UpstreamError::Connect(error_chain(&e))
                } else {
                    UpstreamError::Failed(error_chain(&e))
                }
            })?;
            let status = response.status().as_u16();
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| UpstreamError::Failed(format!("reading answer: {e}")))?
                .to_bytes();
            Ok(Answer { status, headers: parts.headers, body })
        };
        tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await.unwrap_or(Err(UpstreamError::Timeout))
    }
}

/// When a provider account's circuit opens and for how long.
#[derive(Debug, Clone, Copy)]
pub struct CircuitSettings {
    pub failures: u32,
    pub open_for: Duration,
}

impl CircuitSettings {
    pub fn of(account: &ProviderConfig) -> Self {
        CircuitSettings { failures: account.circuit_failures, open_for: Duration::from_millis(account.circuit_open_ms) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    /// Calls flow; counts consecutive failures.
    Closed { failures: u32 },
    /// Calls are shed until `until`.
    Open { until: std::time::Instant, failures: u32 },
    /// One probe call is in flight; its outcome closes or reopens the circuit.
    HalfOpen { failures: u32 },
}

/// A circuit breaker: opens after N consecutive failures, sheds calls while open, then lets one
/// probe through (half-open); a healthy probe closes it, a failed one opens it again.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<BreakerState>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { state: Mutex::new(BreakerState::Closed { failures: 0 }) }
    }
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot_clone(&self) -> Breaker {
        Breaker { state: Mutex::new(*self.lock()) }
    }

    /// Lets a call through, or sheds it while the circuit is open.
    pub fn admit(&self, now: std::time::Instant, _settings: &CircuitSettings) -> Result<(), UpstreamError> {
        let mut state = self.lock();
        match *state {
            BreakerState::Closed { .. } => Ok(()),
            BreakerState::Open { until, failures } if now >= until => {
                *state = BreakerState::HalfOpen { failures };
                Ok(())
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => Err(UpstreamError::CircuitOpen),
        }
    }

    /// A probe that was admitted but never sent gives its turn back.
    pub fn release_probe(&self) {
        let mut state = self.lock();
        if let BreakerState::HalfOpen { failures } = *state {
            *state = BreakerState::Open { until: std::time::Instant::now(), failures };
        }
    }

    /// Records the outcome of a call.
    pub fn record(&self, healthy: bool, now: std::time::Instant, settings: &CircuitSettings) {
        let mut state = self.lock();
        *state = match (*state, healthy) {
            (_, true) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, false) if failures + 1 < settings.failures => {
                BreakerState::Closed { failures: failures + 1 }
            }
            (
                BreakerState::Closed { failures }
                | BreakerState::HalfOpen { failures }
                | BreakerState::Open { failures, .. },
                false,
            ) => BreakerState::Open { until: now + settings.open_for, failures: failures + 1 },
        };
    }

    pub fn state_name(&self) -> &'static str {
        match *self.lock() {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }

    pub fn failures(&self) -> u32 {
        match *self.lock() {
            BreakerState::Closed { failures }
            | BreakerState::Open { failures, .. }
            | BreakerState::HalfOpen { failures } => failures,
        }
    }
}

/// An error with its sources, for messages ("client error (Connect): connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Providers' own rate limits (jings: one query per order per minute, one balance query per
/// three minutes), applied across all merchants of this gateway process.
#[derive(Default)]
pub struct RateLimits {
    last_call: Mutex<HashMap<String, std::time::Instant>>,
    /// Fixed windows: (start, calls taken) per key.
    windows: Mutex<HashMap<String, (std::time::Instant, u32)>>,
}

impl RateLimits {
    /// Takes the slot for `key` if its last call is at least `interval` ago; `Err` holds the
    /// time left.
    pub fn try_acquire(&self, key: &str, interval: Duration) -> Result<(), Duration> {
        let mut calls = self.last_call.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if let Some(last) = calls.get(key) {
            let since = now.duration_since(*last);
            if since < interval {
                return Err(interval - since);
            }
        }
        calls.insert(key.to_string(), now);
        // Keep the map small: forget slots older than an hour.
        if calls.len() > 10_000 {
            calls.retain(|_, t| now.duration_since(*t) < Duration::from_secs(3600));
        }
        Ok(())
    }

    /// Takes one of `max` calls `key` has per `window` (a fixed window); `false` when spent.
    pub fn try_take(&self, key: &str, max: u32, window: Duration) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= max {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_sheds_and_half_opens() {
        let b = Breaker::default();
        let s = CircuitSettings { failures: 3, open_for: Duration::from_secs(10) };
        let t0 = std::time::Instant::now();
        for _ in 0..2 {
            assert!(b.admit(t0, &s).is_ok());
            b.record(false, t0, &s);
        }
        assert_eq!(b.state_name(), "closed", "two failures of three");
        b.record(true, t0, &s);
        assert_eq!(b.failures(), 0, "a success resets the count");
        for _ in 0..3 {
            b.record(false, t0, &s);
        }
        assert_eq!(b.state_name(), "open");
        assert_eq!(b.admit(t0 + Duration::from_secs(9), &s), Err(UpstreamError::CircuitOpen));
        // After open_for: one probe, others still shed.
        let later = t0 + Duration::from_secs(10);
        assert!(b.admit(later, &s).is_ok());
        assert_eq!(b.state_name(), "half_open");
        assert_eq!(b.admit(later, &s), Err(UpstreamError::CircuitOpen));
        b.record(false, later, &s);
        assert_eq!(b.state_name(), "open", "a failed probe reopens");
        let again = later + Duration::from_secs(10);
        assert!(b.admit(again, &s).is_ok());
        b.record(true, again, &s);
        assert_eq!(b.state_name(), "closed", "a healthy probe closes");
        assert!(b.admit(again, &s).is_ok());
    }

    #[test]
    fn rate_limits_hold_a_slot_per_key() {
        let limits = RateLimits::default();
        assert!(limits.try_acquire("a", Duration::from_secs(60)).is_ok());
        let left = limits.try_acquire("a", Duration::from_secs(60)).unwrap_err();
        assert!(left > Duration::from_secs(59));
        assert!(limits.try_acquire("b", Duration::from_secs(60)).is_ok());
        assert!(limits.try_acquire("a", Duration::ZERO).is_ok());
    }
}
