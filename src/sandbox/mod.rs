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
//! provider API requests each dialect received and the callbacks sent (`attempts`) and still
//! being sent (`in_flight`: not acked, retries left); `POST /_sandbox/fault?dialect=D&mode=M` makes a
//! dialect answer every API request with HTTP 500 (`mode=error500`), process requests but
//! answer HTTP 500 (`mode=lose_answers`, an answer lost on the way), drop its callbacks
//! (`mode=drop_callbacks`) or behave again (`mode=ok`).
//!
//! `/merchant/notify` is a demo merchant: it accepts payglot's notifications (answering 200)
//! and `GET /merchant/events` lists what it received, so the first run needs no merchant code;
//! `/merchant/{dialect}/notify` takes a front door's callbacks in that dialect.
//!
//! The answers and callbacks are each dialect's `ProviderSide`, which the front doors
//! (`doors::compat`) answer with too; `provider` carries their calls out on the ledger for
//! every dialect alike, and this module adds only the routing and the controls.

pub mod ledger;
pub mod merchant;
pub mod provider;

use crate::config::{Config, ProviderConfig};
use crate::dialects::provider_side::{Answer, Request};
use crate::dialects::{self, credential};
use crate::http::{read_request, serve_http, HttpIn, Reply};
use crate::upstream::Upstream;
use ledger::{Ledger, Notifier};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The accounts the sandbox serves, by dialect and the account id its requests carry.
pub type Accounts = HashMap<(String, String), provider::Account>;

/// All simulated providers behind one listener.
pub struct Sandbox {
    pub base_url: String,
    ledger: Mutex<Ledger>,
    pub accounts: Mutex<Accounts>,
    pub notifier: Notifier,
    /// The providers' own rate limits (jings'), enforced as strictly as the documents say.
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
            notifier: Notifier {
                upstream,
                retry_secs: notify_retry_secs,
                attempts: Arc::new(AtomicU64::new(0)),
                in_flight: Arc::new(AtomicU64::new(0)),
            },
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
        let Some(spec) = dialects::spec(&p.dialect) else { return };
        if let Some(account) = provider::Account::of(spec, p) {
            self.accounts().insert((spec.name.to_string(), credential(p, spec.account_id)), account);
        }
    }

    /// The account of `dialect` that requests name `id`.
    pub fn account(&self, dialect: &str, id: &str) -> Option<provider::Account> {
        self.accounts().get(&(dialect.to_string(), id.to_string())).cloned()
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
        if dialect == "merchant" {
            return self.merchant.handle(&rest, &request);
        }
        let Some(spec) = dialects::spec(&dialect) else {
            return text(404, "no such sandbox provider");
        };
        // The pay page and the pay and payout actions are the same for every dialect.
        if let Some(order) = rest.strip_prefix("/pay/") {
            return match request.method.as_str() {
                "GET" => self.pay_page(spec.name, order),
                // The pay page's form says it is a browser: it is sent on to the return URL.
                "POST" if request.body.as_ref() == b"browser=1" => reply(provider::pay_in_browser(self, spec, order)),
                "POST" => reply(provider::pay(self, spec, order)),
                _ => text(405, "GET or POST"),
            };
        }
        if let (Some(order), true) = (rest.strip_prefix("/payout/"), spec.payouts) {
            return reply(provider::complete_payout(self, spec, order));
        }
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry(dialect.clone()).or_default() += 1;
        if self.fault(&dialect) == Some(Fault::Error500) {
            return text(500, "sandbox fault: error500");
        }
        let incoming = Request {
            method: &request.method,
            path: &rest,
            query: &request.query,
            body: &request.body,
            forwarded_for: request.header("x-forwarded-for"),
        };
        let answer = provider::handle(self, spec, &incoming);
        if self.fault(&dialect) == Some(Fault::LoseAnswers) {
            // Done, but the answer never arrives whole (as when the caller dies mid-call).
            return text(500, "sandbox fault: lose_answers (the request was processed)");
        }
        reply(answer)
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
                let callbacks = serde_json::json!({
                    "attempts": self.notifier.attempts.load(std::sync::atomic::Ordering::Relaxed),
                    "in_flight": self.notifier.in_flight.load(std::sync::atomic::Ordering::SeqCst),
                });
                json_reply(serde_json::json!({"requests": requests, "callbacks": callbacks}).to_string())
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
             <form method=post action=\"{base}/pay/{no}\"><input type=hidden name=browser value=1><button>Pay</button></form>",
            no = order.provider_no,
            mno = order.merchant_order_no,
            yuan = crate::money::fen_to_yuan(order.payable),
            status = order.status,
            base = self.url(dialect),
        );
        Reply { status: 200, content_type: "text/html; charset=utf-8", body }
    }
}

fn reply(answer: Answer) -> Reply {
    Reply { status: answer.status, content_type: answer.content_type, body: answer.body }
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
