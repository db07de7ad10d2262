//! The one HTTP client payglot uses to reach providers and merchants: pooled hyper-util
//! clients (HTTP and HTTPS through rustls), one pool per connect timeout, bounded answers, and
//! errors classified by whether the other side may have seen the request.

use crate::dialects::ProviderRequest;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Answers larger than this are refused: no provider answer or merchant ack needs more.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why a call did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection was made: the request certainly did not reach the other side.
    Connect(String),
    /// Sent, but no answer in time: the other side may have acted on it.
    Timeout,
    /// Any other failure after the connection was made.
    Failed(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "could not connect: {e}"),
            UpstreamError::Timeout => write!(f, "no answer in time"),
            UpstreamError::Failed(e) => write!(f, "request failed: {e}"),
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Pooled clients, one per connect timeout (accounts with the same timeout share a pool).
pub struct Upstream {
    clients: Mutex<HashMap<u64, HttpsClient>>,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    pub fn new() -> Self {
        Upstream { clients: Mutex::new(HashMap::new()) }
    }

    fn client(&self, connect_timeout_ms: u64) -> HttpsClient {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(connect_timeout_ms)
            .or_insert_with(|| {
                let mut http = HttpConnector::new();
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
            })
            .clone()
    }

    /// Sends a dialect's request to `base_url` + its path.
    pub async fn call_provider(
        &self,
        base_url: &str,
        request: &ProviderRequest,
        connect_timeout_ms: u64,
        timeout_ms: u64,
    ) -> Result<Answer, UpstreamError> {
        let url = format!("{base_url}{}", request.path);
        let headers: Vec<(&str, &str)> = request.content_type.iter().map(|ct| ("content-type", *ct)).collect();
        self.send(request.method, &url, &headers, request.body.clone(), connect_timeout_ms, timeout_ms).await
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
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| UpstreamError::Connect(format!("bad request for {url}: {e}")))?;
        let client = self.client(connect_timeout_ms);
        let exchange = async {
            let response = client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    UpstreamError::Connect(error_chain(&e))
                } else {
                    UpstreamError::Failed(error_chain(&e))
                }
            })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| UpstreamError::Failed(format!("reading answer: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await.unwrap_or(Err(UpstreamError::Timeout))
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
