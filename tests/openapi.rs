//! Answers from a sandbox flow validate against the schemas of `openapi.yaml` (a small
//! validator for the parts of JSON Schema the document uses: $ref, type, nullable, required,
//! properties, enum, oneOf, allOf).

mod common;

use common::*;
use serde_json::{json, Value};

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return validate(doc, &doc["components"]["schemas"][name], value, at);
    }
    if value.is_null() {
        return if schema.get("nullable") == Some(&Value::Bool(true)) {
            Ok(())
        } else {
            Err(format!("{at}: null where not nullable"))
        };
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one.iter().filter(|s| validate(doc, s, value, at).is_ok()).count();
        if matching != 1 {
            return Err(format!("{at}: matches {matching} of oneOf"));
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: {value} is not a {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            return Err(format!("{at}: {value} not in {e:?}"));
        }
    }
    for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let name = r.as_str().unwrap();
        if value.get(name).is_none() {
            return Err(format!("{at}: missing {name}"));
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, s) in props {
            if let Some(v) = value.get(name) {
                validate(doc, s, v, &format!("{at}.{name}"))?;
            }
        }
    }
    Ok(())
}

fn check(doc: &Value, schema: &str, value: &Value) {
    let s = json!({"$ref": format!("#/components/schemas/{schema}")});
    if let Err(e) = validate(doc, &s, value, schema) {
        panic!("{e}\n{value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_answers_match_the_documented_schemas() {
    let doc: Value = serde_saphyr::from_str(payglot::doors::merchant_api::OPENAPI).unwrap();
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let served = gw.http("GET", &format!("http://127.0.0.1:{}/openapi.yaml", gw.admin_port), &[], b"").await;
    assert_eq!(
        String::from_utf8_lossy(&served.body),
        payglot::doors::merchant_api::OPENAPI,
        "the admin listener serves the document"
    );

    let (_, created) = gw.call("POST", "/v1/payments", &payment_body("OA-1", 100)).await;
    check(&doc, "Payment", &created);
    gw.pay_at_sandbox(created["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    let (_, paid) = gw.call("GET", "/v1/payments/OA-1", "").await;
    check(&doc, "Payment", &paid);
    let (_, zx) = gw
        .call_as(
            "school-zx",
            "POST",
            "/v1/payments",
            &json!({"out_trade_no": "OA-2", "amount": 300, "subject": "s", "channel": "alipay", "scene": "h5"})
                .to_string(),
        )
        .await;
    check(&doc, "Payment", &zx);
    gw.pay_at("zhixiao", zx["payment_id"].as_str().unwrap()).await;
    events(&merchant, 2).await;
    let (_, refund) = gw
        .call_as(
            "school-zx",
            "POST",
            "/v1/payments/OA-2/refunds",
            &json!({"out_refund_no": "OAR", "amount": 100}).to_string(),
        )
        .await;
    check(&doc, "Refund", &refund);
    let (_, jg) = gw.call_as("school-jg", "POST", "/v1/payments", &json!({"out_trade_no": "OA-3", "amount": 300, "subject": "s", "channel": "alipay", "scene": "web", "return_url": "https://s/r"}).to_string()).await;
    check(&doc, "Payment", &jg);
    let payee = json!({"account_type": "bank", "account_name": "张三", "account_no": "6222021234567890123", "bank_code": "HPT00003", "bank_name": "建设银行", "province": "江苏", "city": "南京"});
    let (_, payout) = gw
        .call("POST", "/v1/payouts", &json!({"out_payout_no": "OAW", "amount": 100, "payee": payee}).to_string())
        .await;
    check(&doc, "Payout", &payout);
    let (status, error) = gw.call("GET", "/v1/payments/none", "").await;
    assert_eq!(status, 404);
    check(&doc, "Error", &error);
    // The validator bites: a payment without its status does not pass.
    let mut broken = paid.clone();
    broken.as_object_mut().unwrap().remove("status");
    assert!(validate(&doc, &json!({"$ref": "#/components/schemas/Payment"}), &broken, "Payment").is_err());
}
