//! Codec cost per dialect (DESIGN.md §9: under 10 µs on one core): encode + sign a create
//! request, verify + decode its answer, verify + decode a callback; plus the merchant API's
//! HMAC check and event signing. `cargo bench --bench codecs`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use payglot::config::{ProviderConfig, Secret};
use payglot::dialects::{self, CreateOrder, CreateStep, Dialect, InboundHttp, ProviderResponse};
use payglot::model::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn account(dialect: &str, creds: &[(&str, &str)]) -> Arc<dyn Dialect> {
    let mut p = ProviderConfig::with_defaults("bench", dialect);
    for (k, v) in creds {
        p.credentials.insert(k.to_string(), Secret::new(*v));
    }
    dialects::build(&p).unwrap()
}

fn payment(channel: Channel, scene: Scene) -> Payment {
    Payment {
        amount: 19_800,
        subject: "2026 秋季学费".into(),
        channel,
        scene,
        provider: "bench".into(),
        notify_url: Some("https://school/notify".into()),
        return_url: Some("https://school/done".into()),
        ..payglot::test_support::payment()
    }
}

/// One dialect's three codec paths, with the answer and callback built by its provider side.
struct Case {
    name: &'static str,
    dialect: Arc<dyn Dialect>,
    payment: Payment,
    answer: Vec<u8>,
    callback_method: &'static str,
    callback_query: String,
    callback_body: Vec<u8>,
}

fn cases() -> Vec<Case> {
    use payglot::dialects::{jings, mct, xiaojitong, xxpay, zhixiao};
    let now = now_unix();
    let id = "P1700000000abcdefghijklmnopqrs";
    let mut out = Vec::new();

    let mut answer = Map::new();
    answer.insert("payOrderId".into(), Value::String("P01".into()));
    answer.insert("payParams".into(), json!({"payUrl": "https://qr.alipay.com/bax07593"}));
    let fields = [
        ("payOrderId", "P01"),
        ("mchId", "20001222"),
        ("mchOrderNo", id),
        ("amount", "19800"),
        ("status", "2"),
        ("paySuccTime", "1505049094262"),
    ];
    out.push(Case {
        name: "xxpay",
        dialect: account("xxpay", &[("mch_id", "20001222"), ("app_id", "app"), ("key", "k3y")]),
        payment: payment(Channel::Alipay, Scene::Qr),
        answer: xxpay::provider::success(answer, "k3y").into_bytes(),
        callback_method: "POST",
        callback_query: String::new(),
        callback_body: xxpay::provider::notify_body(
            fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            "k3y",
        )
        .into_bytes(),
    });

    out.push(Case {
        name: "xiaojitong",
        dialect: account("xiaojitong", &[("mid", "2"), ("key", "k3y")]),
        payment: payment(Channel::Wechat, Scene::Qr),
        answer: json!({"code": 1, "msg": "成功", "data": {"mid": 2, "payid": id, "orderid": "20220326232724", "paytype": 1, "price": 198.0, "reallyprice": 198.01, "payurl": "wxp://f2f0"}})
            .to_string()
            .into_bytes(),
        callback_method: "GET",
        callback_query: xiaojitong::provider::callback_query("2", id, "", "198.00", "198.01", "k3y"),
        callback_body: Vec::new(),
    });

    let env = zhixiao::Envelope::new("partner1", "weiweixiao", "AD42F6697B035B7580E4FEF93BE20B4D", &Default::default())
        .unwrap();
    out.push(Case {
        name: "zhixiao",
        dialect: account("zhixiao", &[("appid", "partner1"), ("appsecret", "weiweixiao"), ("aes_key", "AD42F6697B035B7580E4FEF93BE20B4D")]),
        payment: payment(Channel::Alipay, Scene::H5),
        answer: env.answer(0, Some(&json!({"out_trade_no": id, "order_id": "1464678934786097", "url": "https://pay/1"})), "").into_bytes(),
        callback_method: "POST",
        callback_query: String::new(),
        callback_body: env.request_body(&json!({"out_trade_no": id, "order_id": "1", "time_end": "2017-07-23 16:00:00", "uid": "2088", "pay_type": "2"})).into_bytes(),
    });

    out.push(Case {
        name: "jings",
        dialect: account("jings", &[("uid", "10000001400000"), ("token", "10665CF54E90822951FE80330E9CF715")]),
        payment: payment(Channel::Alipay, Scene::Web),
        answer: br#"{"msg":"","orderid":"P1700000000abcdefghijklmnopqrs","payid":"1000","paymoney":"198.00","realpay":"198.00","status":"0"}"#.to_vec(),
        callback_method: "POST",
        callback_query: String::new(),
        callback_body: jings::provider::notify_body("1000", id, "", "198.00", "198.00", "10665CF54E90822951FE80330E9CF715").into_bytes(),
    });

    let menv =
        mct::Envelope::new("87f46f5db1b65f0ac195285f49ee6958", "0828e83720fdbe3685a7b94214af04f9", true).unwrap();
    out.push(Case {
        name: "mct",
        dialect: account("mct", &[("open_id", "87f46f5db1b65f0ac195285f49ee6958"), ("open_key", "0828e83720fdbe3685a7b94214af04f9")]),
        payment: payment(Channel::Wechat, Scene::Qr),
        answer: menv.answer(0, "ok", Some(&json!({"ord_no": "9149", "out_no": id, "trade_amount": "19800", "status": "2", "trade_qrcode": "weixin://wxpay/bizpayurl?pr=UgaOMDG"})), now).into_bytes(),
        callback_method: "GET",
        callback_query: mct::provider::notify_query(&menv, "9149", id, "1", "abcdef", now),
        callback_body: Vec::new(),
    });
    out
}

