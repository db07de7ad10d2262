//! Payments: create, query, close.
//!
//! Create: the request is validated, a payment_id is made, every account the route picks
//! builds its request (a dry run: a request no account can express is refused with nothing
//! stored), and the payment is written as `pending` **before** any provider is called, so a
//! callback for an order the provider accepted always finds it. An account is left for the next
//! one only when it certainly did not take the order (the connection was refused, or the
//! provider answered "no"); after a timeout the payment stays pending and queryable.
//!
//! Idempotency: the same merchant and `out_trade_no` with the same body returns the stored
//! payment without calling a provider again (while the first call is still running, that is
//! the payment as stored so far, `action` null; a create stranded by a crash is resumed); a
//! different body is `409 duplicate_out_trade_no`. A payment whose every provider refused it is
//! stored as `failed`; send a new out_trade_no.

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::ask::{account, dialect_error, send_about, Account};
use crate::core::error::ApiError;
use crate::core::settle::{apply_report, ReportSource};
use crate::dialects::{CreateOrder, CreateStep, DialectError, ProviderResponse};
use crate::model::{new_payment_id, Channel, Door, Payment, PaymentStatus, Scene};
use crate::routing::{candidates, PaymentFacts};
use crate::store::{Inserted, Settled, Settlement};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The body of `POST /v1/payments`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    pub out_trade_no: String,
    /// Fen, a positive JSON integer.
    pub amount: i64,
    #[serde(default = "default_currency")]
    pub currency: String,
    pub subject: String,
    #[serde(default)]
    pub description: String,
    pub channel: Channel,
    pub scene: Scene,
    #[serde(default)]
    pub notify_url: Option<String>,
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub attach: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub auth_code: Option<String>,
    #[serde(default)]
    pub openid: Option<String>,
    /// Seconds until an unpaid payment is closed (1 to 604800); default: the account's order
    /// lifetime, else `requery.default_expire_secs`.
    #[serde(default)]
    pub expire_seconds: Option<i64>,
    /// Provider-specific fields (zhixiao: user_no, user_name, piaoju; mct: sub_appid,
    /// jump_url; jings: orderuid), passed to whichever dialect serves the payment.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_currency() -> String {
    "CNY".into()
}

fn check_url(field: &str, url: &str) -> Result<(), ApiError> {
    if (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 512
        && !url.contains(char::is_whitespace)
    {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!("{field}: must be an http:// or https:// URL of at most 512 characters")))
    }
}

impl CreatePaymentRequest {
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::invalid_request(m));
        crate::core::ask::check_order_number("out_trade_no", &self.out_trade_no)?;
        if let Some(problem) = crate::money::amount_problem(self.amount) {
            return bad(problem);
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return bad("currency: a three-letter code such as CNY".into());
        }
        if self.subject.trim().is_empty() || self.subject.chars().count() > 128 {
            return bad("subject: 1 to 128 characters".into());
        }
        if self.description.chars().count() > 256 {
            return bad("description: at most 256 characters".into());
        }
        if self.expire_seconds.is_some_and(|s| !(1..=604_800).contains(&s)) {
            return bad("expire_seconds: 1 to 604800".into());
        }
        if self.attach.as_ref().is_some_and(|a| a.chars().count() > 256) {
            return bad("attach: at most 256 characters".into());
        }
        if let Some(u) = &self.notify_url {
            check_url("notify_url", u)?;
        }
        if let Some(u) = &self.return_url {
            check_url("return_url", u)?;
        }
        match self.scene {
            Scene::Barcode if self.auth_code.as_deref().unwrap_or("").is_empty() => {
                bad("auth_code: required for scene barcode (the code scanned from the payer)".into())
            }
            Scene::Jsapi | Scene::Miniapp if self.openid.as_deref().unwrap_or("").is_empty() => {
                bad(format!("openid: required for scene {}", self.scene))
            }
            _ => Ok(()),
        }
    }

    /// The pending payment this request makes, before any provider is asked.
    pub fn pending_payment(
        &self,
        payment_id: String,
        merchant_id: &str,
        provider: &str,
        notify_url: Option<String>,
        expires_at: i64,
        now: i64,
    ) -> Payment {
        Payment {
            payment_id,
            merchant_id: merchant_id.to_string(),
            out_trade_no: self.out_trade_no.clone(),
            amount: self.amount,
            currency: self.currency.to_ascii_uppercase(),
            subject: self.subject.clone(),
            description: self.description.clone(),
            channel: self.channel,
            scene: self.scene,
            status: PaymentStatus::Pending,
            provider: provider.to_string(),
            provider_trade_no: None,
            paid_amount: None,
            paid_at: None,
            refunded_amount: 0,
            attach: self.attach.clone(),
            notify_url,
            return_url: self.return_url.clone(),
            action: None,
            created_at: now,
            updated_at: now,
            expires_at,
            door: None,
        }
    }

    /// A digest of the request, to tell a replay from a different request.
    fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(serde_json::to_vec(self).expect("request serializes")))
    }
}

