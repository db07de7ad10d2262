//! A simulated xxpay provider: verifies every request's signature with the account's key,
//! refuses duplicate `mchOrderNo`, keeps a ledger, and after a payment is marked paid sends
//! the signed notify to the `notifyUrl` given at creation, retrying until the answer is
//! `success` (the document's 60/120/180/240/300 s, configurable).

use crate::dialects::xxpay::{provider, status_code, ACK};
use crate::model::{now_unix, PaymentStatus};
use crate::server::{HttpIn, Reply};
use crate::upstream::Upstream;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Order {
    pay_order_id: String,
    mch_id: String,
    app_id: String,
    product_id: String,
    mch_order_no: String,
    amount: i64,
    notify_url: String,
    param1: String,
    param2: String,
    status: PaymentStatus,
    pay_succ_time_ms: Option<i64>,
}

#[derive(Default)]
struct Ledger {
    accounts: HashMap<String, (String, String)>,
    orders: HashMap<String, Order>,
    by_mch_order: HashMap<(String, String), String>,
}

pub struct XxpaySandbox {
    base_url: String,
    ledger: Mutex<Ledger>,
    upstream: Arc<Upstream>,
    notify_retry_secs: Vec<u64>,
    next_order: AtomicU64,
    /// How many notifies were sent (each attempt), for tests and the pay page.
    pub notifies_sent: Arc<AtomicU64>,
}

fn text(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.into(),
    }
}

fn json_text(body: String) -> Reply {
    Reply {
        status: 200,
        content_type: "application/json",
        body,
    }
}

