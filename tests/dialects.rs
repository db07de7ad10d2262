//! Every operation of every dialect through the merchant API, against the sandbox providers
//! over real HTTP: create, pay, callback, notification, query, close, refund, payouts,
//! balance, payment methods, and `unsupported_operation` where a provider lacks one.

mod common;

use common::*;
use serde_json::{json, Value};

fn body(out_trade_no: &str, amount: i64, channel: &str, scene: &str, extra: Value) -> String {
    let mut b = json!({"out_trade_no": out_trade_no, "amount": amount, "subject": "学费 Tuition", "channel": channel, "scene": scene});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b.to_string()
}

async fn started() -> (MerchantServer, Gateway) {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    (merchant, gw)
}

fn assert_unsupported(status: u16, e: &Value, account: &str) {
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "unsupported_operation");
    assert_eq!(e["error"]["provider"], account);
    assert!(e["error"]["message"].as_str().unwrap().contains(account), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xiaojitong_qr_with_reallyprice_callback_and_check_order() {
    let (merchant, gw) = started().await;
    let s = "school-xjt";
    let (status, first) = gw.call_as(s, "POST", "/v1/payments", &body("X-1", 1980, "wechat", "qr", json!({}))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["action"]["type"], "qr_code");
    assert_eq!(first["action"]["amount"], 1980);
    // A second pending order of the same price is asked one fen more (reallyprice).
    let (_, second) = gw.call_as(s, "POST", "/v1/payments", &body("X-2", 1980, "wechat", "qr", json!({}))).await;
    assert_eq!(second["action"]["amount"], 1981);

    let (status, e) = gw.call_as(s, "POST", "/v1/payments", &body("X-3", 100, "wechat", "h5", json!({}))).await;
    assert_unsupported(status, &e, "xjt");
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/X-1/close", "").await;
    assert_unsupported(status, &e, "xjt");

    gw.pay_at("xiaojitong", second["provider_trade_no"].as_str().unwrap()).await;
    let events = events(&merchant, 1).await;
    let data = &events[0].json()["data"];
    assert!(events[0].signature_valid());
    assert_eq!(
        (data["out_trade_no"].as_str(), data["amount"].as_i64(), data["paid_amount"].as_i64()),
        (Some("X-2"), Some(1980), Some(1981))
    );

    // checkOrder: unpaid stays pending; paid (its callback is lost here) settles by query.
    let (_, q) = gw.call_as(s, "GET", "/v1/payments/X-1", "").await;
    assert_eq!(q["status"], "pending");
    let (status, e) = gw
        .call_as(s, "POST", "/v1/payments/X-1/refunds", &json!({"out_refund_no": "XR1", "amount": 1}).to_string())
        .await;
    assert_unsupported(status, &e, "xjt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zhixiao_create_pay_refund_cancel_and_mini_program() {
    let (merchant, gw) = started().await;
    let s = "school-zx";
    let extra = json!({"return_url": "https://school/done", "extra": {"user_no": "2013141516", "user_name": "张三", "piaoju": {"payer_type": 1, "payer_name": "小明", "phone": "13000000000"}}});
    let (status, p) = gw.call_as(s, "POST", "/v1/payments", &body("Z-1", 19800, "alipay", "h5", extra)).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["action"]["type"], "redirect");
    gw.pay_at("zhixiao", p["payment_id"].as_str().unwrap()).await;
    let ev = events(&merchant, 1).await;
    assert_eq!(ev[0].json()["type"], "payment.succeeded");
    let (_, q) = gw.call_as(s, "GET", "/v1/payments/Z-1", "").await;
    assert_eq!(q["status"], "succeeded");

    let refund = |no: &str, amount: i64| json!({"out_refund_no": no, "amount": amount, "reason": "退学"}).to_string();
    let (status, r) = gw.call_as(s, "POST", "/v1/payments/Z-1/refunds", &refund("ZR-1", 5000)).await;
    assert_eq!((status, r["status"].as_str()), (200, Some("succeeded")), "{r}");
    let (status, again) = gw.call_as(s, "POST", "/v1/payments/Z-1/refunds", &refund("ZR-1", 5000)).await;
    assert_eq!((status, &again["refund_id"]), (200, &r["refund_id"]), "idempotent on out_refund_no");
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/Z-1/refunds", &refund("ZR-1", 4000)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("duplicate_out_refund_no")));
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/Z-1/refunds", &refund("ZR-2", 14801)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("amount_exceeds_refundable")), "{e}");
    let (status, r2) = gw.call_as(s, "POST", "/v1/payments/Z-1/refunds", &refund("ZR-3", 14800)).await;
    assert_eq!(status, 200, "{r2}");
    let ev = events(&merchant, 3).await;
    assert_eq!(ev[1].json()["type"], "refund.succeeded");
    assert_eq!(ev[2].json()["data"]["payment"]["refunded_amount"], 19800);
    let (_, rq) = gw.call_as(s, "GET", "/v1/refunds/ZR-3", "").await;
    assert_eq!(rq["status"], "succeeded");
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/Z-1/refunds", &refund("ZR-4", 1)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("amount_exceeds_refundable")), "fully refunded: {e}");

    let (_, p2) = gw.call_as(s, "POST", "/v1/payments", &body("Z-2", 100, "wechat", "qr", json!({}))).await;
    assert_eq!(p2["action"]["type"], "qr_code");
    let (status, closed) = gw.call_as(s, "POST", "/v1/payments/Z-2/close", "").await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")), "{closed}");
    let ev = events(&merchant, 4).await;
    assert_eq!(ev[3].json()["type"], "payment.closed");
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/Z-1/close", "").await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("invalid_state")));

    let (status, mini) = gw
        .call_as(
            s,
            "POST",
            "/v1/payments",
            &body("Z-3", 100, "wechat", "miniapp", json!({"openid": "oGTHE5BRsqWUqkvsNz3PGa_rXPKA"})),
        )
        .await;
    assert_eq!(status, 200, "{mini}");
    assert_eq!(mini["action"]["type"], "jsapi");
    assert!(mini["action"]["params"]["package"].as_str().unwrap().starts_with("prepay_id="));
    let (status, e) =
        gw.call_as(s, "POST", "/v1/payments", &body("Z-4", 100, "alipay", "miniapp", json!({"openid": "x"}))).await;
    assert_unsupported(status, &e, "zx");

    // The optional calls of §2.6 and §2.7.
    let (status, who) = gw.call_as(s, "GET", "/v1/identity?provider=zx&uid=2088612279536603", "").await;
    assert_eq!((status, who["user"]["user_no"].as_str()), (200, Some("20140548")), "{who}");
    let (status, card) =
        gw.call_as(s, "GET", "/v1/card-link?provider=zx&user_no=20180911001&school_id=10086", "").await;
    assert_eq!(status, 200, "{card}");
    assert!(card["card"]["schema_url"].as_str().unwrap().starts_with("https://"));
    let (status, e) = gw.call_as("school-mct", "GET", "/v1/identity?provider=mct&uid=1", "").await;
    assert_unsupported(status, &e, "mct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jings_browser_form_checkout_notify_query_and_balance() {
    let (merchant, gw) = started().await;
    let s = "school-jg";
    let (status, e) = gw.call_as(s, "POST", "/v1/payments", &body("J-0", 101, "alipay", "web", json!({}))).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "return_url is required by jings: {e}"
    );
    let (status, p) = gw
        .call_as(
            s,
            "POST",
            "/v1/payments",
            &body("J-1", 101, "alipay", "web", json!({"return_url": "https://school/done"})),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["action"]["type"], "form_post");
    assert_eq!(p["provider_trade_no"], Value::Null, "no server call was made");
    let fields = p["action"]["fields"].as_object().unwrap();
    assert_eq!(fields["paymoney"], "1.01");

    // The checkout page auto-submits the form; a browser would post it to the provider.
    let page = gw
        .http("GET", &format!("{}/v1/payments/{}/checkout", gw.base(), p["payment_id"].as_str().unwrap()), &[], b"")
        .await;
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert_eq!(page.status, 200);
    assert!(
        html.contains("document.forms[0].submit()")
            && html.contains(&format!("value=\"{}\"", fields["key"].as_str().unwrap())),
        "{html}"
    );
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    let form_body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let posted = gw
        .http(
            "POST",
            p["action"]["url"].as_str().unwrap(),
            &[("content-type", "application/x-www-form-urlencoded")],
            form_body.as_bytes(),
        )
        .await;
    assert_eq!(posted.status, 200, "{}", String::from_utf8_lossy(&posted.body));
    let tampered = form_body.replace("paymoney=1.01", "paymoney=0.01");
    let refused = gw
        .http(
            "POST",
            p["action"]["url"].as_str().unwrap(),
            &[("content-type", "application/x-www-form-urlencoded")],
            tampered.as_bytes(),
        )
        .await;
    assert_eq!(refused.status, 400, "the sandbox checks the key");

    let (_, q) = gw.call_as(s, "GET", "/v1/payments/J-1", "").await;
    assert_eq!(q["status"], "pending");
    gw.pay_at("jings", p["payment_id"].as_str().unwrap()).await;
    let ev = events(&merchant, 1).await;
    assert_eq!(ev[0].json()["data"]["provider_trade_no"].as_str().map(|s| !s.is_empty()), Some(true));

    let (status, b) = gw.call_as(s, "GET", "/v1/balance?provider=jg", "").await;
    assert_eq!((status, b["balance"].as_i64(), b["cached"].as_bool()), (200, Some(101), Some(false)), "{b}");
    let (status, b2) = gw.call_as(s, "GET", "/v1/balance?provider=jg", "").await;
    assert_eq!((status, b2["cached"].as_bool()), (200, Some(true)), "one balance call per three minutes: {b2}");
    let (status, e) = gw.call_as(s, "GET", "/v1/balance?provider=mct", "").await;
    assert_eq!(status, 404, "another merchant's account: {e}");
    let (status, e) = gw
        .call_as(s, "POST", "/v1/payments/J-1/refunds", &json!({"out_refund_no": "JR", "amount": 1}).to_string())
        .await;
    assert_unsupported(status, &e, "jg");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mct_scenes_refund_cancel_and_paylist() {
    let (merchant, gw) = started().await;
    let s = "school-mct";
    let (status, p) = gw.call_as(s, "POST", "/v1/payments", &body("M-1", 300, "wechat", "qr", json!({}))).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["action"]["type"], "qr_code");
    gw.pay_at("mct", p["payment_id"].as_str().unwrap()).await;
    events(&merchant, 1).await;

    let (status, r) = gw
        .call_as(s, "POST", "/v1/payments/M-1/refunds", &json!({"out_refund_no": "MR-1", "amount": 100}).to_string())
        .await;
    assert_eq!((status, r["status"].as_str()), (200, Some("succeeded")), "{r}");
    assert!(r["provider_refund_no"].as_str().is_some());
    let mct_refund = |no: &str, amount: i64| json!({"out_refund_no": no, "amount": amount}).to_string();
    let (status, r2) = gw.call_as(s, "POST", "/v1/payments/M-1/refunds", &mct_refund("MR-2", 200)).await;
    assert_eq!(
        (status, r2["status"].as_str()),
        (200, Some("succeeded")),
        "partial refunds add up to the paid 300: {r2}"
    );
    let (_, rq) = gw.call_as(s, "GET", "/v1/refunds/MR-2", "").await;
    assert_eq!(rq["status"], "succeeded");
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/M-1/refunds", &mct_refund("MR-3", 1)).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("amount_exceeds_refundable")), "{e}");

    let (status, bar) = gw
        .call_as(
            s,
            "POST",
            "/v1/payments",
            &body("M-2", 50, "alipay", "barcode", json!({"auth_code": "284981234567890123"})),
        )
        .await;
    assert_eq!((status, bar["status"].as_str()), (200, Some("succeeded")), "barcode pays at once: {bar}");

    let (status, js) = gw
        .call_as(
            s,
            "POST",
            "/v1/payments",
            &body("M-3", 50, "wechat", "jsapi", json!({"openid": "oRBXQs6pH6F9R5Yw4dkJ8y9aXPqA"})),
        )
        .await;
    assert_eq!(status, 200, "{js}");
    assert_eq!(js["action"]["params"]["appId"], "wxde66bf91cac57773");
    let (_, jump) = gw
        .call_as(
            s,
            "POST",
            "/v1/payments",
            &body(
                "M-4",
                50,
                "alipay",
                "jsapi",
                json!({"openid": "2088", "extra": {"jump_url": "https://school/back"}}),
            ),
        )
        .await;
    assert_eq!(jump["action"]["type"], "redirect", "{jump}");

    // mct cancels barcode payments only (§5, 8013): no call for this one.
    let before = gw.sandbox_requests(gw.sandbox_port, "mct").await;
    let (status, e) = gw.call_as(s, "POST", "/v1/payments/M-4/close", "").await;
    assert_unsupported(status, &e, "mct");
    assert_eq!(gw.sandbox_requests(gw.sandbox_port, "mct").await, before, "refused before any call");

    let (status, m) = gw.call_as(s, "GET", "/v1/payment-methods?provider=mct", "").await;
    assert_eq!(status, 200, "{m}");
    let tags: Vec<&str> = m["methods"].as_array().unwrap().iter().map(|x| x["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, vec!["Weixin", "Alipay"]);

    // M-1 and M-2 paid, two refunds of M-1: four events.
    let ev = events(&merchant, 4).await;
    let kinds: Vec<String> = ev.iter().map(|e| e.json()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "payment.succeeded").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "refund.succeeded").count(), 2, "{kinds:?}");
    let (status, e) = gw.call_as(s, "GET", "/v1/balance?provider=mct", "").await;
    assert_unsupported(status, &e, "mct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xxpay_payouts_are_created_notified_and_queried() {
    let (merchant, gw) = started().await;
    let payout = json!({
        "out_payout_no": "W-1", "amount": 12345,
        "payee": {"account_type": "bank", "account_name": "张三", "account_no": "6222021234567890123", "bank_code": "HPT00002", "bank_name": "中国工商银行", "province": "江苏", "city": "南京"}
    });
    let (status, p) = gw.call("POST", "/v1/payouts", &payout.to_string()).await;
    assert_eq!((status, p["status"].as_str()), (200, Some("pending")), "{p}");
    assert_eq!(p["payee"]["account_no"], "***************0123", "account numbers are masked");
    let (_, again) = gw.call("POST", "/v1/payouts", &payout.to_string()).await;
    assert_eq!(again["payout_id"], p["payout_id"]);
    gw.complete_payout(p["payout_id"].as_str().unwrap()).await;
    let ev = events(&merchant, 1).await;
    let body = ev[0].json();
    assert_eq!((body["type"].as_str(), body["data"]["amount"].as_i64()), (Some("payout.succeeded"), Some(12345)));
    assert!(!ev[0].body.contains("6222021234567890123"), "no full account number in events");
    let (_, q) = gw.call("GET", "/v1/payouts/W-1", "").await;
    assert_eq!(q["status"], "succeeded");
    let (status, e) = gw.call_as("school-zx", "POST", "/v1/payouts", &payout.to_string()).await;
    assert_eq!(status, 422, "zhixiao has no payouts: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_reach_the_merchant_with_code_and_message() {
    let (_merchant, gw) = started().await;
    let (status, e) =
        gw.call_as("school-bad", "POST", "/v1/payments", &body("B-1", 100, "wechat", "qr", json!({}))).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"]["code"], "provider_error");
    assert_eq!(
        (e["error"]["provider"].as_str(), e["error"]["provider_code"].as_str()),
        (Some("xxpay-unknown"), Some("FAIL"))
    );
    assert_eq!(e["error"]["provider_message"], "商户不存在");
    let (status, e) =
        gw.call_as("school-bad", "POST", "/v1/payments", &body("B-2", 100, "alipay", "qr", json!({}))).await;
    assert_eq!((status, e["error"]["provider_code"].as_str()), (502, Some("3002")), "{e}");
    assert_eq!(e["error"]["provider_message"], "门店不存在");
    let (_, p) = gw.call_as("school-bad", "GET", "/v1/payments/B-2", "").await;
    assert_eq!(p["status"], "failed", "refused by every account: {p}");
}

/// A payment created through `school`, paid at the sandbox (its callback goes nowhere).
async fn paid_without_callback(
    gw: &Gateway,
    school: &str,
    dialect: &str,
    no: &str,
    channel: &str,
    scene: &str,
) -> Value {
    let extra = json!({"return_url": "https://school/done"});
    let (status, p) = gw.call_as(school, "POST", "/v1/payments", &body(no, 300, channel, scene, extra)).await;
    assert_eq!(status, 200, "{p}");
    if dialect == "jings" {
        // jings orders exist once the payer's browser posted the form: post it as a browser.
        let fields = p["action"]["fields"].as_object().unwrap();
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())))
            .finish();
        let ct = [("content-type", "application/x-www-form-urlencoded")];
        gw.http("POST", p["action"]["url"].as_str().unwrap(), &ct, form.as_bytes()).await;
    }
    gw.pay_at(dialect, p["payment_id"].as_str().unwrap()).await;
    p
}

