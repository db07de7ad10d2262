//! Simulated providers: the provider side of each dialect plus an in-memory ledger, served
//! over real HTTP so a new user can run the whole flow on one machine and integration tests
//! talk to something that checks signatures as strictly as a real provider.
//!
//! Paths: each dialect lives under its own prefix (`/xxpay/...`, `/zhixiao/...`,
//! `/xiaojitong/...`, `/jings/...`, `/mct/...`); a provider account whose `base_url` is
//! `http://{sandbox.listen}/{dialect}` is served by the sandbox with that account's
//! credentials and options. A payment is paid by `POST /{dialect}/pay/{order}` where `{order}`
//! is the provider's order number or the merchant's (payglot's payment_id); the pay page at
//! the same path with GET has a button for it. The sandbox then sends the dialect's signed
//! callback and retries it until acked. An xxpay payout completes with
//! `POST /xxpay/payout/{order}`.
//!
//! Control for tests and demos (not part of any provider): `GET /_sandbox/stats` counts the
//! provider API requests each dialect received; `POST /_sandbox/fault?dialect=D&mode=M` makes a
//! dialect answer every API request with HTTP 500 (`mode=error500`), process requests but
//! answer HTTP 500 (`mode=lose_answers`, an answer lost on the way), drop its callbacks
//! (`mode=drop_callbacks`) or behave again (`mode=ok`).
//!
//! `/merchant/notify` is a demo merchant: it accepts payglot's notifications (answering 200)
//! and `GET /merchant/events` lists what it received, so the first run needs no merchant code;
//! `/merchant/{dialect}/notify` takes a front door's callbacks in that dialect.
//!
//! The answers and callbacks are built by each dialect's `provider` module, which the front
//! doors (`compat`) answer with too; this module adds only the ledger and the routing.

pub mod jings;
pub mod ledger;
pub mod mct;
pub mod merchant;
pub mod xiaojitong;
pub mod xxpay;
pub mod zhixiao;

use crate::config::{Config, ProviderConfig};
use crate::dialects::credential;
use crate::http::{read_request, serve_http, HttpIn, Reply};
use crate::upstream::Upstream;
use ledger::{Ledger, Notifier};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The credentials the sandbox knows, per dialect, by the account id each dialect sends.
#[derive(Default)]
pub struct Accounts {
    /// mch_id → (app_id, key)
    pub xxpay: HashMap<String, (String, String)>,
    /// mid → (key, paytype: 1 wechat, 2 alipay from the account's `options.wallet`)
    pub xiaojitong: HashMap<String, (String, i64)>,
    /// appid → envelope
    pub zhixiao: HashMap<String, crate::dialects::zhixiao::Envelope>,
    /// uid → token
    pub jings: HashMap<String, String>,
    /// open_id → (envelope, shop_pass)
    pub mct: HashMap<String, (crate::dialects::mct::Envelope, String)>,
}

/// All simulated providers behind one listener.
pub struct Sandbox {
    pub base_url: String,
    ledger: Mutex<Ledger>,
    pub accounts: Mutex<Accounts>,
    pub notifier: Notifier,
    /// The providers' own rate limits (jings), enforced as strictly as the documents say.
    pub limits: crate::upstream::RateLimits,
    /// Per dialect: API requests received, and the fault mode set by `/_sandbox/fault`.
    requests: Mutex<HashMap<String, u64>>,
    faults: Mutex<HashMap<String, Fault>>,
    /// A demo merchant endpoint that takes payglot's notifications (`/merchant/...`).
    pub merchant: merchant::DemoMerchant,
}

/// A misbehaviour a test or demo can switch on per dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every API request is answered with HTTP 500.
    Error500,
    /// Requests are processed, then answered with HTTP 500 (the answer was lost).
    LoseAnswers,
    /// Callbacks are never sent (the payment is still paid at the provider).
    DropCallbacks,
}

pub(crate) fn text(status: u16, body: impl Into<String>) -> Reply {
    Reply { status, content_type: "text/plain; charset=utf-8", body: body.into() }
}

