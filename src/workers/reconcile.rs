//! Reconciliation: compares payglot's payments of one provider account and day (Beijing time,
//! the providers' clock) with what the provider says about each of them, by verified
//! per-payment queries, and lists the differences: paid at the provider but pending in
//! payglot (a missed callback), statuses that disagree, amounts that differ. It fixes nothing
//! silently: only with `settle`, a difference that proves a missed payment is settled, through
//! the same path as a callback (one `payment.succeeded` event). `payglot reconcile` and
//! `/admin/reconcile` run it.
//!
//! A payment where less (or more) than due was paid is an `amount_mismatch`; the report also
//! lists the account's anomalies recorded that day (amount mismatches, callbacks from an
//! account that does not own the payment, payments paid after they were final).
//!
//! Where the provider offers a listing of its orders (mct `order`), it is read too, so orders
//! the provider has that payglot does not know (`unknown_to_payglot`: created by another system
//! on the same account) are listed as well.

use crate::app::Gateway;
use crate::config::LiveConfig;
use crate::core::settle::{apply_report, ReportSource};
use crate::dialects::ProviderResponse;
use crate::model::{Payment, PaymentStatus};
use serde::Serialize;

/// One payment where payglot and the provider disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub payment_id: String,
    pub out_trade_no: String,
    /// `missed_payment`, `status_differs`, `amount_differs` (the order amount),
    /// `amount_mismatch` (what was paid is not what was due) or `unknown_to_payglot`.
    pub kind: &'static str,
    /// None for an order payglot does not know.
    pub payglot_status: Option<PaymentStatus>,
    pub provider_status: PaymentStatus,
    pub payglot_amount: i64,
    pub provider_amount: Option<i64>,
    /// What the provider says was paid, where it says.
    pub provider_paid: Option<i64>,
    /// Whether `settle` settled it (missed payments, and mismatches of pending payments).
    pub settled: bool,
}

/// What a reconciliation found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub provider: String,
    pub date: String,
    pub payments: usize,
    pub agreed: usize,
    pub differences: Vec<Difference>,
    /// Payments the provider could not be asked about (unreachable, rate limit, no answer).
    pub not_answered: Vec<String>,
    /// Anomalies recorded for this account that day.
    pub anomalies: Vec<crate::store::Anomaly>,
}

/// Unix seconds of 00:00 Beijing time on `date` (YYYY-MM-DD).
pub fn beijing_day_start(date: &str) -> Result<i64, String> {
    crate::dialects::parse_beijing_time(&format!("{date} 00:00:00"))
        .ok_or_else(|| format!("date {date:?} is not YYYY-MM-DD"))
}

pub async fn reconcile(
    gateway: &Gateway,
    live: &LiveConfig,
    provider: &str,
    date: &str,
    settle: bool,
    now: i64,
) -> Result<Report, String> {
    let from = beijing_day_start(date)?;
    let account = crate::core::ask::account(live, provider).map_err(|e| e.message)?;
    let payments =
        gateway.store.payments_created_between(provider, from, from + 86_400).await.map_err(|e| e.to_string())?;
    let mut report = Report {
        provider: provider.into(),
        date: date.into(),
        payments: payments.len(),
        agreed: 0,
        differences: Vec::new(),
        not_answered: Vec::new(),
        anomalies: gateway
            .store
            .anomalies(Some(provider), None, from, from + 86_400, 1000)
            .await
            .map_err(|e| e.to_string())?,
    };
    for payment in payments {
        if let Some(interval) = account.dialect.query_interval() {
            if gateway.limits.try_acquire(&format!("query/{provider}/{}", payment.payment_id), interval).is_err() {
                report.not_answered.push(payment.payment_id.clone());
                continue;
            }
        }
        let Ok(call) = account.dialect.query_payment(&payment, now) else {
            report.not_answered.push(payment.payment_id.clone());
            continue;
        };
        let answer = match crate::core::ask::send_about(gateway, &account, &call, &payment.payment_id).await {
            Ok(a) => a,
            Err(_) => {
                report.not_answered.push(payment.payment_id.clone());
                continue;
            }
        };
        let Ok(said) =
            account.dialect.read_query(&payment, ProviderResponse { status: answer.status, body: &answer.body })
        else {
            report.not_answered.push(payment.payment_id.clone());
            continue;
        };
        match compare(&payment, &said) {
            None => report.agreed += 1,
            Some(mut d) => {
                let settles = d.kind == "missed_payment"
                    || (d.kind == "amount_mismatch" && payment.status == PaymentStatus::Pending);
                if settle && settles {
                    d.settled = apply_report(gateway, &payment, &said, ReportSource::Query, now).await.is_ok();
                }
                report.differences.push(d);
            }
        }
    }
    // The provider's own list, where it offers one: orders payglot does not know.
    let known: std::collections::HashSet<String> = gateway
        .store
        .payments_created_between(provider, from - 86_400, from + 2 * 86_400)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.payment_id)
        .collect();
    let mut page = 1;
    while let Ok(call) = account.dialect.list_orders(date, page, now) {
        let Ok(answer) = crate::core::ask::send(gateway, &account, &call).await else { break };
        let Ok((orders, more)) =
            account.dialect.read_order_list(ProviderResponse { status: answer.status, body: &answer.body })
        else {
            break;
        };
        for (order_no, status, amount) in orders {
            if !known.contains(&order_no) {
                report.differences.push(Difference {
                    payment_id: String::new(),
                    out_trade_no: order_no,
                    kind: "unknown_to_payglot",
                    payglot_status: None,
                    provider_status: status,
                    payglot_amount: 0,
                    provider_amount: amount,
                    provider_paid: None,
                    settled: false,
                });
            }
        }
        if !more || page >= 100 {
            break;
        }
        page += 1;
    }
    Ok(report)
}

