//! Payments: the filtered list (paginated in the store, newest first) and one payment's page
//! with its timeline, notifications, refunds and anomalies.

use super::pages::{badge, door_name, plain, select, Problem};
use super::{beijing, layout, parse_beijing, yuan, Ctx, Page};
use crate::model::{Channel, PaymentStatus, Scene};
use crate::store::PaymentFilter;
use maud::{html, Markup};

const PAGE_SIZE: usize = 50;

/// The filter the query string asks for, or what is wrong with it.
fn filter(ctx: &Ctx) -> Result<PaymentFilter, String> {
    let parsed = |name: &str| ctx.param(name).map(str::to_string);
    let time = |name: &str| -> Result<Option<i64>, String> {
        ctx.param(name)
            .map(|t| {
                parse_beijing(t).ok_or_else(|| format!("{name}: a time like 2026-12-02 13:00 (Beijing), not {t:?}"))
            })
            .transpose()
    };
    let after = match ctx.param("after") {
        None => None,
        Some(a) => {
            let (at, id) = a.split_once('_').ok_or("after: not a page marker")?;
            Some((at.parse().map_err(|_| "after: not a page marker")?, id.to_string()))
        }
    };
    Ok(PaymentFilter {
        merchant_id: parsed("merchant"),
        id: parsed("q").map(|q| q.trim().to_string()),
        status: ctx.param("status").map(str::parse::<PaymentStatus>).transpose()?,
        provider: parsed("provider"),
        channel: ctx.param("channel").map(str::parse::<Channel>).transpose()?,
        scene: ctx.param("scene").map(str::parse::<Scene>).transpose()?,
        from: time("from")?,
        to: time("to")?,
        after,
    })
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Page, Problem> {
    let filter = filter(ctx).map_err(Problem::BadInput)?;
    let mut payments = ctx.gateway.store.list_payments(&filter, PAGE_SIZE + 1).await?;
    let more = payments.len() > PAGE_SIZE;
    payments.truncate(PAGE_SIZE);
    let live = ctx.gateway.config.current();
    let merchants = plain(live.config.merchants.keys());
    let accounts = plain(live.config.providers.keys());
    let statuses: Vec<_> = PaymentStatus::ALL.iter().map(|s| (s.to_string(), ctx.t(s.as_str()).to_string())).collect();
    // The next page keeps every filter and moves the marker.
    let next = payments.last().filter(|_| more).map(|last| {
        let mut q: Vec<(String, String)> =
            ctx.query.iter().filter(|(k, _)| k.as_str() != "after").map(|(k, v)| (k.clone(), v.clone())).collect();
        q.sort();
        q.push(("after".into(), format!("{}_{}", last.created_at, last.payment_id)));
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.extend_pairs(q);
        format!("/console/payments?{}", s.finish())
    });
    let content = html! {
        form.filters method="get" action="/console/payments" {
            (select(ctx, "merchant", ctx.t("merchant"), &merchants, ctx.param("merchant")))
            label { (ctx.t("id_or_out_trade_no")) input type="search" name="q" value=[ctx.param("q")]; }
            (select(ctx, "status", ctx.t("status"), &statuses, ctx.param("status")))
            (select(ctx, "provider", ctx.t("account"), &accounts, ctx.param("provider")))
            (select(ctx, "channel", ctx.t("channel"), &plain(Channel::ALL), ctx.param("channel")))
            (select(ctx, "scene", ctx.t("scene"), &plain(Scene::ALL), ctx.param("scene")))
            label { (ctx.t("from")) input type="datetime-local" name="from" value=[ctx.param("from")]; }
            label { (ctx.t("to")) input type="datetime-local" name="to" value=[ctx.param("to")]; }
            button type="submit" { (ctx.t("filter")) }
            a href="/console/payments" { (ctx.t("clear")) }
        }
        p.note { (ctx.t("times_in")) }
        (table(ctx, &payments))
        p {
            @if filter.after.is_some() { a href="/console/payments" { (ctx.t("first_page")) } " " }
            @if let Some(next) = next { a #next-page href=(next) { (ctx.t("next_page")) " →" } }
        }
    };
    Ok(Page::Html(200, layout(ctx, "payments", ctx.t("payments"), content)))
}

fn table(ctx: &Ctx, payments: &[crate::model::Payment]) -> Markup {
    html! {
        table #payments {
            thead { tr {
                th { (ctx.t("created")) } th { "payment_id" } th { (ctx.t("merchant")) } th { (ctx.t("out_trade_no")) }
                th.num { (ctx.t("amount")) } th { (ctx.t("status")) } th { (ctx.t("account")) }
                th { (ctx.t("channel")) " / " (ctx.t("scene")) } th { (ctx.t("door")) }
            } }
            tbody {
                @for p in payments {
                    tr data-payment=(p.payment_id) {
                        td.mono { (beijing(p.created_at)) }
                        td { a.mono href=(format!("/console/payments/{}", p.payment_id)) { (p.payment_id) } }
                        td { (p.merchant_id) }
                        td.mono { (p.out_trade_no) }
                        td.num { (yuan(p.amount)) }
                        td { (badge(ctx, p.status.as_str())) }
                        td { code { (p.provider) } }
                        td { (p.channel) " / " (p.scene) }
                        td { (door_name(ctx, p.door.as_ref())) }
                    }
                }
                @if payments.is_empty() { tr { td colspan="9" { (ctx.t("no_payments")) } } }
            }
        }
    }
}

pub async fn one(ctx: &Ctx<'_>, id: &str) -> Result<Page, Problem> {
    let store = &ctx.gateway.store;
    let Some(p) = store.payment_by_id(id).await? else {
        return Ok(Page::Html(
            404,
            layout(ctx, "payments", ctx.t("payment"), html! { p.error { (ctx.t("no_such_payment")) } }),
        ));
    };
    let timeline = store.timeline(id).await?;
    let events = store.events_for_payment(id).await?;
    let refunds = store.refunds_for_payment(id).await?;
    let anomalies = store.anomalies(None, Some(id), 0, i64::MAX, 100).await?;
    let back: String = form_urlencoded::byte_serialize(ctx.here.as_bytes()).collect();
    let content = html! {
        @if let Some(n) = ctx.param("replayed") {
            p.flash role="status" #flash { strong { (n) } " " (ctx.t("replayed")) }
        }
        dl.facts #payment {
            dt { "payment_id" } dd.mono { (p.payment_id) }
            dt { (ctx.t("status")) } dd { (badge(ctx, p.status.as_str())) }
            dt { (ctx.t("merchant")) } dd { (p.merchant_id) }
            dt { (ctx.t("out_trade_no")) } dd.mono { (p.out_trade_no) }
            dt { (ctx.t("amount")) } dd { (yuan(p.amount)) " (" (p.amount) " fen) · " (p.subject) }
            @if let Some(paid) = p.paid_amount { dt { (ctx.t("paid")) } dd { (yuan(paid)) @if let Some(at) = p.paid_at { " · " (beijing(at)) } } }
            @if p.refunded_amount > 0 { dt { (ctx.t("refunded")) } dd { (yuan(p.refunded_amount)) } }
            dt { (ctx.t("account")) } dd { code { (p.provider) } }
            dt { (ctx.t("provider_trade_no")) } dd.mono { (p.provider_trade_no.as_deref().unwrap_or("—")) }
            dt { (ctx.t("channel")) " / " (ctx.t("scene")) } dd { (p.channel) " / " (p.scene) }
            dt { (ctx.t("door")) } dd #door { (door_name(ctx, p.door.as_ref())) }
            dt { (ctx.t("created")) } dd { (beijing(p.created_at)) }
            @if p.expires_at < i64::MAX { dt { (ctx.t("expires")) } dd { (beijing(p.expires_at)) } }
            dt { "trace_id" } dd.mono { (crate::telemetry::trace_id(id)) }
        }
        h2 { (ctx.t("timeline")) }
        table #timeline {
            thead { tr { th { (ctx.t("time")) } th { (ctx.t("what")) } th { (ctx.t("detail")) } } }
            tbody {
                tr data-kind="created" { td.mono { (beijing(p.created_at)) } td { (ctx.t("ev_created")) } td { (yuan(p.amount)) " → " code { (p.provider) } } }
                @for entry in &timeline {
                    tr data-kind=(entry.kind) {
                        td.mono { (beijing(entry.at_ms / 1000)) "." (format!("{:03}", entry.at_ms.rem_euclid(1000))) }
                        td { (timeline_kind(ctx, &entry.kind)) }
                        td { (timeline_detail(&entry.kind, &entry.detail)) }
                    }
                }
            }
        }
        h2 { (ctx.t("notifications")) }
        table #events {
            thead { tr { th { "id" } th { (ctx.t("kind")) } th { (ctx.t("status")) } th.num { (ctx.t("attempts")) } th {} } }
            tbody {
                @for (event, state) in &events {
                    tr data-event=(event.id) {
                        td.mono { (event.id) } td { (event.kind) } td { (badge(ctx, state.as_str())) } td.num { (event.attempts) }
                        td { (replay_button(ctx, &event.id, &back)) }
                    }
                }
                @if events.is_empty() { tr { td colspan="5" { (ctx.t("no_events")) } } }
            }
        }
        h2 { (ctx.t("refunds")) }
        @if refunds.is_empty() { p.note { (ctx.t("no_refunds")) } } @else {
            table #refunds {
                thead { tr { th { "refund_id" } th { "out_refund_no" } th.num { (ctx.t("amount")) } th { (ctx.t("status")) } th { (ctx.t("created")) } } }
                tbody { @for r in &refunds { tr {
                    td.mono { (r.refund_id) } td.mono { (r.out_refund_no) } td.num { (yuan(r.amount)) }
                    td { (badge(ctx, r.status.as_str())) } td.mono { (beijing(r.created_at)) }
                } } }
            }
        }
        @if !anomalies.is_empty() {
            h2 { (ctx.t("anomalies")) }
            table #anomalies {
                tbody { @for a in &anomalies { tr { td { (a.kind) } td { code { (a.provider) } } td.mono { (a.detail.to_string()) } td { (a.created_at) } } } }
            }
        }
    };
    Ok(Page::Html(200, layout(ctx, "payments", &format!("{} {}", ctx.t("payment"), p.out_trade_no), content)))
}

