//! Provider-compatible front doors (`/compat/{dialect}/...`): a school already integrated with
//! one provider changes only its base URL. Each door verifies the school's request exactly as
//! that provider would, with the credentials routes.yaml gives the school under
//! `merchants.<id>.compat.<dialect>`; turns it into a canonical operation run by the same core
//! as the merchant API (so routes.yaml picks the provider that really takes the payment); and
//! answers with the dialect's provider side, the same code the sandbox providers use. This one
//! driver serves every dialect: the dialect's `ProviderSide` reads the request into a `Call`
//! and shapes the answer; nothing here knows a dialect by name. Callbacks go back to the
//! school in its dialect from the outbox (`core::notify::callback`).
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
//! - What is the merchant API's and not a door's (balance, payouts, zhixiao's identity and
//!   card calls, mct's order listing) is refused in the dialect's error shape, saying where it
//!   is.

use crate::app::Gateway;
use crate::config::{DoorConfig, LiveConfig, MerchantConfig};
use crate::core::error::{ApiError, ErrorCode};
use crate::core::payments::{self, CreatePaymentRequest};
use crate::core::refunds::{self, CreateRefundRequest};
use crate::dialects::provider_side::{
    Answer, Call, CallKind, Fail, Failure, Keyed, Lookup, OrderRequest, Outcome, Placed, RefundDone, Request,
};
use crate::dialects::{self, CreateOrder, DialectError, DialectSpec, ProviderConfig};
use crate::http::{HttpIn, Reply};
use crate::model::{Action, Channel, Door, Payment, Refund, Scene, TransferStatus};
use crate::routing::{candidates, PaymentFacts};

