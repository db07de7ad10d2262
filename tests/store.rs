//! The store test suite, run against the embedded SQLite store (a real file) and against
//! PostgreSQL (the server named by `PAYGLOT_TEST_POSTGRES`, each run in a fresh schema; the
//! PostgreSQL half is compiled as ignored when no server is configured, see build.rs).

mod common;

use payglot::model::*;
use payglot::store::{
    postgres::PgStore, sqlite::SqliteStore, EventState, Inserted, PayoutInserted, RefundInserted, Settled, Settlement,
    Store,
};
use std::sync::Arc;

use payglot::test_support::payment_of as payment;

fn paid() -> Settlement {
    Settlement {
        status: PaymentStatus::Succeeded,
        provider_trade_no: Some("T1".into()),
        paid_amount: None,
        paid_at: Some(5),
        ..Default::default()
    }
}

fn refund(p: &Payment, no: &str, amount: i64) -> Refund {
    Refund {
        refund_id: new_transfer_id('R', now_unix()),
        out_refund_no: no.into(),
        merchant_id: p.merchant_id.clone(),
        payment_id: p.payment_id.clone(),
        out_trade_no: p.out_trade_no.clone(),
        amount,
        reason: None,
        status: TransferStatus::Pending,
        provider: p.provider.clone(),
        provider_refund_no: None,
        created_at: 1,
        updated_at: 1,
    }
}

fn postgres_url() -> String {
    common::postgres_url("PAYGLOT_TEST_POSTGRES")
}

/// Runs each store test against a fresh SQLite file (`sqlite::<test>`) and a fresh
/// PostgreSQL schema (`postgres::<test>`, ignored where PostgreSQL is not configured).
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = payglot::store::sqlite::SqliteStore::open(&dir.path().join("store.db")).await.unwrap();
                    super::$test("sqlite", std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "PostgreSQL not configured: set PAYGLOT_TEST_POSTGRES")]
                async fn $test() {
                    let store = super::fresh_pg(stringify!($test)).await;
                    super::$test("postgres", std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

on_both_stores!(
    payments_are_idempotent_and_settle_once,
    concurrent_duplicate_creates_make_one_payment,
    refunds_never_exceed_what_was_paid,
    the_outbox_is_claimed_in_order_with_leases,
    nonces_payouts_and_open_counts,
    due_checks_are_claimed_once_and_rescheduled,
    a_failing_write_among_concurrent_ones_undoes_only_itself,
    concurrent_settlements_each_write_their_row_and_one_event,
    a_backlog_waiting_for_its_retry_does_not_hide_due_events,
    underpayments_anomalies_and_the_providers_own_expiry,
    the_console_lists_counts_and_pages_payments
);

/// A PgStore in a schema of its own, so tests never see each other's rows.
pub async fn fresh_pg(name: &str) -> PgStore {
    // Within PostgreSQL's 63-byte names, with room for the random part.
    let name = &name[..name.len().min(24)];
    PgStore::open(&common::postgres_store_url(name).await, 8).await.expect("store opens")
}

async fn payments_are_idempotent_and_settle_once(backend: &str, store: Arc<dyn Store>) {
    let p = payment("m", "T-1", 100);
    assert!(matches!(store.insert_payment(&p, "fp1", 100).await.unwrap(), Inserted::New), "{backend}");
    let mut again = payment("m", "T-1", 100);
    again.payment_id = new_payment_id(2);
    match store.insert_payment(&again, "fp2", 100).await.unwrap() {
        Inserted::Existing(existing, fp) => {
            assert_eq!((existing.payment_id.as_str(), fp.as_str()), (p.payment_id.as_str(), "fp1"), "{backend}")
        }
        Inserted::New => panic!("{backend}: a second payment with the same out_trade_no"),
    }
    assert!(matches!(store.insert_payment(&payment("other", "T-1", 100), "fp", 100).await.unwrap(), Inserted::New));

    store.record_created(&p.payment_id, Some("PT-1"), &Action::None, None, 2).await.unwrap();
    let Settled::Moved(s) = store.settle_payment(&p.payment_id, &paid(), 3).await.unwrap() else { panic!("{backend}") };
    assert_eq!(
        (s.status, s.paid_amount, s.provider_trade_no.as_deref()),
        (PaymentStatus::Succeeded, Some(100), Some("PT-1"))
    );
    let closed = Settlement::to(PaymentStatus::Closed);
    assert!(
        matches!(store.settle_payment(&p.payment_id, &closed, 4).await.unwrap(), Settled::Unchanged(_)),
        "{backend}: final stays final"
    );
    assert!(matches!(store.settle_payment(&p.payment_id, &paid(), 4).await.unwrap(), Settled::Unchanged(_)));
    let events = store.events_for_payment(&p.payment_id).await.unwrap();
    assert_eq!(events.len(), 1, "{backend}: one event");
    assert_eq!(events[0].0.kind, "payment.succeeded");
    let by_no = store.payment_by_out_trade_no("m", "T-1").await.unwrap().unwrap();
    assert_eq!(by_no.status, PaymentStatus::Succeeded);
    assert!(store.payment_by_out_trade_no("m", "nope").await.unwrap().is_none());
    assert_eq!(by_no.door, None);

    // A payment made through a front door keeps the door and the school's fields.
    let mut through_door = payment("m", "T-door", 100);
    let door = Door {
        dialect: "xxpay".into(),
        account: "S-100".into(),
        fields: [("productId".to_string(), "8006".to_string())].into_iter().collect(),
    };
    through_door.door = Some(door.clone());
    store.insert_payment(&through_door, "fp", 100).await.unwrap();
    let stored = store.payment_by_id(&through_door.payment_id).await.unwrap().unwrap();
    assert_eq!(stored.door, Some(door), "{backend}");
    store.ping().await.unwrap();
}

async fn concurrent_duplicate_creates_make_one_payment(backend: &str, store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut p = payment("m", "SAME", 100);
            p.payment_id = format!("P{i:029}");
            matches!(store.insert_payment(&p, "fp", 100).await.unwrap(), Inserted::New)
        }));
    }
    let mut new = 0;
    for t in tasks {
        new += t.await.unwrap() as usize;
    }
    assert_eq!(new, 1, "{backend}");
}

