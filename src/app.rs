//! The gateway's shared state, the same for every door and worker: the live config, the
//! store, the upstream client, providers' rate limits, the clock, and the timeline buffer.

use crate::config::reload::ConfigHandle;
use crate::store::Store;
use crate::upstream::Upstream;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// What every request handler works with: live config, store, upstream client.
pub struct Gateway {
    pub config: Arc<ConfigHandle>,
    pub store: Arc<dyn Store>,
    pub upstream: Arc<Upstream>,
    /// Woken when an event is written, so the delivery worker sends it at once.
    pub outbox_wake: Arc<Notify>,
    /// Providers' rate limits, shared by all merchants.
    pub limits: crate::upstream::RateLimits,
    /// The last balance each account reported: (fen, unix seconds), served inside the
    /// provider's balance interval.
    pub balances: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
    /// Timeline entries waiting to be written (a background task flushes them in batches).
    pub timeline: std::sync::Mutex<Vec<crate::model::TimelineEntry>>,
    /// Upstream calls noted in the last second or two, so a payment polled many times a second
    /// gets one timeline line per second for the same call and outcome, not one per poll.
    pub recent_calls: std::sync::Mutex<RecentKeys>,
    /// Payments whose checkout page was opened (see `doors::checkout`).
    pub checkouts: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The time every door and worker decides by.
    pub clock: Clock,
    /// Notify endpoints that answered `410 Gone`, and since when: no more attempts go there
    /// until an operator replays their events.
    pub gone_endpoints: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

/// The gateway's clock in unix seconds: the system clock, plus however far the admin moved it
/// forward. Only a sandbox gateway with `sandbox.adjustable_clock: true` lets the admin move it
/// (`POST /admin/clock?advance=SECONDS`), so tests advance time instead of sleeping; elsewhere
/// it is the system clock.
#[derive(Debug, Default)]
pub struct Clock {
    offset: std::sync::atomic::AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        crate::model::now_unix() + self.offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs.max(0), std::sync::atomic::Ordering::Relaxed);
    }
}

/// A set that forgets: keys seen in the current or the previous period (one second).
#[derive(Default)]
pub struct RecentKeys {
    hasher: std::hash::RandomState,
    current: std::collections::HashSet<u64>,
    previous: std::collections::HashSet<u64>,
    period_started: Option<std::time::Instant>,
}

impl RecentKeys {
    /// `true` when `key` was not seen in the last period or two (and remembers it).
    pub fn first_in_a_while(&mut self, key: impl std::hash::Hash, now: std::time::Instant) -> bool {
        use std::hash::BuildHasher;
        if self.period_started.is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1)) {
            self.previous = std::mem::take(&mut self.current);
            self.period_started = Some(now);
        }
        let h = self.hasher.hash_one(key);
        !self.previous.contains(&h) && self.current.insert(h)
    }
}

impl Gateway {
    /// When `url` answered 410 Gone, if it did.
    pub fn gone_endpoint(&self, url: &str) -> Option<i64> {
        self.gone_endpoints.lock().unwrap_or_else(|p| p.into_inner()).get(url).copied()
    }

    /// Records that `url` answered 410 Gone.
    pub fn mark_gone(&self, url: &str, now: i64) {
        let mut gone = self.gone_endpoints.lock().unwrap_or_else(|p| p.into_inner());
        gone.entry(url.to_string()).or_insert(now);
        metrics::gauge!("payglot_notify_endpoints_gone").set(gone.len() as f64);
    }

    /// Lets every gone endpoint be tried again (an operator replayed events).
    pub fn forget_gone(&self) {
        let mut gone = self.gone_endpoints.lock().unwrap_or_else(|p| p.into_inner());
        gone.clear();
        metrics::gauge!("payglot_notify_endpoints_gone").set(0.0);
    }

    /// Notes a line of a payment's (or payout's) timeline.
    pub fn note(&self, subject: &str, kind: &str, detail: serde_json::Value) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let entry = crate::model::TimelineEntry { subject: subject.to_string(), at_ms, kind: kind.to_string(), detail };
        let mut buffer = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
        // A store that is down must not grow this without bound: the timeline is best effort.
        if buffer.len() < 100_000 {
            buffer.push(entry);
        }
    }

    /// Writes the noted timeline entries; runs until `shutdown`, flushing once more at the end.
    pub async fn flush_timeline(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => false,
                _ = shutdown.changed() => true,
            };
            let batch: Vec<_> = std::mem::take(&mut *self.timeline.lock().unwrap_or_else(|p| p.into_inner()));
            if !batch.is_empty() {
                if let Err(e) = self.store.append_timeline(batch).await {
                    tracing::warn!(error = %e, "timeline entries dropped");
                }
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RecentKeys;
    use std::time::{Duration, Instant};

    #[test]
    fn recent_keys_take_a_key_once_a_second() {
        let mut recent = RecentKeys::default();
        let t0 = Instant::now();
        assert!(recent.first_in_a_while("a", t0));
        assert!(!recent.first_in_a_while("a", t0 + Duration::from_millis(500)));
        assert!(recent.first_in_a_while("b", t0 + Duration::from_millis(500)));
        assert!(!recent.first_in_a_while("a", t0 + Duration::from_millis(1500)), "still in the previous period");
        assert!(recent.first_in_a_while("a", t0 + Duration::from_millis(3100)), "forgotten after two periods");
    }
}
