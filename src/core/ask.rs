//! Asking a provider account: the one path every call to a provider takes (the account of
//! the live config, its dialect, the upstream client, the payment's timeline), and the mapping
//! of a dialect's refusal onto the errors every door answers with.

use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig, ProviderConfig, RouteTarget};
use crate::core::error::ApiError;
use crate::dialects::{Dialect, DialectError, ProviderRequest, ProviderResponse, Refusal};
use crate::upstream::{Answer, UpstreamError};
use std::sync::Arc;

/// Maps a dialect's refusal onto the merchant API error.
pub fn dialect_error(account: &str, e: DialectError) -> ApiError {
    match e {
        DialectError::Rejected { code, message, kind } => match kind {
            Refusal::Generic => ApiError::provider_error(account, &code, &message),
            Refusal::InvalidState => {
                let mut err = ApiError::invalid_state(format!("provider account {account} refused: {message}"));
                err.provider = Some(account.to_string());
                err.provider_code = Some(code);
                err.provider_message = Some(message);
                err
            }
            Refusal::AmountExceeded => {
                let mut err =
                    ApiError::amount_exceeds_refundable(format!("provider account {account} refused: {message}"));
                err.provider = Some(account.to_string());
                err.provider_code = Some(code);
                err.provider_message = Some(message);
                err
            }
            Refusal::NotEnabled => {
                let mut err = ApiError::unsupported(
                    account,
                    format!("provider account {account} has not enabled this: {message}"),
                );
                err.provider_code = Some(code);
                err.provider_message = Some(message);
                err
            }
        },
        DialectError::BadMessage(m) => {
            let mut err = ApiError::provider_error(account, "bad_answer", &m);
            err.message =
                format!("provider account {account} gave an answer payglot could not verify; query for the outcome");
            err
        }
        DialectError::Unsupported(m) => ApiError::unsupported(account, format!("provider account {account}: {m}")),
        DialectError::Invalid(m) => ApiError::invalid_request(format!("provider account {account}: {m}")),
        DialectError::UnknownOrder(m) => {
            let mut err = ApiError::provider_error(account, "unknown_order", &m);
            err.message = format!("provider account {account} says it does not know this order");
            err
        }
    }
}

/// A provider account as a handler needs it: its settings and its dialect.
pub struct Account<'a> {
    pub name: &'a str,
    pub config: &'a ProviderConfig,
    pub dialect: Arc<dyn Dialect>,
    /// Whether calls count for the account's circuit breaker (not for queries prompted by
    /// unverified messages).
    pub counted: bool,
}

/// The account `name` in the live config, or an error naming it.
pub fn account<'a>(live: &'a LiveConfig, name: &'a str) -> Result<Account<'a>, ApiError> {
    match (live.config.providers.get(name), live.dialect(name)) {
        (Some(config), Some(dialect)) => Ok(Account { name, config, dialect: dialect.clone(), counted: true }),
        _ => Err(ApiError::provider_unavailable(
            Some(name),
            format!("provider account {name} is no longer defined in routes.yaml"),
        )),
    }
}

/// Sends one dialect request to an account. Errors are the merchant API's 503s.
pub async fn send(
    gateway: &Gateway,
    account: &Account<'_>,
    request: &ProviderRequest,
) -> Result<Answer, (UpstreamError, ApiError)> {
    let c = account.config;
    gateway.upstream.call_provider_with(c, request, account.counted).await.map_err(|e| {
        let api = ApiError::provider_unavailable(Some(account.name), format!("provider account {}: {e}", account.name));
        (e, api)
    })
}

/// Sends a dialect's request to an account and reads the verified answer, mapping every
/// failure onto the merchant API error; with a `subject` the call goes on its timeline.
pub async fn ask<T>(
    gateway: &Gateway,
    account: &Account<'_>,
    call: Result<ProviderRequest, DialectError>,
    subject: Option<&str>,
    read: impl FnOnce(&dyn Dialect, ProviderResponse<'_>) -> Result<T, DialectError>,
) -> Result<T, ApiError> {
    let call = call.map_err(|e| dialect_error(account.name, e))?;
    let answer = match subject {
        Some(s) => send_about(gateway, account, &call, s).await,
        None => send(gateway, account, &call).await,
    }
    .map_err(|(_, e)| e)?;
    read(account.dialect.as_ref(), ProviderResponse { status: answer.status, body: &answer.body })
        .map_err(|e| dialect_error(account.name, e))
}

/// `send`, noting the call (operation, HTTP status or error, latency) on `subject`'s timeline.
pub async fn send_about(
    gateway: &Gateway,
    account: &Account<'_>,
    request: &ProviderRequest,
    subject: &str,
) -> Result<Answer, (UpstreamError, ApiError)> {
    let started = std::time::Instant::now();
    let result = send(gateway, account, request).await;
    note_call(gateway, subject, account.name, request, result.as_ref().map_err(|(e, _)| e), started);
    result
}

/// Notes one provider call on `subject`'s timeline.
pub fn note_call(
    gateway: &Gateway,
    subject: &str,
    account: &str,
    request: &ProviderRequest,
    result: Result<&Answer, &UpstreamError>,
    started: std::time::Instant,
) {
    let operation = request.path.split('?').next().unwrap_or("");
    // A payment polled many times a second: the same answer is noted once a second.
    if let Ok(a) = result {
        let mut recent = gateway.recent_calls.lock().unwrap_or_else(|p| p.into_inner());
        if !recent.first_in_a_while((subject, account, operation, a.status), std::time::Instant::now()) {
            return;
        }
    }
    let outcome = match result {
        Ok(a) => serde_json::json!({"status": a.status}),
        Err(e) => serde_json::json!({"error": e.to_string()}),
    };
    gateway.note(
        subject,
        "upstream",
        serde_json::json!({"provider": account, "operation": operation, "outcome": outcome, "latency_ms": started.elapsed().as_millis() as u64}),
    );
}

/// Checks a merchant's order number (`out_trade_no`, `out_refund_no`, `out_payout_no`).
pub fn check_order_number(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::invalid_request(format!(
            "{field}: 1 to 64 characters of letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// The notify_url of a request, else the merchant's default; one of them is required.
pub fn notify_url(requested: &Option<String>, merchant: &MerchantConfig) -> Result<String, ApiError> {
    requested.clone().or_else(|| merchant.notify_url.clone()).ok_or_else(|| {
        ApiError::invalid_request("notify_url: required (no default notify_url is configured for this merchant)")
    })
}

/// Whether `account` is one this merchant's routes use (merchants only reach their accounts).
pub fn merchant_uses(merchant: &MerchantConfig, account: &str) -> bool {
    merchant.routes.iter().any(|r| {
        r.fallback.iter().any(|f| f == account)
            || match &r.target {
                RouteTarget::One(a) => a == account,
                RouteTarget::Split(parts) => parts.iter().any(|(a, _)| a == account),
            }
    })
}
