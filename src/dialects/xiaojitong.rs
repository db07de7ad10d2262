//! xiaojitong (校际通第三方支付系统, `shared/seeds/000_05268521ca73c191.txt`).
//!
//! Transport: POST with form fields (the document shows the bodies as yaml); answers are JSON
//! `{code, msg, data}` with code 1 for success and -1..-5 for errors. Answers are not signed:
//! payglot checks that an answer echoes its own order number and price.
//!
//! | operation | request | signature |
//! | --- | --- | --- |
//! | createOrder `POST /createOrder` | mid, payid, param, price, sign, ishtml=0, notifyurl, returnurl | md5(mid + payid + param + price + key) |
//! | checkOrder `POST /checkOrder` | orderid (the provider's 云端订单号) | none; a paid answer's return URL is signed like createOrder |
//! | callback `GET {notifyurl}?mid&payid&param&price&reallyprice&sign` | ack `{"code":1}` | md5(mid + payid + param + price + reallyprice + key) |
//!
//! Known answers (unit tests below): the document's examples are signed by merchant `mid` 2
//! ("yonggo", 000 lines 531-533) with key `6d25c81b7704ab82aafcaf9376e393bc`. Under it the
//! createOrder request (lines 692-701) gives `efa416f0e4f6a3573c405d79eba1c7f6`, the stored
//! order of select_order (lines 224-239, `param` holding the 12 characters `"pay_notify"`)
//! gives `25bb5f9403f90f9dd0bde339c8300d5d`, and checkOrder's paid answer (line 885) gives
//! `3c020071b0085c6ec451fdc68303147c` = md5("2" + "21648342529607" + "" + "0.01" + key):
//! the createOrder rule, **without** reallyPrice and with the account's mid though the URL
//! carries none. (The callback table's rule with reallyprice gives `0c407e45...` for that URL.)
//! The other key printed (`80c2ab04...`, line 355) belongs to user "test" and signs nothing.
//! The callback rule (line 953) has no printed example; payglot follows its formula.
//!
//! Field mapping: `payid` is payglot's payment_id; `price` is the amount in yuan with two
//! decimals; `param` is sent empty; the answer's `orderid` is the provider_trade_no and its
//! `payurl` the QR code content. `reallyprice` is what the payer must pay (the provider may add
//! a few fen to tell simultaneous payments apart): it is shown as the qr_code action's `amount`
//! and is the amount due; what a callback or checkOrder says was paid (`reallyprice`) must
//! equal it (see `PaymentReport::paid_amount`). The order's `price` must equal the amount.
//! The answer's `paytype` (1 wechat, 2 alipay) must be the payment's channel: the provider
//! picks the wallet from its own settings, and a QR code of the other wallet is refused. Its
//! `order_time_out` (minutes) is when the order stops being payable.
//!
//! Status: the callback is only sent for a paid order → succeeded. checkOrder: code 1 is paid
//! (its `data` is the signed return URL; its `reallyPrice` is not signed) → succeeded; -2 is
//! the expired order → closed; -1 (data null) is an order the provider does not know; any
//! other code → still pending. The document names the codes without meanings; these are
//! payglot's reading. The provider offers no close, refund or payout.
//!
//! Decisions: the payer's channel is configured at the provider, so payglot accepts wechat and
//! alipay `qr` payments only; `options.wallet: wechat|alipay` says which one the account has,
//! so a payment of the other wallet is routed elsewhere before any call. The document sets no
//! length limits.

use super::signing::{encode_form, md5_hex, parse_form, same_hex_signature};
use super::ProviderConfig;
use super::{
    answer_json, check_credentials, check_options, credential, field, CallbackReply, CallbackReport, CreateOrder,
    CreateStep, Created, Dialect, DialectError, InboundHttp, PaymentReport, ProviderRequest, ProviderResponse,
};
use crate::model::{Action, Channel, Payment, PaymentStatus, Scene};
use crate::money::{fen_to_yuan, yuan_to_fen};
use std::collections::BTreeMap;

pub const CREATE_PATH: &str = "/createOrder";
pub const CHECK_PATH: &str = "/checkOrder";
pub const ACK: &str = r#"{"code":1}"#;

