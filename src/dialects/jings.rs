//! jings (`shared/seeds/002_849f43b25893e178.txt`).
//!
//! The payment request (1.1) is a **browser form POST** to `{base_url}/pay.action`: the
//! document forbids a server-side call (the provider needs the payer's IP). So create makes no
//! call: it answers a `form_post` action with the signed fields, and the merchant's page (or
//! payglot's `GET /v1/payments/{payment_id}/checkout`) submits it from the payer's browser.
//!
//! Signature (`key`): md5 of `name=value&...&token=TOKEN` over the fields **in the document's
//! fixed order**, empty values kept, values not URL-encoded, lowercase hex:
//!
//! | message | fields in signing order |
//! | --- | --- |
//! | pay.action (1.1) | uid, orderid, ordername, paymoney, orderuid, paytype, notifyurl, returnurl, orderinfo |
//! | notify (1.2, POST) | payid, orderid, orderuid, paymoney, realpay |
//! | requstOrderStatus (1.4, GET) | orderid, uid |
//! | requstBalance (1.5, GET) | uid, reqtime (Beijing time, ±10 min) |
//!
//! Mapping: orderid is payglot's payment_id; paymoney the amount in yuan with 2 decimals;
//! ordername the subject (100 bytes); orderinfo the description (500 bytes); orderuid comes
//! from the create request's `extra.orderuid` (empty otherwise); paytype 11 (alipay, the only
//! one documented; `options.paytype` changes it). `payid` (from notify and query) is the
//! provider_trade_no; `realpay` what the payer paid.
//!
//! Status (1.4): -1 待支付 → pending, 0 正常支付 → succeeded, 1 支付超时 → closed, -2 查询异常
//! → a provider error. A notify means paid; its ack is any 2xx (payglot answers `success`),
//! and the provider retries 3 times a minute apart after 400/404/500.
//!
//! Limits: one query per order per minute, one balance query per three minutes (enforced by
//! payglot, which answers from what it knows inside the window). Query and balance answers are
//! not signed: payglot checks they echo its order number and amount (or uid).
//!
//! Known answers: the balance example (1.5, lines 90-93) reproduces (unit test), with the
//! token hashed as printed (uppercase) and reqtime's space raw (`+` or `%20` do not). No
//! other message of the document carries a printed key: the pay form example (lines 27-28)
//! is mangled in print (`¬ifyurl`, no returnurl), the notify example (48-49) shows a token but
//! no key, and the query (1.4) shows neither.
//!
//! Lengths the document sets are checked, not cut: notifyurl and returnurl at most 80 bytes,
//! orderid 40; `return_url` is required.

use super::signing::{encode_form, md5_hex, parse_form, same_hex_signature};
use super::ProviderConfig;
use super::{
    answer_json, beijing_time, check_credentials, check_options, credential, field, truncate_bytes, CallbackReply,
    CallbackReport, CreateOrder, CreateStep, Created, Dialect, DialectError, InboundHttp, PaymentReport,
    ProviderRequest, ProviderResponse,
};
use crate::model::{Action, Channel, Payment, PaymentStatus, Scene};
use crate::money::{fen_to_yuan, yuan_to_fen};
use std::collections::BTreeMap;
use std::time::Duration;

pub const PAY_PATH: &str = "/pay.action";
pub const QUERY_PATH: &str = "/requstOrderStatus.action";
pub const BALANCE_PATH: &str = "/requstBalance.action";
pub const PAY_FIELDS: &[&str] =
    &["uid", "orderid", "ordername", "paymoney", "orderuid", "paytype", "notifyurl", "returnurl", "orderinfo"];
pub const NOTIFY_FIELDS: &[&str] = &["payid", "orderid", "orderuid", "paymoney", "realpay"];

/// md5 of `k=v&...&token=TOKEN` in the given order, empty values kept, lowercase.
pub fn sign(pairs: &[(&str, &str)], token: &str) -> String {
    md5_hex(string_to_sign(pairs, token).as_bytes())
}

/// The text whose MD5 is the key: `k=v&...&token=TOKEN` in the given order.
pub fn string_to_sign(pairs: &[(&str, &str)], token: &str) -> String {
    let mut text = String::new();
    for (k, v) in pairs {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('&');
    }
    text.push_str("token=");
    text.push_str(token);
    text
}

