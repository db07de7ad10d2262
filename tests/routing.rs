//! Routing ops can trust, over real HTTP: failover when the primary is down (with sticky
//! queries to it), the circuit breaker, weighted splits, safe retirement, and routes.yaml
//! rewritten many times under load.

mod common;

use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn xxpay_account(name: &str, port: u16, (mch, app, key): (&str, &str, &str), extra: &str) -> String {
    format!(
        "  {name}:\n    dialect: xxpay\n    base_url: http://127.0.0.1:{port}/xxpay\n    credentials: {{ mch_id: \"{mch}\", app_id: {app}, key: {key} }}\n    connect_timeout_ms: 500\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_payments_fail_over_while_old_ones_stay_with_the_stopped_primary() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    let primary_port = free_port();
    let primary = xxpay_account("xxpay-p", primary_port, ("3003", "app-p", "xxpay-key-p"), "");
    let routes = "      - to: xxpay-p\n        fallback: [xxpay-a]\n";
    gw.write_config(&gw.routes_yaml_with(routes, &primary));
    gw.start().await;
    // The primary runs in its own sandbox process, so it can be stopped.
    let own = gw.routes_yaml_with(routes, &primary).replace(
        &format!("listen: 127.0.0.1:{}\n  notify", gw.sandbox_port),
        &format!("listen: 127.0.0.1:{primary_port}\n  notify"),
    );
    let primary_process = gw.start_standalone_sandbox(&own, primary_port).await;

    let (status, old) = gw.call("POST", "/v1/payments", &payment_body("R-OLD", 100)).await;
    assert_eq!((status, old["provider"].as_str()), (200, Some("xxpay-p")), "{old}");

    drop(primary_process); // kill -9: connections to it are refused from now on
    let started = Instant::now();
    let (status, new) = gw.call("POST", "/v1/payments", &payment_body("R-NEW", 100)).await;
    let failover = started.elapsed();
    assert_eq!((status, new["provider"].as_str()), (200, Some("xxpay-a")), "{new}");
    println!("failover create took {failover:?}");

    let (status, q) = gw.call("GET", "/v1/payments/R-OLD", "").await;
    assert_eq!(status, 200);
    assert_eq!(q["provider"], "xxpay-p", "sticky: never asked elsewhere");
    assert_eq!(q["status"], "pending");
    assert_eq!(q["provider_error"]["code"], "provider_unavailable", "the query says the primary is down: {q}");
    assert!(q["provider_error"]["message"].as_str().unwrap().contains("xxpay-p"));

    gw.pay_at_sandbox(new["provider_trade_no"].as_str().unwrap()).await;
    let ev = events(&merchant, 1).await;
    assert_eq!(ev[0].json()["data"]["out_trade_no"], "R-NEW");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_and_stops_calls_to_a_failing_provider() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    let flaky = format!(
        "  mct-flaky:\n    dialect: mct\n    base_url: http://127.0.0.1:{}/mct\n    credentials: {{ open_id: 87f46f5db1b65f0ac195285f49ee6958, open_key: {MCT_OPEN_KEY} }}\n    circuit: {{ failures: 3, open_ms: 60000 }}\n",
        gw.sandbox_port
    );
    gw.write_config(&gw.routes_yaml_with("      - to: mct-flaky\n        fallback: [xxpay-a]\n", &flaky));
    gw.start().await;
    gw.sandbox_fault("mct", "error500").await;

    let mut providers = Vec::new();
    for i in 0..10 {
        let (status, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("C-{i}"), 100)).await;
        providers.push((
            status,
            p["provider"].as_str().map(str::to_string).or(p["error"]["provider"].as_str().map(str::to_string)),
        ));
    }
    // A 500 may hide an accepted order: those three stay pending, never failed over.
    for (status, provider) in &providers[..3] {
        assert_eq!((*status, provider.as_deref()), (502, Some("mct-flaky")));
    }
    // Then the circuit is open: calls are shed and the fallback takes the payments.
    for (status, provider) in &providers[3..] {
        assert_eq!((*status, provider.as_deref()), (200, Some("xxpay-a")), "{providers:?}");
    }
    assert_eq!(gw.sandbox_requests(gw.sandbox_port, "mct").await, 3, "no call reached the provider once open");
    let (_, circuits) = gw.admin("GET", "/admin/circuits").await;
    let flaky = circuits["circuits"].as_array().unwrap().iter().find(|c| c["provider"] == "mct-flaky").unwrap().clone();
    assert_eq!(flaky["state"], "open", "{circuits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_70_30_split_lands_within_tolerance() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.write_config(&gw.routes_yaml_with("      - split: { xxpay-a: 70, xxpay-b: 30 }\n", ""));
    gw.start().await;
    let n = 300;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..n {
        let (status, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("S-{i}"), 100)).await;
        assert_eq!(status, 200, "{p}");
        // The README's rule, computed here: the first 8 bytes of md5(payment_id), big-endian,
        // mod 100, below 70 is xxpay-a. Each payment lands exactly where the rule says.
        use md5::{Digest, Md5};
        let id = p["payment_id"].as_str().unwrap();
        let bucket = u64::from_be_bytes(Md5::digest(id.as_bytes())[..8].try_into().unwrap()) % 100;
        let expected = if bucket < 70 { "xxpay-a" } else { "xxpay-b" };
        assert_eq!(p["provider"], expected, "{id} (bucket {bucket})");
        *counts.entry(p["provider"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let a = counts["xxpay-a"] as f64 / n as f64;
    println!("split 70/30 over {n} payments: xxpay-a {:.1}%, xxpay-b {:.1}%", a * 100.0, (1.0 - a) * 100.0);
    // ±8 points is three standard deviations for 300 draws.
    assert!((0.62..=0.78).contains(&a), "xxpay-a took {:.1}%", a * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_accounts_keep_serving_and_busy_ones_cannot_be_deleted() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.write_config(&gw.routes_yaml("xxpay-b"));
    gw.start().await;
    let (_, paid_later) = gw.call("POST", "/v1/payments", &payment_body("RT-1", 100)).await;
    let (_, closed_later) = gw.call("POST", "/v1/payments", &payment_body("RT-2", 100)).await;
    assert_eq!(paid_later["provider"], "xxpay-b");

    // Retire b: new payments go to a, b's payments are still served by b.
    let (_, before) = gw.admin("GET", "/admin/config").await;
    let retired = gw.routes_yaml("xxpay-a").replace("  xxpay-b:\n", "  xxpay-b:\n    retired: true\n");
    gw.write_config(&retired);
    let after = gw.await_reload(&before).await;
    assert!(after["last_reload_error"].is_null(), "{after}");
    let (_, new) = gw.call("POST", "/v1/payments", &payment_body("RT-3", 100)).await;
    assert_eq!(new["provider"], "xxpay-a");
    gw.pay_at_sandbox(paid_later["provider_trade_no"].as_str().unwrap()).await;
    let ev = events(&merchant, 1).await;
    assert_eq!(
        (ev[0].json()["data"]["out_trade_no"].as_str(), ev[0].json()["data"]["provider"].as_str()),
        (Some("RT-1"), Some("xxpay-b"))
    );

    // Deleting b while RT-2 is still pending there is refused, naming the account and count.
    let without_b = {
        let text = gw.routes_yaml("xxpay-a");
        let start = text.find("  xxpay-b:\n").unwrap();
        let end = start + text[start..].find("  xjt:\n").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    };
    let (_, before) = gw.admin("GET", "/admin/config").await;
    gw.write_config(&without_b);
    let refused = gw.await_reload(&before).await;
    let error = refused["last_reload_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("providers.xxpay-b: cannot be deleted while it holds 1 payment"), "{refused}");
    let (_, q) = gw.call("GET", "/v1/payments/RT-2", "").await;
    assert_eq!(q["provider"], "xxpay-b", "the old config keeps serving");

    // Once nothing is open there, the deletion is taken.
    let (status, closed) = gw.call("POST", "/v1/payments/RT-2/close", "").await;
    assert_eq!(status, 422, "xxpay cannot close; the payment stays open: {closed}");
    assert_eq!(closed_later["provider"], "xxpay-b");
    gw.pay_at_sandbox(closed_later["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 2).await;
    let (status, reload) = gw.admin("POST", "/admin/reload").await;
    assert_eq!(status, 200, "{reload}");
    let (_, c) = gw.admin("GET", "/admin/config").await;
    assert!(c["config"]["providers"].get("xxpay-b").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_rewritten_under_load_never_fail_or_misroute_a_payment() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    let gw = std::sync::Arc::new(gw);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = Vec::new();
    for w in 0..4 {
        let gw = gw.clone();
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let (status, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("L-{w}-{i}"), 100)).await;
                seen.push((status, p["provider"].as_str().unwrap_or("").to_string(), p.to_string()));
                i += 1;
            }
            seen
        }));
    }
    // Ten rewrites, valid and invalid alternately, while the workers run; each is taken (or
    // refused) before the next.
    for k in 0..10 {
        let text = match k % 4 {
            0 => gw.routes_yaml("xxpay-b"),
            2 => gw.routes_yaml("xxpay-a"),
            _ => gw.routes_yaml("xxpay-nowhere"),
        };
        let (_, before) = gw.admin("GET", "/admin/config").await;
        gw.write_config(&text);
        gw.await_reload(&before).await;
    }
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    let failed: Vec<_> = results.iter().filter(|(s, _, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{} failed, first: {:?}", failed.len(), failed.first());
    let mut by_provider: HashMap<&str, usize> = HashMap::new();
    for (_, provider, _) in &results {
        *by_provider.entry(provider.as_str()).or_default() += 1;
    }
    println!("{} payments under 10 rewrites: {by_provider:?}", results.len());
    assert!(by_provider.keys().all(|p| *p == "xxpay-a" || *p == "xxpay-b"), "{by_provider:?}");
    assert!(by_provider.len() == 2, "both valid route changes took effect: {by_provider:?}");
    let (_, c) = gw.admin("GET", "/admin/config").await;
    assert!(c["last_reload_error"].as_str().unwrap().contains("xxpay-nowhere"), "the last rewrite was invalid");
}
