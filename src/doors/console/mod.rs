//! The ops console: server-rendered pages under `/console` on the admin listener, in English
//! and Chinese, with no external assets and no JavaScript (air-gapped schools; a page works in
//! any browser, forms post without scripts).
//!
//! Who may look: the same as the admin API. With an `admin_token` in routes.yaml, a person
//! logs in once with their name and the token and gets a session cookie (HttpOnly,
//! SameSite=Strict, 12 hours, signed with a key derived from the token and a per-process
//! random key, so a token change or a restart ends every session); a script may send
//! `Authorization: Bearer` instead. Without a token (loopback only) the console is open and the
//! login only records a name. Every action that changes something (sending notifications
//! again, settling a reconciliation, logging out) is a POST carrying a CSRF token bound to the
//! session, and is logged with the operator's name.
//!
//! Times are shown and read as Beijing time (UTC+8), the day reconciliation counts in.

mod chart;
mod notifications;
mod overview;
mod pages;
mod payments;
mod providers;
mod reconcile;
pub mod text;

use crate::app::Gateway;
use crate::http::HttpIn;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::Response;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::OnceLock;
use text::Lang;

/// How long a console session lasts.
const SESSION_SECS: i64 = 12 * 3600;
const SESSION_COOKIE: &str = "payglot_session";
const LANG_COOKIE: &str = "payglot_lang";

/// What a page knows about the request it answers.
pub struct Ctx<'a> {
    pub gateway: &'a Gateway,
    pub lang: Lang,
    /// Who is looking (the name given at login).
    pub operator: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// The request's path and query (for the language switch's way back).
    pub here: String,
    pub query: HashMap<String, String>,
}

impl Ctx<'_> {
    pub fn t(&self, key: &'static str) -> &'static str {
        self.lang.t(key)
    }

    /// A query parameter, if given and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// A page's answer.
pub enum Page {
    Html(u16, Markup),
    /// 303 to a console path (after a POST, so a reload does not post again).
    Redirect(String),
}

/// Whether a path is the console's.
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Answers a console request.
pub async fn handle(gateway: &Gateway, request: &HttpIn) -> Response<Full<Bytes>> {
    let query: HashMap<String, String> = form_urlencoded::parse(request.query.as_bytes()).into_owned().collect();
    let lang = match cookie(request, LANG_COOKIE) {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ => Lang::from_accept_language(request.header("accept-language").unwrap_or("")),
    };
    let key = session_key(gateway);
    let path = request.path.trim_end_matches('/');
    match (request.method.as_str(), path) {
        ("GET", "/console/lang") => {
            let to = if query.get("to").map(String::as_str) == Some("zh") { "zh" } else { "en" };
            let back = query.get("back").filter(|b| is_console(b.split('?').next().unwrap_or(""))).cloned();
            let cookie = format!("{LANG_COOKIE}={to}; Path=/console; Max-Age=31536000; SameSite=Strict");
            return respond(Page::Redirect(back.unwrap_or_else(|| "/console".into())), &[cookie]);
        }
        ("GET", "/console/login") => return respond(login_page(gateway, lang, None), &[]),
        ("POST", "/console/login") => return login(gateway, lang, &key, request),
        _ => {}
    }
    let Some((operator, session)) = who(gateway, &key, request) else {
        if request.method == "GET" {
            return respond(Page::Redirect("/console/login".into()), &[]);
        }
        return respond(Page::Html(401, message_page(lang, lang.t("log_in"), lang.t("csrf_failed"))), &[]);
    };
    let csrf = hex::encode(&mac(&key, &format!("csrf|{session}"))[..16]);
    let ctx = Ctx { gateway, lang, operator, csrf, here: request.path_and_query(), query };
    if request.method == "POST" {
        let form: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
        let given = form.get("csrf").map(String::as_str).unwrap_or("");
        if !crate::dialects::signing::same_signature(&ctx.csrf, given) {
            return respond(Page::Html(403, message_page(lang, lang.t("bad_request"), lang.t("csrf_failed"))), &[]);
        }
        if path == "/console/logout" {
            let clear = format!("{SESSION_COOKIE}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict");
            tracing::info!(operator = %ctx.operator, "console logout");
            return respond(Page::Redirect("/console/login".into()), &[clear]);
        }
        return respond(pages::post(&ctx, path, &form).await, &[]);
    }
    if request.method != "GET" {
        return respond(Page::Html(405, message_page(lang, lang.t("bad_request"), "GET or POST")), &[]);
    }
    respond(pages::get(&ctx, path).await, &[])
}

/// The operator of a request and the session value the CSRF token is bound to, if allowed in.
fn who(gateway: &Gateway, key: &[u8], request: &HttpIn) -> Option<(String, String)> {
    let live = gateway.config.current();
    let token = live.config.admin_token.as_ref();
    if let (Some(token), Some(bearer)) =
        (token, request.header("authorization").and_then(|h| h.strip_prefix("Bearer ")))
    {
        return crate::dialects::signing::same_signature(token.expose(), bearer)
            .then(|| ("bearer token".to_string(), String::new()));
    }
    let now = gateway.clock.now().max(crate::model::now_unix());
    // Without a token the console is open, but a person still logs in to give a name.
    let value = cookie(request, SESSION_COOKIE)?;
    open_session(key, value, now).map(|name| (name, value.to_string()))
}

/// The key sessions and CSRF tokens are signed with: this process's random key and the admin
/// token, so either changing ends every session.
fn session_key(gateway: &Gateway) -> Vec<u8> {
    static PROCESS_KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let process = PROCESS_KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        // Without randomness a session key would be guessable: refuse every session then.
        if getrandom::getrandom(&mut key).is_err() {
            tracing::error!("no randomness for console sessions");
        }
        key
    });
    let live = gateway.config.current();
    let token = live.config.admin_token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default();
    mac(process, &format!("session-key|{token}"))
}

