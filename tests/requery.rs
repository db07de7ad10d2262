//! No payment left behind: when callbacks never come, payglot asks the provider itself (on a
//! compressed schedule here) and settles with exactly one event; expired unpaid payments are
//! closed at the provider where it can, and never while the payer could still pay.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

async fn gateway(merchant: &MerchantServer, extra_providers: &str, route_to: &str) -> Gateway {
    let mut gw = Gateway::new(&merchant.url());
    gw.extra_yaml = "requery:\n  schedule_secs: [1]\n  poll_ms: 100\n".into();
    gw.write_config(&gw.routes_yaml_with(&format!("      - to: {route_to}\n"), extra_providers));
    gw.start().await;
    gw
}

fn kinds(events: &[Received]) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let j = e.json();
            (j["data"]["out_trade_no"].as_str().unwrap().to_string(), j["type"].as_str().unwrap().to_string())
        })
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_callbacks_are_replaced_by_queries_and_races_make_one_event() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let gw = gateway(&merchant, "", "xxpay-a").await;
    gw.sandbox_fault("xxpay", "drop_callbacks").await;
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body("Q-1", 100)).await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;

    // Callbacks back on: callback and re-query race for each of these.
    gw.sandbox_fault("xxpay", "ok").await;
    for i in 2..12 {
        let (_, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("Q-{i}"), 100)).await;
        gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    }
    events(&merchant, 11).await;
    gw.settled().await;
    let all = merchant.events();
    assert_eq!(all.len(), 11, "exactly one event per payment: {:?}", kinds(&all));
    assert!(all.iter().all(|e| e.json()["type"] == "payment.succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_payments_are_closed_at_the_provider_but_never_a_paid_one() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let gw = gateway(&merchant, "", "xxpay-a").await;
    gw.sandbox_fault("zhixiao", "drop_callbacks").await;
    let create = |no: &str, expire: i64| {
        json!({"out_trade_no": no, "amount": 100, "subject": "s", "channel": "alipay", "scene": "h5", "expire_seconds": expire}).to_string()
    };
    let (_, unpaid) = gw.call_as("school-zx", "POST", "/v1/payments", &create("E-1", 60)).await;
    let (_, late) = gw.call_as("school-zx", "POST", "/v1/payments", &create("E-2", 120)).await;
    assert!(unpaid["expires_at"].as_str().is_some());
    // Time passes E-1's expiry, not E-2's; E-2 is paid a moment before it expires (its
    // callback is lost) and then expires: settled, not closed.
    gw.advance_clock(90).await;
    gw.pay_at("zhixiao", late["payment_id"].as_str().unwrap()).await;
    gw.advance_clock(60).await;

    let ev = events(&merchant, 2).await;
    assert_eq!(
        kinds(&ev),
        vec![("E-1".to_string(), "payment.closed".to_string()), ("E-2".to_string(), "payment.succeeded".to_string())]
    );
    // Closed at the provider too: the payer can no longer pay it there.
    let a = gw
        .http(
            "POST",
            &format!("http://127.0.0.1:{}/zhixiao/pay/{}", gw.sandbox_port, unpaid["payment_id"].as_str().unwrap()),
            &[],
            b"",
        )
        .await;
    assert!(String::from_utf8_lossy(&a.body).contains("\"closed\""), "{}", String::from_utf8_lossy(&a.body));
    let (_, q) = gw.call_as("school-zx", "GET", "/v1/payments/E-1", "").await;
    assert_eq!(q["status"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_provider_close_only_a_known_order_lifetime_allows_closing() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let short = format!(
        "  xxpay-short:\n    dialect: xxpay\n    base_url: http://127.0.0.1:{{SANDBOX}}/xxpay\n    credentials: {{ mch_id: \"{}\", app_id: {}, key: {} }}\n    order_lifetime_secs: 2\n",
        XXPAY_A.0, XXPAY_A.1, XXPAY_A.2
    );
    let mut gw = Gateway::new(&merchant.url());
    gw.extra_yaml = "requery:\n  schedule_secs: [1]\n  poll_ms: 100\n".into();
    let routes = "      - match: { channel: wechat }\n        to: xxpay-short\n      - to: xxpay-a\n";
    gw.write_config(&gw.routes_yaml_with(routes, &short.replace("{SANDBOX}", &gw.sandbox_port.to_string())));
    gw.start().await;

    let body = |no: &str, channel: &str| {
        json!({"out_trade_no": no, "amount": 100, "subject": "s", "channel": channel, "scene": "qr", "expire_seconds": 1}).to_string()
    };
    let (status, known) = gw.call("POST", "/v1/payments", &body("L-1", "wechat")).await;
    assert_eq!((status, known["provider"].as_str()), (200, Some("xxpay-short")), "{known}");
    let (_, unknown) = gw.call("POST", "/v1/payments", &body("L-2", "alipay")).await;
    assert_eq!(unknown["provider"], "xxpay-a");
    // Both expire, and L-1's order lifetime at its provider passes.
    gw.advance_clock(5).await;

    let ev = events(&merchant, 1).await;
    assert_eq!(kinds(&ev), vec![("L-1".to_string(), "payment.closed".to_string())]);
    let l2 = unknown["payment_id"].as_str().unwrap().to_string();
    eventually("the requery worker's decision on L-2", Duration::from_secs(10), || {
        let log = gw.log();
        let decided = log.lines().any(|l| l.contains(&l2) && l.contains("kept pending"));
        async move { decided.then_some(()) }
    })
    .await;
    let (_, q) = gw.call("GET", "/v1/payments/L-2", "").await;
    assert_eq!(q["status"], "pending", "xxpay offers no close and its lifetime is unknown: kept pending");
    assert_eq!(merchant.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_whose_callback_is_lost_are_settled_by_query() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let gw = gateway(&merchant, "", "xxpay-a").await;
    gw.sandbox_fault("xxpay", "drop_callbacks").await;
    let payout = json!({"out_payout_no": "W-Q", "amount": 500,
        "payee": {"account_type": "bank", "account_name": "张三", "account_no": "6222021234567890123", "bank_code": "HPT00003",
                  "bank_name": "中国建设银行", "province": "江苏", "city": "南京"}});
    let (status, p) = gw.call("POST", "/v1/payouts", &payout.to_string()).await;
    assert_eq!((status, p["status"].as_str()), (200, Some("pending")), "{p}");
    gw.complete_payout(p["payout_id"].as_str().unwrap()).await;
    let ev = events(&merchant, 1).await;
    let body = ev[0].json();
    assert_eq!(
        (body["type"].as_str(), body["data"]["out_payout_no"].as_str()),
        (Some("payout.succeeded"), Some("W-Q"))
    );
}
