//! The zhixiao front door (`/compat/zhixiao/order/create`, `/order/query`, `/order/cancel`,
//! `/order/refund`): id/param/sign forms opened and verified with the door's appid, appsecret
//! and AES settings, answered `{ret_code, ret_content, sign}` sealed the same way. pay_type 1 is
//! wechat, 2 alipay (default: the door's `channel`, else wechat); an `openid` makes it a wechat
//! mini-program payment (`sp_data` in the answer), otherwise the door's `scene` (default h5)
//! then the other URL scenes, with `url` where the payer pays. user_no, user_name and piaoju
//! are passed to whichever provider serves the payment.
//!
//! Refunds: the document's refund carries no refund number, nonce or timestamp, so a captured
//! refund request could be sent again and again. The door names each refund after its exact
//! bytes (a digest of the request body): a byte-identical request is the same refund, answered
//! again, never refunded twice. The cost: a school cannot make two equal refunds of one order
//! (its requests would be identical); it refunds the sum at once instead. ret_code 0 means accepted (done, or pending at a provider that
//! settles refunds later). The optional identity and card calls (2.6, 2.7) are not offered
//! at the door: they answer ret_code -1 saying so.

use super::{find, json, text, Intent, Lookup};
use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::error::ApiError;
use crate::core::refunds::CreateRefundRequest;
use crate::dialects::field;
use crate::dialects::signing::parse_form;
use crate::dialects::zhixiao::{provider, Envelope};
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, Action, Channel, Scene};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub async fn handle(gateway: &Gateway, live: &LiveConfig, path: &str, request: &HttpIn) -> Reply {
    if request.method != "POST" {
        return text(405, "POST only");
    }
    let form: BTreeMap<String, String> = parse_form(&request.body).into_iter().collect();
    let appid = form.get("id").map(String::as_str).unwrap_or("");
    let Some((merchant, door)) = live.door("zhixiao", appid) else {
        return json(json!({"ret_code": -1, "ret_content": "appid 不存在", "sign": ""}).to_string());
    };
    let Ok(env) = Envelope::for_account(&door.account) else {
        return json(json!({"ret_code": -1, "ret_content": "appid 配置错误", "sign": ""}).to_string());
    };
    let content = match env.read_request(&request.body) {
        Ok(c) => c,
        Err(_) => return json(env.answer(-2, None, "参数校验失败")),
    };
    let now = now_unix();
    let out_trade_no = field(&content, "out_trade_no");
    let answer: Result<Value, ApiError> = match path {
        "/order/create" => {
            let fee = match provider::check_create(&content) {
                Ok(f) => f,
                Err(message) => return json(env.answer(-2, None, &message)),
            };
            let channel = match field(&content, "pay_type").as_str() {
                "1" => Channel::Wechat,
                "2" => Channel::Alipay,
                _ => door.channel.unwrap_or(Channel::Wechat),
            };
            let openid = field(&content, "openid");
            let scenes = if openid.is_empty() {
                super::url_scenes(door.scene.unwrap_or(Scene::H5))
            } else {
                vec![Scene::Miniapp]
            };
            let mut intent = Intent::new(&out_trade_no, fee, &field(&content, "body"), channel, scenes)
                .notify_url(&field(&content, "notify_url"))
                .return_url(&field(&content, "return_url"))
                .keep("pay_type", &field(&content, "pay_type"))
                .keep("user_no", &field(&content, "user_no"))
                .keep("user_name", &field(&content, "user_name"));
            intent.openid = Some(openid).filter(|o| !o.is_empty());
            for k in ["user_no", "user_name", "piaoju"] {
                if let Some(v) = content.get(k).filter(|v| !v.is_null()) {
                    intent.extra.insert(k.into(), v.clone());
                }
            }
            super::create(gateway, live, merchant, door, intent, now).await.map(|payment| {
                let mut answer =
                    json!({"out_trade_no": payment.out_trade_no, "order_id": payment.payment_id, "url": super::pay_url(live, &payment)});
                if let Some(Action::Jsapi { params }) = &payment.action {
                    answer["sp_data"] = Value::String(serde_json::to_string(params).unwrap_or_default());
                }
                answer
            })
        }
        "/order/query" => find(gateway, live, merchant, Lookup::OutTradeNo(&out_trade_no), now)
            .await
            .map(|payment| provider::query_content(&crate::core::notify::provider_order(&payment, door))),
        "/order/cancel" => super::cancel(gateway, live, merchant, &out_trade_no, now)
            .await
            .map(|p| json!({"out_trade_no": p.out_trade_no, "order_id": p.payment_id})),
        "/order/refund" => {
            let Ok(fee) = field(&content, "refund_fee").parse::<i64>() else {
                return json(env.answer(-2, None, "refund_fee 错误"));
            };
            let request =
                CreateRefundRequest { out_refund_no: replay_safe_refund_no(&request.body), amount: fee, reason: None };
            super::refund(gateway, live, merchant, &out_trade_no, &request, now)
                .await
                .map(|refund| json!({"out_trade_no": refund.out_trade_no, "order_id": refund.payment_id}))
        }
        "/user/identity" | "/user/card" => {
            return json(env.answer(
                -1,
                None,
                "payglot 兼容入口不提供此接口 (identity and card calls are on the merchant API)",
            ))
        }
        _ => return text(404, "no such zhixiao endpoint"),
    };
    match answer {
        Ok(content) => json(env.answer(0, Some(&content), "")),
        Err(e) => {
            let code = if e.code == "invalid_request" { -2 } else { -1 };
            json(env.answer(code, None, &super::refusal(&e)))
        }
    }
}

/// The refund number of a zhixiao refund request: its bytes' digest, so replays are one refund.
fn replay_safe_refund_no(body: &[u8]) -> String {
    format!("zr{}", &hex::encode(Sha256::digest(body))[..30])
}
