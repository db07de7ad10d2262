//! The admin listener (loopback by default): `/livez` (the process answers; no dependency is
//! checked; `/healthz` is its older name), `/readyz` (config loaded and store answering), `/metrics` (Prometheus text: merchant API requests by merchant, operation and
//! outcome; upstream calls and latency by provider account; callbacks by verdict; deliveries;
//! outbox depth; config reloads; circuit states), `GET /admin/config` (the live config, every secret redacted),
//! `GET /admin/circuits` (each provider account's circuit breaker), `POST /admin/reload`,
//! `GET /admin/payments/{payment_id}` (the payment with its events and timeline: provider calls
//! with status and latency, callbacks with their verdict, notification attempts),
//! `GET /admin/events?merchant=&status=pending|failed|delivered` with
//! `POST /admin/events/{id}/replay`, `GET /admin/anomalies?provider=&payment=&since=` (amount
//! mismatches, callbacks from accounts that do not own the payment, payments paid after they
//! were final),
//! `GET /admin/reconcile?provider=ID&date=YYYY-MM-DD` (`POST ...&settle=true` settles missed
//! payments), and `GET /admin/clock` (the gateway's clock; `POST /admin/clock?advance=SECONDS`
//! moves it forward, only on a sandbox gateway with `sandbox.adjustable_clock`). Paths are matched by a router (matchit); a known path with another method is 405
//! with `Allow`. A non-loopback `admin_listen` needs an `admin_token` (checked when the config
//! is validated).

use crate::app::Gateway;
use crate::http::{read_request, serve_http, Reply};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::Arc;
use std::sync::OnceLock;
use tokio::net::TcpListener;
use tokio::sync::watch;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Health checks are open; everything else needs the admin token when one is configured.
fn authorized(gateway: &Gateway, request: &crate::http::HttpIn) -> bool {
    if matches!(request.path.as_str(), "/livez" | "/healthz" | "/readyz") {
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
        metrics::gauge!("payglot_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("PAYGLOT_COMMIT"))
            .set(1.0);
        handle
    });
}

/// The metrics in Prometheus text format, with gauges read now.
async fn render_metrics(gateway: &Gateway) -> String {
    if let Ok(depth) = gateway.store.outbox_depth().await {
        metrics::gauge!("payglot_outbox_depth").set(depth.pending as f64);
        let age = depth.oldest_created_at.map_or(0, |created| (gateway.clock.now() - created).max(0));
        metrics::gauge!("payglot_outbox_oldest_pending_age_seconds").set(age as f64);
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

/// The admin endpoints, by path (matchit) and method.
#[derive(Clone, Copy)]
enum Endpoint {
    Livez,
    Readyz,
    Metrics,
    OpenApi,
    Config,
    Circuits,
    Reload,
    Events,
    ReplayEvent,
    ReplayEvents,
    Anomalies,
    Payment,
    Reconcile,
    Clock,
}

/// Each path with the methods it takes.
const ENDPOINTS: &[(&str, &[&str], Endpoint)] = &[
    ("/livez", &["GET"], Endpoint::Livez),
    ("/healthz", &["GET"], Endpoint::Livez),
    ("/readyz", &["GET"], Endpoint::Readyz),
    ("/metrics", &["GET"], Endpoint::Metrics),
    ("/openapi.yaml", &["GET"], Endpoint::OpenApi),
    ("/admin/config", &["GET"], Endpoint::Config),
    ("/admin/circuits", &["GET"], Endpoint::Circuits),
    ("/admin/reload", &["POST"], Endpoint::Reload),
    ("/admin/events", &["GET"], Endpoint::Events),
    ("/admin/events/{id}/replay", &["POST"], Endpoint::ReplayEvent),
    ("/admin/events/replay", &["POST"], Endpoint::ReplayEvents),
    ("/admin/anomalies", &["GET"], Endpoint::Anomalies),
    ("/admin/payments/{id}", &["GET"], Endpoint::Payment),
    ("/admin/reconcile", &["GET", "POST"], Endpoint::Reconcile),
    ("/admin/clock", &["GET", "POST"], Endpoint::Clock),
];

fn router() -> &'static matchit::Router<usize> {
    static ROUTER: OnceLock<matchit::Router<usize>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut r = matchit::Router::new();
        for (i, (path, _, _)) in ENDPOINTS.iter().enumerate() {
            r.insert(*path, i).expect("admin paths do not overlap");
        }
        r
    })
}

