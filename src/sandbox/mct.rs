//! Simulated mct: form POSTs to `/mct1/...` whose `data` is opened with the store's open_key,
//! signatures md5(sha1(...)) and the ±600 s window checked, answers sealed and signed. Barcode
//! payments are paid at once; refunds check the supervisor password (`shop_pass`, sha1); the
//! notify is a signed GET acked by `notify_success`. Error codes are the document's §5.

use super::ledger::{Notify, Order, Transfer};
use super::{json_reply, text, Sandbox};
use crate::dialects::field;
use crate::dialects::mct::{provider, Envelope};
use crate::dialects::signing::sha1_hex;
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, random_id, PaymentStatus, TransferStatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn failure(code: i64, msg: &str) -> String {
    provider::failure(code, msg)
}

pub fn handle(sb: &Sandbox, path: &str, request: &HttpIn) -> Reply {
    let Some(op) = path.strip_prefix("/mct1") else {
        return text(404, "no such mct endpoint");
    };
    if request.method != "POST" {
        return text(405, "POST only");
    }
    let now = now_unix();
    let read = provider::read_request(&request.body, now, |id| sb.accounts().mct.get(id).map(|(e, _)| e.clone()));
    let (env, data) = match read {
        Ok(r) => r,
        Err((code, msg)) => return json_reply(failure(code, &msg)),
    };
    let answer = match op {
        "/payorder" => payorder(sb, &env, &data, now),
        "/paystatus" | "/order/view" => paystatus(sb, &env, &data, now),
        "/order" => {
            let list: Vec<Value> =
                sb.ledger().orders_of("mct", &env.open_id).iter().map(|o| order_data(sb, o)).collect();
            let total = list.len();
            env.answer(0, "ok", Some(&json!({"pages": {"totalnum": total.to_string(), "totalpage": 1, "pagesize": 100, "page": 1}, "list": list})), now)
        }
        "/paycancel" => paycancel(sb, &env, &data, now),
        "/payrefund" => payrefund(sb, &env, &data, now),
        "/paylist" => env.answer(0, "ok", Some(&provider::paylist_data()), now),
        _ => return text(404, "no such mct endpoint"),
    };
    json_reply(answer)
}

fn order_data(sb: &Sandbox, o: &Order) -> Value {
    provider::order_data(o, &format!("{}/pay/{}", sb.url("mct"), o.provider_no))
}

fn payorder(sb: &Sandbox, env: &Envelope, d: &Value, now: i64) -> String {
    let amount = match provider::check_payorder(d) {
        Ok(a) => a,
        Err((code, msg)) => return failure(code, &msg),
    };
    let (out_no, pmt_tag) = (field(d, "out_no"), field(d, "pmt_tag"));
    let jsapi = field(d, "JSAPI") == "1";
    let barcode = if field(d, "auth_code").is_empty() { "" } else { "1" };
    let extra: BTreeMap<String, String> = [("pmt_tag", pmt_tag.clone()), ("barcode", barcode.to_string())]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let created =
        sb.ledger().create("mct", "9149", &env.open_id, &out_no, amount, amount, &field(d, "notify_url"), extra);
    let Ok(mut order) = created else {
        return failure(8045, "out_no已经存在，请勿重复发起支付");
    };
    if !field(d, "auth_code").is_empty() {
        // Barcode: the payer's code is charged at once.
        order = sb.ledger().pay(&order.provider_no).expect("just created");
        if let Some(n) = notify(sb, &order, "1") {
            sb.send_notify("mct", n);
        }
    }
    let mut data = order_data(sb, &order);
    if !field(d, "jump_url").is_empty() {
        data["jsapi_pay_url"] = json!(format!("{}/pay/{}", sb.url("mct"), order.provider_no));
    } else if jsapi && pmt_tag == "Weixin" {
        for (k, v) in [
            ("appId", field(d, "sub_appid")),
            ("timeStamp", now.to_string()),
            ("nonceStr", random_id("", 16)),
            ("signType", "MD5".into()),
            ("package", format!("prepay_id=wx{}", order.provider_no)),
            ("paySign", "SANDBOX".into()),
        ] {
            data[k] = json!(v);
        }
    }
    env.answer(0, "ok", Some(&data), now)
}

