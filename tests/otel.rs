//! OpenTelemetry export (`cargo test --features otel --test otel`): a payment's merchant
//! request, provider call, callback and notification arrive at an OTLP/HTTP collector as one
//! trace, whose id is the one the admin view and the log lines show.

#![cfg(feature = "otel")]

mod common;

use common::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every span the collector got, flattened out of OTLP/JSON's resourceSpans/scopeSpans.
fn spans(bodies: &[Value]) -> Vec<Value> {
    let mut all = Vec::new();
    for body in bodies {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                all.extend(scope["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    all
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_one_trace_from_the_create_to_the_notification() {
    let bodies: Arc<Mutex<Vec<Value>>> = Default::default();
    let got = bodies.clone();
    let collector = TestServer::serve(move |seen| {
        if seen.method == "POST" && seen.path == "/v1/traces" && seen.header("content-type") == "application/json" {
            if let Ok(v) = serde_json::from_slice(&seen.body) {
                got.lock().unwrap().push(v);
            }
            return (200, b"{}".to_vec());
        }
        (404, Vec::new())
    })
    .await;
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.envs = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), collector.base()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/json".into()),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
    ];
    gw.start().await;
    let (status, p) = gw.call("POST", "/v1/payments", &payment_body("OT-1", 100)).await;
    assert_eq!(status, 200, "{p}");
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    let id = p["payment_id"].as_str().unwrap().to_string();
    let (_, view) = gw.admin("GET", &format!("/admin/payments/{id}")).await;
    let trace = view["trace_id"].as_str().unwrap().to_string();

    let names = ["payment.create", "provider.call", "payment.callback", "payment.notify"];
    let trace_spans = eventually("the payment's spans at the collector", Duration::from_secs(10), || {
        let all = spans(&bodies.lock().unwrap());
        let mine: Vec<Value> = all.into_iter().filter(|s| s["traceId"] == trace.as_str()).collect();
        let complete = names.iter().all(|n| mine.iter().any(|s| s["name"] == *n));
        async move { complete.then_some(mine) }
    })
    .await;
    let by_name = |n: &str| trace_spans.iter().find(|s| s["name"] == n).unwrap();
    let root = by_name("payment.create");
    assert_eq!(root["parentSpanId"], "", "the create is the trace's root: {root}");
    assert_eq!(attribute(root, "payment_id"), Some(id.as_str()));
    assert_eq!(attribute(root, "merchant"), Some(MERCHANT));
    let call = by_name("provider.call");
    assert_eq!(call["parentSpanId"], root["spanId"], "the provider call is inside the create");
    assert_eq!(attribute(call, "provider"), Some("xxpay-a"));
    assert_eq!(attribute(call, "operation"), Some("/api/pay/create_order"));
    for later in ["payment.callback", "payment.notify"] {
        assert_eq!(by_name(later)["parentSpanId"], root["spanId"], "{later} joins the payment's trace");
    }
    assert!(gw.log().contains(&format!("trace_id={trace}")), "the log lines carry the trace id");
    drop(collector);
}
