//! The xiaojitong front door (`/compat/xiaojitong/createOrder`, `/checkOrder`): createOrder is
//! verified with the door's key (md5 of mid + payid + param + price + key) and answered with
//! `{code, msg, data}`; checkOrder takes the door's `orderid` (payglot's payment_id) unsigned,
//! as the document has it, and answers the signed return URL once paid. The document's
//! requests name no channel: the door's `channel` (default wechat) says which; scene qr first,
//! then the other URL scenes. `data.paytype` is 1 for wechat and 2 for alipay; `reallyprice`
//! is what the payer is asked to pay.

use super::{credential, json, text, Intent};
use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::error::ApiError;
use crate::dialects::signing::parse_form;
use crate::dialects::xiaojitong::provider;
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, Channel, Scene};
use std::collections::BTreeMap;

pub async fn handle(gateway: &Gateway, live: &LiveConfig, path: &str, request: &HttpIn) -> Reply {
    let now = now_unix();
    match (request.method.as_str(), path) {
        ("POST", "/createOrder") => {
            let key_for = |mid: &str| live.door("xiaojitong", mid).map(|(_, door)| credential(door, "key"));
            let fields = match provider::read_create(&request.body, key_for) {
                Ok(f) => f,
                Err((code, msg)) => return json(provider::failure(code, &msg)),
            };
            let price = match provider::check_create(&fields) {
                Ok(p) => p,
                Err((code, msg)) => return json(provider::failure(code, &msg)),
            };
            let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
            let Some((merchant, door)) = live.door("xiaojitong", get("mid")) else {
                return json(provider::failure(-2, "商户不存在"));
            };
            let channel = door.channel.unwrap_or(Channel::Wechat);
            let scenes = super::url_scenes(door.scene.unwrap_or(Scene::Qr));
            let intent = Intent::new(get("payid"), price, &format!("订单 {}", get("payid")), channel, scenes)
                .notify_url(get("notifyurl"))
                .return_url(get("returnurl"))
                .keep("param", get("param"))
                .keep("returnurl", get("returnurl"));
            let answer = super::create(gateway, live, merchant, door, intent, now).await.map(|payment| {
                let paytype = if channel == Channel::Alipay { 2 } else { 1 };
                let order = crate::core::notify::provider_order(&payment, door);
                provider::create_answer(&order, paytype, &super::pay_url(live, &payment), now)
            });
            json(answer.unwrap_or_else(|e| provider::failure(failure_code(&e), &super::refusal(&e))))
        }
        ("POST", "/checkOrder") => {
            let fields: BTreeMap<String, String> = parse_form(&request.body).into_iter().collect();
            let orderid = fields.get("orderid").map(String::as_str).unwrap_or("");
            // Unsigned, as in the document: the order number itself is the secret.
            let Ok(Some(stored)) = gateway.store.payment_by_id(orderid).await else {
                return json(provider::unknown_order());
            };
            let Some(merchant) = live.merchant(&stored.merchant_id) else {
                return json(provider::unknown_order());
            };
            let Some(door) = merchant.compat.get("xiaojitong") else {
                return json(provider::unknown_order());
            };
            match super::find_unsigned(gateway, live, merchant, orderid, now).await {
                Ok(payment) => json(provider::check_answer(
                    &crate::core::notify::provider_order(&payment, door),
                    &credential(door, "key"),
                )),
                Err(e) => json(provider::failure(failure_code(&e), &super::refusal(&e))),
            }
        }
        _ => text(404, "no such xiaojitong endpoint"),
    }
}

/// The document's codes: -4 parameters, -5 duplicate order number, -1 anything else.
fn failure_code(e: &ApiError) -> i64 {
    match e.code {
        "invalid_request" => -4,
        c if c.starts_with("duplicate") => -5,
        _ => -1,
    }
}
