//! Console page timings with a full store (`cargo bench --bench console`): writes
//! `PAYGLOT_BENCH_PAYMENTS` payments (default 100,000) over the last 24 hours into a fresh
//! SQLite store (5 provider accounts, 4 merchants, every status, an outbox event for each
//! finished one, delivered or given up), starts the gateway on it and times each console page as an operator's browser
//! would fetch it: 20 requests a page over one kept-alive connection, median and slowest,
//! whole round trip. Loopback only, bounded (the fill, then 20 requests a page).

use payglot::model::{Channel, PaymentStatus, Scene};
use payglot::store::{Settlement, Store};
use payglot::upstream::Upstream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-admin-token-0123456789";
const ACCOUNTS: [&str; 5] = ["xxpay-a", "xxpay-b", "xjt", "zx", "mct"];
const MERCHANTS: [&str; 4] = ["school-a", "school-b", "school-c", "school-d"];

mod support;

use support::{free_port, Proc};

fn routes_yaml(port: u16, admin: u16) -> String {
    let mut y = format!(
        "listen: 127.0.0.1:{port}\nadmin_listen: 127.0.0.1:{admin}\nadmin_token: {TOKEN}\npublic_url: http://127.0.0.1:{port}\nstore: sqlite://payglot.db\nproviders:\n"
    );
    for a in ACCOUNTS {
        let (dialect, creds) = match a {
            "xjt" => ("xiaojitong", "{ mid: \"2\", key: k0123456789 }".to_string()),
            "zx" => (
                "zhixiao",
                "{ appid: partner1, appsecret: s0123456789, aes_key: AD42F6697B035B7580E4FEF93BE20B4D }".into(),
            ),
            "mct" => ("mct", "{ open_id: o123, open_key: 0123456789abcdef0123456789abcdef }".into()),
            _ => ("xxpay", format!("{{ mch_id: \"{}\", app_id: app, key: k0123456789 }}", a.len())),
        };
        y.push_str(&format!(
            "  {a}:\n    dialect: {dialect}\n    base_url: http://127.0.0.1:1/{dialect}\n    credentials: {creds}\n"
        ));
    }
    y.push_str("merchants:\n");
    for m in MERCHANTS {
        y.push_str(&format!("  {m}:\n    key: {m}-key-0123456789\n    notify_url: https://{m}.example/notify\n    routes:\n      - to: xxpay-a\n"));
    }
    y
}

