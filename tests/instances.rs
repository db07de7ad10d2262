//! Several gateway instances on one PostgreSQL store (run when `PAYGLOT_TEST_POSTGRES` is set):
//! payments and callbacks through either instance make exactly one notification each,
//! duplicate creates across instances make one provider order, and an instance killed while
//! delivering loses nothing.

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL not configured: set PAYGLOT_TEST_POSTGRES")]
async fn five_hundred_payments_through_two_instances_make_five_hundred_events() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let (a, b) = instance_pair("five", &merchant.url()).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let n = 500;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..n).step_by(4) {
                let gw = if i % 2 == 0 { &a } else { &b };
                let (status, p) =
                    gw.call("POST", "/v1/payments", &payment_body(&format!("I-{i}"), 100 + i as i64)).await;
                assert_eq!(status, 200, "{p}");
                // Paid at the (shared) sandbox; its callback goes to the other instance.
                a.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = eventually("500 notifications", Duration::from_secs(60), || {
        let events = merchant.events();
        async move { (events.len() >= n).then_some(events) }
    })
    .await;
    a.settled().await;
    let events_after = merchant.events();
    assert_eq!(events_after.len(), n, "no duplicates");
    let ids: HashSet<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let orders: HashSet<String> =
        events.iter().map(|e| e.json()["data"]["out_trade_no"].as_str().unwrap().to_string()).collect();
    assert_eq!((ids.len(), orders.len()), (n, n), "every payment once");
    assert!(events.iter().all(|e| e.signature_valid() && e.json()["type"] == "payment.succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL not configured: set PAYGLOT_TEST_POSTGRES")]
async fn duplicate_creates_across_instances_make_one_provider_order() {
    let (a, b) = instance_pair("dupes", "http://127.0.0.1:9/notify").await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let before = a.sandbox_requests(a.sandbox_port, "xxpay").await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let gw = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { gw.call("POST", "/v1/payments", &payment_body("SAME-1", 100)).await }));
    }
    let mut payment_ids = HashSet::new();
    for t in tasks {
        let (status, p) = t.await.unwrap();
        assert_eq!(status, 200, "{p}");
        payment_ids.insert(p["payment_id"].as_str().unwrap().to_string());
    }
    assert_eq!(payment_ids.len(), 1, "one payment");
    assert_eq!(a.sandbox_requests(a.sandbox_port, "xxpay").await - before, 1, "one provider order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL not configured: set PAYGLOT_TEST_POSTGRES")]
async fn an_instance_killed_while_delivering_loses_no_event() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let (mut a, b) = instance_pair("kill", &merchant.url()).await;
    // A slow merchant keeps deliveries in flight (claimed) when one instance dies.
    merchant.delay_ms.store(1500, std::sync::atomic::Ordering::SeqCst);
    let n = 20;
    for i in 0..n {
        let gw = if i % 2 == 0 { &a } else { &b };
        let (_, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("K-{i}"), 100)).await;
        a.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    }
    // Every payment called back by a's sandbox (it dies with a), deliveries in flight.
    eventually("the callbacks done and deliveries in flight", Duration::from_secs(10), || async {
        let (_, in_flight) = a.sandbox_callbacks().await;
        (in_flight == 0 && merchant.arrived() >= 2).then_some(())
    })
    .await;
    a.kill(); // kill -9, its claims die with it
    let events = eventually("every event, by the surviving instance after the lease", Duration::from_secs(60), || {
        let events = merchant.events();
        async move {
            let orders: HashSet<String> =
                events.iter().map(|e| e.json()["data"]["out_trade_no"].as_str().unwrap().to_string()).collect();
            (orders.len() == n).then_some(events)
        }
    })
    .await;
    // At-least-once: a delivery cut by the kill may arrive twice, always with the same event id.
    let ids: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), n, "one event per payment");
    drop(b);
}
