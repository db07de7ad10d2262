//! The store goes away and comes back (run when `PAYGLOT_TEST_POSTGRES` and
//! `PAYGLOT_TEST_POSTGRES_CTL`, a `pg_ctlcluster ... main` command, are set; `.ci/run` sets
//! both). While PostgreSQL is stopped: `/readyz` is not ready, the merchant API answers 503,
//! callbacks are not acked (so providers retry). When it is back, everything recovers without a
//! restart and no acked callback lost its event.

mod common;

use common::*;
use std::time::Duration;

/// Runs `{ctl} {action}`; the guard starts the server again whatever happens to the test.
fn pg(ctl: &str, action: &str) {
    let status =
        std::process::Command::new("sh").arg("-c").arg(format!("{ctl} {action}")).status().expect("pg_ctlcluster runs");
    assert!(status.success(), "{ctl} {action}");
}

struct StartOnDrop(String);

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh").arg("-c").arg(format!("{} start", self.0)).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL not configured: set PAYGLOT_TEST_POSTGRES")]
async fn a_store_outage_is_survived_without_losing_a_callback() {
    let ctl = postgres_url("PAYGLOT_TEST_POSTGRES_CTL");
    let store = postgres_store_url("outage").await;
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.store = store;
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;

    let mut trade_nos = Vec::new();
    for i in 0..6 {
        let (status, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("O-{i}"), 100)).await;
        assert_eq!(status, 200, "{p}");
        trade_nos.push(p["provider_trade_no"].as_str().unwrap().to_string());
    }
    for t in &trade_nos[..3] {
        gw.pay_at_sandbox(t).await;
    }
    events(&merchant, 3).await;

    let _restart = StartOnDrop(ctl.clone());
    pg(&ctl, "stop -m fast");
    let (status, ready) = gw.admin("GET", "/readyz").await;
    assert_eq!(status, 503, "not ready without its store: {ready}");
    let (status, e) = gw.call("POST", "/v1/payments", &payment_body("O-X", 100)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (503, Some("store_unavailable")), "{e}");
    // Paid while the store is down: the callbacks are refused, and the sandbox retries them.
    let (attempts, _) = gw.sandbox_callbacks().await;
    for t in &trade_nos[3..] {
        gw.pay_at_sandbox(t).await;
    }
    // Each of the three callbacks tried and refused, and tried again.
    eventually("the sandbox to send the callbacks again", Duration::from_secs(15), || async {
        let (now, in_flight) = gw.sandbox_callbacks().await;
        (now >= attempts + 6 && in_flight == 3).then_some(())
    })
    .await;
    assert_eq!(merchant.events().len(), 3, "nothing acked without its event");
    pg(&ctl, "start");

    let events = eventually("recovery and the remaining notifications", Duration::from_secs(30), || {
        let events = merchant.events();
        async move { (events.len() >= 6).then_some(events) }
    })
    .await;
    let (status, _) = gw.admin("GET", "/readyz").await;
    assert_eq!(status, 200, "ready again without a restart");
    let mut orders: Vec<String> =
        events.iter().map(|e| e.json()["data"]["out_trade_no"].as_str().unwrap().to_string()).collect();
    orders.sort();
    assert_eq!(orders, vec!["O-0", "O-1", "O-2", "O-3", "O-4", "O-5"]);
    let (status, _) = gw.call("POST", "/v1/payments", &payment_body("O-after", 100)).await;
    assert_eq!(status, 200);
}