/// The methods a known admin path takes, for a 405's `Allow` header.
fn allowed_methods(path: &str) -> Option<String> {
    let found = router().at(path).ok()?;
    Some(ENDPOINTS[*found.value].1.join(", "))
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::json(status, &json!({"error": {"code": code, "message": message.into()}}))
}

fn store_unavailable(e: impl std::fmt::Display) -> Reply {
    error(503, "store_unavailable", e.to_string())
}

async fn handle(gateway: &Gateway, method: &str, path: &str, query: &str) -> Reply {
    let Ok(found) = router().at(path) else {
        return error(404, "not_found", format!("no such admin endpoint: {method} {path}"));
    };
    let (_, methods, endpoint) = ENDPOINTS[*found.value];
    if !methods.contains(&method) {
        return error(405, "method_not_allowed", format!("{method} is not allowed on {path}"));
    }
    let id = found.params.get("id").unwrap_or("").to_string();
    let q: std::collections::HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    match endpoint {
        Endpoint::Events => {
            let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).min(1000);
            match gateway
                .store
                .list_events(q.get("merchant").map(String::as_str), q.get("status").map(String::as_str), limit)
                .await
            {
                Ok(events) => Reply::json(200, &json!({"events": events})),
                Err(e) => store_unavailable(e),
            }
        }
        Endpoint::ReplayEvents => {
            let merchant = q.get("merchant").cloned().unwrap_or_default();
            let state = match q.get("status").map(String::as_str).unwrap_or("failed") {
                "failed" => crate::store::EventState::Failed,
                "pending" => crate::store::EventState::Pending,
                "delivered" => crate::store::EventState::Delivered,
                other => {
                    return error(
                        400,
                        "invalid_request",
                        format!("status: failed, pending or delivered, not {other:?}"),
                    )
                }
            };
            let time = |name: &str, default: i64| match q.get(name) {
                None => Ok(default),
                Some(t) => crate::model::parse_time(t)
                    .ok_or_else(|| format!("{name}: unix seconds or RFC 3339 (2026-12-01T08:00:00Z), not {t:?}")),
            };
            let (since, until) = match (time("since", 0), time("until", i64::MAX)) {
                (Ok(s), Ok(u)) => (s, u),
                (Err(e), _) | (_, Err(e)) => return error(400, "invalid_request", e),
            };
            if merchant.is_empty() {
                return error(400, "invalid_request", "merchant: which merchant's events to replay");
            }
            match gateway.store.replay_events(&merchant, state, since, until, gateway.clock.now()).await {
                Ok(n) => {
                    tracing::info!(merchant = %merchant, status = state.as_str(), since, until, replayed = n, "events replayed by an operator");
                    gateway.forget_gone();
                    gateway.outbox_wake.notify_one();
                    Reply::json(200, &json!({"replayed": n, "merchant": merchant, "status": state.as_str()}))
                }
                Err(e) => store_unavailable(e),
            }
        }
        Endpoint::ReplayEvent => match gateway.store.replay_event(&id, gateway.clock.now()).await {
            Ok(true) => {
                gateway.forget_gone();
                gateway.outbox_wake.notify_one();
                Reply::json(200, &json!({"replayed": id}))
            }
            Ok(false) => error(404, "not_found", format!("no event {id}")),
            Err(e) => store_unavailable(e),
        },
        Endpoint::Anomalies => {
            let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).min(1000);
            let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0i64);
            let provider = q.get("provider").map(String::as_str);
            match gateway.store.anomalies(provider, q.get("payment").map(String::as_str), since, i64::MAX, limit).await
            {
                Ok(anomalies) => Reply::json(200, &json!({"anomalies": anomalies})),
                Err(e) => store_unavailable(e),
            }
        }
        Endpoint::Payment => {
            let payment = gateway.store.payment_by_id(&id).await;
            let payout = gateway.store.payout_by_id(&id).await;
            let (events, timeline) = (gateway.store.events_for_payment(&id).await, gateway.store.timeline(&id).await);
            let anomalies = gateway.store.anomalies(None, Some(&id), 0, i64::MAX, 100).await;
            match (payment, payout, events, timeline, anomalies) {
                (Ok(payment), Ok(payout), Ok(events), Ok(timeline), Ok(anomalies))
                    if payment.is_some() || payout.is_some() =>
                {
                    let events: Vec<_> = events
                        .into_iter()
                        .map(|(e, state)| json!({"id": e.id, "kind": e.kind, "state": state.as_str(), "attempts": e.attempts}))
                        .collect();
                    Reply::json(
                        200,
                        &json!({
                            "trace_id": crate::telemetry::trace_id(&id),
                            "payment": payment.map(|p| p.to_merchant_json()),
                            "payout": payout.map(|p| p.to_merchant_json()),
                            "events": events,
                            "timeline": timeline,
                            "anomalies": anomalies,
                        }),
                    )
                }
                (Ok(_), Ok(_), Ok(_), Ok(_), Ok(_)) => error(404, "not_found", format!("no payment or payout {id}")),
                _ => store_unavailable("the store is unavailable"),
            }
        }
        Endpoint::OpenApi => Reply {
            status: 200,
            content_type: "application/yaml",
            body: crate::doors::merchant_api::OPENAPI.to_string(),
        },
        Endpoint::Metrics => {
            Reply { status: 200, content_type: "text/plain; version=0.0.4", body: render_metrics(gateway).await }
        }
        Endpoint::Reconcile => {
            let (Some(provider), Some(date)) = (q.get("provider"), q.get("date")) else {
                return error(400, "invalid_request", "provider and date (YYYY-MM-DD) are required");
            };
            // Settling changes state: POST only.
            let settle = method == "POST" && q.get("settle").map(String::as_str) == Some("true");
            let live = gateway.config.current();
            match crate::workers::reconcile::reconcile(gateway, &live, provider, date, settle, gateway.clock.now())
                .await
            {
                Ok(report) => Reply::json(200, &json!(report)),
                Err(e) => error(400, "invalid_request", e),
            }
        }
        Endpoint::Clock => {
            let adjustable = gateway.config.current().config.sandbox.as_ref().is_some_and(|s| s.adjustable_clock);
            if method == "POST" {
                let advance = q.get("advance").and_then(|a| a.parse::<i64>().ok()).filter(|a| (0..=86_400).contains(a));
                match (adjustable, advance) {
                    (false, _) => {
                        return error(
                            403,
                            "forbidden",
                            "the clock is the system's: only a sandbox gateway with sandbox.adjustable_clock moves it",
                        )
                    }
                    (true, None) => return error(400, "invalid_request", "advance: seconds from 0 to 86400"),
                    (true, Some(secs)) => gateway.clock.advance(secs),
                }
            }
            Reply::json(200, &json!({"now": crate::model::rfc3339(gateway.clock.now()), "adjustable": adjustable}))
        }
        Endpoint::Livez => Reply::json(200, &json!({"status": "ok"})),
        Endpoint::Readyz => match gateway.store.ping().await {
            Ok(()) => Reply::json(200, &json!({"status": "ready"})),
            Err(e) => Reply::json(503, &json!({"status": "not_ready", "reason": e.to_string()})),
        },
        Endpoint::Config => {
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
        Endpoint::Circuits => {
            let circuits: Vec<_> = gateway
                .upstream
                .circuits()
                .into_iter()
                .map(|(account, state, failures)| json!({"provider": account, "state": state, "consecutive_failures": failures}))
                .collect();
            Reply::json(200, &json!({"circuits": circuits}))
        }
        Endpoint::Reload => match gateway.config.reload("admin").await {
            Ok(()) => Reply::json(200, &json!({"reloaded": true})),
            Err(errors) => Reply::json(422, &json!({"reloaded": false, "errors": errors.lines().collect::<Vec<_>>()})),
        },
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
                    // The console checks its own sessions (or the same bearer token).
                    Ok(r) if crate::doors::console::is_console(&r.path) => {
                        crate::doors::console::handle(&gateway, &r).await
                    }
                    Ok(r) if !authorized(&gateway, &r) => Reply::json(
                        401,
                        &json!({"error": {"code": "unauthorized", "message": "Authorization: Bearer <admin_token> required"}}),
                    )
                    .into_response(),
                    Ok(r) => {
                        let reply = handle(&gateway, &r.method, &r.path, &r.query).await;
                        let status = reply.status;
                        let mut response = reply.into_response();
                        if status == 405 {
                            if let Some(allow) = allowed_methods(&r.path).and_then(|a| a.parse().ok()) {
                                response.headers_mut().insert(hyper::header::ALLOW, allow);
                            }
                        }
                        response
                    }
                    Err(e) => Reply::error(&e.into()).into_response(),
                }
            }
        },
        shutdown,
    )
    .await
}
