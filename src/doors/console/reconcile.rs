//! Reconciliation: ask the provider about every payment of an account and day and show where
//! it and payglot differ. A GET only looks; settling is the explicit button (a POST).

use super::pages::{badge, plain, select, Problem};
use super::{beijing, layout, yuan, Ctx, Page};
use maud::html;

/// The form, and with an account and a day, the report (`settle`: also settle what can be).
pub async fn page(ctx: &Ctx<'_>, settle: bool) -> Result<Page, Problem> {
    let gateway = ctx.gateway;
    let live = gateway.config.current();
    let accounts = plain(live.config.providers.keys());
    // Yesterday in Beijing: the day a reconciliation usually looks at.
    let yesterday = beijing(gateway.clock.now() - 86_400)[..10].to_string();
    let (provider, date) = (ctx.param("provider"), ctx.param("date"));
    let report = match (provider, date) {
        (Some(provider), Some(date)) => {
            let report =
                crate::workers::reconcile::reconcile(gateway, &live, provider, date, settle, gateway.clock.now())
                    .await
                    .map_err(Problem::BadInput)?;
            if settle {
                let settled = report.differences.iter().filter(|d| d.settled).count();
                tracing::info!(operator = %ctx.operator, provider = %provider, date = %date, settled, "console: reconciliation settled");
            }
            Some(report)
        }
        _ => None,
    };
    let content = html! {
        p.note { (ctx.t("reconcile_hint")) }
        form.filters method="get" action="/console/reconcile" {
            (select(ctx, "provider", ctx.t("account"), &accounts, provider))
            label { (ctx.t("date")) input type="date" name="date" value=(date.unwrap_or(&yesterday)) required; }
            button type="submit" { (ctx.t("run")) }
        }
        @if let Some(r) = &report {
            @if settle { p.flash role="status" { (ctx.t("settled_note")) } }
            p #summary { code { (r.provider) } " · " (r.date) " · " strong { (r.payments) } " " (ctx.t("payments")) ", "
                strong { (r.agreed) } " " (ctx.t("agreed")) ", " strong { (r.differences.len()) } " " (ctx.t("differences")) }
            h2 { (ctx.t("differences")) }
            @if r.differences.is_empty() { p { (ctx.t("no_differences")) } } @else {
                table #differences {
                    thead { tr { th { "payment_id" } th { (ctx.t("out_trade_no")) } th { (ctx.t("kind")) }
                        th { (ctx.t("payglot_says")) } th { (ctx.t("provider_says")) } th.num { (ctx.t("amount")) } th {} } }
                    tbody { @for d in &r.differences { tr data-kind=(d.kind) {
                        td { a.mono href=(format!("/console/payments/{}", d.payment_id)) { (d.payment_id) } }
                        td.mono { (d.out_trade_no) }
                        td { strong { (d.kind) } }
                        td { @if let Some(s) = d.payglot_status { (badge(ctx, s.as_str())) } @else { "—" } }
                        td { (badge(ctx, d.provider_status.as_str())) }
                        td.num { (yuan(d.payglot_amount))
                            @if let Some(a) = d.provider_amount { " / " (yuan(a)) }
                            @if let Some(a) = d.provider_paid { " / " (ctx.t("paid")) " " (yuan(a)) } }
                        td { @if d.settled { "✓" } }
                    } } }
                }
                @if !settle && r.differences.iter().any(|d| d.kind == "missed_payment") {
                    form method="post" action=(format!("/console/reconcile?provider={}&date={}",
                        form_urlencoded::byte_serialize(r.provider.as_bytes()).collect::<String>(),
                        form_urlencoded::byte_serialize(r.date.as_bytes()).collect::<String>())) {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        input type="hidden" name="settle" value="true";
                        button type="submit" #settle { (ctx.t("settle")) }
                    }
                }
            }
            @if !r.not_answered.is_empty() {
                h2 { (ctx.t("not_answered")) }
                p.mono { @for id in &r.not_answered { a href=(format!("/console/payments/{id}")) { (id) } " " } }
            }
            @if !r.anomalies.is_empty() {
                h2 { (ctx.t("anomalies")) }
                table { tbody { @for a in &r.anomalies { tr { td { (a.kind) } td { a.mono href=(format!("/console/payments/{}", a.payment_id)) { (a.payment_id) } } td.mono { (a.detail.to_string()) } } } } }
            }
        }
    };
    Ok(Page::Html(200, layout(ctx, "reconcile", ctx.t("reconcile"), content)))
}