fn mac(key: &[u8], message: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A session cookie's value: the name (hex), its end (unix seconds), their MAC.
fn seal_session(key: &[u8], name: &str, until: i64) -> String {
    let body = format!("{}.{until}", hex::encode(name));
    format!("{body}.{}", hex::encode(mac(key, &body)))
}

fn open_session(key: &[u8], value: &str, now: i64) -> Option<String> {
    let (body, tag) = value.rsplit_once('.')?;
    if !crate::dialects::signing::same_signature(&hex::encode(mac(key, body)), tag) {
        return None;
    }
    let (name, until) = body.split_once('.')?;
    if until.parse::<i64>().ok()? < now {
        return None;
    }
    String::from_utf8(hex::decode(name).ok()?).ok()
}

/// A name an operator may log in as: what the logs can print as it is.
fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || " ._-@".contains(c))
        && !name.trim().is_empty()
}

fn login(gateway: &Gateway, lang: Lang, key: &[u8], request: &HttpIn) -> Response<Full<Bytes>> {
    let form: HashMap<String, String> = form_urlencoded::parse(&request.body).into_owned().collect();
    let name = form.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    if !valid_name(&name) {
        return respond(login_page(gateway, lang, Some(lang.t("bad_name"))), &[]);
    }
    let live = gateway.config.current();
    if let Some(token) = &live.config.admin_token {
        let given = form.get("token").map(String::as_str).unwrap_or("");
        if !crate::dialects::signing::same_signature(token.expose(), given) {
            tracing::warn!(operator = %name, "console login refused: wrong admin token");
            return respond(login_page(gateway, lang, Some(lang.t("login_failed"))), &[]);
        }
    }
    let now = gateway.clock.now().max(crate::model::now_unix());
    let value = seal_session(key, &name, now + SESSION_SECS);
    tracing::info!(operator = %name, "console login");
    let cookie = format!("{SESSION_COOKIE}={value}; Path=/console; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict");
    respond(Page::Redirect("/console".into()), &[cookie])
}

