//! mct (`shared/seeds/003_9f6d31196de882bf.txt`, paths `/mct1/...`).
//!
//! Transport (§2.2): every call is a form POST of `open_id`, `timestamp` (unix seconds, refused
//! outside ±600 s), `data` and `sign`. `data` is the request JSON encrypted with AES-256-ECB,
//! PKCS#5 padding, key = open_key, sent as **hex** (§2.3). Answers are JSON
//! `{errcode, msg, timestamp, data, sign}` with `data` encrypted the same way.
//!
//! Signature (§2.4, §2.5): every field but `sign`, plus `open_key`, sorted by name, joined as
//! `k=v&k=v` (raw values), then `md5(sha1(text))`, both lowercase hex. Answers are verified
//! when they carry `data`; the notify (§4.8, GET) is verified the same way. The ±600 s window
//! is the document's rule for requests (to the provider, and at the front door); it sets none
//! for notifies, which it retries for 3 hours, so a late notify is still taken (settling a
//! payment is idempotent, so a replay changes nothing).
//!
//! | operation | path | data |
//! | --- | --- | --- |
//! | paylist | /mct1/paylist | pmt_type "2,3,4" |
//! | order list | /mct1/order | page, pagesize, ord_type 1, sdate, edate (reconciliation) |
//! | order/view | /mct1/order/view | out_no |
//! | payorder | /mct1/payorder | out_no, pmt_tag, ord_name, original_amount, trade_amount, remark, notify_url + scene fields |
//! | paystatus | /mct1/paystatus | out_no (a payment's or a refund's) |
//! | paycancel | /mct1/paycancel | out_no |
//! | payrefund | /mct1/payrefund | out_no, refund_out_no, refund_amount, remark, shop_pass = sha1(password) |
//!
//! Scenes of payorder (§4.4): `qr` → `trade_qrcode` as a qr_code action; `barcode` adds
//! `auth_code` (often paid at once: status 1); `jsapi` with `extra.jump_url` → redirect to
//! `jsapi_pay_url`; wechat `jsapi` / `miniapp` natively: `JSAPI=1`, `sub_appid` (from
//! `extra.sub_appid` or `options.sub_appid`), `sub_openid` = openid → jsapi action with appId,
//! timeStamp, nonceStr, signType, package, paySign; alipay `jsapi` (服务窗) natively:
//! `JSAPI=1`, `buyer_id` = openid → jsapi action with tradeNO.
//!
//! Mapping: out_no is payglot's payment_id (refund_out_no its refund_id); ord_no the
//! provider_trade_no; amounts are integer fen (original_amount = trade_amount = amount, no
//! discounts). pmt_tag by channel: wechat → Weixin, alipay → Alipay (override with
//! `options.pmt_tag_<channel>`, from paylist).
//!
//! Status (§4.4): 1 交易成功 → succeeded, 2 待支付 and 9 等待输入密码 → pending, 4 已取消 →
//! closed. Refunds: payrefund status 1 → succeeded, any other → failed; paystatus of the refund
//! order: 1 → succeeded, 4 → failed, else pending.
//!
//! Error codes (§5) map onto merchant API errors: 8012, 8013, 8019 (wrong order state) → 409;
//! 8021, 8022, 8040 (refund too large) → 422 amount_exceeds_refundable; 8007 (payment method
//! not enabled) → 422 unsupported_operation; every other code → 502 provider_error with code
//! and message.
//!
//! Known answers (unit tests): §2.4's worked example (lines 54-61) reproduces, sign
//! `915be5aff09f2686870e1d17e93b3542`, and its `data` opens with the printed open_key (its 32
//! characters as the AES-256 key) to `{"pmt_type":0}`. The answer example of §2.5 (lines 29,
//! 82-86, key `vCfnB1SvPQqUDa7q0AFpqdiGOCICGT92`) does not: its `data` is cut to 35 hex digits
//! (its first block opens to `[{"pmt_name":"\u`, so the key is right), and its sign was made over
//! the whole data; msg and timestamp also differ between its two printings. The paylist
//! example (line 228) has a 27-byte data and no key printed for its open_id. The other
//! examples hold placeholders.
//!
//! Decisions: `data` hex is sent uppercase as in the document's examples (`options.hex_case:
//! lower` changes it; both are accepted). The cancel answer's `ord_stautus` typo is read as
//! `ord_status` too. `shop_pass` defaults to the document's 123456 when not configured. A
//! paylist answer whose data is plain JSON (as the §4.1.4 example) is read as is.

use super::signing::{
    aes_decrypt, aes_encrypt, encode_form, md5_hex, parse_form, parse_loose_json, same_hex_signature, sha1_hex,
    sorted_pairs, AesMode,
};
use super::ProviderConfig;
use super::{
    check_credentials, check_options, credential, field, json_text, truncate_chars, CallbackReply, CallbackReport,
    CreateOrder, CreateStep, Created, Dialect, DialectError, InboundHttp, OrderPage, PaymentMethod, PaymentReport,
    ProviderRequest, ProviderResponse, RefundReport, Refusal,
};
use crate::model::{Action, Channel, Payment, PaymentStatus, Refund, Scene, TransferStatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const TIMESTAMP_WINDOW_SECS: i64 = 600;
/// `ord_name` (§4.4): 100; counted in characters (the document's 长度 gives no unit; its
/// examples are Chinese names, which a byte count would cut at 33 characters).
pub const ORD_NAME_CHARS: usize = 100;
/// `remark`: 100 in the QR, barcode, jsapi, service window and refund tables, 200 for mini
/// programs (§4.4.5).
pub const REMARK_CHARS: usize = 100;
pub const REMARK_CHARS_MINIAPP: usize = 200;
pub const ACK: &str = "notify_success";
const OPTIONS: &[&str] = &[
    "hex_case",
    "sub_appid",
    "pmt_tag_wechat",
    "pmt_tag_alipay",
    "pmt_tag_unionpay",
    "pmt_tag_qq",
    "pmt_tag_jd",
    "pmt_tag_bank",
];

/// `md5(sha1(sorted k=v incl. open_key))` of `fields` (the `sign` field is left out).
pub fn sign(fields: &BTreeMap<String, String>, open_key: &str) -> String {
    md5_hex(sha1_hex(string_to_sign(fields, open_key).as_bytes()).as_bytes())
}

/// The text whose sha1, then md5, is the signature: every field but `sign`, plus open_key,
/// sorted, joined as `k=v&k=v`.
pub fn string_to_sign(fields: &BTreeMap<String, String>, open_key: &str) -> String {
    sorted_pairs(
        fields
            .iter()
            .filter(|(k, _)| k.as_str() != "sign")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("open_key", open_key)]),
        false,
    )
}

