//! zhixiao (知校聚合支付接口文档 v1.27, `shared/seeds/001_512b47c65d0826bf.txt`).
//!
//! Transport (§1.3): every call is a POST with form fields `id` (appid), `param` (the request
//! JSON, AES-encrypted, base64) and `sign = md5(id + param + appsecret)` in lowercase hex.
//! Answers are JSON `{ret_code, ret_content, sign}` where `ret_content` is the encrypted answer
//! JSON and `sign = md5(ret_code + ret_content + appsecret)`. The payment notify (2.5) arrives
//! the same way as a request: a form POST of id/param/sign.
//!
//! | operation | § | param | answer (ret_content) |
//! | --- | --- | --- | --- |
//! | create | 2.1 | body, out_trade_no, total_fee (fen), user_no, user_name, return_url, notify_url, pay_type, openid, piaoju | out_trade_no, order_id, url, sp_data |
//! | query | 2.2 | out_trade_no | out_trade_no, order_id, status, time_end |
//! | cancel | 2.3 | out_trade_no | out_trade_no, order_id |
//! | refund | 2.4 | out_trade_no, refund_fee (fen, partial allowed) | out_trade_no, order_id |
//! | notify | 2.5 | out_trade_no, order_id, time_end, user_no, user_name, uid, pay_type | none |
//!
//! Mapping: out_trade_no is payglot's payment_id, order_id the provider_trade_no, pay_type
//! 1 wechat / 2 alipay. From the create request's `extra`: `user_no`, `user_name`, `piaoju`
//! (the invoice object, passed as given). Actions: `miniapp` (wechat only; the document does
//! not support alipay mini programs) → jsapi with `sp_data`; `qr` → qr_code of the pay page
//! url; `h5`, `web`, `jsapi` → redirect to it.
//!
//! Status (2.2): 1 待支付 → pending, 2 支付成功 → succeeded, 3 支付失败 → failed. A notify means
//! paid. Neither states an amount: the order was created at the provider with the payment's
//! amount, and payglot settles on the verified word for that order. A refund answer with a
//! success code means the refund is done (there is no refund query). Payment lifetime: 1 hour.
//!
//! Where the document is loose (settings of the provider account, `options:`):
//! - `ret_code`: §1.3 says 0 is success, its example shows "1"; both are taken as success,
//!   negative codes as errors (-1 general, -2 parameters, -3 account frozen).
//! - `aes_key_encoding`: `text` (default: the key's characters are the key bytes, so the
//!   32-character test key is AES-256) or `hex` (the key is 16/24/32 bytes in hex).
//! - `aes_mode`: `cbc` (default) with `aes_iv` (16 characters; default: the first 16 bytes of
//!   the key), or `ecb`. Padding is PKCS#7. The document says only "AES+base64"; the default
//!   is what real integrations do: the vendor's own PHP base class (微微校支付接口基类, by the
//!   document's author) and a public Java client encrypt with AES-256-CBC, the key's 32
//!   characters as key and its first 16 as IV. A ciphertext printed by that Java client
//!   (`com.haohaohu.springbootdemo.util.Encode`, made with the document's test credentials)
//!   decrypts under the default and is a unit test below; ECB, a zero IV and a hex-decoded key
//!   do not decrypt it. (Another public client, aizhixin's, uses AES-128-CBC with the key's
//!   first 16 characters as key and IV; not offered.)
//! - The document prints no signature or ciphertext to check (its only answer example holds
//!   the placeholders `加密信息` and `签名`), so nothing of it is a known answer beyond the test
//!   credentials.
//! - The document gives no paths: `path_create` (default `/order/create`), `path_query`
//!   (`/order/query`), `path_cancel` (`/order/cancel`), `path_refund` (`/order/refund`),
//!   `path_identity` (`/user/identity`, 2.6) and `path_card` (`/user/card`, 2.7).
//! - The optional identity (2.6) and card-link (2.7) calls are on the merchant API as
//!   `GET /v1/identity?provider=&uid=` and `GET /v1/card-link?provider=&user_no=&school_id=`
//!   (2.7's table omits school_id, its example sends it: it is sent when given).
//! - The examples are loose JSON (bare keys, `;`); answers are read tolerantly.

use super::signing::{
    aes_decrypt, aes_encrypt, encode_form, md5_hex, parse_form, parse_loose_json, same_hex_signature, AesMode,
};
use super::ProviderConfig;
use super::{
    check_credentials, check_options, credential, field, json_text, parse_beijing_time, truncate_bytes, CallbackReply,
    CallbackReport, CreateOrder, CreateStep, Created, Dialect, DialectError, InboundHttp, PaymentReport,
    ProviderRequest, ProviderResponse, Refund, RefundReport, Refusal,
};
use crate::model::{Action, Channel, Payment, PaymentStatus, Scene, TransferStatus};
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const OPTIONS: &[&str] = &[
    "aes_key_encoding",
    "aes_mode",
    "aes_iv",
    "path_create",
    "path_query",
    "path_cancel",
    "path_refund",
    "path_identity",
    "path_card",
];

