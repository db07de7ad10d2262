//! The payer's checkout page (`GET /v1/payments/{payment_id}/checkout`, and what the jings
//! front door hands the payer's browser): HTML in every state.

use crate::app::Gateway;
use crate::core::error::ApiError;
use crate::core::payments::refresh_from_provider;
use crate::http::{html_escape, Reply};
use crate::model::{Action, Payment, PaymentStatus};

/// `GET /v1/payments/{payment_id}/checkout`: the page a payer's browser opens for a payment
/// whose provider must receive the order from the browser (jings). Every outcome is an HTML
/// page a person can read, never JSON:
/// - pending, first opening: the form posts itself to the provider;
/// - pending, opened before (a reload, the back button, a second tab): the provider already
///   has the order and would show its duplicate-order page, so payglot asks the provider (within
///   its rate limit) and shows where the payment stands, with a button that posts the form again
///   for a payer whose first attempt never reached the provider;
/// - paid: "payment complete", and on to the merchant's return_url;
/// - closed or failed, unknown, or not a form payment: a page saying so.
pub async fn checkout(gateway: &Gateway, payment_id: &str) -> Result<Reply, ApiError> {
    let Some(mut payment) = gateway.store.payment_by_id(payment_id).await? else {
        return Ok(page(404, "支付 Payment", "<p>没有这笔支付。No such payment.</p>"));
    };
    let opened_before = checkout_opened(gateway, payment_id).await;
    if payment.status == PaymentStatus::Pending && opened_before {
        let live = gateway.config.current();
        if let Ok(now) = refresh_from_provider(gateway, &live, &payment, gateway.clock.now()).await {
            payment = now;
        }
    }
    if payment.status == PaymentStatus::Pending && !opened_before {
        gateway.note(payment_id, "checkout", serde_json::json!({"opened": true}));
    }
    Ok(checkout_view(&payment, opened_before))
}

/// Whether the checkout of this payment was opened before (remembered in memory and on the
/// payment's timeline, so a restart does not forget it).
async fn checkout_opened(gateway: &Gateway, payment_id: &str) -> bool {
    {
        let mut opened = gateway.checkouts.lock().unwrap_or_else(|p| p.into_inner());
        if opened.contains(payment_id) {
            return true;
        }
        if opened.len() >= 100_000 {
            opened.clear();
        }
        opened.insert(payment_id.to_string());
    }
    gateway.store.timeline(payment_id).await.is_ok_and(|t| t.iter().any(|e| e.kind == "checkout"))
}

/// The page for a payment as it stands (see `checkout`).
pub fn checkout_view(payment: &Payment, opened_before: bool) -> Reply {
    let amount = crate::money::fen_to_yuan(payment.amount);
    let subject = html_escape(&payment.subject);
    let back = payment.return_url.as_deref().map(html_escape);
    match payment.status {
        PaymentStatus::Succeeded => {
            let onward = back.as_ref().map(|u| format!("<p><a href=\"{u}\">返回商户 Back to the merchant</a></p>")).unwrap_or_default();
            let refresh = back.as_ref().map(|u| format!("<meta http-equiv=\"refresh\" content=\"3;url={u}\">")).unwrap_or_default();
            page(200, "支付完成 Payment complete", &format!("{refresh}<p>{subject}: {amount} 元已支付。Paid {amount} yuan.</p>{onward}"))
        }
        PaymentStatus::Closed | PaymentStatus::Failed => page(
            410,
            "支付已结束 Payment ended",
            &format!("<p>{subject}: 这笔支付已{}，不能再付款；请向商户重新下单。This payment is {}; ask the merchant for a new one.</p>",
                if payment.status == PaymentStatus::Closed { "关闭" } else { "失败" }, payment.status),
        ),
        PaymentStatus::Pending => {
            let Some(Action::FormPost { url, fields }) = &payment.action else {
                return page(404, "支付 Payment", "<p>这笔支付没有可提交的表单。This payment has no form to post.</p>");
            };
            let mut inputs = String::new();
            for (k, v) in fields {
                inputs.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", html_escape(k), html_escape(v)));
            }
            let action = html_escape(url);
            if !opened_before {
                let body = format!(
                    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{subject}</title></head>\n\
                     <body onload=\"document.forms[0].submit()\">\n<form method=\"post\" action=\"{action}\">\n{inputs}\
                     <noscript><button type=\"submit\">Pay {amount}</button></noscript>\n</form>\n</body></html>\n"
                );
                return Reply { status: 200, content_type: "text/html; charset=utf-8", body };
            }
            page(
                200,
                "支付进行中 Payment in progress",
                &format!(
                    "<p>{subject}: {amount} 元，尚未收到付款。Not paid yet.</p>\
                     <p>这个支付页面已经打开过；如果已经付款，请稍候再查看。This page was opened before; if you have paid, check again in a moment.</p>\
                     <p><a href=\"\">再次查看 Check again</a></p>\
                     <form method=\"post\" action=\"{action}\">\n{inputs}<button type=\"submit\">重新打开支付页面 Open the payment page again</button></form>"
                ),
            )
        }
    }
}

/// A small HTML page.
fn page(status: u16, title: &str, content: &str) -> Reply {
    let title = html_escape(title);
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n{content}\n</body></html>\n"
    );
    Reply { status, content_type: "text/html; charset=utf-8", body }
}

/// The auto-submitting page of a pending payment whose action is a `form_post` (a front door
/// hands it out right after creating the payment).
pub fn checkout_page(payment: &Payment) -> Result<Reply, ApiError> {
    if !matches!(payment.action, Some(Action::FormPost { .. })) {
        return Err(ApiError::not_found("this payment has no form to post"));
    }
    Ok(checkout_view(payment, false))
}