fn login_page(gateway: &Gateway, lang: Lang, error: Option<&str>) -> Page {
    let needs_token = gateway.config.current().config.admin_token.is_some();
    let body = html! {
        main.login {
            h1 { (lang.t("console")) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if !needs_token { p.note { (lang.t("no_token_configured")) } }
            form method="post" action="/console/login" {
                label { (lang.t("your_name")) input type="text" name="name" required autocomplete="username" maxlength="40"; }
                @if needs_token {
                    label { (lang.t("admin_token")) input type="password" name="token" required autocomplete="current-password"; }
                }
                button type="submit" { (lang.t("log_in")) }
            }
            (lang_switch(lang, "/console/login"))
        }
    };
    Page::Html(if error.is_some() { 401 } else { 200 }, document(lang, lang.t("log_in"), body))
}

fn lang_switch(lang: Lang, here: &str) -> Markup {
    let (_, code, name) = lang.other();
    let back: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    html! { a.lang href=(format!("/console/lang?to={code}&back={back}")) lang=(code) { (name) } }
}

/// A whole page: the head with the console's own style, then `body`.
fn document(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · payglot" }
                style { (PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
}

/// A page inside the console's frame: navigation, language switch, logout.
pub fn layout(ctx: &Ctx, active: &str, title: &str, content: Markup) -> Markup {
    let nav = [
        ("/console", "overview"),
        ("/console/payments", "payments"),
        ("/console/notifications", "notifications"),
        ("/console/providers", "providers"),
        ("/console/reconcile", "reconcile"),
    ];
    let body = html! {
        header {
            span.brand { "payglot" }
            nav {
                @for (href, key) in nav {
                    a href=(href) aria-current=[(key == active).then_some("page")] { (ctx.t(key)) }
                }
            }
            span.who { (ctx.t("signed_in_as")) " " strong.operator { (ctx.operator) } }
            (lang_switch(ctx.lang, &ctx.here))
            form.inline method="post" action="/console/logout" {
                input type="hidden" name="csrf" value=(ctx.csrf);
                button.link type="submit" { (ctx.t("log_out")) }
            }
        }
        main { h1 { (title) } (content) }
    };
    document(ctx.lang, title, body)
}

/// A small page with a title and one message.
fn message_page(lang: Lang, title: &str, message: &str) -> Markup {
    document(
        lang,
        title,
        html! { main.login { h1 { (title) } p.error { (message) } a href="/console" { (lang.t("overview")) } } },
    )
}

fn cookie<'a>(request: &'a HttpIn, name: &str) -> Option<&'a str> {
    request
        .headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|header| header.split(';').find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('=')))
}

/// The response of a page, with the headers every console page carries.
fn respond(page: Page, cookies: &[String]) -> Response<Full<Bytes>> {
    let (status, body, location) = match page {
        Page::Html(status, markup) => (status, markup.into_string(), None),
        Page::Redirect(to) => (303, String::new(), Some(to)),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if let Some(to) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(hyper::header::LOCATION, to);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(hyper::header::SET_COOKIE, v);
        }
    }
    response
}

/// Beijing time of a unix second, as `2026-12-02 13:47:02`.
pub fn beijing(unix_seconds: i64) -> String {
    let text = crate::model::rfc3339(unix_seconds.saturating_add(8 * 3600));
    text.trim_end_matches('Z').replacen('T', " ", 1)
}

/// A time an operator typed (Beijing time): `2026-12-02T13:00` (a datetime-local field),
/// `2026-12-02 13:00:00`, `2026-12-02` (its 00:00), or RFC 3339 with its own offset.
pub fn parse_beijing(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.ends_with('Z') || text.contains('+') {
        return crate::model::parse_time(text);
    }
    let text = text.replacen(' ', "T", 1);
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => return None,
    };
    let utc = humantime::parse_rfc3339(&full).ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(utc - 8 * 3600)
}