async fn refunds_never_exceed_what_was_paid(backend: &str, store: Arc<dyn Store>) {
    let p = payment("m", "T-R", 1000);
    store.insert_payment(&p, "fp", 100).await.unwrap();
    let r0 = refund(&p, "R-0", 10);
    assert!(
        matches!(store.insert_refund(&r0, "f").await.unwrap(), RefundInserted::NotPaid(PaymentStatus::Pending)),
        "{backend}"
    );
    store.settle_payment(&p.payment_id, &paid(), 2).await.unwrap();

    let r1 = refund(&p, "R-1", 600);
    assert!(matches!(store.insert_refund(&r1, "f1").await.unwrap(), RefundInserted::New));
    // R-1 is still pending: it counts against what is refundable.
    let r2 = refund(&p, "R-2", 401);
    assert!(matches!(store.insert_refund(&r2, "f2").await.unwrap(), RefundInserted::Exceeds(400)), "{backend}");
    let r1s = store.settle_refund(&r1.refund_id, TransferStatus::Succeeded, Some("PR1"), true, 3).await.unwrap();
    assert_eq!((r1s.status, r1s.provider_refund_no.as_deref()), (TransferStatus::Succeeded, Some("PR1")));
    let again = store.settle_refund(&r1.refund_id, TransferStatus::Failed, None, true, 4).await.unwrap();
    assert_eq!(again.status, TransferStatus::Succeeded, "{backend}: final stays final");
    let r3 = refund(&p, "R-3", 400);
    assert!(matches!(store.insert_refund(&r3, "f3").await.unwrap(), RefundInserted::New));
    store.settle_refund(&r3.refund_id, TransferStatus::Succeeded, None, true, 5).await.unwrap();
    assert!(matches!(store.insert_refund(&refund(&p, "R-4", 1), "f4").await.unwrap(), RefundInserted::Exceeds(0)));
    match store.insert_refund(&refund(&p, "R-1", 600), "f1").await.unwrap() {
        RefundInserted::Existing(r, fp) => assert_eq!((r.refund_id, fp), (r1.refund_id.clone(), "f1".to_string())),
        other => panic!("{backend}: {other:?}"),
    }
    let payment = store.payment_by_id(&p.payment_id).await.unwrap().unwrap();
    assert_eq!(payment.refunded_amount, 1000, "{backend}");
    let kinds: Vec<String> =
        store.events_for_payment(&p.payment_id).await.unwrap().into_iter().map(|(e, _)| e.kind).collect();
    assert_eq!(kinds, vec!["payment.succeeded", "refund.succeeded", "refund.succeeded"], "{backend}");
    assert_eq!(store.refund_by_out_no("m", "R-3").await.unwrap().unwrap().status, TransferStatus::Succeeded);
}

