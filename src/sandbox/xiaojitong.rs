//! Simulated xiaojitong: createOrder and checkOrder with md5-of-concatenation signatures, and
//! the GET callback acked by `{"code":1}`. Like the real service it asks the payer for a
//! slightly different `reallyprice` (one fen more per pending order of the same price), so
//! simultaneous payments can be told apart.

use super::ledger::{Notify, Order};
use super::{json_reply, text, Sandbox};
use crate::dialects::signing::parse_form;
use crate::dialects::xiaojitong::provider;
use crate::http::{HttpIn, Reply};
use crate::model::now_unix;
use std::collections::BTreeMap;

fn failure(code: i64, msg: &str) -> Reply {
    json_reply(provider::failure(code, msg))
}

pub fn handle(sb: &Sandbox, path: &str, request: &HttpIn) -> Reply {
    match (request.method.as_str(), path) {
        ("POST", "/createOrder") => create(sb, &request.body),
        ("POST", "/checkOrder") => check(sb, &request.body),
        _ => text(404, "no such xiaojitong endpoint"),
    }
}

fn create(sb: &Sandbox, body: &[u8]) -> Reply {
    let fields = match provider::read_create(body, |mid| sb.accounts().xiaojitong.get(mid).map(|(k, _)| k.clone())) {
        Ok(f) => f,
        Err((code, msg)) => return failure(code, &msg),
    };
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let price = match provider::check_create(&fields) {
        Ok(p) => p,
        Err((code, msg)) => return failure(code, &msg),
    };
    let mut ledger = sb.ledger();
    // One fen more for each pending order already asking for the same amount.
    let mut payable = price;
    while ledger.pending_with_payable("xiaojitong", &get("mid"), payable) {
        payable += 1;
    }
    let extra: BTreeMap<String, String> = [("param", get("param")), ("returnurl", get("returnurl"))]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let Ok(order) =
        ledger.create("xiaojitong", "2022", &get("mid"), &get("payid"), price, payable, &get("notifyurl"), extra)
    else {
        return failure(-5, "订单号重复");
    };
    let paytype = sb.accounts().xiaojitong.get(&get("mid")).map(|(_, t)| *t).unwrap_or(1);
    json_reply(provider::create_answer(
        &order,
        paytype,
        &format!("{}/pay/{}", sb.url("xiaojitong"), order.provider_no),
        now_unix(),
    ))
}

fn check(sb: &Sandbox, body: &[u8]) -> Reply {
    let fields: BTreeMap<String, String> = parse_form(body).into_iter().collect();
    let orderid = fields.get("orderid").cloned().unwrap_or_default();
    let ledger = sb.ledger();
    let Some(order) = ledger.order(&orderid).filter(|o| o.dialect == "xiaojitong") else {
        return json_reply(provider::unknown_order());
    };
    let Some(key) = sb.accounts().xiaojitong.get(&order.account).map(|(k, _)| k.clone()) else {
        return failure(-1, "商户不存在");
    };
    json_reply(provider::check_answer(order, &key))
}

/// The merchant callback: GET with signed query fields, ack `{"code":1}`.
pub fn notify(sb: &Sandbox, order: &Order) -> Option<Notify> {
    let key = sb.accounts().xiaojitong.get(&order.account)?.0.clone();
    Some(provider::notify(order, &key))
}