/// md5 of the concatenated values and the key, lowercase hex.
pub fn sign(values: &[&str], key: &str) -> String {
    let mut text = values.concat();
    text.push_str(key);
    md5_hex(text.as_bytes())
}

/// The createOrder signature: md5(mid + payid + param + price + key).
pub fn create_sign(mid: &str, payid: &str, param: &str, price: &str, key: &str) -> String {
    sign(&[mid, payid, param, price], key)
}

/// The callback signature: md5(mid + payid + param + price + reallyprice + key).
pub fn callback_sign(mid: &str, payid: &str, param: &str, price: &str, reallyprice: &str, key: &str) -> String {
    sign(&[mid, payid, param, price, reallyprice], key)
}

pub struct Xiaojitong {
    mid: String,
    key: String,
    /// The wallet the account is set up for at the provider (`options.wallet`), if known.
    wallet: Option<Channel>,
}

fn yuan_field(text: &str, name: &str) -> Result<i64, DialectError> {
    yuan_to_fen(text).map_err(|e| DialectError::BadMessage(format!("{name}: {e}")))
}

impl Xiaojitong {
    pub fn from_config(provider: &ProviderConfig) -> Result<Self, Vec<String>> {
        let mut errors = check_credentials(provider, &["mid", "key"], &[]);
        errors.extend(check_options(provider, &["wallet"]));
        let wallet = match provider.options.get("wallet").map(String::as_str) {
            None => None,
            Some("wechat") => Some(Channel::Wechat),
            Some("alipay") => Some(Channel::Alipay),
            Some(other) => {
                errors.push(format!("options.wallet: {other:?} is neither wechat nor alipay"));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Xiaojitong { mid: credential(provider, "mid"), key: credential(provider, "key"), wallet })
    }

    /// Reads a paid order's signed fields: a callback (signed with reallyprice and naming its
    /// mid) or checkOrder's return URL (signed like createOrder, no mid in it).
    fn signed_report(&self, fields: &BTreeMap<String, String>, callback: bool) -> Result<PaymentReport, DialectError> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        // checkOrder's URL spells it reallyPrice.
        let really = fields.get("reallyprice").or_else(|| fields.get("reallyPrice")).map(String::as_str).unwrap_or("");
        let expected = if callback {
            callback_sign(&self.mid, get("payid"), get("param"), get("price"), really, &self.key)
        } else {
            create_sign(&self.mid, get("payid"), get("param"), get("price"), &self.key)
        };
        if !same_hex_signature(&expected, get("sign")) {
            return Err(DialectError::BadMessage("signature does not verify".into()));
        }
        if callback && get("mid") != self.mid {
            return Err(DialectError::BadMessage(format!("mid {:?} is not this account's", get("mid"))));
        }
        let amount = yuan_field(get("price"), "price")?;
        let paid = yuan_field(really, "reallyprice")?;
        Ok(PaymentReport {
            payment_id: get("payid").to_string(),
            provider_trade_no: None,
            status: PaymentStatus::Succeeded,
            amount: Some(amount),
            paid_amount: Some(paid),
            paid_at: None,
        })
    }
}

/// The wallet of createOrder's `paytype` (1 wechat, 2 alipay).
fn paytype_channel(paytype: &str) -> Option<Channel> {
    match paytype {
        "1" => Some(Channel::Wechat),
        "2" => Some(Channel::Alipay),
        _ => None,
    }
}