pub(crate) fn json_reply(body: String) -> Reply {
    Reply { status: 200, content_type: "application/json", body }
}

impl Sandbox {
    /// A sandbox at `base_url` (like `http://127.0.0.1:8090`) that sends callbacks with
    /// `upstream` and retries them after each of `notify_retry_secs`.
    pub fn new(base_url: &str, upstream: Arc<Upstream>, notify_retry_secs: Vec<u64>) -> Self {
        Sandbox {
            base_url: base_url.to_string(),
            ledger: Mutex::new(Ledger::default()),
            accounts: Mutex::new(Accounts::default()),
            notifier: Notifier { upstream, retry_secs: notify_retry_secs, attempts: Arc::new(AtomicU64::new(0)) },
            limits: Default::default(),
            requests: Default::default(),
            faults: Default::default(),
            merchant: merchant::DemoMerchant::default(),
        }
    }

    /// The sandbox a routes.yaml asks for, serving every provider account that points at it.
    pub fn from_config(config: &Config, upstream: Arc<Upstream>) -> Option<Self> {
        let sandbox = config.sandbox.as_ref()?;
        let me = Sandbox::new(&format!("http://{}", sandbox.listen), upstream, sandbox.notify_retry_secs.clone());
        for p in config.providers.values() {
            if p.base_url == me.url(&p.dialect) {
                me.add_account(p);
            }
        }
        Some(me)
    }

    /// The base URL of one simulated provider.
    pub fn url(&self, dialect: &str) -> String {
        format!("{}/{dialect}", self.base_url)
    }

    /// Serves `provider`'s account with its credentials (as validated by its dialect).
    pub fn add_account(&self, p: &ProviderConfig) {
        let c = |k: &str| credential(p, k);
        let mut a = self.accounts();
        match p.dialect.as_str() {
            "xxpay" => {
                a.xxpay.insert(c("mch_id"), (c("app_id"), c("key")));
            }
            "xiaojitong" => {
                let paytype = if p.options.get("wallet").map(String::as_str) == Some("alipay") { 2 } else { 1 };
                a.xiaojitong.insert(c("mid"), (c("key"), paytype));
            }
            "zhixiao" => {
                if let Ok(env) = crate::dialects::zhixiao::Envelope::for_account(p) {
                    a.zhixiao.insert(c("appid"), env);
                }
            }
            "jings" => {
                a.jings.insert(c("uid"), c("token"));
            }
            "mct" => {
                if let Ok(env) = crate::dialects::mct::Envelope::for_account(p) {
                    let pass = p
                        .credentials
                        .get("shop_pass")
                        .map(|s| s.expose().to_string())
                        .unwrap_or_else(|| "123456".into());
                    a.mct.insert(c("open_id"), (env, pass));
                }
            }
            _ => {}
        }
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn accounts(&self) -> MutexGuard<'_, Accounts> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn handle(&self, request: HttpIn) -> Reply {
        let path = request.path.clone();
        let (dialect, rest) = match path.trim_start_matches('/').split_once('/') {
            Some((d, r)) => (d.to_string(), format!("/{r}")),
            None => (path.trim_start_matches('/').to_string(), "/".to_string()),
        };
        if dialect == "_sandbox" {
            return self.control(&rest, &request);
        }
        // The pay page and pay action are the same for every dialect.
        if let Some(order) = rest.strip_prefix("/pay/") {
            return match request.method.as_str() {
                "GET" => self.pay_page(&dialect, order),
                "POST" => self.pay(&dialect, order),
                _ => text(405, "GET or POST"),
            };
        }
        if dialect != "merchant" {
            *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry(dialect.clone()).or_default() += 1;
            if self.fault(&dialect) == Some(Fault::Error500) {
                return text(500, "sandbox fault: error500");
            }
        }
        let reply = match dialect.as_str() {
            "xxpay" => xxpay::handle(self, &rest, &request),
            "xiaojitong" => xiaojitong::handle(self, &rest, &request),
            "zhixiao" => zhixiao::handle(self, &rest, &request),
            "jings" => jings::handle(self, &rest, &request),
            "mct" => mct::handle(self, &rest, &request),
            "merchant" => self.merchant.handle(&rest, &request),
            _ => text(404, "no such sandbox provider"),
        };
        if dialect != "merchant" && self.fault(&dialect) == Some(Fault::LoseAnswers) {
            // Done, but the answer never arrives whole (as when the caller dies mid-call).
            return text(500, "sandbox fault: lose_answers (the request was processed)");
        }
        reply
    }

