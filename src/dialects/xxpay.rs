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
//! Answer signatures (`options.answer_sign`, #14): real XxPay servers sign a create answer
//! over every field but `payParams` (the open-source XxPay's `XXPayUtil.makeRetData` →
//! `getSign(map, key, "payParams")`, and its demo merchant verifies it so), which leaves
//! `payParams.payUrl` unauthenticated; that is the default, `xxpay_server`. `all_fields`
//! requires `payParams` to be signed too (as its compact JSON text). An answer is verified by
//! the account's rule only, never by whichever rule happens to match. A signed answer with
//! `resCode` other than SUCCESS is the provider's business refusal (`errCode`, `errCodeDes`).
//!
//! Known answers: the document prints no key, and its two signatures do not reproduce under
//! any key it or the public XxPay code holds (`76BA88EE...`, the create answer of §2.1.5, and
//! `C380BEC2...`, WeChat Pay's documentation placeholder copied into every sign row). The unit
//! tests take their vectors from the public XxPay project's own signing code
//! (`PayDigestUtil.getSign`, run as published) instead.
//!
//! Sorting: the document says ASCII order; XxPay's `getSign` sorts the whole `k=v&` strings
//! case-insensitively. The two orders differ only for names equal but for case, for a name that
//! is a prefix of another followed by a character below `=` (`param`/`param1`), or for `_`
//! against a letter. No field set payglot sends (create, query, payouts) has such a pair, so
//! both orders give the same string; the front door accepts a request signed in either.
//!
//! 网银 (productId 8000, `bank/web`): §2.1.4 requires `param1` = the payer's bank code, account
//! name and account number, joined by `;`. They come from the create's `extra.payer_bank_code`,
//! `extra.payer_account_name` and `extra.payer_account_no`; a bank/web payment without them is
//! refused before any call. (`param1` is otherwise not sent.)
//!
//! The open-source XxPay's own servers answer query_order with the order nested under `result`
//! (signed over its raw JSON text in their map order); payglot reads the document's flat answer.
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
use super::ProviderConfig;
use super::{
    check_credentials, check_options, json_text, product_key, truncate_chars, CallbackReply, CallbackReport,
    CreateOrder, CreateStep, Created, Dialect, DialectError, InboundHttp, PaymentReport, PayoutReport, ProviderRequest,
    ProviderResponse,
};
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

/// The open-source XxPay project's `channelId`s (its clients send these instead of the
/// document's productId), by `channel/scene`.
pub const CHANNEL_IDS: &[(&str, &str)] = &[
    ("WX_NATIVE", "wechat/qr"),
    ("WX_JSAPI", "wechat/jsapi"),
    ("WX_MWEB", "wechat/h5"),
    ("ALIPAY_QR", "alipay/qr"),
    ("ALIPAY_PC", "alipay/web"),
    ("ALIPAY_WAP", "alipay/h5"),
];

/// Computes the xxpay signature of `fields` (the `sign` field, if present, is left out).
pub fn sign(fields: &BTreeMap<String, String>, key: &str) -> String {
    sign_leaving_out(fields, key, "sign")
}

/// The signature of every field but `sign` and `left_out`.
fn sign_leaving_out(fields: &BTreeMap<String, String>, key: &str, left_out: &str) -> String {
    md5_hex(string_to_sign_leaving_out(fields, key, left_out).as_bytes()).to_ascii_uppercase()
}

/// The text whose MD5 is the signature (§1.3): sorted non-empty fields, then `&key=KEY`.
pub fn string_to_sign(fields: &BTreeMap<String, String>, key: &str) -> String {
    string_to_sign_leaving_out(fields, key, "sign")
}

fn string_to_sign_leaving_out(fields: &BTreeMap<String, String>, key: &str, left_out: &str) -> String {
    let signed = fields.iter().filter(|(k, _)| k.as_str() != "sign" && k.as_str() != left_out);
    let mut text = sorted_pairs(signed.map(|(k, v)| (k.as_str(), v.as_str())), true);
    text.push_str("&key=");
    text.push_str(key);
    text
}

/// Checks the `sign` field of `fields` in constant time.
pub fn verify(fields: &BTreeMap<String, String>, key: &str) -> bool {
    verify_leaving_out(fields, key, "sign")
}

/// Checks `sign` against the signature of every field but `sign` and `left_out`.
fn verify_leaving_out(fields: &BTreeMap<String, String>, key: &str, left_out: &str) -> bool {
    match fields.get("sign") {
        Some(given) => same_hex_signature(&sign_leaving_out(fields, key, left_out), given),
        None => false,
    }
}