/// Signs the named fields of `fields`, in the order of `names` (missing ones as empty).
pub fn sign_fields(names: &[&str], fields: &BTreeMap<String, String>, token: &str) -> String {
    let pairs: Vec<(&str, &str)> =
        names.iter().map(|n| (*n, fields.get(*n).map(String::as_str).unwrap_or(""))).collect();
    sign(&pairs, token)
}

pub struct Jings {
    uid: String,
    token: String,
    base_url: String,
    paytype: String,
}

impl Jings {
    pub fn from_config(provider: &ProviderConfig) -> Result<Self, Vec<String>> {
        let mut errors = check_credentials(provider, &["uid", "token"], &[]);
        errors.extend(check_options(provider, &["paytype"]));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Jings {
            uid: credential(provider, "uid"),
            token: credential(provider, "token"),
            base_url: provider.base_url.clone(),
            paytype: provider.options.get("paytype").cloned().unwrap_or_else(|| "11".into()),
        })
    }

    fn get(&self, path: &str, pairs: &[(&str, &str)]) -> ProviderRequest {
        let key = sign(pairs, &self.token);
        let query = encode_form(pairs.iter().copied().chain([("key", key.as_str())]));
        ProviderRequest { method: "GET", path: format!("{path}?{query}"), content_type: None, body: Vec::new() }
    }
}

fn yuan(text: &str, name: &str) -> Result<i64, DialectError> {
    yuan_to_fen(text).map_err(|e| DialectError::BadMessage(format!("{name}: {e}")))
}

/// jings' query status (1.4) as the canonical status.
pub fn payment_status(code: &str) -> PaymentStatus {
    match code.trim() {
        "0" => PaymentStatus::Succeeded,
        "1" => PaymentStatus::Closed,
        _ => PaymentStatus::Pending,
    }
}

