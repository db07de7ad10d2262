//! Hardening against a real `payglot serve`: secrets never reach errors or logs, signed
//! requests cannot be replayed across a restart, the admin listener routes every path without
//! panicking, and routes.yaml refuses unsafe transport and exposure.

mod common;

use common::*;
use std::process::Command;

const PG_PASSWORD: &str = "hunter2-not-for-logs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_never_shows_the_database_password() {
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    g.envs = vec![("PG_PASSWORD".into(), PG_PASSWORD.into()), ("PAYGLOT_LOG_FORMAT".into(), "json".into())];
    g.start().await;
    let (_, before) = g.admin("GET", "/admin/config").await;

    // A mistyped scheme, with the password from the environment.
    g.store = "postgress://app:${PG_PASSWORD}@db.internal/pay".into();
    let broken = g.routes_yaml("xxpay-a");
    g.write_config(&broken);
    let answer = g.http("POST", &format!("http://127.0.0.1:{}/admin/reload", g.admin_port), &[], b"").await;
    let answer = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(
        answer.contains("postgress://app:<redacted>@db.internal/pay"),
        "the error still says what is wrong: {answer}"
    );
    let config = g.await_reload(&before).await;
    let shown = config.to_string();
    assert!(shown.contains("last_reload_error") && config["last_reload_error"].is_string(), "{shown}");

    let check = Command::new(env!("CARGO_BIN_EXE_payglot"))
        .arg("check")
        .arg(&g.config_path)
        .env("PG_PASSWORD", PG_PASSWORD)
        .output()
        .unwrap();
    let check = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.contains("store:"), "{check}");

    let log = g.log();
    assert!(log.contains("config reload refused"), "{log}");
    for (what, text) in
        [("reload answer", &answer), ("/admin/config", &shown), ("payglot check", &check), ("log", &log)]
    {
        assert!(!text.contains(PG_PASSWORD), "{what} shows the password: {text}");
        assert!(!text.contains("hunter2"), "{what} shows part of the password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_replayed_after_a_restart_is_refused() {
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    g.start().await;
    let (ts, nonce) = (now(), "replay-after-restart-0001");
    let body = payment_body("REPLAY-1", 100);
    let (status, first) = g.call_signed("POST", "/v1/payments", &body, MERCHANT_KEY, ts, nonce).await;
    assert_eq!(status, 200, "{first}");
    g.kill();
    g.start().await;
    let (status, again) = g.call_signed("POST", "/v1/payments", &body, MERCHANT_KEY, ts, nonce).await;
    assert_eq!(status, 401, "a replay inside the window after kill -9: {again}");
    assert!(again["error"]["message"].as_str().unwrap().contains("already used"), "{again}");
    // A fresh nonce still works.
    let (status, _) = g.call("GET", "/v1/payments/REPLAY-1", "").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_timestamps_are_refused_not_overflowed() {
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    g.start().await;
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
        let (status, e) =
            g.call_signed("GET", "/v1/payments/X", "", MERCHANT_KEY, ts, "absurd-timestamp-nonce-1").await;
        assert_eq!(status, 401, "{ts}: {e}");
    }
    let (status, _) = g.call("GET", "/v1/payments/X", "").await;
    assert_eq!(status, 404, "the gateway still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_routes_every_path_without_panicking() {
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    g.start().await;
    let admin = format!("http://127.0.0.1:{}", g.admin_port);
    for (method, path, expected) in [
        // The range replay, without the merchant it needs.
        ("POST", "/admin/events/replay", 400),
        ("POST", "/admin/events//replay", 404),
        ("POST", "/admin/events/evt_none/replay", 404),
        ("GET", "/admin/reload", 405),
        ("DELETE", "/admin/config", 405),
        ("GET", "/admin/payments/", 404),
        ("GET", "/admin/anomalies", 200),
        ("GET", "/admin/nothing", 404),
    ] {
        let a = g.http(method, &format!("{admin}{path}"), &[], b"").await;
        assert_eq!(a.status, expected, "{method} {path}: {}", String::from_utf8_lossy(&a.body));
        if expected == 405 {
            assert!(a.headers.get("allow").is_some(), "{method} {path}: 405 without Allow");
        }
    }
    let (status, _) = g.admin("GET", "/healthz").await;
    assert_eq!(status, 200, "still up");
}

fn check(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_payglot")).arg("check").arg(&path).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn minimal(admin: &str, base_url: &str, extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:8080\n{admin}public_url: https://pay.example.edu\nproviders:\n  a:\n    dialect: xxpay\n    base_url: {base_url}\n    credentials: {{ mch_id: \"1\", app_id: x, key: k }}\n{extra}merchants:\n  m:\n    key: m-key-0123456789abcdef\n    routes:\n      - to: a\n"
    )
}

#[test]
fn routes_yaml_refuses_an_exposed_admin_listener_and_plain_http_providers() {
    let (ok, out) = check(&minimal("admin_listen: 0.0.0.0:9901\n", "https://pay.provider.example", ""));
    assert!(!ok && out.contains("admin_listen") && out.contains("admin_token"), "{out}");
    let (ok, out) = check(&minimal(
        "admin_listen: 0.0.0.0:9901\nadmin_token: a-long-admin-token-1234\n",
        "https://pay.provider.example",
        "",
    ));
    assert!(ok, "{out}");
    let (ok, out) = check(&minimal("", "http://10.0.0.5:3020", ""));
    assert!(!ok && out.contains("base_url") && out.contains("insecure_http"), "{out}");
    let (ok, out) = check(&minimal("", "http://10.0.0.5:3020", "    insecure_http: true\n"));
    assert!(ok, "{out}");
    let (ok, out) = check(&minimal("", "http://127.0.0.1:3020", ""));
    assert!(ok, "loopback needs no TLS: {out}");
}

/// A name of this machine (from /etc/hosts) that resolves to a loopback address, as a name
/// rebound to a private address would.
fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let ip: std::net::IpAddr = parts.next()?.parse().ok()?;
            ip.is_loopback().then(|| parts.find(|n| !n.contains("localhost")).map(str::to_string)).flatten()
        })
        .next()
        .expect("/etc/hosts names this machine with a loopback address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_urls_never_reach_private_addresses_or_the_gateway_itself() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut g = Gateway::new(&merchant.url());
    // A merchant without allow_private_notify (the test merchants have it, being on loopback).
    let strict = format!("  school-strict:\n    key: {MERCHANT_KEY}\n    routes:\n      - to: xxpay-a\n");
    g.write_config(&(g.routes_yaml("xxpay-a") + &strict));
    g.start().await;
    let (_, before) = g.admin("GET", "/admin/config").await;

    let with_notify = |no: &str, url: &str| {
        let mut b: serde_json::Value = serde_json::from_str(&payment_body(no, 100)).unwrap();
        b["notify_url"] = url.into();
        b.to_string()
    };
    // Even a merchant allowed private addresses may not aim at the gateway's own listeners.
    let reload = format!("http://127.0.0.1:{}/admin/reload", g.admin_port);
    let (status, e) = g.call("POST", "/v1/payments", &with_notify("SSRF-1", &reload)).await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("own listener"), "{e}");
    for url in
        ["http://127.0.0.1:9/n", "http://169.254.169.254/latest/meta-data", "http://localhost/n", "http://10.0.0.8/n"]
    {
        let (status, e) = g.call_as("school-strict", "POST", "/v1/payments", &with_notify("SSRF-2", url)).await;
        assert_eq!(status, 400, "{url}: {e}");
    }
    let (status, _) = g.call_as("school-strict", "GET", "/v1/payments/SSRF-2", "").await;
    assert_eq!(status, 404, "nothing was stored");

    // A name that resolves to loopback is accepted, but never connected to.
    let name = loopback_name();
    let rebound = format!("http://{name}:{}/notify", merchant.port);
    let (status, p) = g.call_as("school-strict", "POST", "/v1/payments", &with_notify("SSRF-3", &rebound)).await;
    assert_eq!(status, 200, "{p}");
    g.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    let failed = eventually("the delivery to be refused", std::time::Duration::from_secs(10), || async {
        let (_, ev) = g.admin("GET", "/admin/events?merchant=school-strict").await;
        let e = ev["events"].as_array()?.first()?.clone();
        e["last_error"].as_str().is_some_and(|m| m.contains("no public address")).then_some(e)
    })
    .await;
    assert!(failed["attempts"].as_u64().unwrap() >= 1, "{failed}");
    assert!(merchant.events().is_empty(), "the merchant server on loopback was never reached");
    let (_, after) = g.admin("GET", "/admin/config").await;
    assert_eq!(after["reloads"], before["reloads"], "no reload was triggered");
}

