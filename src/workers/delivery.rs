//! The delivery worker: POSTs outbox events to merchants' notify_url, signed with
//! `Payglot-Event-Id`, `Payglot-Timestamp` and `Payglot-Signature =
//! hex(HMAC-SHA256(key, timestamp \n event_id \n body))`. A 2xx answer is success; anything
//! else is retried on the configured schedule (15 s, 1 m, 5 m, 30 m, 2 h, then every 2 h) until
//! `give_up_after_secs` (3 days) have passed since the event was written. The outbox is in
//! the store, so pending events survive restarts. Events of one payment go out in order.

use crate::app::Gateway;
use crate::config::{DeliveryConfig, MerchantConfig};
use crate::core::notify::{event_signature, standard_webhook_signature};
use crate::model::Payment;
use crate::store::OutboxEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How many events one pass sends at once.
const BATCH: usize = 64;

/// When the next attempt is due after `attempts_before` failed ones, or `None` to give up.
///
/// The schedule's delay for this attempt (its last one repeats) is jittered down by up to half,
/// so receivers that come back up are not hit by every sender at once; a receiver's
/// `Retry-After` (429 or 503) is honoured when it asks for longer, up to a day.
pub fn next_attempt(
    delivery: &DeliveryConfig,
    event_created_at: i64,
    attempts_before: u32,
    retry_after: Option<u64>,
    now: i64,
) -> Option<i64> {
    let schedule = &delivery.retry_schedule_secs;
    let delay = *schedule.get(attempts_before as usize).or(schedule.last()).unwrap_or(&60);
    let jittered = delay - jitter(delay / 2);
    let wait = jittered.max(retry_after.unwrap_or(0).min(86_400)) as i64;
    let next = now + wait;
    (next <= event_created_at + delivery.give_up_after_secs as i64).then_some(next)
}

/// A random number of seconds in 0..=max.
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map(|_| u64::from_le_bytes(b) % (max + 1)).unwrap_or(0)
}

/// `Retry-After` in seconds (a number, or an HTTP date).
fn retry_after(headers: &hyper::HeaderMap, now: i64) -> Option<u64> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some((at - now).max(0) as u64)
}

/// Why a delivery attempt did not succeed.
#[derive(Debug)]
struct Failed {
    error: String,
    /// What the receiver asked for (`Retry-After` on 429 or 503).
    retry_after: Option<u64>,
    /// The receiver answered `410 Gone`: its endpoint takes no more notifications.
    gone: bool,
    /// The HTTP status the receiver answered, when it answered.
    answer: Option<u16>,
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed { error, retry_after: None, gone: false, answer: None }
    }
}

/// Runs until `shutdown` turns true.
pub async fn run(gateway: Arc<Gateway>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let poll = Duration::from_millis(gateway.config.current().config.delivery.poll_ms);
        let sent = deliver_due(&gateway).await;
        if sent > 0 {
            continue;
        }
        tokio::select! {
            _ = gateway.outbox_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends every due event once; returns how many were attempted.
pub async fn deliver_due(gateway: &Arc<Gateway>) -> usize {
    let lease = gateway.config.current().config.delivery.lease_secs as i64;
    let events = match gateway.store.claim_due_events(gateway.clock.now(), BATCH, lease).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox");
            return 0;
        }
    };
    let count = events.len();
    let mut attempts = JoinSet::new();
    for event in events {
        let gateway = gateway.clone();
        attempts.spawn(async move { deliver(&gateway, event).await });
    }
    while attempts.join_next().await.is_some() {}
    count
}

/// One delivery attempt, a span of the payment's trace.
async fn deliver(gateway: &Gateway, event: OutboxEvent) {
    let span = crate::telemetry::Span::of_payment("payment.notify", &event.payment_id)
        .attr("event_id", event.id.clone())
        .attr("event_kind", event.kind.clone())
        .attr("attempt", (event.attempts + 1).to_string());
    span.run(attempt(gateway, event, &span)).await
}