impl Dialect for Jings {
    fn dialect(&self) -> &'static str {
        "jings"
    }

    fn create_payment(&self, order: &CreateOrder<'_>, _now: i64) -> Result<CreateStep, DialectError> {
        let p = order.payment;
        if p.channel != Channel::Alipay || !matches!(p.scene, Scene::Web | Scene::H5) {
            return Err(DialectError::Unsupported(format!(
                "jings takes alipay payments from the payer's browser (scene web or h5), not {}/{}",
                p.channel, p.scene
            )));
        }
        if !p.currency.eq_ignore_ascii_case("CNY") {
            return Err(DialectError::Unsupported(format!("currency {} (jings takes CNY only)", p.currency)));
        }
        let return_url = p
            .return_url
            .clone()
            .ok_or_else(|| DialectError::Invalid("return_url: required by jings (returnurl)".into()))?;
        for (name, url) in
            [("notifyurl (the gateway's callback URL)", &order.callback_url), ("return_url", &return_url)]
        {
            if url.len() > 80 {
                return Err(DialectError::Invalid(format!("{name}: jings takes at most 80 bytes")));
            }
        }
        let mut fields = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            fields.insert(k.to_string(), v);
        };
        put("uid", self.uid.clone());
        put("orderid", p.payment_id.clone());
        put("ordername", truncate_bytes(&p.subject, 100));
        put("paymoney", fen_to_yuan(p.amount));
        put("orderuid", truncate_bytes(order.extra_str("orderuid").unwrap_or(""), 40));
        put("paytype", self.paytype.clone());
        put("notifyurl", order.callback_url.clone());
        put("returnurl", return_url);
        put("orderinfo", truncate_bytes(&p.description, 500));
        let key = sign_fields(PAY_FIELDS, &fields, &self.token);
        fields.insert("key".into(), key);
        Ok(CreateStep::Done(Created {
            provider_trade_no: None,
            action: Action::FormPost { url: format!("{}{PAY_PATH}", self.base_url), fields },
            status: PaymentStatus::Pending,
            expires_at: None,
        }))
    }

    fn read_create(&self, _order: &CreateOrder<'_>, _answer: ProviderResponse<'_>) -> Result<Created, DialectError> {
        Err(DialectError::Invalid("jings creates payments in the payer's browser; there is no answer to read".into()))
    }

    fn query_payment(&self, payment: &Payment, _now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.get(QUERY_PATH, &[("orderid", &payment.payment_id), ("uid", &self.uid)]))
    }

    fn read_query(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<PaymentReport, DialectError> {
        let json = answer_json(answer)?;
        let status_code = field(&json, "status");
        if status_code == "-2" {
            return Err(DialectError::rejected("-2", field(&json, "msg")));
        }
        if field(&json, "orderid") != payment.payment_id {
            return Err(DialectError::BadMessage("answer is about another order".into()));
        }
        let status = payment_status(&status_code);
        let amount = yuan(&field(&json, "paymoney"), "paymoney")?;
        let realpay = field(&json, "realpay");
        Ok(PaymentReport {
            payment_id: payment.payment_id.clone(),
            provider_trade_no: Some(field(&json, "payid")).filter(|s| !s.is_empty()),
            status,
            amount: Some(amount),
            paid_amount: if realpay.is_empty() { None } else { Some(yuan(&realpay, "realpay")?) },
            paid_at: None,
        })
    }

    fn read_callback(&self, callback: InboundHttp<'_>, _now: i64) -> Result<CallbackReport, DialectError> {
        let source = if callback.body.is_empty() { callback.query.as_bytes() } else { callback.body };
        let fields: BTreeMap<String, String> = parse_form(source).into_iter().collect();
        let given = fields.get("key").map(String::as_str).unwrap_or("");
        if !same_hex_signature(&sign_fields(NOTIFY_FIELDS, &fields, &self.token), given) {
            return Err(DialectError::BadMessage("notify key does not verify".into()));
        }
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        Ok(CallbackReport::Payment(PaymentReport {
            payment_id: get("orderid").to_string(),
            provider_trade_no: Some(get("payid").to_string()).filter(|s| !s.is_empty()),
            status: PaymentStatus::Succeeded,
            amount: Some(yuan(get("paymoney"), "paymoney")?),
            paid_amount: Some(yuan(get("realpay"), "realpay")?),
            paid_at: None,
        }))
    }

    fn claimed_payment_id(&self, callback: InboundHttp<'_>) -> Option<String> {
        let source = if callback.body.is_empty() { callback.query.as_bytes() } else { callback.body };
        parse_form(source).into_iter().find(|(k, _)| k == "orderid").map(|(_, v)| v)
    }

    fn callback_reply(&self, accepted: bool) -> CallbackReply {
        CallbackReply {
            status: if accepted { 200 } else { 400 },
            content_type: "text/plain; charset=utf-8",
            body: if accepted { "success" } else { "fail" }.into(),
        }
    }

    fn query_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(60))
    }

    fn balance_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(180))
    }

    fn balance(&self, now: i64) -> Result<ProviderRequest, DialectError> {
        let reqtime = beijing_time(now);
        Ok(self.get(BALANCE_PATH, &[("uid", &self.uid), ("reqtime", &reqtime)]))
    }

    fn read_balance(&self, answer: ProviderResponse<'_>) -> Result<i64, DialectError> {
        let json = answer_json(answer)?;
        if field(&json, "status") != "0" {
            return Err(DialectError::rejected(field(&json, "status"), field(&json, "msg")));
        }
        if field(&json, "uid") != self.uid {
            return Err(DialectError::BadMessage("answer is about another uid".into()));
        }
        yuan(&field(&json, "balance"), "balance")
    }
}

/// jings in the registry.
pub const SPEC: super::DialectSpec = super::DialectSpec {
    name: "jings",
    account_id: "uid",
    public_credentials: &["uid"],
    build: |p| Ok(std::sync::Arc::new(Jings::from_config(p)?)),
    side: &provider::Side,
    payouts: false,
    products: false,
    cli_sign,
    endpoints: &[("POST", "/pay.action"), ("GET", "/requstOrderStatus.action"), ("GET", "/requstBalance.action")],
    example_credentials: &[("uid", "10000001400000"), ("token", "2f44c6b906208208c4122c83125ccd7b")],
    example_options: &[],
};

/// `payglot sign jings`: the message's fields in signing order.
fn cli_sign(args: &[String], key: &str) -> (String, String) {
    let pairs = super::arg_pairs(args);
    let ordered: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    (string_to_sign(&ordered, "<key>"), sign(&ordered, key))
}

/// The provider side of jings, for the sandbox and the compatible front door.
pub mod provider {
    use super::*;
    use crate::dialects::provider_side::{
        keep, url_scenes, Answer, Call, CallKind, Fail, Failure, Keyed, Keys, Lookup, OrderRequest, Outcome, Request,
    };
    use crate::dialects::{Ack, Notify, ProviderOrder};

    /// The provider side of jings: the payer's browser posts pay.action (answered with where to
    /// pay), the signed GET queries of order status (1/min/order) and balance (1/3 min, reqtime
    /// within 10 minutes of Beijing time), the form notify taken by any 2xx.
    pub struct Side;

