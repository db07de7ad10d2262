//! The admin listener (loopback by default): `/healthz`, `/readyz` (config loaded and store
//! answering), `/metrics` (Prometheus text: merchant API requests by merchant, operation and
//! outcome; upstream calls and latency by provider account; callbacks by verdict; deliveries;
//! outbox depth; config reloads; circuit states), `GET /admin/config` (the live config, every secret redacted),
//! `GET /admin/circuits` (each provider account's circuit breaker), `POST /admin/reload`,
//! `GET /admin/payments/{payment_id}` (the payment with its events and timeline: provider calls
//! with status and latency, callbacks with their verdict, notification attempts),
//! `GET /admin/events?merchant=&status=pending|failed|delivered` with
//! `POST /admin/events/{id}/replay`, and
//! `GET /admin/reconcile?provider=ID&date=YYYY-MM-DD` (`POST ...&settle=true` settles missed
//! payments).

use crate::server::{read_request, serve_http, Gateway, Reply};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::Arc;
use std::sync::OnceLock;
use tokio::net::TcpListener;
use tokio::sync::watch;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Health checks are open; everything else needs the admin token when one is configured.
fn authorized(gateway: &Gateway, request: &crate::server::HttpIn) -> bool {
    if matches!(request.path.as_str(), "/healthz" | "/readyz") {
        return true;
    }
    let live = gateway.config.current();
    let Some(token) = &live.config.admin_token else { return true };
    let given = request.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
    crate::dialects::signing::same_signature(token.expose(), given)
}

/// Installs the process's Prometheus recorder (once); every `metrics::` call records into it.
pub fn install_metrics() {
    METRICS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .expect("buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (tests in one process): keep ours local then.
        let _ = metrics::set_global_recorder(recorder);
        handle
    });
}

/// The metrics in Prometheus text format, with gauges read now.
async fn render_metrics(gateway: &Gateway) -> String {
    if let Ok(depth) = gateway.store.outbox_depth().await {
        metrics::gauge!("payglot_outbox_depth").set(depth as f64);
    }
    metrics::counter!("payglot_config_reloads_total")
        .absolute(gateway.config.reloads.load(std::sync::atomic::Ordering::Relaxed));
    metrics::counter!("payglot_config_reload_failures_total")
        .absolute(gateway.config.reload_failures.load(std::sync::atomic::Ordering::Relaxed));
    for (provider, state, _) in gateway.upstream.circuits() {
        let open = match state {
            "open" => 1.0,
            "half_open" => 0.5,
            _ => 0.0,
        };
        metrics::gauge!("payglot_circuit_open", "provider" => provider).set(open);
    }
    METRICS.get().map(|h| h.render()).unwrap_or_default()
}

