//! The xxpay front door (`/compat/xxpay/api/pay/create_order`, `/api/pay/query_order`): the
//! `params` form signed with the door's key, answered as xxpay answers (signed SUCCESS, unsigned
//! FAIL with retMsg). productId names the channel and scene by the document's table (appendix
//! 4.1); payParams.payUrl is where the payer pays (for jsapi, payParams holds the parameters).
//! Payouts (§3) are not offered at the door: they answer FAIL saying so.

use super::{credential, find, json, text, Intent, Lookup};
use crate::api::error::ApiError;
use crate::config::LiveConfig;
use crate::dialects::xxpay::provider;
use crate::model::{now_unix, Action};
use crate::server::{Gateway, HttpIn, Reply};

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
    if get("appId") != credential(door, "app_id") {
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
            let Some((channel, scene)) = provider::product_scene(get("productId")) else {
                return json(provider::failure(&format!("支付产品不存在: productId {}", get("productId"))));
            };
            let mut intent = Intent::new(get("mchOrderNo"), amount, get("subject"), channel, super::url_scenes(scene))
                .notify_url(get("notifyUrl"))
                .return_url(get("returnUrl"))
                .keep("appId", get("appId"))
                .keep("productId", get("productId"))
                .keep("param1", get("param1"))
                .keep("param2", get("param2"));
            intent.description = get("body").to_string();
            intent.client_ip = Some(get("clientIp").to_string()).filter(|ip| !ip.is_empty());
            super::create(gateway, live, merchant, door, intent, now).await.map(|payment| {
                let pay_params = match &payment.action {
                    Some(Action::Jsapi { params }) => serde_json::to_value(params).unwrap_or_default(),
                    _ => serde_json::json!({"payUrl": super::pay_url(live, &payment)}),
                };
                provider::create_answer(&payment.payment_id, pay_params, &key)
            })
        }
        "/api/pay/query_order" => {
            let lookup = match get("payOrderId") {
                "" => Lookup::OutTradeNo(get("mchOrderNo")),
                id => Lookup::PaymentId(id),
            };
            find(gateway, live, merchant, lookup, now)
                .await
                .map(|payment| provider::query_answer(&super::provider_order(&payment, door), &key))
        }
        "/api/trans/create_order" | "/api/trans/query_order" => Err(ApiError::invalid_request(
            "payouts are not offered at payglot's xxpay front door; use POST /v1/payouts",
        )),
        _ => return text(404, "no such xxpay endpoint"),
    };
    json(answer.unwrap_or_else(|e| provider::failure(&super::refusal(&e))))
}