fn xxpay_paid_fields(payment_id: &str) -> std::collections::BTreeMap<String, String> {
    [
        ("payOrderId", "x"),
        ("mchId", XXPAY_A.0),
        ("mchOrderNo", payment_id),
        ("amount", "300"),
        ("status", "2"),
        ("paySuccTime", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_change_nothing_and_make_payglot_ask_the_provider() {
    use payglot::dialects::{jings, mct, xiaojitong, xxpay, zhixiao};
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    // Providers call back to an address where nobody listens: their real callbacks are lost.
    gw.public_url = format!("http://127.0.0.1:{}", free_port());
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;

    // An unpaid payment: a forged "paid" callback is refused and moves nothing.
    let (_, unpaid) = gw.call("POST", "/v1/payments", &payment_body("F-0", 300)).await;
    let forged = xxpay::provider::notify_body(xxpay_paid_fields(unpaid["payment_id"].as_str().unwrap()), "wrong-key");
    assert_eq!(gw.callback("xxpay-a", &forged).await, (400, "fail".to_string()));
    let (_, still) = gw.call("GET", "/v1/payments/F-0", "").await;
    assert_eq!(still["status"], "pending");

    let wrong = |s: &str| s.to_string() + "-wrong";
    let mut sent = Vec::new();

    let p = paid_without_callback(&gw, "school-a", "xxpay", "F-1", "alipay", "qr").await;
    let forged = xxpay::provider::notify_body(xxpay_paid_fields(p["payment_id"].as_str().unwrap()), &wrong(XXPAY_A.2));
    sent.push(("xxpay-a", gw.callback("xxpay-a", &forged).await.0));

    let p = paid_without_callback(&gw, "school-xjt", "xiaojitong", "F-2", "wechat", "qr").await;
    let id = p["payment_id"].as_str().unwrap();
    let q = xiaojitong::provider::callback_query("2", id, "", "3.00", "3.00", &wrong(XJT_KEY));
    sent.push(("xjt", gw.http("GET", &format!("{}/callbacks/xjt?{q}", gw.base()), &[], b"").await.status));

    let p = paid_without_callback(&gw, "school-zx", "zhixiao", "F-3", "alipay", "h5").await;
    let env =
        zhixiao::Envelope::new("partner1", "not-weiweixiao", "AD42F6697B035B7580E4FEF93BE20B4D", &Default::default())
            .unwrap();
    let forged =
        env.request_body(&json!({"out_trade_no": p["payment_id"], "order_id": "1", "time_end": "2026-11-22 10:00:00"}));
    sent.push(("zx", gw.callback("zx", &forged).await.0));

    let p = paid_without_callback(&gw, "school-jg", "jings", "F-4", "alipay", "web").await;
    let forged =
        jings::provider::notify_body("1", p["payment_id"].as_str().unwrap(), "", "3.00", "3.00", &wrong(JINGS_TOKEN));
    sent.push(("jg", gw.callback("jg", &forged).await.0));

    let p = paid_without_callback(&gw, "school-mct", "mct", "F-5", "wechat", "qr").await;
    let env = mct::Envelope::new("87f46f5db1b65f0ac195285f49ee6958", "00000000000000000000000000000000", true).unwrap();
    let q = mct::provider::notify_query(&env, "1", p["payment_id"].as_str().unwrap(), "1", "r", now());
    sent.push(("mct", gw.http("GET", &format!("{}/callbacks/mct?{q}", gw.base()), &[], b"").await.status));

    for (account, status) in &sent {
        assert_eq!(*status, 400, "{account}: forged callback refused");
    }
    // Each refusal made payglot ask the provider, whose verified answer settles the payment.
    let events = events(&merchant, 5).await;
    let mut paid: Vec<String> =
        events.iter().map(|e| e.json()["data"]["out_trade_no"].as_str().unwrap().to_string()).collect();
    paid.sort();
    assert_eq!(paid, vec!["F-1", "F-2", "F-3", "F-4", "F-5"]);
    assert!(events.iter().all(|e| e.json()["type"] == "payment.succeeded" && e.signature_valid()));
    let (_, f0) = gw.call("GET", "/v1/payments/F-0", "").await;
    assert_eq!(f0["status"], "pending", "the unpaid one stays unpaid");
}
