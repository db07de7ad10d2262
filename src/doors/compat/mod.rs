//! Provider-compatible front doors (`/compat/{dialect}/...`): a school already integrated with
//! one provider changes only its base URL. Each door verifies the school's request exactly as
//! that provider would, with the credentials routes.yaml gives the school under
//! `merchants.<id>.compat.<dialect>`; turns it into a canonical operation run by the same core
//! as the merchant API (so routes.yaml picks the provider that really takes the payment); and
//! answers with the dialect's provider side, the same code the sandbox providers use.
//! Callbacks go back to the school in its dialect from the outbox (`callback`).
//!
//! Decisions:
//! - The provider order number a school sees (payOrderId, orderid, order_id, payid, ord_no) is
//!   payglot's payment_id: it stays the same whichever provider took the payment.
//! - Scenes the payer reaches through a URL (qr, h5, web) are interchangeable at a door: the
//!   scene the request implies is tried first, then the others, and the first one the routed
//!   provider can take is used. The door's URL field then carries what the provider gave: the
//!   QR content, the redirect URL, or payglot's checkout page for a browser form post
//!   (`/v1/payments/{payment_id}/checkout`). barcode, jsapi and miniapp are never swapped.
//! - Where the routed provider cannot take the request at all, the school gets its dialect's
//!   error shape with payglot's message.
//! - A door answers for payments of its merchant only; it also answers for the merchant's
//!   payments made through the merchant API (with no saved request fields).

pub mod jings;
pub mod mct;
pub mod xiaojitong;
pub mod xxpay;
pub mod zhixiao;

use crate::app::Gateway;
use crate::config::{DoorConfig, LiveConfig, MerchantConfig};
use crate::core::error::ApiError;
use crate::core::payments::{self, CreatePaymentRequest};
use crate::core::refunds::{self, CreateRefundRequest};
use crate::dialects::{self, CreateOrder, DialectError};
use crate::http::{HttpIn, Reply};
use crate::model::{Action, Channel, Door, Payment, Refund, Scene, TransferStatus};
use crate::routing::{candidates, PaymentFacts};
use std::collections::BTreeMap;