    fn fault(&self, dialect: &str) -> Option<Fault> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).get(dialect).copied()
    }

    /// Sends a callback unless the dialect's callbacks are switched off.
    pub(crate) fn send_notify(&self, dialect: &str, notify: ledger::Notify) {
        if self.fault(dialect) != Some(Fault::DropCallbacks) {
            self.notifier.spawn(notify);
        }
    }

    fn control(&self, path: &str, request: &HttpIn) -> Reply {
        match (request.method.as_str(), path) {
            ("GET", "/stats") => {
                let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone();
                json_reply(serde_json::json!({"requests": requests}).to_string())
            }
            ("POST", "/fault") => {
                let q: HashMap<String, String> =
                    crate::dialects::signing::parse_form(request.query.as_bytes()).into_iter().collect();
                let dialect = q.get("dialect").cloned().unwrap_or_default();
                let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
                match q.get("mode").map(String::as_str) {
                    Some("error500") => faults.insert(dialect, Fault::Error500),
                    Some("drop_callbacks") => faults.insert(dialect, Fault::DropCallbacks),
                    Some("lose_answers") => faults.insert(dialect, Fault::LoseAnswers),
                    Some("ok") => faults.remove(&dialect),
                    _ => return text(400, "mode: error500, lose_answers, drop_callbacks or ok"),
                };
                text(200, "ok")
            }
            _ => text(404, "no such sandbox control"),
        }
    }

    pub(crate) fn pay_page(&self, dialect: &str, number: &str) -> Reply {
        let ledger = self.ledger();
        let Some(order) = ledger.find_any(dialect, number).and_then(|no| ledger.order(&no).cloned()) else {
            return text(404, "no such order");
        };
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>{dialect} sandbox</title>\
             <h1>{dialect} sandbox</h1><p data-order=\"{no}\">Order {mno}: {yuan} yuan, <b>{status}</b></p>\
             <form method=post action=\"{base}/pay/{no}\"><button>Pay</button></form>",
            no = order.provider_no,
            mno = order.merchant_order_no,
            yuan = crate::money::fen_to_yuan(order.payable),
            status = order.status,
            base = self.url(dialect),
        );
        Reply { status: 200, content_type: "text/html; charset=utf-8", body }
    }

    /// Marks an order paid and sends its callback.
    fn pay(&self, dialect: &str, number: &str) -> Reply {
        let order = {
            let mut ledger = self.ledger();
            let Some(no) = ledger.find_any(dialect, number) else {
                return text(404, "no such order");
            };
            ledger.pay(&no).expect("found above")
        };
        let notify = match dialect {
            "xxpay" => xxpay::notify(self, &order),
            "xiaojitong" => xiaojitong::notify(self, &order),
            "zhixiao" => zhixiao::notify(self, &order),
            "jings" => jings::notify(self, &order),
            "mct" => mct::notify(self, &order, "1"),
            _ => None,
        };
        if let Some(n) = notify {
            self.send_notify(dialect, n);
        }
        json_reply(serde_json::json!({"order": order.provider_no, "merchant_order_no": order.merchant_order_no, "status": order.status}).to_string())
    }
}

/// Serves the sandbox on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, sandbox: Arc<Sandbox>, shutdown: watch::Receiver<bool>) {
    serve_http(
        listener,
        crate::config::ServerConfig::default(),
        move |req| {
            let sandbox = sandbox.clone();
            async move {
                match read_request(req, 1 << 20, std::time::Duration::from_secs(30)).await {
                    Ok(r) => sandbox.handle(r).await.into_response(),
                    Err(e) => Reply::error(&e.into()).into_response(),
                }
            }
        },
        shutdown,
    )
    .await
}
