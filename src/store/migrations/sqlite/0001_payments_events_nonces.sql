CREATE TABLE payments (
    payment_id        TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,
    out_trade_no      TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    subject           TEXT NOT NULL,
    description       TEXT NOT NULL,
    channel           TEXT NOT NULL,
    scene             TEXT NOT NULL,
    status            TEXT NOT NULL,
    provider          TEXT NOT NULL,
    provider_trade_no TEXT,
    paid_amount       INTEGER,
    paid_at           INTEGER,
    refunded_amount   INTEGER NOT NULL DEFAULT 0,
    attach            TEXT,
    notify_url        TEXT,
    return_url        TEXT,
    action            TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (merchant_id, out_trade_no)
);
CREATE INDEX payments_pending ON payments (status, provider);
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    notify_url      TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX events_due ON events (state, next_attempt_at);
CREATE INDEX events_payment ON events (payment_id, seq);
CREATE TABLE nonces (
    merchant_id TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    seen_at     INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, nonce)
);
CREATE INDEX nonces_seen ON nonces (seen_at);
