//! Group commit on PostgreSQL, as the SQLite store's writer does it: the writes on a request's
//! path (its nonce, a new payment, a create's answer, a settlement and its event) are queued,
//! and every write waiting (up to 256) goes into one transaction, committed once: one WAL
//! flush, one BEGIN and one COMMIT serve the whole batch. Within a batch the statements are
//! pipelined (sent together, answered in order), and the payment rows it changes are locked by
//! one statement in payment_id order, so two instances' batches never deadlock on each other.
//! Up to `IN_FLIGHT` batches run at once, each on its own pooled connection, so a batch
//! waiting for its flush does not hold up the next. No one hears "done" before the commit.
//! A batch that fails as a whole (a lost connection, a constraint, a deadlock with a single
//! write elsewhere) is retried write by write, each in its own transaction: one bad write fails
//! only itself.

use super::err;
use crate::model::{NewEvent, Payment};
use crate::store::rows::{self, sql, PAYMENT_COLUMNS};
use crate::store::{apply_settlement, settlement_event, Inserted, NewAnomaly, Settled, Settlement, StoreResult};
use deadpool_postgres::{Pool, Transaction};
use futures_util::future::try_join_all;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_postgres::types::ToSql;

/// Batches committing at once.
const IN_FLIGHT: usize = 4;
/// Writes in one batch at most.
const MAX_BATCH: usize = 256;

/// A write on the hot path.
pub enum Write {
    /// `true` the first time this nonce is seen since `not_before`.
    Nonce {
        merchant_id: String,
        nonce: String,
        now: i64,
        not_before: i64,
    },
    InsertPayment {
        payment: Box<Payment>,
        fingerprint: String,
        first_check_at: i64,
    },
    RecordCreated {
        payment_id: String,
        provider_trade_no: Option<String>,
        action: String,
        expires_at: Option<i64>,
        now: i64,
    },
    Settle {
        payment_id: String,
        settlement: Box<Settlement>,
        now: i64,
    },
    /// An outbox event's delivery attempt: delivered, or failed with the next attempt's time
    /// (`None`: given up).
    Delivered {
        event_id: String,
        now: i64,
    },
    AttemptFailed {
        event_id: String,
        error: String,
        next: Option<i64>,
    },
}

/// What a write did, once committed.
pub enum Done {
    Nonce(bool),
    Inserted(Inserted),
    Recorded,
    Settled(Box<Settled>),
}

/// Each write's answer out of a `Done` (`None`: the writer answered a write of another kind).
impl Done {
    pub fn nonce(self) -> Option<bool> {
        if let Done::Nonce(fresh) = self {
            Some(fresh)
        } else {
            None
        }
    }

    pub fn inserted(self) -> Option<Inserted> {
        if let Done::Inserted(inserted) = self {
            Some(inserted)
        } else {
            None
        }
    }

    /// The answer of a write that answers nothing but its commit.
    pub fn recorded(self) -> Option<()> {
        matches!(self, Done::Recorded).then_some(())
    }

    pub fn settled(self) -> Option<Settled> {
        if let Done::Settled(settled) = self {
            Some(*settled)
        } else {
            None
        }
    }
}

struct Job {
    write: Write,
    reply: oneshot::Sender<StoreResult<Done>>,
}

/// The queue of writes and the task that commits them.
pub struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    pub fn start(pool: Pool) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(pool, queue));
        GroupCommit { jobs }
    }

    /// Queues a write, waits for its batch's commit and takes its answer out of the `Done`
    /// (`answer` says `None` when the writer answered a write of another kind: a bug).
    pub async fn write<T>(&self, write: Write, answer: impl FnOnce(Done) -> Option<T>) -> StoreResult<T> {
        let (reply, done) = oneshot::channel();
        self.jobs.send(Job { write, reply }).map_err(|_| err("the store's writer stopped"))?;
        let done = done.await.map_err(|_| err("the store's writer stopped"))??;
        answer(done).ok_or_else(|| err("the store's writer answered another write"))
    }
}

/// Takes every write waiting once a batch may start, and starts it.
async fn dispatch(pool: Pool, mut queue: mpsc::UnboundedReceiver<Job>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let last_purge = Arc::new(AtomicI64::new(0));
    while let Some(first) = queue.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (pool, last_purge) = (pool.clone(), last_purge.clone());
        tokio::spawn(async move {
            commit(&pool, batch, &last_purge).await;
            drop(permit);
        });
    }
}