/// The envelope of one store (open_id, open_key): encryption, signing, verification.
#[derive(Clone)]
pub struct Envelope {
    pub open_id: String,
    open_key: String,
    upper_hex: bool,
}

impl std::fmt::Debug for Envelope {
    // The open_key never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope").field("open_id", &self.open_id).finish_non_exhaustive()
    }
}

impl Envelope {
    /// The envelope of an account (or front door) in routes.yaml (`options.hex_case`).
    pub fn for_account(p: &ProviderConfig) -> Result<Self, String> {
        let upper = p.options.get("hex_case").map(String::as_str) != Some("lower");
        let c = |k: &str| crate::dialects::credential(p, k);
        Self::new(&c("open_id"), &c("open_key"), upper)
    }

    pub fn new(open_id: &str, open_key: &str, upper_hex: bool) -> Result<Self, String> {
        if open_key.len() != 32 {
            return Err(format!("credentials.open_key: AES-256 needs 32 bytes, it has {}", open_key.len()));
        }
        Ok(Envelope { open_id: open_id.into(), open_key: open_key.into(), upper_hex })
    }

    /// hex(AES-256-ECB(json)).
    pub fn seal(&self, json: &Value) -> String {
        let sealed =
            aes_encrypt(self.open_key.as_bytes(), AesMode::Ecb, json.to_string().as_bytes()).expect("32-byte key");
        let text = hex::encode(sealed);
        if self.upper_hex {
            text.to_ascii_uppercase()
        } else {
            text
        }
    }

    /// Reverses `seal` (either hex case).
    pub fn open(&self, data: &str) -> Result<Value, String> {
        let raw = hex::decode(data.trim()).map_err(|e| format!("data is not hex: {e}"))?;
        let plain = aes_decrypt(self.open_key.as_bytes(), AesMode::Ecb, &raw)?;
        parse_loose_json(&String::from_utf8_lossy(&plain))
    }

    pub fn sign(&self, fields: &BTreeMap<String, String>) -> String {
        sign(fields, &self.open_key)
    }

    pub fn verify(&self, fields: &BTreeMap<String, String>) -> bool {
        fields.get("sign").is_some_and(|given| same_hex_signature(&self.sign(fields), given))
    }