async fn the_outbox_is_claimed_in_order_with_leases(backend: &str, store: Arc<dyn Store>) {
    let p = payment("m", "T-O", 1000);
    store.insert_payment(&p, "fp", 100).await.unwrap();
    store.settle_payment(&p.payment_id, &paid(), 10).await.unwrap();
    let r = refund(&p, "R", 100);
    store.insert_refund(&r, "f").await.unwrap();
    store.settle_refund(&r.refund_id, TransferStatus::Succeeded, None, true, 10).await.unwrap();

    let claimed = store.claim_due_events(10, 10, 30).await.unwrap();
    assert_eq!(claimed.len(), 1, "{backend}: one event per payment at a time, the earliest");
    assert_eq!(claimed[0].kind, "payment.succeeded");
    assert!(store.claim_due_events(11, 10, 30).await.unwrap().is_empty(), "{backend}: claimed by another");
    // The claimant died: after its lease the event is taken over.
    let taken = store.claim_due_events(41, 10, 30).await.unwrap();
    assert_eq!(taken.len(), 1, "{backend}");
    assert_eq!(taken[0].id, claimed[0].id);
    store.mark_delivered(&taken[0].id, 42).await.unwrap();
    let next = store.claim_due_events(42, 10, 30).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].kind, "refund.succeeded", "{backend}: then the refund, in order");
    store.mark_attempt_failed(&next[0].id, "HTTP 500", Some(100), 43).await.unwrap();
    assert!(store.claim_due_events(99, 10, 30).await.unwrap().is_empty(), "{backend}: not before its retry");
    let retry = store.claim_due_events(100, 10, 30).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    store.mark_attempt_failed(&retry[0].id, "HTTP 500", None, 101).await.unwrap();
    let states: Vec<EventState> =
        store.events_for_payment(&p.payment_id).await.unwrap().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, vec![EventState::Delivered, EventState::Failed], "{backend}");
}

async fn nonces_payouts_and_open_counts(backend: &str, store: Arc<dyn Store>) {
    assert!(store.remember_nonce("m", "n-1", 100, 0).await.unwrap());
    assert!(!store.remember_nonce("m", "n-1", 101, 0).await.unwrap(), "{backend}: replay");
    assert!(store.remember_nonce("other", "n-1", 101, 0).await.unwrap(), "{backend}: per merchant");
    assert!(store.remember_nonce("m", "n-1", 1000, 500).await.unwrap(), "{backend}: forgotten after the window");

    let payout = Payout {
        payout_id: new_transfer_id('W', 1),
        out_payout_no: "W-1".into(),
        merchant_id: "m".into(),
        amount: 500,
        currency: "CNY".into(),
        payee: Payee {
            account_type: "bank".into(),
            account_name: "张三".into(),
            account_no: "6222021234567890".into(),
            bank_code: "HPT00002".into(),
            bank_name: "中国工商银行".into(),
            province: String::new(),
            city: String::new(),
            account_attr: None,
        },
        remark: None,
        status: TransferStatus::Pending,
        provider: "acct".into(),
        provider_payout_no: None,
        notify_url: Some("http://m/n".into()),
        created_at: 1,
        updated_at: 1,
    };
    assert!(matches!(store.insert_payout(&payout, "f").await.unwrap(), PayoutInserted::New));
    assert!(matches!(store.insert_payout(&payout, "f").await.unwrap(), PayoutInserted::Existing(..)));
    let p = payment("m", "T-C", 100);
    store.insert_payment(&p, "fp", 100).await.unwrap();
    assert_eq!(
        store.open_counts(&["acct".into(), "none".into()]).await.unwrap(),
        vec![("acct".into(), 2), ("none".into(), 0)]
    );
    let done = store.settle_payout(&payout.payout_id, TransferStatus::Succeeded, Some("T01"), true, 5).await.unwrap();
    assert_eq!((done.status, done.payee.account_no.as_str()), (TransferStatus::Succeeded, "6222021234567890"));
    assert_eq!(store.payout_by_out_no("m", "W-1").await.unwrap().unwrap().provider_payout_no.as_deref(), Some("T01"));
    assert_eq!(store.events_for_payment(&payout.payout_id).await.unwrap().len(), 1, "{backend}");
    assert_eq!(store.open_counts(&["acct".into()]).await.unwrap(), vec![("acct".into(), 1)]);
}

