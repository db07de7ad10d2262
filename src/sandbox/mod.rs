//! Simulated providers: the provider side of each dialect plus an in-memory ledger, served
//! over real HTTP so a new user can run the whole flow on one machine and integration tests
//! talk to something that checks signatures as strictly as a real provider.
//!
//! Paths: each dialect lives under its own prefix (`/xxpay/...`); a provider account whose
//! `base_url` is `http://{sandbox.listen}/{dialect}` is served by the sandbox with that
//! account's credentials. A payment is paid by `POST /{dialect}/pay/{provider order no}`
//! (the pay page at the same path with GET has a button for it).
//!
//! `/merchant/notify` is a demo merchant: it accepts payglot's notifications (answering 200)
//! and `GET /merchant/events` lists what it received, so the first run needs no merchant code.

pub mod merchant;
pub mod xxpay;

use crate::config::Config;
use crate::server::{read_request, serve_http, Reply};
use crate::upstream::Upstream;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// All simulated providers behind one listener.
pub struct Sandbox {
    pub xxpay: xxpay::XxpaySandbox,
    /// A demo merchant endpoint that takes payglot's notifications (`/merchant/...`).
    pub merchant: merchant::DemoMerchant,
}

impl Sandbox {
    /// A sandbox at `base_url` (like `http://127.0.0.1:8090`) that sends callbacks with
    /// `upstream` and retries them after each of `notify_retry_secs`.
    pub fn new(base_url: &str, upstream: Arc<Upstream>, notify_retry_secs: Vec<u64>) -> Self {
        Sandbox {
            xxpay: xxpay::XxpaySandbox::new(
                &format!("{base_url}/xxpay"),
                upstream,
                notify_retry_secs,
            ),
            merchant: merchant::DemoMerchant::default(),
        }
    }

    /// The sandbox a routes.yaml asks for, serving every provider account that points at it.
    pub fn from_config(config: &Config, upstream: Arc<Upstream>) -> Option<Self> {
        let sandbox = config.sandbox.as_ref()?;
        let base = format!("http://{}", sandbox.listen);
        let me = Sandbox::new(&base, upstream, sandbox.notify_retry_secs.clone());
        for p in config.providers.values() {
            let cred = |k: &str| {
                p.credentials
                    .get(k)
                    .map(|s| s.expose().to_string())
                    .unwrap_or_default()
            };
            if p.dialect == "xxpay" && p.base_url == format!("{base}/xxpay") {
                me.xxpay
                    .add_account(&cred("mch_id"), &cred("app_id"), &cred("key"));
            }
        }
        Some(me)
    }

    async fn handle(&self, request: crate::server::HttpIn) -> Reply {
        if let Some(rest) = request.path.strip_prefix("/xxpay") {
            return self.xxpay.handle(rest, &request).await;
        }
        match request.path.strip_prefix("/merchant") {
            Some(rest) => self.merchant.handle(rest, &request),
            None => Reply {
                status: 404,
                content_type: "text/plain; charset=utf-8",
                body: "no such sandbox provider".into(),
            },
        }
    }
}

/// Serves the sandbox on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, sandbox: Arc<Sandbox>, shutdown: watch::Receiver<bool>) {
    serve_http(
        listener,
        move |req| {
            let sandbox = sandbox.clone();
            async move {
                match read_request(req, 1 << 20).await {
                    Ok(r) => sandbox.handle(r).await.into_response(),
                    Err(e) => Reply::error(&e).into_response(),
                }
            }
        },
        shutdown,
    )
    .await
}
