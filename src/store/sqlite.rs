//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a write that
//! returned survives a `kill -9` and a power cut. One connection behind a mutex, used from
//! tokio's blocking pool; migrations are embedded and applied on open.

use super::nonces::{Nonces, NONCE_KEEP_SECS};
use super::rows::{self, Columns, EVENT_COLUMNS, PAYMENT_COLUMNS, PAYOUT_COLUMNS, REFUND_COLUMNS};
use super::*;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::Mutex;

/// The schema, one .sql file a version (`migrations/sqlite/`), applied in order on open;
/// a database records how many it has applied, so a file once released never changes.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_payments_events_nonces.sql"),
    include_str!("migrations/sqlite/0002_refunds_payouts.sql"),
    include_str!("migrations/sqlite/0003_event_claims.sql"),
    include_str!("migrations/sqlite/0004_payment_checks.sql"),
    include_str!("migrations/sqlite/0005_transfer_checks.sql"),
    include_str!("migrations/sqlite/0006_timeline.sql"),
    include_str!("migrations/sqlite/0007_payment_door.sql"),
    include_str!("migrations/sqlite/0008_anomalies.sql"),
    include_str!("migrations/sqlite/0009_console_indexes.sql"),
    include_str!("migrations/sqlite/0010_nonces_without_rowid.sql"),
];

pub struct SqliteStore {
    /// The writer thread's queue: every write (and every scan) runs on one connection in a
    /// thread of its own (see `write_batches`), since a durable commit waits for an fsync.
    writes: std::sync::mpsc::Sender<Job>,
    /// A read-only connection for point lookups, used in place on the calling task: a lookup by
    /// key takes microseconds, less than the hop to the blocking pool and back, and WAL lets it
    /// read the last commit while the writer is busy.
    reader: Mutex<Connection>,
    /// Seen request nonces. One SQLite file serves one gateway process, so process memory
    /// answers "seen before?"; each new nonce is also appended to the nonce journal beside the
    /// database file before its request is answered, and read back on open (`nonces.rs`).
    nonces: Mutex<Nonces>,
}

/// Due events, oldest first, skipping any whose payment has an older event still pending (a
/// merchant hears a payment's events in order). The indexes are named: with the console's
/// `events_state_recent (state, seq)` SQLite otherwise answers the per-payment check by walking
/// every older pending event, so a claim cost grew with the outbox (4,000 pending events:
/// 2 ms of writer time a callback).
fn claim_due_events_sql() -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events e INDEXED BY events_due
         WHERE e.state = 'pending' AND e.next_attempt_at <= ?1
         AND (e.claimed_until IS NULL OR e.claimed_until < ?1)
         AND NOT EXISTS (SELECT 1 FROM events p INDEXED BY events_payment
                         WHERE p.payment_id = e.payment_id AND p.seq < e.seq AND p.state = 'pending')
         ORDER BY e.seq LIMIT ?2"
    )
}

/// Work for the writer: runs on the connection and returns what to do once its batch's commit
/// succeeded (`Ok`) or failed.
type Job = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Group commit: the writer takes every job waiting (up to 256), runs them in one transaction,
/// each inside its own savepoint so a failing job undoes only itself, and commits once; one
/// fsync then serves the whole batch. Answers go out only after the commit, so no caller hears
/// "done" before its write is durable.
fn write_batches(mut conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let e = e.to_string();
            // Not run: each job's answer is the error (its reply is made by running it on a
            // connection it cannot change, so it is never run).
            drop(batch);
            tracing::error!(error = %e, "the store cannot begin a transaction");
            continue;
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut lost = false;
        for job in batch {
            if lost {
                // SQLite ended the transaction (an I/O error rolls it back): the rest waits
                // for no commit; dropping a job answers its caller with an error.
                drop(job);
                continue;
            }
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn))) {
                Ok(reply) => replies.push(reply),
                Err(_) => tracing::error!("a store job panicked; its caller gets an error"),
            }
            lost = conn.is_autocommit();
        }
        let committed = if lost {
            Err("the transaction was rolled back by SQLite".to_string())
        } else {
            conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        };
        if committed.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

/// Runs one statement through the connection's statement cache (`Connection::execute` parses
/// the SQL again on every call).
fn exec<P: rusqlite::Params>(c: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(params)
}

