//! The mct front door (`/compat/mct/mct1/...`): forms of open_id, timestamp (±600 s), data
//! (AES-256-ECB, hex) and sign, verified and opened with the door's open_key; answers sealed and
//! signed the same way, errors with the document's §5 codes. payorder's scene comes from its
//! fields: `auth_code` → barcode; `JSAPI` 1 → jsapi (wechat: sub_appid and sub_openid; alipay:
//! buyer_id); `jump_url` → the payer opens `jsapi_pay_url` and returns there (an h5 payment);
//! otherwise qr, then the other URL scenes, with `trade_qrcode` where the payer pays. paystatus
//! and order/view answer payments and refunds; paycancel closes; payrefund checks the
//! supervisor password (the door's `shop_pass`, default the document's 123456, sent as sha1)
//! and refunds with refund_out_no as the refund number. paylist offers Weixin and Alipay. The
//! order listing is not offered: it answers errcode 1 saying so.

use super::{find, json, text, Intent, Lookup};
use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::error::ApiError;
use crate::core::refunds::CreateRefundRequest;
use crate::dialects::field;
use crate::dialects::mct::{provider, Envelope};
use crate::dialects::signing::sha1_hex;
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, Action, Channel, Scene, TransferStatus};
use serde_json::{json, Value};

pub async fn handle(gateway: &Gateway, live: &LiveConfig, path: &str, request: &HttpIn) -> Reply {
    let Some(op) = path.strip_prefix("/mct1") else {
        return text(404, "no such mct endpoint");
    };
    if request.method != "POST" {
        return text(405, "POST only");
    }
    let now = now_unix();
    let envelope_for = |id: &str| live.door("mct", id).and_then(|(_, door)| Envelope::for_account(&door.account).ok());
    let (env, d) = match provider::read_request(&request.body, now, envelope_for) {
        Ok(r) => r,
        Err((code, msg)) => return json(provider::failure(code, &msg)),
    };
    let Some((merchant, door)) = live.door("mct", &env.open_id) else {
        return json(provider::failure(3002, "门店不存在"));
    };
    let answer: Result<(&str, Value), ApiError> = match op {
        "/payorder" => {
            let amount = match provider::check_payorder(&d) {
                Ok(a) => a,
                Err((code, msg)) => return json(provider::failure(code, &msg)),
            };
            let channel = if field(&d, "pmt_tag") == "Alipay" { Channel::Alipay } else { Channel::Wechat };
            let (scenes, openid) = if !field(&d, "auth_code").is_empty() {
                (vec![Scene::Barcode], None)
            } else if !field(&d, "jump_url").is_empty() {
                (super::url_scenes(Scene::H5), None)
            } else if field(&d, "JSAPI") == "1" {
                let openid = if channel == Channel::Wechat { field(&d, "sub_openid") } else { field(&d, "buyer_id") };
                (vec![Scene::Jsapi], Some(openid))
            } else {
                (super::url_scenes(Scene::Qr), None)
            };
            let name = field(&d, "ord_name");
            let subject = if name.is_empty() { format!("订单 {}", field(&d, "out_no")) } else { name };
            let mut intent = Intent::new(&field(&d, "out_no"), amount, &subject, channel, scenes)
                .notify_url(&field(&d, "notify_url"))
                .return_url(&field(&d, "jump_url"))
                .keep("pmt_tag", &field(&d, "pmt_tag"));
            intent.description = field(&d, "remark");
            intent.auth_code = Some(field(&d, "auth_code")).filter(|c| !c.is_empty());
            intent.openid = openid.filter(|o| !o.is_empty());
            if !field(&d, "sub_appid").is_empty() {
                intent.extra.insert("sub_appid".into(), field(&d, "sub_appid").into());
            }
            let jump = !field(&d, "jump_url").is_empty();
            super::create(gateway, live, merchant, door, intent, now).await.map(|payment| {
                let url = super::pay_url(live, &payment);
                let mut data = provider::order_data(&crate::core::notify::provider_order(&payment, door), &url);
                if jump {
                    data["jsapi_pay_url"] = json!(url);
                }
                if let Some(Action::Jsapi { params }) = &payment.action {
                    for (k, v) in params {
                        data[k.as_str()] = json!(v);
                    }
                }
                ("ok", data)
            })
        }
        "/paystatus" | "/order/view" => {
            let out_no = field(&d, "out_no");
            match find(gateway, live, merchant, Lookup::OutTradeNo(&out_no), now).await {
                Ok(payment) => {
                    let url = super::pay_url(live, &payment);
                    Ok(("ok", provider::order_data(&crate::core::notify::provider_order(&payment, door), &url)))
                }
                Err(e) if e.code == "not_found" => match gateway.store.refund_by_out_no(&merchant.id, &out_no).await {
                    Ok(Some(r)) => {
                        let status = match r.status {
                            TransferStatus::Succeeded => "1",
                            TransferStatus::Failed => "4",
                            TransferStatus::Pending => "2",
                        };
                        Ok((
                            "ok",
                            json!({"ord_no": r.refund_id, "out_no": r.out_refund_no, "ord_type": "2",
                            "trade_amount": r.amount.to_string(), "status": status}),
                        ))
                    }
                    Ok(None) => Err(e),
                    Err(store) => Err(store.into()),
                },
                Err(e) => Err(e),
            }
        }
        "/paycancel" => super::cancel(gateway, live, merchant, &field(&d, "out_no"), now)
            .await
            .map(|p| ("订单取消成功", json!({"ord_no": p.payment_id, "ord_stautus": 4}))),
        "/payrefund" => {
            let pass = door.account.credentials.get("shop_pass").map(|s| s.expose()).unwrap_or("123456");
            if field(&d, "shop_pass").is_empty() {
                return json(provider::failure(8016, "主管密码不能为空"));
            }
            if !crate::dialects::signing::same_hex_signature(&sha1_hex(pass.as_bytes()), &field(&d, "shop_pass")) {
                return json(provider::failure(8017, "主管密码错误"));
            }
            let Ok(amount) = field(&d, "refund_amount").parse::<i64>() else {
                return json(provider::failure(8015, "退款金额不能为空"));
            };
            let remark = field(&d, "remark");
            let request = CreateRefundRequest {
                out_refund_no: field(&d, "refund_out_no"),
                amount,
                reason: Some(remark).filter(|r| !r.is_empty()),
            };
            super::refund(gateway, live, merchant, &field(&d, "out_no"), &request, now).await.map(|r| {
                let succeeded = r.status == TransferStatus::Succeeded;
                ("订单退款成功", provider::refund_data(&r.refund_id, &r.payment_id, r.amount, succeeded, now))
            })
        }
        "/paylist" => Ok(("ok", provider::paylist_data())),
        "/order" => return json(provider::failure(1, "payglot 兼容入口不提供订单列表")),
        _ => return text(404, "no such mct endpoint"),
    };
    match answer {
        Ok((msg, data)) => json(env.answer(0, msg, Some(&data), now)),
        Err(e) => json(provider::failure(error_code(op, &e), &super::refusal(&e))),
    }
}

/// §5's code for a refusal of `op`.
fn error_code(op: &str, e: &ApiError) -> i64 {
    match (op, e.code) {
        ("/payrefund", "not_found") => 8018,
        ("/payrefund", "invalid_state") => 8019,
        ("/payrefund", "amount_exceeds_refundable") => 8022,
        ("/payrefund", c) if c.starts_with("duplicate") => 8020,
        ("/payrefund", _) => 8023,
        ("/paycancel", "invalid_state") => 8012,
        ("/paycancel", "not_found") | ("/paystatus" | "/order/view", "not_found") => 8002,
        ("/paycancel", _) => 8013,
        (_, "duplicate_out_trade_no") => 8045,
        (_, "invalid_request") => 8006,
        (_, "unsupported_operation") => 8007,
        _ => 8008,
    }
}
