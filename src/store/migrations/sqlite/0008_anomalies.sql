CREATE TABLE anomalies (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    provider   TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, payment_id, provider)
);
CREATE INDEX anomalies_provider ON anomalies (provider, created_at);
CREATE INDEX anomalies_payment ON anomalies (payment_id);