fn paystatus(sb: &Sandbox, env: &Envelope, d: &Value, now: i64) -> String {
    let ledger = sb.ledger();
    let out_no = field(d, "out_no");
    if let Some(o) = ledger.order_by_merchant_no(&env.open_id, &out_no) {
        return env.answer(0, "ok", Some(&order_data(sb, o)), now);
    }
    if let Some(t) = ledger.transfer_by_merchant_no(&env.open_id, &out_no) {
        let data = json!({"ord_no": t.provider_no, "out_no": t.merchant_no, "ord_type": "2", "trade_amount": t.amount.to_string(),
            "status": if t.status == TransferStatus::Succeeded { "1" } else { "4" }});
        return env.answer(0, "ok", Some(&data), now);
    }
    failure(8002, "订单不存在")
}

fn paycancel(sb: &Sandbox, env: &Envelope, d: &Value, now: i64) -> String {
    let mut ledger = sb.ledger();
    let Some(no) = ledger.order_by_merchant_no(&env.open_id, &field(d, "out_no")).map(|o| o.provider_no.clone()) else {
        return failure(8002, "订单不存在");
    };
    let order = ledger.order_mut(&no).expect("found above");
    if order.fields.get("barcode").map(String::as_str) != Some("1") {
        return failure(8013, "订单取消失败,错误原因：订单的支付场景不支持该请求");
    }
    if order.status != PaymentStatus::Pending {
        return failure(8012, "当前订单不能取消，如果已经付款，请使用退款功能");
    }
    order.status = PaymentStatus::Closed;
    // The document's own spelling.
    env.answer(0, "订单取消成功", Some(&json!({"ord_no": no, "ord_stautus": 4})), now)
}

fn payrefund(sb: &Sandbox, env: &Envelope, d: &Value, now: i64) -> String {
    let shop_pass = sb.accounts().mct.get(&env.open_id).map(|(_, p)| p.clone()).unwrap_or_default();
    if field(d, "shop_pass").is_empty() {
        return failure(8016, "主管密码不能为空");
    }
    if field(d, "shop_pass") != sha1_hex(shop_pass.as_bytes()) {
        return failure(8017, "主管密码错误");
    }
    let Ok(amount) = field(d, "refund_amount").parse::<i64>() else {
        return failure(8015, "退款金额不能为空");
    };
    let mut ledger = sb.ledger();
    let Some(no) = ledger.order_by_merchant_no(&env.open_id, &field(d, "out_no")).map(|o| o.provider_no.clone()) else {
        return failure(8018, "原始订单不存在");
    };
    let order = ledger.order(&no).expect("found above").clone();
    if order.status != PaymentStatus::Succeeded {
        return failure(8019, "当前订单不允许退款，状态异常");
    }
    if amount <= 0 || amount > order.amount - order.refunded {
        return failure(8022, "退款金额大于支付金额");
    }
    let transfer = Transfer {
        dialect: "mct",
        provider_no: ledger.next_no("9150"),
        account: env.open_id.clone(),
        merchant_no: field(d, "refund_out_no"),
        order_provider_no: Some(no.clone()),
        amount,
        status: TransferStatus::Succeeded,
        notify_url: String::new(),
        fields: BTreeMap::new(),
    };
    let Ok(t) = ledger.create_transfer(transfer) else {
        return failure(8020, "退款单号已经存在，请勿重复提交");
    };
    ledger.order_mut(&no).expect("found above").refunded += amount;
    let data = provider::refund_data(&t.provider_no, &no, amount, true, now);
    env.answer(0, "订单退款成功", Some(&data), now)
}

/// The notify (§4.8).
pub fn notify(sb: &Sandbox, order: &Order, status: &str) -> Option<Notify> {
    if order.notify_url.is_empty() {
        return None;
    }
    let env = sb.accounts().mct.get(&order.account)?.0.clone();
    Some(provider::notify(order, &env, status, &random_id("", 32), now_unix()))
}
