//! Provider-compatible front doors over real HTTP: five schools, each integrated with one
//! provider's protocol, point their existing client at `/compat/{dialect}` and are served by
//! each of the five sandbox providers in turn, moved by editing routes.yaml. The schools'
//! clients are payglot's own merchant-side dialects (checked against the documents' vectors
//! in the unit tests), so each door is held to what a real integration sends and verifies:
//! signed requests in, signed answers and callbacks out, acks back.

mod common;

use common::*;
use payglot::config::{ProviderConfig, Secret};
use payglot::dialects::{
    self, CallbackReport, CreateOrder, CreateStep, Dialect, InboundHttp, PaymentReport, ProviderResponse,
};
use payglot::model::{Action, Payment, PaymentStatus, Scene};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The credentials each school's existing integration signs with, as routes.yaml gives them.
const DOORS: &[(&str, &[(&str, &str)])] = &[
    ("xxpay", &[("mch_id", "S-100"), ("app_id", "school-app"), ("key", "school-xxpay-key")]),
    ("xiaojitong", &[("mid", "77"), ("key", "school-xjt-key")]),
    (
        "zhixiao",
        &[("appid", "school-zx"), ("appsecret", "school-zx-secret"), ("aes_key", "0123456789ABCDEF0123456789ABCDEF")],
    ),
    ("jings", &[("uid", "20000001"), ("token", "school-jings-token")]),
    ("mct", &[("open_id", "schoolstore"), ("open_key", "abcdefabcdefabcdefabcdefabcdef12"), ("shop_pass", "246810")]),
];

/// The provider accounts of the test routes.yaml, one per dialect.
const TARGETS: &[(&str, &str)] =
    &[("xxpay-a", "xxpay"), ("xjt-ali", "xiaojitong"), ("zx", "zhixiao"), ("jg", "jings"), ("mct", "mct")];

fn compat_yaml() -> String {
    let mut yaml = String::from("    compat:\n");
    for (dialect, creds) in DOORS {
        let fields: Vec<String> = creds.iter().map(|(k, v)| format!("{k}: \"{v}\"")).collect();
        // xiaojitong's requests name no channel: this school's account takes alipay.
        let channel = if *dialect == "xiaojitong" { ", channel: alipay" } else { "" };
        yaml.push_str(&format!("      {dialect}: {{ {}{channel} }}\n", fields.join(", ")));
    }
    yaml
}

fn routes_to(gw: &Gateway, target: &str) -> String {
    gw.routes_yaml_with(&format!("      - to: {target}\n{}", compat_yaml()), "")
}

/// A school's client for its dialect, pointed at the gateway's front door.
fn school_client(gw: &Gateway, dialect: &str) -> Arc<dyn Dialect> {
    let creds = DOORS.iter().find(|(d, _)| *d == dialect).unwrap().1;
    let mut p = ProviderConfig::with_defaults(&format!("school-{dialect}"), dialect);
    p.base_url = format!("{}/compat/{dialect}", gw.base());
    for (k, v) in creds {
        p.credentials.insert(k.to_string(), Secret::new(*v));
    }
    dialects::build(&p).expect("a valid school client")
}

/// The school's own record of an order.
fn school_order(no: &str, scene: Scene) -> Payment {
    Payment {
        payment_id: no.into(),
        merchant_id: "school".into(),
        out_trade_no: no.into(),
        amount: 1234,
        subject: "学费 Tuition".into(),
        scene,
        provider: String::new(),
        return_url: Some("http://school.example/done".into()),
        created_at: now(),
        updated_at: now(),
        ..payglot::test_support::payment()
    }
}

/// Callbacks a school's notify endpoint received, verified with its own dialect.
type Verified = Arc<Mutex<Vec<(String, Result<PaymentReport, String>)>>>;

/// Each school's notify endpoint (`/notify/{dialect}`): verifies callbacks as the school's
/// integration does and answers its dialect's ack.
async fn start_schools(schools: HashMap<String, Arc<dyn Dialect>>) -> (TestServer, Verified) {
    start_schools_refusing_first(schools, false).await
}