/// The form that sends one notification again, coming back to `back`.
pub fn replay_button(ctx: &Ctx, event_id: &str, back: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("/console/notifications/{event_id}/replay?back={back}")) {
            input type="hidden" name="csrf" value=(ctx.csrf);
            button.secondary type="submit" { (ctx.t("replay")) }
        }
    }
}

fn timeline_kind(ctx: &Ctx, kind: &str) -> String {
    match kind {
        "upstream" => ctx.t("ev_upstream").to_string(),
        "callback" => ctx.t("ev_callback").to_string(),
        "notification" => ctx.t("ev_notification").to_string(),
        "checkout" => ctx.t("ev_checkout").to_string(),
        other => other.to_string(),
    }
}

/// A timeline entry's detail in a line: a provider call's operation, answer and latency; a
/// callback's verdict; a notification's outcome.
fn timeline_detail(kind: &str, d: &serde_json::Value) -> Markup {
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    match kind {
        "upstream" => {
            let outcome = match (d["outcome"].get("status"), d["outcome"].get("error")) {
                (Some(status), _) => format!("HTTP {status}"),
                (_, Some(e)) => e.as_str().unwrap_or("").to_string(),
                _ => String::new(),
            };
            html! { code { (s("provider")) } " " span.mono { (s("operation")) } " → " strong { (outcome) } " · " (d["latency_ms"]) " ms" }
        }
        "callback" => {
            let verdict = s("verdict");
            html! {
                code { (s("provider")) } " · " strong data-verdict=(verdict) { (verdict) }
                @if let Some(status) = d.get("status").and_then(|v| v.as_str()) { " · " (status) }
                @if let Some(e) = d.get("error").and_then(|v| v.as_str()) { " · " span.error { (e) } }
            }
        }
        "notification" => {
            let outcome = s("outcome");
            html! {
                span.mono { (s("event_id")) } " " (s("kind")) " → " strong data-outcome=(outcome) { (outcome) }
                @if let Some(code) = d.get("answer").and_then(|v| v.as_u64()) { " · HTTP " (code) }
                @if let Some(e) = d.get("error").and_then(|v| v.as_str()) { " · " span.error { (e) } }
            }
        }
        _ => html! { span.mono { (d.to_string()) } },
    }
}
