//! Simulated xxpay: verifies every request's signature with the account's key, refuses
//! duplicate `mchOrderNo`, and after payment sends the signed notify (POST, form) until the
//! answer is `success`. Payouts are created in progress and completed with
//! `POST /xxpay/payout/{order}`, which sends the payout notify (GET, as §3.3 says).

use super::ledger::{Ack, Notify, Order, Transfer};
use super::{json_reply, text, Sandbox};
use crate::dialects::xxpay::{provider, ACK};
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, TransferStatus};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub fn handle(sb: &Sandbox, path: &str, request: &HttpIn) -> Reply {
    let key_for = |m: &str| sb.accounts().xxpay.get(m).map(|(_, k)| k.clone());
    if let Some(number) = path.strip_prefix("/payout/") {
        return complete_payout(sb, number);
    }
    let fields = match provider::read_request(&request.body, key_for) {
        Ok(f) => f,
        Err(message) => return json_reply(provider::failure(&message)),
    };
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let (app_id, key) = sb.accounts().xxpay[&get("mchId")].clone();
    if !get("appId").is_empty() && get("appId") != app_id {
        return json_reply(provider::failure("应用不存在"));
    }
    let body = match (request.method.as_str(), path) {
        ("POST", "/api/pay/create_order") => create_order(sb, &fields, &key),
        ("POST", "/api/pay/query_order") => query_order(sb, &fields, &key),
        ("POST", "/api/trans/create_order") => create_payout(sb, &fields, &key),
        ("POST", "/api/trans/query_order") => query_payout(sb, &fields, &key),
        _ => return text(404, "no such xxpay endpoint"),
    };
    json_reply(body)
}

fn create_order(sb: &Sandbox, fields: &BTreeMap<String, String>, key: &str) -> String {
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let amount = match provider::check_create(fields) {
        Ok(a) => a,
        Err(message) => return provider::failure(&message),
    };
    let extra: BTreeMap<String, String> = [("appId", get("appId")), ("productId", get("productId"))]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let created =
        sb.ledger().create("xxpay", "P01", &get("mchId"), &get("mchOrderNo"), amount, amount, &get("notifyUrl"), extra);
    let Ok(order) = created else {
        return provider::failure("商户订单号重复");
    };
    let pay_params = serde_json::json!({"payUrl": format!("{}/pay/{}", sb.url("xxpay"), order.provider_no)});
    provider::create_answer(&order.provider_no, pay_params, key)
}

fn query_order(sb: &Sandbox, fields: &BTreeMap<String, String>, key: &str) -> String {
    let ledger = sb.ledger();
    let mch_id = fields.get("mchId").cloned().unwrap_or_default();
    let order = match fields.get("payOrderId").filter(|s| !s.is_empty()) {
        Some(id) => ledger.order(id).filter(|o| o.account == mch_id),
        None => ledger.order_by_merchant_no(&mch_id, fields.get("mchOrderNo").map(String::as_str).unwrap_or("")),
    };
    match order {
        Some(order) => {
            // §2.2.3 executeNotify: send a paid order's notify once more.
            let again = fields.get("executeNotify").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if again && order.status == crate::model::PaymentStatus::Succeeded {
                sb.notifier.spawn(provider::notify(order, key));
            }
            provider::query_answer(order, key)
        }
        None => provider::failure("订单不存在"),
    }
}

/// The payment notify (§2.3).
pub fn notify(sb: &Sandbox, order: &Order) -> Option<Notify> {
    let key = sb.accounts().xxpay.get(&order.account)?.1.clone();
    Some(provider::notify(order, &key))
}

fn payout_fields(t: &Transfer) -> BTreeMap<String, String> {
    let code = match t.status {
        TransferStatus::Pending => "1",
        TransferStatus::Succeeded => "2",
        TransferStatus::Failed => "3",
    };
    let mut f = BTreeMap::new();
    f.insert("transOrderId".into(), t.provider_no.clone());
    f.insert("mchId".into(), t.account.clone());
    f.insert("mchTransOrderNo".into(), t.merchant_no.clone());
    f.insert("amount".into(), t.amount.to_string());
    f.insert("status".into(), code.into());
    f
}

fn create_payout(sb: &Sandbox, fields: &BTreeMap<String, String>, key: &str) -> String {
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    for required in [
        "mchTransOrderNo",
        "currency",
        "amount",
        "notifyUrl",
        "bankCode",
        "bankName",
        "accountType",
        "accountName",
        "accountNo",
        "province",
        "city",
    ] {
        if get(required).is_empty() {
            return provider::failure(&format!("参数格式校验错误: {required} 不能为空"));
        }
    }
    let Ok(amount) = get("amount").parse::<i64>() else {
        return provider::failure("参数格式校验错误: amount");
    };
    let mut ledger = sb.ledger();
    let transfer = Transfer {
        dialect: "xxpay",
        provider_no: ledger.next_no("T01"),
        account: get("mchId"),
        merchant_no: get("mchTransOrderNo"),
        order_provider_no: None,
        amount,
        status: TransferStatus::Pending,
        notify_url: get("notifyUrl"),
        fields: BTreeMap::new(),
    };
    let Ok(t) = ledger.create_transfer(transfer) else {
        return provider::failure("商户订单号重复");
    };
    let mut answer = Map::new();
    for (k, v) in payout_fields(&t) {
        answer.insert(k, Value::String(v));
    }
    answer.insert("createTime".into(), Value::from(now_unix() * 1000));
    provider::success(answer, key)
}

fn query_payout(sb: &Sandbox, fields: &BTreeMap<String, String>, key: &str) -> String {
    let ledger = sb.ledger();
    let mch_id = fields.get("mchId").cloned().unwrap_or_default();
    let Some(t) =
        ledger.transfer_by_merchant_no(&mch_id, fields.get("mchTransOrderNo").map(String::as_str).unwrap_or(""))
    else {
        return provider::failure("订单不存在");
    };
    let mut answer = Map::new();
    for (k, v) in payout_fields(t) {
        answer.insert(k, Value::String(v));
    }
    answer.insert("appId".into(), Value::String(fields.get("appId").cloned().unwrap_or_default()));
    answer.insert("currency".into(), Value::String("cny".into()));
    provider::success(answer, key)
}

/// Completes a payout and sends its notify (§3.3: GET with the fields in the query).
fn complete_payout(sb: &Sandbox, number: &str) -> Reply {
    let t = {
        let mut ledger = sb.ledger();
        let Some(no) = ledger.find_transfer("xxpay", number) else {
            return text(404, "no such payout");
        };
        let t = ledger.transfer_mut(&no).expect("found above");
        t.status = TransferStatus::Succeeded;
        t.clone()
    };
    let Some(key) = sb.accounts().xxpay.get(&t.account).map(|(_, k)| k.clone()) else {
        return text(404, "no such account");
    };
    let mut fields = payout_fields(&t);
    fields.insert("transSuccTime".into(), (now_unix() * 1000).to_string());
    fields.insert("backType".into(), "2".into());
    let query = provider::notify_body(fields, &key);
    sb.send_notify("xxpay", Notify::get(&t.notify_url, &query, Ack::Text(ACK)));
    json_reply(serde_json::json!({"transOrderId": t.provider_no, "status": 2}).to_string())
}
