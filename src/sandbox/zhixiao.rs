//! Simulated zhixiao: every request is an id/param/sign form whose param is opened with the
//! account's AES settings; answers are `{ret_code, ret_content, sign}`. Paths are the
//! dialect's defaults (`/order/create`, `/order/query`, `/order/cancel`, `/order/refund`).
//! After payment the notify is POSTed as the same kind of form and retried until the answer's
//! ret_code is 0.

use super::ledger::{Notify, Order};
use super::{json_reply, text, Sandbox};
use crate::dialects::zhixiao::{provider, Envelope};
use crate::dialects::{field, signing::parse_form};
use crate::http::{HttpIn, Reply};
use crate::model::PaymentStatus;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn handle(sb: &Sandbox, path: &str, request: &HttpIn) -> Reply {
    if request.method != "POST" {
        return text(405, "POST only");
    }
    let form: BTreeMap<String, String> = parse_form(&request.body).into_iter().collect();
    let appid = form.get("id").cloned().unwrap_or_default();
    let Some(env) = sb.accounts().zhixiao.get(&appid).cloned() else {
        return json_reply(json!({"ret_code": -1, "ret_content": "appid 不存在", "sign": ""}).to_string());
    };
    let content = match env.read_request(&request.body) {
        Ok(c) => c,
        Err(_) => return json_reply(env.answer(-2, None, "参数校验失败")),
    };
    let answer = match path {
        "/order/create" => create(sb, &env, &content),
        "/order/query" => with_order(sb, &env, &content, |o| Ok(provider::query_content(o))),
        "/order/cancel" => cancel(sb, &env, &content),
        "/order/refund" => refund(sb, &env, &content),
        "/user/identity" if !field(&content, "uid").is_empty() => env.answer(
            0,
            Some(&json!({"open_id": "LkEb9zWC5xGAAAAWPwAVGQ", "user_no": "20140548", "user_name": "张三", "sex": "1", "identity_type": "1"})),
            "",
        ),
        "/user/card" if !field(&content, "user_no").is_empty() => env.answer(
            0,
            Some(&json!({"school_id": field(&content, "school_id"), "user_no": field(&content, "user_no"), "user_name": "张三", "sex": "1",
                "identity_type": "1", "schema_url": "https://ds.alipay.com/?scheme=alipays%3a%2f%2fplatformapi%2fstartapp%3fappId%3d20000021"})),
            "",
        ),
        "/user/identity" | "/user/card" => env.answer(-2, None, "参数校验失败"),
        _ => return text(404, "no such zhixiao endpoint"),
    };
    json_reply(answer)
}

fn create(sb: &Sandbox, env: &Envelope, c: &Value) -> String {
    let amount = match provider::check_create(c) {
        Ok(a) => a,
        Err(message) => return env.answer(-2, None, &message),
    };
    let mut extra = BTreeMap::new();
    extra.insert("pay_type".to_string(), field(c, "pay_type"));
    let created = sb.ledger().create(
        "zhixiao",
        "1464",
        &env.appid,
        &field(c, "out_trade_no"),
        amount,
        amount,
        &field(c, "notify_url"),
        extra,
    );
    let Ok(order) = created else {
        return env.answer(-1, None, "订单号重复");
    };
    let mut answer = json!({
        "out_trade_no": order.merchant_order_no,
        "order_id": order.provider_no,
        "url": format!("{}/pay/{}", sb.url("zhixiao"), order.provider_no),
    });
    if !field(c, "openid").is_empty() {
        answer["sp_data"] = json!(json!({
            "appId": "wxsandbox", "timeStamp": "1498536981", "nonceStr": "sandbox", "package": format!("prepay_id={}", order.provider_no),
            "signType": "MD5", "paySign": "SANDBOX"
        })
        .to_string());
    }
    env.answer(0, Some(&answer), "")
}

fn with_order(
    sb: &Sandbox,
    env: &Envelope,
    c: &Value,
    f: impl FnOnce(&mut Order) -> Result<Value, &'static str>,
) -> String {
    let mut ledger = sb.ledger();
    let Some(no) = ledger.order_by_merchant_no(&env.appid, &field(c, "out_trade_no")).map(|o| o.provider_no.clone())
    else {
        return env.answer(-1, None, "订单不存在");
    };
    match f(ledger.order_mut(&no).expect("found above")) {
        Ok(content) => env.answer(0, Some(&content), ""),
        Err(message) => env.answer(-1, None, message),
    }
}

fn cancel(sb: &Sandbox, env: &Envelope, c: &Value) -> String {
    with_order(sb, env, c, |o| {
        if o.status == PaymentStatus::Succeeded {
            return Err("订单已支付，不能取消");
        }
        o.status = PaymentStatus::Closed;
        Ok(json!({"out_trade_no": o.merchant_order_no, "order_id": o.provider_no}))
    })
}

fn refund(sb: &Sandbox, env: &Envelope, c: &Value) -> String {
    let Ok(fee) = field(c, "refund_fee").parse::<i64>() else {
        return env.answer(-2, None, "refund_fee 错误");
    };
    with_order(sb, env, c, |o| {
        if o.status != PaymentStatus::Succeeded {
            return Err("订单未支付");
        }
        if fee <= 0 || fee > o.amount - o.refunded {
            return Err("退款金额超过可退金额");
        }
        o.refunded += fee;
        Ok(json!({"out_trade_no": o.merchant_order_no, "order_id": o.provider_no}))
    })
}

/// The payment notify (2.5).
pub fn notify(sb: &Sandbox, order: &Order) -> Option<Notify> {
    let env = sb.accounts().zhixiao.get(&order.account)?.clone();
    Some(provider::notify(order, &env))
}