/// Creates a payment (merchant API or a front door, whose `door` is remembered so events go
/// back in its dialect). Returns the payment as stored after the provider answered.
///
/// Every account the route picks first builds its create request (dialects are sans-IO, so
/// this is a dry run): a request no account can express (jings without return_url, xxpay
/// 网银 without the payer's bank, a scene nobody takes) is refused with nothing stored, so
/// the corrected request can use the same out_trade_no.
pub async fn create_payment(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    request: &CreatePaymentRequest,
    door: Option<Door>,
    now: i64,
) -> Result<Payment, ApiError> {
    request.validate()?;
    let notify_url = match door {
        // A front door's school gets callbacks only where it asked for them.
        Some(_) => request.notify_url.clone().unwrap_or_default(),
        None => crate::core::ask::notify_url(&request.notify_url, merchant)?,
    };
    if !notify_url.is_empty() {
        live.check_notify_url(merchant, &notify_url)
            .map_err(|e| ApiError::invalid_request(format!("notify_url: {notify_url} {e}")))?;
    }

    let payment_id = new_payment_id(now);
    let span = crate::telemetry::Span::payment_root("payment.create", &payment_id)
        .attr("merchant", merchant.id.clone())
        .attr("out_trade_no", request.out_trade_no.clone())
        .attr("amount_fen", request.amount.to_string())
        .attr("door", door.as_ref().map_or("merchant_api".to_string(), |d| d.dialect.clone()));
    let created = span.run(create_with_id(gateway, live, merchant, request, door, notify_url, payment_id, now)).await;
    if let Err(e) = &created {
        span.failed(e.code.as_str());
    }
    created
}

/// The create once its payment id is chosen (inside the payment's root span).
#[allow(clippy::too_many_arguments)]
async fn create_with_id(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    request: &CreatePaymentRequest,
    door: Option<Door>,
    notify_url: String,
    payment_id: String,
    now: i64,
) -> Result<Payment, ApiError> {
    let facts = PaymentFacts {
        channel: request.channel,
        scene: request.scene,
        currency: &request.currency,
        amount: request.amount,
    };
    let accounts = candidates(merchant, &facts, &payment_id);
    if accounts.is_empty() {
        return Err(ApiError::invalid_request("no route of this merchant matches the payment"));
    }
    let template = Payment { door, ..request.pending_payment(payment_id, &merchant.id, "", Some(notify_url), 0, now) };
    let mut plans = Vec::new();
    let mut refusals = Vec::new();
    for account in &accounts {
        let pending = Payment {
            provider: account.clone(),
            expires_at: now + expire_seconds(live, request, account),
            ..template.clone()
        };
        match plan(live, &pending, request, account, now) {
            Ok(step) => plans.push((pending, step)),
            Err(e) => refusals.push(e),
        }
    }
    let fingerprint = request.fingerprint();
    let Some((first, _)) = plans.first() else {
        // Refused before any provider call. An earlier payment under this out_trade_no still
        // answers as idempotency says (the store call below then writes nothing).
        if gateway.store.payment_by_out_trade_no(&merchant.id, &request.out_trade_no).await?.is_none() {
            return Err(refusals.into_iter().next().unwrap_or_else(|| ApiError::internal("no provider account")));
        }
        let pending = Payment { provider: accounts[0].clone(), ..template };
        return match insert(gateway, live, &pending, &fingerprint, request, now).await? {
            Some(existing) => Ok(existing),
            None => {
                gateway.store.fail_unaccepted(&pending.payment_id, now).await?;
                Err(refusals.into_iter().next().unwrap_or_else(|| ApiError::internal("no provider account")))
            }
        };
    };
    if let Some(existing) = insert(gateway, live, first, &fingerprint, request, now).await? {
        return Ok(existing);
    }

    let mut last_error = None;
    for (i, (payment, step)) in plans.into_iter().enumerate() {
        if i > 0 {
            gateway.store.set_payment_provider(&payment.payment_id, &payment.provider, now).await?;
        }
        match create_at(gateway, live, &payment, request, step, now).await {
            Ok(created) => return Ok(created),
            Err(Attempt::NotTaken(e)) => {
                tracing::warn!(payment_id = %payment.payment_id, account = %payment.provider, error = %e.message, "provider did not take the payment; trying the next account if any");
                last_error = Some(e);
            }
            Err(Attempt::MaybeTaken(e)) => return Err(e),
        }
    }
    // No account took it: the payment can never be paid.
    gateway.store.fail_unaccepted(&template.payment_id, now).await?;
    Err(last_error.unwrap_or_else(|| ApiError::internal("no provider account was tried")))
}