    /// The form body of a request.
    pub fn request_body(&self, content: &Value, now: i64) -> String {
        let mut fields = BTreeMap::new();
        fields.insert("open_id".to_string(), self.open_id.clone());
        fields.insert("timestamp".to_string(), now.to_string());
        fields.insert("data".to_string(), self.seal(content));
        let sign = self.sign(&fields);
        fields.insert("sign".into(), sign);
        encode_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// A signed answer `{errcode, msg, timestamp, data, sign}` (errors carry no data or sign).
    pub fn answer(&self, errcode: i64, msg: &str, content: Option<&Value>, now: i64) -> String {
        let Some(content) = content else {
            return json!({"errcode": errcode, "msg": msg}).to_string();
        };
        let mut fields = BTreeMap::new();
        fields.insert("errcode".to_string(), errcode.to_string());
        fields.insert("msg".to_string(), msg.to_string());
        fields.insert("timestamp".to_string(), now.to_string());
        fields.insert("data".to_string(), self.seal(content));
        let sign = self.sign(&fields);
        json!({"errcode": errcode, "msg": msg, "timestamp": now, "data": fields["data"], "sign": sign}).to_string()
    }
}

/// Checks a message's timestamp against the ±600 s window.
pub fn check_timestamp(text: &str, now: i64) -> Result<(), String> {
    let ts: i64 = text.trim().parse().map_err(|_| format!("timestamp {text:?} is not unix seconds"))?;
    if !super::signing::within_window(now, ts, TIMESTAMP_WINDOW_SECS) {
        return Err(format!("timestamp {ts} is more than {TIMESTAMP_WINDOW_SECS} s from now ({now})"));
    }
    Ok(())
}

/// How mct's error codes (§5) map onto merchant API errors.
pub fn refusal(errcode: &str) -> Refusal {
    match errcode {
        "8012" | "8013" | "8019" => Refusal::InvalidState,
        "8021" | "8022" | "8040" => Refusal::AmountExceeded,
        "8007" => Refusal::NotEnabled,
        _ => Refusal::Generic,
    }
}

/// mct's order status as the canonical payment status.
pub fn payment_status(code: &str) -> PaymentStatus {
    match code.trim() {
        "1" => PaymentStatus::Succeeded,
        "4" => PaymentStatus::Closed,
        _ => PaymentStatus::Pending,
    }
}

pub struct Mct {
    envelope: Envelope,
    shop_pass: String,
    sub_appid: Option<String>,
    pmt_tags: BTreeMap<String, String>,
}

impl Mct {
    pub fn from_config(provider: &ProviderConfig) -> Result<Self, Vec<String>> {
        let mut errors = check_credentials(provider, &["open_id", "open_key"], &["shop_pass"]);
        errors.extend(check_options(provider, OPTIONS));
        let upper_hex = match provider.options.get("hex_case").map(String::as_str).unwrap_or("upper") {
            "upper" => true,
            "lower" => false,
            other => {
                errors.push(format!("options.hex_case: {other:?} is not upper or lower"));
                true
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let envelope = Envelope::new(&credential(provider, "open_id"), &credential(provider, "open_key"), upper_hex)
            .map_err(|e| vec![e])?;
        let mut pmt_tags: BTreeMap<String, String> =
            [("wechat", "Weixin"), ("alipay", "Alipay")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for channel in Channel::ALL {
            if let Some(tag) = provider.options.get(&format!("pmt_tag_{channel}")) {
                pmt_tags.insert(channel.to_string(), tag.clone());
            }
        }
        let shop_pass =
            provider.credentials.get("shop_pass").map(|s| s.expose().to_string()).unwrap_or_else(|| "123456".into());
        Ok(Mct { envelope, shop_pass, sub_appid: provider.options.get("sub_appid").cloned(), pmt_tags })
    }

    fn request(&self, path: &str, content: Value, now: i64) -> ProviderRequest {
        ProviderRequest {
            method: "POST",
            path: format!("/mct1{path}"),
            content_type: Some("application/x-www-form-urlencoded"),
            body: self.envelope.request_body(&content, now).into_bytes(),
        }
    }

    /// Verifies an answer and opens its data; a non-zero errcode becomes `Rejected`.
    fn read_answer(&self, answer: ProviderResponse<'_>) -> Result<Value, DialectError> {
        if !(200..300).contains(&answer.status) {
            return Err(DialectError::BadMessage(format!("HTTP status {}", answer.status)));
        }
        let json = parse_loose_json(&String::from_utf8_lossy(answer.body)).map_err(DialectError::BadMessage)?;
        let errcode = field(&json, "errcode");
        if errcode != "0" {
            return Err(DialectError::Rejected {
                kind: refusal(&errcode),
                code: errcode,
                message: field(&json, "msg"),
            });
        }
        let Some(Value::String(data)) = json.get("data") else {
            return Err(DialectError::BadMessage("answer has no encrypted data".into()));
        };
        let fields: BTreeMap<String, String> = json
            .as_object()
            .expect("parsed an object with data")
            .iter()
            .map(|(k, v)| (k.clone(), json_text(v)))
            .collect();
        if !self.envelope.verify(&fields) {
            return Err(DialectError::BadMessage("answer signature does not verify".into()));
        }
        self.envelope.open(data).map_err(|e| DialectError::BadMessage(format!("data: {e}")))
    }

    fn order_report(&self, payment: &Payment, data: &Value) -> Result<PaymentReport, DialectError> {
        if field(data, "out_no") != payment.payment_id {
            return Err(DialectError::BadMessage(format!("answer is about order {:?}", field(data, "out_no"))));
        }
        let amount = crate::money::parse_fen(&field(data, "trade_amount"))
            .map_err(|e| DialectError::BadMessage(format!("trade_amount: {e}")))?;
        let status = payment_status(&field(data, "status"));
        Ok(PaymentReport {
            payment_id: payment.payment_id.clone(),
            provider_trade_no: Some(field(data, "ord_no")).filter(|s| !s.is_empty()),
            status,
            amount: Some(amount),
            paid_amount: None,
            paid_at: super::parse_beijing_time(&field(data, "trade_pay_time")),
        })
    }
}

impl Dialect for Mct {
    fn dialect(&self) -> &'static str {
        "mct"
    }

    fn create_payment(&self, order: &CreateOrder<'_>, now: i64) -> Result<CreateStep, DialectError> {
        let p = order.payment;
        let pmt_tag = self.pmt_tags.get(p.channel.as_str()).ok_or_else(|| {
            DialectError::Unsupported(format!(
                "no mct pmt_tag for channel {} (set options.pmt_tag_{})",
                p.channel, p.channel
            ))
        })?;
        if !p.currency.eq_ignore_ascii_case("CNY") {
            return Err(DialectError::Unsupported(format!("currency {} (mct takes CNY)", p.currency)));
        }
        let amount: Value = if p.scene == Scene::Miniapp { json!(p.amount.to_string()) } else { json!(p.amount) };
        let mut c = json!({
            "out_no": p.payment_id,
            "pmt_tag": pmt_tag,
            "ord_name": truncate_chars(&p.subject, ORD_NAME_CHARS),
            "original_amount": amount,
            "trade_amount": amount,
            "notify_url": order.callback_url,
        });
        if !p.description.is_empty() {
            let max = if p.scene == Scene::Miniapp { REMARK_CHARS_MINIAPP } else { REMARK_CHARS };
            c["remark"] = json!(truncate_chars(&p.description, max));
        }
        let sub_appid = order.extra_str("sub_appid").map(str::to_string).or_else(|| self.sub_appid.clone());
        match (p.scene, p.channel) {
            (Scene::Qr, _) => {}
            (Scene::Barcode, _) => c["auth_code"] = json!(order.auth_code.unwrap_or_default()),
            (Scene::Jsapi, _) if order.extra_str("jump_url").is_some() => {
                c["jump_url"] = json!(order.extra_str("jump_url"))
            }
            (Scene::Jsapi | Scene::Miniapp, Channel::Wechat) => {
                let sub_appid = sub_appid.ok_or_else(|| {
                    DialectError::Invalid(
                        "extra.sub_appid (or options.sub_appid) is needed for wechat jsapi and mini programs".into(),
                    )
                })?;
                c["JSAPI"] = if p.scene == Scene::Miniapp { json!("1") } else { json!(1) };
                c["sub_appid"] = json!(sub_appid);
                c["sub_openid"] = json!(order.openid.unwrap_or_default());
            }
            (Scene::Jsapi, Channel::Alipay) => {
                c["JSAPI"] = json!(1);
                c["buyer_id"] = json!(order.openid.unwrap_or_default());
            }
            (scene, channel) => return Err(DialectError::Unsupported(format!("mct does not offer {channel}/{scene}"))),
        }
        Ok(CreateStep::Call(self.request("/payorder", c, now)))
    }

    fn read_create(&self, order: &CreateOrder<'_>, answer: ProviderResponse<'_>) -> Result<Created, DialectError> {
        let data = self.read_answer(answer)?;
        let p = order.payment;
        let report = self.order_report(p, &data)?;
        if report.amount != Some(p.amount) {
            return Err(DialectError::BadMessage(format!(
                "answer's trade_amount {:?} is not the order's {}",
                report.amount, p.amount
            )));
        }
        let action = match p.scene {
            Scene::Barcode => Action::None,
            Scene::Jsapi if !field(&data, "jsapi_pay_url").is_empty() => {
                Action::Redirect { url: field(&data, "jsapi_pay_url") }
            }
            Scene::Jsapi | Scene::Miniapp if p.channel == Channel::Wechat => {
                let params = ["appId", "timeStamp", "nonceStr", "signType", "package", "paySign"]
                    .iter()
                    .map(|k| (k.to_string(), field(&data, k).trim().to_string()))
                    .collect();
                Action::Jsapi { params }
            }
            Scene::Jsapi => {
                Action::Jsapi { params: [("tradeNO".to_string(), field(&data, "trade_no"))].into_iter().collect() }
            }
            _ => Action::QrCode { qr_code: field(&data, "trade_qrcode"), amount: None },
        };
        Ok(Created { provider_trade_no: report.provider_trade_no, action, status: report.status, expires_at: None })
    }

    fn query_payment(&self, payment: &Payment, now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request("/paystatus", json!({"out_no": payment.payment_id}), now))
    }

    fn read_query(&self, payment: &Payment, answer: ProviderResponse<'_>) -> Result<PaymentReport, DialectError> {
        let data = match self.read_answer(answer) {
            Err(DialectError::Rejected { code, message, .. }) if code == "8002" => {
                return Err(DialectError::UnknownOrder(format!("8002 {message}")))
            }
            other => other?,
        };
        self.order_report(payment, &data)
    }

    fn read_callback(&self, callback: InboundHttp<'_>, _now: i64) -> Result<CallbackReport, DialectError> {
        let source = if callback.query.is_empty() { callback.body } else { callback.query.as_bytes() };
        let fields: BTreeMap<String, String> = parse_form(source).into_iter().collect();
        if !self.envelope.verify(&fields) {
            return Err(DialectError::BadMessage("notify signature does not verify".into()));
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        Ok(CallbackReport::Payment(PaymentReport {
            payment_id: get("out_no"),
            provider_trade_no: Some(get("ord_no")).filter(|s| !s.is_empty()),
            status: payment_status(&get("status")),
            amount: None,
            paid_amount: None,
            paid_at: None,
        }))
    }

    fn claimed_payment_id(&self, callback: InboundHttp<'_>) -> Option<String> {
        let source = if callback.query.is_empty() { callback.body } else { callback.query.as_bytes() };
        parse_form(source).into_iter().find(|(k, _)| k == "out_no").map(|(_, v)| v)
    }

    fn callback_reply(&self, accepted: bool) -> CallbackReply {
        CallbackReply {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: if accepted { ACK } else { "fail" }.into(),
        }
    }

    fn close_payment(&self, payment: &Payment, now: i64) -> Result<ProviderRequest, DialectError> {
        // 8013 (§5): "订单撤销接口仅支持：微信、支付宝的条码支付（B扫C）接口".
        if payment.scene != Scene::Barcode || !matches!(payment.channel, Channel::Wechat | Channel::Alipay) {
            return Err(DialectError::Unsupported(format!(
                "mct cancels only wechat and alipay barcode payments, not {}/{} (such an order ends when it expires at the provider or its notify says 4 cancelled)",
                payment.channel, payment.scene
            )));
        }
        Ok(self.request("/paycancel", json!({"out_no": payment.payment_id}), now))
    }

    fn read_close(&self, _payment: &Payment, answer: ProviderResponse<'_>) -> Result<(), DialectError> {
        let data = self.read_answer(answer)?;
        let status =
            Some(field(&data, "ord_status")).filter(|s| !s.is_empty()).unwrap_or_else(|| field(&data, "ord_stautus"));
        if status != "4" {
            return Err(DialectError::BadMessage(format!("cancel answer has ord_status {status:?}, not 4")));
        }
        Ok(())
    }

    fn refund(&self, payment: &Payment, refund: &Refund, now: i64) -> Result<ProviderRequest, DialectError> {
        let mut c = json!({
            "out_no": payment.payment_id,
            "refund_out_no": refund.refund_id,
            "refund_amount": refund.amount,
            "shop_pass": sha1_hex(self.shop_pass.as_bytes()),
        });
        if let Some(reason) = &refund.reason {
            c["remark"] = json!(truncate_chars(reason, REMARK_CHARS));
        }
        Ok(self.request("/payrefund", c, now))
    }

    fn read_refund(&self, refund: &Refund, answer: ProviderResponse<'_>) -> Result<RefundReport, DialectError> {
        let data = self.read_answer(answer)?;
        if field(&data, "trade_amount") != refund.amount.to_string() {
            return Err(DialectError::BadMessage("refund answer's trade_amount is not the refund's amount".into()));
        }
        let status = if field(&data, "status") == "1" { TransferStatus::Succeeded } else { TransferStatus::Failed };
        Ok(RefundReport { provider_refund_no: Some(field(&data, "ord_no")).filter(|s| !s.is_empty()), status })
    }

    fn query_refund(&self, refund: &Refund, now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request("/paystatus", json!({"out_no": refund.refund_id}), now))
    }

    fn read_refund_query(&self, refund: &Refund, answer: ProviderResponse<'_>) -> Result<RefundReport, DialectError> {
        let data = self.read_answer(answer)?;
        if field(&data, "out_no") != refund.refund_id {
            return Err(DialectError::BadMessage("answer is about another refund".into()));
        }
        let status = match field(&data, "status").as_str() {
            "1" => TransferStatus::Succeeded,
            "4" => TransferStatus::Failed,
            _ => TransferStatus::Pending,
        };
        Ok(RefundReport { provider_refund_no: Some(field(&data, "ord_no")).filter(|s| !s.is_empty()), status })
    }

    fn list_orders(&self, date: &str, page: u32, now: i64) -> Result<ProviderRequest, DialectError> {
        let c = json!({"page": page, "pagesize": 100, "ord_type": 1, "sdate": format!("{date} 00:00:00"), "edate": format!("{date} 23:59:59")});
        Ok(self.request("/order", c, now))
    }

    fn read_order_list(&self, answer: ProviderResponse<'_>) -> Result<OrderPage, DialectError> {
        let data = self.read_answer(answer)?;
        let orders = data["list"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|o| {
                        (field(o, "out_no"), payment_status(&field(o, "status")), field(o, "trade_amount").parse().ok())
                    })
                    .collect()
            })
            .unwrap_or_default();
        // §4.2.4 names the block "pages" in its example and "page" in its table.
        let pages = data.get("pages").or_else(|| data.get("page")).cloned().unwrap_or_default();
        let (page, total) =
            (field(&pages, "page").parse::<u32>().unwrap_or(1), field(&pages, "totalpage").parse::<u32>().unwrap_or(1));
        Ok((orders, page < total))
    }

