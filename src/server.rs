//! The hyper service: which door a request enters (merchant API under `/v1/`, provider
//! callbacks under `/callbacks/`), body limits, and the accept loop.

use crate::api::error::ApiError;
use crate::config::reload::ConfigHandle;
use crate::store::Store;
use crate::upstream::Upstream;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How much of a too-large body is read (and dropped) before the 413 is sent.
const DRAIN_BYTES: usize = 1 << 20;

/// What every request handler works with: live config, store, upstream client.
pub struct Gateway {
    pub config: Arc<ConfigHandle>,
    pub store: Arc<dyn Store>,
    pub upstream: Arc<Upstream>,
    /// Woken when an event is written, so the delivery worker sends it at once.
    pub outbox_wake: Arc<Notify>,
    /// Providers' rate limits, shared by all merchants.
    pub limits: crate::upstream::RateLimits,
    /// The last balance each account reported: (fen, unix seconds), served inside the
    /// provider's balance interval.
    pub balances: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    /// Timeline entries waiting to be written (a background task flushes them in batches).
    pub timeline: std::sync::Mutex<Vec<crate::model::TimelineEntry>>,
    /// Upstream calls noted in the last second or two, so a payment polled many times a second
    /// gets one timeline line per second for the same call and outcome, not one per poll.
    pub recent_calls: std::sync::Mutex<RecentKeys>,
}

/// A set that forgets: keys seen in the current or the previous period (one second).
#[derive(Default)]
pub struct RecentKeys {
    hasher: std::hash::RandomState,
    current: std::collections::HashSet<u64>,
    previous: std::collections::HashSet<u64>,
    period_started: Option<std::time::Instant>,
}

impl RecentKeys {
    /// `true` when `key` was not seen in the last period or two (and remembers it).
    pub fn first_in_a_while(&mut self, key: impl std::hash::Hash, now: std::time::Instant) -> bool {
        use std::hash::BuildHasher;
        if self.period_started.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
            self.previous = std::mem::take(&mut self.current);
            self.period_started = Some(now);
        }
        let h = self.hasher.hash_one(key);
        !self.previous.contains(&h) && self.current.insert(h)
    }
}

impl Gateway {
    /// Notes a line of a payment's (or payout's) timeline.
    pub fn note(&self, subject: &str, kind: &str, detail: serde_json::Value) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let entry = crate::model::TimelineEntry { subject: subject.to_string(), at_ms, kind: kind.to_string(), detail };
        let mut buffer = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
        // A store that is down must not grow this without bound: the timeline is best effort.
        if buffer.len() < 100_000 {
            buffer.push(entry);
        }
    }

    /// Writes the noted timeline entries; runs until `shutdown`, flushing once more at the end.
    pub async fn flush_timeline(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => false,
                _ = shutdown.changed() => true,
            };
            let batch: Vec<_> = std::mem::take(&mut *self.timeline.lock().unwrap_or_else(|p| p.into_inner()));
            if !batch.is_empty() {
                if let Err(e) = self.store.append_timeline(batch).await {
                    tracing::warn!(error = %e, "timeline entries dropped");
                }
            }
            if stop {
                return;
            }
        }
    }
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
        // serde_json::to_string writes into one buffer; Value's Display goes through fmt, twice
        // as slow on the hot path.
        Reply { status, content_type: "application/json", body: serde_json::to_string(value).unwrap_or_default() }
    }

    pub fn error(e: &ApiError) -> Self {
        Reply { status: e.status, content_type: "application/json", body: e.body() }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() =
            hyper::StatusCode::from_u16(self.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        response
    }
}

/// Reads a request's body, refusing more than `limit` bytes.
pub async fn read_request(req: Request<Incoming>, limit: usize) -> Result<HttpIn, ApiError> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Read a modest excess before answering, so a client still sending gets the 413
        // rather than a reset connection; a huge body is refused at once.
        if declared.is_some_and(|n| n <= DRAIN_BYTES as u64) {
            let _ = Limited::new(req.into_body(), DRAIN_BYTES).collect().await;
        }
        return Err(ApiError::body_too_large(limit));
    }
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                ApiError::body_too_large(limit)
            } else {
                ApiError::invalid_request(format!("could not read the request body: {e}"))
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

/// The request id: the caller's `X-Request-Id` when it is a sane one, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::model::random_id("req_", 20))
}

async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let id = request_id(req.headers());
    let mut response = route(gateway, req, &id).await.into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn route(gateway: Arc<Gateway>, req: Request<Incoming>, request_id: &str) -> Reply {
    let started = std::time::Instant::now();
    let request = match read_request(req, MAX_BODY_BYTES).await {
        Ok(r) => r,
        Err(e) => return Reply::error(&e),
    };
    let reply = if request.path.starts_with("/v1/") || request.path == "/v1" {
        crate::api::handle(&gateway, &request).await
    } else if request.path.starts_with("/compat/") {
        crate::compat::handle(&gateway, &request).await
    } else if let Some(account) = request.path.strip_prefix("/callbacks/") {
        crate::callbacks::inbound::handle(&gateway, account, &request).await
    } else {
        Reply::error(&ApiError::not_found(format!("no such endpoint: {} {}", request.method, request.path)))
    };
    tracing::info!(
        request_id,
        merchant = request.header("payglot-merchant").unwrap_or("-"),
        method = %request.method,
        path = %request.path,
        status = reply.status,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    reply
}

/// Serves HTTP/1.1 on `listener` with `service` until `shutdown` turns true, then stops
/// accepting and lets requests in flight finish (at most 10 s) before returning. Connections
/// are dropped at once if this future is dropped or aborted.
pub async fn serve_http<F, Fut>(listener: TcpListener, service: F, mut shutdown: watch::Receiver<bool>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let service = service.clone();
                    async move { Ok::<_, std::convert::Infallible>(service(req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                connections.spawn(async move {
                    let _ = conn.await;
                });
            }
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

/// The gateway's public listener: merchant API and provider callbacks.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>, shutdown: watch::Receiver<bool>) {
    serve_http(
        listener,
        move |req| {
            let gateway = gateway.clone();
            async move { handle(gateway, req).await }
        },
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::RecentKeys;
    use std::time::{Duration, Instant};

    #[test]
    fn recent_keys_take_a_key_once_a_second() {
        let mut recent = RecentKeys::default();
        let t0 = Instant::now();
        assert!(recent.first_in_a_while("a", t0));
        assert!(!recent.first_in_a_while("a", t0 + Duration::from_millis(500)));
        assert!(recent.first_in_a_while("b", t0 + Duration::from_millis(500)));
        assert!(!recent.first_in_a_while("a", t0 + Duration::from_millis(1500)), "still in the previous period");
        assert!(recent.first_in_a_while("a", t0 + Duration::from_millis(3100)), "forgotten after two periods");
    }
}
