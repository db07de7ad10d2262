//! Reconciliation against the sandbox: payments paid at the provider whose callbacks were lost
//! are listed as differences, fixed only when asked, through the normal event path.

mod common;

use common::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_payments_are_listed_then_settled_only_when_asked() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    gw.sandbox_fault("xxpay", "drop_callbacks").await;
    let (mut trade_nos, mut ids) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let (_, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("RC-{i}"), 100 + i)).await;
        trade_nos.push(p["provider_trade_no"].as_str().unwrap().to_string());
        ids.push(p["payment_id"].as_str().unwrap().to_string());
    }
    gw.pay_at_sandbox(&trade_nos[0]).await;
    gw.pay_at_sandbox(&trade_nos[2]).await;
    let date = payglot::dialects::beijing_time(now())[..10].to_string();

    let (status, report) = gw.admin("GET", &format!("/admin/reconcile?provider=xxpay-a&date={date}")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["payments"].as_u64(), report["agreed"].as_u64()), (Some(3), Some(1)), "{report}");
    let diffs = report["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 2);
    assert!(diffs.iter().all(|d| d["kind"] == "missed_payment" && d["settled"] == false), "{report}");
    for id in &ids {
        assert!(gw.payment_events(id).await.is_empty(), "nothing fixed silently");
    }

    let (status, settled) =
        gw.admin("POST", &format!("/admin/reconcile?provider=xxpay-a&date={date}&settle=true")).await;
    assert_eq!(status, 200);
    assert!(settled["differences"].as_array().unwrap().iter().all(|d| d["settled"] == true), "{settled}");
    let ev = events(&merchant, 2).await;
    let bodies: Vec<serde_json::Value> = ev.iter().map(|e| e.json()).collect();
    let mut paid: Vec<&str> = bodies.iter().map(|b| b["data"]["out_trade_no"].as_str().unwrap()).collect();
    paid.sort();
    assert_eq!(paid, vec!["RC-0", "RC-2"]);

    // The command line agrees now.
    let out = Command::new(env!("CARGO_BIN_EXE_payglot"))
        .args(["reconcile", "--provider", "xxpay-a", "--date", &date, "--config"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("3 payment(s), 3 agree, 0 differ"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mct_listing_shows_orders_payglot_does_not_know() {
    use payglot::dialects::mct;
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    let (_, p) = gw.call_as("school-mct", "POST", "/v1/payments", &payment_body("ML-1", 300)).await;
    assert_eq!(p["provider"], "mct");
    // Another system creates an order on the same store account, behind payglot's back.
    let env = mct::Envelope::new("87f46f5db1b65f0ac195285f49ee6958", MCT_OPEN_KEY, true).unwrap();
    let body = env.request_body(&serde_json::json!({"out_no": "OTHER-SYSTEM-1", "pmt_tag": "Weixin", "original_amount": 500, "trade_amount": 500}), now());
    let a = gw
        .http(
            "POST",
            &format!("http://127.0.0.1:{}/mct/mct1/payorder", gw.sandbox_port),
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(a.status, 200);
    let date = payglot::dialects::beijing_time(now())[..10].to_string();
    let (status, report) = gw.admin("GET", &format!("/admin/reconcile?provider=mct&date={date}")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["payments"].as_u64(), report["agreed"].as_u64()), (Some(1), Some(1)), "{report}");
    let diffs = report["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{report}");
    assert_eq!(
        (diffs[0]["kind"].as_str(), diffs[0]["out_trade_no"].as_str()),
        (Some("unknown_to_payglot"), Some("OTHER-SYSTEM-1"))
    );
    assert_eq!(
        (diffs[0]["provider_amount"].as_i64(), &diffs[0]["payglot_status"]),
        (Some(500), &serde_json::Value::Null)
    );
}
