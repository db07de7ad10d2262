//! Simulated jings: `pay.action` takes the payer's browser form (checked against the uid's
//! token) and shows the pay page; queries more often than once a minute per order and balance
//! more often than once every three minutes are refused, as the document warns; `requstOrderStatus.action` and `requstBalance.action` answer
//! signed GETs (balance only with a `reqtime` within 10 minutes of Beijing time); the notify is
//! a signed form POST, taken by any 2xx.

use super::ledger::{Notify, Order};
use super::{json_reply, text, Sandbox};
use crate::dialects::jings::provider;
use crate::dialects::{beijing_time, parse_beijing_time};
use crate::http::{HttpIn, Reply};
use crate::model::now_unix;
use crate::money::{fen_to_yuan, yuan_to_fen};
use serde_json::json;
use std::time::Duration;

pub fn handle(sb: &Sandbox, path: &str, request: &HttpIn) -> Reply {
    let token_for = |uid: &str| sb.accounts().jings.get(uid).cloned();
    match (request.method.as_str(), path) {
        ("POST", "/pay.action") => {
            let fields = match provider::read_pay_form(&request.body, token_for) {
                Ok(f) => f,
                Err(e) => return text(400, format!("支付请求错误: {e}")),
            };
            let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
            let Ok(amount) = yuan_to_fen(&get("paymoney")) else {
                return text(400, "paymoney 错误");
            };
            let extra = [("orderuid".to_string(), get("orderuid"))].into_iter().collect();
            let created = sb.ledger().create(
                "jings",
                "1000",
                &get("uid"),
                &get("orderid"),
                amount,
                amount,
                &get("notifyurl"),
                extra,
            );
            match created {
                Ok(order) => sb.pay_page("jings", &order.provider_no),
                Err(_) => text(400, "订单号重复"),
            }
        }
        ("GET", "/requstOrderStatus.action") => {
            let fields = match provider::read_query(&request.query, &["orderid", "uid"], token_for) {
                Ok(f) => f,
                Err(e) => return json_reply(provider::query_failure(&e)),
            };
            let orderid = fields.get("orderid").cloned().unwrap_or_default();
            if sb
                .limits
                .try_acquire(&format!("jings-query/{}/{orderid}", fields["uid"]), Duration::from_secs(60))
                .is_err()
            {
                return json_reply(provider::query_failure("此接口不能频繁查询，一个订单号一分钟只能查询一次"));
            }
            let ledger = sb.ledger();
            let Some(o) =
                ledger.order_by_merchant_no(&fields["uid"], fields.get("orderid").map(String::as_str).unwrap_or(""))
            else {
                return json_reply(provider::query_failure("订单不存在"));
            };
            json_reply(provider::query_answer(o))
        }
        ("GET", "/requstBalance.action") => {
            let fields = match provider::read_query(&request.query, &["uid", "reqtime"], token_for) {
                Ok(f) => f,
                Err(e) => return json_reply(json!({"msg": e, "status": "1"}).to_string()),
            };
            let reqtime = fields.get("reqtime").cloned().unwrap_or_default();
            if parse_beijing_time(&reqtime).is_none_or(|t| (t - now_unix()).abs() > 600) {
                return json_reply(json!({"msg": format!("reqtime 与服务器时间误差超过10分钟 ({})", beijing_time(now_unix())), "status": "1"}).to_string());
            }
            if sb.limits.try_acquire(&format!("jings-balance/{}", fields["uid"]), Duration::from_secs(180)).is_err() {
                return json_reply(json!({"msg": "此接口不能频繁查询，三分钟只能查询一次", "status": "1"}).to_string());
            }
            let balance = sb.ledger().paid_total("jings", &fields["uid"]);
            json_reply(json!({"balance": fen_to_yuan(balance), "msg": "", "reqtime": reqtime, "status": "0", "uid": fields["uid"]}).to_string())
        }
        _ => text(404, "no such jings endpoint"),
    }
}

/// The notify (1.2).
pub fn notify(sb: &Sandbox, order: &Order) -> Option<Notify> {
    let token = sb.accounts().jings.get(&order.account)?.clone();
    Some(provider::notify(order, &token))
}
