//! xxpay (聚合支付接口说明书, `shared/seeds/004_d410ef21de4db00c.txt`).
//!
//! Transport: POST to `/api/pay/create_order` and `/api/pay/query_order` with one form field
//! `params` holding the request as JSON. Answers are JSON. Callbacks are POSTed to the
//! `notifyUrl` given at creation; the ack is the plain text `success`, anything else makes the
//! provider retry (60/120/180/240/300 s).
//!
//! Signing (§1.3): take every field with a non-empty value except `sign`, sort by name in
//! ASCII order, join as `k=v&k=v`, append `&key=<key>`, MD5, uppercase hex. Answers carry a
//! `sign` over all their fields (retCode and retMsg included) only when retCode is SUCCESS.
//!
//! Amounts are integer fen. `mchOrderNo` is payglot's payment_id (≤ 30 characters).
//!
//! Field mapping (create, §2.1.4):
//!
//! | xxpay        | canonical                                   |
//! | ------------ | ------------------------------------------- |
//! | mchId, appId | credentials `mch_id`, `app_id`              |
//! | productId    | `products["{channel}/{scene}"]`             |
//! | mchOrderNo   | payment_id                                  |
//! | currency     | `cny` (the document's only currency)        |
//! | amount       | amount (fen)                                |
//! | clientIp     | client_ip                                   |
//! | returnUrl    | return_url                                  |
//! | notifyUrl    | `{public_url}/callbacks/{account}`          |
//! | subject      | subject (first 64 characters)               |
//! | body         | description, or subject when empty (256)    |
//! | payOrderId   | provider_trade_no                           |
//! | payParams.payUrl | action: `qr_code` for qr scenes (the `params=` value of a QR-image URL, else the URL), `form_post` for `POST;url?fields`, else `redirect` |
//!
//! Status mapping (§2.2.4, §2.3.2): 0 订单生成 and 1 支付中 → pending; 2 支付成功 and
//! 3 业务处理完成 → succeeded; 5 支付失败 → failed; any other code → pending (never paid
//! without the provider saying so).
//!
//! Decisions where the document is silent or loose:
//! - `mchId` is sent as a JSON string (the query section types it String(30); the create
//!   section says long, and a string holds both); `productId` and `amount` as JSON numbers.
//! - A value that is itself JSON (payParams) is signed as its compact JSON text with keys
//!   sorted; when verifying, a signature that leaves such values out is accepted too, since
//!   providers differ here.
//! - Callbacks are read from a form body, a JSON body or the query string, whichever holds
//!   the fields.
//! - Payouts (代付, §3): `mchTransOrderNo` is payglot's payout_id; the payee's account type
//!   bank/wechat/alipay/other is 1/2/3/4 and personal/corporate is accountAttr 0/1. A callback
//!   with `mchTransOrderNo` is a payout notify (§3.3, sent with GET), else a payment notify.
//! - The product table defaults to the document's appendix 4.1; an account's `products:`
//!   replaces it completely, so ops list only the products their account has enabled.

use super::signing::{encode_form, md5_hex, parse_form, same_hex_signature, sorted_pairs};
use super::{
    check_credentials, check_options, json_text, product_key, CallbackReply, CallbackReport, CreateOrder, CreateStep,
    Created, Dialect, DialectError, InboundHttp, PaymentReport, PayoutReport, ProviderRequest, ProviderResponse,
};
use crate::config::ProviderConfig;
use crate::model::{Action, Payment, PaymentStatus, Payout, Scene, TransferStatus};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const CREATE_PATH: &str = "/api/pay/create_order";
pub const QUERY_PATH: &str = "/api/pay/query_order";
pub const TRANS_CREATE_PATH: &str = "/api/trans/create_order";
pub const TRANS_QUERY_PATH: &str = "/api/trans/query_order";
pub const ACK: &str = "success";