/// The create call (or finished answer) an account makes of a payment, without sending it.
fn plan(
    live: &LiveConfig,
    payment: &Payment,
    request: &CreatePaymentRequest,
    account: &str,
    now: i64,
) -> Result<CreateStep, ApiError> {
    let Some(dialect) = live.dialect(account) else {
        return Err(ApiError::internal(format!("provider account {account} is not defined")));
    };
    dialect.create_payment(&create_order(live, payment, request, account), now).map_err(|e| dialect_error(account, e))
}

fn create_order<'a>(
    live: &LiveConfig,
    payment: &'a Payment,
    request: &'a CreatePaymentRequest,
    account: &str,
) -> CreateOrder<'a> {
    CreateOrder {
        payment,
        callback_url: format!("{}/callbacks/{account}", live.config.public_url),
        client_ip: request.client_ip.as_deref(),
        auth_code: request.auth_code.as_deref(),
        openid: request.openid.as_deref(),
        extra: &request.extra,
    }
}

/// Writes the new pending payment; `Some` is the payment this out_trade_no already has
/// (idempotency), after recovering one a crash left without its action.
async fn insert(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    fingerprint: &str,
    request: &CreatePaymentRequest,
    now: i64,
) -> Result<Option<Payment>, ApiError> {
    let first_check_at = now + live.config.requery.schedule_secs.first().copied().unwrap_or(60) as i64;
    match gateway.store.insert_payment(payment, fingerprint, first_check_at).await? {
        Inserted::New => Ok(None),
        Inserted::Existing(existing, existing_fingerprint) if existing_fingerprint == fingerprint => {
            resume(gateway, live, *existing, request, now).await.map(Some)
        }
        Inserted::Existing(..) => Err(ApiError::duplicate(
            crate::core::error::ErrorCode::DuplicateOutTradeNo,
            format!("out_trade_no {:?} was already used for a different payment", request.out_trade_no),
        )),
    }
}

/// An identical retry of a create. A payment left pending with no action and no provider
/// order number long after its create began was stranded (payglot stopped during the call): the
/// create is sent again to its account with the same order number. If the provider then
/// answers, the payer gets the action; if it refuses (it may hold the order already, but its
/// pay page is lost), the payment is failed with `payment.failed` so the merchant uses a new
/// out_trade_no. A create still in flight is answered as stored.
async fn resume(
    gateway: &Gateway,
    live: &LiveConfig,
    existing: Payment,
    request: &CreatePaymentRequest,
    now: i64,
) -> Result<Payment, ApiError> {
    let in_flight_secs = live.config.providers.get(&existing.provider).map(|p| p.timeout_ms / 1000 + 2).unwrap_or(15);
    let stranded = existing.status == PaymentStatus::Pending
        && existing.action.is_none()
        && existing.provider_trade_no.is_none()
        && now - existing.updated_at > in_flight_secs as i64;
    if !stranded {
        return Ok(existing);
    }
    tracing::warn!(payment_id = %existing.payment_id, account = %existing.provider, "a create stranded without its action is sent again");
    let step = match plan(live, &existing, request, &existing.provider, now) {
        Ok(step) => step,
        Err(e) => return fail_stranded(gateway, &existing, &e.message, now).await,
    };
    match create_at(gateway, live, &existing, request, step, now).await {
        Ok(p) => Ok(p),
        Err(Attempt::NotTaken(e)) => {
            // Paid in the meantime (someone had the page after all)? Its word settles it.
            if let Ok(p) = refresh_from_provider(gateway, live, &existing, now).await {
                if p.status.is_final() {
                    return Ok(p);
                }
            }
            fail_stranded(gateway, &existing, &e.message, now).await
        }
        Err(Attempt::MaybeTaken(e)) => Err(e),
    }
}