async fn due_checks_are_claimed_once_and_rescheduled(backend: &str, store: Arc<dyn Store>) {
    let p = payment("m", "T-K", 100);
    store.insert_payment(&p, "fp", 100).await.unwrap();
    let paid_one = payment("m", "T-P", 100);
    store.insert_payment(&paid_one, "fp", 100).await.unwrap();
    store.settle_payment(&paid_one.payment_id, &paid(), 50).await.unwrap();
    assert!(store.claim_due_checks(99, 10, 30).await.unwrap().is_empty(), "{backend}: not due yet");
    let due = store.claim_due_checks(100, 10, 30).await.unwrap();
    assert_eq!(due.len(), 1, "{backend}: pending payments only");
    assert_eq!((due[0].0.payment_id.as_str(), due[0].1, due[0].0.expires_at), (p.payment_id.as_str(), 0, 7200));
    assert!(store.claim_due_checks(101, 10, 30).await.unwrap().is_empty(), "{backend}: claimed by another instance");
    assert_eq!(store.claim_due_checks(131, 10, 30).await.unwrap().len(), 1, "{backend}: the lease ended");
    store.schedule_check(&p.payment_id, Some(200), 1).await.unwrap();
    assert!(store.claim_due_checks(199, 10, 30).await.unwrap().is_empty());
    let again = store.claim_due_checks(200, 10, 30).await.unwrap();
    assert_eq!(again[0].1, 1, "{backend}: the count of checks");
    store.schedule_check(&p.payment_id, None, 2).await.unwrap();
    assert!(store.claim_due_checks(10_000, 10, 30).await.unwrap().is_empty(), "{backend}: no more checks");
}

