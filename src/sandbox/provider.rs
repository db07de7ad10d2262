//! One simulated provider for every dialect: the dialect's provider side reads each request
//! (checking signatures, envelopes and windows as strictly as the document says) into a
//! `Call`, which is carried out here on the ledger, and the side shapes the answer. What
//! differs between providers is asked of the side: its order numbers' look, whether it asks
//! the payer a few fen more to tell payments apart (xiaojitong), whether an order is paid as
//! it is created (mct barcode), which orders it can cancel, its payouts' notify and its
//! simulated user data. The providers' own rate limits are their merchant side's
//! (`query_interval`, `balance_interval`), enforced as the documents warn.

use super::ledger::{Duplicate, Order, Transfer};
use super::Sandbox;
use crate::dialects::provider_side::{
    Answer, Call, CallKind, Fail, Failure, Keyed, Lookup, OrderRequest, Outcome, PayoutDone, Placed, RefundDone,
    RefundRequest, Request,
};
use crate::dialects::{DialectSpec, ProviderConfig};
use crate::model::{now_unix, random_id, Action, Channel, PaymentStatus, Scene, TransferStatus};
use std::collections::BTreeMap;
use std::time::Duration;

/// An account the sandbox serves, with its provider's rate limits.
#[derive(Clone)]
pub struct Account {
    pub keyed: Keyed,
    pub query_interval: Option<Duration>,
    pub balance_interval: Option<Duration>,
}

impl Account {
    /// The account `p` as its dialect checks it; `None` when its settings do not build.
    pub fn of(spec: &DialectSpec, p: &ProviderConfig) -> Option<Account> {
        let dialect = (spec.build)(p).ok()?;
        Some(Account {
            keyed: Keyed::new(p.clone()),
            query_interval: dialect.query_interval(),
            balance_interval: dialect.balance_interval(),
        })
    }
}