/// As `start_schools`; with `refuse_first`, the first callback of each order is answered
/// without the ack (the school was busy), so payglot must send it again.
async fn start_schools_refusing_first(
    schools: HashMap<String, Arc<dyn Dialect>>,
    refuse_first: bool,
) -> (TestServer, Verified) {
    let received: Verified = Default::default();
    let seen = received.clone();
    let server = TestServer::serve(move |req| {
        let dialect = req.path.trim_start_matches("/notify/").to_string();
        let content_type = req.header("content-type");
        let school = schools[&dialect].clone();
        let inbound =
            InboundHttp { method: &req.method, query: &req.query, content_type: &content_type, body: &req.body };
        let report = match school.read_callback(inbound, now()) {
            Ok(CallbackReport::Payment(r)) => Ok(r),
            Ok(other) => Err(format!("not a payment callback: {other:?}")),
            Err(e) => Err(e.to_string()),
        };
        let mut seen = seen.lock().unwrap();
        let first = !seen.iter().any(|(d, r)| {
            d == &dialect && r.as_ref().ok().map(|r| &r.payment_id) == report.as_ref().ok().map(|r| &r.payment_id)
        });
        let reply = school.callback_reply(report.is_ok() && !(refuse_first && first));
        seen.push((dialect, report));
        (reply.status, reply.body.into_bytes())
    })
    .await;
    (server, received)
}

async fn send(gw: &Gateway, base: &str, req: &payglot::dialects::ProviderRequest) -> (u16, Vec<u8>) {
    let headers: Vec<(&str, &str)> = req.content_type.iter().map(|ct| ("content-type", *ct)).collect();
    let url = format!("{base}{}", req.path);
    let a = gw.http(req.method, &url, &headers, &req.body).await;
    (a.status, a.body.to_vec())
}

/// Creates an order through a school's door the way its integration does; returns the order
/// with the door's order number, and what the payer was given.
async fn create_at_door(
    gw: &Gateway,
    school: &Arc<dyn Dialect>,
    order: &mut Payment,
    notify_url: &str,
    extra: &serde_json::Map<String, Value>,
) -> Result<Action, String> {
    let base = format!("{}/compat/{}", gw.base(), school.dialect());
    let create = CreateOrder {
        payment: order,
        callback_url: notify_url.to_string(),
        client_ip: Some("203.0.113.7"),
        auth_code: None,
        openid: None,
        extra,
    };
    match school.create_payment(&create, now()).map_err(|e| e.to_string())? {
        CreateStep::Call(req) => {
            let (status, body) = send(gw, &base, &req).await;
            let created = school
                .read_create(&create, ProviderResponse { status, body: &body })
                .map_err(|e| format!("{e} (answer: {})", String::from_utf8_lossy(&body)))?;
            let no = created.provider_trade_no.clone().ok_or("the door gave no order number")?;
            order.provider_trade_no = Some(no);
            Ok(created.action)
        }
        // jings: the payer's browser posts the signed form to the door.
        CreateStep::Done(created) => {
            let Action::FormPost { url, fields } = &created.action else { return Err("no form".into()) };
            let form: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields.iter()).finish();
            let a =
                gw.http("POST", url, &[("content-type", "application/x-www-form-urlencoded")], form.as_bytes()).await;
            let page = String::from_utf8_lossy(&a.body).into_owned();
            if a.status != 200 || !page.contains("<form") && !page.contains("href=") {
                return Err(format!("pay.action answered {}: {page}", a.status));
            }
            Ok(created.action)
        }
    }
}

async fn query_at_door(gw: &Gateway, school: &Arc<dyn Dialect>, order: &Payment) -> Result<PaymentReport, String> {
    let base = format!("{}/compat/{}", gw.base(), school.dialect());
    let req = school.query_payment(order, now()).map_err(|e| e.to_string())?;
    let (status, body) = send(gw, &base, &req).await;
    school
        .read_query(order, ProviderResponse { status, body: &body })
        .map_err(|e| format!("{e} (answer: {})", String::from_utf8_lossy(&body)))
}

/// A provider that takes the payer's browser (jings) gets the form from payglot's checkout
/// page, which is where the school's door sent the payer.
async fn payer_posts_form(gw: &Gateway, payment: &Value, given: &Action, cell: &str) {
    if payment["action"]["type"] != "form_post" {
        return;
    }
    let checkout = format!("{}/v1/payments/{}/checkout", gw.base(), payment["payment_id"].as_str().unwrap());
    match given {
        Action::QrCode { qr_code: url, .. } | Action::Redirect { url } => assert_eq!(url, &checkout, "{cell}"),
        _ => {}
    }
    let page = gw.http("GET", &checkout, &[], b"").await;
    assert_eq!(page.status, 200, "{cell}: checkout page");
    let fields = payment["action"]["fields"].as_object().unwrap();
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let url = payment["action"]["url"].as_str().unwrap();
    let posted = gw.http("POST", url, &[("content-type", "application/x-www-form-urlencoded")], body.as_bytes()).await;
    assert_eq!(posted.status, 200, "{cell}: {}", String::from_utf8_lossy(&posted.body));
}

