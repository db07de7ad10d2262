//! The overview: payments of the last hour and day by provider account and status, the
//! outbox, circuits, the last reload and the requery backlog, and a chart of the day by hour.

use super::chart::{stacked_bars, Stack};
use super::pages::{badge, Problem};
use super::{beijing, layout, Ctx, Page};
use crate::model::PaymentStatus;
use crate::store::PaymentCount;
use maud::{html, Markup};
use std::collections::{BTreeMap, HashMap};

const COLOURS: [(PaymentStatus, &str); 4] = [
    (PaymentStatus::Succeeded, "#1d7f46"),
    (PaymentStatus::Pending, "#e0a100"),
    (PaymentStatus::Failed, "#b3261e"),
    (PaymentStatus::Closed, "#9aa3b2"),
];

pub async fn page(ctx: &Ctx<'_>) -> Result<Page, Problem> {
    let gateway = ctx.gateway;
    let now = gateway.clock.now();
    let day = gateway.store.payment_counts(now - 86_400).await?;
    let hour = gateway.store.payment_counts(now - 3_600).await?;
    let outbox = gateway.store.outbox_depth().await?;
    let backlog = gateway.store.requery_backlog(now).await?;
    let circuits = gateway.upstream.circuits();
    let open: Vec<_> = circuits.iter().filter(|(_, state, _)| *state != "closed").collect();
    let live = gateway.config.current();
    let reload = gateway.config.last_attempt();
    let reload_error = gateway.config.last_error();

    let content = html! {
        div.cards {
            div.card #outbox {
                h2 { (ctx.t("outbox")) }
                div.big { (outbox.pending) } span.note { (ctx.t("waiting")) }
                p { (ctx.t("oldest_waiting")) ": "
                    @match outbox.oldest_created_at {
                        Some(at) => { strong { ((now - at).max(0)) " " (ctx.t("seconds_ago")) } " (" (beijing(at)) ")" }
                        None => { (ctx.t("none")) }
                    }
                }
            }
            div.card #circuits {
                h2 { (ctx.t("circuits_open")) }
                div.big { (open.len()) }
                @for (account, state, failures) in &open {
                    p { code { (account) } " " span class=(format!("badge s-{state}")) { (state) } " (" (failures) ")" }
                }
            }
            div.card #reload {
                h2 { (ctx.t("last_reload")) }
                @match &reload {
                    Some(r) => {
                        p { (beijing(r.at)) " · " (r.trigger) " · "
                            @if r.accepted { span.badge.s-succeeded { (ctx.t("reload_accepted")) } }
                            @else { span.badge.s-failed { (ctx.t("reload_refused")) } }
                        }
                    }
                    None => { p { (ctx.t("no_reload")) " " (beijing(live.loaded_at)) } }
                }
                @if let Some(e) = &reload_error { pre.error { (e) } }
            }
            div.card #requery {
                h2 { (ctx.t("requery_backlog")) }
                div.big { (backlog.due) } span.note { (ctx.t("due_now")) }
                p { (backlog.scheduled) " " (ctx.t("scheduled")) }
            }
        }
        h2 { (ctx.t("per_hour")) }
        (hourly_chart(ctx, &day, now))
        h2 { (ctx.t("last_hour")) }
        (by_account(ctx, &hour, "hour"))
        h2 { (ctx.t("last_day")) }
        (by_account(ctx, &day, "day"))
    };
    Ok(Page::Html(200, layout(ctx, "overview", ctx.t("overview"), content)))
}

/// Counts per account and status, with each account's share of payments paid.
fn by_account(ctx: &Ctx, counts: &[PaymentCount], id: &str) -> Markup {
    let mut accounts: BTreeMap<&str, HashMap<PaymentStatus, i64>> = BTreeMap::new();
    for c in counts {
        *accounts.entry(&c.provider).or_default().entry(c.status).or_default() += c.count;
    }
    html! {
        table id=(format!("by-account-{id}")) {
            thead { tr {
                th { (ctx.t("account")) }
                @for (status, _) in COLOURS { th.num { (badge(ctx, status.as_str())) } }
                th.num { (ctx.t("total")) } th.num { (ctx.t("success_rate")) }
            } }
            tbody {
                @for (account, by_status) in &accounts {
                    @let total: i64 = by_status.values().sum();
                    @let paid = by_status.get(&PaymentStatus::Succeeded).copied().unwrap_or(0);
                    tr data-account=(account) {
                        td { code { (account) } }
                        @for (status, _) in COLOURS { td.num { (by_status.get(&status).copied().unwrap_or(0)) } }
                        td.num { (total) }
                        td.num { (format!("{:.1} %", 100.0 * paid as f64 / total.max(1) as f64)) }
                    }
                }
                @if accounts.is_empty() { tr { td colspan="7" { (ctx.t("no_payments")) } } }
            }
        }
    }
}

/// The last 24 hours, one stacked bar per hour (Beijing time).
fn hourly_chart(ctx: &Ctx, counts: &[PaymentCount], now: i64) -> Markup {
    let this_hour = now - now.rem_euclid(3600);
    let bars: Vec<(String, String, Stack)> = (0..24)
        .rev()
        .map(|back| {
            let hour = this_hour - back * 3600;
            let of = |status: PaymentStatus| {
                counts.iter().filter(|c| c.hour == hour && c.status == status).map(|c| c.count).sum::<i64>()
            };
            let stack: Stack = COLOURS.iter().map(|(status, colour)| (of(*status), *colour)).collect();
            let label = beijing(hour)[11..13].to_string();
            let title = format!(
                "{} — {}",
                &beijing(hour)[..16],
                COLOURS
                    .iter()
                    .map(|(status, _)| format!("{} {}", ctx.t(status.as_str()), of(*status)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            (label, title, stack)
        })
        .collect();
    html! {
        (stacked_bars(ctx.t("per_hour"), &bars))
        p.legend {
            @for (status, colour) in COLOURS { span { i style=(format!("background:{colour}")) {} (ctx.t(status.as_str())) } }
        }
    }
}