/// Serves one API request of `spec`'s provider.
pub fn handle(sb: &Sandbox, spec: &'static DialectSpec, request: &Request<'_>) -> Answer {
    let now = now_unix();
    let keys = |id: &str| sb.account(spec.name, id).map(|a| a.keyed);
    let call = match spec.side.read(request, &keys, now) {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let account_id = if call.signed { Some(call.account_id.clone()) } else { unsigned_account(sb, spec, &call) };
    let Some(account) = account_id.as_deref().and_then(|id| sb.account(spec.name, id)) else {
        let nobody = Keyed::new(ProviderConfig::with_defaults("", spec.name));
        return spec.side.answer(&nobody, &call, Err(Failure::new(Fail::NotFound, "订单不存在")), now);
    };
    let id = account_id.unwrap_or_default();
    let outcome = carry_out(sb, spec, &account, &id, &call, now);
    spec.side.answer(&account.keyed, &call, outcome, now)
}

/// The account of the order an unsigned query names (xiaojitong's checkOrder).
fn unsigned_account(sb: &Sandbox, spec: &DialectSpec, call: &Call) -> Option<String> {
    let CallKind::Query { lookup: Lookup::ProviderNo(no), .. } = &call.kind else { return None };
    sb.ledger().order(no).filter(|o| o.dialect == spec.name).map(|o| o.account.clone())
}

fn carry_out(
    sb: &Sandbox,
    spec: &'static DialectSpec,
    account: &Account,
    id: &str,
    call: &Call,
    now: i64,
) -> Result<Outcome, Failure> {
    let side = spec.side;
    let limited = |what: &str, interval: Option<Duration>| match interval {
        Some(interval) if sb.limits.try_acquire(&format!("{}-{what}/{id}", spec.name), interval).is_err() => {
            Err(Failure::new(Fail::Limited, format!("{what} asked too often")))
        }
        _ => Ok(()),
    };
    match &call.kind {
        CallKind::Create(order) => create(sb, spec, account, id, order, now),
        CallKind::Query { lookup, notify_again } => {
            let (Lookup::MerchantNo(no) | Lookup::ProviderNo(no)) = lookup;
            limited(&format!("query/{no}"), account.query_interval)?;
            let found = find(sb, spec, id, lookup);
            match found {
                Ok(order) => {
                    if *notify_again && order.status == PaymentStatus::Succeeded {
                        if let Some(n) = side.notify(&account.keyed, &order, now) {
                            sb.send_notify(spec.name, n);
                        }
                    }
                    Ok(placed(sb, spec, order, None))
                }
                Err(missing) if side.queries_refunds() => match lookup {
                    Lookup::MerchantNo(no) => sb
                        .ledger()
                        .transfer_by_merchant_no(id, no)
                        .map(|t| Outcome::Refund(refund_done(t)))
                        .ok_or(missing),
                    Lookup::ProviderNo(_) => Err(missing),
                },
                Err(missing) => Err(missing),
            }
        }
        CallKind::Cancel(lookup) => {
            let order = find(sb, spec, id, lookup)?;
            side.cancellable(&order)?;
            if matches!(order.status, PaymentStatus::Succeeded | PaymentStatus::Failed) {
                return Err(Failure::new(Fail::State, "当前订单不能取消，如果已经付款，请使用退款功能"));
            }
            let closed = {
                let mut ledger = sb.ledger();
                let o = ledger.order_mut(&order.provider_no).ok_or_else(not_found)?;
                o.status = PaymentStatus::Closed;
                o.clone()
            };
            Ok(placed(sb, spec, closed, None))
        }
        CallKind::Refund(asked) => refund(sb, spec, id, asked).map(Outcome::Refund),
        CallKind::Balance => {
            limited("balance", account.balance_interval)?;
            Ok(Outcome::Balance(sb.ledger().paid_total(spec.name, id)))
        }
        CallKind::PaymentMethods => Ok(Outcome::PaymentMethods),
        CallKind::Identity { .. } => {
            side.simulated(call).map(Outcome::Identity).ok_or_else(|| Failure::new(Fail::NotOffered, "not offered"))
        }
        CallKind::CardLink { .. } => {
            side.simulated(call).map(Outcome::CardLink).ok_or_else(|| Failure::new(Fail::NotOffered, "not offered"))
        }
        CallKind::PayoutCreate(asked) => {
            if !spec.payouts {
                return Err(Failure::new(Fail::NotOffered, "not offered"));
            }
            let mut ledger = sb.ledger();
            let transfer = Transfer {
                dialect: spec.name,
                provider_no: ledger.next_no(&format!("T{}", side.order_prefix())),
                account: id.to_string(),
                merchant_no: asked.payout_no.clone(),
                order_provider_no: None,
                amount: asked.amount,
                status: TransferStatus::Pending,
                notify_url: asked.notify_url.clone(),
                fields: BTreeMap::new(),
            };
            let t = ledger.create_transfer(transfer).map_err(duplicate)?;
            Ok(Outcome::Payout(payout_done(&t)))
        }
        CallKind::PayoutQuery(lookup) => {
            let ledger = sb.ledger();
            let t = match lookup {
                Lookup::MerchantNo(no) => ledger.transfer_by_merchant_no(id, no),
                Lookup::ProviderNo(no) => ledger.find_transfer(spec.name, no).and_then(|no| ledger.transfer(&no)),
            };
            t.filter(|t| t.account == id).map(|t| Outcome::Payout(payout_done(t))).ok_or_else(not_found)
        }
        CallKind::OrderList => Ok(Outcome::Orders(sb.ledger().orders_of(spec.name, id))),
    }
}

fn not_found() -> Failure {
    Failure::new(Fail::NotFound, "订单不存在")
}

fn duplicate(_: Duplicate) -> Failure {
    Failure::new(Fail::Duplicate, "订单号重复")
}

/// An order of the account by either number.
fn find(sb: &Sandbox, spec: &DialectSpec, id: &str, lookup: &Lookup) -> Result<Order, Failure> {
    let ledger = sb.ledger();
    let order = match lookup {
        Lookup::MerchantNo(no) => ledger.order_by_merchant_no(id, no),
        Lookup::ProviderNo(no) => ledger.order(no),
    };
    order.filter(|o| o.dialect == spec.name && o.account == id).cloned().ok_or_else(not_found)
}

fn create(
    sb: &Sandbox,
    spec: &'static DialectSpec,
    account: &Account,
    id: &str,
    asked: &OrderRequest,
    now: i64,
) -> Result<Outcome, Failure> {
    let side = spec.side;
    let order = {
        let mut ledger = sb.ledger();
        // Distinct payables: one fen more than any pending order already asking for the amount.
        let payable =
            if side.distinct_payable() { ledger.free_payable(spec.name, id, asked.amount) } else { asked.amount };
        let fields = asked.keep.clone();
        let created = ledger.create(
            spec.name,
            side.order_prefix(),
            id,
            &asked.order_no,
            asked.amount,
            payable,
            &asked.notify_url,
            &asked.return_url,
            fields,
        );
        let order = created.map_err(duplicate)?;
        if side.paid_at_once(asked) {
            // The payer's code is charged at once.
            ledger.pay(&order.provider_no).unwrap_or(order)
        } else {
            order
        }
    };
    if order.status == PaymentStatus::Succeeded {
        if let Some(n) = side.notify(&account.keyed, &order, now) {
            sb.send_notify(spec.name, n);
        }
    }
    let in_app =
        asked.scenes == [Scene::Miniapp] || (asked.scenes == [Scene::Jsapi] && asked.channel == Some(Channel::Wechat));
    let action = in_app.then(|| Action::Jsapi { params: wallet_params(asked, &order, now) });
    Ok(placed(sb, spec, order, action))
}

/// The parameters a wechat in-app payment opens the wallet with; the signature is not real.
fn wallet_params(asked: &OrderRequest, order: &Order, now: i64) -> BTreeMap<String, String> {
    let app_id = asked.extra.get("sub_appid").and_then(|v| v.as_str()).unwrap_or("wxsandbox");
    [
        ("appId", app_id.to_string()),
        ("timeStamp", now.to_string()),
        ("nonceStr", random_id("", 16)),
        ("signType", "MD5".into()),
        ("package", format!("prepay_id=wx{}", order.provider_no)),
        ("paySign", "SANDBOX".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn placed(sb: &Sandbox, spec: &DialectSpec, order: Order, action: Option<Action>) -> Outcome {
    let pay_url = format!("{}/pay/{}", sb.url(spec.name), order.provider_no);
    Outcome::Order(Placed { order, pay_url, action })
}

fn refund(sb: &Sandbox, spec: &DialectSpec, id: &str, asked: &RefundRequest) -> Result<RefundDone, Failure> {
    let order = find(sb, spec, id, &asked.lookup)?;
    let mut ledger = sb.ledger();
    if let Some(before) = ledger.transfer_by_merchant_no(id, &asked.refund_no) {
        if asked.replayable && before.order_provider_no.as_deref() == Some(order.provider_no.as_str()) {
            return Ok(refund_done(before));
        }
        return Err(Failure::new(Fail::Duplicate, "退款单号已经存在，请勿重复提交"));
    }
    if order.status != PaymentStatus::Succeeded {
        return Err(Failure::new(Fail::State, "当前订单不允许退款，状态异常"));
    }
    if asked.amount <= 0 || asked.amount > order.amount - order.refunded {
        return Err(Failure::new(Fail::TooMuch, "退款金额大于可退金额"));
    }
    let transfer = Transfer {
        dialect: spec.name,
        provider_no: ledger.next_no(&format!("R{}", spec.side.order_prefix())),
        account: id.to_string(),
        merchant_no: asked.refund_no.clone(),
        order_provider_no: Some(order.provider_no.clone()),
        amount: asked.amount,
        status: TransferStatus::Succeeded,
        notify_url: String::new(),
        fields: [("order_no".to_string(), order.merchant_order_no.clone())].into_iter().collect(),
    };
    let t = ledger.create_transfer(transfer).map_err(duplicate)?;
    if let Some(o) = ledger.order_mut(&order.provider_no) {
        o.refunded += asked.amount;
    }
    Ok(refund_done(&t))
}

fn refund_done(t: &Transfer) -> RefundDone {
    RefundDone {
        refund_no: t.merchant_no.clone(),
        provider_refund_no: t.provider_no.clone(),
        order_provider_no: t.order_provider_no.clone().unwrap_or_default(),
        order_no: t.fields.get("order_no").cloned().unwrap_or_default(),
        amount: t.amount,
        status: t.status,
    }
}

fn payout_done(t: &Transfer) -> PayoutDone {
    PayoutDone {
        payout_no: t.merchant_no.clone(),
        provider_payout_no: t.provider_no.clone(),
        amount: t.amount,
        status: t.status,
    }
}

/// Completes a payout and sends its notify, in the dialect's shape.
pub fn complete_payout(sb: &Sandbox, spec: &'static DialectSpec, number: &str) -> Answer {
    let t = {
        let mut ledger = sb.ledger();
        let Some(no) = ledger.find_transfer(spec.name, number) else {
            return Answer::text(404, "no such payout");
        };
        let Some(t) = ledger.transfer_mut(&no) else { return Answer::text(404, "no such payout") };
        t.status = TransferStatus::Succeeded;
        t.clone()
    };
    let Some(account) = sb.account(spec.name, &t.account) else {
        return Answer::text(404, "no such account");
    };
    if let Some(n) = spec.side.payout_notify(&account.keyed, &payout_done(&t), &t.notify_url, now_unix()) {
        sb.send_notify(spec.name, n);
    }
    Answer::json(serde_json::json!({"payout": t.provider_no, "status": t.status}).to_string())
}

/// Marks an order paid and sends its callback.
/// Pays an order (see `pay`); a payer's browser (the pay page's form) is then sent on to the
/// order's return URL, as a provider's cashier does.
pub fn pay_in_browser(sb: &Sandbox, spec: &'static DialectSpec, number: &str) -> Answer {
    let answer = pay(sb, spec, number);
    if answer.status != 200 {
        return answer;
    }
    let return_url = {
        let ledger = sb.ledger();
        ledger.find_any(spec.name, number).and_then(|no| ledger.order(&no).map(|o| o.return_url.clone()))
    };
    let body = match return_url.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        Some(url) => {
            let url = crate::http::html_escape(&url);
            format!("<!doctype html><meta charset=utf-8><meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>Paid</title><p>Paid. <a href=\"{url}\">Back to the merchant</a></p>")
        }
        None => "<!doctype html><meta charset=utf-8><title>Paid</title><p>Paid.</p>".to_string(),
    };
    Answer { status: 200, content_type: "text/html; charset=utf-8", body }
}

pub fn pay(sb: &Sandbox, spec: &'static DialectSpec, number: &str) -> Answer {
    let order = {
        let mut ledger = sb.ledger();
        let Some(order) = ledger.find_any(spec.name, number).and_then(|no| ledger.pay(&no)) else {
            return Answer::text(404, "no such order");
        };
        order
    };
    if let Some(account) = sb.account(spec.name, &order.account) {
        if let Some(n) = spec.side.notify(&account.keyed, &order, now_unix()) {
            sb.send_notify(spec.name, n);
        }
    }
    Answer::json(
        serde_json::json!({"order": order.provider_no, "merchant_order_no": order.merchant_order_no, "status": order.status})
            .to_string(),
    )
}