async fn reroute(gw: &Gateway, target: &str) {
    gw.write_config(&routes_to(gw, target));
    let (status, reload) = gw.admin("POST", "/admin/reload").await;
    assert_eq!(status, 200, "{reload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_school_dialect_is_served_by_every_provider_and_called_back_in_its_own() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.write_config(&routes_to(&gw, "xxpay-a"));
    gw.start().await;
    let schools: HashMap<String, Arc<dyn Dialect>> =
        DOORS.iter().map(|(d, _)| (d.to_string(), school_client(&gw, d))).collect();
    let (schools_server, received) = start_schools(schools.clone()).await;
    let school_base = schools_server.base();

    for (target, target_dialect) in TARGETS {
        // Ops move the school to another provider: only routes.yaml changes.
        reroute(&gw, target).await;
        for (dialect, _) in DOORS {
            let school = &schools[*dialect];
            let no = format!("C{}{}", &dialect[..2], &target_dialect[..2]).to_ascii_uppercase() + &now().to_string();
            let mut extra = serde_json::Map::new();
            // mct's browser flow (jump_url) is how an mct school sends a payer to a web page.
            let scene = match *dialect {
                "zhixiao" => Scene::H5,
                "jings" => Scene::Web,
                "mct" if *target_dialect == "jings" => {
                    extra.insert("jump_url".into(), json!("http://school.example/done"));
                    Scene::Jsapi
                }
                _ => Scene::Qr,
            };
            let mut order = school_order(&no, scene);
            let notify_url = format!("{school_base}/notify/{dialect}");
            let cell = format!("school {dialect} → provider {target}");
            let action = create_at_door(&gw, school, &mut order, &notify_url, &extra)
                .await
                .unwrap_or_else(|e| panic!("{cell}: create: {e}"));
            assert_ne!(action, Action::None, "{cell}: the payer is given somewhere to pay");

            // The payment really went to the routed provider.
            let (status, payment) = gw.call("GET", &format!("/v1/payments/{no}"), "").await;
            assert_eq!(status, 200, "{cell}: {payment}");
            assert_eq!(payment["provider"], *target, "{cell}");
            let payment_id = payment["payment_id"].as_str().unwrap().to_string();
            if let Some(door_no) = &order.provider_trade_no {
                assert_eq!(door_no, &payment_id, "{cell}: the door's order number is payglot's payment_id");
            }
            let pending = query_at_door(&gw, school, &order).await;
            match pending {
                Ok(r) => assert_eq!(r.status, PaymentStatus::Pending, "{cell}"),
                // jings and xiaojitong answer an unpaid order with an error code; the school's
                // client reads it as "not paid yet".
                Err(e) => assert!(matches!(*dialect, "xiaojitong" | "jings"), "{cell}: query before paying: {e}"),
            }

            payer_posts_form(&gw, &payment, &action, &cell).await;
            gw.pay_at(target_dialect, &payment_id).await;

            // The school hears of it in its own dialect, verified with its own credentials.
            let report = eventually(&format!("{cell}: the school's callback"), Duration::from_secs(15), || {
                let got = received
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(d, r)| d == dialect && r.as_ref().map(|r| r.payment_id == no).unwrap_or(true))
                    .cloned();
                async move { got }
            })
            .await;
            let report = report.1.unwrap_or_else(|e| panic!("{cell}: callback did not verify: {e}"));
            assert_eq!(report.status, PaymentStatus::Succeeded, "{cell}");

            let paid = query_at_door(&gw, school, &order).await.unwrap_or_else(|e| panic!("{cell}: query: {e}"));
            assert_eq!(paid.status, PaymentStatus::Succeeded, "{cell}");
            assert_eq!(paid.payment_id, no, "{cell}");
            if let Some(amount) = paid.amount {
                assert_eq!(amount, 1234, "{cell}");
            }
        }
    }
    // One callback per payment: 25 verified, no merchant-API notification to anyone.
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 25, "{received:?}");
    assert!(received.iter().all(|(_, r)| r.is_ok()));
    assert!(merchant.events().is_empty());
    // Each door's requests are timed under its own name and the operation it carried out.
    let metrics = gw.metrics().await;
    for (dialect, _) in DOORS {
        let line =
            format!("payglot_request_duration_seconds_count{{door=\"{dialect}\",operation=\"create_payment\"}} ");
        let creates = metrics.lines().find_map(|l| l.strip_prefix(line.as_str()));
        assert_eq!(creates, Some("5"), "{dialect}: {line}\n{metrics}");
        // The door's request lines name the school's merchant (the request carries no header).
        let door_path = format!("path=/compat/{dialect}/");
        let log = gw.log();
        assert!(
            log.lines().any(|l| l.contains(&door_path) && l.contains(&format!("merchant={MERCHANT} "))),
            "{dialect}: a door line with merchant={MERCHANT}"
        );
    }
}