/// A forged xxpay notify naming a payment (signed with a guessed key).
fn forged_notify(payment_id: &str) -> String {
    let fields: std::collections::BTreeMap<String, String> =
        [("payOrderId", "x"), ("mchId", XXPAY_A.0), ("mchOrderNo", payment_id), ("amount", "100"), ("status", "2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    payglot::dialects::xxpay::provider::notify_body(fields, "guessed-key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_cannot_amplify_into_provider_queries_or_trip_the_breaker() {
    let merchant = MerchantServer::new();
    let mut g = Gateway::new(&merchant.url());
    let limited = "timeout_ms: 3000\n    unverified_queries: { max: 5, window_secs: 60 }\n    circuit: { failures: 3, open_ms: 60000 }\n";
    g.write_config(&g.routes_yaml("xxpay-a").replacen("timeout_ms: 3000\n", limited, 1));
    g.start().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let (status, p) = g.call("POST", "/v1/payments", &payment_body(&format!("AMP-{i}"), 100)).await;
        assert_eq!(status, 200, "{p}");
        ids.push(p["payment_id"].as_str().unwrap().to_string());
    }
    let port = g.sandbox_port;
    let before = g.sandbox_requests(port, "xxpay").await;
    // 200 forged callbacks on one payment: at most one query.
    for _ in 0..200 {
        let (status, _) = g.callback("xxpay-a", &forged_notify(&ids[0])).await;
        assert_eq!(status, 400);
    }
    let one = g.sandbox_requests(port, "xxpay").await - before;
    assert_eq!(one, 1, "one query for one payment within the window");
    // Forged callbacks on twelve payments: at most five queries per account per window.
    for id in &ids {
        g.callback("xxpay-a", &forged_notify(id)).await;
    }
    let all = g.sandbox_requests(port, "xxpay").await - before;
    assert_eq!(all, 5, "the account's window allows five");

    let text = g.metrics().await;
    assert!(text.contains("payglot_unverified_queries_total"), "counted in a metric");

    // A second gateway on the same sandbox, with room for ten unverified queries: while the
    // provider fails, the ten queried forged callbacks prompt do not open its circuit (three
    // failures would).
    let mut g2 = Gateway::new(&merchant.url());
    g2.sandbox_port = g.sandbox_port;
    g2.embedded_sandbox = false;
    let roomy = "timeout_ms: 3000\n    unverified_queries: { max: 10, window_secs: 60 }\n    circuit: { failures: 3, open_ms: 60000 }\n";
    g2.write_config(&g2.routes_yaml("xxpay-a").replacen("timeout_ms: 3000\n", roomy, 1));
    g2.start().await;
    let mut pending = Vec::new();
    for i in 0..10 {
        let (_, p) = g2.call("POST", "/v1/payments", &payment_body(&format!("AMP2-{i}"), 100)).await;
        pending.push(p["payment_id"].as_str().unwrap().to_string());
    }
    g.sandbox_fault("xxpay", "error500").await;
    let before = g.sandbox_requests(port, "xxpay").await;
    for id in &pending {
        g2.callback("xxpay-a", &forged_notify(id)).await;
    }
    assert_eq!(g.sandbox_requests(port, "xxpay").await - before, 10, "each prompted one failing query");
    let (_, circuits) = g2.admin("GET", "/admin/circuits").await;
    let open: Vec<_> = circuits["circuits"].as_array().unwrap().iter().filter(|c| c["state"] != "closed").collect();
    assert!(open.is_empty(), "forged callbacks opened a circuit: {circuits}");
    g.sandbox_fault("xxpay", "ok").await;
}
