//! The jings front door (`/compat/jings/pay.action`, `/requstOrderStatus.action`): pay.action is
//! the payer's browser posting the school's signed form (checked with the door's token); the
//! door creates the payment and answers the browser with where to pay: the provider's form
//! posted on (payglot's checkout page), a redirect, or a page showing the QR code. paytype 11
//! is alipay (the document's only one); the door's `scene` (default web) is tried first, then
//! the other URL scenes. requstOrderStatus answers as jings does (status -1 pending, 0 paid,
//! 1 timed out or closed). The balance call is not offered: it answers status 1 saying so.

use super::{credential, find, json, text, Intent, Lookup};
use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::error::ApiError;
use crate::dialects::jings::provider;
use crate::http::html_escape;
use crate::http::{HttpIn, Reply};
use crate::model::{now_unix, Action, Channel, Payment, Scene};
use crate::money::{fen_to_yuan, yuan_to_fen};

pub async fn handle(gateway: &Gateway, live: &LiveConfig, path: &str, request: &HttpIn) -> Reply {
    let token_for = |uid: &str| live.door("jings", uid).map(|(_, door)| credential(door, "token"));
    let now = now_unix();
    match (request.method.as_str(), path) {
        ("POST", "/pay.action") => {
            let fields = match provider::read_pay_form(&request.body, token_for) {
                Ok(f) => f,
                Err(e) => return text(400, format!("支付请求错误: {e}")),
            };
            let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
            let Some((merchant, door)) = live.door("jings", get("uid")) else {
                return text(400, "支付请求错误: unknown uid");
            };
            let Ok(amount) = yuan_to_fen(get("paymoney")) else {
                return text(400, "支付请求错误: paymoney 错误");
            };
            let channel =
                if get("paytype") == "11" { Channel::Alipay } else { door.channel.unwrap_or(Channel::Alipay) };
            let scenes = super::url_scenes(door.scene.unwrap_or(Scene::Web));
            let mut intent = Intent::new(get("orderid"), amount, get("ordername"), channel, scenes)
                .notify_url(get("notifyurl"))
                .return_url(get("returnurl"))
                .keep("orderuid", get("orderuid"));
            intent.description = get("orderinfo").to_string();
            intent.client_ip = client_ip(request);
            if !get("orderuid").is_empty() {
                intent.extra.insert("orderuid".into(), get("orderuid").into());
            }
            match super::create(gateway, live, merchant, door, intent, now).await {
                Ok(payment) => pay_page(live, &payment),
                Err(e) => text(400, format!("支付请求错误: {}", super::refusal(&e))),
            }
        }
        ("GET", "/requstOrderStatus.action") => {
            let fields = match provider::read_query(&request.query, &["orderid", "uid"], token_for) {
                Ok(f) => f,
                Err(e) => return json(provider::query_failure(&e)),
            };
            let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
            let Some((merchant, door)) = live.door("jings", get("uid")) else {
                return json(provider::query_failure("unknown uid"));
            };
            match find(gateway, live, merchant, Lookup::OutTradeNo(get("orderid")), now).await {
                Ok(payment) => json(provider::query_answer(&crate::core::notify::provider_order(&payment, door))),
                Err(e) if e.code == "not_found" => json(provider::query_failure("订单不存在")),
                Err(e) => json(provider::query_failure(&super::refusal(&e))),
            }
        }
        ("GET", "/requstBalance.action") => json(
            serde_json::json!({"msg": "payglot 兼容入口不提供余额查询 (use GET /v1/balance)", "status": "1"})
                .to_string(),
        ),
        _ => text(404, "no such jings endpoint"),
    }
}

/// The payer's address, as a proxy in front of payglot reports it.
fn client_ip(request: &HttpIn) -> Option<String> {
    let forwarded = request.header("x-forwarded-for")?.split(',').next()?.trim();
    forwarded.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
}

/// What the payer's browser gets after pay.action: on to wherever the provider takes payment.
fn pay_page(live: &LiveConfig, payment: &Payment) -> Reply {
    if let Some(Action::FormPost { .. }) = &payment.action {
        return crate::doors::checkout::checkout_page(payment).unwrap_or_else(|e| Reply::error(&e));
    }
    let url = html_escape(&super::pay_url(live, payment));
    let yuan = fen_to_yuan(payment.amount);
    let body = match &payment.action {
        Some(Action::Redirect { .. }) => format!(
            "<!doctype html><meta charset=utf-8><meta http-equiv=\"refresh\" content=\"0;url={url}\">\
             <title>支付</title><p><a href=\"{url}\">继续支付 {yuan} 元</a></p>"
        ),
        Some(Action::QrCode { amount, .. }) => format!(
            "<!doctype html><meta charset=utf-8><title>支付</title><p>请扫码或点击支付 {pay} 元</p>\
             <p data-qr-code=\"{url}\"><a href=\"{url}\">{url}</a></p>",
            pay = fen_to_yuan(amount.unwrap_or(payment.amount)),
        ),
        _ => {
            return Reply::error(&ApiError::unsupported(
                &payment.provider,
                "this payment cannot be paid from a browser",
            ))
        }
    };
    Reply { status: 200, content_type: "text/html; charset=utf-8", body }
}
