//! Which door a request enters: the merchant API under `/v1/`, the provider-compatible front
//! doors under `/compat/`, provider callbacks under `/callbacks/`; one log line per request.

use crate::app::Gateway;
use crate::core::error::ApiError;
use crate::http::{read_request, request_id, serve_http, Reply, MAX_BODY_BYTES};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let id = request_id(req.headers());
    // Every line the request causes (warnings and errors too) carries its id.
    let span = tracing::info_span!("request", request_id = %id);
    let uri = req.uri().clone();
    let mut response = tracing::Instrument::instrument(route(gateway, req), span).await.into_response();
    if response.status() == hyper::StatusCode::METHOD_NOT_ALLOWED {
        // RFC 9110: a 405 names the methods the path takes.
        if let Some(allow) = crate::doors::merchant_api::allowed_methods(uri.path()).and_then(|a| a.parse().ok()) {
            response.headers_mut().insert(hyper::header::ALLOW, allow);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn route(gateway: Arc<Gateway>, req: Request<Incoming>) -> Reply {
    let started = std::time::Instant::now();
    let timeout = Duration::from_millis(gateway.config.current().config.server.body_read_timeout_ms);
    let request = match read_request(req, MAX_BODY_BYTES, timeout).await {
        Ok(r) => r,
        Err(e) => return Reply::error(&e.into()),
    };
    let handling = std::time::Instant::now();
    let (reply, notes) = crate::http::with_notes(dispatch(&gateway, &request)).await;
    if let Some((door, operation)) = notes.operation {
        metrics::histogram!("payglot_request_duration_seconds", "door" => door, "operation" => operation)
            .record(handling.elapsed().as_secs_f64());
    }
    // The merchant as the handling found it (a door's school, a callback's payment), else
    // the header a merchant API request names.
    let merchant = notes.merchant.or_else(|| request.header("payglot-merchant").map(str::to_string));
    tracing::info!(
        merchant = %merchant.as_deref().unwrap_or("-"),
        method = %request.method,
        path = %request.path,
        status = reply.status,
        code = %notes.code.as_deref().unwrap_or("-"),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    reply
}

/// The door a request is for.
async fn dispatch(gateway: &Gateway, request: &crate::http::HttpIn) -> Reply {
    // Each door's future is boxed: they are kilobytes, and an unboxed one is copied into every
    // future that awaits it (callgrind: 37,000 instructions of memcpy a query).
    if request.path.starts_with("/v1/") || request.path == "/v1" {
        Box::pin(crate::doors::merchant_api::handle(gateway, request)).await
    } else if request.path.starts_with("/compat/") {
        Box::pin(crate::doors::compat::handle(gateway, request)).await
    } else if let Some(account) = request.path.strip_prefix("/callbacks/") {
        crate::http::note_operation("callbacks", "callback");
        Box::pin(crate::doors::callbacks::handle(gateway, account, request)).await
    } else {
        Reply::error(&ApiError::not_found(format!("no such endpoint: {} {}", request.method, request.path)))
    }
}

/// The gateway's public listener: merchant API and provider callbacks.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>, shutdown: watch::Receiver<bool>) {
    let limits = gateway.config.current().config.server.clone();
    serve_http(
        listener,
        limits,
        move |req| {
            let gateway = gateway.clone();
            async move { handle(gateway, req).await }
        },
        shutdown,
    )
    .await
}
