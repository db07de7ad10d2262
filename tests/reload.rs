//! Hot reload of routes.yaml while serving: a broken file is refused and the old config keeps
//! serving; a valid route change steers new payments while existing ones stay with the
//! account that created them.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_file_is_refused_and_route_changes_apply_to_new_payments_only() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;

    let (_, old) = gw.call("POST", "/v1/payments", &payment_body("T-R1", 100)).await;
    assert_eq!(old["provider"], "xxpay-a");

    // An error: the route names an account that does not exist.
    gw.write_config(&gw.routes_yaml("xxpay-c"));
    let error = eventually("the reload error to be reported", Duration::from_secs(10), || async {
        let (_, c) = gw.admin("GET", "/admin/config").await;
        c["last_reload_error"].as_str().map(str::to_string)
    })
    .await;
    assert!(error.contains("merchants.school-a.routes[0].to: unknown provider \"xxpay-c\""), "{error}");
    let (status, still) = gw.call("POST", "/v1/payments", &payment_body("T-R2", 100)).await;
    assert_eq!(status, 200, "old config keeps serving: {still}");
    assert_eq!(still["provider"], "xxpay-a");
    let (status, refused) = gw.admin("POST", "/admin/reload").await;
    assert_eq!(status, 422);
    assert!(refused["errors"][0].as_str().unwrap().contains("xxpay-c"));

    // A valid change: new payments go to xxpay-b.
    gw.write_config(&gw.routes_yaml("xxpay-b"));
    eventually("the valid reload", Duration::from_secs(10), || async {
        let (_, c) = gw.admin("GET", "/admin/config").await;
        c["last_reload_error"].is_null().then_some(())
    })
    .await;
    let (_, new) = gw.call("POST", "/v1/payments", &payment_body("T-R3", 100)).await;
    assert_eq!(new["provider"], "xxpay-b", "{new}");

    // The old payment stays with xxpay-a: query, callback and notification go through it.
    let (_, queried) = gw.call("GET", "/v1/payments/T-R1", "").await;
    assert_eq!(queried["provider"], "xxpay-a");
    gw.pay_at_sandbox(old["provider_trade_no"].as_str().unwrap()).await;
    let events = eventually("the old payment's notification", Duration::from_secs(10), || {
        let events = merchant.events();
        async move { (!events.is_empty()).then_some(events) }
    })
    .await;
    assert_eq!(events[0].json()["data"]["out_trade_no"], "T-R1");
    assert_eq!(events[0].json()["data"]["provider"], "xxpay-a");

    // The admin view never shows a secret from the file.
    let (_, config) = gw.admin("GET", "/admin/config").await;
    let text = config.to_string();
    for secret in [MERCHANT_KEY, XXPAY_A.2, XXPAY_B.2] {
        assert!(!text.contains(secret), "secret {secret} leaked in /admin/config");
    }
    assert!(!gw.log().contains(MERCHANT_KEY) && !gw.log().contains(XXPAY_A.2), "no secret in the log");
}