fn err(e: impl fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Stores written before the nonce journal (2026-12-03) kept nonces in the `nonces` table: the
/// window's rows go into the journal once, then the table is emptied (nothing writes it now).
fn move_table_nonces(conn: &Connection, nonces: &mut Nonces, now: i64) -> StoreResult<()> {
    let not_before = now - NONCE_KEEP_SECS;
    let mut stmt = conn
        .prepare("SELECT merchant_id, nonce, seen_at FROM nonces WHERE seen_at >= ?1 ORDER BY seen_at")
        .map_err(err)?;
    let rows = stmt
        .query_map(params![not_before], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
        .map_err(err)?;
    for row in rows {
        let (merchant, nonce, seen_at) = row.map_err(err)?;
        nonces.first_use(&merchant, &nonce, seen_at, not_before).map_err(|e| err(format!("the nonce journal: {e}")))?;
    }
    conn.execute("DELETE FROM nonces", []).map_err(err)?;
    Ok(())
}

impl SqliteStore {
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || -> StoreResult<(Connection, Connection, Nonces)> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
            }
            let mut conn = Connection::open(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
            conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
            conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
            migrate(&mut conn)?;
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let reader =
                Connection::open_with_flags(&path, flags).map_err(|e| err(format!("{}: {e}", path.display())))?;
            reader.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
            // The nonces of the last window, so replays across a restart are refused.
            let now = crate::model::now_unix();
            let mut nonces = Nonces::open(&path, now).map_err(|e| err(format!("the nonce journal: {e}")))?;
            move_table_nonces(&conn, &mut nonces, now)?;
            Ok((conn, reader, nonces))
        })
        .await
        .map_err(err)??;
        let (conn, reader, nonces) = opened;
        let (writes, jobs) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("payglot-sqlite-writer".into())
            .spawn(move || write_batches(conn, jobs))
            .map_err(|e| err(format!("cannot start the store's writer: {e}")))?;
        Ok(SqliteStore { writes, reader: Mutex::new(reader), nonces: Mutex::new(nonces) })
    }

    /// Runs a point lookup on the reader connection, in place.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let guard = self.reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard).map_err(err)
    }

    /// Runs `f` on the writer connection, inside the writer's current batch (`f` makes its own
    /// savepoint where it needs one), and answers once that batch is durably committed.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn).map_err(err);
            Box::new(move |committed| {
                let _ = answer.send(match committed {
                    Ok(()) => result,
                    Err(e) => Err(err(format!("commit failed: {e}"))),
                });
            })
        });
        let stopped = || err("the store could not run this (its log says why)");
        self.writes.send(job).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

impl Columns for Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(err)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(err)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(err)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(err)
    }
}