async fn attempt(gateway: &Gateway, event: OutboxEvent, span: &crate::telemetry::Span) {
    let live = gateway.config.current();
    let delivery = &live.config.delivery;
    let outcome = match live.merchant(&event.merchant_id) {
        None => Err(Failed::from("merchant is no longer in routes.yaml".to_string())),
        // A payment that came in through a front door is told in the school's dialect (even
        // after its door left routes.yaml: then it waits, and the error says why).
        Some(merchant) if is_about_payment(&event) => match gateway.store.payment_by_id(&event.payment_id).await {
            Ok(Some(payment)) if payment.door.is_some() => {
                send_door_callback(gateway, merchant, &payment, &event, delivery.timeout_ms).await
            }
            Ok(_) => send_event(gateway, merchant, &event, delivery.timeout_ms).await,
            Err(e) => Err(Failed::from(format!("cannot read the payment: {e}"))),
        },
        Some(merchant) => send_event(gateway, merchant, &event, delivery.timeout_ms).await,
    };
    let now = gateway.clock.now();
    let detail = match &outcome {
        Ok(answer) => {
            serde_json::json!({"event_id": event.id, "kind": event.kind, "outcome": "delivered", "answer": answer})
        }
        Err(e) => {
            serde_json::json!({"event_id": event.id, "kind": event.kind, "outcome": "failed", "answer": e.answer, "error": e.error})
        }
    };
    gateway.note(&event.payment_id, "notification", detail);
    if let Err(e) = &outcome {
        span.failed(&e.error);
    }
    let result = match outcome {
        Ok(_) => {
            metrics::counter!("payglot_deliveries_total", "outcome" => "delivered").increment(1);
            tracing::info!(event_id = %event.id, kind = %event.kind, merchant = %event.merchant_id, attempts = event.attempts + 1, "event delivered");
            gateway.store.mark_delivered(&event.id, now).await
        }
        Err(failed) if failed.gone => {
            metrics::counter!("payglot_deliveries_total", "outcome" => "gone").increment(1);
            tracing::error!(event_id = %event.id, merchant = %event.merchant_id, error = %failed.error, "the endpoint is gone: retries stopped");
            gateway.store.mark_attempt_failed(&event.id, &failed.error, None, now).await
        }
        Err(failed) => {
            let next = next_attempt(delivery, event.created_at, event.attempts, failed.retry_after, now);
            let outcome = if next.is_some() { "retry" } else { "gave_up" };
            metrics::counter!("payglot_deliveries_total", "outcome" => outcome).increment(1);
            let error = failed.error;
            match next {
                Some(at) => {
                    tracing::warn!(event_id = %event.id, merchant = %event.merchant_id, %error, retry_in_secs = at - now, "event delivery failed")
                }
                None => {
                    tracing::error!(event_id = %event.id, merchant = %event.merchant_id, %error, "event delivery given up")
                }
            }
            gateway.store.mark_attempt_failed(&event.id, &error, next, now).await
        }
    };
    if let Err(e) = result {
        tracing::error!(event_id = %event.id, error = %e, "cannot record the delivery attempt; it will be repeated");
    }
}

/// Whether an event is about a payment (its order key is a payment_id): payment and refund
/// events.
fn is_about_payment(event: &OutboxEvent) -> bool {
    event.kind.starts_with("payment.") || event.kind.starts_with("refund.")
}