    fn payment_methods(&self, now: i64) -> Result<ProviderRequest, DialectError> {
        Ok(self.request("/paylist", json!({"pmt_type": "2,3,4"}), now))
    }

    fn read_payment_methods(&self, answer: ProviderResponse<'_>) -> Result<Vec<PaymentMethod>, DialectError> {
        let plain = parse_loose_json(&String::from_utf8_lossy(answer.body)).map_err(DialectError::BadMessage)?;
        let list = match plain.get("data") {
            Some(Value::Array(_)) if field(&plain, "errcode") == "0" => plain["data"].clone(),
            _ => self.read_answer(answer)?,
        };
        let items = list.as_array().ok_or_else(|| DialectError::BadMessage("paylist data is not a list".into()))?;
        Ok(items
            .iter()
            .map(|m| PaymentMethod {
                name: field(m, "pmt_name"),
                tag: field(m, "pmt_tag"),
                types: field(m, "pmt_type")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            })
            .collect())
    }
}

/// mct in the registry.
pub const SPEC: super::DialectSpec = super::DialectSpec {
    name: "mct",
    account_id: "open_id",
    public_credentials: &["open_id"],
    build: |p| Ok(std::sync::Arc::new(Mct::from_config(p)?)),
    side: &provider::Side,
    payouts: false,
    products: false,
    cli_sign,
    endpoints: &[
        ("POST", "/mct1/payorder"),
        ("POST", "/mct1/paystatus"),
        ("POST", "/mct1/order/view"),
        ("POST", "/mct1/paycancel"),
        ("POST", "/mct1/payrefund"),
        ("POST", "/mct1/paylist"),
        ("POST", "/mct1/order"),
    ],
    example_credentials: &[
        ("open_id", "87f46f5db1b65f0ac195285f49ee6958"),
        ("open_key", "0828e83720fdbe3685a7b94214af04f9"),
    ],
    example_options: &[("sub_appid", "wxde66bf91cac57773")],
};

