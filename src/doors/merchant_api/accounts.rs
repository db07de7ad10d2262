//! Questions about a provider account rather than a payment: `GET /v1/balance?provider=ID`
//! (jings), `GET /v1/payment-methods?provider=ID` (mct paylist), and zhixiao's optional
//! `GET /v1/identity?provider=ID&uid=` and `GET /v1/card-link?provider=ID&user_no=&school_id=`. A merchant may ask only
//! about accounts its routes use. Balance respects the provider's rate limit: inside it, the
//! last answer is served with the time it was read.

use super::provider_param;
use crate::app::Gateway;
use crate::config::{LiveConfig, MerchantConfig};
use crate::core::ask::{account, ask, dialect_error, send};
use crate::core::error::ApiError;
use crate::dialects::ProviderResponse;
use crate::http::Reply;
use crate::model::rfc3339;
use serde_json::json;

pub async fn balance(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    query: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let name = provider_param(merchant, query)?;
    let account = account(live, &name)?;
    let call = account.dialect.balance(now).map_err(|e| dialect_error(account.name, e))?;
    if let Some(interval) = account.dialect.balance_interval() {
        if let Err(left) = gateway.limits.try_acquire(&format!("balance/{name}"), interval) {
            let cached = gateway.balances.lock().unwrap_or_else(|p| p.into_inner()).get(&name).copied();
            return match cached {
                Some((fen, at)) => Ok(Reply::json(
                    200,
                    &json!({"provider": name, "balance": fen, "as_of": rfc3339(at), "cached": true}),
                )),
                None => Err(ApiError::rate_limited(format!(
                    "provider account {name} allows one balance query every {} s; retry in {} s",
                    interval.as_secs(),
                    left.as_secs() + 1
                ))),
            };
        }
    }
    let answer = send(gateway, &account, &call).await.map_err(|(_, e)| e)?;
    let fen = account
        .dialect
        .read_balance(ProviderResponse { status: answer.status, body: &answer.body })
        .map_err(|e| dialect_error(account.name, e))?;
    gateway.balances.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone(), (fen, now));
    Ok(Reply::json(200, &json!({"provider": name, "balance": fen, "as_of": rfc3339(now), "cached": false})))
}

pub async fn payment_methods(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    query: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let name = provider_param(merchant, query)?;
    let account = account(live, &name)?;
    let methods =
        ask(gateway, &account, account.dialect.payment_methods(now), None, |d, a| d.read_payment_methods(a)).await?;
    Ok(Reply::json(200, &json!({"provider": name, "methods": methods})))
}

fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

pub async fn identity(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    query: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let name = provider_param(merchant, query)?;
    let uid = query_value(query, "uid").ok_or_else(|| ApiError::invalid_request("uid: query parameter required"))?;
    let account = account(live, &name)?;
    let user = ask(gateway, &account, account.dialect.identity(&uid, now), None, |d, a| d.read_identity(a)).await?;
    Ok(Reply::json(200, &json!({"provider": name, "user": user})))
}

pub async fn card_link(
    gateway: &Gateway,
    live: &LiveConfig,
    merchant: &MerchantConfig,
    query: &str,
    now: i64,
) -> Result<Reply, ApiError> {
    let name = provider_param(merchant, query)?;
    let user_no =
        query_value(query, "user_no").ok_or_else(|| ApiError::invalid_request("user_no: query parameter required"))?;
    let school_id = query_value(query, "school_id").unwrap_or_default();
    let account = account(live, &name)?;
    let card =
        ask(gateway, &account, account.dialect.card_link(&school_id, &user_no, now), None, |d, a| d.read_card_link(a))
            .await?;
    Ok(Reply::json(200, &json!({"provider": name, "card": card})))
}