/// A shared row mapping's error, as rusqlite's row closures want it.
fn to_sqlite(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

fn payment_row(row: &Row<'_>) -> rusqlite::Result<(Payment, String)> {
    rows::payment(row).map_err(to_sqlite)
}

fn refund_row(row: &Row<'_>) -> rusqlite::Result<(Refund, String)> {
    rows::refund(row).map_err(to_sqlite)
}

fn payout_row(row: &Row<'_>) -> rusqlite::Result<(Payout, String)> {
    rows::payout(row).map_err(to_sqlite)
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<OutboxEvent> {
    rows::event(row).map_err(to_sqlite)
}

/// A shared statement in SQLite's spelling: `$n` placeholders become `?n` (numbered, bound by
/// position as rusqlite binds them). Made once per statement and kept, so the statement cache
/// sees the same text every time.
fn sql(shared: &'static str) -> &'static str {
    static MADE: std::sync::OnceLock<Mutex<std::collections::HashMap<usize, &'static str>>> =
        std::sync::OnceLock::new();
    let mut made = MADE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    made.entry(shared.as_ptr() as usize).or_insert_with(|| Box::leak(shared.replace('$', "?").into_boxed_str()))
}

fn load_payment(conn: &Connection, payment_id: &str) -> rusqlite::Result<Option<Payment>> {
    conn.prepare_cached(sql(rows::sql::PAYMENT_BY_ID))?
        .query_row(params![payment_id], payment_row)
        .optional()
        .map(|o| o.map(|(p, _)| p))
}

fn insert_event(conn: &Connection, e: &NewEvent) -> rusqlite::Result<()> {
    exec(
        conn,
        sql(rows::sql::INSERT_EVENT),
        params![e.id, e.merchant_id, e.payment_id, e.kind.as_str(), e.notify_url, e.body, e.created_at],
    )
    .map(|_| ())
}

fn insert_anomaly(conn: &Connection, a: &NewAnomaly, now: i64) -> rusqlite::Result<bool> {
    let detail = serde_json::to_string(&a.detail).unwrap_or_default();
    let n =
        exec(conn, sql(rows::sql::INSERT_ANOMALY), params![a.kind.as_str(), a.payment_id, a.provider, detail, now])?;
    Ok(n == 1)
}

fn load_refund(conn: &Connection, refund_id: &str) -> rusqlite::Result<Option<Refund>> {
    conn.prepare_cached(sql(rows::sql::REFUND_BY_ID))?
        .query_row(params![refund_id], refund_row)
        .optional()
        .map(|o| o.map(|(r, _)| r))
}

fn load_payout(conn: &Connection, payout_id: &str) -> rusqlite::Result<Option<Payout>> {
    conn.prepare_cached(sql(rows::sql::PAYOUT_BY_ID))?
        .query_row(params![payout_id], payout_row)
        .optional()
        .map(|o| o.map(|(p, _)| p))
}

#[async_trait]
impl Store for SqliteStore {
    async fn remember_nonce(&self, merchant_id: &str, nonce: &str, now: i64, not_before: i64) -> StoreResult<bool> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.first_use(merchant_id, nonce, now, not_before).map_err(|e| err(format!("the nonce journal: {e}")))
    }

    async fn insert_payment(&self, payment: &Payment, fingerprint: &str, first_check_at: i64) -> StoreResult<Inserted> {
        let p = payment.clone();
        let fingerprint = fingerprint.to_string();
        self.run(move |c| {
            let tx = c.savepoint()?;
            let existing = tx
                .prepare_cached(sql(rows::sql::PAYMENT_BY_OUT_TRADE_NO))?
                .query_row(params![p.merchant_id, p.out_trade_no], payment_row)
                .optional()?;
            if let Some((existing, fp)) = existing {
                return Ok(Inserted::Existing(Box::new(existing), fp));
            }
            exec(
                &tx,
                sql(rows::sql::INSERT_PAYMENT),
                params![
                    p.payment_id,
                    p.merchant_id,
                    p.out_trade_no,
                    p.amount,
                    p.currency,
                    p.subject,
                    p.description,
                    p.channel.as_str(),
                    p.scene.as_str(),
                    p.status.as_str(),
                    p.provider,
                    p.provider_trade_no,
                    p.paid_amount,
                    p.paid_at,
                    p.refunded_amount,
                    p.attach,
                    p.notify_url,
                    p.return_url,
                    p.action.as_ref().map(|a| serde_json::to_string(a).expect("action serializes")),
                    p.created_at,
                    p.updated_at,
                    fingerprint,
                    p.expires_at,
                    p.door.as_ref().map(Door::to_json),
                    first_check_at
                ],
            )?;
            tx.commit()?;
            Ok(Inserted::New)
        })
        .await
    }

    async fn set_payment_provider(&self, payment_id: &str, provider: &str, now: i64) -> StoreResult<()> {
        let (payment_id, provider) = (payment_id.to_string(), provider.to_string());
        self.run(move |c| exec(c, sql(rows::sql::SET_PAYMENT_PROVIDER), params![payment_id, provider, now]).map(|_| ()))
            .await
    }

    async fn record_created(
        &self,
        payment_id: &str,
        provider_trade_no: Option<&str>,
        action: &Action,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let payment_id = payment_id.to_string();
        let trade_no = provider_trade_no.map(str::to_string);
        let action = serde_json::to_string(action).expect("action serializes");
        self.run(move |c| {
            exec(c,
                "UPDATE payments SET provider_trade_no = COALESCE(provider_trade_no, ?2), action = ?3, updated_at = ?4, expires_at = MIN(expires_at, COALESCE(?5, expires_at)) WHERE payment_id = ?1",
                params![payment_id, trade_no, action, now, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn record_anomaly(&self, a: &NewAnomaly, now: i64) -> StoreResult<bool> {
        let a = a.clone();
        self.run(move |c| insert_anomaly(c, &a, now)).await
    }

    async fn anomalies(
        &self,
        provider: Option<&str>,
        payment_id: Option<&str>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> StoreResult<Vec<Anomaly>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql(rows::sql::ANOMALIES))?;
            let rows = stmt.query_map(params![provider, payment_id, from, to, limit as i64], |r| {
                let detail: String = r.get(3)?;
                Ok(Anomaly {
                    kind: r.get(0)?,
                    payment_id: r.get(1)?,
                    provider: r.get(2)?,
                    detail: serde_json::from_str(&detail).unwrap_or_default(),
                    created_at: crate::model::rfc3339(r.get(4)?),
                })
            })?;
            rows.collect()
        })
    }

    async fn fail_unaccepted(&self, payment_id: &str, now: i64) -> StoreResult<()> {
        let payment_id = payment_id.to_string();
        self.run(move |c| exec(c, sql(rows::sql::FAIL_UNACCEPTED), params![payment_id, now]).map(|_| ())).await
    }

    async fn payment_by_out_trade_no(&self, merchant_id: &str, out_trade_no: &str) -> StoreResult<Option<Payment>> {
        self.read(|c| {
            c.prepare_cached(sql(rows::sql::PAYMENT_BY_OUT_TRADE_NO))?
                .query_row(params![merchant_id, out_trade_no], payment_row)
                .optional()
                .map(|o| o.map(|(p, _)| p))
        })
    }

    async fn payment_by_id(&self, payment_id: &str) -> StoreResult<Option<Payment>> {
        self.read(|c| load_payment(c, payment_id))
    }

    async fn settle_payment(&self, payment_id: &str, s: &Settlement, now: i64) -> StoreResult<Settled> {
        let payment_id = payment_id.to_string();
        let s = s.clone();
        self.run(move |c| {
            let tx = c.savepoint()?;
            let Some(mut p) = load_payment(&tx, &payment_id)? else {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            };
            if !apply_settlement(&mut p, &s, now) {
                return Ok(Settled::Unchanged(p));
            }
            exec(
                &tx,
                sql(rows::sql::SETTLE_PAYMENT),
                params![p.payment_id, p.status.as_str(), p.provider_trade_no, p.paid_amount, p.paid_at, now],
            )?;
            if let Some(e) = settlement_event(&p, &s, now) {
                insert_event(&tx, &e)?;
            }
            if let Some(a) = &s.anomaly {
                insert_anomaly(&tx, a, now)?;
            }
            tx.commit()?;
            Ok(Settled::Moved(p))
        })
        .await
    }

    async fn insert_refund(&self, refund: &Refund, fingerprint: &str) -> StoreResult<RefundInserted> {
        let r = refund.clone();
        let fingerprint = fingerprint.to_string();
        self.run(move |c| {
            let tx = c.savepoint()?;
            let existing = tx
                .prepare_cached(sql(rows::sql::REFUND_BY_OUT_NO))?
                .query_row(params![r.merchant_id, r.out_refund_no], refund_row)
                .optional()?;
            if let Some((existing, fp)) = existing {
                return Ok(RefundInserted::Existing(Box::new(existing), fp));
            }
            let Some(payment) = load_payment(&tx, &r.payment_id)? else {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            };
            let in_progress: i64 =
                tx.query_row(sql(rows::sql::REFUNDS_IN_PROGRESS), params![r.payment_id], |row| row.get(0))?;
            if let Some(refused) = rows::refund_refusal(&payment, in_progress, r.amount) {
                return Ok(refused);
            }
            exec(
                &tx,
                sql(rows::sql::INSERT_REFUND),
                params![
                    r.refund_id,
                    r.out_refund_no,
                    r.merchant_id,
                    r.payment_id,
                    r.out_trade_no,
                    r.amount,
                    r.reason,
                    r.status.as_str(),
                    r.provider,
                    r.provider_refund_no,
                    r.created_at,
                    r.updated_at,
                    fingerprint
                ],
            )?;
            tx.commit()?;
            Ok(RefundInserted::New)
        })
        .await
    }

    async fn settle_refund(
        &self,
        refund_id: &str,
        status: TransferStatus,
        provider_refund_no: Option<&str>,
        emit: bool,
        now: i64,
    ) -> StoreResult<Refund> {
        let refund_id = refund_id.to_string();
        let provider_refund_no = provider_refund_no.map(str::to_string);
        self.run(move |c| {
            let tx = c.savepoint()?;
            let Some(mut r) = load_refund(&tx, &refund_id)? else {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            };
            let moves = rows::settle_transfer(
                &mut r.status,
                &mut r.provider_refund_no,
                &mut r.updated_at,
                status,
                provider_refund_no.as_deref(),
                now,
            );
            exec(
                &tx,
                sql(rows::sql::SETTLE_REFUND),
                params![r.refund_id, r.status.as_str(), r.provider_refund_no, now],
            )?;
            if moves && status == TransferStatus::Succeeded {
                exec(&tx, sql(rows::sql::ADD_REFUNDED), params![r.payment_id, r.amount, now])?;
            }
            if moves && emit {
                let payment = load_payment(&tx, &r.payment_id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                if let Some(e) = NewEvent::for_refund(&r, &payment, now) {
                    insert_event(&tx, &e)?;
                }
            }
            tx.commit()?;
            Ok(r)
        })
        .await
    }

    async fn refund_by_out_no(&self, merchant_id: &str, out_refund_no: &str) -> StoreResult<Option<Refund>> {
        self.read(|c| {
            c.prepare_cached(sql(rows::sql::REFUND_BY_OUT_NO))?
                .query_row(params![merchant_id, out_refund_no], refund_row)
                .optional()
                .map(|o| o.map(|(r, _)| r))
        })
    }

    async fn insert_payout(&self, payout: &Payout, fingerprint: &str) -> StoreResult<PayoutInserted> {
        let p = payout.clone();
        let fingerprint = fingerprint.to_string();
        self.run(move |c| {
            let tx = c.savepoint()?;
            let existing = tx
                .prepare_cached(sql(rows::sql::PAYOUT_BY_OUT_NO))?
                .query_row(params![p.merchant_id, p.out_payout_no], payout_row)
                .optional()?;
            if let Some((existing, fp)) = existing {
                return Ok(PayoutInserted::Existing(Box::new(existing), fp));
            }
            exec(
                &tx,
                sql(rows::sql::INSERT_PAYOUT),
                params![
                    p.payout_id,
                    p.out_payout_no,
                    p.merchant_id,
                    p.amount,
                    p.currency,
                    serde_json::to_string(&p.payee).expect("payee serializes"),
                    p.remark,
                    p.status.as_str(),
                    p.provider,
                    p.provider_payout_no,
                    p.notify_url,
                    p.created_at,
                    p.updated_at,
                    fingerprint
                ],
            )?;
            tx.commit()?;
            Ok(PayoutInserted::New)
        })
        .await
    }

    async fn settle_payout(
        &self,
        payout_id: &str,
        status: TransferStatus,
        provider_payout_no: Option<&str>,
        emit: bool,
        now: i64,
    ) -> StoreResult<Payout> {
        let payout_id = payout_id.to_string();
        let provider_payout_no = provider_payout_no.map(str::to_string);
        self.run(move |c| {
            let tx = c.savepoint()?;
            let Some(mut p) = load_payout(&tx, &payout_id)? else {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            };
            let moves = rows::settle_transfer(
                &mut p.status,
                &mut p.provider_payout_no,
                &mut p.updated_at,
                status,
                provider_payout_no.as_deref(),
                now,
            );
            exec(
                &tx,
                sql(rows::sql::SETTLE_PAYOUT),
                params![p.payout_id, p.status.as_str(), p.provider_payout_no, now],
            )?;
            if moves && emit {
                if let Some(e) = NewEvent::for_payout(&p, now) {
                    insert_event(&tx, &e)?;
                }
            }
            tx.commit()?;
            Ok(p)
        })
        .await
    }

    async fn payout_by_out_no(&self, merchant_id: &str, out_payout_no: &str) -> StoreResult<Option<Payout>> {
        self.read(|c| {
            c.prepare_cached(sql(rows::sql::PAYOUT_BY_OUT_NO))?
                .query_row(params![merchant_id, out_payout_no], payout_row)
                .optional()
                .map(|o| o.map(|(p, _)| p))
        })
    }

    async fn payout_by_id(&self, payout_id: &str) -> StoreResult<Option<Payout>> {
        self.read(|c| load_payout(c, payout_id))
    }

    async fn open_counts(&self, providers: &[String]) -> StoreResult<Vec<(String, i64)>> {
        let providers = providers.to_vec();
        self.run(move |c| {
            let mut out = Vec::new();
            for p in providers {
                let n: i64 = c.query_row(sql(rows::sql::OPEN_COUNT), params![p], |row| row.get(0))?;
                out.push((p, n));
            }
            Ok(out)
        })
        .await
    }

    async fn claim_due_checks(&self, now: i64, limit: usize, lease_secs: i64) -> StoreResult<Vec<(Payment, u32)>> {
        self.run(move |c| {
            let tx = c.savepoint()?;
            let due: Vec<(Payment, u32)> = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {PAYMENT_COLUMNS}, checks FROM payments WHERE status = 'pending' AND next_check_at <= ?1
                     AND (check_claimed_until IS NULL OR check_claimed_until < ?1) ORDER BY next_check_at LIMIT ?2"
                ))?;
                let rows = stmt
                    .query_map(params![now, limit as i64], |row| Ok((payment_row(row)?.0, row.get::<_, u32>(24)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (p, _) in &due {
                exec(
                    &tx,
                    "UPDATE payments SET check_claimed_until = ?2 WHERE payment_id = ?1",
                    params![p.payment_id, now + lease_secs],
                )?;
            }
            tx.commit()?;
            Ok(due)
        })
        .await
    }

    async fn claim_due_transfer_checks(
        &self,
        now: i64,
        first_delay: i64,
        limit: usize,
        lease_secs: i64,
    ) -> StoreResult<(Vec<(Refund, u32)>, Vec<(Payout, u32)>)> {
        self.run(move |c| {
            let tx = c.savepoint()?;
            let due = "status = 'pending' AND COALESCE(next_check_at, created_at + ?2) <= ?1 AND (check_claimed_until IS NULL OR check_claimed_until < ?1)";
            let refunds: Vec<(Refund, u32)> = {
                let mut stmt = tx.prepare_cached(&format!("SELECT {REFUND_COLUMNS}, checks FROM refunds WHERE {due} LIMIT ?3"))?;
                let rows = stmt.query_map(params![now, first_delay, limit as i64], |r| Ok((refund_row(r)?.0, r.get::<_, u32>(13)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let payouts: Vec<(Payout, u32)> = {
                let mut stmt = tx.prepare_cached(&format!("SELECT {PAYOUT_COLUMNS}, checks FROM payouts WHERE {due} LIMIT ?3"))?;
                let rows = stmt.query_map(params![now, first_delay, limit as i64], |r| Ok((payout_row(r)?.0, r.get::<_, u32>(14)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (r, _) in &refunds {
                exec(&tx, "UPDATE refunds SET check_claimed_until = ?2 WHERE refund_id = ?1", params![r.refund_id, now + lease_secs])?;
            }
            for (p, _) in &payouts {
                exec(&tx, "UPDATE payouts SET check_claimed_until = ?2 WHERE payout_id = ?1", params![p.payout_id, now + lease_secs])?;
            }
            tx.commit()?;
            Ok((refunds, payouts))
        })
        .await
    }

    async fn schedule_transfer_check(
        &self,
        is_refund: bool,
        id: &str,
        next_check_at: Option<i64>,
        checks: u32,
    ) -> StoreResult<()> {
        let id = id.to_string();
        let sql = if is_refund { sql(rows::sql::SCHEDULE_REFUND_CHECK) } else { sql(rows::sql::SCHEDULE_PAYOUT_CHECK) };
        self.run(move |c| exec(c, sql, params![id, next_check_at.unwrap_or(i64::MAX), checks]).map(|_| ())).await
    }

    async fn payments_created_between(&self, provider: &str, from: i64, to: i64) -> StoreResult<Vec<Payment>> {
        let provider = provider.to_string();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql(rows::sql::PAYMENTS_CREATED_BETWEEN))?;
            let rows = stmt.query_map(params![provider, from, to], |r| Ok(payment_row(r)?.0))?;
            rows.collect()
        })
        .await
    }

    async fn schedule_check(&self, payment_id: &str, next_check_at: Option<i64>, checks: u32) -> StoreResult<()> {
        let payment_id = payment_id.to_string();
        self.run(move |c| {
            exec(c, sql(rows::sql::SCHEDULE_CHECK), params![payment_id, next_check_at, checks]).map(|_| ())
        })
        .await
    }

    async fn claim_due_events(&self, now: i64, limit: usize, lease_secs: i64) -> StoreResult<Vec<OutboxEvent>> {
        self.run(move |c| {
            let tx = c.savepoint()?;
            let events: Vec<OutboxEvent> = {
                let mut stmt = tx.prepare_cached(&claim_due_events_sql())?;
                let rows = stmt.query_map(params![now, limit as i64], event_row)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for e in &events {
                exec(&tx, "UPDATE events SET claimed_until = ?2 WHERE id = ?1", params![e.id, now + lease_secs])?;
            }
            tx.commit()?;
            Ok(events)
        })
        .await
    }

    async fn mark_delivered(&self, event_id: &str, now: i64) -> StoreResult<()> {
        let event_id = event_id.to_string();
        self.run(move |c| {
            exec(c,
                "UPDATE events SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = NULL, claimed_until = NULL WHERE id = ?1",
                params![event_id, now],
            )
            .map(|_| ())
        })
        .await
    }

    async fn mark_attempt_failed(&self, event_id: &str, error: &str, next: Option<i64>, _now: i64) -> StoreResult<()> {
        let (event_id, error) = (event_id.to_string(), error.to_string());
        self.run(move |c| {
            let state = if next.is_some() { "pending" } else { "failed" };
            exec(c,
                "UPDATE events SET state = ?2, attempts = attempts + 1, next_attempt_at = COALESCE(?3, next_attempt_at), last_error = ?4, claimed_until = NULL WHERE id = ?1",
                params![event_id, state, next, error],
            )
            .map(|_| ())
        })
        .await
    }

    async fn events_for_payment(&self, payment_id: &str) -> StoreResult<Vec<(OutboxEvent, EventState)>> {
        let payment_id = payment_id.to_string();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS}, state FROM events WHERE payment_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt.query_map(params![payment_id], |row| {
                let state: String = row.get(8)?;
                let state = match state.as_str() {
                    "delivered" => EventState::Delivered,
                    "failed" => EventState::Failed,
                    _ => EventState::Pending,
                };
                Ok((event_row(row)?, state))
            })?;
            rows.collect()
        })
        .await
    }

    async fn list_events(
        &self,
        merchant_id: Option<&str>,
        state: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<EventSummary>> {
        // Only the filters given are in the statement, so each can use its index (SQLite
        // plans `?1 IS NULL OR merchant_id = ?1` as a full scan).
        const COLUMNS: &str = "SELECT id, merchant_id, payment_id, kind, state, attempts, last_error, next_attempt_at, created_at, delivered_at FROM events";
        let filter = match (merchant_id.is_some(), state.is_some()) {
            (true, true) => "WHERE merchant_id = ?1 AND state = ?2",
            (true, false) => "WHERE merchant_id = ?1 AND ?2 IS NULL",
            (false, true) => "WHERE ?1 IS NULL AND state = ?2",
            (false, false) => "WHERE ?1 IS NULL AND ?2 IS NULL",
        };
        let statement = format!("{COLUMNS} {filter} ORDER BY seq DESC LIMIT ?3");
        self.read(|c| {
            let mut stmt = c.prepare_cached(&statement)?;
            let rows = stmt.query_map(params![merchant_id, state, limit as i64], |r| {
                Ok(EventSummary {
                    id: r.get(0)?,
                    merchant_id: r.get(1)?,
                    order_id: r.get(2)?,
                    kind: r.get(3)?,
                    state: r.get(4)?,
                    attempts: r.get(5)?,
                    last_error: r.get(6)?,
                    next_attempt_at: r.get(7)?,
                    created_at: r.get(8)?,
                    delivered_at: r.get(9)?,
                })
            })?;
            rows.collect()
        })
    }

    async fn replay_event(&self, event_id: &str, now: i64) -> StoreResult<bool> {
        let event_id = event_id.to_string();
        self.run(move |c| {
            exec(
                c,
                "UPDATE events SET state = 'pending', next_attempt_at = ?2, claimed_until = NULL WHERE id = ?1",
                params![event_id, now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn replay_events(
        &self,
        merchant_id: &str,
        state: EventState,
        from: i64,
        to: i64,
        now: i64,
    ) -> StoreResult<u64> {
        let merchant_id = merchant_id.to_string();
        self.run(move |c| {
            exec(c, sql(rows::sql::REPLAY_EVENTS), params![merchant_id, state.as_str(), from, to, now])
                .map(|n| n as u64)
        })
        .await
    }

    async fn append_timeline(&self, entries: Vec<TimelineEntry>) -> StoreResult<()> {
        self.run(move |c| {
            let tx = c.savepoint()?;
            {
                let mut insert =
                    tx.prepare_cached("INSERT INTO timeline (subject, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)")?;
                for e in &entries {
                    insert.execute(params![
                        e.subject,
                        e.at_ms,
                        e.kind,
                        serde_json::to_string(&e.detail).unwrap_or_default()
                    ])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn timeline(&self, subject: &str) -> StoreResult<Vec<TimelineEntry>> {
        let subject = subject.to_string();
        self.run(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT subject, at_ms, kind, detail FROM timeline WHERE subject = ?1 ORDER BY seq")?;
            let rows = stmt.query_map(params![subject], |r| {
                let detail: String = r.get(3)?;
                Ok(TimelineEntry {
                    subject: r.get(0)?,
                    at_ms: r.get(1)?,
                    kind: r.get(2)?,
                    detail: serde_json::from_str(&detail).unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth> {
        self.run(|c| {
            c.query_row(sql(rows::sql::OUTBOX_DEPTH), [], |r| {
                Ok(OutboxDepth { pending: r.get(0)?, oldest_created_at: r.get(1)? })
            })
        })
        .await
    }

    async fn list_payments(&self, filter: &PaymentFilter, limit: usize) -> StoreResult<Vec<Payment>> {
        let (statement, params) = rows::list_payments(filter, limit);
        let statement = statement.replace('$', "?");
        self.read(|c| {
            let mut stmt = c.prepare_cached(&statement)?;
            let values = params.iter().map(|p| match p {
                rows::Param::Text(t) => rusqlite::types::Value::Text(t.clone()),
                rows::Param::Int(i) => rusqlite::types::Value::Integer(*i),
            });
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| payment_row(r).map(|(p, _)| p))?;
            rows.collect()
        })
    }

    async fn payment_counts(&self, since: i64) -> StoreResult<Vec<PaymentCount>> {
        // Counted here from the covering index, in its order, rather than by GROUP BY: SQLite
        // would sort every row of the day in a temporary B-tree first (3 times slower at
        // 100,000 payments).
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT created_at, provider, status FROM payments INDEXED BY payments_recent WHERE created_at >= ?1",
            )?;
            let mut rows = stmt.query(params![since])?;
            let mut counts: Vec<PaymentCount> = Vec::new();
            // The current hour's counts (a handful of accounts and statuses), searched in place.
            let mut hour_start = 0;
            while let Some(r) = rows.next()? {
                let created: i64 = r.get(0)?;
                let hour = created - created.rem_euclid(3600);
                let (provider, status) = (r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?);
                if counts.last().is_some_and(|last| last.hour != hour) {
                    hour_start = counts.len();
                }
                match counts[hour_start..].iter_mut().find(|c| c.provider == provider && c.status.as_str() == status) {
                    Some(c) => c.count += 1,
                    None => counts.push(PaymentCount {
                        hour,
                        provider: provider.to_string(),
                        status: status.parse().map_err(|e: String| to_sqlite(StoreError(e)))?,
                        count: 1,
                    }),
                }
            }
            Ok(counts)
        })
    }

    async fn refunds_for_payment(&self, payment_id: &str) -> StoreResult<Vec<Refund>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql(rows::sql::REFUNDS_FOR_PAYMENT))?;
            let rows = stmt.query_map(params![payment_id], |r| refund_row(r).map(|(r, _)| r))?;
            rows.collect()
        })
    }

    async fn requery_backlog(&self, now: i64) -> StoreResult<RequeryBacklog> {
        self.read(|c| {
            c.prepare_cached(sql(rows::sql::REQUERY_BACKLOG))?
                .query_row(params![now], |r| Ok(RequeryBacklog { scheduled: r.get(0)?, due: r.get(1)? }))
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[cfg(test)]
mod tests {
    /// The delivery worker claims after every new event: the claim must find due events and
    /// each one's older pending events by index, not by walking the pending outbox.
    #[test]
    fn claiming_due_events_reads_by_index_whatever_the_outbox_holds() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", super::claim_due_events_sql())).unwrap();
        let plan: Vec<String> =
            stmt.query_map([0i64, 10], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
        assert!(plan.iter().any(|l| l.contains("USING INDEX events_due (state=? AND next_attempt_at<?)")), "{plan:?}");
        assert!(plan.iter().any(|l| l.contains("USING INDEX events_payment (payment_id=? AND seq<?)")), "{plan:?}");
        assert!(!plan.iter().any(|l| l.starts_with("SCAN")), "{plan:?}");
    }

    /// A store written before nonces were keyed WITHOUT ROWID, and before the nonce journal,
    /// keeps its nonces of the window through both upgrades: a request replayed across the
    /// upgrade, and after a later restart, is still refused; the table is emptied.
    #[tokio::test]
    async fn nonces_of_an_earlier_store_are_kept_through_its_upgrades() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payglot.db");
        let now = crate::model::now_unix();
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let before = super::MIGRATIONS.iter().position(|m| m.contains("nonces_by_key")).unwrap();
            for (i, sql) in super::MIGRATIONS.iter().take(before).enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
            }
            conn.execute("INSERT INTO nonces (merchant_id, nonce, seen_at) VALUES ('m', 'old-nonce-0001', ?1)", [now])
                .unwrap();
            let past = now - 1000;
            conn.execute("INSERT INTO nonces (merchant_id, nonce, seen_at) VALUES ('m', 'past-nonce-001', ?1)", [past])
                .unwrap();
        }
        let store = super::SqliteStore::open(&path).await.unwrap();
        assert!(store.remember_nonce("m", "past-nonce-001", now, now - 600).await.unwrap(), "past its window");
        assert!(
            !store.remember_nonce("m", "old-nonce-0001", now, now - 600).await.unwrap(),
            "a replay across the upgrade"
        );
        assert!(store.remember_nonce("m", "new-nonce-0001", now, now - 600).await.unwrap());
        drop(store);
        let store = super::SqliteStore::open(&path).await.unwrap();
        for nonce in ["old-nonce-0001", "new-nonce-0001"] {
            assert!(!store.remember_nonce("m", nonce, now, now - 600).await.unwrap(), "{nonce} after a restart");
        }
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let table: String =
            conn.query_row("SELECT sql FROM sqlite_master WHERE name = 'nonces'", [], |r| r.get(0)).unwrap();
        assert!(table.contains("WITHOUT ROWID"), "{table}");
        let left: i64 = conn.query_row("SELECT count(*) FROM nonces", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0, "the journal holds them now");
    }
}