/// The difference between payglot's payment and the provider's word, if any.
pub fn compare(payment: &Payment, said: &crate::dialects::PaymentReport) -> Option<Difference> {
    let paid = said.paid_amount.or(said.amount);
    let kind = if said.amount.is_some_and(|a| a != payment.amount) {
        "amount_differs"
    } else if payment.underpayment().is_some()
        || (said.status == PaymentStatus::Succeeded && paid.is_some_and(|p| p != payment.amount_due()))
    {
        "amount_mismatch"
    } else if said.status == payment.status {
        return None;
    } else if said.status == PaymentStatus::Succeeded && payment.status == PaymentStatus::Pending {
        "missed_payment"
    } else {
        "status_differs"
    };
    Some(Difference {
        payment_id: payment.payment_id.clone(),
        out_trade_no: payment.out_trade_no.clone(),
        kind,
        payglot_status: Some(payment.status),
        provider_status: said.status,
        payglot_amount: payment.amount,
        provider_amount: said.amount,
        provider_paid: if said.status == PaymentStatus::Succeeded { paid } else { None },
        settled: false,
    })
}

/// The report as text for the CLI.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} on {} (Beijing time): {} payment(s), {} agree, {} differ, {} not answered",
        report.provider,
        report.date,
        report.payments,
        report.agreed,
        report.differences.len(),
        report.not_answered.len()
    );
    for d in &report.differences {
        let _ = writeln!(
            out,
            "  {:<16} {} ({}): payglot {} {} fen, provider {} {} fen{}",
            d.kind,
            d.out_trade_no,
            d.payment_id,
            d.payglot_status.map(|s| s.to_string()).unwrap_or_else(|| "(unknown)".into()),
            d.payglot_amount,
            d.provider_status,
            d.provider_amount.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
            match (d.kind, d.provider_paid) {
                ("amount_mismatch", Some(p)) => format!(", {p} fen paid"),
                _ => String::new(),
            } + if d.settled { "  -> settled" } else { "" }
        );
    }
    for a in &report.anomalies {
        let _ = writeln!(out, "  anomaly {:<26} {} at {}: {}", a.kind, a.payment_id, a.created_at, a.detail);
    }
    for id in &report.not_answered {
        let _ = writeln!(out, "  not answered: {id}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_classified() {
        let said = |status, amount, paid_amount| crate::dialects::PaymentReport {
            payment_id: "P".into(),
            provider_trade_no: None,
            status,
            amount,
            paid_amount,
            paid_at: None,
        };
        let mut p = crate::test_support::payment();
        assert!(compare(&p, &said(PaymentStatus::Pending, Some(100), None)).is_none());
        assert_eq!(compare(&p, &said(PaymentStatus::Succeeded, Some(100), None)).unwrap().kind, "missed_payment");
        assert_eq!(compare(&p, &said(PaymentStatus::Succeeded, Some(99), None)).unwrap().kind, "amount_differs");
        let short = compare(&p, &said(PaymentStatus::Succeeded, Some(100), Some(1))).unwrap();
        assert_eq!((short.kind, short.provider_paid), ("amount_mismatch", Some(1)));
        p.status = PaymentStatus::Failed;
        p.paid_amount = Some(1);
        assert_eq!(compare(&p, &said(PaymentStatus::Succeeded, Some(100), Some(1))).unwrap().kind, "amount_mismatch");
        p.paid_amount = None;
        p.status = PaymentStatus::Closed;
        assert_eq!(compare(&p, &said(PaymentStatus::Succeeded, None, None)).unwrap().kind, "status_differs");
        assert_eq!(beijing_day_start("2026-11-23"), Ok(1_795_363_200));
        assert!(beijing_day_start("23/11/2026").is_err());
    }
}