/// `payglot sign mct`: the message's fields (open_key is added).
fn cli_sign(args: &[String], key: &str) -> (String, String) {
    let map: BTreeMap<String, String> = super::arg_pairs(args).into_iter().collect();
    let sha = sha1_hex(string_to_sign(&map, key).as_bytes());
    (format!("{}\nsha1: {sha}", string_to_sign(&map, "<key>")), sign(&map, key))
}

/// The provider side of mct, for the sandbox and the compatible front door.
pub mod provider {
    use super::*;
    use crate::dialects::provider_side::{
        keep, url_scenes, Answer, Call, CallKind, CodedRefusal, Fail, Failure, Keyed, Keys, Lookup, OrderRequest,
        Outcome, RefundRequest, Request,
    };
    use crate::dialects::{beijing_time, Ack, Notify, ProviderOrder};

    /// The provider side of mct: forms of open_id, timestamp (±600 s), data (AES-256-ECB, hex)
    /// and sign, opened with the store's open_key; answers sealed and signed the same way,
    /// errors with §5's codes. payorder's scene comes from its fields: `auth_code` → barcode
    /// (charged at once); `JSAPI` 1 → jsapi (wechat: sub_appid and sub_openid; alipay: buyer_id);
    /// `jump_url` → the payer opens `jsapi_pay_url` and returns there; otherwise qr. payrefund
    /// checks the supervisor password (`shop_pass`, default the document's 123456, sent as sha1).
    /// Only wechat and alipay barcode orders can be cancelled (8013).
    pub struct Side;

    impl crate::dialects::ProviderSide for Side {
        fn read(&self, request: &Request<'_>, keys: Keys<'_>, now: i64) -> Result<Call, Answer> {
            let Some(op) = request.path.strip_prefix("/mct1") else {
                return Err(Answer::text(404, "no such mct endpoint"));
            };
            if request.method != "POST" {
                return Err(Answer::text(405, "POST only"));
            }
            let envelope_for = |id: &str| keys(id).and_then(|k| Envelope::for_account(&k.account).ok());
            let (env, d) =
                read_request(request.body, now, envelope_for).map_err(|r| Answer::json(failure(r.code, &r.message)))?;
            let keyed = keys(&env.open_id).ok_or_else(|| Answer::json(failure(3002, "门店不存在")))?;
            let refuse = |code: i64, msg: &str| Answer::json(failure(code, msg));
            let out_no = field(&d, "out_no");
            let kind = match op {
                "/payorder" => {
                    let amount = check_payorder(&d).map_err(|r| refuse(r.code, &r.message))?;
                    let channel = if field(&d, "pmt_tag") == "Alipay" { Channel::Alipay } else { Channel::Wechat };
                    let (scenes, openid) = if !field(&d, "auth_code").is_empty() {
                        (vec![Scene::Barcode], None)
                    } else if !field(&d, "jump_url").is_empty() {
                        (url_scenes(Scene::H5), None)
                    } else if field(&d, "JSAPI") == "1" {
                        let openid =
                            if channel == Channel::Wechat { field(&d, "sub_openid") } else { field(&d, "buyer_id") };
                        (vec![Scene::Jsapi], Some(openid))
                    } else {
                        (url_scenes(Scene::Qr), None)
                    };
                    let name = field(&d, "ord_name");
                    let mut order = OrderRequest {
                        subject: if name.is_empty() { format!("订单 {out_no}") } else { name },
                        order_no: out_no,
                        amount,
                        description: field(&d, "remark"),
                        channel: Some(channel),
                        scenes,
                        notify_url: field(&d, "notify_url"),
                        return_url: field(&d, "jump_url"),
                        auth_code: Some(field(&d, "auth_code")).filter(|c| !c.is_empty()),
                        openid: openid.filter(|o| !o.is_empty()),
                        ..Default::default()
                    };
                    if !field(&d, "sub_appid").is_empty() {
                        order.extra.insert("sub_appid".into(), field(&d, "sub_appid").into());
                    }
                    keep(&mut order.keep, "pmt_tag", &field(&d, "pmt_tag"));
                    keep(&mut order.keep, "jump_url", &field(&d, "jump_url"));
                    if !field(&d, "auth_code").is_empty() {
                        order.keep.insert("barcode".into(), "1".into());
                    }
                    CallKind::Create(order)
                }
                "/paystatus" | "/order/view" => {
                    CallKind::Query { lookup: Lookup::MerchantNo(out_no), notify_again: false }
                }
                "/paycancel" => CallKind::Cancel(Lookup::MerchantNo(out_no)),
                "/payrefund" => {
                    let pass = keyed
                        .account
                        .credentials
                        .get("shop_pass")
                        .map(|s| s.expose().to_string())
                        .unwrap_or_else(|| "123456".into());
                    if field(&d, "shop_pass").is_empty() {
                        return Err(refuse(8016, "主管密码不能为空"));
                    }
                    if !same_hex_signature(&sha1_hex(pass.as_bytes()), &field(&d, "shop_pass")) {
                        return Err(refuse(8017, "主管密码错误"));
                    }
                    let amount =
                        field(&d, "refund_amount").parse::<i64>().map_err(|_| refuse(8015, "退款金额不能为空"))?;
                    let remark = field(&d, "remark");
                    CallKind::Refund(RefundRequest {
                        lookup: Lookup::MerchantNo(out_no),
                        refund_no: field(&d, "refund_out_no"),
                        amount,
                        reason: Some(remark).filter(|r| !r.is_empty()),
                        replayable: false,
                    })
                }
                "/paylist" => CallKind::PaymentMethods,
                "/order" => CallKind::OrderList,
                _ => return Err(Answer::text(404, "no such mct endpoint")),
            };
            let mut call = Call::new(env.open_id.clone(), kind);
            call.echo.insert("op".into(), op.to_string());
            Ok(call)
        }

