//! Operations: Prometheus metrics move by what a scripted flow did, requests carry an id, and
//! SIGTERM lets requests in flight finish.

mod common;

use common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// The value of the sample of `name` whose labels include all of `labels`.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(name)
                && (l.as_bytes().get(name.len()) == Some(&b'{') || l.as_bytes().get(name.len()) == Some(&b' '))
        })
        .find(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let (_, p1) = gw.call("POST", "/v1/payments", &payment_body("M-1", 100)).await;
    gw.call("POST", "/v1/payments", &payment_body("M-2", 100)).await;
    gw.call("GET", "/v1/payments/M-2", "").await;
    gw.call_signed("POST", "/v1/payments", &payment_body("M-3", 100), "wrong-key", now(), "metrics-nonce-0001").await;
    gw.pay_at_sandbox(p1["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    gw.callback("xxpay-a", "mchOrderNo=x&sign=forged").await;

    let text = gw.metrics().await;
    let api = |op: &str, outcome: &str| {
        sample(&text, "payglot_api_requests_total", &[("operation", op), ("outcome", outcome)])
    };
    assert_eq!(api("create_payment", "ok"), Some(2.0), "{text}");
    assert_eq!(api("query_payment", "ok"), Some(1.0));
    assert_eq!(api("create_payment", "invalid_signature"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "payglot_api_requests_total",
            &[("merchant", "school-a"), ("operation", "create_payment"), ("outcome", "ok")]
        ),
        Some(2.0)
    );
    let cb = |verdict: &str| sample(&text, "payglot_callbacks_total", &[("provider", "xxpay-a"), ("verdict", verdict)]);
    assert_eq!((cb("accepted"), cb("bad_message")), (Some(1.0), Some(1.0)));
    assert_eq!(sample(&text, "payglot_deliveries_total", &[("outcome", "delivered")]), Some(1.0));
    let creates = sample(
        &text,
        "payglot_upstream_calls_total",
        &[("provider", "xxpay-a"), ("operation", "/api/pay/create_order"), ("outcome", "ok")],
    );
    assert_eq!(creates, Some(2.0));
    assert!(
        sample(&text, "payglot_upstream_latency_seconds_count", &[("provider", "xxpay-a")]).is_some(),
        "latency histogram"
    );
    assert_eq!(sample(&text, "payglot_outbox_depth", &[]), Some(0.0));
    assert_eq!(sample(&text, "payglot_outbox_oldest_pending_age_seconds", &[]), Some(0.0));
    assert_eq!(sample(&text, "payglot_circuit_open", &[("provider", "xxpay-a")]), Some(0.0));
    assert!(sample(&text, "payglot_config_reloads_total", &[]).is_some());
    // Request durations by door and operation: 3 creates (one refused) and 1 query at /v1,
    // the accepted and the forged callback.
    let duration = |door: &str, op: &str| {
        sample(&text, "payglot_request_duration_seconds_count", &[("door", door), ("operation", op)])
    };
    assert_eq!(duration("merchant_api", "create_payment"), Some(3.0), "{text}");
    assert_eq!(duration("merchant_api", "query_payment"), Some(1.0));
    assert_eq!(duration("callbacks", "callback"), Some(2.0));
    let build = text.lines().find(|l| l.starts_with("payglot_build_info{")).expect("build info");
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{build}");
    let commit = build.split("commit=\"").nth(1).and_then(|c| c.split('"').next()).unwrap_or("");
    assert!(commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{build}");
    assert!(build.ends_with(" 1"), "{build}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_undelivered_notification_has_an_age_and_livez_answers() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    merchant.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body("AGE-1", 100)).await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    eventually("a pending notification", Duration::from_secs(10), || async {
        (sample(&gw.metrics().await, "payglot_outbox_depth", &[]) == Some(1.0)).then_some(())
    })
    .await;
    gw.advance_clock(600).await;
    let age = sample(&gw.metrics().await, "payglot_outbox_oldest_pending_age_seconds", &[]).unwrap();
    assert!((600.0..700.0).contains(&age), "age {age}");
    for path in ["/livez", "/healthz"] {
        let (status, v) = gw.admin("GET", path).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("ok")), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_an_id_into_the_answer_and_the_log() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.write_all(b"GET /v1/nothing HTTP/1.1\r\nHost: gw\r\nX-Request-Id: trace-abc-123\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.to_ascii_lowercase().contains("x-request-id: trace-abc-123"), "{answer}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.write_all(b"GET /v1/nothing HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.to_ascii_lowercase().contains("x-request-id: req_"), "a generated id: {answer}");
    eventually("the request's log line", Duration::from_secs(5), || {
        let logged = gw.log().contains("trace-abc-123");
        async move { logged.then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_name_the_merchant_the_error_code_and_the_request() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body("LOG-1", 100)).await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    gw.callback("xxpay-a", "mchOrderNo=x&sign=forged").await;
    gw.call_signed("GET", "/v1/payments/LOG-1", "", "wrong-key", now(), "log-nonce-000000001").await;
    let lines = |wanted: &[&str]| {
        let log = gw.log();
        log.lines().filter(|l| wanted.iter().all(|w| l.contains(w))).map(str::to_string).collect::<Vec<_>>()
    };
    // The provider's callback names no merchant: its line says whose payment it was.
    eventually("the callback's request line", Duration::from_secs(5), || {
        let found = lines(&["path=/callbacks/xxpay-a", "status=200", "merchant=school-a", "code=-"]);
        async move { (!found.is_empty()).then_some(()) }
    })
    .await;
    assert_eq!(lines(&["path=/callbacks/xxpay-a", "status=400", "code=bad_message"]).len(), 1, "{}", gw.log());
    assert_eq!(lines(&["path=/v1/payments/LOG-1", "status=401", "code=invalid_signature"]).len(), 1, "{}", gw.log());
    // The warning the forged callback caused carries its request's id.
    let warned = lines(&["WARN", "callback refused"]);
    assert!(warned.iter().any(|l| l.contains("request_id=req_")), "{warned:?}");
    assert!(!gw.log().contains("Some("), "no Rust Option in the log:\n{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    gw.call("POST", "/v1/payments", &payment_body("G-1", 100)).await;
    let gw = std::sync::Arc::new(std::sync::Mutex::new(gw));
    let port = gw.lock().unwrap().port;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            let client = payglot::upstream::Upstream::new();
            let (mut complete, mut refused) = (0, 0);
            while std::time::Instant::now() < deadline {
                let nonce = payglot::model::random_id("n", 24);
                let ts = now().to_string();
                let sig = payglot::doors::merchant_api::auth::request_signature(
                    MERCHANT_KEY,
                    &ts,
                    &nonce,
                    "GET",
                    "/v1/payments/G-1",
                    b"",
                );
                let h = [
                    ("payglot-merchant", MERCHANT),
                    ("payglot-timestamp", ts.as_str()),
                    ("payglot-nonce", nonce.as_str()),
                    ("payglot-signature", sig.as_str()),
                ];
                match client
                    .send("GET", &format!("http://127.0.0.1:{port}/v1/payments/G-1"), &h, vec![], 500, 5000)
                    .await
                {
                    Ok(a) => {
                        let body: serde_json::Value =
                            serde_json::from_slice(&a.body).expect("a complete JSON body, never a truncated one");
                        assert_eq!((a.status, body["out_trade_no"].as_str()), (200, Some("G-1")));
                        complete += 1;
                        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(_) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (complete, refused)
        }));
    }
    // SIGTERM once the load is under way.
    eventually("requests under way", Duration::from_secs(5), || {
        let n = answered.load(std::sync::atomic::Ordering::SeqCst);
        async move { (n >= 100).then_some(()) }
    })
    .await;
    let pid = gw.lock().unwrap().pid().unwrap();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let (mut complete, mut refused) = (0, 0);
    for t in tasks {
        let (c, r) = t.await.unwrap();
        complete += c;
        refused += r;
    }
    println!("{complete} complete answers, {refused} refused connections around SIGTERM");
    assert!(complete > 0 && refused > 0, "{complete} / {refused}");
    let status = gw.lock().unwrap().wait_exit(Duration::from_secs(15)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_notifications_are_listed_and_replayed() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    merchant.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut gw = Gateway::new(&merchant.url());
    gw.give_up_secs = 2;
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body("EV-1", 100)).await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    let failed = eventually("the event to be given up", Duration::from_secs(15), || async {
        let (_, list) = gw.admin("GET", "/admin/events?status=failed&merchant=school-a").await;
        list["events"].as_array().filter(|e| !e.is_empty()).cloned()
    })
    .await;
    assert_eq!(failed[0]["kind"], "payment.succeeded");
    assert!(failed[0]["last_error"].as_str().unwrap().contains("HTTP 500"), "{failed:?}");
    assert!(failed[0]["attempts"].as_u64().unwrap() >= 1);

    merchant.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let id = failed[0]["id"].as_str().unwrap();
    let (status, _) = gw.admin("POST", &format!("/admin/events/{id}/replay")).await;
    assert_eq!(status, 200);
    let ev = events(&merchant, 1).await;
    assert_eq!(ev[0].event_id, id, "the same event id, so the merchant can dedupe");
    let (status, _) = gw.admin("POST", "/admin/events/evt_nope/replay").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_guards_everything_but_health() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.extra_yaml = "admin_token: admin-token-0123456789\n".into();
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", gw.admin_port);
    assert_eq!(gw.http("GET", &url("/admin/config"), &[], b"").await.status, 401);
    assert_eq!(
        gw.http("GET", &url("/metrics"), &[("authorization", "Bearer wrong-token-0000000")], b"").await.status,
        401
    );
    let ok = gw.http("GET", &url("/admin/config"), &[("authorization", "Bearer admin-token-0123456789")], b"").await;
    assert_eq!(ok.status, 200);
    assert!(!String::from_utf8_lossy(&ok.body).contains("admin-token-0123456789"), "the token itself is redacted");
    assert_eq!(gw.http("GET", &url("/healthz"), &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_has_a_timeline_of_calls_callbacks_and_notifications() {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.start().await;
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body("TL-1", 100)).await;
    gw.call("GET", "/v1/payments/TL-1", "").await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    let id = p["payment_id"].as_str().unwrap();
    let view = eventually("the timeline", Duration::from_secs(10), || async {
        let (_, v) = gw.admin("GET", &format!("/admin/payments/{id}")).await;
        (v["timeline"].as_array().map(|t| t.len()).unwrap_or(0) >= 4).then_some(v)
    })
    .await;
    let kinds: Vec<&str> = view["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["upstream", "upstream", "callback", "notification"], "{view}");
    let first = &view["timeline"][0]["detail"];
    assert_eq!(
        (first["operation"].as_str(), first["outcome"]["status"].as_u64()),
        (Some("/api/pay/create_order"), Some(200))
    );
    assert!(first["latency_ms"].is_u64());
    assert_eq!(view["timeline"][2]["detail"]["verdict"], "accepted");
    assert_eq!(view["timeline"][3]["detail"]["outcome"], "delivered");
    assert_eq!(view["payment"]["status"], "succeeded");
    assert_eq!(view["events"][0]["state"], "delivered");
    // The payment's trace id (README: the MD5 of its payment id), on its view and on the log
    // lines of its callback and its notification.
    let trace = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(id.as_bytes()))
    };
    assert_eq!(view["trace_id"], trace.as_str());
    let log = gw.log();
    for line in ["payment settled", "event delivered"] {
        assert!(
            log.lines().any(|l| l.contains(line) && l.contains(&format!("trace_id={trace}"))),
            "{line} with trace_id={trace}:\n{log}"
        );
    }
    let (status, _) = gw.admin("GET", "/admin/payments/P-nope").await;
    assert_eq!(status, 404);
}

/// The sandbox as a newcomer meets it: the pay page sends the browser back to the school, the
/// demo inbox shows each notification exactly as received (checked here by hand, with
/// openssl, the way the README says), and a restarted sandbox that forgot its orders answers
/// as the provider does about an order it does not know, never "provider unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_pay_page_demo_inbox_and_a_restarted_sandbox() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.notify_url = format!("http://127.0.0.1:{}/merchant/notify", gw.sandbox_port);
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;
    let body = serde_json::json!({"out_trade_no": "D-1", "amount": 1980, "subject": "学费", "channel": "wechat", "scene": "qr", "return_url": "https://school.example/paid?n=1&b=2"});
    let (status, p) = gw.call_as("school-xjt", "POST", "/v1/payments", &body.to_string()).await;
    assert_eq!(status, 200, "{p}");
    let pay =
        format!("http://127.0.0.1:{}/xiaojitong/pay/{}", gw.sandbox_port, p["provider_trade_no"].as_str().unwrap());
    let page = gw.http("GET", &pay, &[], b"").await;
    assert!(String::from_utf8_lossy(&page.body).contains("name=browser value=1"), "the pay page's form");
    let paid = gw.http("POST", &pay, &[("content-type", "application/x-www-form-urlencoded")], b"browser=1").await;
    let html = String::from_utf8_lossy(&paid.body).into_owned();
    assert_eq!(paid.status, 200);
    assert!(
        html.contains("http-equiv=\"refresh\" content=\"0;url=https://school.example/paid?n=1&amp;b=2\""),
        "{html}"
    );

    let inbox = format!("http://127.0.0.1:{}/merchant/events", gw.sandbox_port);
    let received = eventually("the demo inbox", Duration::from_secs(10), || async {
        let a = gw.http("GET", &inbox, &[], b"").await;
        let v: serde_json::Value = serde_json::from_slice(&a.body).ok()?;
        v.as_array().filter(|l| !l.is_empty()).map(|l| l[0].clone())
    })
    .await;
    let header = |name: &str| {
        received["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .and_then(|h| h[1].as_str())
            .unwrap()
            .to_string()
    };
    let raw = received["body"].as_str().expect("the body as received, a string");
    assert!(raw.contains("\"payment.succeeded\""), "{raw}");
    let by_hand = std::process::Command::new("sh")
        .args(["-c", "printf '%s\\n%s\\n%s' \"$TS\" \"$ID\" \"$BODY\" | openssl dgst -sha256 -hmac \"$KEY\" -hex | sed 's/^.* //'"])
        .env("TS", header("payglot-timestamp"))
        .env("ID", header("payglot-event-id"))
        .env("BODY", raw)
        .env("KEY", MERCHANT_KEY)
        .output()
        .expect("openssl");
    assert_eq!(String::from_utf8_lossy(&by_hand.stdout).trim(), header("payglot-signature"), "{received}");

    // A restart empties the sandbox's ledger: it then does not know the order, and says so in
    // mct's words (errcode 8018); payglot reports the provider's refusal, not an outage.
    let (status, m) = gw.call_as("school-mct", "POST", "/v1/payments", &body.to_string()).await;
    assert_eq!(status, 200, "{m}");
    gw.pay_at("mct", m["payment_id"].as_str().unwrap()).await;
    eventually("the mct payment to succeed", Duration::from_secs(10), || async {
        let (_, q) = gw.call_as("school-mct", "GET", "/v1/payments/D-1", "").await;
        (q["status"] == "succeeded").then_some(())
    })
    .await;
    gw.kill();
    gw.start().await;
    let refund = serde_json::json!({"out_refund_no": "DR-1", "amount": 100}).to_string();
    let (status, e) = gw.call_as("school-mct", "POST", "/v1/payments/D-1/refunds", &refund).await;
    assert_eq!(
        (status, e["error"]["code"].as_str(), e["error"]["provider_code"].as_str()),
        (502, Some("provider_error"), Some("8018")),
        "{e}"
    );
    let (status, q) = gw.call_as("school-mct", "GET", "/v1/payments/D-1", "").await;
    assert_eq!((status, q["status"].as_str()), (200, Some("succeeded")), "{q}");
    assert!(q.get("provider_error").is_none_or(|v| v.is_null()), "{q}");
}

/// The README's first steps, on the repository's own routes.yaml (its ports moved): the first
/// example payment is paid at the sandbox, notified, and can then be refunded; a second one
/// can be closed. A newcomer's next tries work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_first_example_pays_refunds_and_closes() {
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/routes.yaml")).unwrap();
    let moved = shipped
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", gw.port))
        .replace("127.0.0.1:9901", &format!("127.0.0.1:{}", gw.admin_port))
        .replace("127.0.0.1:8090", &format!("127.0.0.1:{}", gw.sandbox_port));
    gw.write_config(&moved);
    gw.start().await;
    let key = "demo-school-key-change-me";
    let call = |method: &'static str, path: &'static str, body: &'static str| {
        let gw = &gw;
        async move {
            let nonce = payglot::model::random_id("n", 24);
            gw.call_signed_as("demo-school", method, path, body, key, now(), &nonce).await
        }
    };
    let (status, p) = call(
        "POST",
        "/v1/payments",
        r#"{"out_trade_no":"T1001","amount":1980,"subject":"Tuition","channel":"alipay","scene":"qr"}"#,
    )
    .await;
    assert_eq!(status, 200, "{p}");
    let qr = p["action"]["qr_code"].as_str().expect("a QR code, as the README shows");
    let paid = gw.http("POST", qr, &[], b"").await;
    assert_eq!(paid.status, 200, "paying at the QR code's URL, as the README says");
    let inbox = format!("http://127.0.0.1:{}/merchant/events", gw.sandbox_port);
    eventually("the demo merchant's notification", Duration::from_secs(10), || async {
        let a = gw.http("GET", &inbox, &[], b"").await;
        String::from_utf8_lossy(&a.body).contains("payment.succeeded").then_some(())
    })
    .await;
    let (_, q) = call("GET", "/v1/payments/T1001", "").await;
    assert_eq!(q["status"], "succeeded", "{q}");
    let (status, r) = call("POST", "/v1/payments/T1001/refunds", r#"{"out_refund_no":"R1001","amount":500}"#).await;
    assert_eq!((status, r["status"].as_str()), (200, Some("succeeded")), "{r}");
    let (status, _) = call(
        "POST",
        "/v1/payments",
        r#"{"out_trade_no":"T1002","amount":990,"subject":"Books","channel":"alipay","scene":"qr"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let (status, c) = call("POST", "/v1/payments/T1002/close", "").await;
    assert_eq!((status, c["status"].as_str()), (200, Some("closed")), "{c}");
}