    impl crate::dialects::ProviderSide for Side {
        fn read(&self, request: &Request<'_>, keys: Keys<'_>, now: i64) -> Result<Call, Answer> {
            let token_for = |uid: &str| keys(uid).map(|k| k.credential("token"));
            match (request.method, request.path) {
                ("POST", "/pay.action") => {
                    let fields = read_pay_form(request.body, token_for)
                        .map_err(|e| Answer::text(400, format!("支付请求错误: {e}")))?;
                    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
                    let keyed = keys(&get("uid")).ok_or_else(|| Answer::text(400, "支付请求错误: unknown uid"))?;
                    let amount =
                        yuan_to_fen(&get("paymoney")).map_err(|_| Answer::text(400, "支付请求错误: paymoney 错误"))?;
                    let channel =
                        if get("paytype") == "11" { Channel::Alipay } else { keyed.channel.unwrap_or(Channel::Alipay) };
                    let mut order = OrderRequest {
                        order_no: get("orderid"),
                        amount,
                        subject: get("ordername"),
                        description: get("orderinfo"),
                        channel: Some(channel),
                        scenes: url_scenes(keyed.scene.unwrap_or(Scene::Web)),
                        notify_url: get("notifyurl"),
                        return_url: get("returnurl"),
                        client_ip: request
                            .forwarded_for
                            .and_then(|f| f.split(',').next())
                            .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
                            .map(|ip| ip.to_string()),
                        ..Default::default()
                    };
                    if !get("orderuid").is_empty() {
                        order.extra.insert("orderuid".into(), get("orderuid").into());
                    }
                    keep(&mut order.keep, "orderuid", &get("orderuid"));
                    Ok(Call::new(get("uid"), CallKind::Create(order)))
                }
                ("GET", "/requstOrderStatus.action") => {
                    let fields = read_query(request.query, &["orderid", "uid"], token_for)
                        .map_err(|e| Answer::json(query_failure(&e)))?;
                    let lookup = Lookup::MerchantNo(fields.get("orderid").cloned().unwrap_or_default());
                    Ok(Call::new(fields["uid"].clone(), CallKind::Query { lookup, notify_again: false }))
                }
                ("GET", "/requstBalance.action") => {
                    let fields = read_query(request.query, &["uid", "reqtime"], token_for)
                        .map_err(|e| Answer::json(serde_json::json!({"msg": e, "status": "1"}).to_string()))?;
                    let reqtime = fields.get("reqtime").cloned().unwrap_or_default();
                    // 1.5: reqtime within 10 minutes of Beijing time.
                    if crate::dialects::parse_beijing_time(&reqtime).is_none_or(|t| (t - now).abs() > 600) {
                        let msg = format!("reqtime 与服务器时间误差超过10分钟 ({})", beijing_time(now));
                        return Err(Answer::json(serde_json::json!({"msg": msg, "status": "1"}).to_string()));
                    }
                    let mut call = Call::new(fields["uid"].clone(), CallKind::Balance);
                    call.echo.insert("reqtime".into(), reqtime);
                    Ok(call)
                }
                _ => Err(Answer::text(404, "no such jings endpoint")),
            }
        }

        fn answer(&self, keyed: &Keyed, call: &Call, outcome: Result<Outcome, Failure>, _now: i64) -> Answer {
            match (outcome, &call.kind) {
                (Ok(Outcome::Order(placed)), CallKind::Create(_)) => pay_page(&placed),
                (Ok(Outcome::Order(placed)), _) => Answer::json(query_answer(&placed.order)),
                (Ok(Outcome::Balance(fen)), _) => Answer::json(
                    serde_json::json!({"balance": fen_to_yuan(fen), "msg": "", "reqtime": call.echo.get("reqtime"), "status": "0", "uid": keyed.credential("uid")})
                        .to_string(),
                ),
                (Err(f), CallKind::Create(_)) => Answer::text(400, format!("支付请求错误: {}", f.message)),
                (Err(f), CallKind::Balance) => {
                    let msg = if f.kind == Fail::Limited { "此接口不能频繁查询，三分钟只能查询一次".to_string() } else { f.message };
                    Answer::json(serde_json::json!({"msg": msg, "status": "1"}).to_string())
                }
                (Err(f), _) => Answer::json(query_failure(match f.kind {
                    Fail::Limited => "此接口不能频繁查询，一个订单号一分钟只能查询一次",
                    Fail::NotFound => "订单不存在",
                    _ => &f.message,
                })),
                (Ok(_), _) => Answer::json(query_failure("not offered")),
            }
        }