fn school_refund(order: &Payment, no: &str, amount: i64) -> payglot::model::Refund {
    payglot::model::Refund {
        refund_id: no.into(),
        out_refund_no: no.into(),
        merchant_id: "school".into(),
        payment_id: order.payment_id.clone(),
        out_trade_no: order.out_trade_no.clone(),
        amount,
        reason: None,
        status: payglot::model::TransferStatus::Pending,
        provider: String::new(),
        provider_refund_no: None,
        created_at: now(),
        updated_at: now(),
    }
}

/// A school's cancel request. payglot's own mct client asks mct to cancel barcode payments
/// only (§5, 8013); a school's mct integration may ask for any order, so it is built here
/// from the envelope as such a school sends it.
fn school_cancel(school: &dyn Dialect, dialect: &str, order: &Payment) -> payglot::dialects::ProviderRequest {
    if dialect != "mct" {
        return school.close_payment(order, now()).unwrap();
    }
    let creds = DOORS.iter().find(|(d, _)| *d == "mct").unwrap().1;
    let cred = |k: &str| creds.iter().find(|(n, _)| *n == k).unwrap().1;
    let env = payglot::dialects::mct::Envelope::new(cred("open_id"), cred("open_key"), true).unwrap();
    payglot::dialects::ProviderRequest {
        method: "POST",
        path: "/mct1/paycancel".into(),
        content_type: Some("application/x-www-form-urlencoded"),
        body: env.request_body(&serde_json::json!({"out_no": order.payment_id}), now()).into_bytes(),
    }
}