impl Dialect for Xiaojitong {
    fn dialect(&self) -> &'static str {
        "xiaojitong"
    }

    fn create_payment(&self, order: &CreateOrder<'_>, _now: i64) -> Result<CreateStep, DialectError> {
        let p = order.payment;
        if !matches!(p.channel, Channel::Wechat | Channel::Alipay) || p.scene != Scene::Qr {
            return Err(DialectError::Unsupported(format!(
                "xiaojitong takes wechat and alipay qr payments, not {}/{}",
                p.channel, p.scene
            )));
        }
        if !p.currency.eq_ignore_ascii_case("CNY") {
            return Err(DialectError::Unsupported(format!("currency {} (xiaojitong takes CNY only)", p.currency)));
        }
        if self.wallet.is_some_and(|w| w != p.channel) {
            return Err(DialectError::Unsupported(format!(
                "this xiaojitong account is set up for {} (options.wallet), not {}",
                self.wallet.map(|w| w.as_str()).unwrap_or(""),
                p.channel
            )));
        }
        let price = fen_to_yuan(p.amount);
        let param = "";
        let sign = create_sign(&self.mid, &p.payment_id, param, &price, &self.key);
        let return_url = p.return_url.clone().unwrap_or_default();
        let body = encode_form([
            ("mid", self.mid.as_str()),
            ("payid", p.payment_id.as_str()),
            ("param", param),
            ("price", price.as_str()),
            ("sign", sign.as_str()),
            ("ishtml", "0"),
            ("notifyurl", order.callback_url.as_str()),
            ("returnurl", return_url.as_str()),
        ]);
        Ok(CreateStep::Call(ProviderRequest {
            method: "POST",
            path: CREATE_PATH.into(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.into_bytes(),
        }))
    }

    fn read_create(&self, order: &CreateOrder<'_>, answer: ProviderResponse<'_>) -> Result<Created, DialectError> {
        let json = answer_json(answer)?;
        let code = field(&json, "code");
        if code != "1" {
            return Err(DialectError::rejected(code, field(&json, "msg")));
        }
        let data = json.get("data").ok_or_else(|| DialectError::BadMessage("answer has no data".into()))?;
        let p = order.payment;
        if field(data, "payid") != p.payment_id || yuan_field(&field(data, "price"), "price")? != p.amount {
            return Err(DialectError::BadMessage("answer does not echo this order's payid and price".into()));
        }
        let payable = yuan_field(&field(data, "reallyprice"), "reallyprice")?;
        let qr_code = field(data, "payurl");
        if qr_code.is_empty() {
            return Err(DialectError::BadMessage("answer has no payurl".into()));
        }
        let paytype = field(data, "paytype");
        if paytype_channel(&paytype) != Some(p.channel) {
            // The order exists at the provider, but nobody is handed its QR code.
            return Err(DialectError::rejected(
                "paytype",
                format!("the provider answered with a QR code of paytype {paytype:?} for a {} payment", p.channel),
            ));
        }
        let expires_at = field(data, "order_time_out").parse::<i64>().ok().filter(|m| *m > 0).map(|minutes| {
            let created = data.get("date").and_then(serde_json::Value::as_i64).map(|ms| ms / 1000);
            created.unwrap_or(p.created_at).saturating_add(minutes.saturating_mul(60))
        });
        Ok(Created {
            provider_trade_no: Some(field(data, "orderid")).filter(|s| !s.is_empty()),
            action: Action::QrCode { qr_code, amount: Some(payable) },
            status: PaymentStatus::Pending,
            expires_at,
        })
    }

    fn query_payment(&self, payment: &Payment, _now: i64) -> Result<ProviderRequest, DialectError> {
        let orderid = payment
            .provider_trade_no
            .as_deref()
            .ok_or_else(|| DialectError::Invalid("the provider gave no order number to query by".into()))?;
        Ok(ProviderRequest {
            method: "POST",
            path: CHECK_PATH.into(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: encode_form([("orderid", orderid)]).into_bytes(),
        })
    }

    fn read_query(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<PaymentReport, DialectError> {
        let json = answer_json(answer)?;
        let unpaid = |status| PaymentReport {
            payment_id: payment.payment_id.clone(),
            provider_trade_no: None,
            status,
            amount: None,
            paid_amount: None,
            paid_at: None,
        };
        match field(&json, "code").as_str() {
            "1" => {}
            "-1" => return Err(DialectError::UnknownOrder(format!("checkOrder code -1 {}", field(&json, "msg")))),
            "-2" => return Ok(unpaid(PaymentStatus::Closed)),
            _ => return Ok(unpaid(PaymentStatus::Pending)),
        }
        let url = field(&json, "data");
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let fields: BTreeMap<String, String> = parse_form(query.as_bytes()).into_iter().collect();
        let report = self.signed_report(&fields, false)?;
        if report.payment_id != payment.payment_id {
            return Err(DialectError::BadMessage(format!("answer is about order {}", report.payment_id)));
        }
        Ok(report)
    }

    fn read_callback(&self, callback: InboundHttp<'_>, _now: i64) -> Result<CallbackReport, DialectError> {
        let source = if callback.query.is_empty() { callback.body } else { callback.query.as_bytes() };
        let fields: BTreeMap<String, String> = parse_form(source).into_iter().collect();
        self.signed_report(&fields, true).map(CallbackReport::Payment)
    }

    fn claimed_payment_id(&self, callback: InboundHttp<'_>) -> Option<String> {
        let source = if callback.query.is_empty() { callback.body } else { callback.query.as_bytes() };
        parse_form(source).into_iter().find(|(k, _)| k == "payid").map(|(_, v)| v)
    }

    fn callback_reply(&self, accepted: bool) -> CallbackReply {
        CallbackReply {
            status: 200,
            content_type: "application/json",
            body: if accepted { ACK } else { r#"{"code":-1}"# }.to_string(),
        }
    }
}

/// xiaojitong in the registry.
pub const SPEC: super::DialectSpec = super::DialectSpec {
    name: "xiaojitong",
    account_id: "mid",
    public_credentials: &["mid"],
    build: |p| Ok(std::sync::Arc::new(Xiaojitong::from_config(p)?)),
    side: &provider::Side,
    payouts: false,
    products: false,
    cli_sign,
    endpoints: &[("POST", "/createOrder"), ("POST", "/checkOrder")],
    example_credentials: &[("mid", "2"), ("key", "6d25c81b7704ab82aafcaf9376e393bc")],
    example_options: &[],
};

/// `payglot sign xiaojitong`: the values to concatenate, in order (mid payid param price
/// [reallyprice]).
fn cli_sign(args: &[String], key: &str) -> (String, String) {
    let values: Vec<&str> = args.iter().map(String::as_str).collect();
    (format!("{}<key>", values.concat()), sign(&values, key))
}

/// The provider side of xiaojitong, for the sandbox and the compatible front door.
pub mod provider {
    use super::*;
    use crate::dialects::provider_side::{
        keep, url_scenes, Answer, Call, CallKind, CodedRefusal, Fail, Failure, Keyed, Keys, Lookup, OrderRequest,
        Outcome, Request,
    };
    use crate::dialects::{Ack, Notify, ProviderOrder};
    use crate::money::fen_to_yuan;
    use serde_json::Value;

    fn yuan_number(fen: i64) -> Value {
        serde_json::from_str(&fen_to_yuan(fen)).expect("a decimal number")
    }

    /// A failure answer `{code, msg}` (-1 .. -5).
    pub fn failure(code: i64, msg: &str) -> String {
        serde_json::json!({"code": code, "msg": msg}).to_string()
    }

    /// createOrder's success answer: the order, what the payer pays and where (`payurl`).
    /// `paytype` is 1 wechat, 2 alipay.
    pub fn create_answer(order: &ProviderOrder, paytype: i64, payurl: &str, now: i64) -> String {
        let mid = order.account.parse::<i64>().map(Value::from).unwrap_or(Value::String(order.account.clone()));
        let data = serde_json::json!({
            "mid": mid,
            "payid": order.merchant_order_no,
            "orderid": order.provider_no,
            "paytype": paytype,
            "price": yuan_number(order.amount),
            "reallyprice": yuan_number(order.payable),
            "payurl": payurl,
            "state": 0,
            "order_time_out": 5,
            "date": now * 1000,
        });
        serde_json::json!({"code": 1, "msg": "成功", "data": data}).to_string()
    }

    /// The callback for a paid order: GET with signed query fields, ack `{"code":1}`.
    pub fn notify(order: &ProviderOrder, key: &str) -> Notify {
        let param = order.fields.get("param").map(String::as_str).unwrap_or("");
        let query = callback_query(
            &order.account,
            &order.merchant_order_no,
            param,
            &fen_to_yuan(order.amount),
            &fen_to_yuan(order.payable),
            key,
        );
        Notify::get(&order.notify_url, &query, Ack::JsonField("code", "1"))
    }

    /// checkOrder's answer for an order: paid → the signed return URL; closed or failed → code
    /// -2 (expired); pending → code -3.
    pub fn check_answer(order: &ProviderOrder, key: &str) -> String {
        match order.status {
            PaymentStatus::Succeeded => {}
            PaymentStatus::Closed | PaymentStatus::Failed => {
                return serde_json::json!({"code": -2, "msg": "订单已过期", "data": null}).to_string()
            }
            PaymentStatus::Pending => {
                return serde_json::json!({"code": -3, "msg": "订单未支付", "data": null}).to_string()
            }
        }
        let param = order.fields.get("param").map(String::as_str).unwrap_or("");
        let return_url = order
            .fields
            .get("returnurl")
            .filter(|u| !u.is_empty())
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1/".into());
        paid_check_answer(
            &return_url,
            &order.account,
            &order.merchant_order_no,
            param,
            &fen_to_yuan(order.amount),
            &fen_to_yuan(order.payable),
            key,
        )
    }

    /// Verifies a createOrder form with the key of its `mid`; returns the fields.
    pub fn read_create(
        body: &[u8],
        key_for_mid: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, CodedRefusal> {
        let fields: BTreeMap<String, String> = parse_form(body).into_iter().collect();
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        let key = key_for_mid(get("mid")).ok_or_else(|| CodedRefusal::new(-2, "商户不存在"))?;
        let expected = create_sign(get("mid"), get("payid"), get("param"), get("price"), &key);
        if !same_hex_signature(&expected, get("sign")) {
            return Err(CodedRefusal::new(-3, "签名错误"));
        }
        Ok(fields)
    }

    /// Checks a createOrder's price and payid; returns the price in fen.
    pub fn check_create(fields: &BTreeMap<String, String>) -> Result<i64, CodedRefusal> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        let price = crate::money::yuan_to_fen(get("price")).map_err(|_| CodedRefusal::new(-4, "价格错误"))?;
        if price <= 0 || get("payid").is_empty() {
            return Err(CodedRefusal::new(-4, "参数错误"));
        }
        Ok(price)
    }

    /// checkOrder's answer for an order it does not know.
    pub fn unknown_order() -> String {
        serde_json::json!({"code": -1, "msg": "订单不存在", "data": null}).to_string()
    }

    /// A callback query string for a paid order.
    pub fn callback_query(mid: &str, payid: &str, param: &str, price: &str, reallyprice: &str, key: &str) -> String {
        let sign = callback_sign(mid, payid, param, price, reallyprice, key);
        encode_form([
            ("mid", mid),
            ("payid", payid),
            ("param", param),
            ("price", price),
            ("reallyprice", reallyprice),
            ("sign", sign.as_str()),
        ])
    }

    /// The provider side of xiaojitong: createOrder signed with the account's key, checkOrder
    /// unsigned by the provider's order number (as the document has it), the GET callback.
    pub struct Side;

    impl crate::dialects::ProviderSide for Side {
        fn read(&self, request: &Request<'_>, keys: Keys<'_>, _now: i64) -> Result<Call, Answer> {
            match (request.method, request.path) {
                ("POST", "/createOrder") => {
                    let fields = read_create(request.body, |mid| keys(mid).map(|k| k.credential("key")))
                        .map_err(|r| Answer::json(failure(r.code, &r.message)))?;
                    let price = check_create(&fields).map_err(|r| Answer::json(failure(r.code, &r.message)))?;
                    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
                    let keyed = keys(&get("mid")).ok_or_else(|| Answer::json(failure(-2, "商户不存在")))?;
                    // The request names no wallet: the account's (a door's `channel`, else
                    // `options.wallet`), else wechat.
                    let wallet = match keyed.account.options.get("wallet").map(String::as_str) {
                        Some("alipay") => Some(Channel::Alipay),
                        Some("wechat") => Some(Channel::Wechat),
                        _ => None,
                    };
                    let mut order = OrderRequest {
                        order_no: get("payid"),
                        amount: price,
                        subject: format!("订单 {}", get("payid")),
                        channel: Some(keyed.channel.or(wallet).unwrap_or(Channel::Wechat)),
                        scenes: url_scenes(keyed.scene.unwrap_or(Scene::Qr)),
                        notify_url: get("notifyurl"),
                        return_url: get("returnurl"),
                        ..Default::default()
                    };
                    keep(&mut order.keep, "param", &get("param"));
                    keep(&mut order.keep, "returnurl", &get("returnurl"));
                    Ok(Call::new(get("mid"), CallKind::Create(order)))
                }
                ("POST", "/checkOrder") => {
                    let fields: BTreeMap<String, String> = parse_form(request.body).into_iter().collect();
                    let orderid = fields.get("orderid").cloned().unwrap_or_default();
                    // Unsigned, as in the document: the order is found by its number, the account
                    // is the order's.
                    let kind = CallKind::Query { lookup: Lookup::ProviderNo(orderid), notify_again: false };
                    Ok(Call { signed: false, ..Call::new("", kind) })
                }
                _ => Err(Answer::text(404, "no such xiaojitong endpoint")),
            }
        }

        fn answer(&self, keyed: &Keyed, call: &Call, outcome: Result<Outcome, Failure>, now: i64) -> Answer {
            match (outcome, &call.kind) {
                (Ok(Outcome::Order(placed)), CallKind::Create(order)) => {
                    let paytype = if order.channel == Some(Channel::Alipay) { 2 } else { 1 };
                    Answer::json(create_answer(&placed.order, paytype, &placed.pay_url, now))
                }
                (Ok(Outcome::Order(placed)), _) => Answer::json(check_answer(&placed.order, &keyed.credential("key"))),
                (Err(f), CallKind::Query { .. }) if f.kind == Fail::NotFound => Answer::json(unknown_order()),
                (Err(f), _) => Answer::json(failure(failure_code(f.kind), &f.message)),
                (Ok(_), _) => Answer::json(failure(-1, "not offered")),
            }
        }

        fn notify(&self, keyed: &Keyed, order: &ProviderOrder, _now: i64) -> Option<Notify> {
            Some(notify(order, &keyed.credential("key")))
        }

        fn ack_body(&self) -> &'static str {
            ACK
        }

        fn order_prefix(&self) -> &'static str {
            "2022"
        }

        fn distinct_payable(&self) -> bool {
            true
        }
    }

    /// The document's codes: -4 parameters, -5 duplicate order number, -1 anything else.
    fn failure_code(kind: Fail) -> i64 {
        match kind {
            Fail::Invalid => -4,
            Fail::Duplicate => -5,
            _ => -1,
        }
    }

    /// checkOrder's answer for a paid order: the return URL with its fields, signed as
    /// createOrder is (mid + payid + param + price + key; the document's example, line 885).
    pub fn paid_check_answer(
        return_url: &str,
        mid: &str,
        payid: &str,
        param: &str,
        price: &str,
        reallyprice: &str,
        key: &str,
    ) -> String {
        let sign = create_sign(mid, payid, param, price, key);
        let query = encode_form([
            ("payid", payid),
            ("param", param),
            ("price", price),
            ("reallyPrice", reallyprice),
            ("sign", sign.as_str()),
        ]);
        serde_json::json!({"code": 1, "msg": "成功", "data": format!("{return_url}?{query}")}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payment;
    use crate::secret::Secret;

    fn account() -> Xiaojitong {
        let mut p = ProviderConfig::with_defaults("xjt", "xiaojitong");
        p.credentials.insert("mid".into(), Secret::new("2"));
        p.credentials.insert("key".into(), Secret::new("k3y"));
        Xiaojitong::from_config(&p).unwrap()
    }

    fn payment() -> Payment {
        let mut p = crate::test_support::payment();
        p.channel = Channel::Wechat;
        p.amount = 1;
        p
    }

    #[test]
    fn create_sign_is_md5_of_concatenated_values() {
        // By hand: md5("2" + "1648306925" + "pay_notify" + "0.01" + "k3y").
        assert_eq!(
            create_sign("2", "1648306925", "pay_notify", "0.01", "k3y"),
            md5_hex(b"21648306925pay_notify0.01k3y")
        );
        let x = account();
        let p = payment();
        let extra = Default::default();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "http://gw/callbacks/xjt") };
        let CreateStep::Call(req) = x.create_payment(&order, 0).unwrap() else { panic!() };
        let fields = provider::read_create(&req.body, |m| (m == "2").then(|| "k3y".into())).unwrap();
        assert_eq!(fields["price"], "0.01");
        assert_eq!(fields["payid"], p.payment_id);
        assert_eq!(fields["notifyurl"], "http://gw/callbacks/xjt");
        assert!(provider::read_create(&req.body, |_| Some("other".into())).is_err());
    }

    #[test]
    fn create_answer_keeps_reallyprice_as_the_payable_amount() {
        let x = account();
        let p = payment();
        let extra = Default::default();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "") };
        let body = serde_json::json!({"code": 1, "msg": "成功", "data": {"mid": 2, "payid": p.payment_id, "orderid": "20220326232724", "paytype": 1,
            "price": 0.01, "reallyprice": 0.02, "payurl": "wxp://f2f0CYCNxDDXkQOo9XHfOF9HiWiEyajgwsttCCYxjJRdZ_U", "state": 0, "order_time_out": 5, "date": 1648308444654u64}}).to_string();
        let created = x.read_create(&order, ProviderResponse { status: 200, body: body.as_bytes() }).unwrap();
        assert_eq!(created.provider_trade_no.as_deref(), Some("20220326232724"));
        assert_eq!(
            created.action,
            Action::QrCode { qr_code: "wxp://f2f0CYCNxDDXkQOo9XHfOF9HiWiEyajgwsttCCYxjJRdZ_U".into(), amount: Some(2) }
        );
        let wrong_price = body.replace("\"price\":0.01", "\"price\":0.03");
        assert!(x.read_create(&order, ProviderResponse { status: 200, body: wrong_price.as_bytes() }).is_err());
        let refused = r#"{"code":-2,"msg":"签名错误"}"#;
        assert_eq!(
            x.read_create(&order, ProviderResponse { status: 200, body: refused.as_bytes() }),
            Err(DialectError::rejected("-2", "签名错误"))
        );
    }

    #[test]
    fn callbacks_are_verified_with_reallyprice() {
        let x = account();
        let q = provider::callback_query("2", "P1", "", "0.01", "0.03", "k3y");
        let inbound = InboundHttp { method: "GET", query: &q, content_type: "", body: b"" };
        let CallbackReport::Payment(r) = x.read_callback(inbound, 0).unwrap() else { panic!() };
        assert_eq!((r.status, r.amount, r.paid_amount), (PaymentStatus::Succeeded, Some(1), Some(3)));
        let forged = q.replace("0.03", "0.04");
        assert!(x.read_callback(InboundHttp { query: &forged, ..inbound }, 0).is_err());
        assert_eq!(x.callback_reply(true).body, r#"{"code":1}"#);
    }

    #[test]
    fn check_order_reads_the_signed_return_url() {
        let x = account();
        let mut p = payment();
        p.payment_id = "21648342529607".into();
        let body = provider::paid_check_answer("http://127.0.0.1/", "2", "21648342529607", "", "0.01", "0.03", "k3y");
        let r = x.read_query(&p, ProviderResponse { status: 200, body: body.as_bytes() }).unwrap();
        assert_eq!((r.status, r.paid_amount), (PaymentStatus::Succeeded, Some(3)));
        let unpaid = r#"{"code":-3,"msg":"未支付","data":null}"#;
        assert_eq!(
            x.read_query(&p, ProviderResponse { status: 200, body: unpaid.as_bytes() }).unwrap().status,
            PaymentStatus::Pending
        );
        let expired = r#"{"code":-2,"msg":"订单已过期","data":null}"#;
        assert_eq!(
            x.read_query(&p, ProviderResponse { status: 200, body: expired.as_bytes() }).unwrap().status,
            PaymentStatus::Closed
        );
        let unknown = r#"{"code":-1,"msg":"订单不存在","data":null}"#;
        assert!(matches!(
            x.read_query(&p, ProviderResponse { status: 200, body: unknown.as_bytes() }),
            Err(DialectError::UnknownOrder(_))
        ));
        let forged = body.replace("price=0.01", "price=0.02");
        assert!(x.read_query(&p, ProviderResponse { status: 200, body: forged.as_bytes() }).is_err());
    }

    /// The document's merchant: mid 2 ("yonggo", 000 lines 531-533) and its key.
    const DOC_MID: &str = "2";
    const DOC_KEY: &str = "6d25c81b7704ab82aafcaf9376e393bc";

    fn document_account() -> Xiaojitong {
        let mut p = ProviderConfig::with_defaults("xjt", "xiaojitong");
        p.credentials.insert("mid".into(), Secret::new(DOC_MID));
        p.credentials.insert("key".into(), Secret::new(DOC_KEY));
        Xiaojitong::from_config(&p).unwrap()
    }

    #[test]
    fn the_documents_signed_examples_verify_under_merchant_2s_key() {
        // createOrder request, 000 lines 692-701.
        assert_eq!(create_sign("2", "1648306925", "pay_notify", "0.01", DOC_KEY), "efa416f0e4f6a3573c405d79eba1c7f6");
        // select_order's stored order, lines 224-239: param is "\"pay_notify\"" with its quotes.
        assert_eq!(
            create_sign("2", "21648275829786", "\"pay_notify\"", "0.01", DOC_KEY),
            "25bb5f9403f90f9dd0bde339c8300d5d"
        );
        // The createOrder form as printed is what the provider side (sandbox, front door) takes.
        let form = b"mid=2&payid=1648306925&param=pay_notify&price=0.01&sign=efa416f0e4f6a3573c405d79eba1c7f6&ishtml=string&notifyurl=string&returnurl=string";
        assert!(provider::read_create(form, |mid| (mid == DOC_MID).then(|| DOC_KEY.into())).is_ok());
        assert!(provider::read_create(form, |_| Some("80c2ab04718bb427617c20f1afd99072".into())).is_err());
    }

    #[test]
    fn the_documents_paid_check_order_answer_settles_the_payment() {
        // checkOrder's answer, 000 lines 881-887, byte for byte.
        let answer = "{\n  \"code\": 1,\n  \"msg\": \"成功\",\n  \"data\": \"http://127.0.0.1/?payid=21648342529607&param=&price=0.01&reallyPrice=0.03&sign=3c020071b0085c6ec451fdc68303147c\"\n}";
        let x = document_account();
        let mut p = payment();
        p.payment_id = "21648342529607".into();
        p.action = Some(Action::QrCode { qr_code: "wxp://x".into(), amount: Some(3) });
        let r = x.read_query(&p, ProviderResponse { status: 200, body: answer.as_bytes() }).unwrap();
        assert_eq!((r.status, r.amount, r.paid_amount), (PaymentStatus::Succeeded, Some(1), Some(3)));
        // payglot's provider side answers the same bytes for the same order.
        let ours =
            provider::paid_check_answer("http://127.0.0.1/", DOC_MID, "21648342529607", "", "0.01", "0.03", DOC_KEY);
        assert!(ours.contains("sign=3c020071b0085c6ec451fdc68303147c"), "{ours}");
    }

    #[test]
    fn the_documents_create_answer_and_a_wallet_mismatch() {
        // createOrder's answer, 000 lines 722-738 (paytype 1 = wechat, order_time_out 5 minutes).
        let answer = r#"{"code": 1,"msg": "成功","data": {"mid": 2,"payid": "1648306925","orderid": "20220326232724","paytype": 1,"price": 0.01,"reallyprice": 0.02,"payurl": "wxp://f2f0CYCNxDDXkQOo9XHfOF9HiWiEyajgwsttCCYxjJRdZ_U","state": 0,"order_time_out": 5,"date": 1648308444654}}"#;
        let x = document_account();
        let mut p = payment();
        p.payment_id = "1648306925".into();
        let extra = Default::default();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "") };
        let created = x.read_create(&order, ProviderResponse { status: 200, body: answer.as_bytes() }).unwrap();
        assert_eq!(created.expires_at, Some(1_648_308_444 + 300));
        let mut alipay = p.clone();
        alipay.channel = Channel::Alipay;
        let order = CreateOrder { payment: &alipay, ..order };
        let refused = x.read_create(&order, ProviderResponse { status: 200, body: answer.as_bytes() });
        assert!(matches!(refused, Err(DialectError::Rejected { .. })), "{refused:?}");
    }
}