fn codecs(c: &mut Criterion) {
    let extra = Map::new();
    let now = now_unix();
    for case in cases() {
        let order =
            CreateOrder { extra: &extra, ..CreateOrder::new(&case.payment, "https://pay.example.edu/callbacks/bench") };
        c.bench_function(&format!("{}/create: encode + sign", case.name), |b| {
            b.iter(|| black_box(case.dialect.create_payment(black_box(&order), now).unwrap()))
        });
        let answer = ProviderResponse { status: 200, body: &case.answer };
        if case.name == "jings" {
            // jings creates in the browser: its answer to read is the query's.
            c.bench_function("jings/query answer: verify + decode", |b| {
                b.iter(|| black_box(case.dialect.read_query(&case.payment, answer).unwrap()))
            });
        } else {
            assert!(matches!(case.dialect.create_payment(&order, now).unwrap(), CreateStep::Call(_)));
            c.bench_function(&format!("{}/create answer: verify + decode", case.name), |b| {
                b.iter(|| black_box(case.dialect.read_create(&order, answer).unwrap()))
            });
        }
        let cb = InboundHttp {
            method: case.callback_method,
            query: &case.callback_query,
            content_type: "application/x-www-form-urlencoded",
            body: &case.callback_body,
        };
        c.bench_function(&format!("{}/callback: verify + decode", case.name), |b| {
            b.iter(|| black_box(case.dialect.read_callback(black_box(cb), now).unwrap()))
        });
    }
    let body = br#"{"out_trade_no":"T1001","amount":1980,"subject":"Tuition","channel":"alipay","scene":"qr"}"#;
    c.bench_function("merchant API: HMAC-SHA256 request signature", |b| {
        b.iter(|| {
            black_box(payglot::doors::merchant_api::auth::request_signature(
                "school-a-key-0123456789",
                "1795391705",
                "0123456789abcdef",
                "POST",
                "/v1/payments",
                body,
            ))
        })
    });
    let event = vec![b'x'; 900];
    c.bench_function("notification: event signature", |b| {
        b.iter(|| {
            black_box(payglot::core::notify::event_signature(
                "school-a-key-0123456789",
                "1795391705",
                "evt_0123456789abcdefghijklmn",
                &event,
            ))
        })
    });
}

criterion_group!(benches, codecs);
criterion_main!(benches);