        fn answer(&self, keyed: &Keyed, call: &Call, outcome: Result<Outcome, Failure>, now: i64) -> Answer {
            let Ok(env) = Envelope::for_account(&keyed.account) else {
                return Answer::json(failure(3002, "门店不存在"));
            };
            let op = call.echo.get("op").map(String::as_str).unwrap_or("");
            let (msg, data) = match (outcome, &call.kind) {
                (Ok(Outcome::Order(placed)), CallKind::Create(order)) => {
                    let mut data = order_data(&placed.order, &placed.pay_url);
                    if order.keep.contains_key("jump_url") {
                        data["jsapi_pay_url"] = json!(placed.pay_url);
                    }
                    if let Some(Action::Jsapi { params }) = &placed.action {
                        for (k, v) in params {
                            data[k.as_str()] = json!(v);
                        }
                    }
                    ("ok", data)
                }
                (Ok(Outcome::Order(placed)), CallKind::Cancel(_)) => {
                    // The document's own spelling.
                    ("订单取消成功", json!({"ord_no": placed.order.provider_no, "ord_stautus": 4}))
                }
                (Ok(Outcome::Order(placed)), _) => ("ok", order_data(&placed.order, &placed.pay_url)),
                (Ok(Outcome::Refund(done)), CallKind::Refund(_)) => (
                    "订单退款成功",
                    refund_data(
                        &done.provider_refund_no,
                        &done.order_provider_no,
                        done.amount,
                        done.status == TransferStatus::Succeeded,
                        now,
                    ),
                ),
                (Ok(Outcome::Refund(done)), _) => {
                    // paystatus of a refund order.
                    let status = match done.status {
                        TransferStatus::Succeeded => "1",
                        TransferStatus::Failed => "4",
                        TransferStatus::Pending => "2",
                    };
                    (
                        "ok",
                        json!({"ord_no": done.provider_refund_no, "out_no": done.refund_no, "ord_type": "2",
                        "trade_amount": done.amount.to_string(), "status": status}),
                    )
                }
                (Ok(Outcome::PaymentMethods), _) => ("ok", paylist_data()),
                (Ok(Outcome::Orders(orders)), _) => {
                    let list: Vec<Value> = orders.iter().map(|o| order_data(o, "")).collect();
                    let total = list.len();
                    (
                        "ok",
                        json!({"pages": {"totalnum": total.to_string(), "totalpage": 1, "pagesize": 100, "page": 1}, "list": list}),
                    )
                }
                (Err(f), _) => return Answer::json(failure(error_code(op, f.kind), &f.message)),
                (Ok(_), _) => return Answer::json(failure(1, "not offered")),
            };
            Answer::json(env.answer(0, msg, Some(&data), now))
        }

        fn notify(&self, keyed: &Keyed, order: &ProviderOrder, now: i64) -> Option<Notify> {
            if order.notify_url.is_empty() {
                return None;
            }
            let env = Envelope::for_account(&keyed.account).ok()?;
            let status = if order.status == PaymentStatus::Succeeded { "1" } else { "4" };
            Some(notify(order, &env, status, &crate::model::random_id("", 32), now))
        }

        fn ack_body(&self) -> &'static str {
            ACK
        }