        fn notify(&self, keyed: &Keyed, order: &ProviderOrder, _now: i64) -> Option<Notify> {
            Some(notify(order, &keyed.credential("token")))
        }

        fn ack_body(&self) -> &'static str {
            "success"
        }

        fn order_prefix(&self) -> &'static str {
            "1000"
        }
    }

    /// What the payer's browser gets after pay.action: on to where it pays (a QR code is shown).
    fn pay_page(placed: &crate::dialects::provider_side::Placed) -> Answer {
        let url = crate::http::html_escape(&placed.pay_url);
        let yuan = fen_to_yuan(placed.order.payable);
        let is_qr = matches!(placed.action, Some(crate::model::Action::QrCode { .. }));
        if !is_qr && (placed.pay_url.starts_with("http://") || placed.pay_url.starts_with("https://")) {
            return Answer::html(format!(
                "<!doctype html><meta charset=utf-8><meta http-equiv=\"refresh\" content=\"0;url={url}\">\
                 <title>支付</title><p><a href=\"{url}\">继续支付 {yuan} 元</a></p>"
            ));
        }
        Answer::html(format!(
            "<!doctype html><meta charset=utf-8><title>支付</title><p>请扫码或点击支付 {yuan} 元</p>\
             <p data-qr-code=\"{url}\"><a href=\"{url}\">{url}</a></p>"
        ))
    }

    /// Verifies a pay.action form with the token of its uid.
    pub fn read_pay_form(
        body: &[u8],
        token_for_uid: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let fields: BTreeMap<String, String> = parse_form(body).into_iter().collect();
        let uid = fields.get("uid").map(String::as_str).unwrap_or("");
        let token = token_for_uid(uid).ok_or("unknown uid")?;
        if !same_hex_signature(
            &sign_fields(PAY_FIELDS, &fields, &token),
            fields.get("key").map(String::as_str).unwrap_or(""),
        ) {
            return Err("key error".into());
        }
        Ok(fields)
    }

    /// Verifies a GET query (orderid/uid or uid/reqtime) with the token of its uid.
    pub fn read_query(
        query: &str,
        names: &[&str],
        token_for_uid: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let fields: BTreeMap<String, String> = parse_form(query.as_bytes()).into_iter().collect();
        let token = token_for_uid(fields.get("uid").map(String::as_str).unwrap_or("")).ok_or("unknown uid")?;
        if !same_hex_signature(
            &sign_fields(names, &fields, &token),
            fields.get("key").map(String::as_str).unwrap_or(""),
        ) {
            return Err("key error".into());
        }
        Ok(fields)
    }

    /// 1.4's answer for an order: status -1 待支付, 0 正常支付, 1 支付超时 (closed).
    pub fn query_answer(order: &ProviderOrder) -> String {
        let status = match order.status {
            PaymentStatus::Succeeded => "0",
            PaymentStatus::Closed | PaymentStatus::Failed => "1",
            PaymentStatus::Pending => "-1",
        };
        let realpay = if order.status == PaymentStatus::Succeeded { fen_to_yuan(order.payable) } else { String::new() };
        serde_json::json!({"msg": "", "orderid": order.merchant_order_no, "payid": order.provider_no,
            "paymoney": fen_to_yuan(order.amount), "realpay": realpay, "status": status})
        .to_string()
    }

    /// A query refusal (status -2).
    pub fn query_failure(message: &str) -> String {
        serde_json::json!({"msg": message, "status": "-2"}).to_string()
    }

    /// The notify (1.2): a signed form POST; any 2xx is the ack. `fields` may hold orderuid.
    pub fn notify(order: &ProviderOrder, token: &str) -> Notify {
        let orderuid = order.fields.get("orderuid").map(String::as_str).unwrap_or("");
        let body = notify_body(
            &order.provider_no,
            &order.merchant_order_no,
            orderuid,
            &fen_to_yuan(order.amount),
            &fen_to_yuan(order.payable),
            token,
        );
        Notify {
            method: "POST",
            url: order.notify_url.clone(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.into_bytes(),
            ack: Ack::Status2xx,
        }
    }

    /// A signed notify body.
    pub fn notify_body(
        payid: &str,
        orderid: &str,
        orderuid: &str,
        paymoney: &str,
        realpay: &str,
        token: &str,
    ) -> String {
        let pairs = [
            ("payid", payid),
            ("orderid", orderid),
            ("orderuid", orderuid),
            ("paymoney", paymoney),
            ("realpay", realpay),
        ];
        let key = sign(&pairs, token);
        encode_form(pairs.into_iter().chain([("key", key.as_str())]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn account() -> Jings {
        let mut p = ProviderConfig::with_defaults("jg", "jings");
        p.base_url = "https://sun.jings.wang".into();
        p.credentials.insert("uid".into(), Secret::new("10000001400000"));
        p.credentials.insert("token".into(), Secret::new("10665CF54E90822951FE80330E9CF715"));
        Jings::from_config(&p).unwrap()
    }

    #[test]
    fn balance_key_matches_the_documents_vector() {
        // DESIGN.md §2 / document 1.5: uid=10000001400000&reqtime=2018-09-02 12:35:06&token=...
        let key =
            sign(&[("uid", "10000001400000"), ("reqtime", "2018-09-02 12:35:06")], "10665CF54E90822951FE80330E9CF715");
        assert_eq!(key, "c9b922d7dde2c8ad614b998f8d183e84");
        let req = account().balance(1_535_862_906).unwrap();
        assert_eq!(req.method, "GET");
        assert!(req.path.contains("key=c9b922d7dde2c8ad614b998f8d183e84"), "{}", req.path);
        assert!(req.path.contains("reqtime=2018-09-02+12%3A35%3A06"), "{}", req.path);
    }

    #[test]
    fn create_is_a_signed_form_for_the_browser_and_no_call() {
        let j = account();
        let mut p = crate::test_support::payment();
        p.scene = Scene::Web;
        p.return_url = Some("https://school/done".into());
        p.amount = 101;
        let extra = Default::default();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "https://gw/callbacks/jg") };
        let CreateStep::Done(created) = j.create_payment(&order, 0).unwrap() else { panic!("no server call") };
        let Action::FormPost { url, fields } = created.action else { panic!() };
        assert_eq!(url, "https://sun.jings.wang/pay.action");
        let text = format!(
            "uid=10000001400000&orderid={}&ordername=学费&paymoney=1.01&orderuid=&paytype=11&notifyurl=https://gw/callbacks/jg&returnurl=https://school/done&orderinfo=&token=10665CF54E90822951FE80330E9CF715",
            p.payment_id
        );
        assert_eq!(fields["key"], md5_hex(text.as_bytes()), "fixed order, empty values kept");
        let body = encode_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert!(provider::read_pay_form(body.as_bytes(), |_| Some("10665CF54E90822951FE80330E9CF715".into())).is_ok());
        let mut qr = p.clone();
        qr.scene = Scene::Qr;
        let order = CreateOrder { payment: &qr, ..order };
        assert!(matches!(j.create_payment(&order, 0), Err(DialectError::Unsupported(_))));
    }

    #[test]
    fn notify_and_query() {
        let j = account();
        let body =
            provider::notify_body("10000000480012", "P1", "", "0.01", "0.01", "10665CF54E90822951FE80330E9CF715");
        let inbound = InboundHttp {
            method: "POST",
            query: "",
            content_type: "application/x-www-form-urlencoded",
            body: body.as_bytes(),
        };
        let CallbackReport::Payment(r) = j.read_callback(inbound, 0).unwrap() else { panic!() };
        assert_eq!(
            (r.status, r.amount, r.provider_trade_no.as_deref()),
            (PaymentStatus::Succeeded, Some(1), Some("10000000480012"))
        );
        let forged = body.replace("0.01", "0.02");
        assert!(j.read_callback(InboundHttp { body: forged.as_bytes(), ..inbound }, 0).is_err());

        let mut p = crate::test_support::payment();
        p.payment_id = "10000000900000".into();
        p.amount = 5;
        let answer = r#"{"msg":"","orderid":"10000000900000","payid":"10000000900002","paymoney":"0.05","realpay":"0.05","status":"0"}"#;
        let r = j.read_query(&p, ProviderResponse { status: 200, body: answer.as_bytes() }).unwrap();
        assert_eq!((r.status, r.amount), (PaymentStatus::Succeeded, Some(5)));
        let timeout = answer.replace("\"status\":\"0\"", "\"status\":\"1\"");
        assert_eq!(
            j.read_query(&p, ProviderResponse { status: 200, body: timeout.as_bytes() }).unwrap().status,
            PaymentStatus::Closed
        );
        assert_eq!(j.query_interval(), Some(Duration::from_secs(60)));
    }
}