/// The product table of the document's appendix 4.1, by `channel/scene`.
pub const DEFAULT_PRODUCTS: &[(&str, u32)] = &[
    ("bank/web", 8000),
    ("unionpay/web", 8001),
    ("wechat/qr", 8002),
    ("wechat/h5", 8003),
    ("wechat/jsapi", 8004),
    ("wechat/miniapp", 8005),
    ("alipay/qr", 8006),
    ("alipay/h5", 8007),
    ("alipay/jsapi", 8008),
    ("qq/qr", 8009),
    ("qq/h5", 8010),
    ("jd/qr", 8011),
    ("jd/h5", 8012),
    ("unionpay/qr", 8014),
];

/// Computes the xxpay signature of `fields` (the `sign` field, if present, is left out).
pub fn sign(fields: &BTreeMap<String, String>, key: &str) -> String {
    md5_hex(string_to_sign(fields, key).as_bytes()).to_ascii_uppercase()
}

/// The text whose MD5 is the signature (§1.3): sorted non-empty fields, then `&key=KEY`.
pub fn string_to_sign(fields: &BTreeMap<String, String>, key: &str) -> String {
    let mut text =
        sorted_pairs(fields.iter().filter(|(k, _)| k.as_str() != "sign").map(|(k, v)| (k.as_str(), v.as_str())), true);
    text.push_str("&key=");
    text.push_str(key);
    text
}

/// Checks the `sign` field of `fields` in constant time.
pub fn verify(fields: &BTreeMap<String, String>, key: &str) -> bool {
    match fields.get("sign") {
        Some(given) => same_hex_signature(&sign(fields, key), given),
        None => false,
    }
}

/// A JSON message as signable text fields, and the object itself for nested values.
type JsonFields = (BTreeMap<String, String>, Map<String, Value>);

/// Reads a JSON object into signable text fields. Returns the object too, for nested values.
fn json_fields(body: &[u8]) -> Result<JsonFields, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("answer is not a JSON object".into());
    };
    let fields = object.iter().map(|(k, v)| (k.clone(), json_text(v))).collect();
    Ok((fields, object))
}

/// Verifies a signed JSON answer: with nested values signed as JSON text, or left out.
fn verify_answer(fields: &BTreeMap<String, String>, object: &Map<String, Value>, key: &str) -> bool {
    if verify(fields, key) {
        return true;
    }
    let scalars: BTreeMap<String, String> = fields
        .iter()
        .filter(|(k, _)| !matches!(object.get(*k), Some(Value::Object(_) | Value::Array(_))))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    scalars.len() != fields.len() && verify(&scalars, key)
}

/// Maps xxpay's payment status code onto the canonical status.
pub fn payment_status(code: &str) -> PaymentStatus {
    match code.trim() {
        "2" | "3" => PaymentStatus::Succeeded,
        "5" => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    }
}

/// The canonical status as xxpay's code, for the provider side.
pub fn status_code(status: PaymentStatus) -> u8 {
    match status {
        PaymentStatus::Pending => 0,
        PaymentStatus::Succeeded => 2,
        PaymentStatus::Failed | PaymentStatus::Closed => 5,
    }
}