async fn fail_stranded(gateway: &Gateway, payment: &Payment, why: &str, now: i64) -> Result<Payment, ApiError> {
    tracing::warn!(payment_id = %payment.payment_id, reason = why, "stranded create failed; the merchant needs a new out_trade_no");
    match gateway.store.settle_payment(&payment.payment_id, &Settlement::to(PaymentStatus::Failed), now).await? {
        Settled::Moved(p) | Settled::Unchanged(p) => {
            gateway.outbox_wake.notify_one();
            Ok(p)
        }
    }
}

/// When an unpaid payment expires: the request's expire_seconds, else the account's order
/// lifetime (routes.yaml, else its document's), else the configured default.
fn expire_seconds(live: &LiveConfig, request: &CreatePaymentRequest, account: &str) -> i64 {
    let lifetime = live
        .config
        .providers
        .get(account)
        .and_then(|p| p.order_lifetime_secs)
        .map(|s| s as i64)
        .or_else(|| live.dialect(account).and_then(|d| d.order_lifetime()).map(|d| d.as_secs() as i64));
    request.expire_seconds.or(lifetime).unwrap_or(live.config.requery.default_expire_secs as i64)
}

/// How one account's create attempt ended, when it did not succeed.
enum Attempt {
    /// The provider certainly did not take the order: another account may be tried.
    NotTaken(ApiError),
    /// The provider may have taken it: stop, the payment stays pending.
    MaybeTaken(ApiError),
}

async fn create_at(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    request: &CreatePaymentRequest,
    step: CreateStep,
    now: i64,
) -> Result<Payment, Attempt> {
    let account = payment.provider.as_str();
    let (Some(dialect), Some(provider)) = (live.dialect(account), live.config.providers.get(account)) else {
        return Err(Attempt::NotTaken(ApiError::internal(format!("provider account {account} is not defined"))));
    };
    let order = create_order(live, payment, request, account);
    let created = match step {
        CreateStep::Done(created) => created,
        CreateStep::Call(call) => {
            let started = std::time::Instant::now();
            let answer = gateway.upstream.call_provider(provider, &call).await;
            crate::core::ask::note_call(gateway, &payment.payment_id, account, &call, answer.as_ref(), started);
            match answer {
                Err(e) if e.not_sent() => {
                    return Err(Attempt::NotTaken(ApiError::provider_unavailable(
                        Some(account),
                        format!("provider account {account}: {e}"),
                    )))
                }
                Err(e) => {
                    return Err(Attempt::MaybeTaken(ApiError::provider_unavailable(
                        Some(account),
                        format!("provider account {account}: {e}; the payment stays pending, query it for its outcome"),
                    )))
                }
                Ok(answer) => match dialect
                    .read_create(&order, ProviderResponse { status: answer.status, body: &answer.body })
                {
                    Ok(created) => created,
                    Err(
                        e @ (DialectError::Rejected { .. } | DialectError::Unsupported(_) | DialectError::Invalid(_)),
                    ) => return Err(Attempt::NotTaken(dialect_error(account, e))),
                    Err(e) => {
                        let mut err = dialect_error(account, e);
                        err.message = format!(
                            "provider account {account} answered HTTP {} in a way payglot could not verify; the payment stays pending (if the provider never got the order, it fails once the provider has not known it for {} s)",
                            answer.status, live.config.requery.unknown_order_fail_secs
                        );
                        return Err(Attempt::MaybeTaken(err));
                    }
                },
            }
        }
    };
    let store = &gateway.store;
    let stored = store
        .record_created(
            &payment.payment_id,
            created.provider_trade_no.as_deref(),
            &created.action,
            created.expires_at,
            now,
        )
        .await;
    stored.map_err(|e| Attempt::MaybeTaken(e.into()))?;
    if created.status.is_final() {
        let report = crate::dialects::PaymentReport {
            payment_id: payment.payment_id.clone(),
            provider_trade_no: created.provider_trade_no.clone(),
            status: created.status,
            amount: Some(payment.amount),
            paid_amount: None,
            paid_at: Some(now),
        };
        if let Err(e) = apply_report(gateway, payment, &report, ReportSource::CreateAnswer, now).await {
            tracing::error!(payment_id = %payment.payment_id, error = %e, "could not settle at create");
        }
    }
    let stored = store.payment_by_id(&payment.payment_id).await.map_err(|e| Attempt::MaybeTaken(e.into()))?;
    stored.ok_or_else(|| Attempt::MaybeTaken(ApiError::internal("payment vanished from the store")))
}