async fn a_failing_write_among_concurrent_ones_undoes_only_itself(backend: &str, store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.spawn(async move {
            let p = payment("m", &format!("B-{i}"), 100 + i);
            let inserted = store.insert_payment(&p, "fp", 100).await.map(|r| matches!(r, Inserted::New));
            let missing = store.settle_payment(&format!("missing-{i}"), &paid(), 3).await;
            (p.payment_id, inserted, missing.is_err())
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (payment_id, inserted, missing_failed) = done.unwrap();
        assert_eq!(inserted.ok(), Some(true), "{backend}");
        assert!(missing_failed, "{backend}: settling a payment that does not exist fails");
        let stored = store.payment_by_id(&payment_id).await.unwrap();
        assert!(stored.is_some(), "{backend}: the insert survived the failures around it");
    }
}

/// Settlements and create answers arriving together are written in batches (PostgreSQL: one
/// statement per kind of row); each payment still ends with its own values and exactly one event.
async fn concurrent_settlements_each_write_their_row_and_one_event(backend: &str, store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..30 {
        let p = payment("m", &format!("S-{i}"), 1000 + i);
        store.insert_payment(&p, "fp", 100).await.unwrap();
        ids.push((p.payment_id, 1000 + i));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (id, _)) in ids.iter().enumerate() {
        let (store, id) = (store.clone(), id.clone());
        tasks.spawn(async move {
            store.record_created(&id, Some(&format!("PT-{i}")), &Action::None, Some(600 + i as i64), 2).await.unwrap();
            // A duplicate callback racing the first: one moves the payment, the other finds it final.
            let s = paid();
            let (a, b) = tokio::join!(store.settle_payment(&id, &s, 3), store.settle_payment(&id, &s, 3));
            [a.unwrap(), b.unwrap()].iter().filter(|s| matches!(s, Settled::Moved(_))).count()
        });
    }
    while let Some(moved) = tasks.join_next().await {
        assert_eq!(moved.unwrap(), 1, "{backend}: one of two settlements moves the payment");
    }
    for (i, (id, amount)) in ids.iter().enumerate() {
        let p = store.payment_by_id(id).await.unwrap().unwrap();
        assert_eq!(p.status, PaymentStatus::Succeeded, "{backend}");
        assert_eq!(p.paid_amount, Some(*amount), "{backend}: its own amount, not a neighbour's");
        assert_eq!(p.provider_trade_no.as_deref(), Some(format!("PT-{i}").as_str()), "{backend}");
        assert_eq!(p.expires_at, 600 + i as i64, "{backend}");
        let events = store.events_for_payment(id).await.unwrap();
        assert_eq!(events.len(), 1, "{backend}: exactly one event for {id}");
        assert_eq!((events[0].0.kind.as_str(), events[0].1), ("payment.succeeded", EventState::Pending));
    }
    assert_eq!(store.claim_due_events(10, 100, 30).await.unwrap().len(), 30, "{backend}: every event claimable");

    // A timeline flush of several entries reads back in the order noted.
    let entry = |kind: &str, at_ms| TimelineEntry {
        subject: ids[0].0.clone(),
        at_ms,
        kind: kind.into(),
        detail: serde_json::json!({"k": kind}),
    };
    store.append_timeline(vec![entry("upstream", 5), entry("callback", 4), entry("notification", 6)]).await.unwrap();
    let read: Vec<(String, i64, serde_json::Value)> =
        store.timeline(&ids[0].0).await.unwrap().into_iter().map(|e| (e.kind, e.at_ms, e.detail)).collect();
    assert_eq!(
        read,
        vec![
            ("upstream".into(), 5, serde_json::json!({"k": "upstream"})),
            ("callback".into(), 4, serde_json::json!({"k": "callback"})),
            ("notification".into(), 6, serde_json::json!({"k": "notification"})),
        ],
        "{backend}"
    );
}

/// A merchant whose endpoint is down builds up events waiting for their retry; a claim smaller
/// than that backlog still finds the events that are due.
async fn a_backlog_waiting_for_its_retry_does_not_hide_due_events(backend: &str, store: Arc<dyn Store>) {
    for i in 0..12 {
        let p = payment("m", &format!("W-{i}"), 100);
        store.insert_payment(&p, "fp", 100).await.unwrap();
        store.settle_payment(&p.payment_id, &paid(), 10).await.unwrap();
    }
    for e in store.claim_due_events(10, 100, 30).await.unwrap() {
        store.mark_attempt_failed(&e.id, "connection refused", Some(5000), 11).await.unwrap();
    }
    let due = payment("m", "W-due", 100);
    store.insert_payment(&due, "fp", 100).await.unwrap();
    store.settle_payment(&due.payment_id, &paid(), 12).await.unwrap();
    let claimed = store.claim_due_events(20, 3, 30).await.unwrap();
    assert_eq!(claimed.len(), 1, "{backend}: only the due event, behind 12 waiting ones");
    assert_eq!(claimed[0].payment_id, due.payment_id, "{backend}");
    store.mark_delivered(&claimed[0].id, 21).await.unwrap();
    assert_eq!(store.claim_due_events(5000, 20, 30).await.unwrap().len(), 12, "{backend}: the backlog at its retry");
}

async fn underpayments_anomalies_and_the_providers_own_expiry(backend: &str, store: Arc<dyn Store>) {
    use payglot::store::{AnomalyKind, NewAnomaly};
    let p = payment("m", "T-A", 100_000);
    store.insert_payment(&p, "fp", 100).await.unwrap();
    // The provider's order lifetime only ever moves the expiry earlier.
    store.record_created(&p.payment_id, Some("PT"), &Action::None, Some(600), 2).await.unwrap();
    store.record_created(&p.payment_id, None, &Action::None, Some(9000), 3).await.unwrap();
    assert_eq!(store.payment_by_id(&p.payment_id).await.unwrap().unwrap().expires_at, 600, "{backend}");

    let anomaly = NewAnomaly {
        kind: AnomalyKind::Underpaid,
        payment_id: p.payment_id.clone(),
        provider: "acct".into(),
        detail: serde_json::json!({"due": 100_000, "paid": 1}),
    };
    let underpaid = Settlement {
        status: PaymentStatus::Failed,
        paid_amount: Some(1),
        event: Some(EventType::PaymentAmountMismatch),
        anomaly: Some(anomaly.clone()),
        ..Default::default()
    };
    let Settled::Moved(failed) = store.settle_payment(&p.payment_id, &underpaid, 4).await.unwrap() else {
        panic!("{backend}")
    };
    assert_eq!(
        (failed.status, failed.paid_amount, failed.underpayment()),
        (PaymentStatus::Failed, Some(1), Some((100_000, 1)))
    );
    let events = store.events_for_payment(&p.payment_id).await.unwrap();
    assert_eq!(events.len(), 1, "{backend}");
    assert_eq!(events[0].0.kind, "payment.amount_mismatch", "{backend}");
    assert!(events[0].0.body.contains(r#""amount_mismatch":{"due":100000,"paid":1}"#), "{}", events[0].0.body);
    // A later "paid" changes nothing.
    assert!(matches!(store.settle_payment(&p.payment_id, &paid(), 5).await.unwrap(), Settled::Unchanged(_)));

    let listed = store.anomalies(Some("acct"), None, 0, i64::MAX, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "{backend}");
    assert_eq!((listed[0].kind.as_str(), listed[0].detail["paid"].as_i64()), ("amount_mismatch_underpaid", Some(1)));
    assert!(!store.record_anomaly(&anomaly, 6).await.unwrap(), "{backend}: recorded once");
    assert!(store.anomalies(Some("other"), None, 0, i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(store.anomalies(None, Some(&p.payment_id), 0, i64::MAX, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_nonces_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let now = now_unix();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.remember_nonce("m", "nonce-1", now, now - 300).await.unwrap());
        assert!(!store.remember_nonce("m", "nonce-1", now, now - 300).await.unwrap());
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(!store.remember_nonce("m", "nonce-1", now + 1, now - 299).await.unwrap(), "a replay after a restart");
    assert!(store.remember_nonce("m", "nonce-2", now + 1, now - 299).await.unwrap());
    assert!(store.remember_nonce("other", "nonce-1", now + 1, now - 299).await.unwrap(), "per merchant");
}

/// The PostgreSQL server of `PAYGLOT_TEST_POSTGRES` with TLS: `require` encrypts (the
/// server's own session says so), `verify-full` checks the certificate and its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL not configured: set PAYGLOT_TEST_POSTGRES")]
async fn postgres_over_tls_require_and_verify_full() {
    let url = postgres_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = PgStore::open(&format!("{url}{sep}sslmode=require"), 2).await.expect("TLS with sslmode=require");
    store.ping().await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let tls_sessions: i64 = client
        .query_one("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.application_name = 'payglot'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(tls_sessions >= 1, "payglot's sessions are encrypted");
    // verify-full: the public roots do not know a local server's certificate.
    let refused = PgStore::open(&format!("{url}{sep}sslmode=verify-full"), 1).await;
    assert!(refused.is_err(), "an unknown certificate is refused");
    // With the server's own certificate as root, and the name it was issued for.
    let cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    if std::path::Path::new(cert).exists() && url.contains("127.0.0.1") {
        let by_name = url.replace("127.0.0.1", "localhost");
        let ok = PgStore::open(&format!("{by_name}{sep}sslmode=verify-full&sslrootcert={cert}"), 1).await;
        assert!(ok.is_ok(), "verify-full with the server's certificate: {:?}", ok.err());
        let wrong_name = PgStore::open(&format!("{url}{sep}sslmode=verify-full&sslrootcert={cert}"), 1).await;
        assert!(wrong_name.is_err(), "the certificate is for localhost, not 127.0.0.1");
    }
}

async fn the_console_lists_counts_and_pages_payments(backend: &str, store: Arc<dyn Store>) {
    use payglot::store::PaymentFilter;
    let hour = 1_796_190_000 - 1_796_190_000 % 3600;
    let mut made = Vec::new();
    for i in 0..7i64 {
        let mut p = payment(if i < 5 { "school-a" } else { "school-b" }, &format!("C-{i}"), 100 + i);
        p.provider = if i % 2 == 0 { "acct-even".into() } else { "acct-odd".into() };
        p.channel = if i == 6 { Channel::Wechat } else { Channel::Alipay };
        // Two hours: 0..4 in the first, 4..7 in the second, two of them in the same second.
        p.created_at = hour + if i < 4 { 60 * i } else { 3600 + 60 * (i / 5) };
        store.insert_payment(&p, "fp", p.created_at + 60).await.unwrap();
        made.push(p);
    }
    store.settle_payment(&made[1].payment_id, &paid(), hour + 100).await.unwrap();
    store.settle_payment(&made[6].payment_id, &Settlement::to(PaymentStatus::Closed), hour + 4000).await.unwrap();
    let ids = |ps: Vec<Payment>| ps.into_iter().map(|p| p.out_trade_no).collect::<Vec<_>>();

    let all = store.list_payments(&PaymentFilter::default(), 100).await.unwrap();
    assert_eq!(all.len(), 7, "{backend}");
    assert!(
        all.windows(2).all(|w| (w[0].created_at, &w[0].payment_id) > (w[1].created_at, &w[1].payment_id)),
        "{backend}: newest first"
    );
    // Pages of 3 cover everything once.
    let mut paged = Vec::new();
    let mut filter = PaymentFilter::default();
    loop {
        let page = store.list_payments(&filter, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        filter.after = Some((last.created_at, last.payment_id.clone()));
        paged.extend(page);
    }
    assert_eq!(ids(paged), ids(all.clone()), "{backend}: pages");
    let one = |f: PaymentFilter| {
        let store = store.clone();
        async move { ids(store.list_payments(&f, 100).await.unwrap()) }
    };
    assert_eq!(
        one(PaymentFilter { merchant_id: Some("school-b".into()), ..Default::default() }).await.len(),
        2,
        "{backend}"
    );
    assert_eq!(one(PaymentFilter { id: Some("C-3".into()), ..Default::default() }).await, ["C-3"], "{backend}");
    assert_eq!(
        one(PaymentFilter { id: Some(made[2].payment_id.clone()), ..Default::default() }).await,
        ["C-2"],
        "{backend}"
    );
    assert_eq!(
        one(PaymentFilter { status: Some(PaymentStatus::Succeeded), ..Default::default() }).await,
        ["C-1"],
        "{backend}"
    );
    assert_eq!(
        one(PaymentFilter { provider: Some("acct-even".into()), channel: Some(Channel::Alipay), ..Default::default() })
            .await,
        ["C-4", "C-2", "C-0"],
        "{backend}"
    );
    assert_eq!(
        one(PaymentFilter { from: Some(hour + 60), to: Some(hour + 180), ..Default::default() }).await,
        ["C-2", "C-1"],
        "{backend}"
    );
    assert!(one(PaymentFilter { scene: Some(Scene::Barcode), ..Default::default() }).await.is_empty(), "{backend}");

    let mut counts = store.payment_counts(hour).await.unwrap();
    counts.sort_by(|a, b| (a.hour, &a.provider, a.status.as_str()).cmp(&(b.hour, &b.provider, b.status.as_str())));
    let counts: Vec<(i64, &str, &str, i64)> =
        counts.iter().map(|c| (c.hour - hour, c.provider.as_str(), c.status.as_str(), c.count)).collect();
    let mut expected = vec![
        (0, "acct-even", "pending", 2),
        (0, "acct-odd", "pending", 1),
        (0, "acct-odd", "succeeded", 1),
        (3600, "acct-even", "pending", 1),
        (3600, "acct-odd", "pending", 1),
        (3600, "acct-even", "closed", 1),
    ];
    expected.sort();
    assert_eq!(counts, expected, "{backend}");
    assert_eq!(store.payment_counts(hour + 3600).await.unwrap().iter().map(|c| c.count).sum::<i64>(), 3, "{backend}");
    assert_eq!(store.refunds_for_payment(&made[1].payment_id).await.unwrap().len(), 0, "{backend}");
    store.insert_refund(&refund(&made[1], "CR-1", 50), "fp").await.unwrap();
    assert_eq!(store.refunds_for_payment(&made[1].payment_id).await.unwrap()[0].out_refund_no, "CR-1", "{backend}");
    let backlog = store.requery_backlog(hour + 200).await.unwrap();
    assert_eq!((backlog.scheduled, backlog.due), (5, 2), "{backend}: C-0 and C-2 due by then, C-1 and C-6 final");
}