/// Turns `payUrl` into the merchant's next action.
fn action_for(pay_url: &str, scene: Scene) -> Action {
    if let Some(rest) = pay_url.strip_prefix("POST;") {
        // §2.1.5: "POST;url?a=b" means POST the query fields to the url before the '?'.
        let (url, query) = rest.split_once('?').unwrap_or((rest, ""));
        return Action::FormPost { url: url.to_string(), fields: parse_form(query.as_bytes()).into_iter().collect() };
    }
    match scene {
        Scene::Qr => {
            // A QR-image service URL carries the code's content in `params=`.
            let content = pay_url
                .split_once('?')
                .and_then(|(_, q)| parse_form(q.as_bytes()).into_iter().find(|(k, _)| k == "params").map(|(_, v)| v))
                .unwrap_or_else(|| pay_url.to_string());
            Action::QrCode { qr_code: content, amount: None }
        }
        _ => Action::Redirect { url: pay_url.to_string() },
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// One xxpay provider account.
pub struct Xxpay {
    mch_id: String,
    app_id: String,
    key: String,
    products: BTreeMap<String, u32>,
}

impl Xxpay {
    pub fn from_config(provider: &ProviderConfig) -> Result<Self, Vec<String>> {
        let mut errors = check_credentials(provider, &["mch_id", "app_id", "key"], &[]);
        errors.extend(check_options(provider, &[]));
        if !errors.is_empty() {
            return Err(errors);
        }
        let products = if provider.products.is_empty() {
            DEFAULT_PRODUCTS.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        } else {
            provider.products.clone()
        };
        let cred = |name: &str| provider.credentials[name].expose().to_string();
        Ok(Xxpay { mch_id: cred("mch_id"), app_id: cred("app_id"), key: cred("key"), products })
    }

    /// A signed request: the account's mchId and appId, then `fields`, as the form's `params`.
    fn request(&self, path: &str, mut fields: Map<String, Value>) -> ProviderRequest {
        fields.insert("mchId".into(), Value::String(self.mch_id.clone()));
        fields.insert("appId".into(), Value::String(self.app_id.clone()));
        let text: BTreeMap<String, String> = fields.iter().map(|(k, v)| (k.clone(), json_text(v))).collect();
        fields.insert("sign".into(), Value::String(sign(&text, &self.key)));
        let params = serde_json::to_string(&Value::Object(fields)).expect("a JSON object serializes");
        ProviderRequest {
            method: "POST",
            path: path.to_string(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: encode_form([("params", params.as_str())]).into_bytes(),
        }
    }

    /// Reads a signed answer; a FAIL answer becomes `Rejected`.
    fn read_answer(&self, answer: ProviderResponse<'_>) -> Result<JsonFields, DialectError> {
        if !(200..300).contains(&answer.status) {
            return Err(DialectError::BadMessage(format!("HTTP status {}", answer.status)));
        }
        let (fields, object) = json_fields(answer.body).map_err(DialectError::BadMessage)?;
        let code = fields.get("retCode").map(String::as_str).unwrap_or("");
        if code != "SUCCESS" {
            return Err(DialectError::rejected(
                if code.is_empty() { "FAIL" } else { code },
                fields.get("retMsg").cloned().unwrap_or_default(),
            ));
        }
        if !verify_answer(&fields, &object, &self.key) {
            return Err(DialectError::BadMessage("answer signature does not verify".into()));
        }
        Ok((fields, object))
    }

    fn report(&self, fields: &BTreeMap<String, String>) -> Result<PaymentReport, DialectError> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if get("mchId") != self.mch_id {
            return Err(DialectError::BadMessage(format!("mchId {:?} is not this account's", get("mchId"))));
        }
        let payment_id = get("mchOrderNo");
        if payment_id.is_empty() {
            return Err(DialectError::BadMessage("mchOrderNo missing".into()));
        }
        let amount =
            crate::money::parse_fen(get("amount")).map_err(|e| DialectError::BadMessage(format!("amount: {e}")))?;
        let status = payment_status(get("status"));
        let paid_at = match status {
            PaymentStatus::Succeeded => get("paySuccTime").parse::<i64>().ok().map(|ms| ms / 1000),
            _ => None,
        };
        Ok(PaymentReport {
            payment_id: payment_id.to_string(),
            provider_trade_no: fields.get("payOrderId").filter(|s| !s.is_empty()).cloned(),
            status,
            amount: Some(amount),
            paid_at,
            paid_amount: None,
        })
    }

    fn payout_report(&self, fields: &BTreeMap<String, String>) -> Result<PayoutReport, DialectError> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if get("mchId") != self.mch_id {
            return Err(DialectError::BadMessage(format!("mchId {:?} is not this account's", get("mchId"))));
        }
        let amount =
            crate::money::parse_fen(get("amount")).map_err(|e| DialectError::BadMessage(format!("amount: {e}")))?;
        Ok(PayoutReport {
            payout_id: get("mchTransOrderNo").to_string(),
            provider_payout_no: fields.get("transOrderId").filter(|s| !s.is_empty()).cloned(),
            status: payout_status(get("status")),
            amount: Some(amount),
        })
    }

    fn checked_payout_report(
        &self,
        payout: &Payout,
        fields: &BTreeMap<String, String>,
    ) -> Result<PayoutReport, DialectError> {
        let report = self.payout_report(fields)?;
        if report.payout_id != payout.payout_id || report.amount != Some(payout.amount) {
            return Err(DialectError::BadMessage(format!(
                "answer is about payout {} of {:?} fen, not {} of {} fen",
                report.payout_id, report.amount, payout.payout_id, payout.amount
            )));
        }
        Ok(report)
    }
}

/// Maps xxpay's payout status (§3.1.4, §3.2.4): 2 成功 and 4 业务处理完成 → succeeded,
/// 3 失败 → failed, 0 订单生成 and 1 代付中 → pending.
pub fn payout_status(code: &str) -> TransferStatus {
    match code.trim() {
        "2" | "4" => TransferStatus::Succeeded,
        "3" => TransferStatus::Failed,
        _ => TransferStatus::Pending,
    }
}

impl Dialect for Xxpay {
    fn dialect(&self) -> &'static str {
        "xxpay"
    }

    fn create_payment(&self, order: &CreateOrder<'_>, _now: i64) -> Result<CreateStep, DialectError> {
        let p = order.payment;
        let key = product_key(p.channel, p.scene);
        let product = *self
            .products
            .get(&key)
            .ok_or_else(|| DialectError::Unsupported(format!("no xxpay product for {key} on this account")))?;
        if !p.currency.eq_ignore_ascii_case("cny") {
            return Err(DialectError::Unsupported(format!("currency {} (xxpay takes cny only)", p.currency)));
        }
        let mut f = Map::new();
        f.insert("productId".into(), Value::from(product));
        f.insert("mchOrderNo".into(), Value::String(p.payment_id.clone()));
        f.insert("currency".into(), Value::String("cny".into()));
        f.insert("amount".into(), Value::from(p.amount));
        if let Some(ip) = order.client_ip {
            f.insert("clientIp".into(), Value::String(ip.to_string()));
        }
        if let Some(url) = &p.return_url {
            f.insert("returnUrl".into(), Value::String(url.clone()));
        }
        f.insert("notifyUrl".into(), Value::String(order.callback_url.clone()));
        f.insert("subject".into(), Value::String(truncate_chars(&p.subject, 64)));
        let body = if p.description.is_empty() { &p.subject } else { &p.description };
        f.insert("body".into(), Value::String(truncate_chars(body, 256)));
        Ok(CreateStep::Call(self.request(CREATE_PATH, f)))
    }

    fn read_create(&self, order: &CreateOrder<'_>, answer: ProviderResponse<'_>) -> Result<Created, DialectError> {
        let (fields, object) = self.read_answer(answer)?;
        let pay_url = object.get("payParams").and_then(|p| p.get("payUrl")).and_then(Value::as_str).unwrap_or("");
        let action = if pay_url.is_empty() { Action::None } else { action_for(pay_url, order.payment.scene) };
        Ok(Created {
            provider_trade_no: fields.get("payOrderId").filter(|s| !s.is_empty()).cloned(),
            action,
            status: PaymentStatus::Pending,
            expires_at: None,
        })
    }

    fn query_payment(&self, payment: &Payment, _now: i64) -> Result<ProviderRequest, DialectError> {
        let mut f = Map::new();
        f.insert("mchOrderNo".into(), Value::String(payment.payment_id.clone()));
        Ok(self.request(QUERY_PATH, f))
    }

    fn read_query(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<PaymentReport, DialectError> {
        let (fields, _) = self.read_answer(answer)?;
        let report = self.report(&fields)?;
        if report.payment_id != payment.payment_id {
            return Err(DialectError::BadMessage(format!(
                "answer is about order {}, not {}",
                report.payment_id, payment.payment_id
            )));
        }
        Ok(report)
    }

    fn read_callback(&self, callback: InboundHttp<'_>, _now: i64) -> Result<CallbackReport, DialectError> {
        let fields = callback_fields(callback).map_err(DialectError::BadMessage)?;
        if !verify(&fields, &self.key) {
            return Err(DialectError::BadMessage("callback signature does not verify".into()));
        }
        // §3.3: payout notifies carry mchTransOrderNo; payment notifies mchOrderNo.
        if fields.contains_key("mchTransOrderNo") {
            self.payout_report(&fields).map(CallbackReport::Payout)
        } else {
            self.report(&fields).map(CallbackReport::Payment)
        }
    }

    fn claimed_payment_id(&self, callback: InboundHttp<'_>) -> Option<String> {
        callback_fields(callback).ok()?.get("mchOrderNo").cloned()
    }

    fn create_payout(&self, payout: &Payout, callback_url: &str, _now: i64) -> Result<ProviderRequest, DialectError> {
        let payee = &payout.payee;
        let account_type = match payee.account_type.as_str() {
            "bank" => "1",
            "wechat" => "2",
            "alipay" => "3",
            "other" => "4",
            other => {
                return Err(DialectError::Invalid(format!(
                    "payee.account_type {other:?}: xxpay takes bank, wechat, alipay or other"
                )))
            }
        };
        let account_attr = match payee.account_attr.as_deref().unwrap_or("personal") {
            "personal" => "0",
            "corporate" => "1",
            other => return Err(DialectError::Invalid(format!("payee.account_attr {other:?}: personal or corporate"))),
        };
        let mut f = Map::new();
        f.insert("mchTransOrderNo".into(), Value::String(payout.payout_id.clone()));
        f.insert("currency".into(), Value::String("cny".into()));
        f.insert("amount".into(), Value::from(payout.amount));
        f.insert("notifyUrl".into(), Value::String(callback_url.to_string()));
        f.insert("accountAttr".into(), Value::String(account_attr.into()));
        f.insert("bankCode".into(), Value::String(payee.bank_code.clone()));
        f.insert("bankName".into(), Value::String(payee.bank_name.clone()));
        f.insert("accountType".into(), Value::String(account_type.into()));
        f.insert("accountName".into(), Value::String(payee.account_name.clone()));
        f.insert("accountNo".into(), Value::String(payee.account_no.clone()));
        f.insert("province".into(), Value::String(payee.province.clone()));
        f.insert("city".into(), Value::String(payee.city.clone()));
        Ok(self.request(TRANS_CREATE_PATH, f))
    }

    fn read_payout(&self, payout: &Payout, answer: ProviderResponse<'_>) -> Result<PayoutReport, DialectError> {
        let (fields, _) = self.read_answer(answer)?;
        self.checked_payout_report(payout, &fields)
    }

    fn query_payout(&self, payout: &Payout, _now: i64) -> Result<ProviderRequest, DialectError> {
        let mut f = Map::new();
        f.insert("mchTransOrderNo".into(), Value::String(payout.payout_id.clone()));
        Ok(self.request(TRANS_QUERY_PATH, f))
    }

    fn read_payout_query(&self, payout: &Payout, answer: ProviderResponse<'_>) -> Result<PayoutReport, DialectError> {
        let (fields, _) = self.read_answer(answer)?;
        self.checked_payout_report(payout, &fields)
    }

    fn callback_reply(&self, accepted: bool) -> CallbackReply {
        CallbackReply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: if accepted { ACK } else { "fail" }.to_string(),
        }
    }
}