/// A payment as it stands: final ones as stored; pending ones after asking the account that
/// created it (sticky, whatever the routes say now). The reason is set when the provider
/// could not tell and the stored state stands.
pub async fn current_state(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: Payment,
    now: i64,
) -> (Payment, Option<String>) {
    if payment.status.is_final() {
        return (payment, None);
    }
    match refresh_from_provider(gateway, live, &payment, now).await {
        Ok(p) => (p, None),
        Err(reason) => (payment, reason),
    }
}

/// Asks a payment's own provider account for its state and applies a verified answer.
/// `Ok` is the payment as it now is; `Err(Some(reason))` says why the provider could not tell
/// (the stored state stands); `Err(None)` means the provider's rate limit says not now.
pub async fn refresh_from_provider(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    now: i64,
) -> Result<Payment, Option<String>> {
    let account = account(live, &payment.provider).map_err(|e| Some(e.message))?;
    refresh_with(gateway, live, payment, account, now).await
}

/// As `refresh_from_provider`, for a query prompted by a message payglot could not verify (a
/// callback whose signature failed, xiaojitong's unsigned checkOrder at its door): whoever
/// sends those must not make payglot query the provider without limit with the school's
/// credentials, nor open its circuit. At most one such query per payment per window and
/// `unverified_queries.max` per account per window (`payglot_unverified_queries_total`);
/// their outcome does not count for the breaker. `Err(None)`: not now.
pub async fn refresh_unverified(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    now: i64,
) -> Result<Payment, Option<String>> {
    let mut account = account(live, &payment.provider).map_err(|e| Some(e.message))?;
    let (max, window) = account.config.unverified_queries;
    let window = std::time::Duration::from_secs(window);
    let name = account.name.to_string();
    let fresh = gateway.limits.try_acquire(&format!("unverified/{name}/{}", payment.payment_id), window).is_ok()
        && gateway.limits.try_take(&format!("unverified/{name}"), max, window);
    metrics::counter!("payglot_unverified_queries_total", "provider" => name, "outcome" => if fresh { "sent" } else { "limited" })
        .increment(1);
    if !fresh {
        return Err(None);
    }
    account.counted = false;
    refresh_with(gateway, live, payment, account, now).await
}

async fn refresh_with(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    account: Account<'_>,
    now: i64,
) -> Result<Payment, Option<String>> {
    if let Some(interval) = account.dialect.query_interval() {
        let key = format!("query/{}/{}", account.name, payment.payment_id);
        if gateway.limits.try_acquire(&key, interval).is_err() {
            return Err(None);
        }
    }
    let call = account.dialect.query_payment(payment, now).map_err(|e| Some(e.to_string()))?;
    let answer = send_about(gateway, &account, &call, &payment.payment_id).await.map_err(|(_, e)| Some(e.message))?;
    let outcome =
        match account.dialect.read_query(payment, ProviderResponse { status: answer.status, body: &answer.body }) {
            Ok(report) => {
                apply_report(gateway, payment, &report, ReportSource::Query, now).await.map_err(|e| e.to_string())
            }
            Err(DialectError::UnknownOrder(said)) => unknown_order(gateway, live, payment, &account, &said, now).await,
            Err(e) => Err(format!("provider account {}: {e}", account.name)),
        };
    outcome.map_err(|reason| {
        tracing::warn!(payment_id = %payment.payment_id, account = %account.name, error = %reason, "query answer not applied");
        Some(reason)
    })
}