/// POSTs an event to the merchant's notify_url, signed; any 2xx is success.
async fn send_event(
    gateway: &Gateway,
    merchant: &MerchantConfig,
    event: &OutboxEvent,
    timeout_ms: u64,
) -> Result<Option<u16>, Failed> {
    if event.notify_url.is_empty() {
        return Err(Failed::from("no notify_url".to_string()));
    }
    if let Some(since) = gateway.gone_endpoint(&event.notify_url) {
        return Err(Failed {
            error: format!(
                "the endpoint answered 410 Gone at {}: retries stopped (replay to try again)",
                crate::model::rfc3339(since)
            ),
            retry_after: None,
            gone: true,
            answer: None,
        });
    }
    let now = gateway.clock.now();
    let timestamp = now.to_string();
    let signature = event_signature(merchant.key.expose(), &timestamp, &event.id, event.body.as_bytes());
    let keys: Vec<&str> = merchant.webhook_keys.iter().map(|k| k.expose()).collect();
    let standard = standard_webhook_signature(&keys, &event.id, now, event.body.as_bytes());
    let headers = [
        ("content-type", "application/json"),
        ("user-agent", "payglot"),
        ("payglot-event-id", event.id.as_str()),
        ("payglot-timestamp", timestamp.as_str()),
        ("payglot-signature", signature.as_str()),
        // Standard Webhooks v1: the same event id and timestamp.
        ("webhook-id", event.id.as_str()),
        ("webhook-timestamp", timestamp.as_str()),
        ("webhook-signature", standard.as_str()),
    ];
    gateway.config.current().check_notify_url(merchant, &event.notify_url)?;
    let answer = gateway
        .upstream
        .send_notification(
            "POST",
            &event.notify_url,
            &headers,
            event.body.clone().into_bytes(),
            merchant.allow_private_notify,
            timeout_ms,
        )
        .await;
    match answer {
        Ok(a) if (200..300).contains(&a.status) => Ok(Some(a.status)),
        Ok(a) if a.status == 410 => {
            gateway.mark_gone(&event.notify_url, now);
            Err(Failed {
                error: "merchant answered HTTP 410 Gone: retries to this endpoint stopped (replay to try again)"
                    .to_string(),
                retry_after: None,
                gone: true,
                answer: Some(410),
            })
        }
        Ok(a) => Err(Failed {
            error: format!("merchant answered HTTP {}", a.status),
            retry_after: matches!(a.status, 429 | 503).then(|| retry_after(&a.headers, now)).flatten(),
            gone: false,
            answer: Some(a.status),
        }),
        Err(e) => Err(Failed::from(e.to_string())),
    }
}

/// Sends a front-door payment's event as its dialect's callback, built at each attempt (mct's
/// carries a timestamp checked within ±600 s); success is the dialect's ack. An event its
/// dialect has no callback for is done at once.
async fn send_door_callback(
    gateway: &Gateway,
    merchant: &MerchantConfig,
    payment: &Payment,
    event: &OutboxEvent,
    timeout_ms: u64,
) -> Result<Option<u16>, Failed> {
    let Some(notify) = crate::core::notify::callback(merchant, payment, &event.kind, gateway.clock.now())? else {
        tracing::debug!(event_id = %event.id, kind = %event.kind, "the school's dialect has no callback for this event");
        return Ok(None);
    };
    let headers: Vec<(&str, &str)> =
        notify.content_type.iter().map(|ct| ("content-type", *ct)).chain([("user-agent", "payglot")]).collect();
    gateway.config.current().check_notify_url(merchant, &notify.url)?;
    let sent = gateway
        .upstream
        .send_notification(notify.method, &notify.url, &headers, notify.body, merchant.allow_private_notify, timeout_ms)
        .await;
    match sent {
        Ok(a) if notify.ack.matches(a.status, &a.body) => Ok(Some(a.status)),
        Ok(a) => Err(Failed {
            answer: Some(a.status),
            ..Failed::from(format!("school answered HTTP {} without its dialect's ack", a.status))
        }),
        Err(e) => Err(Failed::from(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_with_jitter_then_gives_up() {
        let d = DeliveryConfig::default();
        for _ in 0..50 {
            let first = next_attempt(&d, 0, 0, None, 0).unwrap();
            assert!((5..=10).contains(&first), "{first}");
            let later = next_attempt(&d, 0, 4, None, 1000).unwrap() - 1000;
            assert!((80..=160).contains(&later), "{later}");
            let last = next_attempt(&d, 0, 40, None, 10_000).unwrap() - 10_000;
            assert!((3600..=7200).contains(&last), "the last delay repeats: {last}");
        }
        assert_eq!(next_attempt(&d, 0, 30, None, 3 * 24 * 3600 - 100), None, "past three days");
        // Retry-After asks for longer: honoured (up to a day); shorter: the schedule wins.
        assert_eq!(next_attempt(&d, 0, 0, Some(600), 0), Some(600));
        assert!(next_attempt(&d, 0, 0, Some(1), 0).unwrap() >= 5);
        assert_eq!(next_attempt(&d, 0, 0, Some(10_000_000), 0), Some(86_400));
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let mut h = hyper::HeaderMap::new();
        h.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&h, 0), Some(120));
        // RFC 9110's example date, 1994-11-06T08:49:37Z = 784111777.
        h.insert("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
        assert_eq!(retry_after(&h, 784_111_777 - 30), Some(30));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h, 0), None);
    }
}