/// Writes a batch in one transaction, or, if that fails, each write alone.
async fn commit(pool: &Pool, batch: Vec<Job>, last_purge: &AtomicI64) {
    let writes: Vec<&Write> = batch.iter().map(|j| &j.write).collect();
    let outcome = match pool.get().await {
        Ok(mut client) => run(&mut client, &writes, last_purge).await,
        Err(e) => Err(err(format!("PostgreSQL unavailable: {e}"))),
    };
    match outcome {
        Ok(done) => {
            for (job, done) in batch.into_iter().zip(done) {
                let _ = job.reply.send(done);
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(writes = batch.len(), error = %e, "a batch of store writes failed; writing each alone");
            for job in batch {
                let done = match pool.get().await {
                    Ok(mut client) => run(&mut client, &[&job.write], last_purge).await.map(|mut d| d.remove(0)),
                    Err(e) => Err(err(format!("PostgreSQL unavailable: {e}"))),
                };
                let _ = job.reply.send(done.and_then(|d| d));
            }
        }
    }
}

/// The statements a batch runs, prepared once per connection.
struct Statements {
    nonce: tokio_postgres::Statement,
    purge_nonces: tokio_postgres::Statement,
    insert_payment: tokio_postgres::Statement,
    payment_by_out_trade_no: tokio_postgres::Statement,
    lock_payments: tokio_postgres::Statement,
    record_created: tokio_postgres::Statement,
    settle_payment: tokio_postgres::Statement,
    insert_events: tokio_postgres::Statement,
    insert_anomaly: tokio_postgres::Statement,
    delivered: tokio_postgres::Statement,
    attempt_failed: tokio_postgres::Statement,
}

/// Takes over a nonce row only once it is older than the window (so no purge need run first).
const TAKE_NONCE: &str = "INSERT INTO nonces (merchant_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT (merchant_id, nonce) DO UPDATE SET seen_at = EXCLUDED.seen_at WHERE nonces.seen_at < $4";
const MARK_DELIVERED: &str = "UPDATE events SET state = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = NULL, claimed_until = NULL WHERE id = $1";
const MARK_ATTEMPT_FAILED: &str = "UPDATE events SET state = $2, attempts = attempts + 1, next_attempt_at = COALESCE($3, next_attempt_at), last_error = $4, claimed_until = NULL WHERE id = $1";
/// A batch's events in one statement, in its order (`seq` is the delivery order).
const INSERT_EVENTS: &str = "INSERT INTO events (id, merchant_id, payment_id, kind, notify_url, body, state, next_attempt_at, created_at) SELECT id, merchant_id, payment_id, kind, notify_url, body, 'pending', created_at, created_at FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[]) WITH ORDINALITY AS e(id, merchant_id, payment_id, kind, notify_url, body, created_at, n) ORDER BY n";
const RECORD_CREATED: &str = "UPDATE payments SET provider_trade_no = COALESCE(provider_trade_no, $2), action = $3, updated_at = $4, expires_at = LEAST(expires_at, COALESCE($5, expires_at)) WHERE payment_id = $1";

impl Statements {
    async fn prepare(tx: &Transaction<'_>) -> StoreResult<Self> {
        let p = |s: &str| {
            let s = s.to_string();
            async move { tx.prepare_cached(&s).await.map_err(err) }
        };
        Ok(Statements {
            nonce: p(TAKE_NONCE).await?,
            purge_nonces: p("DELETE FROM nonces WHERE seen_at < $1").await?,
            insert_payment: p(sql::INSERT_PAYMENT).await?,
            payment_by_out_trade_no: p(sql::PAYMENT_BY_OUT_TRADE_NO).await?,
            // Each id by the primary key, in the database's order of the ids (the lock order, the
            // same as `ORDER BY payment_id` of earlier versions, so instances of both agree while
            // they run side by side). `payment_id = ANY($1)` got a generic plan while the table was
            // small and kept scanning the whole table once it was not (no autoanalyze had run).
            lock_payments: p(&format!(
                "SELECT p.* FROM (SELECT id FROM unnest($1::text[]) AS k(id) ORDER BY id) AS k CROSS JOIN LATERAL \
                 (SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = k.id LIMIT 1 FOR UPDATE) AS p"
            ))
            .await?,
            record_created: p(RECORD_CREATED).await?,
            settle_payment: p(sql::SETTLE_PAYMENT).await?,
            insert_events: p(INSERT_EVENTS).await?,
            insert_anomaly: p(sql::INSERT_ANOMALY).await?,
            delivered: p(MARK_DELIVERED).await?,
            attempt_failed: p(MARK_ATTEMPT_FAILED).await?,
        })
    }
}

/// A statement's parameters, owned (a batch's statements are built before any is sent).
type Values = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(values: &Values) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// One transaction for `writes`: what each did, in their order (a write can fail alone, as a
/// settlement of a payment that does not exist; an `Err` of the whole means nothing was
/// committed).
async fn run(
    client: &mut deadpool_postgres::Object,
    writes: &[&Write],
    last_purge: &AtomicI64,
) -> StoreResult<Vec<StoreResult<Done>>> {
    let tx = client.transaction().await.map_err(err)?;
    let st = Statements::prepare(&tx).await?;
    let mut done: Vec<Option<StoreResult<Done>>> = writes.iter().map(|_| None).collect();

    // 1. Nonces and new payments (independent of each other and of the rows locked next).
    let mut first: Vec<(usize, &tokio_postgres::Statement, Values)> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        match w {
            Write::Nonce { merchant_id, nonce, now, not_before } => {
                let values: Values =
                    vec![Box::new(merchant_id.clone()), Box::new(nonce.clone()), Box::new(*now), Box::new(*not_before)];
                first.push((i, &st.nonce, values));
            }
            Write::InsertPayment { payment, fingerprint, first_check_at } => {
                first.push((i, &st.insert_payment, insert_values(payment, fingerprint, *first_check_at)));
            }
            Write::Delivered { event_id, now } => {
                first.push((i, &st.delivered, vec![Box::new(event_id.clone()), Box::new(*now)]));
            }
            Write::AttemptFailed { event_id, error, next } => {
                let state = if next.is_some() { "pending" } else { "failed" };
                let values: Values =
                    vec![Box::new(event_id.clone()), Box::new(state), Box::new(*next), Box::new(error.clone())];
                first.push((i, &st.attempt_failed, values));
            }
            _ => {}
        }
    }
    let first_params: Vec<_> = first.iter().map(|(_, _, v)| refs(v)).collect();
    // The payments the batch changes, locked in one statement, in payment_id order.
    let mut locked_ids: Vec<&str> = writes
        .iter()
        .filter_map(|w| match w {
            Write::RecordCreated { payment_id, .. } | Write::Settle { payment_id, .. } => Some(payment_id.as_str()),
            _ => None,
        })
        .collect();
    locked_ids.sort_unstable();
    locked_ids.dedup();
    let lock_params: [&(dyn ToSql + Sync); 1] = [&locked_ids];
    let written = try_join_all(first.iter().zip(&first_params).map(|((_, s, _), p)| tx.execute(*s, p)));
    let locked = async {
        if locked_ids.is_empty() {
            Ok(Vec::new())
        } else {
            tx.query(&st.lock_payments, &lock_params).await
        }
    };
    let (written, locked) = tokio::try_join!(written, locked).map_err(err)?;

    let mut existing = Vec::new();
    for ((i, _, _), n) in first.iter().zip(written) {
        match writes[*i] {
            Write::Nonce { .. } => done[*i] = Some(Ok(Done::Nonce(n == 1))),
            Write::InsertPayment { .. } if n == 1 => done[*i] = Some(Ok(Done::Inserted(Inserted::New))),
            Write::InsertPayment { payment, .. } => existing.push((*i, payment)),
            Write::Delivered { .. } | Write::AttemptFailed { .. } => done[*i] = Some(Ok(Done::Recorded)),
            _ => {}
        }
    }
    // The payments an out_trade_no already had (an identical retry, or a second use).
    let (tx_ref, by_out_trade_no) = (&tx, &st.payment_by_out_trade_no);
    let lookups = existing.iter().map(|(_, p)| async move {
        let params: [&(dyn ToSql + Sync); 2] = [&p.merchant_id, &p.out_trade_no];
        tx_ref.query_one(by_out_trade_no, &params).await
    });
    for ((i, _), row) in existing.iter().zip(try_join_all(lookups).await.map_err(err)?) {
        let (payment, fingerprint) = rows::payment(&row)?;
        done[*i] = Some(Ok(Done::Inserted(Inserted::Existing(Box::new(payment), fingerprint))));
    }

    // 2. Creates' answers and settlements, applied in queue order to the locked rows.
    let mut payments: HashMap<String, Payment> = HashMap::with_capacity(locked.len());
    for row in &locked {
        let (p, _) = rows::payment(row)?;
        payments.insert(p.payment_id.clone(), p);
    }
    let mut events: Vec<NewEvent> = Vec::new();
    let mut anomalies: Vec<(&NewAnomaly, i64)> = Vec::new();
    let mut updates: Vec<(&tokio_postgres::Statement, Values)> = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        match w {
            Write::RecordCreated { payment_id, provider_trade_no, action, expires_at, now } => {
                if let Some(p) = payments.get_mut(payment_id) {
                    if p.provider_trade_no.is_none() {
                        p.provider_trade_no = provider_trade_no.clone();
                    }
                    p.action = serde_json::from_str(action).ok();
                    p.updated_at = *now;
                    if let Some(e) = expires_at {
                        p.expires_at = p.expires_at.min(*e);
                    }
                }
                updates.push((
                    &st.record_created,
                    vec![
                        Box::new(payment_id.clone()),
                        Box::new(provider_trade_no.clone()),
                        Box::new(action.clone()),
                        Box::new(*now),
                        Box::new(*expires_at),
                    ],
                ));
                done[i] = Some(Ok(Done::Recorded));
            }
            Write::Settle { payment_id, settlement, now } => {
                let Some(p) = payments.get_mut(payment_id) else {
                    done[i] = Some(Err(err(format!("no payment {payment_id}"))));
                    continue;
                };
                if !apply_settlement(p, settlement, *now) {
                    done[i] = Some(Ok(Done::Settled(Box::new(Settled::Unchanged(p.clone())))));
                    continue;
                }
                updates.push((
                    &st.settle_payment,
                    vec![
                        Box::new(p.payment_id.clone()),
                        Box::new(p.status.as_str()),
                        Box::new(p.provider_trade_no.clone()),
                        Box::new(p.paid_amount),
                        Box::new(p.paid_at),
                        Box::new(*now),
                    ],
                ));
                events.extend(settlement_event(p, settlement, *now));
                if let Some(a) = &settlement.anomaly {
                    anomalies.push((a, *now));
                }
                done[i] = Some(Ok(Done::Settled(Box::new(Settled::Moved(p.clone())))));
            }
            _ => {}
        }
    }
    if !events.is_empty() {
        updates.push((
            &st.insert_events,
            vec![
                column(&events, |e| e.id.clone()),
                column(&events, |e| e.merchant_id.clone()),
                column(&events, |e| e.payment_id.clone()),
                column(&events, |e| e.kind.as_str()),
                column(&events, |e| e.notify_url.clone()),
                column(&events, |e| e.body.clone()),
                column(&events, |e| e.created_at),
            ],
        ));
    }
    for (a, now) in anomalies {
        let values: Values = vec![
            Box::new(a.kind.as_str()),
            Box::new(a.payment_id.clone()),
            Box::new(a.provider.clone()),
            Box::new(serde_json::to_string(&a.detail).unwrap_or_default()),
            Box::new(now),
        ];
        updates.push((&st.insert_anomaly, values));
    }
    let params: Vec<_> = updates.iter().map(|(_, v)| refs(v)).collect();
    let statements = updates.iter().zip(&params).map(|((s, _), p)| (*s, p));
    try_join_all(statements.map(|(s, p)| tx.execute(s, p))).await.map_err(err)?;

    // Nonces older than the window go once a minute (a row still there is taken over anyway),
    // after the commit: inside the batch the DELETE could wait for a nonce row another batch
    // is taking over while that batch waits for a payment this one holds.
    let mut purge = None;
    if let Some(not_before) = writes
        .iter()
        .filter_map(|w| match w {
            Write::Nonce { not_before, .. } => Some(*not_before),
            _ => None,
        })
        .min()
    {
        // `last_purge` holds the cut-off of the last purge.
        let last = last_purge.load(Ordering::Relaxed);
        if not_before - last >= 60
            && last_purge.compare_exchange(last, not_before, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            purge = Some(not_before);
        }
    }
    tx.commit().await.map_err(err)?;
    if let Some(not_before) = purge {
        if let Err(e) = client.execute(&st.purge_nonces, &[&not_before]).await {
            tracing::warn!(error = %e, "old nonces not purged; the next purge takes them");
            last_purge.store(0, Ordering::Relaxed);
        }
    }
    Ok(done.into_iter().map(|d| d.unwrap_or_else(|| Err(err("a write the batch did not run")))).collect())
}

