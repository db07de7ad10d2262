//! Notifications to merchants: the outbox by status and merchant, and sending one or a
//! filtered set again (a POST with the session's CSRF token, logged with the operator's name).

use super::pages::{badge, plain, select, Problem};
use super::payments::replay_button;
use super::{beijing, layout, parse_beijing, Ctx, Page};
use crate::store::EventState;
use maud::html;
use std::collections::HashMap;

const LIMIT: usize = 200;

fn state(text: &str) -> Result<EventState, Problem> {
    match text {
        "pending" => Ok(EventState::Pending),
        "failed" => Ok(EventState::Failed),
        "delivered" => Ok(EventState::Delivered),
        other => Err(Problem::BadInput(format!("status: pending, failed or delivered, not {other:?}"))),
    }
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Page, Problem> {
    let status = ctx.param("status").map(state).transpose()?;
    let merchant = ctx.param("merchant");
    let events = ctx.gateway.store.list_events(merchant, status.map(EventState::as_str), LIMIT).await?;
    let live = ctx.gateway.config.current();
    let merchants = plain(live.config.merchants.keys());
    let states: Vec<_> =
        ["pending", "failed", "delivered"].iter().map(|s| (s.to_string(), ctx.t(s).to_string())).collect();
    let back: String = form_urlencoded::byte_serialize(ctx.here.as_bytes()).collect();
    let content = html! {
        @if let Some(n) = ctx.param("replayed") {
            p.flash role="status" #flash { strong { (n) } " " (ctx.t("replayed")) }
        }
        form.filters method="get" action="/console/notifications" {
            (select(ctx, "status", ctx.t("status"), &states, ctx.param("status")))
            (select(ctx, "merchant", ctx.t("merchant"), &merchants, merchant))
            button type="submit" { (ctx.t("filter")) }
            a href="/console/notifications" { (ctx.t("clear")) }
        }
        table #events {
            thead { tr {
                th { (ctx.t("created")) } th { (ctx.t("merchant")) } th { (ctx.t("payment")) } th { (ctx.t("kind")) }
                th { (ctx.t("status")) } th.num { (ctx.t("attempts")) } th { (ctx.t("last_error")) }
                th { (ctx.t("next_attempt")) } th { (ctx.t("delivered_at")) } th {}
            } }
            tbody {
                @for e in &events {
                    tr data-event=(e.id) data-state=(e.state) {
                        td.mono { (beijing(e.created_at)) }
                        td { (e.merchant_id) }
                        td { a.mono href=(format!("/console/payments/{}", e.order_id)) { (e.order_id) } }
                        td { (e.kind) }
                        td { (badge(ctx, &e.state)) }
                        td.num { (e.attempts) }
                        td.error { (e.last_error.as_deref().unwrap_or("")) }
                        td.mono { @if e.state == "pending" { (beijing(e.next_attempt_at)) } }
                        td.mono { @if let Some(at) = e.delivered_at { (beijing(at)) } }
                        td { (replay_button(ctx, &e.id, &back)) }
                    }
                }
                @if events.is_empty() { tr { td colspan="10" { (ctx.t("no_events")) } } }
            }
        }
        h2 { (ctx.t("replay_matching")) }
        form.filters method="post" action="/console/notifications/replay" #replay-matching {
            input type="hidden" name="csrf" value=(ctx.csrf);
            (select(ctx, "merchant", ctx.t("merchant"), &merchants, merchant))
            (select(ctx, "status", ctx.t("status"), &states, Some(ctx.param("status").unwrap_or("failed"))))
            label { (ctx.t("from")) input type="datetime-local" name="from"; }
            label { (ctx.t("to")) input type="datetime-local" name="to"; }
            button type="submit" { (ctx.t("replay")) }
        }
        p.note { (ctx.t("times_in")) }
    };
    Ok(Page::Html(200, layout(ctx, "notifications", ctx.t("notifications"), content)))
}

pub async fn replay_one(ctx: &Ctx<'_>, id: &str, _form: &HashMap<String, String>) -> Result<Page, Problem> {
    let gateway = ctx.gateway;
    if !gateway.store.replay_event(id, gateway.clock.now()).await? {
        return Err(Problem::NotFound);
    }
    tracing::info!(operator = %ctx.operator, event = %id, "console: notification sent again");
    gateway.forget_gone();
    gateway.outbox_wake.notify_one();
    let back = ctx.param("back").filter(|b| b.starts_with("/console/")).unwrap_or("/console/notifications");
    let joiner = if back.contains('?') { '&' } else { '?' };
    Ok(Page::Redirect(format!("{back}{joiner}replayed=1")))
}

pub async fn replay_matching(ctx: &Ctx<'_>, form: &HashMap<String, String>) -> Result<Page, Problem> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let Some(merchant) = field("merchant") else {
        return Err(Problem::BadInput(ctx.t("merchant_required").to_string()));
    };
    let status = state(field("status").unwrap_or("failed"))?;
    let time = |name: &str, default: i64| match field(name) {
        None => Ok(default),
        Some(t) => parse_beijing(t)
            .ok_or_else(|| Problem::BadInput(format!("{name}: a time like 2026-12-02 13:00 (Beijing), not {t:?}"))),
    };
    let (from, to) = (time("from", 0)?, time("to", i64::MAX)?);
    let gateway = ctx.gateway;
    let n = gateway.store.replay_events(merchant, status, from, to, gateway.clock.now()).await?;
    tracing::info!(operator = %ctx.operator, merchant = %merchant, status = status.as_str(), from, to, replayed = n, "console: notifications sent again");
    gateway.forget_gone();
    gateway.outbox_wake.notify_one();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("merchant", merchant).append_pair("status", "pending").append_pair("replayed", &n.to_string());
    Ok(Page::Redirect(format!("/console/notifications?{}", q.finish())))
}