/// The string to sign as the open-source XxPay's `PayDigestUtil.getSign` builds it: the
/// non-empty `k=v&` pieces sorted case-insensitively as whole strings, then `key=KEY`.
pub fn xxpay_code_string_to_sign(fields: &BTreeMap<String, String>, key: &str) -> String {
    let mut pieces: Vec<String> = fields
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}&"))
        .collect();
    pieces.sort_by_key(|p| p.to_lowercase());
    let mut text = pieces.concat();
    text.push_str("key=");
    text.push_str(key);
    text
}

/// Checks `sign` under the document's ASCII order or XxPay's case-insensitive one (they differ
/// only for unusual field names; see the module doc).
pub fn verify_either_order(fields: &BTreeMap<String, String>, key: &str) -> bool {
    let Some(given) = fields.get("sign") else { return false };
    let ascii = sign(fields, key);
    let code = md5_hex(xxpay_code_string_to_sign(fields, key).as_bytes()).to_ascii_uppercase();
    same_hex_signature(&ascii, given) || (code != ascii && same_hex_signature(&code, given))
}

/// How an account's answers are signed (`options.answer_sign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSign {
    /// Every field but `payParams`, as XxPay servers sign (the default).
    XxpayServer,
    /// Every field, `payParams` as its compact JSON text.
    AllFields,
}

/// A JSON message as signable text fields, and its nested values (objects, arrays) as JSON.
type JsonFields = (BTreeMap<String, String>, Map<String, Value>);

/// Reads a JSON object into signable text fields (a nested value as its compact JSON text);
/// the nested values are kept as JSON too. Read entry by entry, without a `Value` of the whole
/// object: a query's answer was read twice over (into a map of values, then into fields), the
/// largest part of its verification. A repeated field keeps its last value, as a map of
/// values would.
fn json_fields(body: &[u8]) -> Result<JsonFields, String> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = JsonFields;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonFields, A::Error> {
            let mut fields = BTreeMap::new();
            let mut nested = Map::new();
            while let Some(name) = map.next_key::<String>()? {
                let text = match map.next_value::<Value>()? {
                    value @ (Value::Object(_) | Value::Array(_)) => {
                        let text = value.to_string();
                        nested.insert(name.clone(), value);
                        text
                    }
                    other => {
                        // A repeated name's last value stands for the nested value too: the
                        // signature covers the last one, so an earlier object must not be used.
                        nested.remove(&name);
                        match other {
                            Value::String(text) => text,
                            other => json_text(&other),
                        }
                    }
                };
                // Of equal names the last stays, as in the nested values.
                fields.insert(name, text);
            }
            Ok((fields, nested))
        }
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let read =
        serde::Deserializer::deserialize_map(&mut reader, Fields).and_then(|fields| reader.end().map(|()| fields));
    read.map_err(|e| match e.classify() {
        // serde_json stops at the first token that is not `{`: whether the rest is JSON at all
        // is asked again, only on this error path, so the message says which it is.
        serde_json::error::Category::Data => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => "answer is not a JSON object".to_string(),
            Err(e) => format!("answer is not JSON: {e}"),
        },
        _ => format!("answer is not JSON: {e}"),
    })
}

/// Verifies a signed JSON answer by the account's rule.
fn verify_answer(fields: &BTreeMap<String, String>, rule: AnswerSign, key: &str) -> bool {
    match rule {
        AnswerSign::AllFields => verify(fields, key),
        AnswerSign::XxpayServer => verify_leaving_out(fields, key, "payParams"),
    }
}