/// The fields of a callback: from a JSON body, a form body, or the query string.
pub fn callback_fields(callback: InboundHttp<'_>) -> Result<BTreeMap<String, String>, String> {
    let body = callback.body;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if callback.content_type.contains("json") || first == Some(&b'{') {
        return json_fields(body).map(|(fields, _)| fields);
    }
    let source = if body.is_empty() { callback.query.as_bytes() } else { body };
    let fields: BTreeMap<String, String> = parse_form(source).into_iter().collect();
    if fields.is_empty() {
        return Err("callback has no fields".into());
    }
    Ok(fields)
}

/// The provider side of xxpay: what a server speaking xxpay does. Used by the sandbox (and
/// by the compatible front door).
pub mod provider {
    use super::*;
    use crate::dialects::{Ack, Notify, ProviderOrder};
    use crate::model::Channel;

    /// Reads the `params` JSON of a request and verifies its signature with the key of the
    /// `mchId` it names. Returns the fields, or the retMsg to answer with.
    pub fn read_request(
        body: &[u8],
        key_for_mch: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let params = parse_form(body)
            .into_iter()
            .find(|(k, _)| k == "params")
            .map(|(_, v)| v)
            .ok_or("参数格式校验错误: params missing")?;
        let (fields, _) = json_fields(params.as_bytes()).map_err(|e| format!("参数格式校验错误: {e}"))?;
        let mch_id = fields.get("mchId").map(String::as_str).unwrap_or("");
        let key = key_for_mch(mch_id).ok_or("商户不存在")?;
        if !verify(&fields, &key) {
            return Err("签名失败".into());
        }
        Ok(fields)
    }

