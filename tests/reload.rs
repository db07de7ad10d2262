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

/// The file is compared by its text, so every way ops change it is seen: a Kubernetes
/// ConfigMap's update (routes.yaml is a symlink through `..data`, which is swapped to a new
/// folder by a rename) and a write in place (same inode, no rename).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_and_a_write_in_place_are_both_reloaded() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    // The layout the kubelet makes: routes.yaml -> ..data/routes.yaml, ..data -> a version folder.
    let dir = gw.dir.path().to_path_buf();
    std::fs::create_dir(dir.join("v1")).unwrap();
    std::fs::rename(&gw.config_path, dir.join("v1/routes.yaml")).unwrap();
    std::os::unix::fs::symlink("v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/routes.yaml", &gw.config_path).unwrap();
    gw.start().await;
    let (_, first) = gw.call("POST", "/v1/payments", &payment_body("T-K1", 100)).await;
    assert_eq!(first["provider"], "xxpay-a", "{first}");

    std::fs::create_dir(dir.join("v2")).unwrap();
    std::fs::write(dir.join("v2/routes.yaml"), gw.routes_yaml("xxpay-b")).unwrap();
    std::os::unix::fs::symlink("v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    new_payments_go_to(&gw, "xxpay-b", "the swapped ConfigMap to steer new payments").await;

    // In place: the same file truncated and written again.
    std::fs::write(dir.join("v2/routes.yaml"), gw.routes_yaml("xxpay-a")).unwrap();
    new_payments_go_to(&gw, "xxpay-a", "the file written in place to steer new payments").await;
}

/// Waits until a new payment is created at `account` (each try a new out_trade_no).
async fn new_payments_go_to(gw: &Gateway, account: &str, what: &str) {
    eventually(what, Duration::from_secs(10), || async {
        let (_, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("T-K{}", next_number()), 100)).await;
        (p["provider"] == account).then_some(())
    })
    .await
}

/// A number not handed out before in this test binary.
fn next_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(100);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
