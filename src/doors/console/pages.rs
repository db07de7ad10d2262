//! Which console page a path is, and the pieces several pages draw alike.

use super::{layout, notifications, overview, payments, providers, reconcile, Ctx, Page};
use maud::{html, Markup};
use std::collections::HashMap;

/// A GET of a console page.
pub async fn get(ctx: &Ctx<'_>, path: &str) -> Page {
    let result = match path {
        "/console" => overview::page(ctx).await,
        "/console/payments" => payments::list(ctx).await,
        "/console/notifications" => notifications::list(ctx).await,
        "/console/providers" => Ok(providers::page(ctx)),
        "/console/reconcile" => reconcile::page(ctx, false).await,
        _ => match path.strip_prefix("/console/payments/") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
                payments::one(ctx, &id).await
            }
            _ => Err(Problem::NotFound),
        },
    };
    result.unwrap_or_else(|problem| problem.page(ctx))
}

/// A POST of a console form (its CSRF token already checked).
pub async fn post(ctx: &Ctx<'_>, path: &str, form: &HashMap<String, String>) -> Page {
    let result = match path {
        "/console/notifications/replay" => notifications::replay_matching(ctx, form).await,
        "/console/reconcile" => reconcile::page(ctx, form.get("settle").is_some_and(|s| s == "true")).await,
        _ => match path.strip_prefix("/console/notifications/").and_then(|rest| rest.strip_suffix("/replay")) {
            Some(id) if !id.is_empty() && !id.contains('/') => notifications::replay_one(ctx, id, form).await,
            _ => Err(Problem::NotFound),
        },
    };
    result.unwrap_or_else(|problem| problem.page(ctx))
}

/// Why a page could not be shown.
pub enum Problem {
    NotFound,
    /// The operator's input, with what was wrong.
    BadInput(String),
    Store(String),
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        Problem::Store(e.to_string())
    }
}

impl Problem {
    fn page(self, ctx: &Ctx) -> Page {
        let (status, title, message) = match self {
            Problem::NotFound => (404, ctx.t("not_found"), ctx.t("not_found").to_string()),
            Problem::BadInput(m) => (400, ctx.t("bad_request"), m),
            Problem::Store(e) => {
                tracing::warn!(error = %e, "console: the store did not answer");
                (503, ctx.t("store_unavailable"), ctx.t("store_unavailable").to_string())
            }
        };
        Page::Html(status, layout(ctx, "", title, html! { p.error role="alert" { (message) } }))
    }
}

/// A status as a coloured word.
pub fn badge(ctx: &Ctx, status: &str) -> Markup {
    let word = match status {
        "pending" => ctx.t("pending"),
        "succeeded" => ctx.t("succeeded"),
        "failed" => ctx.t("failed"),
        "closed" => ctx.t("closed"),
        "delivered" => ctx.t("delivered"),
        other => return html! { span.badge { (other) } },
    };
    html! { span class=(format!("badge s-{status}")) data-status=(status) { (word) } }
}

/// A `<select>` of `options` (value, shown), with "any" first and `selected` chosen.
pub fn select(ctx: &Ctx, name: &str, label: &str, options: &[(String, String)], selected: Option<&str>) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                option value="" { (ctx.t("any")) }
                @for (value, shown) in options {
                    option value=(value) selected[selected == Some(value.as_str())] { (shown) }
                }
            }
        }
    }
}

/// Values shown as themselves.
pub fn plain(values: impl IntoIterator<Item = impl ToString>) -> Vec<(String, String)> {
    values.into_iter().map(|v| (v.to_string(), v.to_string())).collect()
}

/// Where a payment came in: the merchant API, or a front door with its dialect and account.
pub fn door_name(ctx: &Ctx, door: Option<&crate::model::Door>) -> String {
    match door {
        None => ctx.t("merchant_api").to_string(),
        Some(d) => format!("/compat/{} ({})", d.dialect, d.account),
    }
}