        fn order_prefix(&self) -> &'static str {
            "9149"
        }

        fn queries_refunds(&self) -> bool {
            true
        }

        fn paid_at_once(&self, order: &OrderRequest) -> bool {
            order.scenes == [Scene::Barcode]
        }

        fn cancellable(&self, order: &ProviderOrder) -> Result<(), Failure> {
            if order.fields.get("barcode").map(String::as_str) == Some("1") {
                Ok(())
            } else {
                Err(Failure::new(Fail::NotOffered, "订单取消失败,错误原因：订单的支付场景不支持该请求"))
            }
        }
    }

    /// §5's code for a refusal of `op`.
    fn error_code(op: &str, kind: Fail) -> i64 {
        match (op, kind) {
            ("/payrefund", Fail::NotFound) => 8018,
            ("/payrefund", Fail::State) => 8019,
            ("/payrefund", Fail::TooMuch) => 8022,
            ("/payrefund", Fail::Duplicate) => 8020,
            ("/payrefund", _) => 8023,
            ("/paycancel", Fail::State) => 8012,
            ("/paycancel", Fail::NotFound) | ("/paystatus" | "/order/view", Fail::NotFound) => 8002,
            ("/paycancel", _) => 8013,
            (_, Fail::Duplicate) => 8045,
            (_, Fail::Invalid) => 8006,
            ("/order", Fail::NotOffered) => 1,
            (_, Fail::NotOffered) => 8007,
            _ => 8008,
        }
    }

    /// Verifies a request form (signature and ±600 s window) with the open_key of its open_id,
    /// and opens its data. Errors are (errcode, msg) as §5 lists them.
    pub fn read_request(
        body: &[u8],
        now: i64,
        envelope_for: impl Fn(&str) -> Option<Envelope>,
    ) -> Result<(Envelope, Value), CodedRefusal> {
        let fields: BTreeMap<String, String> = parse_form(body).into_iter().collect();
        let open_id = fields.get("open_id").map(String::as_str).unwrap_or("");
        if open_id.is_empty() {
            return Err(CodedRefusal::new(8, "token不能为空"));
        }
        let envelope = envelope_for(open_id).ok_or_else(|| CodedRefusal::new(3002, "门店不存在"))?;
        if !envelope.verify(&fields) {
            return Err(CodedRefusal::new(5, "验证签名错误"));
        }
        check_timestamp(fields.get("timestamp").map(String::as_str).unwrap_or(""), now)
            .map_err(|_| CodedRefusal::new(9, "timestamp error"))?;
        let data = envelope
            .open(fields.get("data").map(String::as_str).unwrap_or(""))
            .map_err(|_| CodedRefusal::new(8044, "out_no不能为空"))?;
        Ok((envelope, data))
    }

    /// An order as payorder, paystatus and order/view show it (§4.4); `trade_qrcode` is where
    /// the payer pays.
    pub fn order_data(order: &ProviderOrder, trade_qrcode: &str) -> Value {
        let pmt_tag = order.fields.get("pmt_tag").cloned().unwrap_or_else(|| "Weixin".into());
        let status = match order.status {
            PaymentStatus::Succeeded => "1",
            PaymentStatus::Pending => "2",
            PaymentStatus::Closed | PaymentStatus::Failed => "4",
        };
        serde_json::json!({
            "ord_no": order.provider_no,
            "ord_mct_id": order.fields.get("ord_mct_id").cloned().unwrap_or_else(|| "174141".into()),
            "ord_shop_id": order.fields.get("ord_shop_id").cloned().unwrap_or_else(|| "583".into()),
            "ord_currency": "CNY",
            "currency_sign": "¥",
            "pmt_tag": pmt_tag,
            "pmt_name": if pmt_tag == "Alipay" { "支付宝" } else { "微信支付" },
            "ord_type": "1",
            "trade_no": order.fields.get("trade_no").cloned().unwrap_or_else(|| format!("sandbox{}", order.provider_no)),
            "trade_amount": order.amount.to_string(),
            "original_amount": order.amount.to_string(),
            "discount_amount": "0",
            "ignore_amount": "0",
            "trade_qrcode": trade_qrcode,
            "trade_pay_time": order.paid_at.map(beijing_time),
            "trade_result": "{}",
            "status": status,
            "out_no": order.merchant_order_no,
        })
    }

    /// Checks a payorder's data (§4.4); returns the amount in fen.
    pub fn check_payorder(d: &Value) -> Result<i64, CodedRefusal> {
        if field(d, "out_no").is_empty() {
            return Err(CodedRefusal::new(8044, "out_no不能为空"));
        }
        let pmt_tag = field(d, "pmt_tag");
        if !["Weixin", "Alipay"].contains(&pmt_tag.as_str()) {
            return Err(CodedRefusal::new(8007, "付款方式未开通"));
        }
        let amount = match field(d, "trade_amount").parse::<i64>() {
            Ok(a) if a > 0 && field(d, "original_amount") == a.to_string() => a,
            _ => return Err(CodedRefusal::new(8006, "收款金额有误")),
        };
        let jsapi = field(d, "JSAPI") == "1";
        if jsapi
            && pmt_tag == "Weixin"
            && field(d, "jump_url").is_empty()
            && (field(d, "sub_appid").is_empty() || field(d, "sub_openid").is_empty())
        {
            return Err(CodedRefusal::new(8011, "支付失败，sub_appid 或 sub_openid 为空"));
        }
        Ok(amount)
    }

    /// The store's payment methods (§4.1): what payglot's sandbox and front door offer.
    pub fn paylist_data() -> Value {
        serde_json::json!([
            {"pmt_name": "微信", "pmt_type": "2,3,4", "pmt_tag": "Weixin", "pmt_currency": "CNY", "pmt_split_refund": "1"},
            {"pmt_name": "支付宝", "pmt_type": "2,3,4", "pmt_tag": "Alipay", "pmt_currency": "CNY", "pmt_split_refund": "1"}
        ])
    }

    /// A refund as payrefund answers it (§4.7).
    pub fn refund_data(refund_no: &str, original_ord_no: &str, amount: i64, succeeded: bool, now: i64) -> Value {
        serde_json::json!({"ord_no": refund_no, "ord_shop_id": "585", "ord_mct_id": "174144", "trade_amount": amount.to_string(),
            "trade_discout_amount": "0", "ord_currency": "CNY", "currency_sign": "¥", "trade_time": beijing_time(now),
            "original_ord_no": original_ord_no, "status": if succeeded { "1" } else { "2" }})
    }

    /// An error answer `{errcode, msg}` (§5).
    pub fn failure(code: i64, msg: &str) -> String {
        serde_json::json!({"errcode": code, "msg": msg}).to_string()
    }

    /// The notify (§4.8): a signed GET acked by `notify_success`; `status` 1 is paid.
    pub fn notify(order: &ProviderOrder, envelope: &Envelope, status: &str, rand_str: &str, now: i64) -> Notify {
        let query = notify_query(envelope, &order.provider_no, &order.merchant_order_no, status, rand_str, now);
        Notify::get(&order.notify_url, &query, Ack::Text(ACK))
    }

    /// A signed notify query string.
    pub fn notify_query(
        envelope: &Envelope,
        ord_no: &str,
        out_no: &str,
        status: &str,
        rand_str: &str,
        now: i64,
    ) -> String {
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ("ord_no", ord_no),
            ("timestamp", &now.to_string()),
            ("rand_str", rand_str),
            ("out_no", out_no),
            ("status", status),
        ] {
            fields.insert(k.to_string(), v.to_string());
        }
        let sign = envelope.sign(&fields);
        fields.insert("sign".into(), sign);
        encode_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    const OPEN_ID: &str = "87f46f5db1b65f0ac195285f49ee6958";
    const OPEN_KEY: &str = "0828e83720fdbe3685a7b94214af04f9";

    fn account() -> Mct {
        let mut p = ProviderConfig::with_defaults("mct-test", "mct");
        p.credentials.insert("open_id".into(), Secret::new(OPEN_ID));
        p.credentials.insert("open_key".into(), Secret::new(OPEN_KEY));
        p.options.insert("sub_appid".into(), "wxde66bf91cac57773".into());
        Mct::from_config(&p).unwrap()
    }

    #[test]
    fn signature_matches_the_documents_vector() {
        // §2.4: open_id, timestamp and data, plus open_key, sorted; sha1 then md5.
        let fields: BTreeMap<String, String> =
            [("open_id", OPEN_ID), ("timestamp", "1497957842"), ("data", "3304A5EC2CDEB4D12ED3338B5C01BF6B")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(sign(&fields, OPEN_KEY), "915be5aff09f2686870e1d17e93b3542");
    }

    #[test]
    fn the_documents_request_example_opens_and_verifies() {
        // §2.4's final body (003 line 61), byte for byte; its data is `{"pmt_type":0}` sealed
        // with the printed open_key as 32 raw bytes (a hex-decoded key does not open it).
        let body = b"timestamp=1497957842&open_id=87f46f5db1b65f0ac195285f49ee6958&data=3304A5EC2CDEB4D12ED3338B5C01BF6B&sign=915be5aff09f2686870e1d17e93b3542";
        let env = Envelope::new(OPEN_ID, OPEN_KEY, true).unwrap();
        let (_, data) = provider::read_request(body, 1_497_957_842, |id| (id == OPEN_ID).then(|| env.clone())).unwrap();
        assert_eq!(data, json!({"pmt_type": 0}));
        assert_eq!(env.seal(&json!({"pmt_type": 0})), "3304A5EC2CDEB4D12ED3338B5C01BF6B");
        // Lowercase data is another string to sign: the signature covers the hex as sent.
        let lower = String::from_utf8_lossy(body)
            .replace("3304A5EC2CDEB4D12ED3338B5C01BF6B", "3304a5ec2cdeb4d12ed3338b5c01bf6b");
        assert_eq!(provider::read_request(lower.as_bytes(), 1_497_957_842, |_| Some(env.clone())).unwrap_err().code, 5);
    }

    #[test]
    fn data_is_aes256_ecb_hex() {
        let env = Envelope::new(OPEN_ID, OPEN_KEY, true).unwrap();
        let sealed = env.seal(&json!({"out_no": "1"}));
        assert!(sealed.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
        let raw = hex::decode(&sealed).unwrap();
        assert_eq!(aes_decrypt(OPEN_KEY.as_bytes(), AesMode::Ecb, &raw).unwrap(), br#"{"out_no":"1"}"#);
        assert_eq!(env.open(&sealed.to_ascii_lowercase()).unwrap(), json!({"out_no": "1"}));
        assert!(Envelope::new(OPEN_ID, "short", true).is_err());
    }

    #[test]
    fn payorder_round_trip_through_the_provider_side() {
        let m = account();
        let mut p = crate::test_support::payment();
        p.channel = Channel::Wechat;
        p.scene = Scene::Miniapp;
        let extra = Default::default();
        let order =
            CreateOrder { openid: Some("oRBX"), extra: &extra, ..CreateOrder::new(&p, "https://gw/callbacks/mct") };
        let now = 1_700_000_000;
        let CreateStep::Call(req) = m.create_payment(&order, now).unwrap() else { panic!() };
        assert_eq!(req.path, "/mct1/payorder");
        let env = Envelope::new(OPEN_ID, OPEN_KEY, true).unwrap();
        let (_, data) = provider::read_request(&req.body, now + 10, |id| (id == OPEN_ID).then(|| env.clone())).unwrap();
        assert_eq!(data["sub_appid"], "wxde66bf91cac57773");
        assert_eq!(data["sub_openid"], "oRBX");
        assert_eq!(data["trade_amount"], "100");
        assert_eq!(
            provider::read_request(&req.body, now + 601, |_| Some(env.clone())).unwrap_err().code,
            9,
            "outside ±600 s"
        );

        let answer = env.answer(0, "ok", Some(&json!({"ord_no": "9149853698138671785993018", "out_no": p.payment_id, "trade_amount": "100", "status": "2",
            "appId": " wxad4459eb8e963029", "timeStamp": "1498536981", "nonceStr": "TkU7", "signType": "MD5", "package": "prepay_id=wx1", "paySign": "8A1C"})), now);
        let created = m.read_create(&order, ProviderResponse { status: 200, body: answer.as_bytes() }).unwrap();
        let Action::Jsapi { params } = created.action else { panic!() };
        assert_eq!(params["appId"], "wxad4459eb8e963029");
        assert_eq!(params["package"], "prepay_id=wx1");
        let tampered = answer.replace("\"msg\":\"ok\"", "\"msg\":\"ko\"");
        assert!(m.read_create(&order, ProviderResponse { status: 200, body: tampered.as_bytes() }).is_err());
        let refused = r#"{"errcode":8045,"msg":"out_no已经存在，请勿重复发起支付"}"#;
        assert!(
            matches!(m.read_create(&order, ProviderResponse { status: 200, body: refused.as_bytes() }), Err(DialectError::Rejected { code, .. }) if code == "8045")
        );
    }

    #[test]
    fn notify_is_verified_and_a_late_retry_still_counts() {
        let m = account();
        let env = Envelope::new(OPEN_ID, OPEN_KEY, true).unwrap();
        let q = provider::notify_query(&env, "91497948693", "P1", "1", "abc", 1_700_000_000);
        let inbound = InboundHttp { method: "GET", query: &q, content_type: "", body: b"" };
        let CallbackReport::Payment(r) = m.read_callback(inbound, 1_700_000_100).unwrap() else { panic!() };
        assert_eq!((r.payment_id.as_str(), r.status), ("P1", PaymentStatus::Succeeded));
        // The provider retries for 3 hours (§4.8) and the document sets no window on notifies:
        // a late one still counts (settling is idempotent).
        assert!(m.read_callback(inbound, 1_700_007_200).is_ok(), "a retry two hours later");
        let forged = q.replace("status=1", "status=4");
        assert!(m.read_callback(InboundHttp { query: &forged, ..inbound }, 1_700_000_100).is_err());
        assert_eq!(m.callback_reply(true).body, "notify_success");
    }

    #[test]
    fn text_is_cut_in_characters_as_the_document_counts() {
        let m = account();
        let mut p = crate::test_support::payment();
        p.subject = "学".repeat(120);
        p.description = "费".repeat(250);
        let extra = Default::default();
        let order = CreateOrder { extra: &extra, ..CreateOrder::new(&p, "https://gw/cb") };
        let CreateStep::Call(req) = m.create_payment(&order, 1_700_000_000).unwrap() else { panic!() };
        let env = Envelope::new(OPEN_ID, OPEN_KEY, true).unwrap();
        let (_, d) = provider::read_request(&req.body, 1_700_000_000, |_| Some(env.clone())).unwrap();
        // 100 characters (not 100 bytes, which would be 33 Chinese characters).
        assert_eq!(d["ord_name"].as_str().unwrap().chars().count(), 100);
        assert_eq!(d["remark"].as_str().unwrap().chars().count(), 100);
        let mut mini = p.clone();
        mini.scene = Scene::Miniapp;
        mini.channel = Channel::Wechat;
        let order = CreateOrder { payment: &mini, openid: Some("o1"), ..order };
        let CreateStep::Call(req) = m.create_payment(&order, 1_700_000_000).unwrap() else { panic!() };
        let (_, d) = provider::read_request(&req.body, 1_700_000_000, |_| Some(env.clone())).unwrap();
        assert_eq!(d["remark"].as_str().unwrap().chars().count(), 200, "mini programs take 200 (§4.4.5)");
    }

    #[test]
    fn error_codes_and_status() {
        assert_eq!(refusal("8022"), Refusal::AmountExceeded);
        assert_eq!(refusal("8012"), Refusal::InvalidState);
        assert_eq!(refusal("8007"), Refusal::NotEnabled);
        assert_eq!(refusal("5"), Refusal::Generic);
        assert_eq!(payment_status("9"), PaymentStatus::Pending);
        assert_eq!(payment_status("4"), PaymentStatus::Closed);
        let plain = r#"{"errcode":0,"msg":"ok","data":[{"pmt_name":"支付宝","pmt_type":"2,3","pmt_tag":"AlipayCS"}]}"#;
        let methods = account().read_payment_methods(ProviderResponse { status: 200, body: plain.as_bytes() }).unwrap();
        assert_eq!(methods[0].tag, "AlipayCS");
        assert_eq!(methods[0].types, vec!["2", "3"]);
    }
}
