//! The floor of a query and of a create: only the steps payglot's guarantees require, each
//! on the real CPU with nothing around it (no HTTP, no JSON answer, no runtime, no log line).
//! BENCHMARKS.md compares their sum with nginx's whole proxied request: what a query or a
//! create can cost at best while it stays authenticated, replay-proof, verified and durable.
//! `cargo bench --bench floor`.
//!
//! A query via xxpay: the merchant's HMAC-SHA256, its nonce (the SQLite store's journal write),
//! the payment's point read (the store's own statement, on a file), the provider's signed
//! request, the provider's signed answer verified and read. The store's calls complete in
//! place, so they are polled once, without a runtime.
//!
//! A create's two durable writes (the pending payment before the provider is called, the
//! provider's answer after it) through the store's group-commit writer, `synchronous = FULL`,
//! 64 creates at a time as under load: measured as the CPU time of the whole process (both
//! threads, user and system), not its wall time, which is mostly waiting for the disk. The
//! kernel's work done outside the process (the filesystem's journal thread, I/O completions)
//! is not counted: a lower bound. The database goes in the system's temporary directory, which
//! must be a disk (on tmpfs an fsync does nothing).
//!
//! The nonce step runs at one `now`, so its one bucket grows to millions of nonces; under load
//! a check looks in about a dozen buckets of fewer each.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use payglot::config::{ProviderConfig, Secret};
use payglot::dialects::{self, xxpay, CreateOrder, Dialect, ProviderResponse};
use payglot::model::*;
use payglot::store::sqlite::SqliteStore;
use payglot::store::Store;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const KEY: &str = "k3y";
const MERCHANT_KEY: &str = "school-a-key-0123456789";

fn xxpay_account() -> Arc<dyn Dialect> {
    let mut p = ProviderConfig::with_defaults("bench", "xxpay");
    for (k, v) in [("mch_id", "20001222"), ("app_id", "app"), ("key", KEY)] {
        p.credentials.insert(k.to_string(), Secret::new(v));
    }
    dialects::build(&p).unwrap()
}

/// Polls a future that completes without waiting (the SQLite store's reads and nonces).
fn at_once<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("this store call waited"),
    }
}

fn payment(out_trade_no: &str) -> Payment {
    let now = now_unix();
    Payment {
        provider: "bench".into(),
        created_at: now,
        updated_at: now,
        expires_at: now + 7200,
        ..payglot::test_support::payment_of("school-a", out_trade_no, 19_800)
    }
}

/// The provider's signed answer to a query of `payment`: still paying (status 1), as the load
/// bench's stub answers it.
fn pending_answer(payment: &Payment) -> Vec<u8> {
    let mut fields = Map::new();
    for (k, v) in [
        ("mchId", "20001222"),
        ("appId", "app"),
        ("productId", "8007"),
        ("payOrderId", "P0120171012173939000001"),
        ("mchOrderNo", payment.payment_id.as_str()),
        ("amount", "19800"),
        ("status", "1"),
        ("currency", "cny"),
    ] {
        fields.insert(k.into(), Value::String(v.into()));
    }
    xxpay::provider::success(fields, KEY).into_bytes()
}

/// The merchant API signature of a GET of `path` (what the gateway computes to check it).
fn merchant_signature(path: &str) -> String {
    payglot::doors::merchant_api::auth::request_signature(
        MERCHANT_KEY,
        "1795391705",
        "0123456789abcdef0123456789abcdef",
        "GET",
        path,
        b"",
    )
}

fn query_floor(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(SqliteStore::open(&dir.path().join("floor.db"))).unwrap();
    let paying = payment("T1001");
    runtime.block_on(store.insert_payment(&paying, "fingerprint", now_unix() + 60)).unwrap();
    let dialect = xxpay_account();
    let answer = pending_answer(&paying);
    let now = now_unix();
    let path = "/v1/payments/T1001";
    let mut n = 0u64;
    let mut nonce = move || {
        n += 1;
        format!("{n:032x}")
    };

    let mut group = c.benchmark_group("query floor (xxpay)");
    group.bench_function("merchant HMAC-SHA256", |b| b.iter(|| black_box(merchant_signature(path))));
    group.bench_function("nonce (journal write)", |b| {
        b.iter(|| assert!(at_once(store.remember_nonce("school-a", &nonce(), now, now - 600)).unwrap()))
    });
    group.bench_function("payment read (SQLite)", |b| {
        b.iter(|| black_box(at_once(store.payment_by_out_trade_no("school-a", "T1001")).unwrap().unwrap()))
    });
    group.bench_function("provider request: encode + sign", |b| {
        b.iter(|| black_box(dialect.query_payment(black_box(&paying), now).unwrap()))
    });
    group.bench_function("provider answer: verify + decode", |b| {
        b.iter(|| {
            black_box(dialect.read_query(&paying, ProviderResponse { status: 200, body: black_box(&answer) }).unwrap())
        })
    });
    group.bench_function("all five", |b| {
        b.iter(|| {
            black_box(merchant_signature(path));
            assert!(at_once(store.remember_nonce("school-a", &nonce(), now, now - 600)).unwrap());
            let stored = at_once(store.payment_by_out_trade_no("school-a", "T1001")).unwrap().unwrap();
            black_box(dialect.query_payment(&stored, now).unwrap());
            black_box(dialect.read_query(&stored, ProviderResponse { status: 200, body: &answer }).unwrap())
        })
    });
    group.finish();
}

/// The CPU time this process (every thread) has used.
fn process_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for clock_gettime to fill.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) }, 0);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn create_floor(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(runtime.block_on(SqliteStore::open(&dir.path().join("floor.db"))).unwrap());
    let dialect = xxpay_account();
    let extra = Map::new();
    let order_payment = payment("T2001");
    let order =
        CreateOrder { extra: &extra, ..CreateOrder::new(&order_payment, "https://pay.example.edu/callbacks/bench") };
    let answer = xxpay::provider::create_answer(
        "P0120171012173939000002",
        serde_json::json!({"codeUrl": "weixin://wxpay/bizpayurl?pr=floor"}),
        KEY,
    )
    .into_bytes();
    let now = now_unix();
    let mut n = 0u64;

    let mut group = c.benchmark_group("create floor (xxpay)");
    group.bench_function("provider request: encode + sign", |b| {
        b.iter(|| black_box(dialect.create_payment(black_box(&order), now).unwrap()))
    });
    group.bench_function("provider answer: verify + decode", |b| {
        b.iter(|| black_box(dialect.read_create(&order, ProviderResponse { status: 200, body: &answer }).unwrap()))
    });
    group.bench_function("two durable writes, 64 at a time (process CPU)", |b| {
        b.iter_custom(|iters| {
            let started = process_cpu();
            runtime.block_on(async {
                let mut left = iters;
                while left > 0 {
                    let wave = left.min(64);
                    left -= wave;
                    let mut writes = tokio::task::JoinSet::new();
                    for _ in 0..wave {
                        n += 1;
                        let (store, p) = (store.clone(), payment(&format!("T{n}")));
                        writes.spawn(async move {
                            store.insert_payment(&p, "fingerprint", p.created_at + 60).await.unwrap();
                            let action =
                                Action::QrCode { qr_code: "weixin://wxpay/bizpayurl?pr=floor".into(), amount: None };
                            store
                                .record_created(&p.payment_id, Some("P01"), &action, None, p.created_at)
                                .await
                                .unwrap();
                        });
                    }
                    while writes.join_next().await.is_some() {}
                }
            });
            process_cpu() - started
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = query_floor, create_floor
}
criterion_main!(benches);