/// An amount of fen as yuan: `¥19.80`.
pub fn yuan(fen: i64) -> String {
    format!("¥{}", crate::money::fen_to_yuan(fen))
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;--accent:#1f5fbf;--ok:#1d7f46;--bad:#b3261e;--warn:#a15c00;--closed:#6b7280}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;padding:.6rem 1.2rem;background:#14213d;color:#fff}
header a,header button.link{color:#dfe7f5;text-decoration:none}header nav{display:flex;gap:.9rem;flex:1}header nav a[aria-current=page]{color:#fff;font-weight:600;border-bottom:2px solid #7fb2ff}
.brand{font-weight:700;letter-spacing:.02em}.who{color:#b9c4d8}.who strong{color:#fff}
main{padding:1rem 1.2rem;max-width:1400px}h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;background:var(--card);width:100%;margin:.3rem 0 1rem}th,td{border-bottom:1px solid var(--line);padding:.35rem .55rem;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600;white-space:nowrap}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:.8rem;margin-bottom:1rem}.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.7rem .9rem}
.card h2{margin:0 0 .3rem;font-size:.9rem;color:var(--muted);font-weight:600}.card .big{font-size:1.5rem;font-weight:650}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.85em;border:1px solid currentColor}
.s-succeeded,.s-delivered,.s-closed-circuit{color:var(--ok)}.s-failed,.s-open{color:var(--bad)}.s-pending,.s-half_open{color:var(--warn)}.s-closed{color:var(--closed)}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem .8rem;align-items:end;background:var(--card);border:1px solid var(--line);padding:.7rem;border-radius:6px;margin-bottom:.8rem}
label{display:flex;flex-direction:column;gap:.15rem;font-size:.85rem;color:var(--muted)}input,select,button{font:inherit;padding:.3rem .45rem;border:1px solid #b8c0cc;border-radius:4px;background:#fff;color:var(--fg)}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}button.secondary{background:#fff;color:var(--accent)}button.link{background:none;border:none;padding:0;cursor:pointer}
form.inline{display:inline}.error{color:var(--bad)}.note{color:var(--muted)}.flash{background:#e8f3ec;border:1px solid #b7dcc4;padding:.5rem .8rem;border-radius:6px}
main.login{max-width:420px;margin:8vh auto;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1.4rem}main.login form{display:flex;flex-direction:column;gap:.8rem}
a{color:var(--accent)}a.lang{font-size:.9em}.chart{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.5rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;background:var(--card);border:1px solid var(--line);padding:.7rem;border-radius:6px}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
td.mono,td .mono,td button,td time{white-space:nowrap}table.routes td.num,table.routes th.num{width:4rem}table.routes td:nth-child(3){width:30%}
.legend span{margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_only_with_its_own_key_and_before_its_end() {
        let key = b"k".repeat(32);
        let sealed = seal_session(&key, "Wang Li", 1_000);
        assert_eq!(open_session(&key, &sealed, 999).as_deref(), Some("Wang Li"));
        assert_eq!(open_session(&key, &sealed, 1_001), None, "ended");
        assert_eq!(open_session(&b"x".repeat(32), &sealed, 999), None, "another key");
        let forged = sealed.replacen(&hex::encode("Wang Li"), &hex::encode("admin"), 1);
        assert_eq!(open_session(&key, &forged, 999), None, "another name under the same MAC");
        assert_eq!(open_session(&key, "garbage", 0), None);
    }

    #[test]
    fn beijing_time_is_written_and_read_back() {
        // 2026-12-02T05:47:02Z is 13:47:02 in Beijing.
        assert_eq!(beijing(1_796_190_422), "2026-12-02 13:47:02");
        assert_eq!(parse_beijing("2026-12-02 13:47:02"), Some(1_796_190_422));
        assert_eq!(parse_beijing("2026-12-02T13:47"), Some(1_796_190_420));
        assert_eq!(parse_beijing("2026-12-02"), Some(1_796_140_800));
        assert_eq!(parse_beijing("2026-12-02T05:47:02Z"), Some(1_796_190_422));
        assert_eq!(parse_beijing("yesterday"), None);
        assert!(valid_name("Wang Li") && valid_name("王丽") && !valid_name("") && !valid_name("a\nb"));
    }
}