/// One array parameter: `f` of each row.
fn column<R, T: ToSql + Sync + Send + 'static>(rows: &[R], f: impl Fn(&R) -> T) -> Box<dyn ToSql + Sync + Send> {
    Box::new(rows.iter().map(f).collect::<Vec<T>>())
}

fn insert_values(p: &Payment, fingerprint: &str, first_check_at: i64) -> Values {
    let action = p.action.as_ref().map(|a| serde_json::to_string(a).expect("action serializes"));
    vec![
        Box::new(p.payment_id.clone()),
        Box::new(p.merchant_id.clone()),
        Box::new(p.out_trade_no.clone()),
        Box::new(p.amount),
        Box::new(p.currency.clone()),
        Box::new(p.subject.clone()),
        Box::new(p.description.clone()),
        Box::new(p.channel.as_str()),
        Box::new(p.scene.as_str()),
        Box::new(p.status.as_str()),
        Box::new(p.provider.clone()),
        Box::new(p.provider_trade_no.clone()),
        Box::new(p.paid_amount),
        Box::new(p.paid_at),
        Box::new(p.refunded_amount),
        Box::new(p.attach.clone()),
        Box::new(p.notify_url.clone()),
        Box::new(p.return_url.clone()),
        Box::new(action),
        Box::new(p.created_at),
        Box::new(p.updated_at),
        Box::new(fingerprint.to_string()),
        Box::new(p.expires_at),
        Box::new(p.door.as_ref().map(crate::model::Door::to_json)),
        Box::new(first_check_at),
    ]
}
