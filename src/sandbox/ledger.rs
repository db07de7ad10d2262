//! The sandbox's in-memory ledger, shared by every simulated provider: orders with their
//! amounts and status, refunds and payouts, and the notify sender that retries a callback on
//! the configured schedule until the merchant side answers with the dialect's ack.

pub use crate::dialects::{Ack, Notify, ProviderOrder as Order};
use crate::model::{now_unix, PaymentStatus, TransferStatus};
use crate::upstream::Upstream;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A refund or payout at a simulated provider.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub dialect: &'static str,
    pub provider_no: String,
    pub account: String,
    pub merchant_no: String,
    pub order_provider_no: Option<String>,
    pub amount: i64,
    pub status: TransferStatus,
    pub notify_url: String,
    pub fields: BTreeMap<String, String>,
}

/// The merchant's order number was used before at this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate;

#[derive(Default)]
pub struct Ledger {
    orders: HashMap<String, Order>,
    by_merchant_no: HashMap<(String, String), String>,
    transfers: HashMap<String, Transfer>,
    transfers_by_merchant_no: HashMap<(String, String), String>,
    /// The last order created per (dialect, account, payable), so `pending_with_payable` is one
    /// lookup instead of a scan of every order.
    by_payable: HashMap<(&'static str, String, i64), String>,
    /// Per (dialect, account, amount): the payable above the last one handed out, where the
    /// search for a free one starts (a run of pending orders of one amount made every create
    /// scan them all: O(pending) a create).
    next_payable: HashMap<(&'static str, String, i64), i64>,
    next: AtomicU64,
}

impl Ledger {
    /// A new provider order number with a dialect-looking prefix.
    pub fn next_no(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{}{:06}", now_unix(), n % 1_000_000)
    }

    /// Records a new order; `Err` when the account already used this merchant order number.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        dialect: &'static str,
        prefix: &str,
        account: &str,
        merchant_order_no: &str,
        amount: i64,
        payable: i64,
        notify_url: &str,
        return_url: &str,
        fields: BTreeMap<String, String>,
    ) -> Result<Order, Duplicate> {
        let key = (account.to_string(), merchant_order_no.to_string());
        if self.by_merchant_no.contains_key(&key) {
            return Err(Duplicate);
        }
        let order = Order {
            dialect,
            provider_no: self.next_no(prefix),
            account: account.into(),
            merchant_order_no: merchant_order_no.into(),
            amount,
            payable,
            notify_url: notify_url.into(),
            return_url: return_url.into(),
            status: PaymentStatus::Pending,
            paid_at: None,
            refunded: 0,
            fields,
        };
        self.by_merchant_no.insert(key, order.provider_no.clone());
        self.by_payable.insert((dialect, account.to_string(), payable), order.provider_no.clone());
        self.orders.insert(order.provider_no.clone(), order.clone());
        Ok(order)
    }

    pub fn order(&self, provider_no: &str) -> Option<&Order> {
        self.orders.get(provider_no)
    }

    pub fn order_mut(&mut self, provider_no: &str) -> Option<&mut Order> {
        self.orders.get_mut(provider_no)
    }

    /// An account's order by the merchant's order number.
    pub fn order_by_merchant_no(&self, account: &str, merchant_order_no: &str) -> Option<&Order> {
        let no = self.by_merchant_no.get(&(account.to_string(), merchant_order_no.to_string()))?;
        self.orders.get(no)
    }

    /// Any order by its provider number or its merchant order number (for the pay endpoint).
    pub fn find_any(&self, dialect: &str, number: &str) -> Option<String> {
        if self.orders.get(number).is_some_and(|o| o.dialect == dialect) {
            return Some(number.to_string());
        }
        self.orders
            .values()
            .find(|o| o.dialect == dialect && o.merchant_order_no == number)
            .map(|o| o.provider_no.clone())
    }

    /// Every order of an account (the sandbox keeps one day's worth).
    pub fn orders_of(&self, dialect: &str, account: &str) -> Vec<Order> {
        self.orders.values().filter(|o| o.dialect == dialect && o.account == account).cloned().collect()
    }

    /// Whether an account has a pending order asking the payer for exactly `payable`.
    /// Whether a pending order of the account asks for exactly `payable`. Exact for xiaojitong,
    /// the one user, whose pending orders never share a payable (the last order created with
    /// one is the only one that can still be pending).
    pub fn pending_with_payable(&self, dialect: &'static str, account: &str, payable: i64) -> bool {
        self.by_payable
            .get(&(dialect, account.to_string(), payable))
            .and_then(|no| self.orders.get(no))
            .is_some_and(|o| o.status == PaymentStatus::Pending)
    }

    /// A payable for a new order of `amount` that no pending order of the account asks for:
    /// the amount itself when free, else one fen above the last one handed out (and on up
    /// past any still pending).
    pub fn free_payable(&mut self, dialect: &'static str, account: &str, amount: i64) -> i64 {
        let mut payable = amount;
        if self.pending_with_payable(dialect, account, payable) {
            payable =
                self.next_payable.get(&(dialect, account.to_string(), amount)).copied().unwrap_or(amount).max(amount);
            while self.pending_with_payable(dialect, account, payable) {
                payable += 1;
            }
        }
        self.next_payable.insert((dialect, account.to_string(), amount), payable + 1);
        payable
    }

    /// What an account's paid orders add up to, less refunds (a simulated balance).
    pub fn paid_total(&self, dialect: &str, account: &str) -> i64 {
        self.orders
            .values()
            .filter(|o| o.dialect == dialect && o.account == account && o.status == PaymentStatus::Succeeded)
            .map(|o| o.payable - o.refunded)
            .sum()
    }

    /// Marks an order paid (once); returns it.
    pub fn pay(&mut self, provider_no: &str) -> Option<Order> {
        let order = self.orders.get_mut(provider_no)?;
        if order.status == PaymentStatus::Pending {
            order.status = PaymentStatus::Succeeded;
            order.paid_at = Some(now_unix());
        }
        Some(order.clone())
    }

    /// Records a refund or payout; `Err` when the merchant number was used.
    pub fn create_transfer(&mut self, transfer: Transfer) -> Result<Transfer, Duplicate> {
        let key = (transfer.account.clone(), transfer.merchant_no.clone());
        if self.transfers_by_merchant_no.contains_key(&key) {
            return Err(Duplicate);
        }
        self.transfers_by_merchant_no.insert(key, transfer.provider_no.clone());
        self.transfers.insert(transfer.provider_no.clone(), transfer.clone());
        Ok(transfer)
    }

    pub fn transfer_by_merchant_no(&self, account: &str, merchant_no: &str) -> Option<&Transfer> {
        let no = self.transfers_by_merchant_no.get(&(account.to_string(), merchant_no.to_string()))?;
        self.transfers.get(no)
    }

    pub fn find_transfer(&self, dialect: &str, number: &str) -> Option<String> {
        if self.transfers.get(number).is_some_and(|t| t.dialect == dialect) {
            return Some(number.to_string());
        }
        self.transfers.values().find(|t| t.dialect == dialect && t.merchant_no == number).map(|t| t.provider_no.clone())
    }

    pub fn transfer(&self, provider_no: &str) -> Option<&Transfer> {
        self.transfers.get(provider_no)
    }

    pub fn transfer_mut(&mut self, provider_no: &str) -> Option<&mut Transfer> {
        self.transfers.get_mut(provider_no)
    }
}

/// Sends callbacks with retries; counts attempts, and the callbacks still being sent (not
/// yet acked, retries left).
pub struct Notifier {
    pub upstream: Arc<Upstream>,
    pub retry_secs: Vec<u64>,
    pub attempts: Arc<AtomicU64>,
    pub in_flight: Arc<AtomicU64>,
}

impl Notifier {
    /// Sends `notify` now and after each retry delay until acked.
    pub fn spawn(&self, notify: Notify) {
        let upstream = self.upstream.clone();
        let (attempts, in_flight) = (self.attempts.clone(), self.in_flight.clone());
        let delays: Vec<u64> = std::iter::once(0).chain(self.retry_secs.iter().copied()).collect();
        in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            for delay in delays {
                tokio::time::sleep(Duration::from_secs(delay)).await;
                attempts.fetch_add(1, Ordering::Relaxed);
                let headers: Vec<(&str, &str)> = notify.content_type.iter().map(|ct| ("content-type", *ct)).collect();
                let answer =
                    upstream.send(notify.method, &notify.url, &headers, notify.body.clone(), 2000, 10_000).await;
                if answer.as_ref().is_ok_and(|a| notify.ack.matches(a.status, &a.body)) {
                    break;
                }
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_orders_of_one_amount_get_distinct_payables_without_a_scan() {
        let mut ledger = Ledger::default();
        let make = |ledger: &mut Ledger, no: &str| {
            let payable = ledger.free_payable("xiaojitong", "2", 1980);
            ledger.create("xiaojitong", "X", "2", no, 1980, payable, "", "", BTreeMap::new()).unwrap()
        };
        let first = make(&mut ledger, "a");
        let second = make(&mut ledger, "b");
        let third = make(&mut ledger, "c");
        assert_eq!((first.payable, second.payable, third.payable), (1980, 1981, 1982));
        // Once the amount itself is free again it is handed out first.
        ledger.pay(&first.provider_no).unwrap();
        assert_eq!(make(&mut ledger, "d").payable, 1980);
        assert_eq!(make(&mut ledger, "e").payable, 1983, "never one still pending");
        // 10,000 pending orders of one amount: each new one is found at once.
        for i in 0..10_000 {
            make(&mut ledger, &format!("n{i}"));
        }
        assert_eq!(make(&mut ledger, "last").payable, 1980 + 4 + 10_000);
    }
}
