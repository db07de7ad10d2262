CREATE TABLE payments (
    payment_id        TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,
    out_trade_no      TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    amount            BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    subject           TEXT NOT NULL,
    description       TEXT NOT NULL,
    channel           TEXT NOT NULL,
    scene             TEXT NOT NULL,
    status            TEXT NOT NULL,
    provider          TEXT NOT NULL,
    provider_trade_no TEXT,
    paid_amount       BIGINT,
    paid_at           BIGINT,
    refunded_amount   BIGINT NOT NULL DEFAULT 0,
    attach            TEXT,
    notify_url        TEXT,
    return_url        TEXT,
    action            TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (merchant_id, out_trade_no)
);
CREATE INDEX payments_pending ON payments (status, provider);
CREATE TABLE events (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL,
    payment_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    notify_url      TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    claimed_until   BIGINT
);
CREATE INDEX events_due ON events (state, next_attempt_at);
CREATE INDEX events_payment ON events (payment_id, seq);
CREATE TABLE nonces (
    merchant_id TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, nonce)
);
CREATE INDEX nonces_seen ON nonces (seen_at);
CREATE TABLE refunds (
    refund_id          TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL,
    out_refund_no      TEXT NOT NULL,
    payment_id         TEXT NOT NULL REFERENCES payments (payment_id),
    out_trade_no       TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    reason             TEXT,
    status             TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_refund_no TEXT,
    fingerprint        TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (merchant_id, out_refund_no)
);
CREATE INDEX refunds_payment ON refunds (payment_id, status);
CREATE TABLE payouts (
    payout_id          TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL,
    out_payout_no      TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    payee              TEXT NOT NULL,
    remark             TEXT,
    status             TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_payout_no TEXT,
    notify_url         TEXT,
    fingerprint        TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (merchant_id, out_payout_no)
);
