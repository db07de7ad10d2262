//! The xxpay front door (`/compat/xxpay/api/pay/create_order`, `/api/pay/query_order`): the
//! `params` form signed with the door's key, answered as XxPay servers answer (signed SUCCESS
//! with resCode, signed over every field but payParams; unsigned FAIL with retMsg).
//!
//! Two kinds of client are served as they expect: those written from the document name the
//! channel and scene by productId (appendix 4.1) and read `payParams.payUrl` (for jsapi,
//! payParams holds the parameters); those copied from the open-source XxPay project send
//! `channelId` (WX_NATIVE, ALIPAY_QR, ...) and often no appId, and read a top-level
//! `codeUrl` (WX_NATIVE) or `payUrl` (Alipay, WX_MWEB), or `payParams` (WX_JSAPI). A request
//! is verified in the document's ASCII order or XxPay's case-insensitive one. An appId, when
//! sent, must be the door's. For productId 8000 (网银) the school's `param1` (bank code;
//! account name; account number) becomes the payer's bank fields for whichever provider
//! takes the payment. `executeNotify: true` on query_order sends a paid order's callback
//! again (§2.2.3). Payouts (§3) are not offered at the door: they answer FAIL saying so.
//!
//! Money-moving replays: a create is idempotent on mchOrderNo (a byte-identical replay gets
//! the same order back); the door has no refund.

use super::{credential, find, json, text, Intent, Lookup};
use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::error::ApiError;
use crate::dialects::xxpay::provider;
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, Action, Payment};
use serde_json::Value;

pub async fn handle(gateway: &Gateway, live: &LiveConfig, path: &str, request: &HttpIn) -> Reply {
    if request.method != "POST" {
        return text(405, "POST only");
    }
    let key_for = |mch: &str| live.door("xxpay", mch).map(|(_, door)| credential(door, "key"));
    let fields = match provider::read_request(&request.body, key_for) {
        Ok(f) => f,
        Err(message) => return json(provider::failure(&message)),
    };
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let Some((merchant, door)) = live.door("xxpay", get("mchId")) else {
        return json(provider::failure("商户不存在"));
    };
    if !get("appId").is_empty() && get("appId") != credential(door, "app_id") {
        return json(provider::failure("应用不存在"));
    }
    let key = credential(door, "key");
    let now = now_unix();
    let answer = match path {
        "/api/pay/create_order" => {
            let amount = match provider::check_create(&fields) {
                Ok(a) => a,
                Err(message) => return json(provider::failure(&message)),
            };
            let by_channel_id = get("productId").is_empty();
            let scene = if by_channel_id {
                provider::channel_id_scene(get("channelId"))
            } else {
                provider::product_scene(get("productId"))
            };
            let Some((channel, scene)) = scene else {
                let which =
                    if by_channel_id { ("channelId", get("channelId")) } else { ("productId", get("productId")) };
                return json(provider::failure(&format!("支付产品不存在: {} {}", which.0, which.1)));
            };
            let mut intent = Intent::new(get("mchOrderNo"), amount, get("subject"), channel, super::url_scenes(scene))
                .notify_url(get("notifyUrl"))
                .return_url(get("returnUrl"))
                .keep("appId", get("appId"))
                .keep("productId", get("productId"))
                .keep("channelId", get("channelId"))
                .keep("param1", get("param1"))
                .keep("param2", get("param2"));
            intent.description = get("body").to_string();
            intent.client_ip = Some(get("clientIp").to_string()).filter(|ip| !ip.is_empty());
            if get("productId") == "8000" {
                let parts: Vec<&str> = get("param1").split(';').collect();
                for (name, value) in ["payer_bank_code", "payer_account_name", "payer_account_no"].iter().zip(parts) {
                    intent.extra.insert(name.to_string(), Value::String(value.to_string()));
                }
            }
            super::create(gateway, live, merchant, door, intent, now)
                .await
                .map(|payment| create_answer(live, &payment, get("channelId"), &key))
        }
        "/api/pay/query_order" => {
            let lookup = match get("payOrderId") {
                "" => Lookup::OutTradeNo(get("mchOrderNo")),
                id => Lookup::PaymentId(id),
            };
            match find(gateway, live, merchant, lookup, now).await {
                Ok(payment) => {
                    if get("executeNotify").eq_ignore_ascii_case("true") {
                        super::notify_again(gateway, &payment).await;
                    }
                    Ok(provider::query_answer(&crate::core::notify::provider_order(&payment, door), &key))
                }
                Err(e) => Err(e),
            }
        }
        "/api/trans/create_order" | "/api/trans/query_order" => Err(ApiError::invalid_request(
            "payouts are not offered at payglot's xxpay front door; use POST /v1/payouts",
        )),
        _ => return text(404, "no such xxpay endpoint"),
    };
    json(answer.unwrap_or_else(|e| provider::failure(&super::refusal(&e))))
}

/// The create answer in the shape the school's client reads (see the module doc).
fn create_answer(live: &LiveConfig, payment: &Payment, channel_id: &str, key: &str) -> String {
    let url = Value::String(super::pay_url(live, payment));
    if let Some(Action::Jsapi { params }) = &payment.action {
        let params = serde_json::to_value(params).unwrap_or_default();
        return provider::create_answer(&payment.payment_id, params, key);
    }
    match channel_id {
        "" => provider::create_answer(&payment.payment_id, serde_json::json!({"payUrl": url}), key),
        "WX_NATIVE" => provider::create_answer_with(&payment.payment_id, [("codeUrl", url)], key),
        _ => provider::create_answer_with(&payment.payment_id, [("payUrl", url)], key),
    }
}