/// Whether a FAIL message says the order does not exist (订单不存在).
fn says_not_found(message: &str) -> bool {
    let lower = message.to_lowercase();
    ["订单不存在", "订单号不存在", "order not found", "order does not exist"].iter().any(|w| lower.contains(w))
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

/// `param1` of a 网银 payment (§2.1.4): payer's bank code;account name;account number.
fn bank_payer(order: &CreateOrder<'_>) -> Result<String, DialectError> {
    let names = ["payer_bank_code", "payer_account_name", "payer_account_no"];
    let values: Vec<&str> = names.iter().map(|n| order.extra_str(n).unwrap_or("")).collect();
    if let Some(i) = values.iter().position(|v| v.is_empty()) {
        return Err(DialectError::Invalid(format!(
            "extra.{}: required for a bank/web payment (xxpay 网银 sends the payer's bank code, account name and account number as param1)",
            names[i]
        )));
    }
    if values.iter().any(|v| v.contains(';')) {
        return Err(DialectError::Invalid("extra.payer_*: must not contain ';' (it separates param1's parts)".into()));
    }
    let param1 = values.join(";");
    if param1.chars().count() > 64 {
        return Err(DialectError::Invalid(
            "extra.payer_*: together at most 64 characters (param1 is String(64))".into(),
        ));
    }
    Ok(param1)
}

/// One xxpay provider account.
pub struct Xxpay {
    mch_id: String,
    app_id: String,
    key: String,
    products: BTreeMap<String, u32>,
    answer_sign: AnswerSign,
}

impl Xxpay {
    pub fn from_config(provider: &ProviderConfig) -> Result<Self, Vec<String>> {
        let mut errors = check_credentials(provider, &["mch_id", "app_id", "key"], &[]);
        errors.extend(check_options(provider, &["answer_sign"]));
        let answer_sign = match provider.options.get("answer_sign").map(String::as_str).unwrap_or("xxpay_server") {
            "xxpay_server" => AnswerSign::XxpayServer,
            "all_fields" => AnswerSign::AllFields,
            other => {
                errors.push(format!("options.answer_sign: {other:?} is neither xxpay_server nor all_fields"));
                AnswerSign::XxpayServer
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let products = if provider.products.is_empty() {
            DEFAULT_PRODUCTS.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        } else {
            provider.products.clone()
        };
        let cred = |name: &str| provider.credentials[name].expose().to_string();
        Ok(Xxpay { mch_id: cred("mch_id"), app_id: cred("app_id"), key: cred("key"), products, answer_sign })
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
        let (fields, nested) = json_fields(answer.body).map_err(DialectError::BadMessage)?;
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let code = get("retCode");
        if code != "SUCCESS" {
            return Err(DialectError::rejected(if code.is_empty() { "FAIL".into() } else { code }, get("retMsg")));
        }
        if !verify_answer(&fields, self.answer_sign, &self.key) {
            return Err(DialectError::BadMessage("answer signature does not verify".into()));
        }
        // retCode is the transport's word, resCode the business result (XxPay): a signed
        // resCode FAIL is the provider's refusal.
        if fields.contains_key("resCode") && get("resCode") != "SUCCESS" {
            let code = Some(get("errCode")).filter(|c| !c.is_empty()).unwrap_or_else(|| "FAIL".into());
            return Err(DialectError::rejected(code, get("errCodeDes")));
        }
        Ok((fields, nested))
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
        if product == 8000 {
            f.insert("param1".into(), Value::String(bank_payer(order)?));
        }
        f.insert("subject".into(), Value::String(truncate_chars(&p.subject, 64)));
        let body = if p.description.is_empty() { &p.subject } else { &p.description };
        f.insert("body".into(), Value::String(truncate_chars(body, 256)));
        Ok(CreateStep::Call(self.request(CREATE_PATH, f)))
    }

    fn read_create(&self, order: &CreateOrder<'_>, answer: ProviderResponse<'_>) -> Result<Created, DialectError> {
        let (fields, nested) = self.read_answer(answer)?;
        // The document's payParams.payUrl; XxPay's own servers put codeUrl (WX_NATIVE) or payUrl
        // (Alipay, WX_MWEB) at the top level.
        let pay_url = nested
            .get("payParams")
            .and_then(|p| p.get("payUrl"))
            .and_then(Value::as_str)
            .or_else(|| fields.get("codeUrl").map(String::as_str))
            .or_else(|| fields.get("payUrl").map(String::as_str))
            .unwrap_or("");
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
        let (fields, _) = match self.read_answer(answer) {
            // FAIL answers are unsigned; 订单不存在 is the one about the order itself.
            Err(DialectError::Rejected { message, .. }) if says_not_found(&message) => {
                return Err(DialectError::UnknownOrder(format!("FAIL {message}")))
            }
            other => other?,
        };
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

/// xxpay in the registry.
pub const SPEC: super::DialectSpec = super::DialectSpec {
    name: "xxpay",
    account_id: "mch_id",
    public_credentials: &["mch_id", "app_id"],
    build: |p| Ok(std::sync::Arc::new(Xxpay::from_config(p)?)),
    side: &provider::Side,
    payouts: true,
    products: true,
    cli_sign,
    endpoints: &[
        ("POST", "/api/pay/create_order"),
        ("POST", "/api/pay/query_order"),
        ("POST", "/api/trans/create_order"),
        ("POST", "/api/trans/query_order"),
    ],
    example_credentials: &[("mch_id", "1001"), ("app_id", "0ae8be35ff634e2abe94f5f32f6d5c4f"), ("key", "xxpay-key-a")],
    example_options: &[],
};

/// `payglot sign xxpay`: the message's fields.
fn cli_sign(args: &[String], key: &str) -> (String, String) {
    let map: BTreeMap<String, String> = super::arg_pairs(args).into_iter().collect();
    (string_to_sign(&map, "<key>"), sign(&map, key))
}

/// The provider side of xxpay: what a server speaking xxpay does. Used by the sandbox (and
/// by the compatible front door).
pub mod provider {
    use super::*;
    use crate::dialects::provider_side::{
        keep, url_scenes, Answer, Call, CallKind, Fail, Failure, Keyed, Keys, Lookup, OrderRequest, Outcome,
        PayoutDone, PayoutRequest, Request,
    };
    use crate::dialects::{Ack, Notify, ProviderOrder};

    /// The provider side of xxpay, as XxPay servers behave: `params` requests signed with the
    /// account's key (ASCII or case-insensitive order), signed SUCCESS answers with resCode,
    /// unsigned FAIL answers, the POST notify acked by `success`, payouts with a GET notify.
    pub struct Side;

    impl crate::dialects::ProviderSide for Side {
        fn read(&self, request: &Request<'_>, keys: Keys<'_>, _now: i64) -> Result<Call, Answer> {
            if request.method != "POST" {
                return Err(Answer::text(405, "POST only"));
            }
            if !matches!(
                request.path,
                "/api/pay/create_order" | "/api/pay/query_order" | "/api/trans/create_order" | "/api/trans/query_order"
            ) {
                return Err(Answer::text(404, "no such xxpay endpoint"));
            }
            let fields = read_request(request.body, |mch| keys(mch).map(|k| k.credential("key")))
                .map_err(|m| Answer::json(failure(&m)))?;
            let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
            let keyed = keys(&get("mchId")).ok_or_else(|| Answer::json(failure("商户不存在")))?;
            // Clients copied from the XxPay project send no appId; one that is sent must match.
            if !get("appId").is_empty() && get("appId") != keyed.credential("app_id") {
                return Err(Answer::json(failure("应用不存在")));
            }
            let kind = match request.path {
                "/api/pay/create_order" => {
                    let amount = check_create(&fields).map_err(|m| Answer::json(failure(&m)))?;
                    let by_channel_id = get("productId").is_empty();
                    let scene = if by_channel_id {
                        channel_id_scene(&get("channelId"))
                    } else {
                        product_scene(&get("productId"))
                    };
                    let Some((channel, scene)) = scene else {
                        let (name, value) = if by_channel_id {
                            ("channelId", get("channelId"))
                        } else {
                            ("productId", get("productId"))
                        };
                        return Err(Answer::json(failure(&format!("支付产品不存在: {name} {value}"))));
                    };
                    let mut order = OrderRequest {
                        order_no: get("mchOrderNo"),
                        amount,
                        subject: get("subject"),
                        description: get("body"),
                        channel: Some(channel),
                        scenes: url_scenes(scene),
                        notify_url: get("notifyUrl"),
                        return_url: get("returnUrl"),
                        client_ip: Some(get("clientIp")).filter(|ip| !ip.is_empty()),
                        ..Default::default()
                    };
                    for k in ["appId", "productId", "channelId", "param1", "param2"] {
                        keep(&mut order.keep, k, &get(k));
                    }
                    if get("productId") == "8000" {
                        // 网银: param1 is the payer's bank code;account name;account number.
                        let parts: Vec<String> = get("param1").split(';').map(str::to_string).collect();
                        for (name, value) in
                            ["payer_bank_code", "payer_account_name", "payer_account_no"].iter().zip(parts)
                        {
                            order.extra.insert(name.to_string(), Value::String(value));
                        }
                    }
                    CallKind::Create(order)
                }
                "/api/pay/query_order" => {
                    let lookup = match get("payOrderId") {
                        id if !id.is_empty() => Lookup::ProviderNo(id),
                        _ => Lookup::MerchantNo(get("mchOrderNo")),
                    };
                    CallKind::Query { lookup, notify_again: get("executeNotify").eq_ignore_ascii_case("true") }
                }
                "/api/trans/create_order" => {
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
                            return Err(Answer::json(failure(&format!("参数格式校验错误: {required} 不能为空"))));
                        }
                    }
                    let amount =
                        get("amount").parse::<i64>().map_err(|_| Answer::json(failure("参数格式校验错误: amount")))?;
                    CallKind::PayoutCreate(PayoutRequest {
                        payout_no: get("mchTransOrderNo"),
                        amount,
                        notify_url: get("notifyUrl"),
                        fields: fields.clone(),
                    })
                }
                _ => CallKind::PayoutQuery(Lookup::MerchantNo(get("mchTransOrderNo"))),
            };
            let mut call = Call::new(get("mchId"), kind);
            call.echo.insert("appId".into(), get("appId"));
            Ok(call)
        }

        fn answer(&self, keyed: &Keyed, call: &Call, outcome: Result<Outcome, Failure>, now: i64) -> Answer {
            let key = keyed.credential("key");
            Answer::json(match (outcome, &call.kind) {
                (Ok(Outcome::Order(placed)), CallKind::Create(order)) => {
                    let url = Value::String(placed.pay_url.clone());
                    let no = &placed.order.provider_no;
                    match (&placed.action, order.keep.get("channelId").map(String::as_str)) {
                        (Some(Action::Jsapi { params }), _) => {
                            create_answer(no, serde_json::to_value(params).unwrap_or_default(), &key)
                        }
                        (_, None) => create_answer(no, serde_json::json!({"payUrl": url}), &key),
                        (_, Some("WX_NATIVE")) => create_answer_with(no, [("codeUrl", url)], &key),
                        (_, Some(_)) => create_answer_with(no, [("payUrl", url)], &key),
                    }
                }
                (Ok(Outcome::Order(placed)), _) => query_answer(&placed.order, &key),
                (Ok(Outcome::Payout(done)), CallKind::PayoutCreate(_)) => {
                    let mut answer = payout_fields(&keyed.credential("mch_id"), &done);
                    answer.insert("createTime".into(), Value::from(now * 1000));
                    success(answer, &key)
                }
                (Ok(Outcome::Payout(done)), _) => {
                    let mut answer = payout_fields(&keyed.credential("mch_id"), &done);
                    answer.insert("appId".into(), Value::String(call.echo.get("appId").cloned().unwrap_or_default()));
                    answer.insert("currency".into(), Value::String("cny".into()));
                    success(answer, &key)
                }
                (Err(f), CallKind::Create(_)) if f.kind == Fail::Duplicate => failure("商户订单号重复"),
                (Err(f), _) if f.kind == Fail::NotFound => failure("订单不存在"),
                (Err(f), _) => failure(&f.message),
                (Ok(_), _) => failure("not offered"),
            })
        }

        fn notify(&self, keyed: &Keyed, order: &ProviderOrder, _now: i64) -> Option<Notify> {
            Some(notify(order, &keyed.credential("key")))
        }

        fn ack_body(&self) -> &'static str {
            ACK
        }

        fn order_prefix(&self) -> &'static str {
            "P01"
        }

        fn payout_notify(&self, keyed: &Keyed, payout: &PayoutDone, notify_url: &str, now: i64) -> Option<Notify> {
            // §3.3: GET with the fields in the query string.
            let mut fields: BTreeMap<String, String> = payout_fields(&keyed.credential("mch_id"), payout)
                .into_iter()
                .map(|(k, v)| (k, json_text(&v)))
                .collect();
            fields.insert("transSuccTime".into(), (now * 1000).to_string());
            fields.insert("backType".into(), "2".into());
            Some(Notify::get(notify_url, &notify_body(fields, &keyed.credential("key")), Ack::Text(ACK)))
        }
    }

    /// A payout as §3's answers and notify show it.
    fn payout_fields(mch_id: &str, payout: &PayoutDone) -> Map<String, Value> {
        let code = match payout.status {
            TransferStatus::Pending => "1",
            TransferStatus::Succeeded => "2",
            TransferStatus::Failed => "3",
        };
        let mut f = Map::new();
        f.insert("transOrderId".into(), Value::String(payout.provider_payout_no.clone()));
        f.insert("mchId".into(), Value::String(mch_id.to_string()));
        f.insert("mchTransOrderNo".into(), Value::String(payout.payout_no.clone()));
        f.insert("amount".into(), Value::String(payout.amount.to_string()));
        f.insert("status".into(), Value::String(code.into()));
        f
    }
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
        if !verify_either_order(&fields, &key) {
            return Err("签名失败".into());
        }
        Ok(fields)
    }

    /// Checks a create request's fields as §2.1.4 lists them (or as the XxPay project's
    /// clients send them, with `channelId` for productId); returns the amount in fen.
    pub fn check_create(fields: &BTreeMap<String, String>) -> Result<i64, String> {
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if get("productId").is_empty() && get("channelId").is_empty() {
            return Err("参数格式校验错误: productId 不能为空".into());
        }
        for required in ["mchOrderNo", "currency", "amount", "notifyUrl", "subject", "body"] {
            if get(required).is_empty() {
                return Err(format!("参数格式校验错误: {required} 不能为空"));
            }
        }
        if get("productId") == "8000" && get("param1").split(';').filter(|p| !p.is_empty()).count() != 3 {
            return Err("参数格式校验错误: 网银支付 param1 须为 汇款人银行代码;汇款人户名;汇款人帐户号".into());
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
        channel_scene(key)
    }

    /// The channel and scene of an XxPay project `channelId`.
    pub fn channel_id_scene(channel_id: &str) -> Option<(Channel, Scene)> {
        let (_, key) = CHANNEL_IDS.iter().find(|(id, _)| *id == channel_id)?;
        channel_scene(key)
    }

    fn channel_scene(key: &str) -> Option<(Channel, Scene)> {
        let (channel, scene) = key.split_once('/')?;
        Some((channel.parse().ok()?, scene.parse().ok()?))
    }

    /// A signed SUCCESS answer as XxPay servers make it (`XXPayUtil.makeRetData`): retCode and
    /// resCode SUCCESS, an empty retMsg, signed over every field but `payParams`.
    pub fn success(mut fields: Map<String, Value>, key: &str) -> String {
        fields.insert("retCode".into(), Value::String("SUCCESS".into()));
        fields.insert("resCode".into(), Value::String("SUCCESS".into()));
        fields.insert("retMsg".into(), Value::String(String::new()));
        let text: BTreeMap<String, String> =
            fields.iter().filter(|(k, _)| k.as_str() != "payParams").map(|(k, v)| (k.clone(), json_text(v))).collect();
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
        create_answer_with(pay_order_id, [("payParams", pay_params)], key)
    }

    /// The signed create answer with the given fields beside payOrderId (XxPay's own servers
    /// answer WX_NATIVE with a top-level `codeUrl`, Alipay with `payUrl`).
    pub fn create_answer_with<'a>(
        pay_order_id: &str,
        fields: impl IntoIterator<Item = (&'a str, Value)>,
        key: &str,
    ) -> String {
        let mut answer = Map::new();
        answer.insert("payOrderId".into(), Value::String(pay_order_id.to_string()));
        for (k, v) in fields {
            answer.insert(k.to_string(), v);
        }
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
    use crate::dialects::ProviderConfig;
    use crate::secret::Secret;

    fn account() -> Xxpay {
        let mut provider = ProviderConfig::with_defaults("xxpay-test", "xxpay");
        for (k, v) in [("mch_id", "20001222"), ("app_id", "0ae8be35ff634e2abe94f5f32f6d5c4f"), ("key", "K3y")] {
            provider.credentials.insert(k.into(), Secret::new(v));
        }
        Xxpay::from_config(&provider).unwrap()
    }

    use crate::test_support::payment;

    #[test]
    fn json_fields_read_as_a_map_of_values_would() {
        // The answer read field by field must give what reading it into a `Value` gave: strings
        // as they are, numbers as serde_json writes them, null empty, nested values as compact
        // JSON (and kept), the last of a repeated field, fields in key order.
        let body = br#"{"z":"last","amount":19800,"rate":1.50,"ok":true,"none":null,"payParams":{"b":1,"a":[1,"x"]},"z":"again","a":""}"#;
        let (fields, nested) = json_fields(body).unwrap();
        let got: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a", ""),
                ("amount", "19800"),
                ("none", ""),
                ("ok", "true"),
                ("payParams", r#"{"a":[1,"x"],"b":1}"#),
                ("rate", "1.5"),
                ("z", "again"),
            ]
        );
        assert_eq!(nested.len(), 1);
        assert_eq!(nested["payParams"], serde_json::json!({"a": [1, "x"], "b": 1}));
        // An object followed by a plain value under the same name: the signed (last) value
        // stands, and no earlier object is kept to be used unsigned.
        let (fields, nested) = json_fields(br#"{"payParams":{"payUrl":"https://evil"},"payParams":"x"}"#).unwrap();
        assert_eq!(fields["payParams"], "x");
        assert!(nested.is_empty());
        // Two objects under one name: the last one, in the fields and in the nested values.
        let (fields, nested) = json_fields(br#"{"payParams":{"a":1},"payParams":{"b":2}}"#).unwrap();
        assert_eq!(fields["payParams"], r#"{"b":2}"#);
        assert_eq!(nested["payParams"], serde_json::json!({"b": 2}));
        assert_eq!(json_fields(b"[1,2]").unwrap_err(), "answer is not a JSON object");
        assert_eq!(json_fields(br#""text""#).unwrap_err(), "answer is not a JSON object");
        for not_json in [&b"[1,"[..], b"[}", br#""x" trailing"#, b"123abc", b"true false"] {
            assert!(json_fields(not_json).unwrap_err().starts_with("answer is not JSON: "), "{not_json:?}");
        }
        assert!(json_fields(br#"{"a":"1"} trailing"#).unwrap_err().starts_with("answer is not JSON: "));
        assert!(json_fields(br#"{"a":"1""#).unwrap_err().starts_with("answer is not JSON: "));
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
            client_ip: Some("210.73.10.148"),
            ..CreateOrder::new(&p, "https://pay.example.edu/callbacks/xxpay-test")
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
        let order = CreateOrder::new(&p, "");
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

    /// Fields as a map of strings.
    fn text_fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Vectors made by the public XxPay project's own `PayDigestUtil.getSign` (run as
    /// published, key "xxpay-key-a", mchId "1001"): its demo merchant's create request, its
    /// server's create answer and its merchant notify.
    #[test]
    fn the_xxpay_projects_own_signatures_verify() {
        let key = "xxpay-key-a";
        let request = text_fields(&[
            ("amount", "1"),
            ("body", "XXPAY-test-body"),
            ("channelId", "WX_NATIVE"),
            ("clientIp", "211.94.116.218"),
            ("currency", "cny"),
            ("device", "WEB"),
            ("extra", r#"{"productId":"120989823"}"#),
            ("mchId", "1001"),
            ("mchOrderNo", "1700000000000"),
            ("notifyUrl", "http://127.0.0.1:18080/goods/payNotify"),
            ("param1", ""),
            ("param2", ""),
            ("subject", "XXPAY-test"),
            ("sign", "12B7DC4CA489B8BE8F8BBA5DC9956BA9"),
        ]);
        assert_eq!(sign(&request, key), "12B7DC4CA489B8BE8F8BBA5DC9956BA9");
        assert_eq!(xxpay_code_string_to_sign(&request, key), string_to_sign(&request, key), "same order");
        // The demo's bytes: params= with the JSON not URL-encoded, mchOrderNo a JSON number.
        let body = br#"params={"amount":1,"mchId":"1001","mchOrderNo":1700000000000,"subject":"XXPAY-test","sign":"12B7DC4CA489B8BE8F8BBA5DC9956BA9","body":"XXPAY-test-body","param1":"","param2":"","clientIp":"211.94.116.218","extra":"{\"productId\":\"120989823\"}","notifyUrl":"http://127.0.0.1:18080/goods/payNotify","currency":"cny","device":"WEB","channelId":"WX_NATIVE"}"#;
        let fields = provider::read_request(body, |m| (m == "1001").then(|| key.into())).unwrap();
        assert_eq!(fields["mchOrderNo"], "1700000000000");

        // Its server's WX_NATIVE create answer (makeRetData: every field but payParams).
        let answer = r#"{"codeUrl":"weixin://wxpay/bizpayurl?pr=AbCdEfG","payOrderId":"P0020231114221320000000","sign":"BEC1391B51ABC46C5A6728A343557487","resCode":"SUCCESS","prepayId":"wx14221320123456789","retCode":"SUCCESS","retMsg":""}"#;
        let mut p = ProviderConfig::with_defaults("xxpay-code", "xxpay");
        for (k, v) in [("mch_id", "1001"), ("app_id", "app"), ("key", key)] {
            p.credentials.insert(k.into(), Secret::new(v));
        }
        let x = Xxpay::from_config(&p).unwrap();
        let mut payment = payment();
        payment.channel = crate::model::Channel::Wechat;
        let order = CreateOrder::new(&payment, "");
        let created = x.read_create(&order, ProviderResponse { status: 200, body: answer.as_bytes() }).unwrap();
        assert_eq!(
            created.action,
            Action::QrCode { qr_code: "weixin://wxpay/bizpayurl?pr=AbCdEfG".into(), amount: None }
        );
        let signed_business_failure = r#"{"errCodeDes":"调用微信支付失败","errCode":"0111","sign":"6670B5F2DFE4F415150D5C233AAEF395","resCode":"FAIL","retCode":"SUCCESS","retMsg":""}"#;
        assert_eq!(
            x.read_create(&order, ProviderResponse { status: 200, body: signed_business_failure.as_bytes() }),
            Err(DialectError::rejected("0111", "调用微信支付失败"))
        );

        // Its merchant notify: a POST whose fields are all in the query string.
        let query = "payOrderId=P0020231114221320000000&amount=1&mchId=1001&mchOrderNo=1700000000000&subject=XXPAY+%E6%B5%8B%E8%AF%95&paySuccTime=1699971260000&sign=7A7D6C3931CC40705C926EEAE4540E85&channelOrderNo=4200000001202311141234567890&backType=2&param1=&param2=&clientIp=211.94.116.218&currency=cny&device=WEB&channelId=WX_NATIVE&status=2";
        let inbound =
            InboundHttp { method: "POST", query, content_type: "application/x-www-form-urlencoded", body: b"" };
        let CallbackReport::Payment(r) = x.read_callback(inbound, 0).unwrap() else { panic!("a payment notify") };
        assert_eq!((r.payment_id.as_str(), r.status, r.amount), ("1700000000000", PaymentStatus::Succeeded, Some(1)));
    }

    #[test]
    fn answer_signatures_follow_the_accounts_rule_only() {
        let pay_params = serde_json::json!({"payUrl": "https://qr.alipay.com/bax07593fh9xkcrimmy8203b"});
        let server_signed = provider::create_answer("P01", pay_params.clone(), "K3y");
        // The same answer with payParams inside the signature.
        let mut all: Map<String, Value> = serde_json::from_str(&server_signed).unwrap();
        all.remove("sign");
        let text: BTreeMap<String, String> = all.iter().map(|(k, v)| (k.clone(), json_text(v))).collect();
        all.insert("sign".into(), Value::String(sign(&text, "K3y")));
        let all_signed = Value::Object(all).to_string();

        let strict = {
            let mut p = ProviderConfig::with_defaults("xxpay-strict", "xxpay");
            for (k, v) in [("mch_id", "20001222"), ("app_id", "a"), ("key", "K3y")] {
                p.credentials.insert(k.into(), Secret::new(v));
            }
            p.options.insert("answer_sign".into(), "all_fields".into());
            Xxpay::from_config(&p).unwrap()
        };
        let default = account();
        let p = payment();
        let order = CreateOrder::new(&p, "");
        let read =
            |x: &Xxpay, body: &str| x.read_create(&order, ProviderResponse { status: 200, body: body.as_bytes() });
        assert!(read(&default, &server_signed).is_ok());
        assert!(read(&default, &all_signed).is_err(), "not decided message by message");
        assert!(read(&strict, &all_signed).is_ok());
        assert!(read(&strict, &server_signed).is_err(), "all_fields: payParams must be signed");
        // Under xxpay_server the payUrl is not covered: a changed one still verifies (which is
        // why all_fields exists); under all_fields it does not.
        let moved = all_signed.replace("bax07593", "evil0000");
        assert!(read(&strict, &moved).is_err());
        let options = |v: &str| {
            let mut p = ProviderConfig::with_defaults("x", "xxpay");
            for (k, v) in [("mch_id", "1"), ("app_id", "a"), ("key", "k")] {
                p.credentials.insert(k.into(), Secret::new(v));
            }
            p.options.insert("answer_sign".into(), v.into());
            Xxpay::from_config(&p).map(|_| ())
        };
        assert!(options("sometimes").unwrap_err()[0].contains("answer_sign"));
    }

    #[test]
    fn bank_payments_carry_the_payers_bank_in_param1() {
        let x = account();
        let mut p = payment();
        p.channel = crate::model::Channel::Bank;
        p.scene = Scene::Web;
        let extra: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "payer_bank_code": "HPT00001", "payer_account_name": "张三", "payer_account_no": "6222020200112233"
        }))
        .unwrap();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "https://gw/cb") };
        let CreateStep::Call(req) = x.create_payment(&order, 0).unwrap() else { panic!() };
        let fields = provider::read_request(&req.body, |_| Some("K3y".into())).unwrap();
        assert_eq!(
            (fields["productId"].as_str(), fields["param1"].as_str()),
            ("8000", "HPT00001;张三;6222020200112233")
        );
        let none = Map::new();
        let refused = x.create_payment(&CreateOrder { extra: &none, ..order }, 0);
        assert!(matches!(&refused, Err(DialectError::Invalid(m)) if m.contains("payer_bank_code")), "{refused:?}");
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
        let order = CreateOrder::new(&p, "");
        assert!(matches!(x.create_payment(&order, 0), Err(DialectError::Unsupported(_))));
    }
}