/// The provider says it does not know a payment. One it never confirmed taking (no action
/// recorded) is failed, with `payment.failed`, once that is still so
/// `requery.unknown_order_fail_secs` (default 600 s) after its creation: a provider that took an
/// order knows it by then. Before that, or for an order the provider did confirm, the payment
/// stays pending and the reason says why.
async fn unknown_order(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    account: &Account<'_>,
    said: &str,
    now: i64,
) -> Result<Payment, String> {
    let bound = live.config.requery.unknown_order_fail_secs as i64;
    let confirmed = payment.action.is_some() || payment.provider_trade_no.is_some();
    if confirmed || now - payment.created_at < bound {
        let why = if confirmed {
            "though it confirmed taking it".to_string()
        } else {
            format!(
                "(it never confirmed taking it; the payment fails if that still holds {bound} s after its creation)"
            )
        };
        return Err(format!("provider account {} says it does not know this order {why}: {said}", account.name));
    }
    tracing::warn!(payment_id = %payment.payment_id, account = %account.name, said, "the provider never got this order: the payment fails");
    match gateway.store.settle_payment(&payment.payment_id, &Settlement::to(PaymentStatus::Failed), now).await {
        Ok(Settled::Moved(p)) | Ok(Settled::Unchanged(p)) => {
            gateway.outbox_wake.notify_one();
            Ok(p)
        }
        Err(e) => Err(e.to_string()),
    }
}

pub async fn payment_of(gateway: &Gateway, merchant: &MerchantConfig, out_trade_no: &str) -> Result<Payment, ApiError> {
    gateway
        .store
        .payment_by_out_trade_no(&merchant.id, out_trade_no)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no payment with out_trade_no {out_trade_no:?}")))
}

/// Closes a payment unless it is paid (a closed one is answered again).
pub async fn close_payment(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: Payment,
    now: i64,
) -> Result<Payment, ApiError> {
    let out_trade_no = &payment.out_trade_no;
    match payment.status {
        PaymentStatus::Closed => return Ok(payment),
        PaymentStatus::Succeeded | PaymentStatus::Failed => {
            return Err(ApiError::invalid_state(format!(
                "payment {out_trade_no:?} is {}; only a pending payment can be closed",
                payment.status
            )))
        }
        PaymentStatus::Pending => {}
    }
    close_at_provider(gateway, live, &payment, now).await
}

/// Closes a pending payment at its provider, then locally (`payment.closed`). If the provider
/// refuses (perhaps it was just paid), its state is queried and the refusal returned.
pub async fn close_at_provider(
    gateway: &Gateway,
    live: &LiveConfig,
    payment: &Payment,
    now: i64,
) -> Result<Payment, ApiError> {
    let account = account(live, &payment.provider)?;
    let call = account.dialect.close_payment(payment, now).map_err(|e| dialect_error(account.name, e))?;
    let answer = send_about(gateway, &account, &call, &payment.payment_id).await.map_err(|(_, e)| e)?;
    if let Err(e) = account.dialect.read_close(payment, ProviderResponse { status: answer.status, body: &answer.body })
    {
        let _ = refresh_from_provider(gateway, live, payment, now).await;
        return Err(dialect_error(account.name, e));
    }
    close_locally(gateway, payment, now).await
}

/// Moves a pending payment to closed (with its `payment.closed` event), for when the provider
/// closed it or can no longer take money for it.
pub async fn close_locally(gateway: &Gateway, payment: &Payment, now: i64) -> Result<Payment, ApiError> {
    let report = crate::dialects::PaymentReport {
        payment_id: payment.payment_id.clone(),
        provider_trade_no: None,
        status: PaymentStatus::Closed,
        amount: None,
        paid_amount: None,
        paid_at: None,
    };
    apply_report(gateway, payment, &report, ReportSource::Query, now).await.map_err(|e| match e {
        crate::core::settle::ReportError::Store(e) => ApiError::from(e),
        other => ApiError::internal(other.to_string()),
    })
}
