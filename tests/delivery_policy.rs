//! The notification delivery policy against a real gateway and a merchant endpoint that
//! answers what real receivers answer: `410 Gone` stops retries to that endpoint (later events
//! are not sent there) until an operator replays; `503` with `Retry-After` is waited for; a
//! replay of a merchant's failed events since a time sends them again.

mod common;

use common::*;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A merchant endpoint answering `status` (with `Retry-After: 3600` on 503).
async fn endpoint(status: Arc<AtomicU16>) -> TestServer {
    TestServer::serve(move |_| {
        let s = status.load(Ordering::SeqCst);
        (s, Vec::new())
    })
    .await
}

async fn paid(gw: &Gateway, out_trade_no: &str) -> String {
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body(out_trade_no, 100)).await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    p["payment_id"].as_str().unwrap().to_string()
}

async fn first_event(
    gw: &Gateway,
    payment_id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    eventually(what, Duration::from_secs(15), || async {
        gw.payment_events(payment_id).await.into_iter().next().filter(|e| done(e))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_endpoints_stop_retries_until_a_replay() {
    let status = Arc::new(AtomicU16::new(410));
    let server = endpoint(status.clone()).await;
    let mut gw = Gateway::new(&format!("{}/notify", server.base()));
    gw.start().await;

    let first = paid(&gw, "GONE-1").await;
    let e = first_event(&gw, &first, "the 410", |e| e["state"] == "failed").await;
    assert_eq!(e["attempts"], 1, "one attempt, no retries after 410: {e}");
    let arrived = server.arrived.load(Ordering::SeqCst);
    assert_eq!(arrived, 1);

    // A later event for the same endpoint is not sent there at all.
    let second = paid(&gw, "GONE-2").await;
    let e = first_event(&gw, &second, "the second event given up", |e| e["state"] == "failed").await;
    assert_eq!(server.arrived.load(Ordering::SeqCst), 1, "nothing more reached the gone endpoint: {e}");
    let (_, failed) = gw.admin("GET", "/admin/events?status=failed").await;
    assert!(failed.to_string().contains("410 Gone"), "{failed}");
    let metrics = gw.metrics().await;
    assert!(metrics.contains("payglot_deliveries_total{outcome=\"gone\"}"), "{metrics}");

    // The endpoint is back; an operator replays the merchant's failed events since an hour ago.
    status.store(200, Ordering::SeqCst);
    let since = payglot::model::rfc3339(now() - 3600);
    let (code, replayed) =
        gw.admin("POST", &format!("/admin/events/replay?merchant={MERCHANT}&status=failed&since={since}")).await;
    assert_eq!((code, replayed["replayed"].as_u64()), (200, Some(2)), "{replayed}");
    for id in [&first, &second] {
        first_event(&gw, id, "delivery after the replay", |e| e["state"] == "delivered").await;
    }
    let (code, bad) = gw.admin("POST", "/admin/events/replay?merchant=school-a&since=yesterday").await;
    assert_eq!(code, 400, "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let status = Arc::new(AtomicU16::new(503));
    let server = endpoint(status.clone()).await;
    server.answer_headers.lock().unwrap().push(("retry-after".into(), "3600".into()));
    let mut gw = Gateway::new(&format!("{}/notify", server.base()));
    gw.start().await;
    let id = paid(&gw, "RA-1").await;
    first_event(&gw, &id, "a refused attempt", |e| e["attempts"].as_u64() >= Some(1)).await;
    let (_, pending) = gw.admin("GET", "/admin/events?status=pending").await;
    let next = payglot::model::parse_time(pending["events"][0]["next_attempt_at"].as_str().unwrap()).unwrap();
    // The test config retries every second; the receiver asked for an hour.
    assert!((now() + 3500..=now() + 3700).contains(&next), "Retry-After: 3600 honoured: {pending}");
    assert_eq!(server.arrived.load(Ordering::SeqCst), 1, "no attempt before the hour");
}