    /// Checks a create request's fields as §2.1.4 lists them; returns the amount in fen.
    pub fn check_create(fields: &BTreeMap<String, String>) -> Result<i64, String> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        for required in ["productId", "mchOrderNo", "currency", "amount", "notifyUrl", "subject", "body"] {
            if get(required).is_empty() {
                return Err(format!("参数格式校验错误: {required} 不能为空"));
            }
        }
        if get("mchOrderNo").len() > 30 {
            return Err("参数格式校验错误: mchOrderNo".into());
        }
        match get("amount").parse::<i64>() {
            Ok(a) if a > 0 => Ok(a),
            _ => Err("参数格式校验错误: amount".into()),
        }
    }

    /// The channel and scene of a productId in the document's table (appendix 4.1).
    pub fn product_scene(product_id: &str) -> Option<(Channel, Scene)> {
        let (key, _) = DEFAULT_PRODUCTS.iter().find(|(_, id)| id.to_string() == product_id)?;
        let (channel, scene) = key.split_once('/')?;
        Some((channel.parse().ok()?, scene.parse().ok()?))
    }

    /// A signed SUCCESS answer.
    pub fn success(mut fields: Map<String, Value>, key: &str) -> String {
        fields.insert("retCode".into(), Value::String("SUCCESS".into()));
        let text: BTreeMap<String, String> = fields.iter().map(|(k, v)| (k.clone(), json_text(v))).collect();
        fields.insert("sign".into(), Value::String(sign(&text, key)));
        Value::Object(fields).to_string()
    }

    /// A FAIL answer (unsigned, as the document shows).
    pub fn failure(message: &str) -> String {
        serde_json::json!({"retCode": "FAIL", "retMsg": message}).to_string()
    }

    /// A signed notify form body.
    pub fn notify_body(mut fields: BTreeMap<String, String>, key: &str) -> String {
        let signature = sign(&fields, key);
        fields.insert("sign".into(), signature);
        encode_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The order as query answers and notifies show it (§2.2.4, §2.3.2). `fields` holds the
    /// create request's appId, productId, param1 and param2, and channelOrderNo once known.
    pub fn order_fields(order: &ProviderOrder) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        let saved = |k: &str| order.fields.get(k).cloned().unwrap_or_default();
        f.insert("mchId".into(), order.account.clone());
        for k in ["appId", "productId", "param1", "param2"] {
            if !saved(k).is_empty() {
                f.insert(k.into(), saved(k));
            }
        }
        f.insert("payOrderId".into(), order.provider_no.clone());
        f.insert("mchOrderNo".into(), order.merchant_order_no.clone());
        f.insert("amount".into(), order.amount.to_string());
        f.insert("status".into(), status_code(order.status).to_string());
        if let Some(at) = order.paid_at {
            f.insert("paySuccTime".into(), (at * 1000).to_string());
            let channel_no = saved("channelOrderNo");
            f.insert(
                "channelOrderNo".into(),
                if channel_no.is_empty() { format!("wx{}", order.provider_no) } else { channel_no },
            );
        }
        f
    }

    /// The signed query answer for an order.
    pub fn query_answer(order: &ProviderOrder, key: &str) -> String {
        let mut answer: Map<String, Value> =
            order_fields(order).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        answer.insert("currency".into(), Value::String("cny".into()));
        success(answer, key)
    }

    /// The signed create answer: the order number and what the payer opens (§2.1.5).
    pub fn create_answer(pay_order_id: &str, pay_params: Value, key: &str) -> String {
        let mut answer = Map::new();
        answer.insert("payOrderId".into(), Value::String(pay_order_id.to_string()));
        answer.insert("payParams".into(), pay_params);
        success(answer, key)
    }

    /// The payment notify (§2.3): POST form with backType 2, ack `success`.
    pub fn notify(order: &ProviderOrder, key: &str) -> Notify {
        let mut fields = order_fields(order);
        fields.insert("backType".into(), "2".into());
        Notify {
            method: "POST",
            url: order.notify_url.clone(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: notify_body(fields, key).into_bytes(),
            ack: Ack::Text(ACK),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProviderConfig, Secret};
    use crate::model::Payment;

    fn account() -> Xxpay {
        let mut provider = ProviderConfig::with_defaults("xxpay-test", "xxpay");
        for (k, v) in [("mch_id", "20001222"), ("app_id", "0ae8be35ff634e2abe94f5f32f6d5c4f"), ("key", "K3y")] {
            provider.credentials.insert(k.into(), Secret::new(v));
        }
        Xxpay::from_config(&provider).unwrap()
    }

    fn payment() -> Payment {
        crate::dialects::tests_support::payment()
    }

    #[test]
    fn signature_follows_the_document_rule() {
        // Computed by hand from §1.3: sorted non-empty fields, "&key=", MD5, uppercase.
        let fields: BTreeMap<String, String> =
            [("mchId", "20001222"), ("amount", "100"), ("param1", ""), ("currency", "cny"), ("sign", "IGNORED")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let expected = md5_hex(b"amount=100&currency=cny&mchId=20001222&key=K3y").to_ascii_uppercase();
        assert_eq!(expected, "CE349EFFAF9E5C85A2131D9BD90320DC");
        assert_eq!(sign(&fields, "K3y"), expected);
        let mut signed = fields.clone();
        signed.insert("sign".into(), expected.to_ascii_lowercase());
        assert!(verify(&signed, "K3y"), "hex case is not significant");
        signed.insert("amount".into(), "101".into());
        assert!(!verify(&signed, "K3y"));
    }

    #[test]
    fn create_request_is_a_signed_params_form() {
        let x = account();
        let p = payment();
        let order = CreateOrder {
            payment: &p,
            callback_url: "https://pay.example.edu/callbacks/xxpay-test".into(),
            client_ip: Some("210.73.10.148"),
            auth_code: None,
            openid: None,
            extra: &Default::default(),
        };
        let CreateStep::Call(req) = x.create_payment(&order, 0).unwrap() else { panic!("call expected") };
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, CREATE_PATH);
        let fields = provider::read_request(&req.body, |m| (m == "20001222").then(|| "K3y".into())).unwrap();
        assert_eq!(fields["productId"], "8006");
        assert_eq!(fields["amount"], "100");
        assert_eq!(fields["mchOrderNo"], p.payment_id);
        assert_eq!(fields["body"], "学费");
        assert_eq!(fields["notifyUrl"], "https://pay.example.edu/callbacks/xxpay-test");
        assert!(provider::read_request(&req.body, |_| Some("wrong".into())).is_err());
    }

    #[test]
    fn create_answer_from_the_document_example_shape() {
        let x = account();
        let p = payment();
        let order = CreateOrder {
            payment: &p,
            callback_url: String::new(),
            client_ip: None,
            auth_code: None,
            openid: None,
            extra: &Default::default(),
        };
        let mut answer = Map::new();
        answer.insert("payOrderId".into(), "P01000020181013115051810".into());
        answer.insert(
            "payParams".into(),
            serde_json::json!({"payUrl": "http://127.0.0.1:3020/api/qrcode/create_qrcode?params=https://qr.alipay.com/bax07593fh9xkcrimmy8203b"}),
        );
        let body = provider::success(answer, "K3y");
        let created = x.read_create(&order, ProviderResponse { status: 200, body: body.as_bytes() }).unwrap();
        assert_eq!(created.provider_trade_no.as_deref(), Some("P01000020181013115051810"));
        assert_eq!(
            created.action,
            Action::QrCode { qr_code: "https://qr.alipay.com/bax07593fh9xkcrimmy8203b".into(), amount: None }
        );

        let tampered = body.replace("P0100", "P0200");
        assert!(matches!(
            x.read_create(&order, ProviderResponse { status: 200, body: tampered.as_bytes() }),
            Err(DialectError::BadMessage(_))
        ));
        let fail = provider::failure("签名失败");
        assert_eq!(
            x.read_create(&order, ProviderResponse { status: 200, body: fail.as_bytes() }),
            Err(DialectError::rejected("FAIL", "签名失败"))
        );
    }

    #[test]
    fn pay_url_forms() {
        assert_eq!(
            action_for("POST;https://bank.example/pay?a=1&b=x%20y", Scene::Web),
            Action::FormPost {
                url: "https://bank.example/pay".into(),
                fields: [("a".to_string(), "1".to_string()), ("b".to_string(), "x y".to_string())]
                    .into_iter()
                    .collect()
            }
        );
        assert_eq!(
            action_for("https://h5.example/pay", Scene::H5),
            Action::Redirect { url: "https://h5.example/pay".into() }
        );
    }

    #[test]
    fn callbacks_are_verified_and_mapped() {
        let x = account();
        let fields: BTreeMap<String, String> = [
            ("payOrderId", "P01"),
            ("mchId", "20001222"),
            ("appId", "0ae8be35ff634e2abe94f5f32f6d5c4f"),
            ("productId", "8006"),
            ("mchOrderNo", "P1700000000abcdefghijklmnopqrs"),
            ("amount", "100"),
            ("status", "2"),
            ("paySuccTime", "1505049094262"),
            ("backType", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = provider::notify_body(fields.clone(), "K3y");
        let inbound = InboundHttp {
            method: "POST",
            query: "",
            content_type: "application/x-www-form-urlencoded",
            body: body.as_bytes(),
        };
        let CallbackReport::Payment(report) = x.read_callback(inbound, 0).unwrap() else {
            panic!("a payment callback")
        };
        assert_eq!(report.status, PaymentStatus::Succeeded);
        assert_eq!(report.amount, Some(100));
        assert_eq!(report.paid_at, Some(1505049094));
        assert_eq!(report.provider_trade_no.as_deref(), Some("P01"));

        let forged = provider::notify_body(fields.clone(), "not-the-key");
        let inbound = InboundHttp { body: forged.as_bytes(), ..inbound };
        assert!(x.read_callback(inbound, 0).is_err());

        let mut other = fields;
        other.insert("mchId".into(), "999".into());
        let body = provider::notify_body(other, "K3y");
        let inbound = InboundHttp { body: body.as_bytes(), ..inbound };
        assert!(x.read_callback(inbound, 0).is_err(), "another merchant's callback");
        assert_eq!(x.callback_reply(true).body, "success");
        assert_ne!(x.callback_reply(false).body, "success");
    }

    #[test]
    fn status_codes() {
        assert_eq!(payment_status("0"), PaymentStatus::Pending);
        assert_eq!(payment_status("1"), PaymentStatus::Pending);
        assert_eq!(payment_status("2"), PaymentStatus::Succeeded);
        assert_eq!(payment_status("3"), PaymentStatus::Succeeded);
        assert_eq!(payment_status("5"), PaymentStatus::Failed);
        assert_eq!(payment_status("9"), PaymentStatus::Pending);
    }

    #[test]
    fn unsupported_scene_never_reaches_the_provider() {
        let x = account();
        let mut p = payment();
        p.scene = Scene::Barcode;
        let order = CreateOrder {
            payment: &p,
            callback_url: String::new(),
            client_ip: None,
            auth_code: None,
            openid: None,
            extra: &Default::default(),
        };
        assert!(matches!(x.create_payment(&order, 0), Err(DialectError::Unsupported(_))));
    }
}