/// The number of callbacks a school received for one order.
fn callbacks_for(received: &Verified, order: &str) -> Vec<bool> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, r)| r.as_ref().map(|r| r.payment_id == order).unwrap_or(false))
        .map(|(_, r)| r.is_ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doors_refund_cancel_retry_callbacks_and_refuse_in_their_own_shape() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.write_config(&routes_to(&gw, "mct"));
    gw.start().await;
    let schools: HashMap<String, Arc<dyn Dialect>> =
        DOORS.iter().map(|(d, _)| (d.to_string(), school_client(&gw, d))).collect();
    let (schools_server, received) = start_schools_refusing_first(schools.clone(), true).await;
    let school_base = schools_server.base();
    let no_extra = serde_json::Map::new();
    let stamp = now();

    // zhixiao and mct schools, both served by mct: pay, called back twice (the first answer
    // was not the ack), refund through their own door, cancel an unpaid order.
    for dialect in ["zhixiao", "mct"] {
        let school = &schools[dialect];
        let notify_url = format!("{school_base}/notify/{dialect}");
        let scene = if dialect == "zhixiao" { Scene::H5 } else { Scene::Qr };
        let mut paid = school_order(&format!("R{}{stamp}", &dialect[..2]), scene);
        create_at_door(&gw, school, &mut paid, &notify_url, &no_extra).await.unwrap();
        let (_, payment) = gw.call("GET", &format!("/v1/payments/{}", paid.out_trade_no), "").await;
        gw.pay_at("mct", payment["payment_id"].as_str().unwrap()).await;
        let attempts = eventually("a callback sent again after a refused one", Duration::from_secs(15), || {
            let got = callbacks_for(&received, &paid.out_trade_no);
            async move { (got.len() >= 2).then_some(got) }
        })
        .await;
        assert_eq!(attempts, vec![true, true], "{dialect}: both verified, the second acked");
        gw.settled().await;
        assert_eq!(callbacks_for(&received, &paid.out_trade_no).len(), 2, "{dialect}: none after the ack");

        let base = format!("{}/compat/{dialect}", gw.base());
        let refund = school_refund(&paid, &format!("RF{}{stamp}", &dialect[..2]), 234);
        let req = school.refund(&paid, &refund, now()).unwrap();
        let (status, body) = send(&gw, &base, &req).await;
        let refunded = school.read_refund(&refund, ProviderResponse { status, body: &body });
        assert_eq!(
            refunded.map(|r| r.status).ok(),
            Some(payglot::model::TransferStatus::Succeeded),
            "{dialect}: {}",
            String::from_utf8_lossy(&body)
        );
        let (_, after) = gw.call("GET", &format!("/v1/payments/{}", paid.out_trade_no), "").await;
        assert_eq!(after["refunded_amount"], 234, "{dialect}: {after}");
        // The captured refund request, replayed byte for byte: still one refund.
        for _ in 0..5 {
            send(&gw, &base, &req).await;
        }
        let (_, after) = gw.call("GET", &format!("/v1/payments/{}", paid.out_trade_no), "").await;
        assert_eq!(after["refunded_amount"], 234, "{dialect}: replays refunded again: {after}");

        // Cancelling the paid order is refused in the dialect's shape.
        let req = school_cancel(school.as_ref(), dialect, &paid);
        let (status, body) = send(&gw, &base, &req).await;
        assert!(school.read_close(&paid, ProviderResponse { status, body: &body }).is_err(), "{dialect}");

        // mct cancels barcode payments only (§5, 8013): the unpaid order goes to zhixiao.
        reroute(&gw, "zx").await;
        let mut unpaid = school_order(&format!("U{}{stamp}", &dialect[..2]), scene);
        create_at_door(&gw, school, &mut unpaid, &notify_url, &no_extra).await.unwrap();
        let req = school_cancel(school.as_ref(), dialect, &unpaid);
        let (status, body) = send(&gw, &base, &req).await;
        school
            .read_close(&unpaid, ProviderResponse { status, body: &body })
            .unwrap_or_else(|e| panic!("{dialect}: cancel: {e} {}", String::from_utf8_lossy(&body)));
        let (_, closed) = gw.call("GET", &format!("/v1/payments/{}", unpaid.out_trade_no), "").await;
        assert_eq!(closed["status"], "closed", "{dialect}");
        reroute(&gw, "mct").await;
    }

    // A request the routed provider cannot take: mct barcode, routed to jings.
    reroute(&gw, "jg").await;
    let mct = &schools["mct"];
    let barcode = school_order(&format!("B{stamp}"), Scene::Barcode);
    let base = format!("{}/compat/mct", gw.base());
    let create = CreateOrder {
        auth_code: Some("134567890123456789"),
        extra: &no_extra,
        ..CreateOrder::new(&barcode, format!("{school_base}/notify/mct"))
    };
    let CreateStep::Call(req) = mct.create_payment(&create, now()).unwrap() else { panic!("a call") };
    let (status, body) = send(&gw, &base, &req).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["errcode"], 8007, "{answer}");
    assert!(answer["msg"].as_str().unwrap().contains("jings"), "{answer}");
    assert!(mct.read_create(&create, ProviderResponse { status, body: &body }).is_err());

    // Forged requests: signed with the wrong key, they are refused and create nothing.
    for dialect in ["xxpay", "xiaojitong", "zhixiao", "mct"] {
        let creds = DOORS.iter().find(|(d, _)| *d == dialect).unwrap().1;
        let mut p = ProviderConfig::with_defaults("forger", dialect);
        p.base_url = format!("{}/compat/{dialect}", gw.base());
        for (k, v) in creds {
            let v = if ["key", "appsecret", "open_key"].contains(k) {
                v.replace(['a', 'e', 'k'], "x")
            } else {
                v.to_string()
            };
            p.credentials.insert(k.to_string(), Secret::new(v));
        }
        let forger = dialects::build(&p).unwrap();
        let mut order = school_order(&format!("F{}{stamp}", &dialect[..2]), Scene::Qr);
        order.scene = if dialect == "zhixiao" { Scene::H5 } else { Scene::Qr };
        let err = create_at_door(&gw, &forger, &mut order, &format!("{school_base}/notify/{dialect}"), &no_extra)
            .await
            .expect_err("a forged request is refused");
        let (status, _) = gw.call("GET", &format!("/v1/payments/{}", order.out_trade_no), "").await;
        assert_eq!(status, 404, "{dialect}: nothing was created ({err})");
    }
    // jings: a form whose amount was changed after signing.
    let jings = &schools["jings"];
    let order = school_order(&format!("FJ{stamp}"), Scene::Web);
    let create = CreateOrder { extra: &no_extra, ..CreateOrder::new(&order, format!("{school_base}/notify/jings")) };
    let CreateStep::Done(created) = jings.create_payment(&create, now()).unwrap() else { panic!("a form") };
    let Action::FormPost { url, mut fields } = created.action else { panic!("a form") };
    fields.insert("paymoney".into(), "0.01".into());
    let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields.iter()).finish();
    let refused =
        gw.http("POST", &url, &[("content-type", "application/x-www-form-urlencoded")], form.as_bytes()).await;
    assert_eq!(refused.status, 400);
    let (status, _) = gw.call("GET", &format!("/v1/payments/{}", order.out_trade_no), "").await;
    assert_eq!(status, 404);
    // An unknown door account.
    let unknown = gw
        .http(
            "POST",
            &format!("{}/compat/xxpay/api/pay/create_order", gw.base()),
            &[("content-type", "application/x-www-form-urlencoded")],
            b"params=%7B%22mchId%22%3A%22nobody%22%2C%22sign%22%3A%22AA%22%7D",
        )
        .await;
    let answer: Value = serde_json::from_slice(&unknown.body).unwrap();
    assert_eq!(answer["retCode"], "FAIL");
    assert_eq!(answer["retMsg"], "商户不存在");
    // Door keys never show in the admin view of the config.
    let (_, config) = gw.admin("GET", "/admin/config").await;
    let text = config.to_string();
    for (_, creds) in DOORS {
        for (k, v) in *creds {
            if ["key", "appsecret", "aes_key", "token", "open_key", "shop_pass"].contains(k) {
                assert!(!text.contains(v), "{k} leaked into /admin/config");
            }
        }
    }
    assert!(merchant.events().is_empty(), "door payments notify only in the school's dialect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_at_every_door_get_an_answer_and_change_nothing() {
    let merchant = MerchantServer::new();
    let mut gw = Gateway::new(&merchant.url());
    gw.write_config(&routes_to(&gw, "xxpay-a"));
    gw.start().await;
    let paths = [
        "xxpay/api/pay/create_order",
        "xxpay/api/pay/query_order",
        "xxpay/api/trans/create_order",
        "xiaojitong/createOrder",
        "xiaojitong/checkOrder",
        "zhixiao/order/create",
        "zhixiao/order/refund",
        "jings/pay.action",
        "jings/requstOrderStatus.action",
        "mct/mct1/payorder",
        "mct/mct1/payrefund",
        "nosuch/anything",
    ];
    let bodies: [&[u8]; 6] = [
        b"",
        b"params=%7Bnot%20json",
        b"params=%5B1%2C2%5D&id=school-zx&param=AAAA&sign=00",
        b"\xff\xfe\x00garbage",
        b"mid=77&payid=x&price=-1&sign=zz&open_id=schoolstore&timestamp=1&data=ZZ",
        b"uid=20000001&orderid=&paymoney=1e9&key=00&id=school-zx&param=%%%",
    ];
    for path in paths {
        for method in ["GET", "POST", "PUT"] {
            for body in bodies {
                let url = format!("{}/compat/{path}?uid=20000001&orderid=x&key=00", gw.base());
                let a = gw.http(method, &url, &[("content-type", "application/x-www-form-urlencoded")], body).await;
                assert!(a.status < 500, "{method} {path} {:?}: HTTP {}", String::from_utf8_lossy(body), a.status);
            }
        }
    }
    let (status, _) = gw.admin("GET", "/healthz").await;
    assert_eq!(status, 200, "the gateway is still up");
    let (_, events) = gw.admin("GET", "/admin/events").await;
    assert_eq!(events["events"].as_array().map(Vec::len).unwrap_or(0), 0, "{events}");
    assert!(!gw.log().contains("panicked"), "nothing panicked");
}