async fn handle(gateway: &Gateway, method: &str, path: &str, query: &str) -> Reply {
    match (method, path) {
        ("GET", "/admin/events") => {
            let q: std::collections::HashMap<String, String> =
                form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).min(1000);
            match gateway
                .store
                .list_events(q.get("merchant").map(String::as_str), q.get("status").map(String::as_str), limit)
                .await
            {
                Ok(events) => Reply::json(200, &json!({"events": events})),
                Err(e) => Reply::json(503, &json!({"error": {"code": "store_unavailable", "message": e.to_string()}})),
            }
        }
        ("POST", p) if p.starts_with("/admin/events/") && p.ends_with("/replay") => {
            let id = &p["/admin/events/".len()..p.len() - "/replay".len()];
            match gateway.store.replay_event(id, crate::model::now_unix()).await {
                Ok(true) => {
                    gateway.outbox_wake.notify_one();
                    Reply::json(200, &json!({"replayed": id}))
                }
                Ok(false) => {
                    Reply::json(404, &json!({"error": {"code": "not_found", "message": format!("no event {id}")}}))
                }
                Err(e) => Reply::json(503, &json!({"error": {"code": "store_unavailable", "message": e.to_string()}})),
            }
        }
        ("GET", p) if p.starts_with("/admin/payments/") => {
            let id = &p["/admin/payments/".len()..];
            let payment = gateway.store.payment_by_id(id).await;
            let payout = gateway.store.payout_by_id(id).await;
            let (events, timeline) = (gateway.store.events_for_payment(id).await, gateway.store.timeline(id).await);
            match (payment, payout, events, timeline) {
                (Ok(payment), Ok(payout), Ok(events), Ok(timeline)) if payment.is_some() || payout.is_some() => {
                    let events: Vec<_> = events
                        .into_iter()
                        .map(|(e, state)| json!({"id": e.id, "kind": e.kind, "state": state.as_str(), "attempts": e.attempts}))
                        .collect();
                    Reply::json(
                        200,
                        &json!({
                            "payment": payment.map(|p| p.to_merchant_json()),
                            "payout": payout.map(|p| p.to_merchant_json()),
                            "events": events,
                            "timeline": timeline,
                        }),
                    )
                }
                (Ok(_), Ok(_), Ok(_), Ok(_)) => Reply::json(
                    404,
                    &json!({"error": {"code": "not_found", "message": format!("no payment or payout {id}")}}),
                ),
                _ => Reply::json(
                    503,
                    &json!({"error": {"code": "store_unavailable", "message": "the store is unavailable"}}),
                ),
            }
        }
        ("GET", "/openapi.yaml") => {
            Reply { status: 200, content_type: "application/yaml", body: crate::api::OPENAPI.to_string() }
        }
        ("GET", "/metrics") => {
            Reply { status: 200, content_type: "text/plain; version=0.0.4", body: render_metrics(gateway).await }
        }
        ("GET" | "POST", "/admin/reconcile") => {
            let q: std::collections::HashMap<String, String> =
                form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let (Some(provider), Some(date)) = (q.get("provider"), q.get("date")) else {
                return Reply::json(
                    400,
                    &json!({"error": {"code": "invalid_request", "message": "provider and date (YYYY-MM-DD) are required"}}),
                );
            };
            // Settling changes state: POST only.
            let settle = method == "POST" && q.get("settle").map(String::as_str) == Some("true");
            let live = gateway.config.current();
            match crate::callbacks::reconcile::reconcile(
                gateway,
                &live,
                provider,
                date,
                settle,
                crate::model::now_unix(),
            )
            .await
            {
                Ok(report) => Reply::json(200, &json!(report)),
                Err(e) => Reply::json(400, &json!({"error": {"code": "invalid_request", "message": e}})),
            }
        }
        ("GET", "/healthz") => Reply::json(200, &json!({"status": "ok"})),
        ("GET", "/readyz") => match gateway.store.ping().await {
            Ok(()) => Reply::json(200, &json!({"status": "ready"})),
            Err(e) => Reply::json(503, &json!({"status": "not_ready", "reason": e.to_string()})),
        },
        ("GET", "/admin/config") => {
            let live = gateway.config.current();
            Reply::json(
                200,
                &json!({
                    "source": live.source.display().to_string(),
                    "loaded_at": crate::model::rfc3339(live.loaded_at),
                    "last_reload_error": gateway.config.last_error(),
                    "reloads": gateway.config.reloads.load(std::sync::atomic::Ordering::Relaxed),
                    "reload_failures": gateway.config.reload_failures.load(std::sync::atomic::Ordering::Relaxed),
                    "config": live.config,
                }),
            )
        }
        ("GET", "/admin/circuits") => {
            let circuits: Vec<_> = gateway
                .upstream
                .circuits()
                .into_iter()
                .map(|(account, state, failures)| json!({"provider": account, "state": state, "consecutive_failures": failures}))
                .collect();
            Reply::json(200, &json!({"circuits": circuits}))
        }
        ("POST", "/admin/reload") => match gateway.config.reload("admin").await {
            Ok(()) => Reply::json(200, &json!({"reloaded": true})),
            Err(errors) => Reply::json(422, &json!({"reloaded": false, "errors": errors.lines().collect::<Vec<_>>()})),
        },
        _ => Reply::json(
            404,
            &json!({"error": {"code": "not_found", "message": format!("no such admin endpoint: {method} {path}")}}),
        ),
    }
}

/// Serves the admin endpoints until `shutdown` turns true.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>, shutdown: watch::Receiver<bool>) {
    let limits = gateway.config.current().config.server.clone();
    let body_timeout = std::time::Duration::from_millis(limits.body_read_timeout_ms);
    serve_http(
        listener,
        limits,
        move |req| {
            let gateway = gateway.clone();
            async move {
                match read_request(req, 4096, body_timeout).await {
                    Ok(r) if !authorized(&gateway, &r) => Reply::json(
                        401,
                        &json!({"error": {"code": "unauthorized", "message": "Authorization: Bearer <admin_token> required"}}),
                    )
                    .into_response(),
                    Ok(r) => handle(&gateway, &r.method, &r.path, &r.query).await.into_response(),
                    Err(e) => Reply::error(&e).into_response(),
                }
            }
        },
        shutdown,
    )
    .await
}
