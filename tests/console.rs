//! The ops console (`/console` on the admin listener): its sessions, CSRF tokens and pages over
//! real HTTP, and the whole console driven in a real browser (Debian's chromium through
//! playwright-core, tests/browser/console.mjs) over payments made through every dialect.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const TOKEN: &str = "console-admin-token-7f3a";

/// A gateway with an admin token, and a merchant inbox.
async fn started(give_up_secs: u64) -> (MerchantServer, Gateway) {
    let mut merchant = MerchantServer::new();
    merchant.start().await;
    let mut gw = Gateway::new(&merchant.url());
    gw.extra_yaml = format!("admin_token: {TOKEN}\n");
    gw.give_up_secs = give_up_secs;
    gw.write_config(&gw.routes_yaml("xxpay-a"));
    gw.start().await;
    (merchant, gw)
}

fn admin_url(gw: &Gateway, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", gw.admin_port)
}

/// The session cookie of a login as `name`.
async fn login(gw: &Gateway, name: &str) -> String {
    let body = format!("name={name}&token={TOKEN}");
    let a = gw
        .http(
            "POST",
            &admin_url(gw, "/console/login"),
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(a.status, 303);
    let cookie = a.headers.get("set-cookie").and_then(|v| v.to_str().ok()).expect("a session cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

async fn page(gw: &Gateway, path: &str, cookie: &str) -> (u16, String) {
    let a = gw.http("GET", &admin_url(gw, path), &[("cookie", cookie)], b"").await;
    (a.status, String::from_utf8_lossy(&a.body).into_owned())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    html[at..at + 32].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_csrf_and_what_each_page_shows_and_hides() {
    let (merchant, gw) = started(259_200).await;
    let (status, p) = gw.call("POST", "/v1/payments", &payment_body("C-1", 1980)).await;
    assert_eq!(status, 200, "{p}");
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;

    // Not logged in: pages send to the login, posts are refused, the admin API is unchanged.
    let a = gw.http("GET", &admin_url(&gw, "/console/payments"), &[], b"").await;
    assert_eq!((a.status, a.headers.get("location").and_then(|l| l.to_str().ok())), (303, Some("/console/login")));
    let a = gw.http("GET", &admin_url(&gw, "/admin/events"), &[], b"").await;
    assert_eq!(a.status, 401);
    let forged = "name=x&token=wrong";
    let a = gw
        .http(
            "POST",
            &admin_url(&gw, "/console/login"),
            &[("content-type", "application/x-www-form-urlencoded")],
            forged.as_bytes(),
        )
        .await;
    assert!(a.status == 401 && a.headers.get("set-cookie").is_none(), "a wrong token gets no session");
    let tampered = login(&gw, "Wang").await.replacen("57616e67", "41646d69", 1);
    let (status, _) = page(&gw, "/console", &tampered).await;
    assert_eq!(status, 303, "a session cookie with another name under the same MAC is not a session");

    let cookie = login(&gw, "Wang").await;
    let (status, overview) = page(&gw, "/console", &cookie).await;
    assert_eq!(status, 200);
    assert!(overview.contains("<strong class=\"operator\">Wang</strong>"), "{overview}");
    assert!(overview.contains("data-account=\"xxpay-a\""));
    // The bearer token works too (scripts), and the page has no external asset.
    let a = gw
        .http("GET", &admin_url(&gw, "/console/providers"), &[("authorization", &format!("Bearer {TOKEN}"))], b"")
        .await;
    assert_eq!(a.status, 200);
    let csp = a.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    // No page shows a secret: merchant keys, provider keys, the admin token.
    let mut all = String::new();
    let payment_id = p["payment_id"].as_str().unwrap();
    for path in [
        "/console",
        "/console/payments",
        &format!("/console/payments/{payment_id}"),
        "/console/notifications",
        "/console/providers",
        "/console/reconcile",
    ] {
        let (status, html) = page(&gw, path, &cookie).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(!html.contains("<script"), "{path} needs no script");
        all.push_str(&html);
    }
    let config = std::fs::read_to_string(&gw.config_path).unwrap();
    for secret in [TOKEN, MERCHANT_KEY, "weiweixiao", "AD42F6697B035B7580E4FEF93BE20B4D", "654321"] {
        assert!(config.contains(secret), "{secret} is in routes.yaml");
        assert!(!all.contains(secret), "a console page shows the secret {secret}");
    }

    // A replay needs the session's CSRF token: without it, nothing is sent again.
    let (_, list) = page(&gw, "/console/notifications", &cookie).await;
    let (_, events_json) = {
        let a = gw
            .http("GET", &admin_url(&gw, "/admin/events"), &[("authorization", &format!("Bearer {TOKEN}"))], b"")
            .await;
        (a.status, serde_json::from_slice::<Value>(&a.body).unwrap())
    };
    let event_id = events_json["events"][0]["id"].as_str().unwrap().to_string();
    assert!(list.contains(&event_id));
    let replay = admin_url(&gw, &format!("/console/notifications/{event_id}/replay"));
    let form = [("content-type", "application/x-www-form-urlencoded"), ("cookie", cookie.as_str())];
    let a = gw.http("POST", &replay, &form, b"csrf=00000000000000000000000000000000").await;
    assert_eq!(a.status, 403, "a forged form is refused");
    let other = login(&gw, "Li").await;
    let (_, other_page) = page(&gw, "/console/notifications", &other).await;
    let a = gw.http("POST", &replay, &form, format!("csrf={}", csrf_of(&other_page)).as_bytes()).await;
    assert_eq!(a.status, 403, "another session's token is refused");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(merchant.events().len(), 1, "nothing was sent again");

    let a = gw.http("POST", &replay, &form, format!("csrf={}", csrf_of(&list)).as_bytes()).await;
    assert_eq!(a.status, 303);
    events(&merchant, 2).await;
    assert_eq!(merchant.events()[1].event_id, merchant.events()[0].event_id, "the same event, sent again");
    let log = gw.log();
    assert!(
        log.lines().any(|l| l.contains("console: notification sent again")
            && l.contains("operator=Wang")
            && l.contains(&event_id)),
        "the replay is logged with who: {log}"
    );

    // Bad input is told, not guessed.
    let (status, html) = page(&gw, "/console/payments?status=paid", &cookie).await;
    assert!(status == 400 && html.contains("unknown paymentstatus &quot;paid&quot;"), "{status} {html}");
    let (status, html) = page(&gw, "/console/payments?from=yesterday", &cookie).await;
    assert!(status == 400 && html.contains("from: a time like"), "{status} {html}");
    let (status, _) = page(&gw, "/console/payments/P-nothing", &cookie).await;
    assert_eq!(status, 404);

    // The language follows Accept-Language, and the switch overrides it.
    let a = gw
        .http("GET", &admin_url(&gw, "/console"), &[("cookie", &cookie), ("accept-language", "zh-CN,zh;q=0.9")], b"")
        .await;
    assert!(String::from_utf8_lossy(&a.body).contains("<h1>总览</h1>"));
    let a = gw
        .http(
            "GET",
            &admin_url(&gw, "/console"),
            &[("cookie", &format!("{cookie}; payglot_lang=en")), ("accept-language", "zh-CN")],
            b"",
        )
        .await;
    assert!(String::from_utf8_lossy(&a.body).contains("<h1>Overview</h1>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_list_filters_and_pages_in_the_store() {
    let (_merchant, gw) = started(259_200).await;
    for i in 0..55 {
        let (status, p) = gw.call("POST", "/v1/payments", &payment_body(&format!("L-{i:02}"), 100 + i)).await;
        assert_eq!(status, 200, "{p}");
    }
    let cookie = login(&gw, "Wang").await;
    let rows = |html: &str| html.matches("<tr data-payment=").count();
    let (_, first) = page(&gw, "/console/payments", &cookie).await;
    assert_eq!(rows(&first), 50, "a page holds 50");
    let marker = "id=\"next-page\" href=\"";
    let at = first.find(marker).expect("a next page") + marker.len();
    let next = first[at..].split('"').next().unwrap().replace("&amp;", "&");
    let (_, second) = page(&gw, &next, &cookie).await;
    assert_eq!(rows(&second), 5, "the rest");
    assert!(!second.contains("id=\"next-page\""));
    let numbers = |html: &str| -> Vec<String> {
        html.split("<td class=\"mono\">L-").skip(1).map(|rest| rest[..2].to_string()).collect()
    };
    let mut all = numbers(&first);
    all.extend(numbers(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 55, "the two pages hold every payment once");
    let (_, one) = page(&gw, "/console/payments?q=L-07", &cookie).await;
    assert_eq!(rows(&one), 1);
    let (_, none) = page(&gw, "/console/payments?status=succeeded", &cookie).await;
    assert_eq!(rows(&none), 0);
    let (_, theirs) = page(&gw, "/console/payments?merchant=school-zx", &cookie).await;
    assert_eq!(rows(&theirs), 0);
}

/// Whether the browser test can run here; in CI (`PAYGLOT_REQUIRE_BROWSER`) it must.
fn browser_available() -> bool {
    let chromium = std::path::Path::new("/usr/bin/chromium").exists();
    let modules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/playwright-core").exists();
    if !(chromium && modules) && std::env::var_os("PAYGLOT_REQUIRE_BROWSER").is_some() {
        panic!("the browser test needs /usr/bin/chromium and `npm ci` in tests/browser (chromium: {chromium}, playwright-core: {modules})");
    }
    chromium && modules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    if !browser_available() {
        eprintln!("skipped: no chromium or playwright-core (CI requires them)");
        return;
    }
    let (merchant, gw) = started(2).await;
    let body = |no: &str, amount: i64, channel: &str, scene: &str, extra: Value| {
        let mut b = json!({"out_trade_no": no, "amount": amount, "subject": "学费 Tuition", "channel": channel, "scene": scene});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b.to_string()
    };
    // One payment through each dialect, each paid at its sandbox provider.
    let made = [
        ("school-a", "xxpay", body("B-XX", 1980, "alipay", "qr", json!({})), true),
        ("school-xjt", "xiaojitong", body("B-XJT", 1200, "wechat", "qr", json!({})), true),
        (
            "school-zx",
            "zhixiao",
            body("B-ZX", 19800, "alipay", "h5", json!({"return_url": "https://school/done"})),
            false,
        ),
        ("school-jg", "jings", body("B-JG", 101, "alipay", "web", json!({"return_url": "https://school/done"})), false),
        ("school-mct", "mct", body("B-MCT", 300, "wechat", "qr", json!({})), false),
    ];
    for (i, (school, dialect, body, by_provider_no)) in made.iter().enumerate() {
        let (status, p) = gw.call_as(school, "POST", "/v1/payments", body).await;
        assert_eq!(status, 200, "{school}: {p}");
        if p["action"]["type"] == "form_post" {
            // The payer's browser posts the form to the provider first (jings).
            let fields: Vec<(String, String)> = p["action"]["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
            let url = p["action"]["url"].as_str().unwrap();
            let posted =
                gw.http("POST", url, &[("content-type", "application/x-www-form-urlencoded")], form.as_bytes()).await;
            assert_eq!(posted.status, 200);
        }
        let order = if *by_provider_no { &p["provider_trade_no"] } else { &p["payment_id"] };
        gw.pay_at(dialect, order.as_str().unwrap()).await;
        events(&merchant, i + 1).await;
    }
    // A pending one and a refund, so the pages have more than one state to show.
    let (status, _) =
        gw.call_as("school-mct", "POST", "/v1/payments", &body("B-MCT-2", 500, "wechat", "qr", json!({}))).await;
    assert_eq!(status, 200);
    let (status, r) = gw
        .call_as(
            "school-mct",
            "POST",
            "/v1/payments/B-MCT/refunds",
            &json!({"out_refund_no": "BR-1", "amount": 100}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let (_, paid) = gw.call_as("school-mct", "GET", "/v1/payments/B-MCT", "").await;
    eventually("the refund's notification", Duration::from_secs(10), || async {
        (merchant.events().iter().filter(|e| e.body.contains("refund.succeeded")).count() == 1).then_some(())
    })
    .await;

    // A notification the merchant refuses until payglot gives up on it.
    merchant.failing.store(true, Ordering::SeqCst);
    let (status, p) = gw.call("POST", "/v1/payments", &payment_body("B-GIVEN-UP", 700)).await;
    assert_eq!(status, 200);
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    let bearer = format!("Bearer {TOKEN}");
    let failed_event = eventually("the notification to be given up", Duration::from_secs(20), || async {
        let a =
            gw.http("GET", &admin_url(&gw, "/admin/events?status=failed"), &[("authorization", &bearer)], b"").await;
        let v: Value = serde_json::from_slice(&a.body).ok()?;
        v["events"].as_array()?.first()?["id"].as_str().map(str::to_string)
    })
    .await;
    merchant.failing.store(false, Ordering::SeqCst);

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let today = {
        let beijing = common::now() + 8 * 3600;
        payglot::model::rfc3339(beijing)[..10].to_string()
    };
    let input = json!({
        "admin": format!("http://127.0.0.1:{}", gw.admin_port),
        "token": TOKEN,
        "shots": shots,
        "paid": {"out_trade_no": "B-MCT", "payment_id": paid["payment_id"], "provider": "mct"},
        "failed_event": failed_event,
        "merchant": "school-a",
        "accounts": ["xxpay-a", "xjt", "zx", "jg", "mct"],
        "today": today,
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.mjs");
    // playwright's own timeouts (30 s an action) end a stuck run.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").arg(&script).arg(input.to_string()).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("console browser test passed"));
    for name in [
        "01-login",
        "02-overview",
        "04-payment",
        "05-notifications-failed",
        "07-providers",
        "08-reconcile",
        "09-overview-zh",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "screenshot {name}");
    }
    let log = gw.log();
    assert!(
        log.lines().any(|l| l.contains("console: notification sent again")
            && l.contains("Wang Li")
            && l.contains(&failed_event)),
        "the replay is logged with who"
    );
    assert!(log.contains("console login refused"), "the wrong token is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_json_speaks_to_people() {
    let (merchant, gw) = started(259_200).await;
    let (_, p) = gw.call("POST", "/v1/payments", &payment_body("J-1", 1980)).await;
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    events(&merchant, 1).await;
    let bearer = format!("Bearer {TOKEN}");
    let get = |path: &'static str| {
        let (gw, bearer) = (&gw, bearer.clone());
        async move {
            let a = gw.http("GET", &admin_url(gw, path), &[("authorization", &bearer)], b"").await;
            serde_json::from_slice::<Value>(&a.body).unwrap()
        }
    };
    let rfc3339 = |v: &Value| v.as_str().is_some_and(|t| payglot::model::parse_time(t).is_some() && t.ends_with('Z'));

    let config = get("/admin/config").await;
    let c = &config["config"];
    assert_eq!(c["merchants"]["school-a"]["routes"][0]["target"], json!({"account": "xxpay-a"}), "{c}");
    assert!(c["store"].as_str().is_some_and(|s| s.starts_with("sqlite://") && s.ends_with("payglot.db")), "{c}");
    let xxpay = &c["providers"]["xxpay-a"]["credentials"];
    assert_eq!(
        (xxpay["mch_id"].as_str(), xxpay["key"].as_str()),
        (Some(XXPAY_A.0), Some("<redacted, 11 chars>")),
        "ids in clear, keys not: {xxpay}"
    );
    assert_eq!(c["providers"]["zx"]["credentials"]["appid"], "partner1");
    assert_eq!(c["providers"]["mct"]["credentials"]["shop_pass"], "<redacted, 6 chars>");
    assert_eq!(c["providers"]["xxpay-a"]["unverified_queries"], json!({"max": 30, "window_secs": 60}));
    assert!(rfc3339(&config["loaded_at"]));

    let events = get("/admin/events").await;
    let e = &events["events"][0];
    assert!(rfc3339(&e["created_at"]) && rfc3339(&e["next_attempt_at"]) && rfc3339(&e["delivered_at"]), "{e}");
    let payment_id = p["payment_id"].as_str().unwrap().to_string();
    let view = eventually("the timeline", Duration::from_secs(5), || {
        let (gw, bearer, path) = (&gw, bearer.clone(), format!("/admin/payments/{payment_id}"));
        async move {
            let a = gw.http("GET", &admin_url(gw, &path), &[("authorization", &bearer)], b"").await;
            let v: Value = serde_json::from_slice(&a.body).ok()?;
            (v["timeline"].as_array()?.len() >= 3).then_some(v)
        }
    })
    .await;
    let at = view["timeline"][0]["at"].as_str().unwrap();
    assert!(at.len() == 24 && at.ends_with('Z'), "milliseconds, RFC 3339: {at}");
    assert!(view["timeline"][0].get("at_ms").is_none());
    assert!(rfc3339(&get("/admin/clock").await["now"]));
}