/// Whether an error message says the order does not exist.
fn says_not_found(message: &str) -> bool {
    let lower = message.to_lowercase();
    ["订单不存在", "订单号不存在", "订单未找到", "order not found", "order does not exist"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The envelope crypto of one account: AES key and mode, and the md5 key (appsecret).
#[derive(Clone)]
pub struct Envelope {
    pub appid: String,
    appsecret: String,
    aes_key: Vec<u8>,
    mode: AesMode,
}

impl Envelope {
    /// The envelope of an account (or front door) in routes.yaml.
    pub fn for_account(p: &ProviderConfig) -> Result<Self, Vec<String>> {
        let c = |k: &str| crate::dialects::credential(p, k);
        Self::new(&c("appid"), &c("appsecret"), &c("aes_key"), &p.options)
    }

    /// Builds the envelope from credentials and the AES options (see the module doc).
    pub fn new(
        appid: &str,
        appsecret: &str,
        aes_key: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let key = match options.get("aes_key_encoding").map(String::as_str).unwrap_or("text") {
            "text" => aes_key.as_bytes().to_vec(),
            "hex" => hex::decode(aes_key).unwrap_or_else(|_| {
                errors.push("credentials.aes_key: is not hex (options.aes_key_encoding is hex)".into());
                Vec::new()
            }),
            other => {
                errors.push(format!("options.aes_key_encoding: {other:?} is not text or hex"));
                Vec::new()
            }
        };
        if errors.is_empty() && ![16, 24, 32].contains(&key.len()) {
            errors.push(format!("credentials.aes_key: gives {} key bytes; AES needs 16, 24 or 32", key.len()));
        }
        let mode = match options.get("aes_mode").map(String::as_str).unwrap_or("cbc") {
            "ecb" => AesMode::Ecb,
            "cbc" => {
                let iv_text = options
                    .get("aes_iv")
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_else(|| key.iter().copied().take(16).collect());
                match <[u8; 16]>::try_from(iv_text.as_slice()) {
                    Ok(iv) => AesMode::Cbc(iv),
                    Err(_) => {
                        errors.push("options.aes_iv: must be 16 characters".into());
                        AesMode::Ecb
                    }
                }
            }
            other => {
                errors.push(format!("options.aes_mode: {other:?} is not ecb or cbc"));
                AesMode::Ecb
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Envelope { appid: appid.into(), appsecret: appsecret.into(), aes_key: key, mode })
    }

    /// base64(AES(json)).
    pub fn seal(&self, json: &Value) -> String {
        let sealed = aes_encrypt(&self.aes_key, self.mode, json.to_string().as_bytes()).expect("key length checked");
        base64::engine::general_purpose::STANDARD.encode(sealed)
    }

    /// Reverses `seal`.
    pub fn open(&self, text: &str) -> Result<Value, String> {
        let raw =
            base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
        let plain = aes_decrypt(&self.aes_key, self.mode, &raw)?;
        parse_loose_json(&String::from_utf8_lossy(&plain))
    }

    /// md5(parts... + appsecret), lowercase.
    pub fn sign(&self, parts: &[&str]) -> String {
        let mut text = parts.concat();
        text.push_str(&self.appsecret);
        md5_hex(text.as_bytes())
    }

    /// The form body of a request (or a notify): id, param, sign.
    pub fn request_body(&self, content: &Value) -> String {
        let param = self.seal(content);
        let sign = self.sign(&[&self.appid, &param]);
        encode_form([("id", self.appid.as_str()), ("param", param.as_str()), ("sign", sign.as_str())])
    }

    /// Verifies a request form (id/param/sign) and opens its param.
    pub fn read_request(&self, body: &[u8]) -> Result<Value, String> {
        let fields: BTreeMap<String, String> = parse_form(body).into_iter().collect();
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if get("id") != self.appid {
            return Err(format!("id {:?} is not this account's", get("id")));
        }
        if !same_hex_signature(&self.sign(&[get("id"), get("param")]), get("sign")) {
            return Err("signature does not verify".into());
        }
        self.open(get("param"))
    }

    /// An answer: `{ret_code, ret_content, sign}` with the content sealed (or a plain message
    /// for errors).
    pub fn answer(&self, ret_code: i64, content: Option<&Value>, error_message: &str) -> String {
        let ret_content = match content {
            Some(c) => self.seal(c),
            None => error_message.to_string(),
        };
        let code = ret_code.to_string();
        let sign = self.sign(&[&code, &ret_content]);
        json!({"ret_code": ret_code, "ret_content": ret_content, "sign": sign}).to_string()
    }
}

pub struct Zhixiao {
    envelope: Envelope,
    paths: [String; 6],
}

impl std::fmt::Debug for Zhixiao {
    // Keys never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zhixiao")
            .field("appid", &self.envelope.appid)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl Zhixiao {
    pub fn from_config(provider: &ProviderConfig) -> Result<Self, Vec<String>> {
        let mut errors = check_credentials(provider, &["appid", "appsecret", "aes_key"], &[]);
        errors.extend(check_options(provider, OPTIONS));
        if !errors.is_empty() {
            return Err(errors);
        }
        let envelope = Envelope::new(
            &credential(provider, "appid"),
            &credential(provider, "appsecret"),
            &credential(provider, "aes_key"),
            &provider.options,
        )?;
        let path = |k: &str, d: &str| provider.options.get(k).cloned().unwrap_or_else(|| d.to_string());
        Ok(Zhixiao {
            envelope,
            paths: [
                path("path_create", "/order/create"),
                path("path_query", "/order/query"),
                path("path_cancel", "/order/cancel"),
                path("path_refund", "/order/refund"),
                path("path_identity", "/user/identity"),
                path("path_card", "/user/card"),
            ],
        })
    }

    fn request(&self, path: &str, content: Value) -> ProviderRequest {
        ProviderRequest {
            method: "POST",
            path: path.to_string(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: self.envelope.request_body(&content).into_bytes(),
        }
    }

    /// Verifies an answer and opens its content; error codes become `Rejected`.
    fn read_answer(&self, answer: ProviderResponse<'_>) -> Result<Value, DialectError> {
        if !(200..300).contains(&answer.status) {
            return Err(DialectError::BadMessage(format!("HTTP status {}", answer.status)));
        }
        let json = parse_loose_json(&String::from_utf8_lossy(answer.body)).map_err(DialectError::BadMessage)?;
        let code = field(&json, "ret_code");
        let content = field(&json, "ret_content");
        if !same_hex_signature(&self.envelope.sign(&[&code, &content]), &field(&json, "sign")) {
            return Err(DialectError::BadMessage("answer signature does not verify".into()));
        }
        if code != "0" && code != "1" {
            // Errors carry a message, plain or sealed.
            let message = self.envelope.open(&content).map(|v| json_text(&v)).unwrap_or(content);
            let kind = if code == "-3" { Refusal::NotEnabled } else { Refusal::Generic };
            return Err(DialectError::Rejected { code, message, kind });
        }
        if content.is_empty() {
            return Ok(Value::Object(Map::new()));
        }
        self.envelope.open(&content).map_err(|e| DialectError::BadMessage(format!("ret_content: {e}")))
    }

    fn expect_order(&self, content: &Value, payment_id: &str) -> Result<(), DialectError> {
        let no = field(content, "out_trade_no");
        if no != payment_id {
            return Err(DialectError::BadMessage(format!("answer is about order {no:?}, not {payment_id}")));
        }
        Ok(())
    }
}

/// zhixiao's query status (2.2) as the canonical status.
pub fn payment_status(code: &str) -> PaymentStatus {
    match code.trim() {
        "2" => PaymentStatus::Succeeded,
        "3" => PaymentStatus::Failed,
        _ => PaymentStatus::Pending,
    }
}

impl Dialect for Zhixiao {
    fn dialect(&self) -> &'static str {
        "zhixiao"
    }

    fn create_payment(&self, order: &CreateOrder<'_>, _now: i64) -> Result<CreateStep, DialectError> {
        let p = order.payment;
        let pay_type = match p.channel {
            Channel::Wechat => 1,
            Channel::Alipay => 2,
            other => return Err(DialectError::Unsupported(format!("zhixiao takes wechat and alipay, not {other}"))),
        };
        if p.scene == Scene::Barcode || (p.scene == Scene::Miniapp && p.channel != Channel::Wechat) {
            return Err(DialectError::Unsupported(format!("zhixiao does not offer {}/{}", p.channel, p.scene)));
        }
        if !p.currency.eq_ignore_ascii_case("CNY") {
            return Err(DialectError::Unsupported(format!("currency {} (zhixiao takes CNY only)", p.currency)));
        }
        let body = if p.description.is_empty() { &p.subject } else { &p.description };
        let mut c = json!({
            "body": truncate_bytes(body, 128),
            "out_trade_no": p.payment_id,
            "total_fee": p.amount.to_string(),
            "notify_url": order.callback_url,
            "pay_type": pay_type,
        });
        if let Some(url) = &p.return_url {
            c["return_url"] = json!(url);
        }
        if p.scene == Scene::Miniapp {
            c["openid"] = json!(order.openid.unwrap_or_default());
        }
        for key in ["user_no", "user_name"] {
            if let Some(v) = order.extra_str(key) {
                c[key] = json!(v);
            }
        }
        if let Some(piaoju) = order.extra.get("piaoju") {
            if !piaoju.is_object() {
                return Err(DialectError::Invalid("extra.piaoju must be an object (the invoice data of §2.1)".into()));
            }
            c["piaoju"] = piaoju.clone();
        }
        Ok(CreateStep::Call(self.request(&self.paths[0], c)))
    }

    fn read_create(&self, order: &CreateOrder<'_>, answer: ProviderResponse<'_>) -> Result<Created, DialectError> {
        let content = self.read_answer(answer)?;
        self.expect_order(&content, &order.payment.payment_id)?;
        let url = field(&content, "url");
        let action = match order.payment.scene {
            Scene::Miniapp => {
                let sp = match content.get("sp_data") {
                    Some(Value::String(s)) => parse_loose_json(s).unwrap_or(Value::Null),
                    Some(v) => v.clone(),
                    None => Value::Null,
                };
                let params: BTreeMap<String, String> = sp
                    .as_object()
                    .ok_or_else(|| DialectError::BadMessage("mini program answer has no sp_data".into()))?
                    .iter()
                    .map(|(k, v)| (k.clone(), json_text(v)))
                    .collect();
                Action::Jsapi { params }
            }
            _ if url.is_empty() => return Err(DialectError::BadMessage("answer has no url".into())),
            Scene::Qr => Action::QrCode { qr_code: url, amount: None },
            _ => Action::Redirect { url },
        };
        Ok(Created {
            provider_trade_no: Some(field(&content, "order_id")).filter(|s| !s.is_empty()),
            action,
            status: PaymentStatus::Pending,
            expires_at: None,
        })
    }

    fn query_payment(&self, payment: &Payment, _now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request(&self.paths[1], json!({"out_trade_no": payment.payment_id})))
    }

    fn read_query(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<PaymentReport, DialectError> {
        let content = match self.read_answer(answer) {
            // -1 is the general error (2.2 defines no "not found"); its message says which.
            Err(DialectError::Rejected { code, message, .. }) if code == "-1" && says_not_found(&message) => {
                return Err(DialectError::UnknownOrder(format!("-1 {message}")))
            }
            other => other?,
        };
        self.expect_order(&content, &payment.payment_id)?;
        let status = payment_status(&field(&content, "status"));
        Ok(PaymentReport {
            payment_id: payment.payment_id.clone(),
            provider_trade_no: Some(field(&content, "order_id")).filter(|s| !s.is_empty()),
            status,
            amount: None,
            paid_amount: None,
            paid_at: if status == PaymentStatus::Succeeded {
                parse_beijing_time(&field(&content, "time_end"))
            } else {
                None
            },
        })
    }

    fn read_callback(&self, callback: InboundHttp<'_>, _now: i64) -> Result<CallbackReport, DialectError> {
        let content = self.envelope.read_request(callback.body).map_err(DialectError::BadMessage)?;
        let payment_id = field(&content, "out_trade_no");
        if payment_id.is_empty() {
            return Err(DialectError::BadMessage("notify has no out_trade_no".into()));
        }
        Ok(CallbackReport::Payment(PaymentReport {
            payment_id,
            provider_trade_no: Some(field(&content, "order_id")).filter(|s| !s.is_empty()),
            status: PaymentStatus::Succeeded,
            amount: None,
            paid_amount: None,
            paid_at: parse_beijing_time(&field(&content, "time_end")),
        }))
    }

    fn claimed_payment_id(&self, callback: InboundHttp<'_>) -> Option<String> {
        // The param is sealed: only a message that opens with this account's AES key names
        // an order (its signature is what failed).
        let param = parse_form(callback.body).into_iter().find(|(k, _)| k == "param")?.1;
        Some(field(&self.envelope.open(&param).ok()?, "out_trade_no")).filter(|s| !s.is_empty())
    }

    fn callback_reply(&self, accepted: bool) -> CallbackReply {
        let body = if accepted { self.envelope.answer(0, None, "") } else { self.envelope.answer(-1, None, "fail") };
        CallbackReply { status: 200, content_type: "application/json", body }
    }

    fn order_lifetime(&self) -> Option<std::time::Duration> {
        // §2.1: 支付有效时间为 1 小时.
        Some(std::time::Duration::from_secs(3600))
    }

    fn close_payment(&self, payment: &Payment, _now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request(&self.paths[2], json!({"out_trade_no": payment.payment_id})))
    }

    fn read_close(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<(), DialectError> {
        let content = self.read_answer(answer)?;
        self.expect_order(&content, &payment.payment_id)
    }

    fn identity(&self, uid: &str, _now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request(&self.paths[4], json!({"uid": uid})))
    }

    fn read_identity(&self, answer: ProviderResponse<'_>) -> Result<Value, DialectError> {
        self.read_answer(answer)
    }

    fn card_link(&self, school_id: &str, user_no: &str, _now: i64) -> Result<ProviderRequest, DialectError> {
        let mut c = json!({"user_no": user_no});
        if !school_id.is_empty() {
            c["school_id"] = json!(school_id);
        }
        Ok(self.request(&self.paths[5], c))
    }

    fn read_card_link(&self, answer: ProviderResponse<'_>) -> Result<Value, DialectError> {
        let content = self.read_answer(answer)?;
        if field(&content, "schema_url").is_empty() {
            return Err(DialectError::BadMessage("answer has no schema_url".into()));
        }
        Ok(content)
    }

    fn refund(&self, payment: &Payment, refund: &Refund, _now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request(
            &self.paths[3],
            json!({"out_trade_no": payment.payment_id, "refund_fee": refund.amount.to_string()}),
        ))
    }

    fn read_refund(&self, refund: &Refund, answer: ProviderResponse<'_>) -> Result<RefundReport, DialectError> {
        let content = self.read_answer(answer)?;
        self.expect_order(&content, &refund.payment_id)?;
        Ok(RefundReport { provider_refund_no: None, status: TransferStatus::Succeeded })
    }
}

/// zhixiao in the registry.
pub const SPEC: super::DialectSpec = super::DialectSpec {
    name: "zhixiao",
    account_id: "appid",
    public_credentials: &["appid"],
    build: |p| Ok(std::sync::Arc::new(Zhixiao::from_config(p)?)),
    side: &provider::Side,
    payouts: false,
    products: false,
    cli_sign,
    endpoints: &[
        ("POST", "/order/create"),
        ("POST", "/order/query"),
        ("POST", "/order/cancel"),
        ("POST", "/order/refund"),
        ("POST", "/user/identity"),
        ("POST", "/user/card"),
    ],
    example_credentials: &[
        ("appid", "partner1"),
        ("appsecret", "weiweixiao"),
        ("aes_key", "AD42F6697B035B7580E4FEF93BE20B4D"),
    ],
    example_options: &[],
};

/// `payglot sign zhixiao`: id= and param= (as sent, encrypted).
fn cli_sign(args: &[String], key: &str) -> (String, String) {
    let map: BTreeMap<String, String> = super::arg_pairs(args).into_iter().collect();
    let get = |k: &str| map.get(k).cloned().unwrap_or_default();
    let (id, param) = (get("id"), get("param"));
    (format!("{id}{param}<key>"), md5_hex(format!("{id}{param}{key}").as_bytes()))
}

/// The provider side (sandbox and front door): answers and the notify, sealed with the
/// account's envelope.
pub mod provider {
    use super::*;
    use crate::dialects::provider_side::{
        keep, url_scenes, Answer, Call, CallKind, Fail, Failure, Keyed, Keys, Lookup, OrderRequest, Outcome,
        RefundRequest, Request,
    };
    use crate::dialects::{beijing_time, Ack, Notify, ProviderOrder};
    use sha2::{Digest, Sha256};

    /// The provider side of zhixiao: id/param/sign forms opened and verified with the account's
    /// appid, appsecret and AES settings, answered `{ret_code, ret_content, sign}` sealed the same
    /// way; the notify is such a form too.
    ///
    /// Refunds (2.4) carry no refund number, nonce or timestamp, so a captured refund request
    /// could be sent again and again: each refund is named after its exact bytes (a digest of the
    /// request body), so a byte-identical request is the same refund, answered again, never
    /// refunded twice. The cost: two equal refunds of one order cannot be told apart (their
    /// requests are identical); the merchant refunds the sum at once instead.
    pub struct Side;

    impl crate::dialects::ProviderSide for Side {
        fn read(&self, request: &Request<'_>, keys: Keys<'_>, _now: i64) -> Result<Call, Answer> {
            if request.method != "POST" {
                return Err(Answer::text(405, "POST only"));
            }
            let form: BTreeMap<String, String> = parse_form(request.body).into_iter().collect();
            let appid = form.get("id").cloned().unwrap_or_default();
            let unknown =
                |m: &str| Answer::json(serde_json::json!({"ret_code": -1, "ret_content": m, "sign": ""}).to_string());
            let keyed = keys(&appid).ok_or_else(|| unknown("appid 不存在"))?;
            let env = Envelope::for_account(&keyed.account).map_err(|_| unknown("appid 配置错误"))?;
            let content =
                env.read_request(request.body).map_err(|_| Answer::json(env.answer(-2, None, "参数校验失败")))?;
            let invalid = |m: &str| Answer::json(env.answer(-2, None, m));
            let out_trade_no = field(&content, "out_trade_no");
            let kind = match request.path {
                "/order/create" => {
                    let fee = check_create(&content).map_err(|m| invalid(&m))?;
                    let channel = match field(&content, "pay_type").as_str() {
                        "1" => Channel::Wechat,
                        "2" => Channel::Alipay,
                        _ => keyed.channel.unwrap_or(Channel::Wechat),
                    };
                    let openid = field(&content, "openid");
                    let scenes = if openid.is_empty() {
                        url_scenes(keyed.scene.unwrap_or(Scene::H5))
                    } else {
                        vec![Scene::Miniapp]
                    };
                    let mut order = OrderRequest {
                        order_no: out_trade_no,
                        amount: fee,
                        subject: field(&content, "body"),
                        channel: Some(channel),
                        scenes,
                        notify_url: field(&content, "notify_url"),
                        return_url: field(&content, "return_url"),
                        openid: Some(openid).filter(|o| !o.is_empty()),
                        ..Default::default()
                    };
                    for k in ["pay_type", "user_no", "user_name"] {
                        keep(&mut order.keep, k, &field(&content, k));
                    }
                    for k in ["user_no", "user_name", "piaoju"] {
                        if let Some(v) = content.get(k).filter(|v| !v.is_null()) {
                            order.extra.insert(k.into(), v.clone());
                        }
                    }
                    CallKind::Create(order)
                }
                "/order/query" => CallKind::Query { lookup: Lookup::MerchantNo(out_trade_no), notify_again: false },
                "/order/cancel" => CallKind::Cancel(Lookup::MerchantNo(out_trade_no)),
                "/order/refund" => {
                    let amount =
                        field(&content, "refund_fee").parse::<i64>().map_err(|_| invalid("refund_fee 错误"))?;
                    let refund_no = format!("zr{}", &hex::encode(Sha256::digest(request.body))[..30]);
                    CallKind::Refund(RefundRequest {
                        lookup: Lookup::MerchantNo(out_trade_no),
                        refund_no,
                        amount,
                        reason: None,
                        replayable: true,
                    })
                }
                "/user/identity" if !field(&content, "uid").is_empty() => {
                    CallKind::Identity { uid: field(&content, "uid") }
                }
                "/user/card" if !field(&content, "user_no").is_empty() => {
                    CallKind::CardLink { school_id: field(&content, "school_id"), user_no: field(&content, "user_no") }
                }
                "/user/identity" | "/user/card" => return Err(invalid("参数校验失败")),
                _ => return Err(Answer::text(404, "no such zhixiao endpoint")),
            };
            Ok(Call::new(appid, kind))
        }

        fn answer(&self, keyed: &Keyed, call: &Call, outcome: Result<Outcome, Failure>, _now: i64) -> Answer {
            let Ok(env) = Envelope::for_account(&keyed.account) else {
                return Answer::json(
                    serde_json::json!({"ret_code": -1, "ret_content": "appid 配置错误", "sign": ""}).to_string(),
                );
            };
            let content = match (outcome, &call.kind) {
                (Ok(Outcome::Order(placed)), CallKind::Create(_)) => {
                    let mut c = serde_json::json!({"out_trade_no": placed.order.merchant_order_no, "order_id": placed.order.provider_no, "url": placed.pay_url});
                    if let Some(Action::Jsapi { params }) = &placed.action {
                        c["sp_data"] = Value::String(serde_json::to_string(params).unwrap_or_default());
                    }
                    c
                }
                (Ok(Outcome::Order(placed)), CallKind::Query { .. }) => query_content(&placed.order),
                (Ok(Outcome::Order(placed)), _) => {
                    serde_json::json!({"out_trade_no": placed.order.merchant_order_no, "order_id": placed.order.provider_no})
                }
                (Ok(Outcome::Refund(done)), _) => {
                    serde_json::json!({"out_trade_no": done.order_no, "order_id": done.order_provider_no})
                }
                (Ok(Outcome::Identity(v) | Outcome::CardLink(v)), _) => v,
                (Err(f), _) => {
                    let code = if f.kind == Fail::Invalid { -2 } else { -1 };
                    let message = if f.kind == Fail::NotFound { "订单不存在".to_string() } else { f.message };
                    return Answer::json(env.answer(code, None, &message));
                }
                (Ok(_), _) => return Answer::json(env.answer(-1, None, "not offered")),
            };
            Answer::json(env.answer(0, Some(&content), ""))
        }

        fn notify(&self, keyed: &Keyed, order: &ProviderOrder, _now: i64) -> Option<Notify> {
            // The envelope was checked when the account was configured.
            Envelope::for_account(&keyed.account).ok().map(|env| notify(order, &env))
        }

        fn ack_body(&self) -> &'static str {
            r#"{"ret_code":0,"ret_content":"","sign":""}"#
        }

        fn order_prefix(&self) -> &'static str {
            "1464"
        }

        fn simulated(&self, call: &Call) -> Option<Value> {
            match &call.kind {
                CallKind::Identity { .. } => Some(
                    serde_json::json!({"open_id": "LkEb9zWC5xGAAAAWPwAVGQ", "user_no": "20140548", "user_name": "张三", "sex": "1", "identity_type": "1"}),
                ),
                CallKind::CardLink { school_id, user_no } => Some(
                    serde_json::json!({"school_id": school_id, "user_no": user_no, "user_name": "张三", "sex": "1",
                    "identity_type": "1", "schema_url": "https://ds.alipay.com/?scheme=alipays%3a%2f%2fplatformapi%2fstartapp%3fappId%3d20000021"}),
                ),
                _ => None,
            }
        }
    }

    /// Checks a create request's content (2.1); returns total_fee in fen.
    pub fn check_create(content: &Value) -> Result<i64, String> {
        for required in ["body", "out_trade_no", "total_fee", "notify_url"] {
            if field(content, required).is_empty() {
                return Err(format!("{required} 不能为空"));
            }
        }
        if field(content, "body").len() > 128 || field(content, "out_trade_no").len() > 40 {
            return Err("参数过长".into());
        }
        match field(content, "total_fee").parse::<i64>() {
            Ok(fee) if fee > 0 => Ok(fee),
            _ => Err("total_fee 错误".into()),
        }
    }

    /// 2.2's answer content: status 1 待支付, 2 支付成功, 3 支付失败 (closed orders too).
    pub fn query_content(order: &ProviderOrder) -> Value {
        let status = match order.status {
            PaymentStatus::Succeeded => "2",
            PaymentStatus::Failed | PaymentStatus::Closed => "3",
            PaymentStatus::Pending => "1",
        };
        let mut c = serde_json::json!({"out_trade_no": order.merchant_order_no, "order_id": order.provider_no, "status": status});
        if let Some(at) = order.paid_at {
            c["time_end"] = serde_json::json!(beijing_time(at));
        }
        c
    }

    /// The payment notify (2.5): a sealed, signed form POST; ack ret_code 0. `fields` may
    /// hold the create request's user_no, user_name and pay_type.
    pub fn notify(order: &ProviderOrder, envelope: &Envelope) -> Notify {
        let saved = |k: &str| order.fields.get(k).cloned().unwrap_or_default();
        let mut content = serde_json::json!({
            "out_trade_no": order.merchant_order_no,
            "order_id": order.provider_no,
            "time_end": beijing_time(order.paid_at.unwrap_or_default()),
            "uid": order.fields.get("uid").cloned().unwrap_or_else(|| "2088612279536603".into()),
            "pay_type": order.fields.get("pay_type").filter(|t| !t.is_empty()).cloned().unwrap_or_else(|| "2".into()),
        });
        for k in ["user_no", "user_name"] {
            if !saved(k).is_empty() {
                content[k] = Value::String(saved(k));
            }
        }
        Notify {
            method: "POST",
            url: order.notify_url.clone(),
            content_type: Some("application/x-www-form-urlencoded"),
            body: envelope.request_body(&content).into_bytes(),
            ack: Ack::JsonField("ret_code", "0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    /// The document's test credentials (§1.3).
    fn account(options: &[(&str, &str)]) -> Zhixiao {
        let mut p = ProviderConfig::with_defaults("zx", "zhixiao");
        p.credentials.insert("appid".into(), Secret::new("partner1"));
        p.credentials.insert("appsecret".into(), Secret::new("weiweixiao"));
        p.credentials.insert("aes_key".into(), Secret::new("AD42F6697B035B7580E4FEF93BE20B4D"));
        for (k, v) in options {
            p.options.insert(k.to_string(), v.to_string());
        }
        Zhixiao::from_config(&p).unwrap()
    }

    /// A create request's `param` as a public Java client of zhixiao printed it
    /// (`com.haohaohu.springbootdemo.util.Encode`), sealed with the document's test key:
    /// fixed peer bytes that payglot did not produce.
    const JAVA_CLIENT_PARAM: &str = "U9qTuhXZ7nrQtNkfNPb6KpozO38WQ8oBBhNbaHfJSbfh7pqn4IYYoeUQC4ujAcuDmyTTA5PF0XV963qkM0MbhhwRXAymJfCWo5MYN5No/dW2FmK+bf1cLfS3lD5+gPURF7U1yTtS3VrCJrmSdcdMqmJy5yepLTCTkefBbhcKqZy54+xWIasdZ+BlqDO2PutSQOyDjXeGGfYso2FLvUb7Bv/EFSlTJdpeCobxGo7Aw8vkM93Fe7YuKtnBRS7IHOAnmx97J3PEeBgieGh047yv3U5ouKy/t+a+a5hTftkxnDE=";

    #[test]
    fn a_real_clients_ciphertext_opens_under_the_default_envelope() {
        let env =
            Envelope::new("partner1", "weiweixiao", "AD42F6697B035B7580E4FEF93BE20B4D", &Default::default()).unwrap();
        let content = env.open(JAVA_CLIENT_PARAM).unwrap();
        assert_eq!(content["out_trade_no"], "29152154523069546710");
        assert_eq!((content["total_fee"].as_str(), content["pay_type"].as_i64()), (Some("1"), Some(1)));
        assert_eq!(content["body"], "测试内容");
        // The same request, as that client signs it: md5(id + param + appsecret).
        assert_eq!(env.sign(&["partner1", JAVA_CLIENT_PARAM]), "49280c466dac632e93a9975c54733806");
        let form = encode_form([
            ("id", "partner1"),
            ("param", JAVA_CLIENT_PARAM),
            ("sign", "49280c466dac632e93a9975c54733806"),
        ]);
        assert_eq!(env.read_request(form.as_bytes()).unwrap(), content, "the provider side takes it");
        let ecb = [("aes_mode".to_string(), "ecb".to_string())].into_iter().collect();
        let ecb = Envelope::new("partner1", "weiweixiao", "AD42F6697B035B7580E4FEF93BE20B4D", &ecb).unwrap();
        assert!(ecb.open(JAVA_CLIENT_PARAM).is_err(), "not ECB");
    }

    #[test]
    fn requests_are_sealed_and_signed_with_the_test_credentials() {
        let z = account(&[]);
        let p = crate::test_support::payment();
        let extra: Map<String, Value> = serde_json::from_value(
            json!({"user_no": "2013141516", "piaoju": {"payer_type": 1, "payer_name": "小明", "phone": "13000000000"}}),
        )
        .unwrap();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "https://gw/callbacks/zx") };
        let CreateStep::Call(req) = z.create_payment(&order, 0).unwrap() else { panic!() };
        let fields: BTreeMap<String, String> = parse_form(&req.body).into_iter().collect();
        assert_eq!(fields["id"], "partner1");
        // sign = md5(id + param + appsecret), computed by hand here.
        assert_eq!(fields["sign"], md5_hex(format!("partner1{}weiweixiao", fields["param"]).as_bytes()));
        // param is AES-256-CBC (the 32-character key's bytes, its first 16 as IV) of the JSON,
        // base64.
        let raw = base64::engine::general_purpose::STANDARD.decode(&fields["param"]).unwrap();
        let plain = aes_decrypt(b"AD42F6697B035B7580E4FEF93BE20B4D", AesMode::Cbc(*b"AD42F6697B035B75"), &raw).unwrap();
        let content: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(content["total_fee"], "100");
        assert_eq!(content["out_trade_no"], p.payment_id);
        assert_eq!(content["pay_type"], 2);
        assert_eq!(content["user_no"], "2013141516");
        assert_eq!(content["piaoju"]["payer_name"], "小明");
    }

    #[test]
    fn key_encoding_and_mode_are_account_settings() {
        let hex_key = account(&[("aes_key_encoding", "hex")]);
        assert_eq!(hex_key.envelope.aes_key.len(), 16, "hex: AES-128");
        let ecb = account(&[("aes_mode", "ecb")]);
        let sealed = ecb.envelope.seal(&json!({"a": 1}));
        assert_eq!(ecb.envelope.open(&sealed).unwrap(), json!({"a": 1}));
        assert!(account(&[]).envelope.open(&sealed).is_err(), "CBC (the default) cannot read ECB");
        let mut p = ProviderConfig::with_defaults("zx", "zhixiao");
        for (k, v) in [("appid", "a"), ("appsecret", "b"), ("aes_key", "short")] {
            p.credentials.insert(k.into(), Secret::new(v));
        }
        assert!(Zhixiao::from_config(&p).unwrap_err()[0].contains("16, 24 or 32"));
        p.options.insert("aes_mood".into(), "ecb".into());
        assert!(Zhixiao::from_config(&p).unwrap_err().iter().any(|e| e.contains("options.aes_mood")));
    }

    #[test]
    fn answers_are_verified_and_both_success_codes_taken() {
        let z = account(&[]);
        let p = crate::test_support::payment();
        for code in [0, 1] {
            let body = z.envelope.answer(code, Some(&json!({"out_trade_no": p.payment_id, "order_id": "1464678934786097", "status": "2", "time_end": "2017-07-23 16:00:00"})), "");
            let r = z.read_query(&p, ProviderResponse { status: 200, body: body.as_bytes() }).unwrap();
            assert_eq!(r.status, PaymentStatus::Succeeded);
            assert_eq!(r.paid_at, Some(1_500_796_800));
        }
        let forged = z
            .envelope
            .answer(0, Some(&json!({"out_trade_no": p.payment_id, "status": "2"})), "")
            .replace("\"sign\":\"", "\"sign\":\"0");
        assert!(z.read_query(&p, ProviderResponse { status: 200, body: forged.as_bytes() }).is_err());
        let refused = z.envelope.answer(-2, None, "参数校验失败");
        assert_eq!(
            z.read_query(&p, ProviderResponse { status: 200, body: refused.as_bytes() }),
            Err(DialectError::rejected("-2", "参数校验失败"))
        );
    }

    #[test]
    fn notify_is_a_signed_sealed_form() {
        let z = account(&[]);
        let body = z.envelope.request_body(&json!({"out_trade_no": "P1", "order_id": "1464678934786097", "time_end": "2017-07-23 16:00:00", "uid": "2088", "pay_type": "2"}));
        let inbound = InboundHttp {
            method: "POST",
            query: "",
            content_type: "application/x-www-form-urlencoded",
            body: body.as_bytes(),
        };
        let CallbackReport::Payment(r) = z.read_callback(inbound, 0).unwrap() else { panic!() };
        assert_eq!((r.payment_id.as_str(), r.status), ("P1", PaymentStatus::Succeeded));
        let other =
            Envelope::new("partner1", "not-the-secret", "AD42F6697B035B7580E4FEF93BE20B4D", &BTreeMap::new()).unwrap();
        let forged = other.request_body(&json!({"out_trade_no": "P1"}));
        assert!(z.read_callback(InboundHttp { body: forged.as_bytes(), ..inbound }, 0).is_err());
        let ack: Value = serde_json::from_str(&z.callback_reply(true).body).unwrap();
        assert_eq!(ack["ret_code"], 0);
    }
}
