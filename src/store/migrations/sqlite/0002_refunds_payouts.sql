CREATE TABLE refunds (
    refund_id          TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL,
    out_refund_no      TEXT NOT NULL,
    payment_id         TEXT NOT NULL REFERENCES payments (payment_id),
    out_trade_no       TEXT NOT NULL,
    amount             INTEGER NOT NULL,
    reason             TEXT,
    status             TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_refund_no TEXT,
    fingerprint        TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (merchant_id, out_refund_no)
);
CREATE INDEX refunds_payment ON refunds (payment_id, status);
CREATE TABLE payouts (
    payout_id          TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL,
    out_payout_no      TEXT NOT NULL,
    amount             INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    payee              TEXT NOT NULL,
    remark             TEXT,
    status             TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_payout_no TEXT,
    notify_url         TEXT,
    fingerprint        TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (merchant_id, out_payout_no)
);