/// Writes `n` payments created over the last day, settled like a school's day goes: most
/// paid, some closed or failed, the last ones pending.
async fn fill(store: Arc<dyn Store>, n: usize, now: i64) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..64 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (chunk..n).step_by(64) {
                let merchant = MERCHANTS[i % MERCHANTS.len()];
                let mut p = payglot::test_support::payment_of(merchant, &format!("T{i:07}"), 100 + (i as i64 % 5000));
                p.provider = ACCOUNTS[i % ACCOUNTS.len()].to_string();
                p.channel = [Channel::Alipay, Channel::Wechat][i % 2];
                p.scene = [Scene::Qr, Scene::H5, Scene::Barcode][i % 3];
                p.created_at = now - 86_400 + (i as i64 * 86_400 / n as i64);
                p.updated_at = p.created_at;
                p.expires_at = p.created_at + 7200;
                store.insert_payment(&p, "fp", p.created_at + 60).await.unwrap();
                let status = match i % 20 {
                    0 => PaymentStatus::Failed,
                    1 | 2 => PaymentStatus::Closed,
                    _ if i > n - n / 50 => continue,
                    _ => PaymentStatus::Succeeded,
                };
                let settlement = Settlement { paid_amount: Some(p.amount), ..Settlement::to(status) };
                store.settle_payment(&p.payment_id, &settlement, p.created_at + 30).await.unwrap();
                // The merchants took their notifications, but for one in a hundred given up on.
                for (event, _) in store.events_for_payment(&p.payment_id).await.unwrap() {
                    if i % 100 == 3 {
                        store
                            .mark_attempt_failed(&event.id, "merchant answered HTTP 500", None, p.created_at + 90)
                            .await
                            .unwrap();
                    } else {
                        store.mark_delivered(&event.id, p.created_at + 31).await.unwrap();
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    eprintln!("filled {n} payments in {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    let n: usize = std::env::var("PAYGLOT_BENCH_PAYMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    std::fs::write(dir.path().join("routes.yaml"), routes_yaml(port, admin)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let now = payglot::model::now_unix();
    let (some_payment, some_out_trade_no) = runtime.block_on(async {
        let store: Arc<dyn Store> =
            Arc::new(payglot::store::sqlite::SqliteStore::open(&dir.path().join("payglot.db")).await.unwrap());
        fill(store.clone(), n, now).await;
        let filter = payglot::store::PaymentFilter { merchant_id: Some("school-c".into()), ..Default::default() };
        let p = store.list_payments(&filter, 1).await.unwrap().remove(0);
        (p.payment_id, p.out_trade_no)
    });
    let _gateway = Proc(
        Command::new(env!("CARGO_BIN_EXE_payglot"))
            .args(["serve", "--config"])
            .arg(dir.path().join("routes.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = Upstream::new();
    let base = format!("http://127.0.0.1:{admin}");
    let bearer = format!("Bearer {TOKEN}");
    runtime.block_on(async {
        for _ in 0..100 {
            if client.send("GET", &format!("{base}/livez"), &[], vec![], 200, 500).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let first_page = client
            .send("GET", &format!("{base}/console/payments"), &[("authorization", &bearer)], vec![], 1000, 10_000)
            .await
            .unwrap();
        let html = String::from_utf8_lossy(&first_page.body).into_owned();
        let marker = "id=\"next-page\" href=\"";
        let next =
            html.find(marker).map(|at| html[at + marker.len()..].split('"').next().unwrap().replace("&amp;", "&"));
        let today = payglot::model::rfc3339(now + 8 * 3600)[..10].to_string();
        let pages = [
            ("overview", "/console".to_string()),
            ("payments, first page", "/console/payments".into()),
            ("payments, next page", next.unwrap_or_default()),
            ("payments by merchant", "/console/payments?merchant=school-b".into()),
            ("payments by status (pending, rare)", "/console/payments?status=pending".into()),
            ("payments by account + channel + scene", "/console/payments?provider=zx&channel=wechat&scene=h5".into()),
            ("payments by out_trade_no", format!("/console/payments?q={some_out_trade_no}")),
            ("payments in a time range", format!("/console/payments?from={today}T08:00&to={today}T09:00")),
            ("one payment", format!("/console/payments/{some_payment}")),
            ("notifications", "/console/notifications".into()),
            ("notifications, failed", "/console/notifications?status=failed".into()),
            ("notifications of a merchant", "/console/notifications?merchant=school-c".into()),
            ("notifications of a merchant, pending", "/console/notifications?merchant=school-d&status=pending".into()),
            ("providers and routes", "/console/providers".into()),
            ("reconcile (the form)", "/console/reconcile".into()),
        ];
        println!("| page ({n} payments) | median ms | slowest ms | bytes |");
        println!("| --- | --- | --- | --- |");
        for (name, path) in pages {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..20 {
                let started = Instant::now();
                let a = client
                    .send("GET", &format!("{base}{path}"), &[("authorization", &bearer)], vec![], 1000, 10_000)
                    .await
                    .unwrap();
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(a.status, 200, "{path}: {}", String::from_utf8_lossy(&a.body));
                bytes = a.body.len();
            }
            times.sort_by(f64::total_cmp);
            println!("| {name} | {:.1} | {:.1} | {bytes} |", times[times.len() / 2], times[times.len() - 1]);
        }
    });
}
