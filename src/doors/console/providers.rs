//! Providers and routes: each account with its dialect, base URL (never its credentials),
//! retired flag, circuit and recent calls; each merchant's routes as routes.yaml means them.

use super::{layout, yuan, Ctx, Page};
use crate::config::{Route, RouteTarget};
use maud::{html, Markup};

pub fn page(ctx: &Ctx) -> Page {
    let live = ctx.gateway.config.current();
    let circuits = ctx.gateway.upstream.circuits();
    let calls = ctx.gateway.upstream.recent_calls();
    let content = html! {
        table #accounts {
            thead { tr {
                th { (ctx.t("account")) } th { (ctx.t("dialect")) } th { (ctx.t("base_url")) } th { (ctx.t("retired")) }
                th { (ctx.t("circuit")) } th.num { (ctx.t("recent_calls")) } th.num { (ctx.t("error_rate")) } th.num { (ctx.t("latency")) }
            } }
            tbody {
                @for (name, account) in &live.config.providers {
                    @let circuit = circuits.iter().find(|c| &c.0 == name);
                    @let stats = calls.iter().find(|c| &c.0 == name).map(|c| c.1).filter(|s| s.calls > 0);
                    tr data-account=(name) {
                        td { code { (name) } }
                        td { (account.dialect) }
                        td.mono { (crate::secret::redact_url_passwords(&account.base_url)) }
                        td { @if account.retired { strong { (ctx.t("yes")) } } @else { (ctx.t("no")) } }
                        td { @match circuit {
                            Some((_, state, failures)) => { span class=(format!("badge s-{}", if *state == "closed" { "closed-circuit" } else { state })) { (state) } @if *failures > 0 { " (" (failures) ")" } }
                            None => { span.note { (ctx.t("not_called")) } }
                        } }
                        @match stats {
                            Some(s) => {
                                td.num { (s.calls) }
                                td.num { (format!("{:.1} %", 100.0 * s.failures as f64 / s.calls as f64)) }
                                td.num { (s.p50_ms) " / " (s.p95_ms) " ms" }
                            }
                            None => { td.num { "0" } td.num { "—" } td.num { "—" } }
                        }
                    }
                }
            }
        }
        p.note { (ctx.t("first_rule_wins")) }
        @for (id, merchant) in &live.config.merchants {
            h2 id=(format!("merchant-{id}")) { (ctx.t("merchant")) " " code { (id) } }
            @if let Some(url) = &merchant.notify_url { p { (ctx.t("notify_url")) ": " span.mono { (crate::secret::redact_url_passwords(url)) } } }
            table.routes data-merchant=(id) {
                thead { tr { th.num { (ctx.t("rule")) } th { (ctx.t("when")) } th { (ctx.t("goes_to")) } th { (ctx.t("fallback")) } } }
                tbody {
                    @for (i, route) in merchant.routes.iter().enumerate() {
                        tr { td.num { (i + 1) } td { (conditions(ctx, route)) } td { (target(&route.target)) }
                             td { @for f in &route.fallback { code { (f) } " " } } }
                    }
                }
            }
            @if !merchant.compat.is_empty() {
                p { (ctx.t("doors")) ": "
                    @for (dialect, door) in &merchant.compat { code { "/compat/" (dialect) } " (" (door.account_id) ") " }
                }
            }
        }
    };
    Page::Html(200, layout(ctx, "providers", ctx.t("providers"), content))
}

/// A rule's conditions in words; the first rule that holds takes the payment.
fn conditions(ctx: &Ctx, route: &Route) -> Markup {
    let m = &route.matches;
    if m.is_catch_all() {
        return html! { em { (ctx.t("everything_else")) } };
    }
    let list = |items: Vec<String>| items.join(", ");
    html! {
        @if !m.channels.is_empty() { span { (ctx.t("channel")) ": " (list(m.channels.iter().map(|c| c.to_string()).collect())) } br; }
        @if !m.scenes.is_empty() { span { (ctx.t("scene")) ": " (list(m.scenes.iter().map(|c| c.to_string()).collect())) } br; }
        @if let Some(c) = &m.currency { span { (c) } br; }
        @if m.min_amount.is_some() || m.max_amount.is_some() {
            span { (ctx.t("amount")) ": "
                (m.min_amount.map(yuan).unwrap_or_default()) " – " (m.max_amount.map(yuan).unwrap_or_default()) }
        }
    }
}

fn target(target: &RouteTarget) -> Markup {
    match target {
        RouteTarget::One(account) => html! { code { (account) } },
        RouteTarget::Split(parts) => html! {
            @for (i, (account, weight)) in parts.iter().enumerate() {
                @if i > 0 { " · " }
                code { (account) } " " (weight) " %"
            }
        },
    }
}