/// Handles one `/compat/{dialect}/...` request.
pub async fn handle(gateway: &Gateway, request: &HttpIn) -> Reply {
    let rest = request.path.strip_prefix("/compat/").unwrap_or("");
    let (dialect, path) = match rest.split_once('/') {
        Some((d, p)) => (d, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    // The request runs against the config it started with, even if a reload swaps it.
    let live = gateway.config.current();
    let reply = match dialect {
        "xxpay" => xxpay::handle(gateway, &live, &path, request).await,
        "xiaojitong" => xiaojitong::handle(gateway, &live, &path, request).await,
        "zhixiao" => zhixiao::handle(gateway, &live, &path, request).await,
        "jings" => jings::handle(gateway, &live, &path, request).await,
        "mct" => mct::handle(gateway, &live, &path, request).await,
        _ => text(404, format!("no front door for dialect {dialect:?} (known: {})", dialects::DIALECTS.join(", "))),
    };
    let dialect = if dialects::DIALECTS.contains(&dialect) { dialect.to_string() } else { "unknown".into() };
    metrics::counter!("payglot_compat_requests_total", "dialect" => dialect, "status" => reply.status.to_string())
        .increment(1);
    reply
}

pub(crate) fn text(status: u16, body: impl Into<String>) -> Reply {
    Reply { status, content_type: "text/plain; charset=utf-8", body: body.into() }
}

pub(crate) fn json(body: String) -> Reply {
    Reply { status: 200, content_type: "application/json", body }
}

/// The message a door's error answer carries: payglot's, with the provider's where there is one.
pub fn refusal(e: &ApiError) -> String {
    match &e.provider_message {
        Some(m) => format!("{} ({m})", e.message),
        None => e.message.clone(),
    }
}

/// A door's credential (as configured under `compat.<dialect>`).
pub(crate) fn credential(door: &DoorConfig, name: &str) -> String {
    dialects::credential(&door.account, name)
}

/// A payment request as a door understood it, before a scene is chosen.
pub struct Intent {
    pub out_trade_no: String,
    pub amount: i64,
    pub subject: String,
    pub description: String,
    pub channel: Channel,
    /// The scenes that serve the school's request, best first (see `url_scenes`).
    pub scenes: Vec<Scene>,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub client_ip: Option<String>,
    pub auth_code: Option<String>,
    pub openid: Option<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Request fields the dialect's answers and callbacks repeat.
    pub fields: BTreeMap<String, String>,
}

/// `first`, then the other scenes a payer also reaches through a URL; only `first` for the
/// scenes that need the payer's code or app.
pub fn url_scenes(first: Scene) -> Vec<Scene> {
    let url = [Scene::Qr, Scene::H5, Scene::Web];
    if url.contains(&first) {
        std::iter::once(first).chain(url.into_iter().filter(|s| *s != first)).collect()
    } else {
        vec![first]
    }
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Intent {
    /// An intent with the fields every door has; the rest are set by the door.
    pub fn new(out_trade_no: &str, amount: i64, subject: &str, channel: Channel, scenes: Vec<Scene>) -> Intent {
        Intent {
            out_trade_no: out_trade_no.to_string(),
            amount,
            subject: subject.to_string(),
            description: String::new(),
            channel,
            scenes,
            notify_url: None,
            return_url: None,
            client_ip: None,
            auth_code: None,
            openid: None,
            extra: Default::default(),
            fields: BTreeMap::new(),
        }
    }

    pub fn notify_url(mut self, url: &str) -> Self {
        self.notify_url = nonempty(url);
        self
    }

    pub fn return_url(mut self, url: &str) -> Self {
        self.return_url = nonempty(url);
        self
    }

    /// Keeps a request field for the dialect's later answers and callbacks.
    pub fn keep(mut self, name: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.fields.insert(name.to_string(), value.to_string());
        }
        self
    }

    fn request(&self, scene: Scene) -> CreatePaymentRequest {
        CreatePaymentRequest {
            out_trade_no: self.out_trade_no.clone(),
            amount: self.amount,
            currency: "CNY".into(),
            subject: self.subject.clone(),
            description: self.description.clone(),
            channel: self.channel,
            scene,
            notify_url: self.notify_url.clone(),
            return_url: self.return_url.clone(),
            attach: None,
            client_ip: self.client_ip.clone(),
            auth_code: self.auth_code.clone(),
            openid: self.openid.clone(),
            expire_seconds: None,
            extra: self.extra.clone(),
        }
    }
}

/// Creates the payment a door was asked for, routed by the merchant's routes.
pub async fn create(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    door: &DoorConfig,
    intent: Intent,
    now: i64,
) -> Result<Payment, ApiError> {
    let scene = choose_scene(live, merchant, &intent, now);
    let request = intent.request(scene);
    let origin =
        Door { dialect: door.account.dialect.clone(), account: door.account_id.clone(), fields: intent.fields };
    payments::create_payment(gateway, live, merchant, &request, Some(origin), now).await
}

/// The first of the intent's scenes that a provider account the routes pick can take. Dialects
/// are sans-IO, so asking one to build the create request is a dry run.
fn choose_scene(live: &LiveConfig, merchant: &MerchantConfig, intent: &Intent, now: i64) -> Scene {
    let first = intent.scenes.first().copied().unwrap_or(Scene::Qr);
    for &scene in &intent.scenes {
        let facts = PaymentFacts { channel: intent.channel, scene, currency: "CNY", amount: intent.amount };
        let request = intent.request(scene);
        let probe =
            request.pending_payment("probe".into(), &merchant.id, "", request.notify_url.clone(), i64::MAX, now);
        let order = CreateOrder {
            payment: &probe,
            callback_url: String::new(),
            client_ip: request.client_ip.as_deref(),
            auth_code: request.auth_code.as_deref(),
            openid: request.openid.as_deref(),
            extra: &request.extra,
        };
        let takes = |account: &String| {
            live.dialect(account)
                .is_some_and(|d| !matches!(d.create_payment(&order, now), Err(DialectError::Unsupported(_))))
        };
        if candidates(merchant, &facts, &intent.out_trade_no).iter().any(takes) {
            return scene;
        }
    }
    first
}

/// How a door names the payment a school asks about.
pub enum Lookup<'a> {
    /// The school's own order number.
    OutTradeNo(&'a str),
    /// The order number the door gave it (payglot's payment_id).
    PaymentId(&'a str),
}

/// A payment of the merchant, as it now stands (a pending one is asked of its provider).
pub async fn find(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    lookup: Lookup<'_>,
    now: i64,
) -> Result<Payment, ApiError> {
    let payment = match lookup {
        Lookup::OutTradeNo(no) => payments::payment_of(gateway, merchant, no).await?,
        Lookup::PaymentId(id) => gateway
            .store
            .payment_by_id(id)
            .await?
            .filter(|p| p.merchant_id == merchant.id)
            .ok_or_else(|| ApiError::not_found(format!("no payment {id:?}")))?,
    };
    Ok(payments::current_state(gateway, live, payment, now).await.0)
}

/// As `find`, for a request that carries no signature (xiaojitong's checkOrder): a pending
/// payment is asked of its provider only within the limit on unverified queries.
pub async fn find_unsigned(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    payment_id: &str,
    now: i64,
) -> Result<Payment, ApiError> {
    let payment = gateway
        .store
        .payment_by_id(payment_id)
        .await?
        .filter(|p| p.merchant_id == merchant.id)
        .ok_or_else(|| ApiError::not_found(format!("no payment {payment_id:?}")))?;
    if payment.status.is_final() {
        return Ok(payment);
    }
    Ok(payments::refresh_unverified(gateway, live, &payment, now).await.unwrap_or(payment))
}

/// A door's cancel: closes the merchant's payment unless it is paid.
pub async fn cancel(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_trade_no: &str,
    now: i64,
) -> Result<Payment, ApiError> {
    let payment = find(gateway, live, merchant, Lookup::OutTradeNo(out_trade_no), now).await?;
    payments::close_payment(gateway, live, payment, now).await
}

/// A door's refund. The dialects answer a refund at once, so one the provider refused is an
/// error here (the merchant API shows it as a `failed` refund instead).
pub async fn refund(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    out_trade_no: &str,
    request: &CreateRefundRequest,
    now: i64,
) -> Result<Refund, ApiError> {
    let refund = refunds::create_refund(gateway, live, merchant, out_trade_no, request, now).await?;
    if refund.status == TransferStatus::Failed {
        return Err(ApiError::invalid_state("the provider refused the refund"));
    }
    Ok(refund)
}

/// Where the payer pays, as one URL or code for a door's URL field.
pub fn pay_url(live: &LiveConfig, payment: &Payment) -> String {
    match &payment.action {
        Some(Action::QrCode { qr_code, .. }) => qr_code.clone(),
        Some(Action::Redirect { url }) => url.clone(),
        Some(Action::FormPost { .. }) => {
            format!("{}/v1/payments/{}/checkout", live.config.public_url, payment.payment_id)
        }
        _ => String::new(),
    }
}

/// Sends a paid payment's callback to the school again (xxpay `executeNotify`): its
/// `payment.succeeded` event is made due now. An unpaid payment has no callback to send.
pub async fn notify_again(gateway: &Gateway, payment: &Payment) {
    if payment.status != crate::model::PaymentStatus::Succeeded {
        return;
    }
    let events = match gateway.store.events_for_payment(&payment.payment_id).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(payment_id = %payment.payment_id, error = %e, "cannot send the callback again");
            return;
        }
    };
    let now = crate::model::now_unix();
    for (event, _) in events.iter().filter(|(e, _)| e.kind == "payment.succeeded") {
        if let Ok(true) = gateway.store.replay_event(&event.id, now).await {
            gateway.outbox_wake.notify_one();
        }
    }
}