impl XxpaySandbox {
    pub fn new(base_url: &str, upstream: Arc<Upstream>, notify_retry_secs: Vec<u64>) -> Self {
        XxpaySandbox {
            base_url: base_url.to_string(),
            ledger: Mutex::new(Ledger::default()),
            upstream,
            notify_retry_secs,
            next_order: AtomicU64::new(1),
            notifies_sent: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn add_account(&self, mch_id: &str, app_id: &str, key: &str) {
        self.ledger()
            .accounts
            .insert(mch_id.to_string(), (app_id.to_string(), key.to_string()));
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key_for(&self, mch_id: &str) -> Option<String> {
        self.ledger()
            .accounts
            .get(mch_id)
            .map(|(_, key)| key.clone())
    }

    pub async fn handle(&self, path: &str, request: &HttpIn) -> Reply {
        match (request.method.as_str(), path) {
            ("POST", "/api/pay/create_order") => json_text(self.create_order(&request.body)),
            ("POST", "/api/pay/query_order") => json_text(self.query_order(&request.body)),
            ("GET", p) if p.starts_with("/pay/") => self.pay_page(&p[5..]),
            ("POST", p) if p.starts_with("/pay/") => self.pay(&p[5..]),
            _ => text(404, "no such xxpay endpoint"),
        }
    }

    fn create_order(&self, body: &[u8]) -> String {
        let fields = match provider::read_request(body, |m| self.key_for(m)) {
            Ok(f) => f,
            Err(message) => return provider::failure(&message),
        };
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        for required in [
            "mchId",
            "appId",
            "productId",
            "mchOrderNo",
            "currency",
            "amount",
            "notifyUrl",
            "subject",
            "body",
        ] {
            if get(required).is_empty() {
                return provider::failure(&format!("参数格式校验错误: {required} 不能为空"));
            }
        }
        let mut ledger = self.ledger();
        let (app_id, key) = ledger.accounts[&get("mchId")].clone();
        if get("appId") != app_id {
            return provider::failure("应用不存在");
        }
        let amount = match get("amount").parse::<i64>() {
            Ok(a) if a > 0 => a,
            _ => return provider::failure("参数格式校验错误: amount"),
        };
        if get("mchOrderNo").len() > 30 {
            return provider::failure("参数格式校验错误: mchOrderNo");
        }
        let index = (get("mchId"), get("mchOrderNo"));
        if ledger.by_mch_order.contains_key(&index) {
            return provider::failure("商户订单号重复");
        }
        let n = self.next_order.fetch_add(1, Ordering::Relaxed);
        let pay_order_id = format!("P01{}{:06}", now_unix(), n % 1_000_000);
        let order = Order {
            pay_order_id: pay_order_id.clone(),
            mch_id: get("mchId"),
            app_id,
            product_id: get("productId"),
            mch_order_no: get("mchOrderNo"),
            amount,
            notify_url: get("notifyUrl"),
            param1: get("param1"),
            param2: get("param2"),
            status: PaymentStatus::Pending,
            pay_succ_time_ms: None,
        };
        ledger.by_mch_order.insert(index, pay_order_id.clone());
        ledger.orders.insert(pay_order_id.clone(), order);
        let mut answer = Map::new();
        answer.insert("payOrderId".into(), Value::String(pay_order_id.clone()));
        answer.insert(
            "payParams".into(),
            serde_json::json!({"payUrl": format!("{}/pay/{pay_order_id}", self.base_url)}),
        );
        provider::success(answer, &key)
    }

    fn query_order(&self, body: &[u8]) -> String {
        let fields = match provider::read_request(body, |m| self.key_for(m)) {
            Ok(f) => f,
            Err(message) => return provider::failure(&message),
        };
        let ledger = self.ledger();
        let mch_id = fields.get("mchId").cloned().unwrap_or_default();
        let by_pay_id = fields
            .get("payOrderId")
            .and_then(|id| ledger.orders.get(id));
        let order = by_pay_id.or_else(|| {
            let no = fields.get("mchOrderNo").cloned().unwrap_or_default();
            ledger
                .by_mch_order
                .get(&(mch_id.clone(), no))
                .and_then(|id| ledger.orders.get(id))
        });
        let Some(order) = order.filter(|o| o.mch_id == mch_id) else {
            return provider::failure("订单不存在");
        };
        let key = ledger.accounts[&mch_id].1.clone();
        let mut answer = Map::new();
        for (k, v) in order_fields(order) {
            answer.insert(k, Value::String(v));
        }
        answer.insert("currency".into(), Value::String("cny".into()));
        provider::success(answer, &key)
    }

    fn pay_page(&self, pay_order_id: &str) -> Reply {
        let ledger = self.ledger();
        let Some(order) = ledger.orders.get(pay_order_id) else {
            return text(404, "no such order");
        };
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>xxpay sandbox</title>\
             <h1>xxpay sandbox</h1><p>Order {} for {} fen: <b>{}</b></p>\
             <form method=post><button>Pay</button></form>",
            order.mch_order_no, order.amount, order.status
        );
        Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }

    /// Marks an order paid and starts sending its notify.
    fn pay(&self, pay_order_id: &str) -> Reply {
        let (order, key) = {
            let mut ledger = self.ledger();
            let Some(order) = ledger.orders.get_mut(pay_order_id) else {
                return text(404, "no such order");
            };
            if order.status == PaymentStatus::Pending {
                order.status = PaymentStatus::Succeeded;
                order.pay_succ_time_ms = Some(now_unix() * 1000);
            }
            let order = order.clone();
            let key = ledger.accounts[&order.mch_id].1.clone();
            (order, key)
        };
        self.spawn_notify(&order, &key);
        json_text(serde_json::json!({"payOrderId": order.pay_order_id, "status": status_code(order.status)}).to_string())
    }

    fn spawn_notify(&self, order: &Order, key: &str) {
        let mut fields = order_fields(order);
        fields.insert("param1".into(), order.param1.clone());
        fields.insert("param2".into(), order.param2.clone());
        fields.insert("backType".into(), "2".into());
        let body = provider::notify_body(fields, key);
        let url = order.notify_url.clone();
        let upstream = self.upstream.clone();
        let delays: Vec<u64> = std::iter::once(0)
            .chain(self.notify_retry_secs.iter().copied())
            .collect();
        let sent = self.notifies_sent.clone();
        tokio::spawn(async move {
            for delay in delays {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                sent.fetch_add(1, Ordering::Relaxed);
                let answer = upstream
                    .send(
                        "POST",
                        &url,
                        &[("content-type", "application/x-www-form-urlencoded")],
                        body.clone().into_bytes(),
                        2000,
                        10_000,
                    )
                    .await;
                if matches!(&answer, Ok(a) if String::from_utf8_lossy(&a.body).trim() == ACK) {
                    return;
                }
            }
        });
    }
}

/// The order as query answers and notifies show it.
fn order_fields(order: &Order) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    f.insert("mchId".into(), order.mch_id.clone());
    f.insert("appId".into(), order.app_id.clone());
    f.insert("productId".into(), order.product_id.clone());
    f.insert("payOrderId".into(), order.pay_order_id.clone());
    f.insert("mchOrderNo".into(), order.mch_order_no.clone());
    f.insert("amount".into(), order.amount.to_string());
    f.insert("status".into(), status_code(order.status).to_string());
    if let Some(ms) = order.pay_succ_time_ms {
        f.insert("paySuccTime".into(), ms.to_string());
        f.insert("channelOrderNo".into(), format!("wx{}", order.pay_order_id));
    }
    f
}