/// Handles one `/compat/{dialect}/...` request.
pub async fn handle(gateway: &Gateway, request: &HttpIn) -> Reply {
    let rest = request.path.strip_prefix("/compat/").unwrap_or("");
    let (dialect, path) = match rest.split_once('/') {
        Some((d, p)) => (d, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let spec = dialects::spec(dialect);
    let door = spec.map_or("unknown", |spec| spec.name);
    // The operation, once the request is read; a request the door cannot read is "unknown".
    crate::http::note_operation(door, "unknown");
    let reply = match spec {
        Some(spec) => serve(gateway, spec, &path, request).await,
        None => {
            reply(Answer::text(404, format!("no front door for dialect {dialect:?} (known: {})", dialects::names())))
        }
    };
    metrics::counter!("payglot_compat_requests_total", "dialect" => door, "status" => reply.status.to_string())
        .increment(1);
    reply
}

/// Reads the school's request with the dialect's provider side, carries the call out with
/// payglot's core, and answers in the dialect.
async fn serve(gateway: &Gateway, spec: &'static DialectSpec, path: &str, request: &HttpIn) -> Reply {
    // The request runs against the config it started with, even if a reload swaps it.
    let live = gateway.config.current();
    let now = gateway.clock.now();
    let keys = |id: &str| live.door(spec.name, id).map(|(_, door)| door.keyed());
    let incoming = Request {
        method: &request.method,
        path,
        query: &request.query,
        body: &request.body,
        forwarded_for: request.header("x-forwarded-for"),
    };
    let call = match spec.side.read(&incoming, &keys, now) {
        Ok(call) => call,
        Err(refused) => return reply(refused),
    };
    crate::http::note_operation(spec.name, call.kind.operation());
    let (keyed, outcome) = match school(&live, spec, gateway, &call).await {
        Some((merchant, door)) => {
            crate::http::note_merchant(&merchant.id);
            (door.keyed(), carry_out(gateway, &live, spec, merchant, door, &call, now).await.map_err(|e| failure(&e)))
        }
        None => (
            Keyed::new(ProviderConfig::with_defaults("", spec.name)),
            Err(Failure::new(Fail::NotFound, "no such order")),
        ),
    };
    reply(spec.side.answer(&keyed, &call, outcome, now))
}

/// The merchant and door a call is for: the account it names, or for an unsigned query (which
/// names only the order) the door of the order's merchant.
async fn school<'a>(
    live: &'a LiveConfig,
    spec: &DialectSpec,
    gateway: &Gateway,
    call: &Call,
) -> Option<(&'a MerchantConfig, &'a DoorConfig)> {
    if call.signed {
        return live.door(spec.name, &call.account_id);
    }
    let CallKind::Query { lookup: Lookup::ProviderNo(id), .. } = &call.kind else { return None };
    let payment = gateway.store.payment_by_id(id).await.ok()??;
    let merchant = live.merchant(&payment.merchant_id)?;
    Some((merchant, merchant.compat.get(spec.name)?))
}

fn reply(answer: Answer) -> Reply {
    Reply { status: answer.status, content_type: answer.content_type, body: answer.body }
}

/// A refusal of payglot's core in the words a dialect maps onto its codes.
fn failure(e: &ApiError) -> Failure {
    crate::http::note_error_code(e.code.as_str());
    let kind = match e.code {
        ErrorCode::InvalidRequest => Fail::Invalid,
        ErrorCode::NotFound => Fail::NotFound,
        c if c.is_duplicate() => Fail::Duplicate,
        ErrorCode::InvalidState => Fail::State,
        ErrorCode::AmountExceedsRefundable => Fail::TooMuch,
        ErrorCode::UnsupportedOperation => Fail::NotOffered,
        ErrorCode::RateLimited => Fail::Limited,
        _ => Fail::Other,
    };
    Failure::new(kind, refusal(e))
}

/// The message a door's error answer carries: payglot's, with the provider's where there is one.
pub fn refusal(e: &ApiError) -> String {
    match &e.provider_message {
        Some(m) => format!("{} ({m})", e.message),
        None => e.message.clone(),
    }
}

/// What the door does for a call; the calls that are the merchant API's, not a door's, are
/// refused saying where they are.
async fn carry_out(
    gateway: &Gateway,
    live: &LiveConfig,
    spec: &DialectSpec,
    merchant: &MerchantConfig,
    door: &DoorConfig,
    call: &Call,
    now: i64,
) -> Result<Outcome, ApiError> {
    let placed = |payment: &Payment| {
        Outcome::Order(Placed {
            order: crate::core::notify::provider_order(payment, door),
            pay_url: pay_url(live, payment),
            action: payment.action.clone(),
        })
    };
    let not_offered = |what: &str| ApiError::unsupported("", format!("payglot's front doors do not offer {what}"));
    match &call.kind {
        CallKind::Create(order) => create(gateway, live, merchant, door, order, now).await.map(|p| placed(&p)),
        CallKind::Query { lookup, notify_again: again } => {
            let found = if call.signed {
                find(gateway, live, merchant, lookup, now).await
            } else {
                find_unsigned(gateway, live, merchant, lookup, now).await
            };
            match found {
                Ok(payment) => {
                    if *again {
                        notify_again(gateway, &payment).await;
                    }
                    Ok(placed(&payment))
                }
                // mct's paystatus also answers for refund orders, by their refund number.
                Err(e) if e.code == ErrorCode::NotFound && spec.side.queries_refunds() => match lookup {
                    Lookup::MerchantNo(no) => match gateway.store.refund_by_out_no(&merchant.id, no).await? {
                        Some(r) => Ok(Outcome::Refund(refund_done(&r))),
                        None => Err(e),
                    },
                    Lookup::ProviderNo(_) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        CallKind::Cancel(lookup) => {
            let payment = find(gateway, live, merchant, lookup, now).await?;
            payments::close_payment(gateway, live, payment, now).await.map(|p| placed(&p))
        }
        CallKind::Refund(asked) => {
            let payment = find(gateway, live, merchant, &asked.lookup, now).await?;
            let request = CreateRefundRequest {
                out_refund_no: asked.refund_no.clone(),
                amount: asked.amount,
                reason: asked.reason.clone(),
            };
            refund(gateway, live, merchant, &payment.out_trade_no, &request, now)
                .await
                .map(|r| Outcome::Refund(refund_done(&r)))
        }
        CallKind::PaymentMethods => Ok(Outcome::PaymentMethods),
        CallKind::Balance => Err(not_offered("the balance query (use GET /v1/balance)")),
        CallKind::Identity { .. } | CallKind::CardLink { .. } => {
            Err(not_offered("the identity and card calls (they are on the merchant API)"))
        }
        CallKind::PayoutCreate(_) | CallKind::PayoutQuery(_) => Err(not_offered("payouts (use POST /v1/payouts)")),
        CallKind::OrderList => Err(not_offered("the order listing (use GET /v1/payments)")),
    }
}

fn refund_done(r: &Refund) -> RefundDone {
    RefundDone {
        refund_no: r.out_refund_no.clone(),
        provider_refund_no: r.refund_id.clone(),
        order_provider_no: r.payment_id.clone(),
        order_no: r.out_trade_no.clone(),
        amount: r.amount,
        status: r.status,
    }
}

/// The merchant API request for an order a door was asked for, in one scene.
fn payment_request(order: &OrderRequest, scene: Scene) -> CreatePaymentRequest {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    CreatePaymentRequest {
        out_trade_no: order.order_no.clone(),
        amount: order.amount,
        currency: "CNY".into(),
        subject: order.subject.clone(),
        description: order.description.clone(),
        channel: order.channel.unwrap_or(Channel::Wechat),
        scene,
        notify_url: nonempty(&order.notify_url),
        return_url: nonempty(&order.return_url),
        attach: None,
        client_ip: order.client_ip.clone(),
        auth_code: order.auth_code.clone(),
        openid: order.openid.clone(),
        expire_seconds: None,
        extra: order.extra.clone(),
    }
}

/// Creates the payment a door was asked for, routed by the merchant's routes.
async fn create(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    door: &DoorConfig,
    order: &OrderRequest,
    now: i64,
) -> Result<Payment, ApiError> {
    let request = payment_request(order, choose_scene(live, merchant, order, now));
    let origin =
        Door { dialect: door.account.dialect.clone(), account: door.account_id.clone(), fields: order.keep.clone() };
    payments::create_payment(gateway, live, merchant, &request, Some(origin), now).await
}

/// The first of the order's scenes that a provider account the routes pick can take. Dialects
/// are sans-IO, so asking one to build the create request is a dry run.
fn choose_scene(live: &LiveConfig, merchant: &MerchantConfig, order: &OrderRequest, now: i64) -> Scene {
    let first = order.scenes.first().copied().unwrap_or(Scene::Qr);
    let channel = order.channel.unwrap_or(Channel::Wechat);
    for &scene in &order.scenes {
        let facts = PaymentFacts { channel, scene, currency: "CNY", amount: order.amount };
        let request = payment_request(order, scene);
        let probe =
            request.pending_payment("probe".into(), &merchant.id, "", request.notify_url.clone(), i64::MAX, now);
        let create = CreateOrder {
            client_ip: request.client_ip.as_deref(),
            auth_code: request.auth_code.as_deref(),
            openid: request.openid.as_deref(),
            extra: &request.extra,
            ..CreateOrder::new(&probe, "")
        };
        let takes = |account: &String| {
            live.dialect(account)
                .is_some_and(|d| !matches!(d.create_payment(&create, now), Err(DialectError::Unsupported(_))))
        };
        if candidates(merchant, &facts, &order.order_no).iter().any(takes) {
            return scene;
        }
    }
    first
}

/// A payment of the merchant by the number a school gave or was given.
async fn stored(gateway: &Gateway, merchant: &MerchantConfig, lookup: &Lookup) -> Result<Payment, ApiError> {
    match lookup {
        Lookup::MerchantNo(no) => payments::payment_of(gateway, merchant, no).await,
        Lookup::ProviderNo(id) => gateway
            .store
            .payment_by_id(id)
            .await?
            .filter(|p| p.merchant_id == merchant.id)
            .ok_or_else(|| ApiError::not_found(format!("no payment {id:?}"))),
    }
}

/// A payment of the merchant, as it now stands (a pending one is asked of its provider).
async fn find(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    lookup: &Lookup,
    now: i64,
) -> Result<Payment, ApiError> {
    let payment = stored(gateway, merchant, lookup).await?;
    Ok(payments::current_state(gateway, live, payment, now).await.0)
}

/// As `find`, for a request that carries no signature (xiaojitong's checkOrder): a pending
/// payment is asked of its provider only within the limit on unverified queries.
async fn find_unsigned(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    lookup: &Lookup,
    now: i64,
) -> Result<Payment, ApiError> {
    let payment = stored(gateway, merchant, lookup).await?;
    if payment.status.is_final() {
        return Ok(payment);
    }
    Ok(payments::refresh_unverified(gateway, live, &payment, now).await.unwrap_or(payment))
}

/// A door's refund. The dialects answer a refund at once, so one the provider refused is an
/// error here (the merchant API shows it as a `failed` refund instead).
async fn refund(
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
    let now = gateway.clock.now();
    for (event, _) in events.iter().filter(|(e, _)| e.kind == "payment.succeeded") {
        if let Ok(true) = gateway.store.replay_event(&event.id, now).await {
            gateway.outbox_wake.notify_one();
        }
    }
}
